"""What a message is on disk: a versioned JSON document, and the checks made before writing it.

Two kinds::

    {"v": 1, "kind": "http", "method": "POST", "url": "https://api.example.com/orders",
     "headers": [["content-type", "application/json"]], "body": "{...}", "encoding": "utf-8"}
    {"v": 1, "kind": "handler", "name": "crm.sync", "payload": {...}}

The idempotency key is not in the document: stores keep it in a column of its
own, so every delivery, redelivery and replay reads the same one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import unquote_plus

import httpx

from ..http._redact import body_fields
from ._errors import MalformedMessageError, SecretInMessageError
from ._options import check_text

if TYPE_CHECKING:
    from ..http._redact import Redaction

__all__ = [
    "FORMAT_VERSION",
    "EncodedRequest",
    "HandlerMessage",
    "HttpMessage",
    "decode",
    "encode_handler",
    "encode_http",
]

FORMAT_VERSION: Final = 1

_NOT_STORED: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
"""Headers the client recomputes when the message is sent."""

_MAX_DEPTH: Final = 64
_PAIR: Final = 2


@dataclass(frozen=True)
class HttpMessage:
    """An HTTP request waiting in the outbox."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def destination(self) -> str:
        """The URL without query, fragment or user information (what listings show)."""
        return destination_of(httpx.URL(self.url))


@dataclass(frozen=True)
class HandlerMessage:
    """A call of a named handler with a JSON payload."""

    name: str
    payload: Any

    @property
    def destination(self) -> str:
        """The handler's name."""
        return self.name


@dataclass(frozen=True)
class EncodedRequest:
    """An HTTP request written down: the message, its document, what was taken out."""

    message: HttpMessage
    document: str
    idempotency_key: str | None
    """The key the request carried, if it carried one."""
    stripped: tuple[str, ...]
    """Credential headers dropped (only with ``secrets="strip"``)."""


