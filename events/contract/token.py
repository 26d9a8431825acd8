"""Access tokens (the id is derived from the token's hash; the token itself is never
stored)."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from events.contract.base import Event
from events.contract.values import Role


class TokenEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "token"


class TokenIssued(TokenEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    role: Role
    technician_id: UUID | None = None
    token_hash: str


class TokenRevoked(TokenEvent, frozen=True, kw_only=True, tag=True):
    reason: str = ""


TokenEvents = TokenIssued | TokenRevoked
