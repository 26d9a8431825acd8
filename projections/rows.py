"""The read models' rows, and the pure functions that evolve them from events.

Every function here is pure: ``evolve_job(row, event, position)`` takes the row as it was
(or None) and returns the row as it is after the event. The runners feed them from the
stream and store the rows; the audit's as-of folds the same functions over a job's events
up to a moment, so the past and the present are computed by one piece of code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
from msgspec import Struct, structs

from events.contract import (
    Address,
    CustomerDetailsChanged,
    CustomerRegistered,
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    EfacturaAccepted,
    EfacturaAnswerStored,
    EfacturaAttemptFailed,
    EfacturaDocumentPrepared,
    EfacturaRefused,
    EfacturaUploaded,
    EfacturaUploadStarted,
    Event,
    HoursPackageSold,
    InvoiceCredited,
    InvoiceDocumentStored,
    InvoiceEvent,
    InvoiceIssued,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCancelled,
    JobCompleted,
    JobDetailsChanged,
    JobEvent,
    JobInvoiced,
    JobNotBilled,
    JobPutOnHold,
    JobQuoted,
    JobReopened,
    JobRequested,
    JobRescheduled,
    JobResumed,
    JobScheduled,
    JobSignedOff,
    JobTaken,
    JobUnassigned,
    KsefAccepted,
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefDocumentPrepared,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
    MaterialUsed,
    MessageDelivered,
    MessageQueued,
    NoteAdded,
    OccurrenceGenerated,
    OccurrenceWithdrawn,
    PaymentApplied,
    PaymentReminderDue,
    PhotoAttached,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    QuoteAccepted,
    QuoteRejected,
    RecurringPlan,
    RecurringServiceChanged,
    RecurringServiceDefined,
    RecurringServiceEnded,
    RedeliveryRequested,
    StatementLineUnmatched,
    Status,
    TechnicianDeactivated,
    TechnicianDetailsChanged,
    TechnicianReactivated,
    TechnicianRegistered,
    TimeEntryAdded,
    TimeEntryCorrected,
    TokenIssued,
    TokenRevoked,
    WorkStarted,
    WorkStopped,
)


def iso(moment: datetime | None) -> str:
    """A UTC timestamp that sorts as text the same way it sorts in time (SQLite and PostgreSQL)."""
    if moment is None:
        return ""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"  # strftime's 3x cost


def one_line(address: Address | None) -> str:
    if address is None:
        return ""
    return f"{address.street}, {address.postal_code} {address.city}, {address.country}"


# --- the job board ------------------------------------------------------------------------


class Entry(Struct, array_like=True):
    minutes: int
    billable: bool


class Photo(Struct, kw_only=True):
    id: UUID
    name: str  # in the documents object store
    caption: str = ""
    media_type: str = "image/jpeg"


class JobRow(Struct, kw_only=True):
    """One job on the board, as it stands after the event at ``position``."""

    id: UUID
    status: Status
    customer_id: UUID
    job_type: str
    source: str
    site: str
    site_address: Address | None
    description: str
    scope: str
    priority: str
    sla_deadline: datetime | None
    billing_kind: str
    location: str
    estimate_minutes: int | None
    requested_at: datetime
    technician_ids: list[UUID] = []
    scheduled_start: datetime | None = None
    duration_minutes: int = 0
    entries: dict[str, Entry] = {}
    running_since: datetime | None = None
    visits: int = 0
    notes: int = 0
    materials: int = 0
    quote_amount: str = ""
    quote_status: str = ""
    completed_at: datetime | None = None
    first_visit: bool | None = None
    signed_by: str = ""
    signature: str = ""  # the drawn signature, a data: URL
    photos: list[Photo] = []
    reason: str = ""
    invoice_id: UUID | None = None
    invoice_number: str = ""
    proforma_id: UUID | None = None
    proforma_number: str = ""
    billing_note: str = ""  # why a completed job has no invoice (warranty, internal, held)
    last_event: str = ""
    last_change_at: datetime | None = None
    version: int = 0
    position: int = 0

    @property
    def minutes_logged(self) -> int:
        return sum(entry.minutes for entry in self.entries.values())

    @property
    def billable_minutes(self) -> int:
        return sum(entry.minutes for entry in self.entries.values() if entry.billable)


def evolve_job(row: JobRow | None, event: JobEvent, position: int) -> JobRow | None:
    """The job's row after ``event``; None only for an event of a job the board never saw."""
    if isinstance(event, JobRequested):
        row = JobRow(
            id=event.id,
            status=Status.NEW,
            customer_id=event.customer_id,
            job_type=event.job_type,
            source=event.source.value,
            site=one_line(event.site_address),
            site_address=event.site_address,
            description=event.description,
            scope=event.scope,
            priority=event.priority.value,
            sla_deadline=event.sla_deadline,
            billing_kind=event.billing_kind.value,
            location=event.location.value,
            estimate_minutes=event.estimate_minutes,
            requested_at=_when(event),
        )
    elif row is None:
        return None
    else:
        row = structs.replace(row, **_job_changes(row, event))
    return structs.replace(
        row, last_event=type(event).__name__, last_change_at=_when(event), version=row.version + 1, position=position
    )


