"""What an accepted quote issues for a customer who wants a proforma: a pure function of the
acceptance, the job, the customer and the price lists as loaded, the proforma series' next
number and one ``now``.

A proforma is a request for payment in advance, not a tax document: the quoted amount at
the VAT rate of the job type's activity (else ``labour``'s) on the customer's lists,
reverse-charged like an invoice, numbered in its own series."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from msgspec import Struct

from events.consumer import Stored
from events.contract import JobQuoted, ProformaIssued, QuoteAccepted
from invoicer.billing import Skip, Touched
from invoicer.ids import proforma_id_of
from invoicer.numbering import Numbered
from invoicer.pricing import (
    PriceList,
    buyer_of,
    creditor_reference,
    line_of,
    local_day,
    money,
    reverse_charge,
    vat_breakdown,
    work_of,
)
from invoicer.settings import Settings


class Proforma(Struct, frozen=True, kw_only=True):
    """Issue the proforma, with its number."""

    outcome: ClassVar[str] = "proforma"
    proforma: ProformaIssued
    touched: list[Touched]


def decide_proforma(
    accepted: QuoteAccepted,
    existing: Stored,
    job: Stored,
    customer: Stored | None,
    lists: Mapping[UUID, PriceList],
    number: Numbered,
    now: datetime,
    settings: Settings,
) -> Proforma | Skip:
    """``existing`` is the proforma as stored (version 0: none yet)."""
    if existing.version:
        return Skip(why="issued already")
    quote = next((e for e in job.events if isinstance(e, JobQuoted) and e.quote_id == accepted.quote_id), None)
    work = work_of(accepted.id, job.events)
    if quote is None or work.customer_id is None or customer is None:
        return Skip(why="no such quote")
    buyer = buyer_of(work.customer_id, customer.events)
    if not buyer.wants_proforma:
        return Skip(why="the customer wants no proforma")
    activities = {
        k: v
        for p in lists.values()
        if p.currency == buyer.currency and (p.is_default or p.id == buyer.price_list_id)
        for k, v in p.activities.items()
    }
    listed = activities.get(work.job_type) or activities.get("labour")
    rate = listed.vat_rate if listed else settings.seller.material_vat_rate
    reverse = reverse_charge(settings.seller, buyer)
    line = line_of(
        "quote",
        work.job_type or "quote",
        f"Quoted work: {work.job_type}",
        Decimal(1),
        "flat",
        money(quote.amount),
        rate,
        reverse,
    )
    vat = vat_breakdown([line])
    tax = sum((v.vat for v in vat), Decimal(0))
    today = local_day(now, settings.seller.timezone)
    assert number.year == today.year, "the number is of the series of the year it is issued in"
    proforma_id = proforma_id_of(accepted.quote_id)
    issued = ProformaIssued(
        id=proforma_id,
        number=number.number,
        job_id=accepted.id,
        quote_id=accepted.quote_id,
        customer_id=buyer.id,
        issue_date=today,
        due_date=today + timedelta(days=buyer.payment_terms_days),
        currency=buyer.currency,
        language=buyer.language,
        seller=settings.seller.party(),
        buyer=buyer.party(),
        lines=[line],
        vat=vat,
        net_total=line.net,
        vat_total=tax,
        gross_total=line.net + tax,
        payment_reference=creditor_reference(number.number),
        reverse_charge=reverse,
        job_type=work.job_type,
    )
    return Proforma(
        proforma=issued, touched=[number.allocation(proforma_id), (proforma_id, Stored([], 0, ""), [issued])]
    )
