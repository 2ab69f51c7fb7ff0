"""`Redaction`: the one place that decides what logs, spans, errors and reprs may show.

Everything that writes a request down goes through a `Redaction`:

- `Redaction.redact_headers` replaces the values of sensitive headers (keeping
  the scheme of ``Authorization`` and the names of cookies);
- `Redaction.redact_url` replaces the values of sensitive query parameters and
  the password (or a lone user name) of the userinfo;
- `Redaction.redact_json` replaces the values of sensitive fields anywhere in a
  JSON-like body;
- `Redaction.scrubber` collects the secret *values* of one request and returns
  a `Scrubber` that removes them from free text, such as the message of an
  exception that quoted the request.

Names are matched without regard to case everywhere (headers, query parameters
and body fields); secret values are matched exactly. Nothing here raises on odd
input: ``bytes`` values, non-ASCII text, malformed URLs and cookies, cyclic or
very deep bodies all come out redacted rather than as an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, unquote_plus

from ._options import check_header_name

__all__ = [
    "MIN_SECRET_LENGTH",
    "PLACEHOLDER",
    "SENSITIVE_BODY_FIELDS",
    "SENSITIVE_HEADERS",
    "SENSITIVE_QUERY",
    "Redaction",
    "Scrubber",
]

PLACEHOLDER: Final = "[REDACTED]"
"""What a redacted value is replaced with, by default."""

MIN_SECRET_LENGTH: Final = 4
"""Secret values shorter than this are not scrubbed from free text.

Redacted headers, URLs and bodies hide values of any length; but a `Scrubber`
that removed every ``"1"`` or ``"abc"`` from an error message would garble it
while protecting nothing worth protecting.
"""

SENSITIVE_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
    }
)
"""Headers whose values are redacted by default (names lower-case)."""

SENSITIVE_QUERY: Final = frozenset(
    {
        # API keys and bearer-style tokens
        "api_key",
        "api-key",
        "apikey",
        "key",
        "token",
        "auth",
        "access_token",
        "refresh_token",
        "id_token",
        # OAuth client credentials and passwords
        "client_secret",
        "secret",
        "password",
        "passwd",
        # signed URLs: Azure SAS, AWS and Google Cloud Storage pre-signed URLs
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
    }
)
"""Query parameters whose values are redacted by default (names lower-case).

``key``, ``token``, ``auth`` and ``sig`` are broad on purpose: a query string is
logged often, and an over-redacted harmless value costs less than a leaked key.
"""

SENSITIVE_BODY_FIELDS: Final = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "client_secret",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
    }
)
"""JSON fields whose values are redacted by default (names lower-case).

Narrower than `SENSITIVE_QUERY`: ``key`` and ``auth`` are common harmless field
names in bodies.
"""

_MAX_DEPTH: Final = 100
"""`Redaction.redact_json` replaces anything nested deeper than this, whole."""

_KNOWN_SCHEMES: Final = frozenset(
    {"basic", "bearer", "digest", "dpop", "negotiate", "ntlm", "token", "aws4-hmac-sha256"}
)
"""Authorization schemes shown before the placeholder; any other first word is hidden."""

_COOKIE_ATTRIBUTES: Final = frozenset(
    {"expires", "max-age", "domain", "path", "secure", "httponly", "samesite", "partitioned"}
)
"""Set-Cookie attributes shown as they are; anything else is hidden."""

_CREDENTIALS: Final = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]+(.*)", re.DOTALL)
"""An Authorization value: the scheme (an RFC 9110 token), whitespace, the credentials."""

_NEXT_COOKIE: Final = re.compile(r",[ \t]*(?=[!#$%&'*+.^_`|~0-9A-Za-z-]+=)")
"""Where folded ``Set-Cookie`` values (``a=1; Path=/, b=2``) meet: a comma before a name=.

