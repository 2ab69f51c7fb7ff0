"""Resilience for httpx (and httpx2) clients: a transport, HTTP classification, redaction.

::

    client = httpx.AsyncClient(transport=resilient.http.Transport())
"""

from ._classification import (
    IDEMPOTENT_METHODS as IDEMPOTENT_METHODS,
    RETRY_STATUSES as RETRY_STATUSES,
    HttpClassification as HttpClassification,
)
from ._errors import (
    IdempotencyKeyMismatchError as IdempotencyKeyMismatchError,
    RequestNotReplayableError as RequestNotReplayableError,
    RetryAfterTooLongError as RetryAfterTooLongError,
)
from ._redact import (
    SENSITIVE_BODY_FIELDS as SENSITIVE_BODY_FIELDS,
    SENSITIVE_HEADERS as SENSITIVE_HEADERS,
    SENSITIVE_QUERY as SENSITIVE_QUERY,
    Redaction as Redaction,
    Scrubber as Scrubber,
)
from ._retry_after import ServerDelay as ServerDelay, parse_server_delay as parse_server_delay
from ._transport import Transport as Transport, default_pipeline as default_pipeline

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "SENSITIVE_BODY_FIELDS",
    "SENSITIVE_HEADERS",
    "SENSITIVE_QUERY",
    "HttpClassification",
    "IdempotencyKeyMismatchError",
    "Redaction",
    "RequestNotReplayableError",
    "RetryAfterTooLongError",
    "Scrubber",
    "ServerDelay",
    "Transport",
    "default_pipeline",
    "parse_server_delay",
]
