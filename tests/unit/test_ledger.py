"""The ledger: every invoice and payment posts balanced journal lines, over any history."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from events.contract import Day, InvoiceIssued, InvoiceLine, Party, PaymentApplied
from invoicer.pricing import money, vat_breakdown
from projections.ledger import journal, trial_balance, unbalanced

RATES = [Decimal(0), Decimal(5), Decimal(8), Decimal(21), Decimal(23)]
CURRENCIES = ["EUR", "PLN", "CZK", "RON"]

lines = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2),
        st.integers(1, 40),
        st.sampled_from(RATES),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
histories = st.lists(
    st.tuples(
        lines,
        st.sampled_from(CURRENCIES),
        st.sampled_from(["repair", "install", ""]),
        st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"), places=2), max_size=3),
    ),
    min_size=1,
    max_size=12,
)


def invoice(items: list[tuple[Decimal, int, Decimal, bool]], currency: str, job_type: str) -> InvoiceIssued:
    reverse = items[0][3]
    billed = [
        InvoiceLine(
            kind="time",
            code="x",
            description="x",
            quantity=Decimal(q),
            unit="hour",
            unit_price=p,
            net=money(p * q),
            vat_rate=Decimal(0) if reverse else r,
            vat_category="AE" if reverse else ("Z" if r == 0 else "S"),
        )
        for p, q, r, _ in items
    ]
    vat = vat_breakdown(billed)
    net = sum((line.net for line in billed), Decimal(0))
    tax = sum((v.vat for v in vat), Decimal(0))
    return InvoiceIssued(
        id=uuid.uuid4(),
        number="FV/2026/000001",
        series="FV",
        sequence=1,
        job_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        issue_date=date(2026, 11, 23),
        supply_date=date(2026, 11, 23),
        due_date=date(2026, 12, 7),
        currency=currency,
        language="en",
        seller=Party(name="s"),
        buyer=Party(name="b"),
        lines=billed,
        vat=vat,
        net_total=net,
        vat_total=tax,
        gross_total=net + tax,
        payment_reference="RF00",
        reverse_charge=reverse,
        job_type=job_type,
    )


@settings(max_examples=200, deadline=None)
@given(histories)
def test_the_trial_balance_always_balances(history: list) -> None:  # type: ignore[type-arg]
    posted = []
    receivable: dict[str, Decimal] = {}
    position = 0
    for items, currency, job_type, payments in history:
        issued = invoice(items, currency, job_type)
        position += 1
        entry = journal(issued, position)
        assert sum(l.debit for l in entry) == sum(l.credit for l in entry) == issued.gross_total
        posted.extend(entry)
        receivable[currency] = receivable.get(currency, Decimal(0)) + issued.gross_total
        for amount in payments:  # partial payments and overpayments alike
            position += 1
            paid = PaymentApplied(
                id=issued.id,
                payment_id=uuid.uuid4(),
                amount=amount,
                currency=currency,
                received_on=Day.of(date(2026, 11, 24)),
                rule="office",
            )
            posted.extend(journal(paid, position, issued.number, issued.customer_id))
            receivable[currency] -= amount
    balances = trial_balance(posted)
    assert unbalanced(balances) == {}
    for currency, owed in receivable.items():
        assert sum(b.balance for b in balances if b.account == "receivables" and b.currency == currency) == owed


def test_an_invoice_posts_receivables_revenue_per_job_type_and_vat_per_rate() -> None:
    issued = invoice(
        [(Decimal("100.00"), 1, Decimal(21), False), (Decimal("10.00"), 2, Decimal(8), False)], "EUR", "repair"
    )
    assert [(l.account, l.debit, l.credit) for l in journal(issued, 7)] == [
        ("receivables", Decimal("142.60"), Decimal(0)),
        ("revenue:repair", Decimal(0), Decimal("120.00")),
        ("vat payable:21%", Decimal(0), Decimal("21.00")),
        ("vat payable:8%", Decimal(0), Decimal("1.60")),
    ]
    reverse = invoice([(Decimal("100.00"), 1, Decimal(21), True)], "EUR", "repair")
    assert [line.account for line in journal(reverse, 8)] == ["receivables", "revenue:repair"]  # no VAT posted
