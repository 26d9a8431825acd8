"""Events a consumer could not process, and the office asking for one to be tried again.

A failure is recorded by the consumer that met it (``ProcessingFailed``, its id derived
from the consumer and the stream position). The office may ask for it to be tried again
once its cause is fixed; the consumer named in it does, and records the outcome.
"""

from __future__ import annotations

from typing import assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import (
    FailureEvents,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    RetryProcessing,
    Role,
)
from services.domain.common import Context, Forbidden, InvalidTransition, NotFound


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    consumer: str = ""
    position: int = 0
    state: str = ""  # open, retrying, resolved


def evolve_failure(failure: Failure, event: FailureEvents) -> Failure:
    failure = replace(failure, version=failure.version + 1)
    match event:
        case ProcessingFailed():
            return replace(failure, consumer=event.consumer, position=event.position, state="open")
        case ProcessingRetryRequested():
            return replace(failure, state="retrying")
        case ProcessingFailedAgain():
            return replace(failure, state="open")
        case ProcessingResolved():
            return replace(failure, state="resolved")
        case _:
            assert_never(event)


FailureCommand = RetryProcessing


def decide_failure(command: FailureCommand, failure: Failure, ctx: Context) -> list[object]:
    if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
        raise Forbidden("only the office may have an event tried again")
    if failure.version == 0:
        raise NotFound("failure", failure.id)
    if failure.state != "open":
        hint = (
            "it is being tried again: wait for the outcome"
            if failure.state == "retrying"
            else "the event has been processed"
        )
        raise InvalidTransition("failure", failure.state, "try it again", hint)
    return [
        ProcessingRetryRequested(
            id=failure.id, consumer=failure.consumer, position=failure.position, reason=command.reason
        )
    ]
