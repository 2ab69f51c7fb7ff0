"""What the SQL stores share: dead-letter filters as SQL, rows read back as records.

Both SQL stores select the same columns in the same order. Values are read
defensively: SQLite does not enforce types, and a row someone edited by hand
must reach the relay (which dead-letters it) rather than stop every claim with
a conversion error.
"""

from __future__ import annotations

from typing import Any, Literal

from ._records import DeadLetter, DeadLetterFilter, StoredMessage

__all__ = ["as_int", "as_real", "claimed", "dead", "where_clause"]


def where_clause(
    where: DeadLetterFilter, dialect: Literal["sqlite", "postgres"]
) -> tuple[str, list[Any]]:
    """*where* as a SQL condition on the dead-letter table, with its bound parameters."""
    mark = "?" if dialect == "sqlite" else "%s"
    clauses = ["1 = 1"]
    params: list[Any] = []
    if where.ids is not None:
        if dialect == "postgres":
            clauses.append("id = ANY(%s)")
            params.append(list(where.ids))
        else:
            clauses.append(f"id IN ({', '.join('?' * len(where.ids))})" if where.ids else "0 = 1")
            params.extend(where.ids)
    if where.destination is not None:
        # A prefix by length, not LIKE: a destination's % and _ are not wildcards.
        clauses.append(f"substr(destination, 1, length({mark})) = {mark}")
        params.extend((where.destination, where.destination))
    for column, op, value in (
        ("reason", "=", where.reason),
        ("dead_at", ">=", where.since),
        ("dead_at", "<", where.until),
    ):
        if value is not None:
            clauses.append(f"{column} {op} {mark}")
            params.append(value)
    return " AND ".join(clauses), params


def as_real(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a REAL infinity
        return default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _status(value: Any) -> int | None:
    return None if value is None else as_int(value, 0) or None


def claimed(row: Any, token: str, until: float, *, counted: bool) -> StoredMessage:
    """A claimed row; *counted*: its attempts already include this claim (read after the update)."""
    return StoredMessage(
        id=_str(row[1]),
        data=_str(row[2]),
        destination=_str(row[3]),
        idempotency_key=_str(row[4]),
        ordering_key=row[5] if isinstance(row[5], str) else None,
        created_at=as_real(row[6]) or 0.0,
        attempts=as_int(row[7], 0) + (0 if counted else 1),
        lease_token=token,
        lease_until=until,
        first_failure_at=as_real(row[8]),
        last_failure_at=as_real(row[9]),
        last_status=_status(row[10]),
        last_error=row[11] if isinstance(row[11], str) else None,
    )


def dead(row: Any) -> DeadLetter:
    """A dead-letter row."""
    return DeadLetter(
        seq=int(row[0]),
        id=_str(row[1]),
        data=_str(row[2]),
        destination=_str(row[3]),
        idempotency_key=_str(row[4]),
        ordering_key=row[5] if isinstance(row[5], str) else None,
        created_at=as_real(row[6]) or 0.0,
        reason=_str(row[7]),
        attempts=as_int(row[8], 0),
        dead_at=as_real(row[9]) or 0.0,
        first_failure_at=as_real(row[10]),
        last_failure_at=as_real(row[11]),
        last_status=_status(row[12]),
        last_error=row[13] if isinstance(row[13], str) else None,
    )
