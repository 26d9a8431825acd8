"""The board's and the invoice list's rows, given/when/then: given the row as it was, when an
event, then the row as it is (the same functions rebuild the read models and the audit's as-of)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from msgspec.structs import replace

from events.contract import (
    Address,
    Event,
    EventMeta,
    InvoiceCredited,
    InvoiceDocumentStored,
    InvoiceEvent,
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
    MaterialUsed,
    NoteAdded,
    PaymentApplied,
    PaymentReminderDue,
    PhotoAttached,
    Priority,
    QuoteAccepted,
    QuoteRejected,
    SlaAtRisk,
    Source,
    Status,
    TimeEntryAdded,
    TimeEntryCorrected,
    WorkStarted,
    WorkStopped,
)
from projections.rows import (
    Entry,
    InvoiceRow,
    JobRow,
    Photo,
    credit,
    evolve_invoice,
    evolve_job,
    invoice_status,
    outstanding,
)
from tests.unit.invoices import CUSTOMER_ID, INVOICE, INVOICE_ID, JOB_ID

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
CUSTOMER, TECH, OTHER_TECH = UUID(int=1), UUID(int=2), UUID(int=3)
ENTRY, OTHER_ENTRY, PHOTO = UUID(int=21), UUID(int=22), UUID(int=23)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SITE = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
ELSEWHERE = Address(street="Nádražní 3", city="Ostrava", postal_code="702 00", country="CZ")


def at(minutes: int, event: Event) -> Any:
    """The event as the application stored it, ``minutes`` after T0."""
    meta = EventMeta(
        event_id=UUID(int=1000 + minutes),
        occurred_at=T0 + timedelta(minutes=minutes),
        actor_id="olga",
        actor_role="office",
        command_id="c",
        correlation_id="c",
    )
    return replace(event, meta=meta)


REQUESTED = at(
    0,
    JobRequested(
        id=JOB,
        source=Source.PHONE,
        customer_id=CUSTOMER,
        site_address=SITE,
        job_type="repair",
        description="Boiler leaks",
        scope="Check the seals",
        priority=Priority.URGENT,
        sla_deadline=T0 + timedelta(hours=4),
        estimate_minutes=90,
    ),
)
SCHEDULED = at(5, JobScheduled(id=JOB, technician_ids=[TECH], start=T0 + timedelta(hours=1), duration_minutes=60))
STARTED = at(60, WorkStarted(id=JOB, technician_id=TECH, entry_id=ENTRY, started_at=T0 + timedelta(minutes=60)))
STOPPED = at(
    150,
    WorkStopped(
        id=JOB,
        technician_id=TECH,
        entry_id=ENTRY,
        started_at=T0 + timedelta(minutes=60),
        stopped_at=T0 + timedelta(minutes=150),
        minutes=90,
    ),
)
COMPLETED = at(155, JobCompleted(id=JOB, summary="Seal replaced"))


def board(*events: JobEvent) -> JobRow | None:
    """The job's row after the events, the n-th at stream position 10 n."""
    row = None
    for n, event in enumerate(events, start=1):
        row = evolve_job(row, event, 10 * n)
    return row


def job(*events: JobEvent) -> JobRow:
    row = board(*events)
    assert row is not None
    return row


# --- the job board -------------------------------------------------------------------------


def test_a_request_puts_a_new_job_on_the_board() -> None:
    assert job(REQUESTED) == JobRow(
        id=JOB,
        status=Status.NEW,
        customer_id=CUSTOMER,
        job_type="repair",
        source="phone",
        site="Údolní 12, 602 00 Brno, CZ",
        site_address=SITE,
        description="Boiler leaks",
        scope="Check the seals",
        priority="urgent",
        sla_deadline=T0 + timedelta(hours=4),
        billing_kind="paid",
        location="on_site",
        estimate_minutes=90,
        requested_at=T0,
        last_event="JobRequested",
        last_change_at=T0,
        version=1,
        position=10,
    )


def test_an_event_of_a_job_the_board_never_saw_is_left_out() -> None:
    assert board(SCHEDULED) is None
    assert board(STARTED, STOPPED) is None


def test_each_event_counts_a_version_and_moves_the_position() -> None:
    row = job(REQUESTED, SCHEDULED)
    assert (row.version, row.position, row.last_event, row.last_change_at) == (
        2,
        20,
        "JobScheduled",
        T0 + timedelta(minutes=5),
    )
    # an event the board shows nothing of still counts
    risk = job(REQUESTED, SCHEDULED, at(7, SlaAtRisk(id=JOB, deadline=T0 + timedelta(hours=4), minutes_left=30)))
    assert (risk.status, risk.version, risk.last_event) == (Status.SCHEDULED, 3, "SlaAtRisk")


