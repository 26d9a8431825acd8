"""What every decider shares: the context a command runs in, and the domain's refusals."""

from __future__ import annotations

import uuid
from datetime import datetime
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
