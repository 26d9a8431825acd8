"""Booking slots: one technician's slot, claimed by one booking."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from events.contract.base import Command, Event
from events.contract.values import UtcTime


class SlotEvent(Event, frozen=True, kw_only=True, tag=True):
    """A technician's slot on the booking page's grid. Its id derives from the technician
    and the slot's start (``services.domain.slots.slot_id``): every command-API replica
    booking it appends to the same subject, and the store's optimistic concurrency lets
    one of them win."""

    aggregate: ClassVar[str] = "slot"


class SlotClaimed(SlotEvent, frozen=True, kw_only=True, tag=True):
    """A booking took the slot for its job (the first claim at version 0). Claimed again
    only once that job no longer holds it: cancelled, moved, given to someone else, or
    never scheduled on it within a minute of the claim."""

    technician_id: UUID
    start: datetime  # UTC
    job_id: UUID


SlotEvents = SlotClaimed


class ClaimSlot(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The booking page takes one technician's slot for a job, before scheduling it there."""

    technician_id: UUID
    start: UtcTime
    job_id: UUID
