"""What a credit note the office requested issues: a pure function of the request, the
invoice as stored, the credit series' next number and one ``now``.

An issued invoice is never edited. The whole invoice is credited (its lines again), or part
of a single-rate one: one correction line whose net and VAT come from the gross amount at
the invoice's rate, rounded as EN 16931 does. The note, its number and the invoice's
``InvoiceCredited`` are saved in one batch."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from msgspec import Struct

from events.consumer import Stored
from events.contract import CreditNoteIssued, CreditNoteRequested, InvoiceCredited, InvoiceIssued
from invoicer.billing import Skip, Touched
from invoicer.ids import credit_note_id_of
from invoicer.numbering import Numbered
from invoicer.pricing import line_of, local_day, money, vat_breakdown
from invoicer.settings import Settings


class CreditNote(Struct, frozen=True, kw_only=True):
    """Issue the credit note: its number, the note, and the invoice's record of it."""

    outcome: ClassVar[str] = "credited"
    note: CreditNoteIssued
    touched: list[Touched]


def decide_credit(
    request: CreditNoteRequested, invoice: Stored, number: Numbered, now: datetime, settings: Settings
) -> CreditNote | Skip:
    credit_id = credit_note_id_of(request.request_id)
    if any(isinstance(e, InvoiceCredited) and e.credit_note_id == credit_id for e in invoice.events):
        return Skip(why="credited already")
    issued = next(e for e in invoice.events if isinstance(e, InvoiceIssued))
    if request.whole:
        lines, vat = issued.lines, issued.vat
    else:
        (rate,) = issued.vat
        net = money(request.amount / (1 + rate.rate / 100))
        line = line_of(
            "correction",
            "correction",
            f"Correction of {issued.number}: {request.reason}",
            Decimal(1),
            "flat",
            net,
            rate.rate,
            reverse=rate.category == "AE",
        )
        lines, vat = [line], vat_breakdown([line])
    net_total = sum((line.net for line in lines), Decimal(0))
    vat_total = sum((v.vat for v in vat), Decimal(0))
    today = local_day(now, settings.seller.timezone)
    assert number.year == today.year, "the number is of the series of the year it is issued in"
    note = CreditNoteIssued(
        id=credit_id,
        number=number.number,
        series=number.series,
        sequence=number.sequence,
        invoice_id=issued.id,
        invoice_number=issued.number,
        invoice_issue_date=issued.issue_date,
        customer_id=issued.customer_id,
        issue_date=today,
        currency=issued.currency,
        language=issued.language,
        reason=request.reason,
        seller=issued.seller,
        buyer=issued.buyer,
        lines=lines,
        vat=vat,
        net_total=net_total,
        vat_total=vat_total,
        gross_total=net_total + vat_total,
        reverse_charge=issued.reverse_charge,
        job_type=issued.job_type,
    )
    return CreditNote(
        note=note,
        touched=[
            number.allocation(credit_id),
            (credit_id, Stored([], 0, ""), [note]),
            (
                issued.id,
                invoice,
                [
                    InvoiceCredited(
                        id=issued.id, credit_note_id=credit_id, number=number.number, amount=note.gross_total
                    )
                ],
            ),
        ],
    )
