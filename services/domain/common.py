"""What every decider shares: the context a command runs in, and the domain's refusals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

import msgspec

from events.contract import Role

NAMESPACE = UUID("6b0f3f0e-2b8f-4f3e-9d4a-6a1c3c1d7e55")


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    role: Role
    technician_id: UUID | None = None
    token_id: UUID | None = None  # the token it signed in with (none: the CLI, a service)


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """Everything impure a decision needs, passed in as data."""

    now: datetime
    actor: Actor
    company_currency: str = "EUR"  # the seller's: a customer registered without a currency gets it


def derived_id(*parts: object) -> UUID:
    """A new id that depends only on its inputs, so deciders stay pure."""
    return uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts))


class DomainError(Exception):
    """A command the domain refuses; mapped to HTTP once, in services.api."""


class NotFound(DomainError):
    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")


class InvalidTransition(DomainError):
    """Illegal in the current status (409)."""

    def __init__(self, kind: str, status: str, action: str, hint: str = "") -> None:
        message = f"cannot {action}: the {kind} is {status.replace('_', ' ')}"
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.status = status


class Invalid(DomainError):
    """A value the domain rejects (422), naming the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Forbidden(DomainError):
    """The actor may not do this (403)."""


# How far a business date may lie from today, by the command field that holds it: anything
# else is a typo (9999-12-31) that would be stored for ever, or overflow a consumer's
# arithmetic (a visit starting at 9999-12-31T23:30 ends in year 10000).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=366)
AHEAD = {
    "received_on": YEAR,
    "sla_deadline": 5 * YEAR,
    "valid_until": 5 * YEAR,
    "start": 5 * YEAR,
    "started_at": timedelta(days=1),
    "after": 10 * YEAR,
}
MONTHS = {"first_month": 10 * YEAR, "last_month": 10 * YEAR}  # YYYY-MM


def check_dates(command: msgspec.Struct, now: datetime) -> None:
    """Invalid (422) naming the field and the allowed range, for a date out of its bounds."""
    for field in command.__struct_fields__:
        value = getattr(command, field)
        if value is None:
            continue
        if field in AHEAD and isinstance(value, date):
            latest = now + AHEAD[field]
            moment = value if isinstance(value, datetime) else datetime.combine(value, time(), UTC)
            if moment.tzinfo is None:  # a local wall-clock time (a recurring visit's first)
                moment = moment.replace(tzinfo=UTC)
            if not EARLIEST <= moment <= latest:
                shown = (
                    (lambda d: d.date().isoformat())
                    if not isinstance(value, datetime)
                    else (lambda d: d.isoformat(timespec="minutes"))
                )
                raise Invalid(field, f"must be between {shown(EARLIEST)} and {shown(latest)}")
        elif field in MONTHS and isinstance(value, str):
            latest_month = (now + MONTHS[field]).strftime("%Y-%m")
            if not "2000-01" <= value <= latest_month:
                raise Invalid(field, f"must be a month between 2000-01 and {latest_month}")
