"""A technician's slot on the booking page, claimed by one booking at a time.

The booking calendar is read from the stream by each command-API replica, so two replicas
can both see an hour free and book it for two customers. Each booking therefore claims the
slots its visit covers first: one aggregate per technician and slot start, the first claim
saved at version 0, so of two replicas claiming at once the store takes one and refuses the
other (a version conflict on the subject). A claim holds while its job is scheduled there,
and for a minute while the booking that made it is still scheduling the job; after that
the slot can be claimed again (at the version seen, so again by one booking only).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import ClaimSlot, SlotClaimed, SlotEvents, Status
from services.domain.common import Context, DomainError, derived_id
from services.domain.job import Job

PENDING = timedelta(minutes=1)  # how long a claim holds before its job is scheduled on it


class SlotTaken(DomainError):
    """Another booking holds the slot (409)."""

    def __init__(self, start: datetime, technician_id: UUID | None = None) -> None:
        who = f"technician {technician_id}" if technician_id else "every technician able"
        super().__init__(f"{who} is booked at {start.isoformat()}: that time is no longer free")


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    job_id: UUID | None = None
    claimed_at: datetime | None = None


def slot_id(technician_id: UUID, start: datetime) -> UUID:
    return derived_id("slot", technician_id, int(start.timestamp()))


def evolve_slot(slot: Slot, event: SlotEvents) -> Slot:
    slot = replace(slot, version=slot.version + 1)
    match event:
        case SlotClaimed():
            return replace(slot, job_id=event.job_id, claimed_at=event.meta.occurred_at if event.meta else None)
        case _:
            assert_never(event)


def holds(job: Job, slot: Slot, command: ClaimSlot, now: datetime) -> bool:
    """Whether the job that claimed the slot still holds it."""
    if job.status in (Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD) and job.start is not None:
        ends = job.start + timedelta(minutes=job.duration_minutes)
        return command.technician_id in job.technician_ids and job.start <= command.start < ends
    being_scheduled = job.status is Status.NEW and not job.in_pool
    return being_scheduled and slot.claimed_at is not None and now - slot.claimed_at < PENDING


SlotCommand = ClaimSlot


def decide_slot(command: SlotCommand, slot: Slot, holder: Job | None, ctx: Context) -> list[SlotClaimed]:
    """Claim the slot for the command's job; ``holder`` is the job holding it now, if any."""
    if slot.job_id == command.job_id:
        return []  # ours already (the same booking again)
    if holder is not None and holds(holder, slot, command, ctx.now):
        raise SlotTaken(command.start, command.technician_id)
    return [SlotClaimed(id=slot.id, technician_id=command.technician_id, start=command.start, job_id=command.job_id)]