def _job_changes(row: JobRow, event: JobEvent) -> dict[str, object]:
    match event:
        case JobDetailsChanged():
            changes: dict[str, object] = {}
            if event.site_address is not None:
                changes.update(site_address=event.site_address, site=one_line(event.site_address))
            if event.description is not None:
                changes["description"] = event.description
            if event.scope is not None:
                changes["scope"] = event.scope
            return changes
        case JobQuoted():
            return {"quote_amount": str(event.amount), "quote_status": "quoted"}
        case QuoteAccepted():
            return {"quote_status": "accepted"}
        case QuoteRejected():
            return {"quote_status": "rejected", "reason": event.reason}
        case JobScheduled() | JobRescheduled():
            return {
                "status": Status.SCHEDULED if row.status is Status.NEW else row.status,
                "technician_ids": list(event.technician_ids),
                "scheduled_start": event.start,
                "duration_minutes": event.duration_minutes,
            }
        case JobUnassigned():
            return {"status": Status.NEW, "technician_ids": [], "scheduled_start": None, "reason": event.reason}
        case JobTaken():
            return {
                "status": Status.SCHEDULED,
                "technician_ids": [event.technician_id],
                "scheduled_start": event.start,
                "duration_minutes": event.duration_minutes,
            }
        case WorkStarted():
            return {"status": Status.IN_PROGRESS, "running_since": event.started_at, "visits": row.visits + 1}
        case WorkStopped():
            entries = {**row.entries, str(event.entry_id): Entry(event.minutes, event.billable)}
            return {"entries": entries, "running_since": None}
        case TimeEntryAdded():
            return {"entries": {**row.entries, str(event.entry_id): Entry(event.minutes, event.billable)}}
        case TimeEntryCorrected():
            return {"entries": {**row.entries, str(event.entry_id): Entry(event.minutes, event.billable)}}
        case NoteAdded():
            return {"notes": row.notes + 1}
        case MaterialUsed():
            return {"materials": row.materials + 1}
        case JobCompleted():
            return {
                "status": Status.COMPLETED,
                "completed_at": _when(event),
                "first_visit": event.first_visit and row.visits <= 1,
                "running_since": None,
            }
        case JobSignedOff():
            return {"signed_by": event.signed_by, "signature": event.signature}
        case PhotoAttached():
            photos = [p for p in row.photos if p.id != event.photo_id]
            return {
                "photos": [
                    *photos,
                    Photo(id=event.photo_id, name=event.name, caption=event.caption, media_type=event.media_type),
                ]
            }
        case JobPutOnHold():
            return {"status": Status.ON_HOLD, "reason": event.reason}
        case JobResumed():
            return {"status": event.status, "reason": ""}
        case JobCancelled():
            return {"status": Status.CANCELLED, "reason": event.reason, "running_since": None}
        case JobReopened():
            return {"status": event.status, "reason": event.reason, "completed_at": None, "billing_note": ""}
        case JobInvoiced():
            return {
                "status": Status.INVOICED,
                "invoice_id": event.invoice_id,
                "invoice_number": event.number,
                "billing_note": "",
            }
        case JobNotBilled():
            return {"billing_note": f"not billed: {event.reason}"}
        case InvoicingHeld():
            return {"billing_note": f"invoice held: {event.reason}"}
        case InvoicingReleaseRequested():
            return {"billing_note": "invoicing again, as the office asked"}
    return {}


