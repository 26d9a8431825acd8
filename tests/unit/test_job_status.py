"""The fold of a job's status, given its events: billing and the write side read the same one."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from events.contract import (
    InvoicingHeld,
    JobCancelled,
    JobCompleted,
    JobEvents,
    JobInvoiced,
    JobPutOnHold,
    JobReopened,
    JobRequested,
    JobRescheduled,
    JobResumed,
    JobScheduled,
    JobSignedOff,
    JobTaken,
    JobUnassigned,
    NoteAdded,
    Source,
    Status,
    TimeEntryAdded,
    WorkStarted,
    WorkStopped,
)
from events.job_status import status_after
from invoicer.pricing import work_of
from services.domain.job import Job, evolve

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
TECH = uuid4()
ENTRY = uuid4()
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

REQUESTED = JobRequested(
    id=JOB, source=Source.PHONE, customer_id=uuid4(), site_address=None, job_type="repair", description="Boiler leaks"
)
SCHEDULED = JobScheduled(id=JOB, technician_ids=[TECH], start=NOW, duration_minutes=60)
STARTED = WorkStarted(id=JOB, technician_id=TECH, entry_id=ENTRY, started_at=NOW)
STOPPED = WorkStopped(id=JOB, technician_id=TECH, entry_id=ENTRY, started_at=NOW, stopped_at=NOW, minutes=90)
COMPLETED = JobCompleted(id=JOB, summary="Seal replaced")

HISTORIES: dict[str, tuple[list[JobEvents], Status]] = {
    "requested": ([REQUESTED], Status.NEW),
    "scheduled": ([REQUESTED, SCHEDULED], Status.SCHEDULED),
    "back in the pool": ([REQUESTED, SCHEDULED, JobUnassigned(id=JOB)], Status.NEW),
    "taken from the pool": (
        [REQUESTED, JobUnassigned(id=JOB), JobTaken(id=JOB, technician_id=TECH, start=NOW, duration_minutes=60)],
        Status.SCHEDULED,
    ),
    "rescheduled": (
        [REQUESTED, SCHEDULED, JobRescheduled(id=JOB, technician_ids=[TECH], start=NOW, duration_minutes=30)],
        Status.SCHEDULED,
    ),
    "at work, stopped for a note": (
        [REQUESTED, SCHEDULED, STARTED, STOPPED, NoteAdded(id=JOB, text="Leak found")],
        Status.IN_PROGRESS,
    ),
    "on hold": (
        [REQUESTED, SCHEDULED, STARTED, JobPutOnHold(id=JOB, reason="parts", previous_status=Status.IN_PROGRESS)],
        Status.ON_HOLD,
    ),
    "resumed": (
        [
            REQUESTED,
            SCHEDULED,
            JobPutOnHold(id=JOB, reason="parts", previous_status=Status.SCHEDULED),
            JobResumed(id=JOB, status=Status.SCHEDULED),
        ],
        Status.SCHEDULED,
    ),
    "cancelled": ([REQUESTED, JobCancelled(id=JOB, reason="duplicate")], Status.CANCELLED),
    "completed and signed off": (
        [REQUESTED, SCHEDULED, STARTED, STOPPED, COMPLETED, JobSignedOff(id=JOB, signed_by="Jana")],
        Status.COMPLETED,
    ),
    "held": ([REQUESTED, SCHEDULED, STARTED, COMPLETED, InvoicingHeld(id=JOB, reason="no price")], Status.COMPLETED),
    "invoiced": (
        [REQUESTED, SCHEDULED, STARTED, COMPLETED, JobInvoiced(id=JOB, invoice_id=uuid4(), number="FV/1")],
        Status.INVOICED,
    ),
    "reopened": (
        [
            REQUESTED,
            SCHEDULED,
            STARTED,
            COMPLETED,
            JobReopened(id=JOB, reason="still leaks", status=Status.IN_PROGRESS),
        ],
        Status.IN_PROGRESS,
    ),
    "worked again after reopening": (
        [
            REQUESTED,
            SCHEDULED,
            STARTED,
            COMPLETED,
            JobReopened(id=JOB, reason="still leaks", status=Status.SCHEDULED),
            TimeEntryAdded(id=JOB, technician_id=TECH, entry_id=uuid4(), started_at=NOW, minutes=15),
        ],
        Status.SCHEDULED,
    ),
}


def folded(events: list[JobEvents]) -> Status:
    status = Status.NEW
    for event in events:
        status = status_after(status, event)
    return status


@pytest.mark.parametrize("history", list(HISTORIES))
def test_the_status_is_the_fold_of_the_job_events(history: str) -> None:
    events, then = HISTORIES[history]
    assert folded(events) is then


@pytest.mark.parametrize("history", list(HISTORIES))
def test_billing_and_the_write_side_see_the_same_status(history: str) -> None:
    events, then = HISTORIES[history]
    job = Job(id=JOB)
    for event in events:
        job = evolve(job, event)
    assert job.status is work_of(JOB, events).status is then
