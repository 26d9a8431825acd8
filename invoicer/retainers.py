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
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from events.consumer import Consumer, Stored
from events.contract import InvoiceIssued, RetainerAgreed, RetainerEnded, decode_event
from events.jetstream import NatsConnection
from invoicer.ids import retainer_invoice_id_of
from invoicer.numbering import next_number
from invoicer.pricing import buyer_of, creditor_reference, line_of, local_day, money, reverse_charge, vat_breakdown
from invoicer.settings import Settings

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

    def __init__(self, connection: NatsConnection, settings: Settings) -> None:
        super().__init__(connection)
        self.settings = settings
        self.retainers: dict[UUID, Agreed] = {}
        self._position = 0
        self._invoiced: set[UUID] = set()  # months known invoiced: not looked up again every run

    async def refresh(self) -> dict[UUID, Agreed]:
        for position, stored in await self.recorder.kind_events_async("customer", self._position):
            self._position = position
            event = decode_event(stored.state)
            if isinstance(event, RetainerAgreed):
                self.retainers[event.retainer_id] = Agreed(
                    retainer_id=event.retainer_id,
                    customer_id=event.id,
                    description=event.description,
                    amount=event.amount,
                    vat_rate=event.vat_rate,
                    first_month=event.first_month,
                )
            elif isinstance(event, RetainerEnded) and event.retainer_id in self.retainers:
                self.retainers[event.retainer_id] = msgspec.structs.replace(
                    self.retainers[event.retainer_id], last_month=event.last_month
                )
        return self.retainers

    async def run_once(self, today: date | None = None) -> int:
        """Invoice every retainer month due by ``today``; how many invoices were issued."""
        today = today or local_day(datetime.now(UTC), self.settings.seller.timezone)
        issued = 0
        for retainer in (await self.refresh()).values():
            last = min(retainer.last_month or "9999-12", today.strftime("%Y-%m"))
            for month in months(retainer.first_month, last):
                invoice_id = retainer_invoice_id_of(retainer.retainer_id, month)
                for _attempt in range(5):
                    if invoice_id in self._invoiced or (await self.load(invoice_id)).version:
                        self._invoiced.add(invoice_id)
                        break  # invoiced already
                    try:
                        await self._issue(retainer, month, invoice_id, today)
                        self._invoiced.add(invoice_id)
                        issued += 1
                        break
                    except IntegrityError:  # another run took the number (or the month): look again
                        continue
        return issued

    async def _issue(self, retainer: Agreed, month: str, invoice_id: UUID, today: date) -> None:
        seller = self.settings.seller
        buyer = buyer_of(retainer.customer_id, (await self.load(retainer.customer_id)).events)
        reverse = reverse_charge(seller, buyer)
        line = line_of(
            "retainer",
            "retainer",
            f"{retainer.description} ({month})",
            Decimal(1),
            "flat",
            money(retainer.amount),
            retainer.vat_rate,
            reverse,
        )
        vat = vat_breakdown([line])
        tax = sum((v.vat for v in vat), Decimal(0))
        numbered = await next_number(self, self.settings.pattern, self.settings.series, today.year)
        issued = InvoiceIssued(
            id=invoice_id,
            number=numbered.number,
            series=numbered.series,
            sequence=numbered.sequence,
            job_id=retainer.retainer_id,
            customer_id=buyer.id,
            issue_date=today,
            supply_date=date.fromisoformat(f"{month}-01"),
            due_date=today + timedelta(days=buyer.payment_terms_days),
            currency=buyer.currency,
            language=buyer.language,
            seller=seller.party(),
            buyer=buyer.party(),
            lines=[line],
            vat=vat,
            net_total=line.net,
            vat_total=tax,
            gross_total=line.net + tax,
            payment_reference=creditor_reference(numbered.number),
            reverse_charge=reverse,
            job_type="retainer",
            job_summary=retainer.description,
            retainer_id=retainer.retainer_id,
            period=month,
        )
        await self.save(
            None,
            [numbered.allocation(invoice_id), (invoice_id, Stored([], 0, ""), [issued])],
            command_id=f"retainer:{retainer.retainer_id}:{month}",
        )
        log.info("retainer %s: invoice %s for %s issued", retainer.retainer_id, numbered.number, month)
