"""Consumers' failures: an event a consumer could not process, parked for the office,
and the office's retries of it."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import Meta

from events.contract.base import Command, Event

FAILURES = UUID("6b1f0c1e-2f7d-4f4e-9a51-7e0d3c2b8a94")


def failure_id(consumer: str, position: int) -> UUID:
    """One failure per consumer and stream position: recording it twice is one event."""
    return uuid.uuid5(FAILURES, f"{consumer}:{position}")


class FailureEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "failure"


class ProcessingFailed(FailureEvent, frozen=True, kw_only=True, tag=True):
    """A consumer could not process the event stored at ``position``, and trying again
    would not cure it (what would is tried again with backoff instead): it went on with the
    next event, and the office sees this one."""

    consumer: str  # the consumer's (or projection's) name: its tracking name
    position: int
    event_id: UUID | None = None  # None when the stored event could not even be read
    topic: str
    aggregate_id: str = ""
    error_type: str
    error: str


class ProcessingRetryRequested(FailureEvent, frozen=True, kw_only=True, tag=True):
    """The office asks the consumer to process the event again (its cause fixed)."""

    consumer: str
    position: int
    reason: str = ""


class ProcessingResolved(FailureEvent, frozen=True, kw_only=True, tag=True):
    """Tried again, the consumer processed the event."""

    outcome: str = ""


class ProcessingFailedAgain(FailureEvent, frozen=True, kw_only=True, tag=True):
    """Tried again, the event still could not be processed."""

    error_type: str
    error: str


FailureEvents = ProcessingFailed | ProcessingRetryRequested | ProcessingResolved | ProcessingFailedAgain


class RetryProcessing(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ask the consumer a failure names to process its event again."""

    reason: Annotated[str, Meta(max_length=500)] = ""
