"""The invoicer's billing decision, given/when/then: given the job, its customer and the price
lists as loaded, when an event, then an invoice to issue, a hold, no bill, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from msgspec import structs

from events.consumer import Stored
from events.contract import (
    ActivityPriced,
    Address,
    BillingKind,
    CustomerDetailsChanged,
    CustomerRegistered,
    Event,
    HoursPackageSold,
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoiceIssued,
    InvoiceNumberAllocated,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCompleted,
    JobEvent,
    JobInvoiced,
    JobNotBilled,
    JobReopened,
    JobRequested,
    JobScheduled,
    JobSignedOff,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    PriceListCreated,
    Source,
    Status,
    TimeEntryAdded,
    Unit,
    WorkStarted,
)
from invoicer.billing import Hold, Issue, Loaded, NotBilled, Skip, Stage, concerns, decide, stage
from invoicer.ids import interim_invoice_id_of, invoice_id_of, series_id_of
from invoicer.numbering import numbered
from invoicer.pricing import Activity, PriceList, Seller, work_of
from invoicer.settings import DEFAULT_PATTERN, Settings

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
CUSTOMER = UUID("00000000-0000-0000-0000-0000000000cc")
TECH = uuid4()
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ADDRESS = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
SETTINGS = Settings(seller=Seller(address=Address(street="Długa 1", city="Kraków", postal_code="31-147", country="PL")))
REPAIR = Activity(
    code="repair", name="Repair work", unit=Unit.STARTED_HOUR, rate=Decimal("50.00"), vat_rate=Decimal(21)
)
CZK = PriceList(id=uuid4(), name="Standard", currency="CZK", is_default=True, activities={"repair": REPAIR})
REGISTERED = CustomerRegistered(id=CUSTOMER, name="Novák Stavby", billing_address=ADDRESS, currency="CZK")
NOTHING = Stored([], 0, "")  # an aggregate not stored yet
SERIES = Stored([], 4, "hash-of-the-fourth")  # FV/2026 has four numbers: the next is the fifth
INVOICE = invoice_id_of(JOB)


def requested(job_type: str = "repair", billing_kind: BillingKind = BillingKind.PAID) -> JobRequested:
    return JobRequested(
        id=JOB,
        source=Source.PHONE,
        customer_id=CUSTOMER,
        site_address=ADDRESS,
        job_type=job_type,
        description="Boiler leaks",
        billing_kind=billing_kind,
    )


def worked(minutes: int = 130, activity: str = "") -> TimeEntryAdded:
    return TimeEntryAdded(
        id=JOB, technician_id=TECH, entry_id=uuid4(), started_at=NOW, minutes=minutes, activity=activity
    )


SCHEDULED = JobScheduled(id=JOB, technician_ids=[TECH], start=NOW, duration_minutes=60)
STARTED = WorkStarted(id=JOB, technician_id=TECH, entry_id=uuid4(), started_at=NOW)
COMPLETED = JobCompleted(id=JOB, summary="Seal replaced")
WORKED = worked()


def given(
    *job: JobEvent,
    customer: list[Event] | None = None,
    lists: list[PriceList] | None = None,
    invoice: Stored = NOTHING,
) -> Loaded:
    """The job's events (after its request), the customer's and the price lists, as loaded."""
    events: list[Event] = [requested(), *job] if not job or not isinstance(job[0], JobRequested) else [*job]
    return Loaded(
        job_id=JOB,
        job=Stored(events, len(events), "hash-of-the-job"),
        customer=Stored(customer or [REGISTERED], len(customer or [REGISTERED]), "hash-of-the-customer"),
        price_lists={p.id: p for p in (lists if lists is not None else [CZK])},
        invoice=invoice,
        number=numbered(SERIES, DEFAULT_PATTERN, "FV", 2026),
    )


def test_a_completed_job_is_issued_its_invoice_with_the_next_number_in_one_batch() -> None:
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED)
    decision = decide(COMPLETED, loaded, NOW, SETTINGS)
    assert isinstance(decision, Issue)
    invoice = decision.invoice
    assert (invoice.id, invoice.number, invoice.sequence, invoice.job_id) == (INVOICE, "FV/2026/000005", 5, JOB)
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        Decimal("150.00"),
        Decimal("31.50"),
        Decimal("181.50"),
    )
    assert invoice.issue_date == NOW.date() and invoice.currency == "CZK"
    (series_id, series, allocated), (invoice_id, new, issued), (job_id, job, on_job) = decision.touched
    assert (series_id, series, allocated) == (
        series_id_of("FV", 2026),
        SERIES,
        [
            InvoiceNumberAllocated(
                id=series_id_of("FV", 2026),
                series="FV",
                year=2026,
                sequence=5,
                number="FV/2026/000005",
                invoice_id=INVOICE,
            )
        ],
    )
    assert (invoice_id, new, issued) == (INVOICE, Stored([], 0, ""), [invoice])  # a new invoice, or none
    assert (job_id, job, on_job) == (
        JOB,
        loaded.job,
        [JobInvoiced(id=JOB, invoice_id=INVOICE, number="FV/2026/000005")],
    )


def test_the_invoice_is_dated_by_the_sellers_calendar_at_the_one_now_it_was_decided_at() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 2027 in Warsaw
    settings = Settings(seller=Seller(timezone="Europe/Warsaw", address=SETTINGS.seller.address))
    loaded = structs.replace(
        given(SCHEDULED, STARTED, WORKED, COMPLETED), number=numbered(Stored([], 0, ""), DEFAULT_PATTERN, "FV", 2027)
    )
    decision = decide(COMPLETED, loaded, late, settings)
    assert isinstance(decision, Issue)
    assert (str(decision.invoice.issue_date), decision.invoice.number) == ("2027-01-01", "FV/2027/000001")


def test_a_job_that_cannot_be_priced_is_held_saying_why() -> None:
    assert decide(COMPLETED, given(SCHEDULED, STARTED, WORKED, COMPLETED, lists=[]), NOW, SETTINGS) == Hold(
        job=given(SCHEDULED, STARTED, WORKED, COMPLETED).job,
        held=InvoicingHeld(id=JOB, reason="no price list in CZK for this customer"),
    )
    decision = decide(COMPLETED, given(SCHEDULED, STARTED, worked(activity="welding"), COMPLETED), NOW, SETTINGS)
    assert isinstance(decision, Hold)
    assert decision.held.reason == "activity 'welding' is on no price list of this customer"
    assert decision.touched == [(JOB, decision.job, [decision.held])]


def test_warranty_work_is_not_billed_and_its_cost_is_kept() -> None:
    loaded = given(requested(billing_kind=BillingKind.WARRANTY), SCHEDULED, STARTED, WORKED, COMPLETED)
    assert decide(COMPLETED, loaded, NOW, SETTINGS) == NotBilled(
        job=loaded.job, not_billed=JobNotBilled(id=JOB, reason="warranty", cost=Decimal("150.00"), currency="CZK")
    )


def test_nothing_is_decided_for_a_job_that_is_not_due() -> None:
    assert decide(COMPLETED, given(SCHEDULED, STARTED, WORKED), NOW, SETTINGS) == Skip(why="the job is not due")
    invoiced = JobInvoiced(id=JOB, invoice_id=INVOICE, number="FV/2026/000001")
    signed = JobSignedOff(id=JOB, signed_by="Jana")
    assert decide(signed, given(SCHEDULED, STARTED, WORKED, COMPLETED, invoiced, signed), NOW, SETTINGS) == Skip(
        why="the job is settled"
    )


def test_an_invoice_already_stored_is_never_issued_again() -> None:
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED, invoice=Stored([], 1, "hash-of-the-invoice"))
    assert decide(COMPLETED, loaded, NOW, SETTINGS) == Skip(why="invoiced already")


def test_a_job_type_invoiced_on_sign_off_waits_for_the_signature() -> None:
    settings = Settings(seller=SETTINGS.seller, sign_off_job_types=frozenset({"repair"}))
    signed = JobSignedOff(id=JOB, signed_by="Jana")
    assert decide(COMPLETED, given(SCHEDULED, STARTED, WORKED, COMPLETED), NOW, settings) == Skip(
        why="the job is not due"
    )
    assert isinstance(decide(signed, given(SCHEDULED, STARTED, WORKED, COMPLETED, signed), NOW, settings), Issue)


def test_due_is_said_once_completed_signed_off_where_needed_and_not_decided_since() -> None:
    sign_off = Settings(sign_off_job_types=frozenset({"repair"}))
    held = InvoicingHeld(id=JOB, reason="no price")
    reopened = JobReopened(id=JOB, reason="still leaks", status=Status.IN_PROGRESS)

    def at(*events: JobEvent, settings: Settings = SETTINGS) -> Stage:
        return stage(work_of(JOB, [requested(), *events]), settings)

    assert at(SCHEDULED, STARTED) is Stage.NOT_DUE
    assert at(SCHEDULED, STARTED, COMPLETED) is Stage.DUE
    assert at(SCHEDULED, STARTED, COMPLETED, settings=sign_off) is Stage.NOT_DUE
    assert at(SCHEDULED, STARTED, COMPLETED, JobSignedOff(id=JOB, signed_by="Jana"), settings=sign_off) is Stage.DUE
    assert at(SCHEDULED, STARTED, COMPLETED, held) is Stage.HELD
    assert at(SCHEDULED, STARTED, COMPLETED, JobNotBilled(id=JOB, reason="internal")) is Stage.SETTLED
    assert at(SCHEDULED, STARTED, COMPLETED, held, reopened) is Stage.NOT_DUE
    assert at(SCHEDULED, STARTED, COMPLETED, held, reopened, COMPLETED) is Stage.DUE


def test_a_held_job_a_fix_now_prices_is_issued_by_the_same_decision() -> None:
    held = InvoicingHeld(id=JOB, reason="no price list in CZK for this customer")
    fixed = PriceListCreated(id=CZK.id, name="Standard", currency="CZK", is_default=True)
    decision = decide(fixed, given(SCHEDULED, STARTED, WORKED, COMPLETED, held), NOW, SETTINGS)
    assert isinstance(decision, Issue) and decision.invoice.number == "FV/2026/000005"


def test_a_held_job_still_held_for_the_same_reason_is_held_again_only_when_the_office_asks() -> None:
    held = InvoicingHeld(id=JOB, reason="no price list in CZK for this customer")
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED, held, lists=[])
    priced = ActivityPriced(id=uuid4(), code="tiling", name="Tiling", unit=Unit.HOUR, rate=Decimal(30))
    assert decide(priced, loaded, NOW, SETTINGS) == Skip(why="held for the same reason still")
    assert decide(InvoicingReleaseRequested(id=JOB), loaded, NOW, SETTINGS) == Hold(job=loaded.job, held=held)


def test_a_change_does_not_touch_a_job_that_is_not_held() -> None:
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED)
    assert decide(InvoicingReleaseRequested(id=JOB), loaded, NOW, SETTINGS) == Skip(why="the job is due")


def test_a_customers_details_concern_only_that_customers_held_jobs() -> None:
    work = work_of(JOB, [requested()])
    assert concerns(CustomerDetailsChanged(id=CUSTOMER, currency="CZK"), work)
    assert not concerns(CustomerDetailsChanged(id=uuid4(), currency="CZK"), work)
    assert concerns(InvoicingReleaseRequested(id=JOB), work)
    assert not concerns(InvoicingReleaseRequested(id=uuid4()), work)
    assert concerns(PriceListCreated(id=uuid4(), name="New", currency="CZK"), work)


def test_an_interim_invoice_bills_the_open_jobs_work_to_date_and_records_what_it_billed() -> None:
    request = InterimInvoiceRequested(id=JOB, request_id=uuid4())
    decision = decide(request, given(SCHEDULED, STARTED, WORKED), NOW, SETTINGS)
    assert isinstance(decision, Issue) and decision.invoice.interim
    assert decision.invoice.id == interim_invoice_id_of(request.request_id)
    (_, _, on_job) = decision.touched[2]
    assert on_job == [
        InterimInvoiced(
            id=JOB,
            invoice_id=decision.invoice.id,
            number="FV/2026/000005",
            entries=[WORKED.entry_id],
            materials=0,
            visits=1,
        )
    ]


def test_no_interim_invoice_for_a_closed_job_nothing_new_or_one_issued_already() -> None:
    request = InterimInvoiceRequested(id=JOB, request_id=uuid4())
    assert decide(request, given(SCHEDULED, STARTED, WORKED, COMPLETED), NOW, SETTINGS) == Skip(
        why="the job is completed: no interim invoice"
    )
    assert decide(request, given(SCHEDULED, STARTED), NOW, SETTINGS) == Skip(why="nothing new to bill")
    assert decide(request, given(SCHEDULED, STARTED, WORKED, invoice=Stored([], 1, "h")), NOW, SETTINGS) == Skip(
        why="issued already"
    )


def test_prepaid_hours_are_spent_in_the_invoices_batch_at_the_customers_version() -> None:
    package = HoursPackageSold(id=CUSTOMER, package_id=uuid4(), hours=Decimal(2), warn_below_hours=Decimal(1))
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED, customer=[REGISTERED, package])
    decision = decide(COMPLETED, loaded, NOW, SETTINGS)
    assert isinstance(decision, Issue)
    assert [(line.kind, line.logged_minutes) for line in decision.invoice.lines] == [("prepaid", 120), ("time", 10)]
    assert decision.touched[3] == (
        CUSTOMER,
        loaded.customer,
        [
            PrepaidHoursConsumed(id=CUSTOMER, minutes=120, job_id=JOB, invoice_id=INVOICE, balance_minutes=0),
            PrepaidBalanceLow(id=CUSTOMER, balance_minutes=0, warn_below_minutes=60),
        ],
    )


def test_the_decision_is_a_function_of_what_it_is_given() -> None:
    loaded = given(SCHEDULED, STARTED, WORKED, COMPLETED)
    first, again = decide(COMPLETED, loaded, NOW, SETTINGS), decide(COMPLETED, loaded, NOW, SETTINGS)
    assert isinstance(first, Issue) and isinstance(first.invoice, InvoiceIssued) and first == again
