"""`DeadLetters`: what an operator does with messages that could not be delivered."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._clock import sleep, wall
from ..http._redact import Redaction, body_fields
from ..policies._validate import check_count, check_seconds
from ..stores._records import DeadLetter, DeadLetterFilter
from ._errors import MalformedMessageError
from ._message import HttpMessage, decode

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

    from ..stores._protocol import Store
    from ._options import DeliveryOptions

__all__ = ["DeadLetterPage", "DeadLetters", "describe_letter"]

_REPLAY_CHUNK = 100
_PAIR = 2


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of a dead-letter listing.

    Attributes:
        letters: The dead letters, oldest first.
        next_cursor: Pass as ``after=`` for the next page; ``None`` on the last.

    """

    letters: list[DeadLetter]
    next_cursor: int | None


class DeadLetters:
    """The dead-letter queue of an outbox: list, show, count, replay, purge.

    Reached as ``outbox.dead_letters``. Filters (``destination`` prefix,
    ``reason``, ``since``/``until`` in epoch seconds) combine with AND.
    """

    def __init__(self, store: Store, options: DeliveryOptions) -> None:
        self._store = store
        self._options = options

    def __repr__(self) -> str:
        return f"DeadLetters({self._store!r})"

    async def list(
        self,
        *,
        destination: str | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> DeadLetterPage:
        """A page of dead letters, oldest first.

        Raises:
            ValueError: If *limit* is not a positive int.

        """
        check_count("DeadLetters.list", "limit", limit)
        where = DeadLetterFilter(destination=destination, reason=reason, since=since, until=until)
        letters = await self._store.dead_letters(where, limit=limit + 1, after=after)
        more = len(letters) > limit
        letters = letters[:limit]
        return DeadLetterPage(letters, letters[-1].seq if more else None)

    async def get(self, message_id: str) -> DeadLetter | None:
        """The dead letter of *message_id*, or ``None``."""
        return await self._store.dead_letter(message_id)

    async def count(
        self,
        *,
        destination: str | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """How many dead letters match the filter."""
        where = DeadLetterFilter(destination=destination, reason=reason, since=since, until=until)
        return await self._store.count_dead_letters(where)

    async def replay(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        destination: str | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        everything: bool = False,
        new_keys: bool = False,
        rate: float | None = None,
    ) -> builtins.list[str]:
        """Put dead letters back in the outbox, due now, with fresh attempts.

        Name what to replay: message *ids*, a filter, or ``everything=True``.
        Replayed messages keep their idempotency key, so a receiver that did
        handle an earlier attempt recognises the replay; *new_keys* mints new
        ones (for a receiver that remembers a key's failure). At most *rate*
        messages per second are moved (default: the options' ``replay_rate``),
        so replaying a large backlog does not flood the downstream that just
        recovered.

        Returns:
            The ids replayed.

        Raises:
            ValueError: If nothing selects the dead letters, or *rate* is not positive.

        """
        where = self._selection(
            "replay",
            ids=ids,
            destination=destination,
            reason=reason,
            since=since,
            until=until,
            everything=everything,
        )
        per_second = self._options.replay_rate if rate is None else rate
        check_seconds("DeadLetters.replay", "rate", per_second, positive=True)
        chunk = max(1, min(_REPLAY_CHUNK, int(per_second)))
        replayed: builtins.list[str] = []
        while True:
            # Restored letters leave the table, so the next page starts at the front again.
            letters = await self._store.dead_letters(where, limit=chunk)
            if not letters:
                return replayed
            chosen = [letter.id for letter in letters]
            keys = {i: secrets.token_urlsafe(24) for i in chosen} if new_keys else None
            started = wall()
            replayed += await self._store.restore(chosen, now=started, keys=keys)
            if len(letters) < chunk:
                return replayed
            await sleep(max(0.0, len(chosen) / per_second - (wall() - started)))

    async def purge(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        destination: str | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        everything: bool = False,
    ) -> int:
        """Delete dead letters for good; return how many.

        Name what to purge: message *ids*, a filter, or ``everything=True``.

        Raises:
            ValueError: If nothing selects the dead letters.

        """
        where = self._selection(
            "purge",
            ids=ids,
            destination=destination,
            reason=reason,
            since=since,
            until=until,
            everything=everything,
        )
        return await self._store.purge(where)

    async def enforce_retention(self) -> int:
        """Drop dead letters beyond the options' limit and age; return how many.

        The relay calls this periodically; call it yourself where no relay runs.
        """
        options = self._options
        max_age = options.dead_letter_max_age
        if options.dead_letter_limit is None and max_age is None:
            return 0
        return await self._store.trim(
            max_count=options.dead_letter_limit,
            older_than=None if max_age is None else wall() - max_age,
        )

    @staticmethod
    def _selection(
        verb: str,
        *,
        ids: str | Sequence[str] | None,
        destination: str | None,
        reason: str | None,
        since: float | None,
        until: float | None,
        everything: bool,
    ) -> DeadLetterFilter:
        chosen = (ids,) if isinstance(ids, str) else (None if ids is None else tuple(ids))
        filtered = any(v is not None for v in (destination, reason, since, until))
        if chosen is None and not filtered and not everything:
            msg = (
                f"DeadLetters.{verb}: name the dead letters: ids, a filter (destination, reason, "
                "since, until), or everything=True"
            )
            raise ValueError(msg)
        return DeadLetterFilter(
            ids=chosen, destination=destination, reason=reason, since=since, until=until
        )


def describe_letter(letter: DeadLetter, redaction: Redaction | None = None) -> dict[str, Any]:
    """A dead letter as plain data (for JSON and the CLI), its request redacted.

    A letter whose document cannot be read is shown with ``"malformed"`` and the
    raw document. Free text (the last error, the raw document) is scrubbed of
    the credentials the row itself carries, should a hand-edited row or another
    release's have stored any.
    """
    view = _describe(letter, redaction if redaction is not None else Redaction())
    scrub = _scrubber(letter.data, redaction if redaction is not None else Redaction())
    if scrub:
        for name in ("last_error", "raw", "malformed"):
            text = view.get(name)
            if isinstance(text, str):
                view[name] = scrub(text)
    return view


def _describe(letter: DeadLetter, redaction: Redaction) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": letter.id,
        "seq": letter.seq,
        "destination": redaction.redact_url(letter.destination),
        "reason": letter.reason,
        "attempts": letter.attempts,
        "idempotency_key": letter.idempotency_key,
        "ordering_key": letter.ordering_key,
        "created_at": letter.created_at,
        "first_failure_at": letter.first_failure_at,
        "last_failure_at": letter.last_failure_at,
        "dead_at": letter.dead_at,
        "last_status": letter.last_status,
        "last_error": letter.last_error,
    }
    try:
        message = decode(letter.data)
    except MalformedMessageError as exc:
        view["malformed"] = str(exc)
        view["raw"] = letter.data
        return view
    if isinstance(message, HttpMessage):
        view["request"] = {
            "method": message.method,
            "url": redaction.redact_url(message.url),
            "headers": [list(pair) for pair in redaction.redact_headers(message.headers)],
            "body": _body_view(message.body, _content_type(message.headers), redaction),
        }
    else:
        view["handler"] = message.name
        view["payload"] = redaction.redact_json(message.payload)
    return view


def _content_type(headers: Any) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")


def _body_view(body: bytes, content_type: str, redaction: Redaction) -> Any:
    try:  # JSON whatever the type says: its secret fields are hidden either way
        return redaction.redact_json(json.loads(body))
    except (ValueError, RecursionError):
        pass
    form = body_fields(body, content_type)
    if isinstance(form, dict):  # a form, shown as {name: [values]} with its secrets hidden
        return redaction.redact_json(form)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


def _scrubber(data: str, redaction: Redaction) -> Any:
    """A scrubber for the secrets in a stored document, read as loosely as possible."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    headers = document.get("headers")
    pairs = [(p[0], p[1]) for p in headers if _is_pair(p)] if isinstance(headers, list) else None
    url = document.get("url")
    body: Any = document.get("payload")
    raw_body = document.get("body")
    if body is None and isinstance(raw_body, str):
        try:
            body = json.loads(raw_body)
        except (ValueError, RecursionError):
            # A stored row may hold anything, lone surrogates included.
            raw = raw_body.encode("utf-8", "surrogatepass")
            body = body_fields(raw, _content_type(pairs or ()))
    return redaction.scrubber(pairs, url if isinstance(url, str) else None, body=body)


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, list) and len(value) == _PAIR and all(isinstance(s, str) for s in value)
    )
