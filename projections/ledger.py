"""Posting to accounting: each invoice and payment as balanced double-entry journal lines.

Pure: ``journal(event, position)`` gives the lines an event posts, and every entry's debits
equal its credits by construction (an invoice's gross is its net plus its VAT, rounded once
by the pricing). Accounts, per currency:

- ``receivables`` debited by an invoice's gross, credited by payments (a negative balance
  is the customer's credit);
- ``revenue:<job type>`` credited by each invoice's net, per job type;
- ``vat payable:<rate>`` credited by the VAT of each rate (reverse charge posts none);
- ``bank`` debited by each payment;
- a credit note reverses its invoice's posting for what it credits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from msgspec import Struct

from events.contract import CreditNoteIssued, Event, InvoiceIssued, PaymentApplied


class JournalLine(Struct, frozen=True, kw_only=True):
    entry: str  # the posting's id: the invoice's, or the payment's
    line: int
    day: str
    account: str
    debit: Decimal
    credit: Decimal
    currency: str
    document: str  # the invoice number
    customer_id: UUID
    source: str  # InvoiceIssued, PaymentApplied
    position: int


def journal(event: Event, position: int, number: str = "", customer_id: UUID | None = None) -> list[JournalLine]:
    """The lines ``event`` posts. A payment needs its invoice's number and customer."""
    zero = Decimal(0)
    match event:
        case InvoiceIssued():
            lines = [("receivables", event.gross_total, zero)]
            revenue = f"revenue:{event.job_type or 'other'}"
            lines.append((revenue, zero, event.net_total))
            lines.extend((f"vat payable:{v.rate.normalize():f}%", zero, v.vat) for v in event.vat if v.vat)
            return [
                JournalLine(
                    entry=str(event.id),
                    line=n,
                    day=event.issue_date.isoformat(),
                    account=account,
                    debit=debit,
                    credit=credit,
                    currency=event.currency,
                    document=event.number,
                    customer_id=event.customer_id,
                    source="InvoiceIssued",
                    position=position,
                )
                for n, (account, debit, credit) in enumerate(lines, start=1)
            ]
        case CreditNoteIssued():  # the invoice's posting reversed, for what is credited
            lines = [
                ("receivables", zero, event.gross_total),
                (f"revenue:{event.job_type or 'other'}", event.net_total, zero),
            ]
            lines.extend((f"vat payable:{v.rate.normalize():f}%", v.vat, zero) for v in event.vat if v.vat)
            return [
                JournalLine(
                    entry=str(event.id),
                    line=n,
                    day=event.issue_date.isoformat(),
                    account=account,
                    debit=debit,
                    credit=credit,
                    currency=event.currency,
                    document=event.number,
                    customer_id=event.customer_id,
                    source="CreditNoteIssued",
                    position=position,
                )
                for n, (account, debit, credit) in enumerate(lines, start=1)
            ]
        case PaymentApplied() if customer_id is not None:
            lines = [("bank", event.amount, zero), ("receivables", zero, event.amount)]
            return [
                JournalLine(
                    entry=str(event.payment_id),
                    line=n,
                    day=event.received_on.isoformat(),
                    account=account,
                    debit=debit,
                    credit=credit,
                    currency=event.currency,
                    document=number,
                    customer_id=customer_id,
                    source="PaymentApplied",
                    position=position,
                )
                for n, (account, debit, credit) in enumerate(lines, start=1)
            ]
    return []


class Balance(Struct, frozen=True, kw_only=True):
    account: str
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


def trial_balance(lines: Iterable[JournalLine]) -> list[Balance]:
    """Debits and credits per account and currency; per currency they are always equal."""
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in lines:
        total = totals[(line.currency, line.account)]
        total[0] += line.debit
        total[1] += line.credit
    return [
        Balance(account=account, currency=currency, debit=d, credit=c)
        for (currency, account), (d, c) in sorted(totals.items())
    ]


def unbalanced(balances: Iterable[Balance]) -> dict[str, Decimal]:
    """Per currency, debits minus credits where they differ (empty when the books balance)."""
    difference: dict[str, Decimal] = defaultdict(Decimal)
    for balance in balances:
        difference[balance.currency] += balance.balance
    return {currency: amount for currency, amount in difference.items() if amount}
