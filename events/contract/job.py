"""The job, from request to invoice: its events, its commands and their union."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import Meta

from events.contract.base import Bound, Command, Event
from events.contract.values import (
    Address,
    BillingKind,
    Code,
    Location,
    LongText,
    Minutes,
    Money,
    OptionalText,
    PositiveMinutes,
    Priority,
    Quantity,
    Reason,
    Source,
    Status,
    Text,
    TimeEntryMinutes,
    UtcTime,
    line,
    lines,
    whole,
)


class JobEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "job"


class JobRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    source: Source
    customer_id: UUID
    site_address: Address | None
    job_type: str
    description: str
    scope: str = ""
    priority: Priority = Priority.NORMAL
    sla_deadline: datetime | None = None
    billing_kind: BillingKind = BillingKind.PAID
    location: Location = Location.ON_SITE
    estimate_minutes: int | None = None


class JobDetailsChanged(JobEvent, frozen=True, kw_only=True, tag=True):
    site_address: Address | None = None
    description: str | None = None
    scope: str | None = None


class JobQuoted(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID
    amount: Decimal
    currency: str = ""  # empty: the customer's currency
    valid_until: datetime | None = None
    note: str = ""


class QuoteAccepted(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID


class QuoteRejected(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID
    reason: str = ""


class JobScheduled(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_ids: list[UUID]
    start: datetime
    duration_minutes: int


class JobRescheduled(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_ids: list[UUID]
    start: datetime
    duration_minutes: int
    reason: str = ""


class JobUnassigned(JobEvent, frozen=True, kw_only=True, tag=True):
    """Back to the open pool, for any technician to take."""

    reason: str = ""


class JobTaken(JobEvent, frozen=True, kw_only=True, tag=True):
    """A technician took the job from the open pool."""

    technician_id: UUID
    start: datetime
    duration_minutes: int


class WorkStarted(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_id: UUID
    entry_id: UUID
    started_at: datetime


class WorkStopped(JobEvent, frozen=True, kw_only=True, tag=True):
    """Closes the running time entry of this technician on this job."""

    technician_id: UUID
    entry_id: UUID
    started_at: datetime
    stopped_at: datetime
    minutes: int
    billable: bool = True
    activity: str = ""


class TimeEntryAdded(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_id: UUID
    entry_id: UUID
    started_at: datetime
    minutes: int
    billable: bool = True
    activity: str = ""
    note: str = ""


class TimeEntryCorrected(JobEvent, frozen=True, kw_only=True, tag=True):
    entry_id: UUID
    minutes: int
    billable: bool
    reason: str


class NoteAdded(JobEvent, frozen=True, kw_only=True, tag=True):
    text: str


class MaterialUsed(JobEvent, frozen=True, kw_only=True, tag=True):
    code: str
    description: str
    quantity: Decimal
    unit: str = "piece"
    unit_price: Decimal | None = None
    billable: bool = True
    discount_percent: Decimal = Decimal(0)


class SlaAtRisk(JobEvent, frozen=True, kw_only=True, tag=True):
    """An urgent job still open close to (or past) its SLA deadline: the office is alerted once
    per deadline."""

    deadline: datetime
    minutes_left: int  # negative once the deadline has passed


class PhotoAttached(JobEvent, frozen=True, kw_only=True, tag=True):
    """A photo taken on the job, kept in the documents object store under ``name``."""

    photo_id: UUID
    name: str
    media_type: str
    size: int
    sha256: str
    caption: str = ""


class JobCompleted(JobEvent, frozen=True, kw_only=True, tag=True):
    summary: str
    first_visit: bool = True


class JobSignedOff(JobEvent, frozen=True, kw_only=True, tag=True):
    signed_by: str
    signature: str = ""  # a data: URL of the drawn signature, or empty


class JobPutOnHold(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str
    previous_status: Status


class JobResumed(JobEvent, frozen=True, kw_only=True, tag=True):
    status: Status


class JobCancelled(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str


class JobReopened(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str
    status: Status


class InterimInvoiceRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for the work to date on a long job to be invoiced now."""

    request_id: UUID


class InterimInvoiced(JobEvent, frozen=True, kw_only=True, tag=True):
    """Work billed ahead of completion (with the interim invoice, in one batch): the final
    invoice bills only what came after."""

    invoice_id: UUID
    number: str
    entries: list[UUID]  # time entries billed
    materials: int  # materials billed so far (the first n recorded)
    visits: int  # visits whose call-out fee is billed


class JobInvoiced(JobEvent, frozen=True, kw_only=True, tag=True):
    """Recorded by the invoicer in the same atomic batch as the invoice."""

    invoice_id: UUID
    number: str


class JobNotBilled(JobEvent, frozen=True, kw_only=True, tag=True):
    """A completed job that gets no invoice, and why (warranty, internal); its cost is kept."""

    reason: str
    cost: Decimal = Decimal(0)
    currency: str = ""


class InvoicingHeld(JobEvent, frozen=True, kw_only=True, tag=True):
    """The invoicer could not price the job (say, an activity missing from the price list)."""

    reason: str


class InvoicingReleaseRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    """The office asks the invoicer to try a held job again (its cause fixed, say)."""

    note: str = ""


JobEvents = (
    JobRequested
    | JobDetailsChanged
    | JobQuoted
    | QuoteAccepted
    | QuoteRejected
    | JobScheduled
    | JobRescheduled
    | JobUnassigned
    | JobTaken
    | WorkStarted
    | WorkStopped
    | TimeEntryAdded
    | TimeEntryCorrected
    | NoteAdded
    | MaterialUsed
    | JobCompleted
    | JobSignedOff
    | JobPutOnHold
    | JobResumed
    | JobCancelled
    | JobReopened
    | JobInvoiced
    | JobNotBilled
    | InvoicingHeld
    | InvoicingReleaseRequested
    | InterimInvoiceRequested
    | InterimInvoiced
    | PhotoAttached
    | SlaAtRisk
)


class RequestJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    customer_id: UUID
    job_type: Code
    description: LongText
    source: Source = Source.PHONE
    site_address: Address | None = None
    scope: LongText = ""
    priority: Priority = Priority.NORMAL
    sla_deadline: UtcTime | None = None
    billing_kind: BillingKind = BillingKind.PAID
    location: Location = Location.ON_SITE
    estimate_minutes: Minutes | None = None


class ChangeJobDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    site_address: Address | None = None
    description: LongText | None = None
    scope: LongText | None = None


class QuoteJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: Money
    valid_until: UtcTime | None = None
    note: LongText = ""

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"))}


class AcceptQuote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class RejectQuote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: LongText = ""


class ScheduleJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    start: UtcTime
    duration_minutes: PositiveMinutes = 60


class RescheduleJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    start: UtcTime
    duration_minutes: PositiveMinutes = 60
    reason: LongText = ""


class UnassignJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: LongText = ""


class TakeJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: UtcTime | None = None
    duration_minutes: PositiveMinutes = 60


class StartWork(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_id: UUID | None = None  # a technician starts their own; the office names one
    at: UtcTime | None = None  # when, if not now: a phone that was offline sends it later


class StopWork(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_id: UUID | None = None
    at: UtcTime | None = None
    billable: bool = True
    activity: Annotated[str, line(40)] = ""


class AddTimeEntry(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    started_at: UtcTime
    minutes: TimeEntryMinutes
    technician_id: UUID | None = None
    billable: bool = True
    activity: Annotated[str, line(40)] = ""
    note: LongText = ""


class CorrectTimeEntry(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entry_id: UUID
    minutes: Annotated[int, Meta(ge=0, le=24 * 60)]
    billable: bool = True
    reason: Reason


class AddNote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, lines(10_000, 1)]


class UseMaterial(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    description: Text
    quantity: Quantity
    unit: Annotated[str, line(20, 1)] = "piece"
    unit_price: Money | None = None
    billable: bool = True
    discount_percent: Decimal = Decimal(0)

    decimals: ClassVar[dict[str, Bound]] = {
        "quantity": Bound(Decimal(0), Decimal("1e9"), low_inclusive=False),
        "unit_price": Bound(Decimal(0), Decimal("1e9")),
        "discount_percent": Bound(Decimal(0), Decimal(100)),
    }


class RequestInterimInvoice(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Invoice the work to date on a long job (the office); the invoicer issues it."""


class ReleaseInvoicing(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Have the invoicer try a held job again (the office, once the cause is fixed)."""

    note: OptionalText = ""


class AttachPhoto(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Made by the photo upload route (the photo itself is the request body), not posted as JSON."""

    photo_id: UUID
    name: str
    media_type: Annotated[str, Meta(pattern=whole(r"image/(jpeg|png|webp)"))]
    size: int
    sha256: str
    caption: Annotated[str, line(200)] = ""


class CompleteJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    summary: Annotated[str, lines(10_000, 1)]
    first_visit: bool = True


class SignOffJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    signed_by: Text
    signature: Annotated[
        str, Meta(max_length=500_000, pattern=whole(r"(data:image/(png|svg\+xml);base64,[A-Za-z0-9+/=]+)?"))
    ] = ""


class PutJobOnHold(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ResumeJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CancelJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ReopenJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class WarnSlaAtRisk(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The scheduler's: flag an open urgent job whose SLA deadline is within ``within_minutes``."""

    within_minutes: Annotated[int, Meta(ge=0, le=60 * 24 * 7)] = 60


JobCommand = (
    RequestJob
    | ChangeJobDetails
    | QuoteJob
    | AcceptQuote
    | RejectQuote
    | ScheduleJob
    | RescheduleJob
    | UnassignJob
    | TakeJob
    | StartWork
    | StopWork
    | AddTimeEntry
    | CorrectTimeEntry
    | AddNote
    | UseMaterial
    | CompleteJob
    | SignOffJob
    | PutJobOnHold
    | ResumeJob
    | CancelJob
    | ReopenJob
    | RequestInterimInvoice
    | AttachPhoto
    | WarnSlaAtRisk
    | ReleaseInvoicing
)
