"""Monthly flat-rate retainers, invoiced on schedule.

A ``RetainerAgreed`` on a customer is invoiced once a month, on or after the first day of the
month in the company's time zone, from its first month until it is ended. The month's
invoice has an id derived from the retainer and the month, saved at version 1 in the same
atomic batch as the series' next number: a second run, a restart or another replica makes
the batch fail, so each month is invoiced exactly once and no number is skipped. A run
after some days away invoices every month it missed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from events.contract import (
    InvoiceIssued, InvoiceLine, InvoiceNumberAllocated, Party, RetainerAgreed, RetainerEnded, decode_event,
)
from invoicer.pricing import buyer_of, creditor_reference, invoice_number, local_day, money, reverse_charge, vat_breakdown
from invoicer.service import NAMESPACE, Consumer, Settings, Stored, series_id_of

log = logging.getLogger("invoicer.retainers")


class Agreed(msgspec.Struct, frozen=True, kw_only=True):
    retainer_id: UUID
    customer_id: UUID
    description: str
    amount: Decimal
    vat_rate: Decimal
    first_month: str
    last_month: str = ""


def months(first: str, last: str) -> list[str]:
    """Every YYYY-MM from ``first`` to ``last``, both included."""
    year, month = map(int, first.split("-"))
    found = []
    while f"{year:04d}-{month:02d}" <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


class RetainerBilling(Consumer):
    name = "retainers"

    def __init__(self, connection: object, settings: Settings) -> None:
        super().__init__(connection)  # type: ignore[arg-type]
        self.settings = settings
        self.retainers: dict[UUID, Agreed] = {}
        self._position = 0

    async def refresh(self) -> dict[UUID, Agreed]:
        for position, stored in await self.recorder.kind_events_async("customer", self._position):
            self._position = position
            event = decode_event(stored.state)
            if isinstance(event, RetainerAgreed):
                self.retainers[event.retainer_id] = Agreed(
                    retainer_id=event.retainer_id, customer_id=event.id, description=event.description,
                    amount=event.amount, vat_rate=event.vat_rate, first_month=event.first_month)
            elif isinstance(event, RetainerEnded) and event.retainer_id in self.retainers:
                self.retainers[event.retainer_id] = msgspec.structs.replace(
                    self.retainers[event.retainer_id], last_month=event.last_month)
        return self.retainers

    async def run_once(self, today: date | None = None) -> int:
        """Invoice every retainer month due by ``today``; how many invoices were issued."""
        today = today or local_day(datetime.now(UTC), self.settings.seller.timezone)
        issued = 0
        for retainer in (await self.refresh()).values():
            last = min(retainer.last_month or "9999-12", today.strftime("%Y-%m"))
            for month in months(retainer.first_month, last):
                invoice_id = uuid.uuid5(NAMESPACE, f"retainer:{retainer.retainer_id}:{month}")
                for _attempt in range(5):
                    if (await self.load(invoice_id)).version:
                        break  # invoiced already
                    try:
                        await self._issue(retainer, month, invoice_id, today)
                        issued += 1
                        break
                    except IntegrityError:  # another run took the number (or the month): look again
                        continue
        return issued

    async def _issue(self, retainer: Agreed, month: str, invoice_id: UUID, today: date) -> None:
        seller = self.settings.seller
        buyer = buyer_of(retainer.customer_id, (await self.load(retainer.customer_id)).events)
        reverse = reverse_charge(seller, buyer)
        net = money(retainer.amount)
        line = InvoiceLine(kind="retainer", code="retainer", description=f"{retainer.description} ({month})",
                           quantity=Decimal(1), unit="flat", unit_price=net, net=net,
                           vat_rate=Decimal(0) if reverse else retainer.vat_rate,
                           vat_category="AE" if reverse else ("Z" if retainer.vat_rate == 0 else "S"))
        vat = vat_breakdown([line])
        tax = sum((v.vat for v in vat), Decimal(0))
        series_id = series_id_of(self.settings.series, today.year)
        series = await self.head(series_id)
        sequence = series.version + 1
        number = invoice_number(self.settings.pattern, self.settings.series, today.year, sequence)
        issued = InvoiceIssued(
            id=invoice_id, number=number, series=self.settings.series, sequence=sequence,
            job_id=retainer.retainer_id, customer_id=buyer.id, issue_date=today.isoformat(),
            supply_date=f"{month}-01", due_date=(today + timedelta(days=buyer.payment_terms_days)).isoformat(),
            currency=buyer.currency, language=buyer.language, seller=seller.party(),
            buyer=Party(name=buyer.name, address=buyer.billing_address, vat_id=buyer.vat_id, email=buyer.email),
            lines=[line], vat=vat, net_total=net, vat_total=tax, gross_total=net + tax,
            payment_reference=creditor_reference(number), reverse_charge=reverse, job_type="retainer",
            job_summary=retainer.description, retainer_id=retainer.retainer_id, period=month)
        await self.save(None, [
            (series_id, series, [InvoiceNumberAllocated(id=series_id, series=self.settings.series, year=today.year,
                                                        sequence=sequence, number=number, invoice_id=invoice_id)]),
            (invoice_id, Stored([], 0, ""), [issued]),
        ], command_id=f"retainer:{retainer.retainer_id}:{month}")
        log.info("retainer %s: invoice %s for %s issued", retainer.retainer_id, number, month)
