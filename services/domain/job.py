"""The job: from request to completion. Rules live in decide; evolve only records facts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import (
    AcceptQuote,
    AddNote,
    Address,
    AddTimeEntry,
    AttachPhoto,
    BillingKind,
    CancelJob,
    ChangeJobDetails,
    CompleteJob,
    CorrectTimeEntry,
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCancelled,
    JobCommand,
    JobCompleted,
    JobDetailsChanged,
    JobEvent,
    JobEvents,
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
    MaterialUsed,
    NoteAdded,
    PhotoAttached,
    Priority,
    PutJobOnHold,
    QuoteAccepted,
    QuoteJob,
    QuoteRejected,
    RejectQuote,
    ReleaseInvoicing,
    ReopenJob,
    RequestInterimInvoice,
    RequestJob,
    RescheduleJob,
    ResumeJob,
    Role,
    ScheduleJob,
    SignOffJob,
    SlaAtRisk,
    StartWork,
    Status,
    StopWork,
    TakeJob,
    TimeEntryAdded,
    TimeEntryCorrected,
    UnassignJob,
    UseMaterial,
    WarnSlaAtRisk,
    WorkStarted,
    WorkStopped,
)
from events.job_status import status_after
from services.domain.common import Context, Forbidden, Invalid, InvalidTransition, NotFound, derived_id


class TimeEntry(msgspec.Struct, frozen=True, kw_only=True):
    technician_id: UUID
    started_at: datetime
    minutes: int
    billable: bool
    activity: str = ""


class Job(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    status: Status = Status.NEW
    customer_id: UUID | None = None
    site_address: Address | None = None
    description: str = ""
    job_type: str = ""
    priority: Priority = Priority.NORMAL
    sla_deadline: datetime | None = None
    billing_kind: BillingKind = BillingKind.PAID
    technician_ids: tuple[UUID, ...] = ()
    start: datetime | None = None
    duration_minutes: int = 0
    in_pool: bool = False
    pending_quote: UUID | None = None
    quote_accepted: bool = False
    running: dict[UUID, tuple[UUID, datetime]] = {}  # technician -> (entry id, started at)
    entries: dict[UUID, TimeEntry] = {}
    materials: int = 0
    notes: int = 0
    signed_off_by: str = ""
    status_before_hold: Status | None = None
    visits: int = 0
    sla_warned_for: datetime | None = None  # the deadline the office was alerted about
    invoicing_held: bool = False  # completed, and the invoicer could not price it

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def in_open_pool(self) -> bool:
        """The open pool, as the read side shows it: every new job no technician has yet."""
        return self.status is Status.NEW and not self.technician_ids


OPEN = {Status.NEW, Status.SCHEDULED, Status.IN_PROGRESS}
WORKABLE = {Status.SCHEDULED, Status.IN_PROGRESS}


def _require(job: Job, allowed: set[Status], action: str, hint: str = "") -> None:
    if job.status not in allowed:
        raise InvalidTransition("job", job.status, action, hint)


def _acting_technician(job: Job, given: UUID | None, ctx: Context, action: str) -> UUID:
    """The technician a time command is about; technicians may only act for themselves."""
    actor = ctx.actor
    if actor.role is Role.TECHNICIAN:
        if given is not None and given != actor.technician_id:
            raise Forbidden(f"a technician may {action} only for themselves")
        assert actor.technician_id is not None
        technician = actor.technician_id
    elif given is None:
        if len(job.technician_ids) != 1:
            raise Invalid("technician_id", f"name the technician: the job has {len(job.technician_ids)} assigned")
        technician = job.technician_ids[0]
    else:
        technician = given
    if technician not in job.technician_ids:
        raise Forbidden(f"technician {technician} is not assigned to this job")
    return technician


# What a technician may do: take a job from the open pool, and work the jobs assigned to
# them. The command API refuses every other job command from a technician before reading
# its body; ``authorize`` checks the job is theirs.
FOR_TECHNICIANS = (
    TakeJob,
    StartWork,
    StopWork,
    AddTimeEntry,
    CorrectTimeEntry,
    AddNote,
    AttachPhoto,
    UseMaterial,
    CompleteJob,
    SignOffJob,
    PutJobOnHold,
)


def authorize(job: Job, command: JobCommand, ctx: Context) -> None:
    """Technicians act only on jobs assigned to them, or take one from the open pool."""
    actor = ctx.actor
    if actor.role in (Role.OFFICE, Role.ADMIN):
        return
    if actor.role is Role.ACCOUNTANT:
        raise Forbidden("accountants have read-only access")
    if isinstance(command, TakeJob):
        return
    if not isinstance(command, FOR_TECHNICIANS):
        raise Forbidden(f"technicians may not {_action(command)}; ask the office")
    if actor.technician_id not in job.technician_ids:
        raise Forbidden("this job is not assigned to you")


def _action(command: JobCommand) -> str:
    name = type(command).__name__
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return words


def stop_running(
    job: Job, technician: UUID, ctx: Context, billable: bool = True, activity: str = "", at: datetime | None = None
) -> list[JobEvent]:
    """WorkStopped for the technician's running stopwatch on this job, if any."""
    running = job.running.get(technician)
    if running is None:
        return []
    entry_id, started_at = running
    stopped_at = max(at or ctx.now, started_at)
    minutes = max(0, round((stopped_at - started_at).total_seconds() / 60))
    return [
        WorkStopped(
            id=job.id,
            technician_id=technician,
            entry_id=entry_id,
            started_at=started_at,
            stopped_at=stopped_at,
            minutes=minutes,
            billable=billable,
            activity=activity,
        )
    ]


