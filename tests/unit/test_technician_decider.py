"""The technician decider, given/when/then: given past events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from events.contract import (
    ChangeTechnicianDetails,
    DeactivateTechnician,
    ReactivateTechnician,
    RegisterTechnician,
    Role,
    StopwatchStarted,
    StopwatchStopped,
    TechnicianDeactivated,
    TechnicianDetailsChanged,
    TechnicianEvent,
    TechnicianReactivated,
    TechnicianRegistered,
)
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from services.domain.parties import Technician, decide_technician, evolve_technician

TECH = UUID("00000000-0000-0000-0000-0000000000e1")
JOB, OTHER_JOB = UUID(int=101), UUID(int=102)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN, technician_id=TECH))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))


def given(*events: TechnicianEvent) -> Technician:
    tech = Technician(id=TECH)
    for event in events:
        tech = evolve_technician(tech, event)
    return tech


REGISTERED = TechnicianRegistered(id=TECH, name="Tomáš Dvořák", skills=["boilers"], email="tom@example.cz")
DEACTIVATED = TechnicianDeactivated(id=TECH, reason="left the company")


def test_a_technician_is_registered_with_their_skills() -> None:
    command = RegisterTechnician(name="Tomáš Dvořák", skills=["boilers", "gas"], email="tom@example.cz", phone="+420 3")
    assert decide_technician(command, given(), OFFICE) == [
        TechnicianRegistered(
            id=TECH, name="Tomáš Dvořák", skills=["boilers", "gas"], email="tom@example.cz", phone="+420 3"
        )
    ]
    [without_email] = decide_technician(RegisterTechnician(name="Jan"), given(), ADMIN)
    assert without_email == TechnicianRegistered(id=TECH, name="Jan", email="")
    tech = given(REGISTERED)
    assert (tech.version, tech.name, tech.skills, tech.active) == (1, "Tomáš Dvořák", ["boilers"], True)


def test_a_technician_is_registered_only_once() -> None:
    with pytest.raises(InvalidTransition, match="cannot register it again: the technician is registered"):
        decide_technician(RegisterTechnician(name="Tomáš"), given(REGISTERED), OFFICE)


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
def test_only_the_office_changes_technicians(ctx: Context) -> None:
    with pytest.raises(Forbidden, match="only the office may change technicians"):
        decide_technician(RegisterTechnician(name="Tomáš"), given(), ctx)
    with pytest.raises(Forbidden, match="only the office may change technicians"):  # not even their own details
        decide_technician(ChangeTechnicianDetails(phone="+420 4"), given(REGISTERED), ctx)


@pytest.mark.parametrize(
    "command",
    [
        ChangeTechnicianDetails(phone="+420 4"),
        DeactivateTechnician(),
        ReactivateTechnician(),
    ],
    ids=lambda c: type(c).__name__,
)
def test_nothing_happens_to_a_technician_never_registered(
    command: ChangeTechnicianDetails | DeactivateTechnician | ReactivateTechnician,
) -> None:
    with pytest.raises(NotFound, match=f"technician {TECH} not found"):
        decide_technician(command, given(), OFFICE)


def test_changing_details_records_only_what_changed() -> None:
    command = ChangeTechnicianDetails(skills=["boilers", "heat pumps"])
    assert decide_technician(command, given(REGISTERED), OFFICE) == [
        TechnicianDetailsChanged(id=TECH, skills=["boilers", "heat pumps"])
    ]
    changed = given(REGISTERED, TechnicianDetailsChanged(id=TECH, skills=["heat pumps"]))
    assert (changed.skills, changed.name, changed.email) == (["heat pumps"], "Tomáš Dvořák", "tom@example.cz")


def test_a_change_must_name_a_detail() -> None:
    with pytest.raises(Invalid) as refused:
        decide_technician(ChangeTechnicianDetails(), given(REGISTERED), OFFICE)
    assert (refused.value.field, refused.value.reason) == ("body", "name at least one detail to change")


def test_deactivating_and_reactivating() -> None:
    assert decide_technician(DeactivateTechnician(reason="left the company"), given(REGISTERED), OFFICE) == [
        DEACTIVATED
    ]
    assert not given(REGISTERED, DEACTIVATED).active
    assert decide_technician(ReactivateTechnician(), given(REGISTERED, DEACTIVATED), OFFICE) == [
        TechnicianReactivated(id=TECH)
    ]
    assert given(REGISTERED, DEACTIVATED, TechnicianReactivated(id=TECH)).active


def test_an_inactive_technician_is_not_deactivated_again_nor_an_active_one_reactivated() -> None:
    with pytest.raises(InvalidTransition, match="cannot deactivate: the technician is inactive"):
        decide_technician(DeactivateTechnician(), given(REGISTERED, DEACTIVATED), OFFICE)
    with pytest.raises(InvalidTransition, match="cannot reactivate: the technician is active"):
        decide_technician(ReactivateTechnician(), given(REGISTERED), OFFICE)


def test_the_stopwatch_times_one_job_and_a_stale_stop_leaves_it_running() -> None:
    running = given(REGISTERED, StopwatchStarted(id=TECH, job_id=JOB, at=NOW))
    assert running.running_job_id == JOB
    assert evolve_technician(running, StopwatchStopped(id=TECH, job_id=OTHER_JOB, at=NOW)).running_job_id == JOB
    assert evolve_technician(running, StopwatchStopped(id=TECH, job_id=JOB, at=NOW)).running_job_id is None
