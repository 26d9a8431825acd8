"""The failure decider, given/when/then: the office asks for an event a consumer could not
process to be tried again, once, while the failure is open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.contract import (
    FailureEvent,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    RetryProcessing,
    Role,
    failure_id,
)
from services.domain.common import Actor, Context, Forbidden, InvalidTransition, NotFound
from services.domain.failures import Failure, decide_failure, evolve_failure

FAILURE = failure_id("invoicer", 42)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))

FAILED = ProcessingFailed(
    id=FAILURE,
    consumer="invoicer",
    position=42,
    topic="JobCompleted",
    error_type="KeyError",
    error="no price for 'repair'",
)
RETRYING = ProcessingRetryRequested(id=FAILURE, consumer="invoicer", position=42, reason="price added")


def given(*events: FailureEvent) -> Failure:
    failure = Failure(id=FAILURE)
    for event in events:
        failure = evolve_failure(failure, event)
    return failure


def test_an_open_failure_is_tried_again_by_the_consumer_it_names() -> None:
    assert (given(FAILED).consumer, given(FAILED).position, given(FAILED).state) == ("invoicer", 42, "open")
    assert decide_failure(RetryProcessing(reason="price added"), given(FAILED), OFFICE) == [RETRYING]
    assert given(FAILED, RETRYING).state == "retrying"


def test_a_failure_that_failed_again_is_open_again() -> None:
    again = ProcessingFailedAgain(id=FAILURE, error_type="KeyError", error="still no price")
    assert given(FAILED, RETRYING, again).state == "open"
    assert decide_failure(RetryProcessing(), given(FAILED, RETRYING, again), ADMIN) == [
        ProcessingRetryRequested(id=FAILURE, consumer="invoicer", position=42)
    ]


def test_a_failure_being_tried_again_or_resolved_is_not_tried_again() -> None:
    with pytest.raises(InvalidTransition, match=r"the failure is retrying \(it is being tried again: wait"):
        decide_failure(RetryProcessing(), given(FAILED, RETRYING), OFFICE)
    resolved = given(FAILED, RETRYING, ProcessingResolved(id=FAILURE))
    with pytest.raises(InvalidTransition, match=r"the failure is resolved \(the event has been processed\)"):
        decide_failure(RetryProcessing(), resolved, OFFICE)


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
def test_only_the_office_has_an_event_tried_again(ctx: Context) -> None:
    with pytest.raises(Forbidden, match="only the office may have an event tried again"):
        decide_failure(RetryProcessing(), given(FAILED), ctx)


def test_a_failure_never_recorded_is_not_found() -> None:
    with pytest.raises(NotFound, match=f"failure {FAILURE} not found"):
        decide_failure(RetryProcessing(), given(), OFFICE)