def destination_of(url: httpx.URL) -> str:
    """*url* as listings show it: scheme, host, port and path only."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def encode_http(
    request: httpx.Request,
    *,
    redaction: Redaction,
    idempotency_header: str,
    secrets: Literal["refuse", "strip"],
) -> EncodedRequest:
    """Check *request* and write it down.

    Raises:
        SecretInMessageError: If the request carries credentials that would be
            persisted (see `Outbox.send`).
        TypeError: If its body is a stream that has not been read.

    """
    try:
        body = request.content
    except httpx.RequestNotRead:
        msg = (
            "Outbox.send: the request's body is a stream; the outbox needs the whole body "
            "(build the request with content=, json= or data=, or await request.aread())"
        )
        raise TypeError(msg) from None
    _check_url(request.url, redaction)
    key, headers, refused = _split_headers(request.headers, redaction, idempotency_header)
    if refused and secrets == "refuse":
        msg = (
            f"Outbox.send: the header(s) {', '.join(refused)} carry credentials, "
            "which are never persisted. Give the relay's client the credentials (an httpx Auth, "
            "default headers or an event hook), or pass secrets='strip' in DeliveryOptions to "
            "drop such headers at enqueue"
        )
        raise SecretInMessageError(msg)
    fields = _secret_fields(body_fields(body, request.headers.get("content-type", "")), redaction)
    if fields:
        msg = (
            f"Outbox.send: the body field(s) {', '.join(sorted(fields))} carry credentials, "
            "which are never persisted"
        )
        raise SecretInMessageError(msg)
    message = HttpMessage(request.method, str(request.url), tuple(headers), body)
    try:
        text, encoding = body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    document = {
        "v": FORMAT_VERSION,
        "kind": "http",
        "method": message.method,
        "url": message.url,
        "headers": [list(pair) for pair in headers],
        "body": text,
        "encoding": encoding,
    }
    return EncodedRequest(message, json.dumps(document, separators=(",", ":")), key, refused)


def _check_url(url: httpx.URL, redaction: Redaction) -> None:
    if url.username or url.password:
        msg = (
            "Outbox.send: the URL carries user information; credentials are never persisted. "
            "Give the relay's client an httpx Auth instead"
        )
        raise SecretInMessageError(msg)
    # As redaction splits it: at "&", and at ";" between other parameters.
    query = url.query.decode("ascii", "replace")
    secret_params = sorted({unquote_plus(name) for name, _ in redaction.secret_params(query)})
    if secret_params:
        msg = (
            f"Outbox.send: the query parameter(s) {', '.join(secret_params)} carry credentials, "
            "which are never persisted. Have the relay's client add them (an httpx Auth or an "
            "event hook)"
        )
        raise SecretInMessageError(msg)


def _split_headers(
    headers: httpx.Headers, redaction: Redaction, idempotency_header: str
) -> tuple[str | None, list[tuple[str, str]], tuple[str, ...]]:
    """The idempotency key, the headers to store, and the names of credential headers."""
    key: str | None = None
    kept: list[tuple[str, str]] = []
    refused: set[str] = set()
    for name, value in headers.multi_items():
        lower = name.lower()
        if lower == idempotency_header.lower():
            key = value
        elif lower in redaction.headers:
            refused.add(lower)
        elif lower not in _NOT_STORED:
            kept.append((lower, value))
    return key, kept, tuple(sorted(refused))


def encode_handler(name: str, payload: Any, *, redaction: Redaction) -> tuple[HandlerMessage, str]:
    """Check a handler message and write it down.

    Raises:
        TypeError: If *name* is not a non-empty str, or *payload* is not JSON
            (finite numbers, str keys).
        SecretInMessageError: If *payload* has a field named as a secret.

    """
    check_text("Outbox.send", "handler name", name)
    try:
        document = json.dumps(
            {"v": FORMAT_VERSION, "kind": "handler", "name": name, "payload": payload},
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        msg = f"Outbox.send: the payload of {name!r} must be JSON (finite numbers, str keys): {exc}"
        raise TypeError(msg) from None
    fields = _secret_fields(payload, redaction)
    if fields:
        msg = (
            f"Outbox.send: the payload field(s) {', '.join(sorted(fields))} of {name!r} carry "
            "credentials, which are never persisted; let the handler fetch them"
        )
        raise SecretInMessageError(msg)
    return HandlerMessage(name, payload), document


def decode(data: str) -> HttpMessage | HandlerMessage:
    """Read a stored document.

    Raises:
        MalformedMessageError: If it is not JSON, has an unknown version or kind,
            or lacks a field or has one of the wrong type; the message says which.

    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessageError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise MalformedMessageError(f"a JSON {type(document).__name__}, not an object")
    version = document.get("v")
    if version != FORMAT_VERSION:
        raise MalformedMessageError(f"unknown format version {version!r}")
    kind = document.get("kind")
    if kind == "handler":
        name = _field(document, "name", str)
        if not name:
            raise MalformedMessageError("empty handler name")
        if "payload" not in document:
            raise MalformedMessageError("missing field 'payload'")
        return HandlerMessage(name, document["payload"])
    if kind != "http":
        raise MalformedMessageError(f"unknown kind {kind!r}")
    return _decode_http(document)


def _decode_http(document: dict[str, Any]) -> HttpMessage:
    method = _field(document, "method", str)
    url = _field(document, "url", str)
    pairs = _field(document, "headers", list)
    if not all(
        isinstance(p, list) and len(p) == _PAIR and all(isinstance(s, str) for s in p)
        for p in pairs
    ):
        raise MalformedMessageError("field 'headers' is not a list of [name, value] pairs")
    body = _body(_field(document, "body", str), _field(document, "encoding", str))
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"invalid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise MalformedMessageError("the URL is not an absolute http(s) URL")
    if not method.isascii() or not method.isalpha():
        raise MalformedMessageError(f"invalid method {method!r}")
    return HttpMessage(method, url, tuple((n, v) for n, v in pairs), body)


def _body(text: str, encoding: str) -> bytes:
    if encoding == "utf-8":
        return text.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedMessageError("field 'body' is not base64") from None
    raise MalformedMessageError(f"unknown body encoding {encoding!r}")


def _field(document: dict[str, Any], name: str, kind: type[Any]) -> Any:
    if name not in document:
        raise MalformedMessageError(f"missing field {name!r}")
    value = document[name]
    if not isinstance(value, kind):
        raise MalformedMessageError(f"field {name!r} is a {type(value).__name__}")
    return value


def _secret_fields(value: Any, redaction: Redaction, depth: int = 0) -> set[str]:
    found: set[str] = set()
    if depth > _MAX_DEPTH:
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in redaction.body_fields:
                found.add(key)
            found |= _secret_fields(item, redaction, depth + 1)
    elif isinstance(value, list):
        for item in value:
            found |= _secret_fields(item, redaction, depth + 1)
    return found
