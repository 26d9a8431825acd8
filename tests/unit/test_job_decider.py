"""The job decider, given/when/then: given past events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from events.contract import (
    AddNote,
    Address,
    CancelJob,
    CompleteJob,
    CorrectTimeEntry,
    JobCancelled,
    JobCompleted,
    JobEvent,
    JobPutOnHold,
    JobReopened,
    JobRequested,
    JobResumed,
    JobScheduled,
    JobTaken,
    JobUnassigned,
    NoteAdded,
    PutJobOnHold,
    ReopenJob,
    RequestJob,
    ResumeJob,
    Role,
    ScheduleJob,
    SignOffJob,
    Source,
    StartWork,
    Status,
    StopWork,
    TakeJob,
    TimeEntryCorrected,
    UseMaterial,
    WorkStarted,
    WorkStopped,
)
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from services.domain.job import Job, decide, evolve

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
CUSTOMER = uuid4()
TECH = UUID("00000000-0000-0000-0000-0000000000t1".replace("t", "0"))
OTHER_TECH = uuid4()
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SITE = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")

OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN, technician_id=TECH))
STRANGER = Context(now=NOW, actor=Actor(id="eve", role=Role.TECHNICIAN, technician_id=OTHER_TECH))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))


def given(*events: JobEvent) -> Job:
    job = Job(id=JOB)
    for event in events:
        job = evolve(job, event)
    return job


def requested(site: Address | None = SITE, description: str = "Boiler leaks") -> JobRequested:
    return JobRequested(
        id=JOB, source=Source.PHONE, customer_id=CUSTOMER, site_address=site, job_type="repair", description=description
    )


SCHEDULED = JobScheduled(id=JOB, technician_ids=[TECH], start=NOW, duration_minutes=60)
STARTED = WorkStarted(id=JOB, technician_id=TECH, entry_id=uuid4(), started_at=NOW - timedelta(minutes=90))


def test_a_request_becomes_a_new_job() -> None:
    command = RequestJob(customer_id=CUSTOMER, job_type="repair", description="Boiler leaks", site_address=SITE)
    assert decide(command, given(), OFFICE) == [requested()]
    assert given(requested()).status is Status.NEW


def test_scheduling_a_new_job_assigns_the_technician() -> None:
    command = ScheduleJob(technician_ids=[TECH], start=NOW)
    assert decide(command, given(requested()), OFFICE) == [SCHEDULED]
    assert given(requested(), SCHEDULED).status is Status.SCHEDULED


@pytest.mark.parametrize(
    ("site", "description", "field"),
    [
        (None, "Boiler leaks", "site_address"),
        (SITE, "   ", "description"),
    ],
)
def test_a_job_cannot_be_scheduled_without_a_site_address_and_a_description(
    site: Address | None, description: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        decide(ScheduleJob(technician_ids=[TECH], start=NOW), given(requested(site, description)), OFFICE)
    assert refused.value.field == field


def test_an_illegal_transition_names_the_current_status() -> None:
    with pytest.raises(InvalidTransition, match="the job is completed"):
        decide(
            ScheduleJob(technician_ids=[TECH], start=NOW),
            given(requested(), SCHEDULED, STARTED, JobCompleted(id=JOB, summary="done")),
            OFFICE,
        )
    with pytest.raises(InvalidTransition, match="cannot complete: the job is scheduled"):
        decide(CompleteJob(summary="done"), given(requested(), SCHEDULED), TECHNICIAN)


def test_starting_work_puts_the_job_in_progress() -> None:
    [event] = decide(StartWork(), given(requested(), SCHEDULED), TECHNICIAN)
    assert isinstance(event, WorkStarted)
    assert (event.technician_id, event.started_at) == (TECH, NOW)
    assert given(requested(), SCHEDULED, event).status is Status.IN_PROGRESS


def test_stopping_work_records_the_time_entry_in_whole_minutes() -> None:
    [event] = decide(StopWork(billable=False), given(requested(), SCHEDULED, STARTED), TECHNICIAN)
    assert event == WorkStopped(
        id=JOB,
        technician_id=TECH,
        entry_id=STARTED.entry_id,
        started_at=STARTED.started_at,
        stopped_at=NOW,
        minutes=90,
        billable=False,
    )
    job = given(requested(), SCHEDULED, STARTED, event)
    assert job.running == {} and job.entries[STARTED.entry_id].minutes == 90


def test_the_stopwatch_cannot_run_twice_on_one_job() -> None:
    with pytest.raises(InvalidTransition, match="already running"):
        decide(StartWork(), given(requested(), SCHEDULED, STARTED), TECHNICIAN)


def test_completing_stops_the_running_stopwatch_first() -> None:
    events = decide(CompleteJob(summary="Seal replaced"), given(requested(), SCHEDULED, STARTED), TECHNICIAN)
    assert [type(e) for e in events] == [WorkStopped, JobCompleted]
    assert given(requested(), SCHEDULED, STARTED, *events).status is Status.COMPLETED


def test_technicians_act_only_on_their_own_jobs() -> None:
    with pytest.raises(Forbidden, match="not assigned to you"):
        decide(StartWork(), given(requested(), SCHEDULED), STRANGER)
    with pytest.raises(Forbidden, match="ask the office"):
        decide(CancelJob(reason="no"), given(requested(), SCHEDULED), TECHNICIAN)


def test_accountants_cannot_write() -> None:
    with pytest.raises(Forbidden, match="read-only"):
        decide(AddNote(text="hello"), given(requested()), ACCOUNTANT)


def test_a_job_in_the_open_pool_can_be_taken_by_any_technician() -> None:
    pooled = given(requested(), SCHEDULED, JobUnassigned(id=JOB, reason="on leave"))
    assert pooled.status is Status.NEW and pooled.in_pool
    assert decide(TakeJob(), pooled, STRANGER) == [
        JobTaken(id=JOB, technician_id=OTHER_TECH, start=NOW, duration_minutes=60)
    ]
    # a new request nobody has yet is in the pool too (the technicians' app lists it there)
    assert decide(TakeJob(), given(requested()), STRANGER) == [
        JobTaken(id=JOB, technician_id=OTHER_TECH, start=NOW, duration_minutes=60)
    ]
    with pytest.raises(InvalidTransition, match="not in the open pool"):
        decide(TakeJob(), given(requested(), SCHEDULED), STRANGER)


def test_hold_and_resume_return_to_where_the_job_was() -> None:
    events = decide(PutJobOnHold(reason="parts"), given(requested(), SCHEDULED), OFFICE)
    assert events == [JobPutOnHold(id=JOB, reason="parts", previous_status=Status.SCHEDULED)]
    held = given(requested(), SCHEDULED, *events)
    assert held.status is Status.ON_HOLD
    assert decide(ResumeJob(), held, OFFICE) == [JobResumed(id=JOB, status=Status.SCHEDULED)]


def test_cancel_and_reopen() -> None:
    cancelled = given(requested(), SCHEDULED, JobCancelled(id=JOB, reason="duplicate"))
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(InvalidTransition, match="the job is cancelled"):
        decide(CancelJob(reason="again"), cancelled, OFFICE)
    assert decide(ReopenJob(reason="not a duplicate"), cancelled, OFFICE) == [
        JobReopened(id=JOB, reason="not a duplicate", status=Status.SCHEDULED)
    ]


def test_sign_off_only_once_and_only_when_completed() -> None:
    completed = given(requested(), SCHEDULED, STARTED, JobCompleted(id=JOB, summary="done"))
    [signed] = decide(SignOffJob(signed_by="Pavel Novák"), completed, TECHNICIAN)
    with pytest.raises(InvalidTransition, match="already signed off by Pavel Novák"):
        decide(SignOffJob(signed_by="Someone"), evolve(completed, signed), TECHNICIAN)
    with pytest.raises(InvalidTransition, match="cannot sign off: the job is in progress"):
        decide(SignOffJob(signed_by="x"), given(requested(), SCHEDULED, STARTED), TECHNICIAN)


def test_correcting_time_keeps_the_entry_and_records_the_reason() -> None:
    stopped = decide(StopWork(), given(requested(), SCHEDULED, STARTED), TECHNICIAN)
    job = given(requested(), SCHEDULED, STARTED, *stopped)
    command = CorrectTimeEntry(entry_id=STARTED.entry_id, minutes=75, billable=True, reason="forgot to stop")
    assert decide(command, job, TECHNICIAN) == [
        TimeEntryCorrected(id=JOB, entry_id=STARTED.entry_id, minutes=75, billable=True, reason="forgot to stop")
    ]
    with pytest.raises(Invalid) as refused:
        decide(CorrectTimeEntry(entry_id=uuid4(), minutes=1, reason="x"), job, TECHNICIAN)
    assert refused.value.field == "entry_id"


def test_notes_and_materials() -> None:
    job = given(requested(), SCHEDULED, STARTED)
    assert decide(AddNote(text="Valve replaced"), job, TECHNICIAN) == [NoteAdded(id=JOB, text="Valve replaced")]
    [material] = decide(UseMaterial(code="valve", description="Valve 1/2", quantity=Decimal("2")), job, TECHNICIAN)
    assert material.quantity == Decimal(2)


def test_nothing_happens_to_a_job_that_was_never_requested() -> None:
    with pytest.raises(NotFound, match="not found"):  # a 404: there is no such job
        decide(StartWork(), given(), TECHNICIAN)