CLOCK_SKEW = timedelta(minutes=5)  # a phone's clock may run this far ahead
OFFLINE_FOR = timedelta(days=7)  # a stopwatch tap older than this is no longer taken as given


def _when(at: datetime | None, ctx: Context) -> datetime:
    """When a stopwatch was tapped: now, or earlier on a phone that was offline."""
    if at is None:
        return ctx.now
    if at > ctx.now + CLOCK_SKEW:
        raise Invalid("at", "is in the future (check the phone's clock)")
    if at < ctx.now - OFFLINE_FOR:
        raise Invalid("at", "is more than 7 days ago: add the time by hand instead")
    return min(at, ctx.now)


def stop_all_running(job: Job, ctx: Context) -> list[JobEvent]:
    return [e for technician in job.running for e in stop_running(job, technician, ctx)]


def decide(command: JobCommand, job: Job, ctx: Context) -> list[JobEvent]:
    if not job.exists and not isinstance(command, RequestJob):
        raise NotFound("job", job.id)
    if job.exists:
        authorize(job, command, ctx)
    match command:
        case RequestJob():
            if job.exists:
                raise InvalidTransition("job", job.status, "request it again")
            if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
                raise Forbidden("only the office takes requests")
            return [
                JobRequested(
                    id=job.id,
                    source=command.source,
                    customer_id=command.customer_id,
                    site_address=command.site_address,
                    job_type=command.job_type,
                    description=command.description,
                    scope=command.scope,
                    priority=command.priority,
                    sla_deadline=command.sla_deadline,
                    billing_kind=command.billing_kind,
                    location=command.location,
                    estimate_minutes=command.estimate_minutes,
                )
            ]
        case ChangeJobDetails():
            _require(job, OPEN | {Status.ON_HOLD}, "change the details")
            return [
                JobDetailsChanged(
                    id=job.id, site_address=command.site_address, description=command.description, scope=command.scope
                )
            ]
        case QuoteJob():
            _require(job, {Status.NEW}, "quote")
            return [
                JobQuoted(
                    id=job.id,
                    quote_id=derived_id(job.id, job.version, "quote"),
                    amount=command.amount,
                    valid_until=command.valid_until,
                    note=command.note,
                )
            ]
        case AcceptQuote() | RejectQuote():
            if job.pending_quote is None:
                raise InvalidTransition("job", job.status, _action(command), "there is no open quote")
            if isinstance(command, AcceptQuote):
                return [QuoteAccepted(id=job.id, quote_id=job.pending_quote)]
            return [QuoteRejected(id=job.id, quote_id=job.pending_quote, reason=command.reason)]
        case ScheduleJob():
            _require(
                job,
                {Status.NEW},
                "schedule",
                "reschedule a scheduled job instead" if job.status is Status.SCHEDULED else "",
            )
            _schedulable(job)
            return [
                JobScheduled(
                    id=job.id,
                    technician_ids=list(command.technician_ids),
                    start=command.start,
                    duration_minutes=command.duration_minutes,
                )
            ]
        case RescheduleJob():
            _require(job, {Status.SCHEDULED}, "reschedule")
            return [
                JobRescheduled(
                    id=job.id,
                    technician_ids=list(command.technician_ids),
                    start=command.start,
                    duration_minutes=command.duration_minutes,
                    reason=command.reason,
                )
            ]
        case UnassignJob():  # a scheduled job back to the pool, or a new one put there
            _require(job, {Status.SCHEDULED, Status.NEW}, "put it in the open pool")
            if job.in_pool:
                raise InvalidTransition("job", job.status, "put it in the open pool", "it is there already")
            return [JobUnassigned(id=job.id, reason=command.reason)]
        case TakeJob():
            if ctx.actor.role is not Role.TECHNICIAN or ctx.actor.technician_id is None:
                raise Forbidden("only a technician takes a job from the open pool")
            if not job.in_open_pool:
                raise InvalidTransition("job", job.status, "take it", "it is not in the open pool")
            _schedulable(job)
            return [
                JobTaken(
                    id=job.id,
                    technician_id=ctx.actor.technician_id,
                    start=command.start or ctx.now,
                    duration_minutes=command.duration_minutes,
                )
            ]
        case StartWork():
            _require(job, WORKABLE, "start work")
            technician = _acting_technician(job, command.technician_id, ctx, "start work")
            if technician in job.running:
                raise InvalidTransition("job", job.status, "start work", "the stopwatch is already running")
            return [
                WorkStarted(
                    id=job.id,
                    technician_id=technician,
                    entry_id=derived_id(job.id, job.version, technician),
                    started_at=_when(command.at, ctx),
                )
            ]
        case StopWork():
            technician = _acting_technician(job, command.technician_id, ctx, "stop work")
            if technician not in job.running:
                raise InvalidTransition("job", job.status, "stop work", "no stopwatch is running")
            stopped_at = _when(command.at, ctx)
            if stopped_at < job.running[technician][1]:
                raise Invalid("at", "is before the stopwatch was started")
            return stop_running(job, technician, ctx, command.billable, command.activity, stopped_at)
        case AddTimeEntry():
            _require(job, WORKABLE | {Status.COMPLETED, Status.ON_HOLD}, "add time")
            technician = _acting_technician(job, command.technician_id, ctx, "add time")
            return [
                TimeEntryAdded(
                    id=job.id,
                    technician_id=technician,
                    entry_id=derived_id(job.id, job.version, "entry"),
                    started_at=command.started_at,
                    minutes=command.minutes,
                    billable=command.billable,
                    activity=command.activity,
                    note=command.note,
                )
            ]
        case CorrectTimeEntry():
            _require(job, WORKABLE | {Status.COMPLETED, Status.ON_HOLD}, "correct time")
            entry = job.entries.get(command.entry_id)
            if entry is None:
                raise Invalid("entry_id", f"no time entry {command.entry_id} on this job")
            if ctx.actor.role is Role.TECHNICIAN and entry.technician_id != ctx.actor.technician_id:
                raise Forbidden("a technician may correct only their own time")
            return [
                TimeEntryCorrected(
                    id=job.id,
                    entry_id=command.entry_id,
                    minutes=command.minutes,
                    billable=command.billable,
                    reason=command.reason,
                )
            ]
        case AddNote():
            return [NoteAdded(id=job.id, text=command.text)]
        case AttachPhoto():
            _require(job, WORKABLE | {Status.COMPLETED, Status.ON_HOLD}, "attach a photo")
            return [
                PhotoAttached(
                    id=job.id,
                    photo_id=command.photo_id,
                    name=command.name,
                    media_type=command.media_type,
                    size=command.size,
                    sha256=command.sha256,
                    caption=command.caption,
                )
            ]
        case UseMaterial():
            _require(job, WORKABLE | {Status.COMPLETED}, "record material")
            return [
                MaterialUsed(
                    id=job.id,
                    code=command.code,
                    description=command.description,
                    quantity=command.quantity,
                    unit=command.unit,
                    unit_price=command.unit_price,
                    billable=command.billable,
                    discount_percent=command.discount_percent,
                )
            ]
        case WarnSlaAtRisk():
            if ctx.actor.role is not Role.ADMIN:
                raise Forbidden("the scheduler flags SLAs at risk")
            deadline = job.sla_deadline
            if (
                job.status not in OPEN | {Status.ON_HOLD}
                or job.priority is not Priority.URGENT
                or deadline is None
                or job.sla_warned_for == deadline
                or deadline - ctx.now > timedelta(minutes=command.within_minutes)
            ):
                return []  # not at risk, or the office knows
            left = (deadline - ctx.now) // timedelta(minutes=1)
            return [SlaAtRisk(id=job.id, deadline=deadline, minutes_left=left)]
        case RequestInterimInvoice():
            if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
                raise Forbidden("only the office asks for an interim invoice")
            _require(
                job,
                WORKABLE | {Status.ON_HOLD},
                "invoice the work to date",
                "a completed job gets its final invoice" if job.status is Status.COMPLETED else "",
            )
            return [InterimInvoiceRequested(id=job.id, request_id=derived_id(job.id, job.version, "interim"))]
        case CompleteJob():
            _require(
                job, {Status.IN_PROGRESS}, "complete", "start work first" if job.status is Status.SCHEDULED else ""
            )
            return [
                *stop_all_running(job, ctx),
                JobCompleted(id=job.id, summary=command.summary, first_visit=command.first_visit and job.visits <= 1),
            ]
        case SignOffJob():
            # the invoice may already be out (issued on completion): the signature still counts
            _require(job, {Status.COMPLETED, Status.INVOICED}, "sign off")
            if job.signed_off_by:
                raise InvalidTransition("job", job.status, "sign off", f"already signed off by {job.signed_off_by}")
            return [JobSignedOff(id=job.id, signed_by=command.signed_by, signature=command.signature)]
        case PutJobOnHold():
            _require(job, OPEN, "put on hold")
            return [
                *stop_all_running(job, ctx),
                JobPutOnHold(id=job.id, reason=command.reason, previous_status=job.status),
            ]
        case ResumeJob():
            _require(job, {Status.ON_HOLD}, "resume")
            previous = job.status_before_hold or Status.NEW
            resumed = Status.SCHEDULED if previous is Status.IN_PROGRESS else previous
            return [JobResumed(id=job.id, status=resumed)]
        case CancelJob():
            _require(job, OPEN | {Status.ON_HOLD}, "cancel")
            return [*stop_all_running(job, ctx), JobCancelled(id=job.id, reason=command.reason)]
        case ReleaseInvoicing():
            if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
                raise Forbidden("only the office releases a held invoice")
            _require(job, {Status.COMPLETED}, "release its invoice")
            if not job.invoicing_held:
                raise InvalidTransition("job", job.status, "release its invoice", "its invoicing is not held")
            return [InvoicingReleaseRequested(id=job.id, note=command.note)]
        case ReopenJob():
            _require(job, {Status.COMPLETED, Status.CANCELLED}, "reopen")
            status = Status.SCHEDULED if job.technician_ids else Status.NEW
            return [JobReopened(id=job.id, reason=command.reason, status=status)]
        case _:
            assert_never(command)