def test_an_event_stored_without_metadata_is_dated_at_the_epoch() -> None:
    assert job(replace(REQUESTED, meta=None)).requested_at == datetime.fromtimestamp(0, UTC)


def test_details_change_only_what_is_named() -> None:
    row = job(REQUESTED, at(1, JobDetailsChanged(id=JOB, site_address=ELSEWHERE)))
    assert (row.site_address, row.site, row.description, row.scope) == (
        ELSEWHERE,
        "Nádražní 3, 702 00 Ostrava, CZ",
        "Boiler leaks",
        "Check the seals",
    )
    row = job(REQUESTED, at(1, JobDetailsChanged(id=JOB, description="Boiler leaks badly", scope="")))
    assert (row.site_address, row.description, row.scope) == (SITE, "Boiler leaks badly", "")


def test_a_quote_is_quoted_then_accepted_or_rejected() -> None:
    quoted = at(1, JobQuoted(id=JOB, quote_id=UUID(int=5), amount=Decimal("450.00")))
    row = job(REQUESTED, quoted)
    assert (row.quote_amount, row.quote_status) == ("450.00", "quoted")
    assert job(REQUESTED, quoted, at(2, QuoteAccepted(id=JOB, quote_id=UUID(int=5)))).quote_status == "accepted"
    rejected = job(REQUESTED, quoted, at(2, QuoteRejected(id=JOB, quote_id=UUID(int=5), reason="too dear")))
    assert (rejected.quote_status, rejected.reason) == ("rejected", "too dear")


def test_scheduling_assigns_and_rescheduling_keeps_the_status() -> None:
    row = job(REQUESTED, SCHEDULED)
    assert (row.status, row.technician_ids, row.scheduled_start, row.duration_minutes) == (
        Status.SCHEDULED,
        [TECH],
        T0 + timedelta(hours=1),
        60,
    )
    moved = at(
        100,
        JobRescheduled(id=JOB, technician_ids=[TECH, OTHER_TECH], start=T0 + timedelta(hours=2), duration_minutes=120),
    )
    row = job(REQUESTED, SCHEDULED, STARTED, moved)
    assert (row.status, row.technician_ids, row.scheduled_start, row.duration_minutes) == (
        Status.IN_PROGRESS,
        [TECH, OTHER_TECH],
        T0 + timedelta(hours=2),
        120,
    )


def test_an_unassigned_job_is_back_in_the_pool_until_taken() -> None:
    pooled = job(REQUESTED, SCHEDULED, at(10, JobUnassigned(id=JOB, reason="Tom is ill")))
    assert (pooled.status, pooled.technician_ids, pooled.scheduled_start, pooled.reason) == (
        Status.NEW,
        [],
        None,
        "Tom is ill",
    )
    taken = at(20, JobTaken(id=JOB, technician_id=OTHER_TECH, start=T0 + timedelta(hours=3), duration_minutes=45))
    row = job(REQUESTED, SCHEDULED, at(10, JobUnassigned(id=JOB, reason="Tom is ill")), taken)
    assert (row.status, row.technician_ids, row.scheduled_start, row.duration_minutes) == (
        Status.SCHEDULED,
        [OTHER_TECH],
        T0 + timedelta(hours=3),
        45,
    )


def test_the_stopwatch_logs_time_entries() -> None:
    running = job(REQUESTED, SCHEDULED, STARTED)
    assert (running.status, running.running_since, running.visits) == (
        Status.IN_PROGRESS,
        T0 + timedelta(minutes=60),
        1,
    )
    stopped = job(REQUESTED, SCHEDULED, STARTED, STOPPED)
    assert (stopped.running_since, stopped.entries) == (None, {str(ENTRY): Entry(90, True)})
    added = at(
        160,
        TimeEntryAdded(
            id=JOB, technician_id=OTHER_TECH, entry_id=OTHER_ENTRY, started_at=T0, minutes=30, billable=False
        ),
    )
    row = job(REQUESTED, SCHEDULED, STARTED, STOPPED, added)
    assert (row.minutes_logged, row.billable_minutes) == (120, 90)
    corrected = at(170, TimeEntryCorrected(id=JOB, entry_id=ENTRY, minutes=75, billable=True, reason="forgot"))
    row = job(REQUESTED, SCHEDULED, STARTED, STOPPED, added, corrected)
    assert row.entries == {str(ENTRY): Entry(75, True), str(OTHER_ENTRY): Entry(30, False)}
    assert (row.minutes_logged, row.billable_minutes) == (105, 75)


