"""The invoice (the id is derived from the job's; the number from its series' next
sequence): issued, rendered, paid, reminded, credited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from events.contract.base import Bound, Command, Event
from events.contract.document import InvoiceLine, Party, VatSubtotal
from events.contract.values import Day, Money, OptionalText, Reason


class InvoiceEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "invoice"


class InvoiceIssued(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """Everything printed on the invoice, so it can be rendered again from the log alone."""

    number: str
    series: str
    sequence: int
    job_id: UUID
    customer_id: UUID
    issue_date: date  # in the company's time zone; stored as "YYYY-MM-DD", as always
    supply_date: date
    due_date: date
    currency: str
    language: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    payment_reference: str
    reverse_charge: bool = False
    job_type: str = ""
    job_summary: str = ""
    interim: bool = False  # the work to date on a job still open; the final invoice follows
    retainer_id: UUID | None = None  # a retainer's monthly invoice: job_id is the retainer's id
    period: str = ""  # the month a retainer's invoice is for, YYYY-MM


class CreditNoteRequested(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for the invoice to be corrected: the invoicer issues the credit note."""

    request_id: UUID
    reason: str
    amount: Decimal  # gross, in the invoice's currency
    whole: bool  # the whole invoice, line by line


class InvoiceCredited(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A credit note issued against the invoice (in the same batch as the credit note)."""

    credit_note_id: UUID
    number: str
    amount: Decimal  # gross


class InvoiceDocumentStored(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A rendering of the invoice, put in the documents object store."""

    name: str
    media_type: str
    sha256: str
    size: int


class PaymentApplied(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """Money received for the invoice, and which rule matched it (or the office by hand)."""

    payment_id: UUID
    amount: Decimal
    currency: str
    received_on: Day
    rule: str  # invoice number, RF reference, variable symbol, amount and payer, office
    payer: str = ""
    payer_iban: str = ""
    statement_id: UUID | None = None
    line: int = 0


class PaymentReminderDue(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A step of the dunning schedule reached for an unpaid invoice, for the notifier to
    deliver (a reminder to the customer, or an escalation to a named office user)."""

    step: int
    level: str  # friendly, firm, escalation
    days_overdue: int
    outstanding: Decimal
    currency: str
    due_date: date
    escalate_to: str = ""


InvoiceEvents = (
    InvoiceIssued | InvoiceDocumentStored | PaymentApplied | PaymentReminderDue | CreditNoteRequested | InvoiceCredited
)


class IssueCreditNote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Correct an issued invoice: credit all of it (no amount), or part of a single-rate one."""

    reason: Reason
    amount: Money | None = None  # gross; none: the whole invoice

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"), low_inclusive=False)}


class RecordPayment(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The office records money received for an invoice (cash, a card, a transfer seen)."""

    amount: Money
    received_on: date  # from 2000-01-01 to a year from today
    payer: OptionalText = ""
    note: OptionalText = ""

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"), low_inclusive=False)}
