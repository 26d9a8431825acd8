"""Credit notes and proformas, given/when/then: given the invoice, or the job and its customer,
as loaded, when the office's request or the customer's acceptance, then the document to issue
with its number, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from events.consumer import Stored
from events.contract import (
    Address,
    CreditNoteRequested,
    CustomerRegistered,
    InvoiceCredited,
    JobQuoted,
    JobRequested,
    QuoteAccepted,
    Source,
    Unit,
)
from invoicer.billing import Skip
from invoicer.credit_notes import CreditNote, decide_credit
from invoicer.ids import credit_note_id_of, proforma_id_of, series_id_of
from invoicer.numbering import numbered
from invoicer.pricing import Activity, PriceList, Seller
from invoicer.proformas import Proforma, decide_proforma
from invoicer.settings import DEFAULT_PATTERN, Settings
from tests.unit.invoices import INVOICE, INVOICE_ID, REVERSE_CHARGED

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
SETTINGS = Settings(seller=Seller(address=Address(street="Długa 1", city="Kraków", postal_code="31-147", country="PL")))
INVOICED = Stored([INVOICE], 1, "hash-of-the-invoice")
CREDIT_NUMBER = numbered(Stored([], 6, "hash-of-the-sixth"), DEFAULT_PATTERN, "KOR", 2026)
REQUEST = CreditNoteRequested(
    id=INVOICE_ID, request_id=uuid4(), reason="Filters returned", amount=Decimal(0), whole=True
)


def test_a_whole_credit_repeats_the_invoices_lines_with_the_next_number_in_one_batch() -> None:
    decision = decide_credit(REQUEST, INVOICED, CREDIT_NUMBER, NOW, SETTINGS)
    assert isinstance(decision, CreditNote)
    note = decision.note
    assert (note.id, note.number, note.invoice_number) == (
        credit_note_id_of(REQUEST.request_id),
        "KOR/2026/000007",
        INVOICE.number,
    )
    assert (note.lines, note.vat, note.gross_total) == (INVOICE.lines, INVOICE.vat, INVOICE.gross_total)
    assert str(note.issue_date) == "2026-11-30"
    (series_id, series, _), (note_id, new, stored), (invoice_id, invoice, on_invoice) = decision.touched
    assert (series_id, series) == (series_id_of("KOR", 2026), CREDIT_NUMBER.head)
    assert (note_id, new, stored) == (note.id, Stored([], 0, ""), [note])
    assert (invoice_id, invoice, on_invoice) == (
        INVOICE_ID,
        INVOICED,
        [InvoiceCredited(id=INVOICE_ID, credit_note_id=note.id, number="KOR/2026/000007", amount=INVOICE.gross_total)],
    )


def test_a_partial_credit_of_a_single_rate_invoice_is_one_correction_line_from_the_gross() -> None:
    part = CreditNoteRequested(
        id=INVOICE_ID, request_id=uuid4(), reason="Discount", amount=Decimal("30.00"), whole=False
    )
    decision = decide_credit(part, Stored([REVERSE_CHARGED], 1, "h"), CREDIT_NUMBER, NOW, SETTINGS)
    assert isinstance(decision, CreditNote)
    (line,) = decision.note.lines
    assert (line.kind, line.net, line.vat_category, decision.note.gross_total) == (
        "correction",
        Decimal("30.00"),
        "AE",
        Decimal("30.00"),
    )


def test_a_credit_note_already_issued_is_not_issued_again() -> None:
    credited = InvoiceCredited(
        id=INVOICE_ID,
        credit_note_id=credit_note_id_of(REQUEST.request_id),
        number="KOR/2026/000007",
        amount=INVOICE.gross_total,
    )
    assert decide_credit(REQUEST, Stored([INVOICE, credited], 2, "h"), CREDIT_NUMBER, NOW, SETTINGS) == Skip(
        why="credited already"
    )


JOB = UUID("00000000-0000-0000-0000-0000000000aa")
CUSTOMER = UUID("00000000-0000-0000-0000-0000000000cc")
QUOTE = uuid4()
REQUESTED = JobRequested(
    id=JOB, source=Source.PHONE, customer_id=CUSTOMER, site_address=None, job_type="install", description="A new boiler"
)
QUOTED = JobQuoted(id=JOB, quote_id=QUOTE, amount=Decimal("1000.00"))
ACCEPTED = QuoteAccepted(id=JOB, quote_id=QUOTE)
PRICES = PriceList(
    id=uuid4(),
    currency="EUR",
    is_default=True,
    activities={
        "install": Activity(code="install", name="Installation", unit=Unit.FLAT, rate=Decimal(900), vat_rate=Decimal(8))
    },
)
LISTS = {PRICES.id: PRICES}
PROFORMA_NUMBER = numbered(Stored([], 0, ""), DEFAULT_PATTERN, "PRO", 2026)


def customer(wants_proforma: bool = True) -> Stored:
    registered = CustomerRegistered(
        id=CUSTOMER,
        name="Harbour Café",
        wants_proforma=wants_proforma,
        billing_address=Address(street="Długa 5", city="Kraków", postal_code="31-147", country="PL"),
    )
    return Stored([registered], 1, "hash-of-the-customer")


JOB_STORED = Stored([REQUESTED, QUOTED, ACCEPTED], 3, "hash-of-the-job")
NOTHING = Stored([], 0, "")  # an aggregate not stored yet


def test_an_accepted_quote_gets_a_proforma_at_the_job_types_rate() -> None:
    decision = decide_proforma(
        ACCEPTED, Stored([], 0, ""), JOB_STORED, customer(), LISTS, PROFORMA_NUMBER, NOW, SETTINGS
    )
    assert isinstance(decision, Proforma)
    issued = decision.proforma
    assert (issued.id, issued.number, issued.net_total, issued.vat_total, issued.gross_total) == (
        proforma_id_of(QUOTE),
        "PRO/2026/000001",
        Decimal("1000.00"),
        Decimal("80.00"),
        Decimal("1080.00"),
    )
    assert [touched[0] for touched in decision.touched] == [series_id_of("PRO", 2026), issued.id]


def test_no_proforma_when_unwanted_unknown_or_issued_already() -> None:
    def decided(existing: Stored = NOTHING, job: Stored = JOB_STORED, who: Stored | None = None) -> object:
        return decide_proforma(ACCEPTED, existing, job, who or customer(), LISTS, PROFORMA_NUMBER, NOW, SETTINGS)

    assert decided(who=customer(wants_proforma=False)) == Skip(why="the customer wants no proforma")
    assert decided(job=Stored([REQUESTED, ACCEPTED], 2, "h")) == Skip(why="no such quote")
    assert decided(existing=Stored([], 1, "h")) == Skip(why="issued already")
