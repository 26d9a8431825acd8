"""The invoice decider, given/when/then: given the invoice's events, when the office records a
payment or asks for a credit note, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from events.contract import (
    CreditNoteRequested,
    InvoiceEvent,
    IssueCreditNote,
    PaymentApplied,
    RecordPayment,
    Role,
)
from services.domain.billing import Invoice, decide_invoice, evolve_invoice
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from tests.unit.invoices import INVOICE, INVOICE_ID, REVERSE_CHARGED

T = TypeVar("T")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))


def given(*events: InvoiceEvent) -> Invoice:
    invoice = Invoice(id=INVOICE_ID)
    for event in events:
        invoice = evolve_invoice(invoice, event)
    return invoice


def requested(amount: str, whole: bool = False) -> CreditNoteRequested:
    return CreditNoteRequested(
        id=INVOICE_ID, request_id=INVOICE_ID, reason="returned", amount=Decimal(amount), whole=whole
    )


def one(kind: type[T], events: list[Any]) -> T:
    """The one event a decision made, of the kind expected."""
    [event] = events
    assert isinstance(event, kind)
    return event


def applied(command: RecordPayment) -> PaymentApplied:
    return one(PaymentApplied, decide_invoice(command, given(INVOICE), OFFICE))


def test_an_issued_invoice_is_what_a_payment_is_decided_on() -> None:
    invoice = given(INVOICE)
    assert (invoice.version, invoice.number, invoice.currency, invoice.gross_total, invoice.vat_rates) == (
        1,
        "FV/2026/000042",
        "PLN",
        Decimal("449.68"),
        2,
    )


def test_a_payment_the_office_records_is_applied_in_the_invoice_s_currency() -> None:
    command = RecordPayment(amount=Decimal("200.00"), received_on=date(2026, 11, 25), payer="Jan Kowalski")
    payment = applied(command)
    assert payment == PaymentApplied(
        id=INVOICE_ID,
        payment_id=payment.payment_id,
        amount=Decimal("200.00"),
        currency="PLN",
        received_on=payment.received_on,
        rule="office",
        payer="Jan Kowalski",
    )
    assert payment.received_on == date(2026, 11, 25)
    assert given(INVOICE, payment).paid == Decimal("200.00")


def test_a_payment_s_id_is_derived_from_the_invoice_s_state() -> None:
    command = RecordPayment(amount=Decimal("100.00"), received_on=date(2026, 11, 25))
    first, again, second = (
        one(PaymentApplied, decide_invoice(command, given(*before), ADMIN))
        for before in [(INVOICE,), (INVOICE,), (INVOICE, applied(command))]
    )
    assert first.payment_id == again.payment_id != second.payment_id


def test_a_payment_has_at_most_cents() -> None:
    with pytest.raises(Invalid) as refused:
        decide_invoice(RecordPayment(amount=Decimal("10.005"), received_on=date(2026, 11, 25)), given(INVOICE), OFFICE)
    assert (refused.value.field, refused.value.reason) == ("amount", "PLN has cents: at most 2 decimal places")


@pytest.mark.parametrize(("ctx", "role"), [(TECHNICIAN, "technician"), (ACCOUNTANT, "accountant")])
def test_only_the_office_changes_invoices(ctx: Context, role: str) -> None:
    for command in (RecordPayment(amount=Decimal(1), received_on=date(2026, 11, 25)), IssueCreditNote(reason="x")):
        with pytest.raises(Forbidden, match=f"the {role} role may not change invoices; the office can"):
            decide_invoice(command, given(INVOICE), ctx)


def test_nothing_happens_to_an_invoice_never_issued() -> None:
    for command in (RecordPayment(amount=Decimal(1), received_on=date(2026, 11, 25)), IssueCreditNote(reason="x")):
        with pytest.raises(NotFound, match=f"invoice {INVOICE_ID} not found"):
            decide_invoice(command, given(), OFFICE)


def test_a_credit_note_without_an_amount_credits_the_whole_invoice() -> None:
    request = one(CreditNoteRequested, decide_invoice(IssueCreditNote(reason="wrong customer"), given(INVOICE), OFFICE))
    assert request == CreditNoteRequested(
        id=INVOICE_ID, request_id=request.request_id, reason="wrong customer", amount=Decimal("449.68"), whole=True
    )
    assert given(INVOICE, request).credited == Decimal("449.68")


def test_part_of_a_single_rate_invoice_can_be_credited() -> None:
    request = one(
        CreditNoteRequested,
        decide_invoice(IssueCreditNote(reason="discount", amount=Decimal("15.50")), given(REVERSE_CHARGED), OFFICE),
    )
    assert request == CreditNoteRequested(
        id=INVOICE_ID, request_id=request.request_id, reason="discount", amount=Decimal("15.50"), whole=False
    )
    # the rest of it, named, is not "the whole invoice": part of it was credited before
    rest = one(
        CreditNoteRequested,
        decide_invoice(
            IssueCreditNote(reason="rest", amount=Decimal("44.50")), given(REVERSE_CHARGED, requested("15.50")), OFFICE
        ),
    )
    assert (rest.amount, rest.whole) == (Decimal("44.50"), False)
    # all of it, named, is
    all_of_it = one(
        CreditNoteRequested,
        decide_invoice(IssueCreditNote(reason="all", amount=Decimal("60.00")), given(REVERSE_CHARGED), OFFICE),
    )
    assert all_of_it.whole


def test_an_invoice_credited_in_full_is_not_credited_again() -> None:
    with pytest.raises(InvalidTransition, match="cannot credit it again: the invoice is credited in full"):
        decide_invoice(IssueCreditNote(reason="again"), given(INVOICE, requested("449.68", whole=True)), OFFICE)


def test_once_part_is_credited_the_rest_must_be_named() -> None:
    with pytest.raises(Invalid) as refused:
        decide_invoice(IssueCreditNote(reason="rest"), given(REVERSE_CHARGED, requested("15.50")), OFFICE)
    assert refused.value.field == "amount"
    assert "part of FV/2026/000043 is credited already" in refused.value.reason
    assert "at most 44.50 EUR" in refused.value.reason


def test_no_more_is_credited_than_is_left() -> None:
    with pytest.raises(Invalid) as refused:
        decide_invoice(
            IssueCreditNote(reason="too much", amount=Decimal("50.00")),
            given(REVERSE_CHARGED, requested("15.50")),
            OFFICE,
        )
    assert (refused.value.field, refused.value.reason) == (
        "amount",
        "at most 44.50 EUR of FV/2026/000043 is left to credit",
    )


def test_a_credited_amount_has_at_most_cents() -> None:
    with pytest.raises(Invalid) as refused:
        decide_invoice(IssueCreditNote(reason="x", amount=Decimal("1.001")), given(REVERSE_CHARGED), OFFICE)
    assert (refused.value.field, refused.value.reason) == ("amount", "EUR has cents: at most 2 decimal places")


def test_an_invoice_with_several_rates_is_credited_whole() -> None:
    with pytest.raises(Invalid) as refused:
        decide_invoice(IssueCreditNote(reason="discount", amount=Decimal("10.00")), given(INVOICE), OFFICE)
    assert refused.value.field == "amount"
    assert refused.value.reason.startswith("FV/2026/000042 has several VAT rates: credit it whole")
