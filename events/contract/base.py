"""What every event and every command is: an event carries its aggregate's id and the
metadata the application stamps on it; a command forbids unknown fields and bounds its decimals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, NamedTuple
from uuid import UUID

from msgspec import Struct


class EventMeta(Struct, frozen=True, kw_only=True):
    """Who did what, when, as which command, and the hash of the aggregate's previous event."""

    event_id: UUID
    occurred_at: datetime
    actor_id: str
    actor_role: str
    command_id: str
    correlation_id: str
    previous_hash: str = ""


class Event(Struct, frozen=True, kw_only=True, tag=True):
    """Every event: the aggregate's id, and metadata stamped by the application."""

    aggregate: ClassVar[str]
    id: UUID
    meta: EventMeta | None = None


class Bound(NamedTuple):
    """What a decimal field of a command takes (msgspec cannot bound a Decimal): the door
    checks it, and the OpenAPI document says it."""

    low: Decimal
    high: Decimal
    low_inclusive: bool = True


class Command(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    decimals: ClassVar[dict[str, Bound]] = {}

    def __post_init__(self) -> None:
        for field, bound in self.decimals.items():
            check_decimal(field, getattr(self, field), *bound)


def check_decimal(field: str, value: Decimal | None, low: Decimal, high: Decimal, low_inclusive: bool = True) -> None:
    """Raise ValueError (a 422 naming the field) unless low <= value <= high."""
    if value is None:
        return
    if not value.is_finite():
        raise ValueError(f"`{field}` must be a finite number")
    if value < low or (value == low and not low_inclusive) or value > high:
        bound = "at least" if low_inclusive else "more than"
        raise ValueError(f"`{field}` must be {bound} {low} and at most {high}")
    exponent = value.as_tuple().exponent  # an int: the value is finite
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError(f"`{field}` may have at most 6 decimal places")