def _when(event: Event) -> datetime:
    return event.meta.occurred_at if event.meta is not None else datetime.fromtimestamp(0, UTC)


# --- customers, technicians, users -----------------------------------------------------


class CustomerRow(Struct, kw_only=True):
    id: UUID
    name: str
    email: str
    phone: str
    billing_address: Address
    site_addresses: list[Address]
    vat_id: str
    language: str
    currency: str
    payment_terms_days: int
    price_list_id: UUID | None
    position: int
    prepaid_minutes: int = 0  # left of the prepaid hours packages
    prepaid_low: bool = False


def evolve_customer(row: CustomerRow | None, event: Event, position: int) -> CustomerRow | None:
    if isinstance(event, CustomerRegistered):
        fields = {
            f: getattr(event, f)
            for f in CustomerRow.__struct_fields__
            if f not in ("position", "prepaid_minutes", "prepaid_low")
        }
        return CustomerRow(**fields, position=position)
    if row is None:
        return row
    if isinstance(event, HoursPackageSold):
        return structs.replace(
            row, prepaid_minutes=row.prepaid_minutes + int(event.hours * 60), prepaid_low=False, position=position
        )
    if isinstance(event, PrepaidHoursConsumed):
        return structs.replace(row, prepaid_minutes=event.balance_minutes, position=position)
    if isinstance(event, PrepaidBalanceLow):
        return structs.replace(row, prepaid_low=True, position=position)
    if not isinstance(event, CustomerDetailsChanged):
        return row
    changed = {
        f: getattr(event, f)
        for f in event.__struct_fields__
        if f in CustomerRow.__struct_fields__ and f != "id" and getattr(event, f) is not None
    }
    return structs.replace(row, **changed, position=position)


class TechnicianRow(Struct, kw_only=True):
    id: UUID
    name: str
    skills: list[str]
    email: str
    phone: str
    active: bool
    position: int


def evolve_technician(row: TechnicianRow | None, event: Event, position: int) -> TechnicianRow | None:
    match event:
        case TechnicianRegistered():
            return TechnicianRow(
                id=event.id,
                name=event.name,
                skills=list(event.skills),
                email=event.email,
                phone=event.phone,
                active=True,
                position=position,
            )
        case TechnicianDetailsChanged() if row is not None:
            changed = {
                f: getattr(event, f) for f in ("name", "skills", "email", "phone") if getattr(event, f) is not None
            }
            return structs.replace(row, **changed, position=position)
        case TechnicianDeactivated() if row is not None:
            return structs.replace(row, active=False, position=position)
        case TechnicianReactivated() if row is not None:
            return structs.replace(row, active=True, position=position)
    return row


class UserRow(Struct, kw_only=True):
    """Who a token belongs to; the read API authenticates against these rows."""

    token_id: UUID
    token_hash: str
    user_name: str
    role: str
    technician_id: UUID | None
    revoked: bool


def evolve_user(row: UserRow | None, event: Event) -> UserRow | None:
    if isinstance(event, TokenIssued):
        return UserRow(
            token_id=event.id,
            token_hash=event.token_hash,
            user_name=event.user_name,
            role=event.role.value,
            technician_id=event.technician_id,
            revoked=False,
        )
    if isinstance(event, TokenRevoked) and row is not None:
        return structs.replace(row, revoked=True)
    return row


# --- history and time ----------------------------------------------------------------------


class HistoryRow(Struct, kw_only=True):
    """One event of a job, for its timeline."""

    job_id: UUID
    position: int
    version: int
    occurred_at: datetime | None
    event_type: str
    actor_id: str
    actor_role: str
    summary: str


def history_row(event: JobEvent, position: int, version: int) -> HistoryRow:
    meta = event.meta
    return HistoryRow(
        job_id=event.id,
        position=position,
        version=version,
        occurred_at=meta.occurred_at if meta else None,
        event_type=type(event).__name__,
        actor_id=meta.actor_id if meta else "",
        actor_role=meta.actor_role if meta else "",
        summary=summary(event),
    )


_NOT_SUMMED_UP = frozenset({"id", "meta", "signature"})
_AS_THEY_ARE = (str, int)  # what msgspec.to_builtins leaves unchanged (StrEnums, bools too)