def test_notes_and_materials_are_counted() -> None:
    row = job(
        REQUESTED,
        SCHEDULED,
        STARTED,
        at(61, NoteAdded(id=JOB, text="Valve")),
        at(62, NoteAdded(id=JOB, text="Seal")),
        at(63, MaterialUsed(id=JOB, code="seal", description="Seal", quantity=Decimal(2))),
    )
    assert (row.notes, row.materials) == (2, 1)


def test_completing_records_when_and_whether_on_the_first_visit() -> None:
    row = job(REQUESTED, SCHEDULED, STARTED, STOPPED, COMPLETED)
    assert (row.status, row.completed_at, row.first_visit, row.running_since) == (
        Status.COMPLETED,
        T0 + timedelta(minutes=155),
        True,
        None,
    )
    again = at(200, WorkStarted(id=JOB, technician_id=TECH, entry_id=OTHER_ENTRY, started_at=T0))
    assert job(REQUESTED, SCHEDULED, STARTED, STOPPED, again, COMPLETED).first_visit is False  # two visits
    said_not = at(155, JobCompleted(id=JOB, summary="Part ordered", first_visit=False))
    assert job(REQUESTED, SCHEDULED, STARTED, said_not).first_visit is False


def test_a_sign_off_and_photos() -> None:
    signed = at(156, JobSignedOff(id=JOB, signed_by="Pavel Novák", signature="data:image/png;base64,AAAA"))
    photo = at(
        157,
        PhotoAttached(
            id=JOB, photo_id=PHOTO, name="photos/1.jpg", media_type="image/jpeg", size=10, sha256="ab", caption="before"
        ),
    )
    captioned = at(158, replace(photo, caption="the old seal"))
    row = job(REQUESTED, SCHEDULED, STARTED, COMPLETED, signed, photo, captioned)
    assert (row.signed_by, row.signature) == ("Pavel Novák", "data:image/png;base64,AAAA")
    assert row.photos == [Photo(id=PHOTO, name="photos/1.jpg", caption="the old seal")]  # sent again: replaced


def test_hold_resume_cancel_and_reopen() -> None:
    held = job(REQUESTED, SCHEDULED, at(10, JobPutOnHold(id=JOB, reason="parts", previous_status=Status.SCHEDULED)))
    assert (held.status, held.reason) == (Status.ON_HOLD, "parts")
    resumed = job(
        REQUESTED,
        SCHEDULED,
        at(10, JobPutOnHold(id=JOB, reason="parts", previous_status=Status.SCHEDULED)),
        at(20, JobResumed(id=JOB, status=Status.SCHEDULED)),
    )
    assert (resumed.status, resumed.reason) == (Status.SCHEDULED, "")
    cancelled = job(REQUESTED, SCHEDULED, STARTED, at(70, JobCancelled(id=JOB, reason="duplicate")))
    assert (cancelled.status, cancelled.reason, cancelled.running_since) == (Status.CANCELLED, "duplicate", None)
    not_billed = at(160, JobNotBilled(id=JOB, reason="warranty"))
    reopened = job(
        REQUESTED,
        SCHEDULED,
        STARTED,
        STOPPED,
        COMPLETED,
        not_billed,
        at(170, JobReopened(id=JOB, reason="still leaks", status=Status.IN_PROGRESS)),
    )
    assert (reopened.status, reopened.reason, reopened.completed_at, reopened.billing_note) == (
        Status.IN_PROGRESS,
        "still leaks",
        None,
        "",
    )


def test_the_board_says_why_a_completed_job_has_no_invoice_until_it_has_one() -> None:
    done = (REQUESTED, SCHEDULED, STARTED, STOPPED, COMPLETED)
    assert job(*done, at(160, JobNotBilled(id=JOB, reason="warranty"))).billing_note == "not billed: warranty"
    held = at(160, InvoicingHeld(id=JOB, reason="no price for activity 'x'"))
    assert job(*done, held).billing_note == "invoice held: no price for activity 'x'"
    released = at(170, InvoicingReleaseRequested(id=JOB))
    assert job(*done, held, released).billing_note == "invoicing again, as the office asked"
    invoiced = job(*done, held, released, at(180, JobInvoiced(id=JOB, invoice_id=INVOICE_ID, number="FV/2026/42")))
    assert (invoiced.status, invoiced.invoice_id, invoiced.invoice_number, invoiced.billing_note) == (
        Status.INVOICED,
        INVOICE_ID,
        "FV/2026/42",
        "",
    )


# --- the invoice list ----------------------------------------------------------------------


def invoices(*events: InvoiceEvent) -> InvoiceRow:
    row = None
    for n, event in enumerate(events, start=1):
        row = evolve_invoice(row, event, 10 * n)
    assert row is not None
    return row


