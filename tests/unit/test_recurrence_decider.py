"""The recurring-service decider, given/when/then: the office defines, changes and ends a plan;
the generator records the occurrences it made and withdraws those the plan no longer has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from events.contract import (
    Address,
    BillingKind,
    ChangeRecurringService,
    DefineRecurringService,
    EndRecurringService,
    OccurrenceGenerated,
    OccurrenceWithdrawn,
    RecordOccurrence,
    RecurrenceEvent,
    RecurringPlan,
    RecurringServiceChanged,
    RecurringServiceDefined,
    RecurringServiceEnded,
    Role,
    WithdrawOccurrence,
)
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from services.domain.recurring import Recurrence, decide_recurrence, evolve_recurrence

SERVICE = UUID("00000000-0000-0000-0000-00000000b001")
CUSTOMER, TECH, OTHER_TECH = UUID(int=1), UUID(int=2), UUID(int=3)
JOB, NEXT_JOB = UUID(int=11), UUID(int=12)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SITE = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
FIRST_VISIT = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # 10:00 in Prague

OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN, technician_id=TECH))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))

PLAN = RecurringPlan(
    customer_id=CUSTOMER,
    site_address=SITE,
    job_type="inspection",
    description="Boiler check",
    scope="Annual service",
    technician_ids=[TECH],
    rule="FREQ=MONTHLY;BYDAY=1MO",
    start=datetime(2027, 1, 4, 10, 0),
    timezone="Europe/Prague",
    duration_minutes=90,
    horizon_days=90,
    billing_kind=BillingKind.WARRANTY,
)
DEFINED = RecurringServiceDefined(id=SERVICE, plan=PLAN)


def define(**changes: object) -> DefineRecurringService:
    fields = {
        "customer_id": CUSTOMER,
        "site_address": SITE,
        "job_type": "inspection",
        "description": "Boiler check",
        "scope": "Annual service",
        "technician_ids": [TECH],
        "rule": "FREQ=MONTHLY;BYDAY=1MO",
        "start": datetime(2027, 1, 4, 10, 0),
        "timezone": "Europe/Prague",
        "duration_minutes": 90,
        "horizon_days": 90,
        "billing_kind": BillingKind.WARRANTY,
    }
    return DefineRecurringService(**{**fields, **changes})  # type: ignore[arg-type]  # the fields, as the test names them


def given(*events: RecurrenceEvent) -> Recurrence:
    state = Recurrence(id=SERVICE)
    for event in events:
        state = evolve_recurrence(state, event)
    return state


def plan(**changes: object) -> RecurringPlan:
    return msgspec.structs.replace(PLAN, **changes)


def generated(at: datetime = FIRST_VISIT, job: UUID = JOB, plan_version: int = 1) -> OccurrenceGenerated:
    return OccurrenceGenerated(id=SERVICE, at=at, job_id=job, plan_version=plan_version)


# --- defining -----------------------------------------------------------------------------


def test_defining_a_service_records_its_plan() -> None:
    assert decide_recurrence(define(), given(), OFFICE) == [DEFINED]
    state = given(DEFINED)
    assert (state.version, state.plan, state.plan_version) == (1, PLAN, 1)


def test_a_service_is_defined_once() -> None:
    with pytest.raises(InvalidTransition, match="cannot define it again: the recurring service is defined"):
        decide_recurrence(define(), given(DEFINED), OFFICE)


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
@pytest.mark.parametrize(
    "command",
    [
        define(),
        ChangeRecurringService(duration_minutes=60),
        EndRecurringService(reason="contract over"),
        RecordOccurrence(at=FIRST_VISIT, job_id=JOB),
        WithdrawOccurrence(at=FIRST_VISIT, job_id=JOB),
    ],
    ids=lambda c: type(c).__name__,
)
def test_only_the_office_plans_recurring_services(
    command: DefineRecurringService
    | ChangeRecurringService
    | EndRecurringService
    | RecordOccurrence
    | WithdrawOccurrence,
    ctx: Context,
) -> None:
    with pytest.raises(Forbidden, match="only the office plans recurring services"):
        decide_recurrence(command, given(DEFINED), ctx)


@pytest.mark.parametrize(
    ("command", "field", "reason"),
    [
        (define(timezone="Mars/Olympus_Mons"), "timezone", "unknown time zone 'Mars/Olympus_Mons'"),
        (define(rule="FREQ=HOURLY"), "rule", "a visit repeats at most daily"),
        (define(rule="FREQ=WEEKLY;BYDAY=XX"), "rule", "not an RFC 5545 recurrence rule"),
        (define(rule="DTSTART:20270104T100000"), "rule", "give the first visit as `start`"),
        (define(rule="FREQ=WEEKLY;UNTIL=20401231T000000"), "rule", "UNTIL must be at most 2036-"),
    ],
    ids=["time zone", "hourly", "not a rule", "dtstart", "until"],
)
def test_a_plan_the_generator_could_not_follow_is_refused(
    command: DefineRecurringService, field: str, reason: str
) -> None:
    with pytest.raises(Invalid) as refused:
        decide_recurrence(command, given(), OFFICE)
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_an_until_within_ten_years_is_accepted() -> None:
    [event] = decide_recurrence(define(rule="FREQ=WEEKLY;UNTIL=20271231T000000"), given(), ADMIN)
    assert event == RecurringServiceDefined(id=SERVICE, plan=plan(rule="FREQ=WEEKLY;UNTIL=20271231T000000"))


# --- changing and ending -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ChangeRecurringService(duration_minutes=60),
        EndRecurringService(reason="contract over"),
        RecordOccurrence(at=FIRST_VISIT, job_id=JOB),
        WithdrawOccurrence(at=FIRST_VISIT, job_id=JOB),
    ],
    ids=lambda c: type(c).__name__,
)
def test_nothing_happens_to_a_service_never_defined(
    command: ChangeRecurringService | EndRecurringService | RecordOccurrence | WithdrawOccurrence,
) -> None:
    with pytest.raises(NotFound, match=f"recurring service {SERVICE} not found"):
        decide_recurrence(command, given(), OFFICE)


def test_a_change_gives_the_whole_plan_from_now_on() -> None:
    command = ChangeRecurringService(
        technician_ids=[OTHER_TECH], rule="FREQ=MONTHLY;BYDAY=3MO", reason="Tom moved to Ostrava"
    )
    assert decide_recurrence(command, given(DEFINED), OFFICE) == [
        RecurringServiceChanged(
            id=SERVICE,
            plan=plan(technician_ids=[OTHER_TECH], rule="FREQ=MONTHLY;BYDAY=3MO"),
            reason="Tom moved to Ostrava",
        )
    ]
    changed = given(DEFINED, RecurringServiceChanged(id=SERVICE, plan=plan(duration_minutes=60)))
    assert (changed.plan_version, changed.plan.duration_minutes if changed.plan else None) == (2, 60)


def test_a_change_to_what_the_plan_already_is_records_nothing() -> None:
    assert decide_recurrence(ChangeRecurringService(duration_minutes=90, reason="same"), given(DEFINED), OFFICE) == []
    assert decide_recurrence(ChangeRecurringService(reason="nothing named"), given(DEFINED), OFFICE) == []


def test_a_changed_plan_is_checked_as_a_new_one_is() -> None:
    with pytest.raises(Invalid) as refused:
        decide_recurrence(ChangeRecurringService(rule="FREQ=MINUTELY"), given(DEFINED), OFFICE)
    assert refused.value.field == "rule"


def test_ending_a_service_ends_it_now_unless_told_when() -> None:
    assert decide_recurrence(EndRecurringService(reason="contract over"), given(DEFINED), OFFICE) == [
        RecurringServiceEnded(id=SERVICE, after=NOW, reason="contract over")
    ]
    later = NOW + timedelta(days=30)
    assert decide_recurrence(EndRecurringService(after=later, reason="contract over"), given(DEFINED), OFFICE) == [
        RecurringServiceEnded(id=SERVICE, after=later, reason="contract over")
    ]
    assert given(DEFINED, RecurringServiceEnded(id=SERVICE, after=later)).ended_after == later


def test_an_ended_service_is_neither_changed_nor_ended_again() -> None:
    ended = given(DEFINED, RecurringServiceEnded(id=SERVICE, after=NOW - timedelta(days=1), reason="over"))
    with pytest.raises(InvalidTransition, match="cannot change it: the recurring service is ended"):
        decide_recurrence(ChangeRecurringService(duration_minutes=60), ended, OFFICE)
    with pytest.raises(InvalidTransition, match="cannot end it: the recurring service is ended"):
        decide_recurrence(EndRecurringService(reason="again"), ended, OFFICE)


def test_a_service_that_ends_later_still_runs_until_then() -> None:
    ending = given(DEFINED, RecurringServiceEnded(id=SERVICE, after=NOW + timedelta(days=30), reason="over"))
    [event] = decide_recurrence(ChangeRecurringService(duration_minutes=60), ending, OFFICE)
    assert isinstance(event, RecurringServiceChanged) and event.plan.duration_minutes == 60
    assert decide_recurrence(EndRecurringService(reason="sooner"), ending, OFFICE) == [
        RecurringServiceEnded(id=SERVICE, after=NOW, reason="sooner")
    ]


# --- the generator's occurrences -----------------------------------------------------------


def test_an_occurrence_is_recorded_to_the_current_plan() -> None:
    assert decide_recurrence(RecordOccurrence(at=FIRST_VISIT, job_id=JOB), given(DEFINED), OFFICE) == [generated()]
    assert given(DEFINED, generated()).occurrences[FIRST_VISIT].job_id == JOB


def test_an_occurrence_recorded_already_is_not_recorded_again() -> None:
    assert decide_recurrence(RecordOccurrence(at=FIRST_VISIT, job_id=JOB), given(DEFINED, generated()), OFFICE) == []


def test_an_occurrence_made_to_an_older_plan_is_recorded_again_when_moved() -> None:
    changed = RecurringServiceChanged(id=SERVICE, plan=plan(duration_minutes=60))
    assert decide_recurrence(
        RecordOccurrence(at=FIRST_VISIT, job_id=JOB), given(DEFINED, generated(), changed), OFFICE
    ) == [generated(plan_version=2)]
    # another job at the same time is recorded too
    assert decide_recurrence(
        RecordOccurrence(at=FIRST_VISIT, job_id=NEXT_JOB), given(DEFINED, generated()), OFFICE
    ) == [generated(job=NEXT_JOB)]


def test_an_occurrence_is_withdrawn_once() -> None:
    command = WithdrawOccurrence(at=FIRST_VISIT, job_id=JOB, reason="no longer in the plan")
    withdrawn = OccurrenceWithdrawn(id=SERVICE, at=FIRST_VISIT, job_id=JOB, reason="no longer in the plan")
    assert decide_recurrence(command, given(DEFINED, generated()), OFFICE) == [withdrawn]
    assert given(DEFINED, generated(), withdrawn).occurrences[FIRST_VISIT].withdrawn
    assert decide_recurrence(command, given(DEFINED, generated(), withdrawn), OFFICE) == []


def test_withdrawing_an_occurrence_never_generated_records_nothing() -> None:
    assert decide_recurrence(WithdrawOccurrence(at=FIRST_VISIT, job_id=JOB), given(DEFINED), OFFICE) == []
