"""A booking slot's claim, given/when/then: who holds it, and when it is free again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from events.contract import ClaimSlot, EventMeta, Role, SlotClaimed, Status
from services.domain.common import Actor, Context
from services.domain.job import Job
from services.domain.slots import Slot, SlotTaken, decide_slot, evolve_slot, slot_id

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TECH, ANOTHER = uuid4(), uuid4()
CTX = Context(now=NOW, actor=Actor(id="booking-page", role=Role.OFFICE))
SLOT = slot_id(TECH, AT)


def claimed(job: object, at: datetime = NOW) -> Slot:
    meta = EventMeta(
        event_id=uuid4(),
        occurred_at=at,
        actor_id="booking-page",
        actor_role="office",
        command_id="c",
        correlation_id="c",
    )
    return evolve_slot(Slot(id=SLOT), SlotClaimed(id=SLOT, technician_id=TECH, start=AT, job_id=job, meta=meta))


def test_a_free_slot_is_claimed_and_the_same_booking_again_adds_nothing() -> None:
    mine = uuid4()
    claim = ClaimSlot(technician_id=TECH, start=AT, job_id=mine)
    assert decide_slot(claim, Slot(id=SLOT), None, CTX) == [
        SlotClaimed(id=SLOT, technician_id=TECH, start=AT, job_id=mine)
    ]
    assert decide_slot(claim, claimed(mine), None, CTX) == []


@pytest.mark.parametrize(
    "holder",
    [
        Job(
            id=uuid4(),
            version=2,
            status=Status.SCHEDULED,
            technician_ids=(TECH,),
            start=AT - timedelta(minutes=30),
            duration_minutes=90,
        ),  # scheduled over it
        Job(id=uuid4()),  # its booking is scheduling it now (within a minute of the claim)
    ],
)
def test_a_slot_held_by_another_booking_is_refused(holder: Job) -> None:
    with pytest.raises(SlotTaken):
        decide_slot(ClaimSlot(technician_id=TECH, start=AT, job_id=uuid4()), claimed(holder.id), holder, CTX)


@pytest.mark.parametrize(
    "holder",
    [
        Job(id=uuid4(), version=3, status=Status.CANCELLED),
        Job(id=uuid4(), version=2, status=Status.SCHEDULED, technician_ids=(ANOTHER,), start=AT, duration_minutes=60),
        Job(
            id=uuid4(),
            version=2,
            status=Status.SCHEDULED,
            technician_ids=(TECH,),
            start=AT + timedelta(hours=2),
            duration_minutes=60,
        ),  # moved
        Job(id=uuid4(), version=2, status=Status.NEW, in_pool=True),  # given to the pool
    ],
)
def test_a_slot_its_job_no_longer_holds_is_claimed_again(holder: Job) -> None:
    mine = uuid4()
    (event,) = decide_slot(ClaimSlot(technician_id=TECH, start=AT, job_id=mine), claimed(holder.id), holder, CTX)
    assert event.job_id == mine


def test_a_claim_whose_job_never_came_is_let_go_after_a_minute() -> None:
    never = Job(id=uuid4())
    later = Context(now=NOW + timedelta(minutes=2), actor=CTX.actor)
    assert decide_slot(ClaimSlot(technician_id=TECH, start=AT, job_id=uuid4()), claimed(never.id), never, later)
