"""Recurring services: the plan, and the occurrences generated from it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import Meta, Struct

from events.contract.base import Command, Event
from events.contract.values import (
    Address,
    BillingKind,
    Code,
    LongText,
    PositiveMinutes,
    Reason,
    TimeZone,
    UtcTime,
    whole,
)

LocalTime = Annotated[datetime, Meta(tz=False)]
Rule = Annotated[str, Meta(min_length=6, max_length=300, pattern=whole(r"[A-Z0-9=;,+-]+"))]


class RecurrenceEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "recurrence"


class RecurringPlan(Struct, frozen=True, kw_only=True):
    """What each occurrence of a recurring service becomes: a job scheduled at the rule's times.

    ``rule`` is an RFC 5545 RRULE (``FREQ=MONTHLY;BYDAY=1MO``), read from ``start`` in the local
    ``timezone``: a visit at 09:00 stays at 09:00 across daylight-saving changes."""

    customer_id: UUID
    site_address: Address | None
    job_type: str
    description: str
    scope: str = ""
    technician_ids: list[UUID]
    rule: str
    start: datetime  # local wall-clock time, no offset
    timezone: str
    duration_minutes: int
    horizon_days: int
    billing_kind: BillingKind = BillingKind.PAID


class RecurringServiceDefined(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    plan: RecurringPlan


class RecurringServiceChanged(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    """The plan from now on: future occurrences are moved, added or withdrawn to match it."""

    plan: RecurringPlan
    reason: str = ""


class RecurringServiceEnded(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    """No occurrences after ``after`` (UTC); the future ones already generated are cancelled."""

    after: datetime
    reason: str = ""


class OccurrenceGenerated(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    at: datetime  # UTC
    job_id: UUID
    plan_version: int  # the plan it was made (or last moved) to


class OccurrenceWithdrawn(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    at: datetime
    job_id: UUID
    reason: str = ""


RecurrenceEvents = (
    RecurringServiceDefined
    | RecurringServiceChanged
    | RecurringServiceEnded
    | OccurrenceGenerated
    | OccurrenceWithdrawn
)


class DefineRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A visit that repeats: ``rule`` is an RFC 5545 RRULE without DTSTART (``FREQ=WEEKLY;BYDAY=MO``,
    ``FREQ=MONTHLY;BYMONTHDAY=1;COUNT=12``), ``start`` the first visit's local time in ``timezone``.
    The jobs are generated and scheduled ``horizon_days`` ahead."""

    customer_id: UUID
    job_type: Code
    description: LongText
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    rule: Rule
    start: LocalTime
    timezone: TimeZone = "UTC"
    duration_minutes: PositiveMinutes = 60
    horizon_days: Annotated[int, Meta(ge=1, le=366)] = 60
    site_address: Address | None = None
    scope: LongText = ""
    billing_kind: BillingKind = BillingKind.PAID


class ChangeRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change what is given; the future occurrences follow (moved, added or withdrawn)."""

    job_type: Code | None = None
    description: LongText | None = None
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)] | None = None
    rule: Rule | None = None
    start: LocalTime | None = None
    timezone: TimeZone | None = None
    duration_minutes: PositiveMinutes | None = None
    horizon_days: Annotated[int, Meta(ge=1, le=366)] | None = None
    site_address: Address | None = None
    scope: LongText | None = None
    reason: LongText = ""


class EndRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """No visits after ``after`` (default: now); future jobs already generated are cancelled."""

    after: UtcTime | None = None
    reason: Reason


class RecordOccurrence(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The generator's: an occurrence's job was created and scheduled (or moved) to the plan."""

    at: UtcTime
    job_id: UUID


class WithdrawOccurrence(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    at: UtcTime
    job_id: UUID
    reason: LongText = ""
