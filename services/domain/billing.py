"""Invoices as the write side sees them: enough to take a payment the office records.

Invoices are issued by the invoicer; here they are only folded (their number, currency and
what is still due) and a recorded payment is decided on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import (
    BankStatementImported,
    CreditNoteRequested,
    Day,
    InvoiceCredited,
    InvoiceDocumentStored,
    InvoiceEvents,
    InvoiceIssued,
    IssueCreditNote,
    PaymentApplied,
    PaymentReminderDue,
    RecordPayment,
    Role,
    StatementEvents,
    StatementLineUnmatched,
)
from services.domain.common import Context, Forbidden, Invalid, InvalidTransition, NotFound, derived_id


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    number: str = ""
    currency: str = ""
    gross_total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    credited: Decimal = Decimal(0)  # credit notes issued or requested
    vat_rates: int = 0
    customer_id: UUID | None = None


def evolve_invoice(invoice: Invoice, event: InvoiceEvents) -> Invoice:
    invoice = replace(invoice, version=invoice.version + 1)
    match event:
        case InvoiceIssued():
            return replace(
                invoice,
                number=event.number,
                currency=event.currency,
                gross_total=event.gross_total,
                customer_id=event.customer_id,
                vat_rates=len(event.vat),
            )
        case PaymentApplied():
            return replace(invoice, paid=invoice.paid + event.amount)
        case CreditNoteRequested():
            return replace(invoice, credited=invoice.credited + event.amount)
        case InvoiceDocumentStored() | PaymentReminderDue() | InvoiceCredited():  # documents and dunning
            return invoice
        case _:
            assert_never(event)


InvoiceCommand = RecordPayment | IssueCreditNote


def decide_invoice(
    command: InvoiceCommand, invoice: Invoice, ctx: Context
) -> list[PaymentApplied | CreditNoteRequested]:
    if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
        raise Forbidden(f"the {ctx.actor.role.value} role may not change invoices; the office can")
    if not invoice.version:
        raise NotFound("invoice", invoice.id)
    if isinstance(command, IssueCreditNote):
        return [_credit_note(command, invoice)]
    if _places(command.amount) > 2:
        raise Invalid("amount", f"{invoice.currency} has cents: at most 2 decimal places")
    return [
        PaymentApplied(
            id=invoice.id,
            payment_id=derived_id(invoice.id, invoice.version, "payment"),
            amount=command.amount,
            currency=invoice.currency,
            received_on=Day.of(command.received_on),
            rule="office",
            payer=command.payer,
        )
    ]


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    lines: int = 0


def evolve_statement(statement: Statement, event: StatementEvents) -> Statement:
    statement = replace(statement, version=statement.version + 1)
    match event:
        case BankStatementImported():
            return replace(statement, lines=statement.lines + len(event.lines))
        case StatementLineUnmatched():  # left for the office to review
            return statement
        case _:
            assert_never(event)


def _places(amount: Decimal) -> int:
    """How many decimal places an amount has (NaN and infinity: more than any currency has)."""
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 99


def _credit_note(command: IssueCreditNote, invoice: Invoice) -> CreditNoteRequested:
    """An issued invoice is never edited: it is corrected by a credit note that refers to it."""
    left = invoice.gross_total - invoice.credited
    if left <= 0:
        raise InvalidTransition("invoice", "credited in full", "credit it again")
    if command.amount is None:
        if invoice.credited:
            raise Invalid(
                "amount",
                f"part of {invoice.number} is credited already: name the amount "
                f"to credit (at most {left} {invoice.currency})",
            )
        amount, whole = invoice.gross_total, True
    else:
        if command.amount > left:
            raise Invalid("amount", f"at most {left} {invoice.currency} of {invoice.number} is left to credit")
        if _places(command.amount) > 2:
            raise Invalid("amount", f"{invoice.currency} has cents: at most 2 decimal places")
        if invoice.vat_rates > 1:
            raise Invalid(
                "amount",
                f"{invoice.number} has several VAT rates: credit it whole (no amount) and issue what is right again",
            )
        amount, whole = command.amount, command.amount == invoice.gross_total and not invoice.credited
    return CreditNoteRequested(
        id=invoice.id,
        request_id=derived_id(invoice.id, invoice.version, "credit"),
        reason=command.reason,
        amount=amount,
        whole=whole,
    )