An ``Expires`` date has a comma too, but a day number follows it, never ``name=``.
"""

_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
"""Characters a header value may not hold (a tab it may): an error quotes such a value escaped."""


def _names(owner_field: str, value: Any) -> frozenset[str]:
    """Check that *value* is a collection of non-empty names; return them lower-case."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        msg = (
            f"Redaction: {owner_field} must be a collection of str names (a set, say), "
            f"got {value!r} ({type(value).__name__})"
        )
        raise TypeError(msg)
    names = set()
    for item in value:
        if not isinstance(item, str):
            msg = (
                f"Redaction: {owner_field} must hold only str names, "
                f"got {item!r} ({type(item).__name__})"
            )
            raise TypeError(msg)
        if not item or item != item.strip():
            msg = (
                f"Redaction: {owner_field} must hold non-empty names without surrounding spaces "
                f"(they would never match), got {item!r}"
            )
            raise ValueError(msg)
        if owner_field == "headers":
            check_header_name("Redaction", "headers", item)
        names.add(item.lower())
    return frozenset(names)


def _text(value: Any) -> str:
    """*value* as text: ``bytes`` as UTF-8 if they are, else Latin-1 (which never fails)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1")
    return str(value)


def _pairs(headers: Any) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of *headers*, in order, repeated names kept.

    Takes ``httpx.Headers`` (and look-alikes with ``multi_items()``), mappings,
    or an iterable of pairs (anything else in it is skipped).
    """
    if headers is None:
        return []
    multi_items = getattr(headers, "multi_items", None)
    if callable(multi_items):
        items = multi_items()
    elif isinstance(headers, Mapping):
        items = headers.items()
    else:
        items = headers
    return [
        (_text(pair[0]), _text(pair[1]))
        for pair in items
        if isinstance(pair, (tuple, list)) and len(pair) == 2  # noqa: PLR2004
    ]