def summary(event: Event) -> str:
    """The event's own fields in a line a person reads (ids and metadata left out): each as
    ``msgspec.to_builtins`` gives it, converting only what it would change (a rebuild runs
    this for every job event, and converting whole events was a fifth of its time)."""
    parts = []
    for key in event.__struct_fields__:
        if key in _NOT_SUMMED_UP:
            continue
        value = getattr(event, key)
        if not isinstance(value, _AS_THEY_ARE):
            value = msgspec.to_builtins(value, enc_hook=str)
        if value not in (None, "", [], {}):
            parts.append(f"{key.replace('_', ' ')}: {_plain(value)}")
    shown = ", ".join(parts)
    return shown if len(shown) <= 300 else shown[:297] + "..."


def _plain(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v)
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    return str(value)


# --- invoices -----------------------------------------------------------------------------


class InvoiceRow(Struct, kw_only=True):
    """One invoice as the office and the accountant list it; ``issued`` is the whole event."""

    id: UUID
    number: str
    job_id: UUID
    customer_id: UUID
    customer: str
    issue_date: str
    due_date: str
    currency: str
    gross_total: str
    status: str = "issued"  # issued, partially paid, paid (overdue is worked out when read)
    paid: str = "0.00"
    payments: int = 0
    last_paid_on: str = ""
    reminder: str = ""  # the last dunning step recorded: friendly, firm, escalation
    credited: str = "0.00"
    credit_notes: list[str] = []
    credit_note_ids: list[UUID] = []
    document: str = ""  # the PDF's name in the documents object store, once rendered
    document_sha256: str = ""
    xml_document: str = ""  # the EN 16931 UBL XML's
    xml_sha256: str = ""
    isdoc_document: str = ""  # the ISDOC's, a Czech seller's only
    isdoc_sha256: str = ""
    position: int = 0
    issued: InvoiceIssued | None = None


def evolve_invoice(row: InvoiceRow | None, event: InvoiceEvent, position: int) -> InvoiceRow | None:
    match event:
        case InvoiceIssued():
            return InvoiceRow(
                id=event.id,
                number=event.number,
                job_id=event.job_id,
                customer_id=event.customer_id,
                customer=event.buyer.name,
                issue_date=event.issue_date.isoformat(),
                due_date=event.due_date.isoformat(),
                currency=event.currency,
                gross_total=str(event.gross_total),
                position=position,
                issued=event,
            )
        case PaymentApplied() if row is not None:
            paid = Decimal(row.paid) + event.amount
            row = structs.replace(
                row,
                paid=str(paid),
                payments=row.payments + 1,
                last_paid_on=max(row.last_paid_on, event.received_on.isoformat()),
                position=position,
            )
            return structs.replace(row, status=_settlement(row))
        case InvoiceCredited() if row is not None:
            row = structs.replace(
                row,
                credited=str(Decimal(row.credited) + event.amount),
                credit_notes=[*row.credit_notes, event.number],
                credit_note_ids=[*row.credit_note_ids, event.credit_note_id],
                position=position,
            )
            return structs.replace(row, status=_settlement(row))
        case PaymentReminderDue() if row is not None:
            return structs.replace(
                row, reminder=f"{event.level} ({event.days_overdue} days overdue)", position=position
            )
        case InvoiceDocumentStored() if row is not None and event.media_type == "application/pdf":
            return structs.replace(row, document=event.name, document_sha256=event.sha256, position=position)
        case InvoiceDocumentStored() if row is not None and event.media_type == "application/xml":
            return structs.replace(row, xml_document=event.name, xml_sha256=event.sha256, position=position)
        case InvoiceDocumentStored() if row is not None and event.name.endswith(".isdoc"):
            return structs.replace(row, isdoc_document=event.name, isdoc_sha256=event.sha256, position=position)
    return row


def _settlement(row: InvoiceRow) -> str:
    gross, paid, credited = Decimal(row.gross_total), Decimal(row.paid), Decimal(row.credited)
    if credited >= gross:
        return "credited"
    if paid + credited >= gross:
        return "paid"
    return "partially paid" if paid else "issued"


def outstanding(row: InvoiceRow) -> Decimal:
    """What is still owed on the invoice (negative: the customer's credit)."""
    return Decimal(row.gross_total) - Decimal(row.paid) - Decimal(row.credited)


