"""Dunning: reminders for unpaid invoices on a configurable schedule.

Each step (by default a friendly reminder 3 days after the due date, a firmer one after 14,
and an escalation to a named office user after 30) is a ``PaymentReminderDue`` event on
the invoice, for the notifier to deliver. The event is appended at the invoice's version
as the policy read it: if a payment was recorded meanwhile, the append fails, the policy
reads again, and a paid invoice is never reminded, even when the payment arrives the same
day as the reminder. Each step is recorded once; a late run sends only the latest step due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import IntegrityError

from events.consumer import Consumer, Stored
from events.contract import PaymentReminderDue
from events.jetstream import NatsConnection
from invoicer.payments import Ledger, Open, refreshed

log = logging.getLogger("invoicer.dunning")


class Step(msgspec.Struct, frozen=True):
    days: int
    level: str
    escalate_to: str = ""


DEFAULT_SCHEDULE = "3:friendly,14:firm,30:escalation:office"


def schedule_of(text: str) -> list[Step]:
    """``3:friendly,14:firm,30:escalation:olga``: days past due, level, and for an
    escalation the office user it goes to."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        days, _, rest = part.partition(":")
        level, _, user = rest.partition(":")
        if not days.isdigit() or not level:
            raise ValueError(f"DUNNING_SCHEDULE: {part!r} is not DAYS:LEVEL[:USER] (e.g. {DEFAULT_SCHEDULE})")
        steps.append(Step(int(days), level, user))
    if [s.days for s in steps] != sorted({s.days for s in steps}):
        raise ValueError("DUNNING_SCHEDULE: the steps' days must increase")
    return steps


class Dunning(Consumer):
    """Not a follower of events but of the calendar: ``run_once(today)`` records what is due."""

    name = "dunning"

    def __init__(self, connection: NatsConnection, schedule: list[Step], timezone: str = "UTC") -> None:
        super().__init__(connection)
        self.schedule = schedule
        self.zone = ZoneInfo(timezone)
        self.ledger = Ledger()

    def due_step(self, invoice: Open, today: date) -> tuple[int, Step] | None:
        """The latest schedule step reached and not yet recorded, if the invoice is unpaid."""
        if invoice.due <= Decimal(0) or not invoice.due_date:
            return None
        late = (today - invoice.due_date).days
        reached = [(n, step) for n, step in enumerate(self.schedule, start=1) if late >= step.days]
        if not reached or reached[-1][0] <= invoice.reminded:
            return None
        return reached[-1]

    async def run_once(self, today: date | None = None) -> int:
        """Record every reminder due today; how many were recorded."""
        today = today or datetime.now(self.zone).date()
        ledger = await refreshed(self, self.ledger)
        recorded = 0
        for invoice_id in list(ledger.invoices):
            for _attempt in range(5):
                invoice = ledger.invoices[invoice_id]
                found = self.due_step(invoice, today)
                if found is None or invoice.due_date is None:  # (nothing is due without a due date)
                    break
                step_number, step = found
                reminder = PaymentReminderDue(
                    id=invoice.id,
                    step=step_number,
                    level=step.level,
                    days_overdue=(today - invoice.due_date).days,
                    outstanding=invoice.due,
                    currency=invoice.currency,
                    due_date=invoice.due_date,
                    escalate_to=step.escalate_to,
                )
                try:
                    await self.save(
                        None,
                        [(invoice.id, Stored([], invoice.version, invoice.last_hash), [reminder])],
                        command_id=f"dunning:{invoice.id}:{step_number}",
                    )
                except IntegrityError:  # a payment (or another policy run) came first: read again
                    ledger = await refreshed(self, self.ledger)
                    continue
                recorded += 1
                log.info(
                    "invoice %s: %s reminder (step %s), %s %s outstanding",
                    invoice.number,
                    step.level,
                    step_number,
                    invoice.due,
                    invoice.currency,
                )
                ledger = await refreshed(self, self.ledger)
                break
        return recorded


async def every(seconds: float, stop: asyncio.Event, *runs: Callable[[], Awaitable[int]]) -> None:
    """Run the calendar's jobs (retainers, then dunning) now and every ``seconds`` until stopped."""
    while not stop.is_set():
        for run in runs:
            try:
                await run()
            except Exception:
                log.exception("a scheduled run failed; trying again in %s s", seconds)
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