@dataclass(frozen=True, kw_only=True)
class Redaction:
    """Which headers, query parameters and body fields are secret, and what replaces them.

    Name collections accept any collection of ``str`` (a set, a list) and are
    stored as lower-case frozensets. To add to the defaults, write
    ``Redaction(headers=SENSITIVE_HEADERS | {"x-tenant-key"})``.

    ===================  =====================================================
    Option               Default
    ===================  =====================================================
    ``headers``          `SENSITIVE_HEADERS`
    ``query``            `SENSITIVE_QUERY`
    ``body_fields``      `SENSITIVE_BODY_FIELDS`
    ``placeholder``      ``"[REDACTED]"``
    ===================  =====================================================

    Args:
        headers: Names of headers whose values are secret.
        query: Names of query parameters whose values are secret.
        body_fields: Names of JSON object fields whose values are secret.
        placeholder: What replaces a secret value.

    Raises:
        TypeError: If a name collection is a bare ``str`` or holds a non-``str``,
            or *placeholder* is not a ``str``.
        ValueError: If a name is empty.

    """

    headers: Collection[str] = field(default=SENSITIVE_HEADERS)
    query: Collection[str] = field(default=SENSITIVE_QUERY)
    body_fields: Collection[str] = field(default=SENSITIVE_BODY_FIELDS)
    placeholder: str = PLACEHOLDER

    def __post_init__(self) -> None:
        for name in ("headers", "query", "body_fields"):
            object.__setattr__(self, name, _names(name, getattr(self, name)))
        if not isinstance(self.placeholder, str):
            msg = (
                f"Redaction: placeholder must be a str, got {self.placeholder!r} "
                f"({type(self.placeholder).__name__})"
            )
            raise TypeError(msg)

    # Headers

    def redact_headers(self, headers: Any) -> list[tuple[str, str]]:
        """A redacted copy of *headers* as ``(name, value)`` pairs, in their order.

        Sensitive values are replaced; ``Authorization`` keeps a well-known scheme
        (``"Bearer [REDACTED]"``), ``Cookie`` and ``Set-Cookie`` keep cookie names
        (and well-known ``Set-Cookie`` attributes). Names keep their spelling.

        Args:
            headers: ``httpx.Headers`` (or anything with ``multi_items()``), a
                mapping, or ``(name, value)`` pairs; ``None`` for none.

        """
        return [(name, self._header_value(name, value)) for name, value in _pairs(headers)]

    def _header_value(self, name: str, value: str) -> str:
        lower = name.lower()
        if lower not in self.headers:
            return value
        if lower in {"authorization", "proxy-authorization"}:
            match = _CREDENTIALS.fullmatch(value.strip())
            if match and match.group(1).lower() in _KNOWN_SCHEMES:
                return f"{match.group(1)} {self.placeholder}"
        elif lower == "cookie":
            return "; ".join(self._cookie(piece) for piece in value.split(";") if piece.strip())
        elif lower == "set-cookie":
            # A mapping (dict(response.headers)) folds repeated values into one.
            return ", ".join(self._set_cookie(one) for one in _NEXT_COOKIE.split(value))
        return self.placeholder

    def _set_cookie(self, value: str) -> str:
        pair, *attributes = value.split(";")
        kept = [self._cookie(pair)]
        for attribute in attributes:
            if attribute.strip():
                attribute_name = attribute.partition("=")[0].strip().lower()
                known = attribute_name in _COOKIE_ATTRIBUTES
                kept.append(attribute.strip() if known else self._cookie(attribute))
        return "; ".join(kept)

    def _cookie(self, piece: str) -> str:
        name, equals, _ = piece.strip().partition("=")
        return f"{name.strip()}={self.placeholder}" if equals else self.placeholder

    # URLs

    def redact_url(self, url: Any) -> str:
        """*url* as text, with sensitive query values and the userinfo secret replaced.

        Both parts of ``user:password@host`` are replaced, and so is a lone
        ``token@host``: tokens are often sent as the user name, with or without
        an empty password (``https://sk_live_...:@host``), and OpenTelemetry asks
        for ``REDACTED:REDACTED@`` in ``url.full``.
        Parameters in the fragment (``#access_token=...``) are redacted like
        the query. Everything else, including the percent-encoding of what is
        kept, is left as it was.

        Args:
            url: An ``httpx.URL`` (or anything whose ``str()`` is the URL), a
                ``str`` or ``bytes``.

        """
        rest, hash_mark, fragment = _text(url).partition("#")
        base, question_mark, query = rest.partition("?")
        return (
            self._userinfo(base)
            + question_mark
            + self._query(query)
            + hash_mark
            + self._query(fragment)
        )

    def _userinfo(self, base: str) -> str:
        scheme, slashes, after = base.partition("//")
        if not slashes:
            return base
        authority, slash, path = after.partition("/")
        userinfo, at, host = authority.rpartition("@")
        if not at:
            return base
        colon = ":" in userinfo
        hidden = f"{self.placeholder}:{self.placeholder}" if colon else self.placeholder
        return f"{scheme}//{hidden}@{host}{slash}{path}"

    def _is_secret_param(self, name: str) -> bool:
        return unquote_plus(name).strip().lower() in self.query

    def _query(self, query: str) -> str:
        pieces = query.split("&")
        for i, piece in enumerate(pieces):
            found = self._secret_in(piece)
            if found is not None:
                start, name, _ = found
                pieces[i] = f"{piece[:start]}{name}={self.placeholder}"
        return "&".join(pieces)

    def secret_params(self, query: str) -> Iterator[tuple[str, str]]:
        """The secret parameters of *query* (no ``?``), as ``(name, value)`` pairs.

        Parameters are separated by ``&``, and by ``;`` too (HTML 4.01 B.2.2; many
        servers split at it). A secret's value runs to the next ``&``: ``;`` may be
        part of it (``token=exp=1;hmac=...``), and hiding a harmless parameter after
        it costs less than showing half a secret.
        """
        for piece in query.split("&"):
            found = self._secret_in(piece)
            if found is not None:
                yield found[1], found[2]

    def _secret_in(self, piece: str) -> tuple[int, str, str] | None:
        """The first secret parameter of one ``&`` piece: (where it starts, name, value)."""
        start = 0
        for part in piece.split(";"):
            name, equals, _ = part.partition("=")
            if equals and self._is_secret_param(name):
                return start, name, piece[start + len(name) + 1 :]
            start += len(part) + 1
        return None

    # Bodies

    def redact_json(self, body: Any) -> Any:
        """A copy of a JSON-like *body* with the values of sensitive fields replaced.

        Dicts (any mapping, returned as a ``dict``), lists and tuples are copied
        all the way down; a field named in *body_fields* (compared without
        regard to case) has its value replaced whole, whatever its type. Other
        values are returned as they are. *body* is never changed. A container
        nested more than 100 deep, or containing itself, is replaced whole, so
        a pathological body cannot make this raise ``RecursionError``.
        """
        return self._json(body, 0, set(), {})

    def _json(self, value: Any, depth: int, path: set[int], done: dict[int, Any]) -> Any:
        if not isinstance(value, (Mapping, list, tuple)):
            return value
        if depth >= _MAX_DEPTH or id(value) in path:
            return self.placeholder
        copy = done.get(id(value))
        if copy is not None:
            # A container met before (shared, not nested in itself): its copy, not a
            # new walk, or a body of shared lists would take exponential time.
            return copy
        path.add(id(value))
        try:
            if isinstance(value, Mapping):
                copy = {
                    key: (
                        self.placeholder
                        if isinstance(key, str) and key.lower() in self.body_fields
                        else self._json(item, depth + 1, path, done)
                    )
                    for key, item in value.items()
                }
            else:
                items = [self._json(item, depth + 1, path, done) for item in value]
                copy = items if isinstance(value, list) else tuple(items)
        finally:
            path.discard(id(value))
        done[id(value)] = copy
        return copy

    # Free text

    def scrubber(self, headers: Any = None, url: Any = None, *, body: Any = None) -> Scrubber:
        """A `Scrubber` that removes this request's secret values from any text.

        It collects, from the sensitive headers: each whole value, the
        credentials after an ``Authorization`` scheme (and the ``user:password``
        and password inside ``Basic`` ones, and each ``name=value`` parameter's
        value), each cookie value; from the URL: each sensitive query value (as
        sent and percent-decoded) and the userinfo secret; from the body: string
        values of sensitive fields. Values shorter than `MIN_SECRET_LENGTH` are
        left out.

        Args:
            headers: The request's headers, as for `redact_headers`.
            url: The request's URL, as for `redact_url`.
            body: The request's JSON-like body, as for `redact_json`.

        """
        secrets: set[str] = set()
        for name, value in _pairs(headers):
            if name.lower() in self.headers:
                secrets.update(_header_secrets(name.lower(), value))
        if url is not None:
            secrets.update(self._url_secrets(_text(url)))
        if body is not None:
            self._body_secrets(body, 0, secrets, set())
        return Scrubber(secrets, self.placeholder)

    def _url_secrets(self, url: str) -> Iterable[str]:
        rest, _, fragment = url.partition("#")
        base, _, query = rest.partition("?")
        for text in (query, fragment):
            for _, value in self.secret_params(text):
                yield from _encodings(value)
        _, slashes, after = base.partition("//")
        userinfo, at, _ = after.partition("/")[0].rpartition("@")
        if slashes and at:
            for part in userinfo.split(":", 1):
                if part:
                    yield from _encodings(part)

    def _body_secrets(self, value: Any, depth: int, secrets: set[str], seen: set[int]) -> None:
        # A container is walked once (shared ones would make the walk exponential,
        # cycles endless); a secret deeper than the limit is not worth a bigger walk.
        if depth >= _MAX_DEPTH or not isinstance(value, (Mapping, list, tuple)):
            return
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and key.lower() in self.body_fields:
                    _leaves(item, depth + 1, secrets, seen)  # a list of them too (a form's)
                else:
                    self._body_secrets(item, depth + 1, secrets, seen)
        else:
            for item in value:
                self._body_secrets(item, depth + 1, secrets, seen)