def invoice_status(row: InvoiceRow, today: str) -> str:
    """The status as of a day: an unpaid invoice past its due date is overdue."""
    if row.status not in ("paid", "credited") and row.due_date < today:
        return "overdue"
    return row.status


def credit(row: InvoiceRow) -> Decimal:
    """What the customer paid beyond the invoice: their credit."""
    return max(Decimal(0), Decimal(row.paid) - Decimal(row.gross_total))


class UnmatchedRow(Struct, kw_only=True):
    """A bank credit no rule matched: the office's review queue."""

    statement_id: UUID
    line: int
    amount: str
    currency: str
    payer: str
    text: str
    reason: str
    position: int


def unmatched_row(event: StatementLineUnmatched, position: int) -> UnmatchedRow:
    return UnmatchedRow(
        statement_id=event.id,
        line=event.line,
        amount=str(event.amount),
        currency=event.currency,
        payer=event.payer,
        text=event.text,
        reason=event.reason,
        position=position,
    )


class TimeRow(Struct, kw_only=True):
    """One time entry: who worked on which job, when, how long, billable or not."""

    entry_id: UUID
    job_id: UUID
    technician_id: UUID
    started_at: datetime
    minutes: int
    billable: bool
    activity: str
    manual: bool
    corrected: bool
    position: int


def evolve_time(row: TimeRow | None, event: JobEvent, position: int) -> TimeRow | None:
    match event:
        case WorkStopped():
            return TimeRow(
                entry_id=event.entry_id,
                job_id=event.id,
                technician_id=event.technician_id,
                started_at=event.started_at,
                minutes=event.minutes,
                billable=event.billable,
                activity=event.activity,
                manual=False,
                corrected=False,
                position=position,
            )
        case TimeEntryAdded():
            return TimeRow(
                entry_id=event.entry_id,
                job_id=event.id,
                technician_id=event.technician_id,
                started_at=event.started_at,
                minutes=event.minutes,
                billable=event.billable,
                activity=event.activity,
                manual=True,
                corrected=False,
                position=position,
            )
        case TimeEntryCorrected() if row is not None:
            return structs.replace(
                row, minutes=event.minutes, billable=event.billable, corrected=True, position=position
            )
    return row


def time_entry_id(event: JobEvent) -> UUID | None:
    if isinstance(event, WorkStopped | TimeEntryAdded | TimeEntryCorrected):
        return event.entry_id
    return None


class MessageRow(Struct, kw_only=True):
    """A message the notifier delivers, as the office follows it: queued, sending, delivered,
    retrying, failed (given up) or uncertain (the sender stopped mid-attempt)."""

    id: UUID
    channel: str
    purpose: str
    recipient: str
    subject: str
    about_kind: str
    about_id: UUID | None
    state: str = "queued"
    attempts: int = 0
    detail: str = ""
    updated_at: str = ""
    position: int = 0


def evolve_message(row: MessageRow | None, event: Event, position: int) -> MessageRow | None:
    when = iso(event.meta.occurred_at) if event.meta else ""
    match event:
        case MessageQueued():
            return MessageRow(
                id=event.id,
                channel=event.channel,
                purpose=event.purpose,
                recipient=event.recipient,
                subject=event.subject,
                about_kind=event.about_kind,
                about_id=event.about_id,
                updated_at=when,
                position=position,
            )
    if row is None:
        return None
    row = structs.replace(row, updated_at=when, position=position)
    match event:
        case DeliveryAttempted():
            return structs.replace(row, state="sending", attempts=event.attempt)
        case MessageDelivered():
            return structs.replace(row, state="delivered", detail=event.detail)
        case DeliveryFailed():
            return structs.replace(row, state="retrying" if event.retry_at else "failed", detail=event.error)
        case DeliveryUncertain():
            return structs.replace(row, state="uncertain", detail="the sender stopped during the attempt")
        case RedeliveryRequested():
            return structs.replace(
                row, state="queued", detail=f"sent again at the office's request {event.reason}".strip()
            )
    return row


class RecurrenceRow(Struct, kw_only=True):
    """A recurring service as the office lists it: its plan and its jobs still to come."""

    id: UUID
    plan: RecurringPlan
    ended_after: str = ""
    jobs: dict[str, UUID] = {}  # occurrence (UTC ISO) -> job, withdrawn ones left out
    position: int = 0