def _schedulable(job: Job) -> None:
    if job.site_address is None:
        raise Invalid("site_address", "a job cannot be scheduled without a site address")
    if not job.description.strip():
        raise Invalid("description", "a job cannot be scheduled without a description")


def evolve(job: Job, event: JobEvents) -> Job:
    before = job.status  # the status itself moves by the one fold every reader shares
    job = replace(job, version=job.version + 1, status=status_after(before, event))
    match event:
        case JobRequested():
            return replace(
                job,
                customer_id=event.customer_id,
                site_address=event.site_address,
                description=event.description,
                job_type=event.job_type,
                priority=event.priority,
                sla_deadline=event.sla_deadline,
                billing_kind=event.billing_kind,
            )
        case SlaAtRisk():
            return replace(job, sla_warned_for=event.deadline)
        case JobDetailsChanged():
            return replace(
                job,
                site_address=event.site_address or job.site_address,
                description=event.description if event.description is not None else job.description,
            )
        case JobQuoted():
            return replace(job, pending_quote=event.quote_id)
        case QuoteAccepted():
            return replace(job, pending_quote=None, quote_accepted=True)
        case QuoteRejected():
            return replace(job, pending_quote=None)
        case JobScheduled() | JobRescheduled():
            return replace(
                job,
                technician_ids=tuple(event.technician_ids),
                start=event.start,
                duration_minutes=event.duration_minutes,
                in_pool=False,
            )
        case JobUnassigned():
            return replace(job, technician_ids=(), start=None, in_pool=True)
        case JobTaken():
            return replace(
                job,
                technician_ids=(event.technician_id,),
                start=event.start,
                duration_minutes=event.duration_minutes,
                in_pool=False,
            )
        case WorkStarted():
            running = {**job.running, event.technician_id: (event.entry_id, event.started_at)}
            visits = job.visits + (0 if before is Status.IN_PROGRESS else 1)
            return replace(job, running=running, visits=visits)
        case WorkStopped():
            running = {k: v for k, v in job.running.items() if k != event.technician_id}
            entry = TimeEntry(
                technician_id=event.technician_id,
                started_at=event.started_at,
                minutes=event.minutes,
                billable=event.billable,
                activity=event.activity,
            )
            return replace(job, running=running, entries={**job.entries, event.entry_id: entry})
        case TimeEntryAdded():
            entry = TimeEntry(
                technician_id=event.technician_id,
                started_at=event.started_at,
                minutes=event.minutes,
                billable=event.billable,
                activity=event.activity,
            )
            return replace(job, entries={**job.entries, event.entry_id: entry})
        case TimeEntryCorrected():
            old = job.entries[event.entry_id]
            entry = replace(old, minutes=event.minutes, billable=event.billable)
            return replace(job, entries={**job.entries, event.entry_id: entry})
        case NoteAdded():
            return replace(job, notes=job.notes + 1)
        case MaterialUsed():
            return replace(job, materials=job.materials + 1)
        case JobCompleted():
            return replace(job, running={})
        case JobSignedOff():
            return replace(job, signed_off_by=event.signed_by)
        case JobPutOnHold():
            return replace(job, status_before_hold=event.previous_status, running={})
        case JobResumed():
            return replace(job, status_before_hold=None)
        case JobCancelled():
            return replace(job, running={})
        case JobReopened():
            return replace(job, signed_off_by="", invoicing_held=False)
        case JobInvoiced():
            return replace(job, invoicing_held=False)
        case InvoicingHeld():
            return replace(job, invoicing_held=True)
        case InvoicingReleaseRequested() | JobNotBilled():  # the invoicer's to decide again, or decided
            return replace(job, invoicing_held=False)
        case InterimInvoiceRequested() | InterimInvoiced() | PhotoAttached():  # for the invoicer and the read side
            return job
        case _:
            assert_never(event)