def body_fields(content: bytes, content_type: str) -> Any:
    """A body as fields to look for secrets in, or None.

    JSON as it parses; a form (``application/x-www-form-urlencoded``) as
    ``{name: [values]}``, which `Redaction.redact_json` and `Redaction.scrubber`
    read like JSON; None for any other type, or a body that does not parse.
    """
    kind = content_type.partition(";")[0].strip().lower()
    if "json" in kind:
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            return None
    if kind != "application/x-www-form-urlencoded":
        return None
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(_text(content), keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _leaves(value: Any, depth: int, secrets: set[str], seen: set[int]) -> None:
    """Add the text of every number and string in *value*, a secret field's value."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        secrets.add(str(value))
    elif depth < _MAX_DEPTH and isinstance(value, (Mapping, list, tuple)) and id(value) not in seen:
        seen.add(id(value))  # each container once, as for the rest of the body
        for item in value.values() if isinstance(value, Mapping) else value:
            _leaves(item, depth + 1, secrets, seen)


def _encodings(value: str) -> list[str]:
    """*value* as it appears in a URL, and percent-decoded both ways."""
    return [value, unquote(value), unquote_plus(value)]


def _header_secrets(name: str, value: str) -> list[str]:
    """The secret strings in the value of sensitive header *name*.

    A value with control characters in it (a line break, say) is refused by the
    HTTP library, whose error quotes it escaped, as ``repr`` writes it: those
    forms, and each piece between the control characters, are secrets too.
    """
    secrets = [value, value.strip(), *_escaped(value)]
    if name in {"authorization", "proxy-authorization"}:
        match = _CREDENTIALS.fullmatch(value.strip())
        if match:
            scheme, credentials = match.group(1).lower(), match.group(2).strip()
            secrets.append(credentials)
            if scheme not in _KNOWN_SCHEMES:  # not a scheme: maybe all of it is a token
                secrets.extend(value.split())
            if scheme == "basic":
                secrets.extend(_basic_secrets(credentials))
            for param in credentials.split(","):
                _, equals, param_value = param.partition("=")
                if equals:
                    secrets.append(param_value.strip().strip('"'))
    elif name in {"cookie", "set-cookie"}:
        pieces = value.split(";")
        if name == "set-cookie":  # the first piece of each folded value; the rest are attributes
            pieces = [one.split(";", 1)[0] for one in _NEXT_COOKIE.split(value)]
        for piece in pieces:
            _, equals, cookie_value = piece.partition("=")
            secrets.append(cookie_value.strip().strip('"') if equals else piece.strip())
    return secrets


def _escaped(value: str) -> list[str]:
    """*value* as `repr` writes it (str and bytes), and its pieces, if it has control chars."""
    if not _CONTROL.search(value):
        return []
    forms = [repr(value)[1:-1], repr(value.encode("utf-8", "replace"))[2:-1]]
    pieces = (piece.strip() for piece in _CONTROL.split(value))
    # "Bearer" alone on its line is no secret, and scrubbing it would garble every message.
    return forms + [piece for piece in pieces if piece.lower() not in _KNOWN_SCHEMES]


def _basic_secrets(credentials: str) -> list[str]:
    """``user:password`` and ``password`` from Basic *credentials*, if they decode."""
    try:  # base64 wrapped in lines (encodebytes) is still that password
        decoded = base64.b64decode("".join(credentials.split()), validate=True)
    except (binascii.Error, ValueError):
        return []
    text = _text(decoded)
    return [text, text.partition(":")[2]]


class Scrubber:
    """Removes a fixed set of secret values from text; made by `Redaction.scrubber`.

    ``scrubber(text)`` replaces every occurrence of every secret with the
    placeholder, longest secrets first. The result never contains a secret: if
    replacing would form one anew (with the placeholder's own characters, say),
    the secrets are deleted instead, until none is left. The repr shows how many
    secrets there are, never what they are.
    """

    __slots__ = ("_count", "_pattern", "_placeholder")

    def __init__(self, secrets: Iterable[str], placeholder: str = PLACEHOLDER) -> None:
        if isinstance(secrets, (str, bytes)) or not isinstance(secrets, Iterable):
            msg = f"Scrubber: secrets must be a collection of str, got {type(secrets).__name__}"
            raise TypeError(msg)  # never the value: it is a secret
        secrets = list(secrets)
        if not all(isinstance(secret, str) for secret in secrets):
            msg = "Scrubber: secrets must hold only str values"
            raise TypeError(msg)
        if not isinstance(placeholder, str):
            msg = f"Scrubber: placeholder must be a str, got {placeholder!r}"
            raise TypeError(msg)
        kept = sorted(
            {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH},
            key=lambda secret: (-len(secret), secret),
        )
        self._count = len(kept)
        self._placeholder = placeholder
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def __call__(self, text: str) -> str:
        """*text* with every secret removed."""
        pattern = self._pattern
        text = _text(text)
        if pattern is None:
            return text
        placeholder = self._placeholder
        scrubbed = pattern.sub(lambda _: placeholder, text)  # a str would be a template
        if pattern.search(scrubbed) is None:
            return scrubbed
        # Each pass removes at least MIN_SECRET_LENGTH characters, so this ends.
        while pattern.search(text) is not None:
            text = pattern.sub("", text)
        return text

    def __bool__(self) -> bool:
        return self._count > 0

    def __repr__(self) -> str:
        return f"<Scrubber of {self._count} secret value(s)>"