def evolve_recurrence_row(row: RecurrenceRow | None, event: Event, position: int) -> RecurrenceRow | None:
    match event:
        case RecurringServiceDefined():
            return RecurrenceRow(id=event.id, plan=event.plan, position=position)
    if row is None:
        return None
    row = structs.replace(row, position=position)
    match event:
        case RecurringServiceChanged():
            return structs.replace(row, plan=event.plan)
        case RecurringServiceEnded():
            return structs.replace(row, ended_after=iso(event.after))
        case OccurrenceGenerated():
            return structs.replace(row, jobs={**row.jobs, iso(event.at): event.job_id})
        case OccurrenceWithdrawn():
            return structs.replace(row, jobs={k: v for k, v in row.jobs.items() if k != iso(event.at)})
    return row


# --- KSeF ---------------------------------------------------------------------------------

# A document's KSeF state as the office filters by it: "none" is a document with no KSeF
# aggregate (not Polish, or KSeF not configured when it was issued), never a stored state.
KSEF_STATES = (
    "none",
    "waiting",
    "sending",
    "retrying",
    "sent",
    "accepted",
    "refused",
    "held",
    "offline",
    "deadline_near",
)


class KsefRow(Struct, kw_only=True):
    """A Polish document's way through KSeF, as the office follows it (its aggregate's events
    folded): its state, and what the state's event said."""

    id: UUID  # the document's (an invoice's or a credit note's) own
    document_kind: str
    number: str
    invoice_type: str = "VAT"
    issue_date: str = ""
    prepared_at: str = ""  # UTC ISO, when the FA(3) file was prepared
    state: str = "waiting"
    attempt: int = 0
    retry_at: str = ""
    ksef_number: str = ""
    accepted_at: str = ""
    duplicate: bool = False
    upo: str = ""  # the UPO's name in the documents' store
    upo_sha256: str = ""
    code: int | None = None  # KSeF's refusal code
    field: str = ""  # what held the document
    reason: str = ""  # why it is held, refused, retried or offline
    details: list[str] = []
    offline_mode: str = ""  # offline24, unavailable, failure
    deadline: str = ""  # UTC ISO: by when an offline document must be in KSeF
    deadline_near: bool = False
    position: int = 0


_OFFLINE = ("offline", "deadline_near")


def _unless_offline(row: KsefRow, state: str) -> str:
    """An offline document stays offline (its deadline kept) until KSeF accepts or refuses it:
    its sends and retries are the row's attempt and retry_at."""
    return row.state if row.state in _OFFLINE else state


def evolve_ksef(row: KsefRow | None, event: Event, position: int) -> KsefRow | None:
    """The document's KSeF row after ``event``; None for an event of a document never prepared
    nor held. A held document's first KSeF event is its hold (its FA(3) was never prepared): its
    number and kind are the projector's to fill from the document's own row."""
    if isinstance(event, KsefHeld) and row is None:
        return KsefRow(
            id=event.id,
            document_kind="",
            number="",
            state="held",
            field=event.field,
            reason=event.reason,
            position=position,
        )
    if isinstance(event, KsefDocumentPrepared):
        return KsefRow(
            id=event.id,
            document_kind=event.document_kind,
            number=event.number,
            invoice_type=event.invoice_type,
            issue_date=event.issue_date.isoformat(),
            prepared_at=iso(event.meta.occurred_at) if event.meta else "",
            position=position,
        )
    if row is None:
        return None
    row = structs.replace(row, position=position)
    match event:
        case KsefHeld():
            return structs.replace(row, state="held", field=event.field, reason=event.reason)
        case KsefSendStarted():
            return structs.replace(row, state=_unless_offline(row, "sending"), attempt=event.attempt, retry_at="")
        case KsefAttemptFailed():
            return structs.replace(
                row,
                state=_unless_offline(row, "retrying"),
                attempt=event.attempt,
                reason=event.reason if row.state not in _OFFLINE else row.reason,
                retry_at=iso(event.retry_at),
            )
        case KsefSent():
            return structs.replace(row, state=_unless_offline(row, "sent"), attempt=event.attempt, retry_at="")
        case KsefAccepted():
            return structs.replace(
                row,
                state="accepted",
                ksef_number=event.ksef_number,
                accepted_at=iso(event.accepted_at),
                duplicate=event.duplicate,
                reason="",
                retry_at="",
                deadline_near=False,
            )
        case KsefUpoStored():
            return structs.replace(row, upo=event.upo_name, upo_sha256=event.upo_sha256)
        case KsefRefused():
            return structs.replace(
                row, state="refused", code=event.code, reason=event.reason, details=list(event.details), retry_at=""
            )
        case KsefIssuedOffline():
            return structs.replace(
                row, state="offline", offline_mode=event.mode, reason=event.reason, deadline=iso(event.deadline)
            )
        case KsefDeadlineNear() if row.state not in ("accepted", "refused", "held"):
            return structs.replace(row, state="deadline_near", deadline=iso(event.deadline), deadline_near=True)
    return row