def paid(amount: str, on: date) -> PaymentApplied:
    fields: dict[str, Any] = {
        "id": INVOICE_ID,
        "payment_id": UUID(int=int(on.strftime("%Y%m%d"))),
        "amount": Decimal(amount),
        "currency": "PLN",
        "received_on": on,
        "rule": "RF reference",
    }
    return PaymentApplied(**fields)


def credited(amount: str, number: str = "FK/2026/000007") -> InvoiceCredited:
    return InvoiceCredited(id=INVOICE_ID, credit_note_id=UUID(int=77), number=number, amount=Decimal(amount))


def test_an_issued_invoice_is_listed_with_the_whole_event() -> None:
    assert invoices(INVOICE) == InvoiceRow(
        id=INVOICE_ID,
        number="FV/2026/000042",
        job_id=JOB_ID,
        customer_id=CUSTOMER_ID,
        customer="Piekarnia Kowalski",
        issue_date="2026-11-23",
        due_date="2026-12-07",
        currency="PLN",
        gross_total="449.68",
        position=10,
        issued=INVOICE,
    )
    row = invoices(INVOICE)
    assert (row.status, row.paid, row.credited, outstanding(row)) == ("issued", "0.00", "0.00", Decimal("449.68"))


def test_an_event_before_the_invoice_is_left_out() -> None:
    assert evolve_invoice(None, paid("10.00", date(2026, 11, 25)), 1) is None
    assert evolve_invoice(None, credited("10.00"), 1) is None


def test_payments_settle_the_invoice() -> None:
    part = invoices(INVOICE, paid("200.00", date(2026, 11, 28)))
    assert (part.status, part.paid, part.payments, part.last_paid_on, part.position) == (
        "partially paid",
        "200.00",
        1,
        "2026-11-28",
        20,
    )
    assert outstanding(part) == Decimal("249.68")
    # a payment received earlier but recorded later leaves the last day paid as it was
    full = invoices(INVOICE, paid("200.00", date(2026, 11, 28)), paid("249.68", date(2026, 11, 26)))
    assert (full.status, full.paid, full.payments, full.last_paid_on) == ("paid", "449.68", 2, "2026-11-28")
    assert outstanding(full) == 0 and credit(full) == 0


def test_paying_too_much_is_the_customer_s_credit() -> None:
    over = invoices(INVOICE, paid("500.00", date(2026, 11, 28)))
    assert (over.status, outstanding(over), credit(over)) == ("paid", Decimal("-50.32"), Decimal("50.32"))


def test_credit_notes_reduce_what_is_owed() -> None:
    part = invoices(INVOICE, credited("80.68"))
    assert (part.status, part.credited, part.credit_notes, part.credit_note_ids) == (
        "issued",
        "80.68",
        ["FK/2026/000007"],
        [UUID(int=77)],
    )
    assert outstanding(part) == Decimal("369.00")
    settled = invoices(INVOICE, credited("80.68"), paid("369.00", date(2026, 12, 1)))
    assert settled.status == "paid"
    whole = invoices(INVOICE, credited("449.68"))
    assert whole.status == "credited"


def test_an_unpaid_invoice_is_overdue_after_its_due_date() -> None:
    row = invoices(INVOICE, paid("100.00", date(2026, 11, 28)))
    assert invoice_status(row, "2026-12-07") == "partially paid"  # due today: not yet overdue
    assert invoice_status(row, "2026-12-08") == "overdue"
    assert invoice_status(invoices(INVOICE, paid("449.68", date(2026, 12, 20))), "2027-01-01") == "paid"
    assert invoice_status(invoices(INVOICE, credited("449.68")), "2027-01-01") == "credited"


def test_a_reminder_and_the_stored_documents_are_shown() -> None:
    due = PaymentReminderDue(
        id=INVOICE_ID,
        step=2,
        level="firm",
        days_overdue=14,
        outstanding=Decimal("449.68"),
        currency="PLN",
        due_date=date(2026, 12, 7),
    )
    pdf = InvoiceDocumentStored(
        id=INVOICE_ID, name="invoices/FV-42.pdf", media_type="application/pdf", sha256="aa", size=1000
    )
    xml = InvoiceDocumentStored(
        id=INVOICE_ID, name="invoices/FV-42.xml", media_type="application/xml", sha256="bb", size=100
    )
    other = InvoiceDocumentStored(
        id=INVOICE_ID, name="invoices/FV-42.txt", media_type="text/plain", sha256="cc", size=1
    )
    row = invoices(INVOICE, due, pdf, xml, other)
    assert row.reminder == "firm (14 days overdue)"
    assert (row.document, row.document_sha256, row.xml_document, row.xml_sha256) == (
        "invoices/FV-42.pdf",
        "aa",
        "invoices/FV-42.xml",
        "bb",
    )
    assert row.position == 40  # the rendering it does not list leaves the row as it was
