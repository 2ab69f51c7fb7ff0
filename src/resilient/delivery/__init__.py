"""Durable delivery: an outbox that writes first and delivers later, and its dead letters.

::

    outbox = resilient.Outbox(resilient.stores.SQLiteStore("resilient.db"), client=client)
    await outbox.send(httpx.Request("POST", url, json=order))
    async with outbox.relay(workers=4):
        ...
"""

from ._dead_letters import (
    DeadLetterPage as DeadLetterPage,
    DeadLetters as DeadLetters,
    describe_letter as describe_letter,
)
from ._errors import (
    MalformedMessageError as MalformedMessageError,
    SecretInMessageError as SecretInMessageError,
    UndeliverableError as UndeliverableError,
)
from ._options import DeliveryOptions as DeliveryOptions
from ._outbox import Outbox as Outbox
from ._relay import Delivery as Delivery, Relay as Relay, RelayStatistics as RelayStatistics

__all__ = [
    "DeadLetterPage",
    "DeadLetters",
    "Delivery",
    "DeliveryOptions",
    "MalformedMessageError",
    "Outbox",
    "Relay",
    "RelayStatistics",
    "SecretInMessageError",
    "UndeliverableError",
    "describe_letter",
]