class EfacturaRow(Struct, kw_only=True):
    """A Romanian document's way through RO e-Factura, as the office follows it (its
    aggregate's events folded): its state, ANAF's upload index and what ANAF said."""

    id: UUID  # the document's own
    document_kind: str
    number: str
    issue_date: str = ""
    state: str = "waiting"  # waiting, uploading, retrying, uploaded, accepted, refused
    attempt: int = 0
    retry_at: str = ""
    reason: str = ""  # the last transient failure
    upload_index: str = ""  # ANAF's index_incarcare
    download_id: str = ""
    messages: list[str] = []  # ANAF's, for a refusal
    answer: str = ""  # ANAF's answer (the signed ZIP, or the error list) in the documents' store
    position: int = 0


def evolve_efactura(row: EfacturaRow | None, event: Event, position: int) -> EfacturaRow | None:
    """The document's e-Factura row after ``event``; None for a document never prepared."""
    if isinstance(event, EfacturaDocumentPrepared):
        return EfacturaRow(
            id=event.id,
            document_kind=event.document_kind,
            number=event.number,
            issue_date=event.issue_date.isoformat(),
            position=position,
        )
    if row is None:
        return None
    row = structs.replace(row, position=position)
    match event:
        case EfacturaUploadStarted():
            return structs.replace(row, state="uploading", attempt=event.attempt, retry_at="")
        case EfacturaAttemptFailed():
            state = "retrying" if row.state in ("waiting", "uploading", "retrying") else row.state
            return structs.replace(
                row, state=state, attempt=event.attempt, reason=event.reason, retry_at=iso(event.retry_at)
            )
        case EfacturaUploaded():
            return structs.replace(row, state="uploaded", upload_index=event.upload_index, reason="", retry_at="")
        case EfacturaAccepted():
            return structs.replace(
                row, state="accepted", upload_index=event.upload_index, download_id=event.download_id, retry_at=""
            )
        case EfacturaRefused():
            return structs.replace(
                row,
                state="refused",
                upload_index=event.upload_index or row.upload_index,
                download_id=event.download_id,
                messages=list(event.messages) or [event.state],
                retry_at="",
            )
        case EfacturaAnswerStored():
            return structs.replace(row, answer=event.name)
    return row


def efactura_summary(row: EfacturaRow | None) -> dict[str, object]:
    """The document's e-Factura state as the read API gives it (``efactura`` on an invoice)."""
    if row is None:
        return {"state": "none", "upload_index": "", "messages": [], "retry_at": ""}
    return {
        "state": row.state,
        "upload_index": row.upload_index,
        "messages": list(row.messages),
        "retry_at": row.retry_at,
        "reason": row.reason,
        "answer": row.answer,
    }


def ksef_summary(row: KsefRow | None) -> dict[str, object]:
    """The document's KSeF state as the read API gives it (``ksef`` on an invoice)."""
    if row is None:
        return {"state": "none", "number": "", "accepted_at": "", "reason": "", "deadline": "", "upo": ""}
    reason = row.reason
    if row.state == "held" and row.field:
        reason = f"{row.field}: {row.reason}"
    elif row.state == "refused" and row.code is not None:
        reason = f"KSeF {row.code}: {row.reason}" + "".join(f"; {d}" for d in row.details)
    return {
        "state": row.state,
        "number": row.ksef_number,
        "accepted_at": row.accepted_at,
        "reason": reason,
        "deadline": row.deadline,
        "upo": row.upo,
        "offline": row.offline_mode,
        "attempt": row.attempt,
        "retry_at": row.retry_at,
        "deadline_near": row.deadline_near,
    }
