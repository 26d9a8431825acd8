"""Invoices as the write side sees them: enough to take a payment the office records.

Invoices are issued by the invoicer; here they are only folded (their number, currency and
what is still due) and a recorded payment is decided on.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import (
    BankStatementImported, InvoiceIssued, PaymentApplied, RecordPayment, Role, StatementEvent,
)
from services.domain.common import Context, Forbidden, Invalid, InvalidTransition, derived_id


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    number: str = ""
    currency: str = ""
    gross_total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    customer_id: UUID | None = None


def evolve_invoice(invoice: Invoice, event: object) -> Invoice:
    invoice = replace(invoice, version=invoice.version + 1)
    match event:
        case InvoiceIssued():
            return replace(invoice, number=event.number, currency=event.currency,
                           gross_total=event.gross_total, customer_id=event.customer_id)
        case PaymentApplied():
            return replace(invoice, paid=invoice.paid + event.amount)
    return invoice


def decide_invoice(command: RecordPayment, invoice: Invoice, ctx: Context) -> list[PaymentApplied]:
    if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
        raise Forbidden(f"the {ctx.actor.role.value} role may not record payments; the office can")
    if not invoice.version:
        raise InvalidTransition("invoice", "not issued", "record a payment")
    if command.amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise Invalid("amount", f"{invoice.currency} has cents: at most 2 decimal places")
    return [PaymentApplied(id=invoice.id, payment_id=derived_id(invoice.id, invoice.version, "payment"),
                           amount=command.amount, currency=invoice.currency, received_on=command.received_on,
                           rule="office", payer=command.payer)]


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    lines: int = 0


def evolve_statement(statement: Statement, event: StatementEvent) -> Statement:
    statement = replace(statement, version=statement.version + 1)
    if isinstance(event, BankStatementImported):
        return replace(statement, lines=statement.lines + len(event.lines))
    return statement
