"""A job's status as its events move it: one pure fold, for every reader of the job's events.

The write side decides on the job's status, billing asks whether a job is completed, and
both read it from the same events; this is the one place that says which event moves the
status where, so the two cannot drift apart. Every job event is named: one that leaves the
status as it was says so in the last arm, and a new event the fold does not know is a type
error (``assert_never``), not a silent "unchanged".

The write side's ``evolve`` (services.domain.job) and billing (invoicer.pricing) both take
the status from here. The board's row (projections.rows) still keeps its own: it leaves the
status of a job already at work when a reschedule arrives, which only a history written
past the deciders can hold.
"""

from __future__ import annotations

from typing import assert_never

from events.contract import (
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCancelled,
    JobCompleted,
    JobDetailsChanged,
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
    QuoteAccepted,
    QuoteRejected,
    SlaAtRisk,
    Status,
    TimeEntryAdded,
    TimeEntryCorrected,
    WorkStarted,
    WorkStopped,
)


def status_after(status: Status, event: JobEvents) -> Status:
    """The job's status once ``event`` has happened to a job in ``status``."""
    match event:
        case JobRequested() | JobUnassigned():
            return Status.NEW
        case JobScheduled() | JobRescheduled() | JobTaken():
            return Status.SCHEDULED
        case WorkStarted():
            return Status.IN_PROGRESS
        case JobPutOnHold():
            return Status.ON_HOLD
        case JobResumed() | JobReopened():
            return event.status
        case JobCompleted():
            return Status.COMPLETED
        case JobCancelled():
            return Status.CANCELLED
        case JobInvoiced():
            return Status.INVOICED
        case (
            JobDetailsChanged()
            | JobQuoted()
            | QuoteAccepted()
            | QuoteRejected()
            | WorkStopped()
            | TimeEntryAdded()
            | TimeEntryCorrected()
            | NoteAdded()
            | MaterialUsed()
            | JobSignedOff()
            | JobNotBilled()
            | InvoicingHeld()
            | InvoicingReleaseRequested()
            | InterimInvoiceRequested()
            | InterimInvoiced()
            | PhotoAttached()
            | SlaAtRisk()
        ):
            return status
        case _:
            assert_never(event)
