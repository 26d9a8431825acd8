"""Matching bank statement credits to invoices.

A consumer of ``BankStatementImported``: each credit line is matched to an open invoice by
the first rule that finds one, in this order, and the rule is recorded on the payment:

1. ``invoice number``: the invoice's number in the remittance text (``FV/2026/000123``,
   also written without the slashes);
2. ``RF reference``: the ISO 11649 creditor reference printed on the invoice, structured
   or in the text;
3. ``variable symbol``: the Czech variable symbol printed on CZK invoices (its digits);
4. ``amount and payer``: a payer IBAN seen paying this customer before, and exactly one
   of the customer's open invoices with that amount outstanding.

A line no rule matches, or in another currency than the invoice it names, goes to the
office's review queue (``StatementLineUnmatched``). So does a second copy of an entry, from
the same file or a later one (the bank's reference, camt.053 ``AcctSvcrRef`` or the MT940
bank reference, else the entry's date, amount, payer and text): it is applied once, and the
copy waits for review as a likely duplicate. A payment larger than what is due is
applied whole: the excess is the customer's credit. Each statement part's payments and
unmatched lines are saved with the matcher's tracking record in one atomic batch, so a
statement is matched once, however often it is delivered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from events.consumer import Consumer, Stored
from events.contract import (
    BankStatementImported,
    Event,
    InvoiceCredited,
    InvoiceIssued,
    PaymentApplied,
    PaymentReminderDue,
    StatementLine,
    StatementLineUnmatched,
    decode_event,
    event_hash,
)
from events.jetstream import NatsConnection
from events.wire import originator_uuid
from invoicer.ids import payment_id_of
from invoicer.pricing import creditor_reference, variable_symbol

TOKEN = re.compile(r"[A-Z0-9]+(?:[/\-.][A-Z0-9]+)*")


def _normal(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


class Open(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice as matching sees it, with what it takes to append to it."""

    id: UUID
    number: str
    currency: str
    customer_id: UUID
    gross_total: Decimal
    paid: Decimal = Decimal(0)
    version: int = 0
    last_hash: str = ""
    due_date: date | None = None
    reminded: int = 0  # the last dunning step recorded
    credited: Decimal = Decimal(0)

    @property
    def due(self) -> Decimal:
        return self.gross_total - self.paid - self.credited


class Ledger:
    """Every invoice and what was paid on it, read from the stream incrementally."""

    def __init__(self) -> None:
        self.invoices: dict[UUID, Open] = {}
        self.keys: dict[str, tuple[str, UUID]] = {}  # normalized number / RF / VS -> (rule, invoice)
        self.payers: dict[str, set[UUID]] = {}  # payer IBAN -> customers it has paid for
        self.paid_lines: dict[tuple[UUID, int], str] = {}  # (statement, line) -> the invoice number it paid
        self.position = 0

    def add(self, position: int, originator: UUID, version: int, state: bytes, event: Event) -> None:
        self.position = max(self.position, position)
        digest = event_hash(state)
        match event:
            case InvoiceIssued():
                self.invoices[originator] = Open(
                    id=originator,
                    number=event.number,
                    currency=event.currency,
                    customer_id=event.customer_id,
                    gross_total=event.gross_total,
                    version=version,
                    last_hash=digest,
                    due_date=event.due_date,
                )
                self.keys[_normal(event.number)] = ("invoice number", originator)
                self.keys[_normal(creditor_reference(event.number))] = ("RF reference", originator)
                self.keys.setdefault(variable_symbol(event.number), ("variable symbol", originator))
                return
            case PaymentApplied() if originator in self.invoices:
                invoice = self.invoices[originator]
                self.invoices[originator] = msgspec.structs.replace(invoice, paid=invoice.paid + event.amount)
                if event.payer_iban:
                    self.payers.setdefault(_normal(event.payer_iban), set()).add(invoice.customer_id)
                if event.statement_id is not None:
                    self.paid_lines[(event.statement_id, event.line)] = invoice.number
            case InvoiceCredited() if originator in self.invoices:
                invoice = self.invoices[originator]
                self.invoices[originator] = msgspec.structs.replace(invoice, credited=invoice.credited + event.amount)
            case PaymentReminderDue() if originator in self.invoices:
                invoice = self.invoices[originator]
                self.invoices[originator] = msgspec.structs.replace(invoice, reminded=max(invoice.reminded, event.step))
        if originator in self.invoices:
            self.invoices[originator] = msgspec.structs.replace(
                self.invoices[originator], version=version, last_hash=digest
            )

    def match(self, line: StatementLine, overlay: dict[UUID, Open]) -> tuple[str, Open | None, str]:
        """(rule, invoice, reason): the invoice this credit pays, or why none."""
        text = f"{line.reference} {line.text}".upper()
        for token in TOKEN.findall(text):
            for key in {_normal(token), token.replace(".", "")}:
                found = self.keys.get(key)
                if found is None:
                    continue
                rule, invoice_id = found
                if rule == "variable symbol" and not key.isdigit():
                    continue
                invoice = overlay.get(invoice_id) or self.invoices[invoice_id]
                if invoice.currency != line.currency:
                    return rule, None, f"names {invoice.number}, which is in {invoice.currency}, not {line.currency}"
                return rule, invoice, ""
        customers = self.payers.get(_normal(line.payer_iban), set()) if line.payer_iban else set()
        if customers:
            candidates = [
                i
                for i in (overlay.get(k) or v for k, v in self.invoices.items())
                if i.customer_id in customers and i.currency == line.currency and i.due == line.amount
            ]
            if len(candidates) == 1:
                return "amount and payer", candidates[0], ""
            if len(candidates) > 1:
                return "", None, f"{len(candidates)} open invoices of this payer are due {line.amount}"
        return "", None, "no invoice number, reference or variable symbol found, and the payer is not known"


async def refreshed(consumer: Consumer, ledger: Ledger) -> Ledger:
    """The ledger with every invoice event stored since it was last read."""
    for position, stored in await consumer.recorder.kind_events_async("invoice", ledger.position):
        event = decode_event(stored.state)
        ledger.add(position, originator_uuid(stored), stored.originator_version, stored.state, event)
    return ledger


class Listed(msgspec.Struct, frozen=True):
    """Where a bank entry was first listed: the stream position of its statement part, its line."""

    position: int
    line: int
    statement_id: UUID
    reference: str  # the statement's own id (camt Stmt/Id, MT940 :20:)


class Entries:
    """Every credit entry of every statement imported, by its key, where it was first listed;
    read from the stream incrementally."""

    def __init__(self) -> None:
        self.first: dict[str, Listed] = {}
        self.position = 0

    def add(self, position: int, part: BankStatementImported) -> None:
        for line in credits(part.lines):
            self.first.setdefault(line.key(), Listed(position, line.index, part.id, part.reference))

    def earlier(self, line: StatementLine, position: int) -> Listed | None:
        """The entry's first listing, if it came before this line of the part at ``position``."""
        first = self.first.get(line.key())
        return first if first is not None and (first.position, first.line) < (position, line.index) else None


def duplicate_reason(line: StatementLine, first: Listed, statement_id: UUID, paid: str | None) -> str:
    same = f"bank reference {line.bank_reference}" if line.entry_key else "the same date, amount, payer and text"
    where = (
        f"line {first.line} of this statement"
        if first.statement_id == statement_id
        else f"line {first.line} of statement {first.reference or first.statement_id}, imported earlier"
    )
    outcome = f", applied to {paid}" if paid else ", also waiting for review"
    return f"likely a duplicate: the same entry ({same}) as {where}{outcome}; not applied again"


class PaymentMatcher(Consumer):
    name = "payments"
    triggers = frozenset({"BankStatementImported"})

    def __init__(self, connection: NatsConnection) -> None:
        super().__init__(connection)
        self.ledger = Ledger()
        self.entries = Entries()

    async def refresh(self) -> Ledger:
        return await refreshed(self, self.ledger)

    async def listed(self) -> Entries:
        """Every statement's entries as stored now (the parts after this one too: ``earlier`` tells)."""
        for position, stored in await self.recorder.kind_events_async("statement", self.entries.position):
            self.entries.position = position
            if stored.topic == "BankStatementImported":
                part = decode_event(stored.state)
                assert isinstance(part, BankStatementImported)
                self.entries.add(position, part)
        return self.entries

    async def decide_and_save(self, notification: Notification) -> str:
        ledger = await self.refresh()
        entries = await self.listed()
        statement_id = originator_uuid(notification)
        part = decode_event(notification.state)
        assert isinstance(part, BankStatementImported)
        overlay: dict[UUID, Open] = {}  # invoices as this part leaves them
        payments: dict[UUID, list[Event]] = {}
        unmatched: list[Event] = []
        paid_here: dict[int, str] = {}  # line -> the invoice number it paid, in this part
        for line in credits(part.lines):
            first = entries.earlier(line, notification.id)
            if first is not None:  # listed before, in this file or an earlier one: never applied twice
                paid = (
                    paid_here.get(first.line)
                    if first.position == notification.id
                    else ledger.paid_lines.get((first.statement_id, first.line))
                )
                unmatched.append(
                    StatementLineUnmatched(
                        id=statement_id,
                        line=line.index,
                        amount=line.amount,
                        currency=line.currency,
                        payer=line.payer,
                        text=f"{line.reference} {line.text}".strip()[:500],
                        reason=duplicate_reason(line, first, statement_id, paid),
                    )
                )
                continue
            rule, invoice, reason = ledger.match(line, overlay)
            if invoice is None:
                unmatched.append(
                    StatementLineUnmatched(
                        id=statement_id,
                        line=line.index,
                        amount=line.amount,
                        currency=line.currency,
                        payer=line.payer,
                        text=f"{line.reference} {line.text}".strip()[:500],
                        reason=reason,
                    )
                )
                continue
            payments.setdefault(invoice.id, []).append(
                PaymentApplied(
                    id=invoice.id,
                    payment_id=payment_id_of(statement_id, line.index),
                    amount=line.amount,
                    currency=line.currency,
                    received_on=line.booked_on,
                    rule=rule,
                    payer=line.payer,
                    payer_iban=line.payer_iban,
                    statement_id=statement_id,
                    line=line.index,
                )
            )
            overlay[invoice.id] = msgspec.structs.replace(invoice, paid=invoice.paid + line.amount)
            paid_here[line.index] = invoice.number
        touched = [
            (invoice_id, Stored([], ledger.invoices[invoice_id].version, ledger.invoices[invoice_id].last_hash), events)
            for invoice_id, events in payments.items()
        ]
        if unmatched:
            touched.append((statement_id, await self.head(statement_id), unmatched))
        await self.save(notification, touched)
        return "matched"


def credits(lines: Iterable[StatementLine]) -> Iterable[StatementLine]:
    return (line for line in lines if line.amount > 0)
