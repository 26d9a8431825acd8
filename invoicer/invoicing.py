"""The invoicer: a consumer that issues the invoice as soon as a billable job is completed.

Exactly one invoice per completed job, whatever happens. The invoice's id is derived from
the job's, and it is saved at version 1; the number is the next version of its series
(``FV`` in 2026, say); the job records ``JobInvoiced``; and the invoicer's tracking record
moves to the event that caused it. All four are one atomic batch with optimistic
concurrency on each subject, so a redelivery, a restart after a crash at any point, or
another replica that got there first makes the batch fail as a whole: no second invoice,
and no number used without an invoice (no gap).

Replicas process the stream in order from the shared tracking position. A replica whose
batch fails re-reads the position: if another replica moved it past this event, the event
is done; otherwise it decides again on what is stored now.

The consumer loads, reads the clock once per event, decides and saves what the decision
says. The decisions are pure: a job's billing (``invoicer.billing``), a credit note
(``invoicer.credit_notes``) and a proforma (``invoicer.proformas``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification
from nats.aio.msg import Msg

from events.consumer import Consumer, Stored
from events.contract import (
    CreditNoteRequested,
    Event,
    InterimInvoiceRequested,
    InvoicingReleaseRequested,
    QuoteAccepted,
    decode_event,
)
from events.jetstream import NatsConnection
from events.wire import originator_uuid
from invoicer.billing import (
    TRIGGERS as BILLING_TRIGGERS,
)
from invoicer.billing import (
    Completion,
    Decision,
    HeldCause,
    Hold,
    Issue,
    Loaded,
    Skip,
    concerns,
    decide,
    invoice_id_for,
    price,
    series_year,
)
from invoicer.credit_notes import CreditNote, decide_credit
from invoicer.ids import proforma_id_of
from invoicer.numbering import next_number
from invoicer.pricing import PriceList, Unbillable, price_list_of, work_of
from invoicer.proformas import Proforma, decide_proforma
from invoicer.settings import Settings

log = logging.getLogger("invoicer")

NAME = "invoicer"
TRIGGERS = BILLING_TRIGGERS | {CreditNoteRequested.__name__, QuoteAccepted.__name__}
# the job events that say whether its invoicing is held
HOLDING = frozenset({"InvoicingHeld", "JobInvoiced", "JobNotBilled", "JobReopened"})


class Invoicer(Consumer):
    """Issues the invoice of each completed job (see the module's docstring)."""

    name = NAME
    triggers = TRIGGERS

    def __init__(self, connection: NatsConnection, settings: Settings) -> None:
        super().__init__(connection)
        self.settings = settings
        self._lists: dict[UUID, list[Event]] = {}
        self._lists_position = 0
        self._held: set[UUID] = set()  # jobs whose invoicing is held, as the stream says now
        self._held_position = 0
        self.issued = 0

    async def held_jobs(self) -> set[UUID]:
        """The jobs whose last billing decision was to hold the invoice (read incrementally,
        only when something that may release one happens)."""
        for position, stored in await self.recorder.kind_events_async("job", self._held_position):
            self._held_position = position
            if stored.topic == "InvoicingHeld":
                self._held.add(originator_uuid(stored))
            elif stored.topic in HOLDING:
                self._held.discard(originator_uuid(stored))
        return self._held

    async def price_lists(self) -> dict[UUID, PriceList]:
        """Every price list as stored now (read incrementally: lists change rarely)."""
        for position, stored in await self.recorder.kind_events_async("pricelist", self._lists_position):
            self._lists.setdefault(originator_uuid(stored), []).append(decode_event(stored.state))
            self._lists_position = position
        return {id: price_list_of(id, events) for id, events in self._lists.items()}

    async def customer_of(self, job: Stored, job_id: UUID) -> Stored | None:
        customer_id = work_of(job_id, job.events).customer_id
        return await self.load(customer_id) if customer_id is not None else None

    async def loaded(self, job_id: UUID, invoice_id: UUID, now: datetime, job: Stored | None = None) -> Loaded:
        """Everything a job's billing is decided on, as stored now."""
        job = job if job is not None else await self.load(job_id)
        return Loaded(
            job_id=job_id,
            job=job,
            customer=await self.customer_of(job, job_id),
            price_lists=await self.price_lists(),
            invoice=await self.head(invoice_id),
            number=await next_number(
                self, self.settings.pattern, self.settings.series, series_year(now, self.settings)
            ),
        )

    async def decide_and_save(self, notification: Notification) -> str:
        now = datetime.now(UTC)  # the one reading of the clock for this event
        trigger = decode_event(notification.state)
        if isinstance(trigger, CreditNoteRequested):
            return await self.credit(notification, trigger, now)
        if isinstance(trigger, QuoteAccepted):
            return await self.proforma(notification, trigger, now)
        if isinstance(trigger, HeldCause):
            return await self.try_held_again(notification, trigger, now)
        if not isinstance(trigger, Completion | InterimInvoiceRequested):
            raise TypeError(f"the invoicer has no use for a {notification.topic}")
        job_id = trigger.id
        loaded = await self.loaded(job_id, invoice_id_for(trigger, job_id), now)
        return await self.saved(notification, decide(trigger, loaded, now, self.settings))

    async def try_held_again(self, notification: Notification, cause: HeldCause, now: datetime) -> str:
        """The held jobs a change concerns, decided again: each is invoiced by the same decision
        as at completion (or held again, saying why, when the office asked or the reason
        changed). The last one's batch carries the tracking record; an invoice already there is
        never issued again (its id is derived from the job's)."""
        candidates = [cause.id] if isinstance(cause, InvoicingReleaseRequested) else sorted(await self.held_jobs())
        jobs: list[tuple[UUID, Stored]] = []
        for job_id in candidates:
            job = await self.load(job_id)
            if concerns(cause, work_of(job_id, job.events)):
                jobs.append((job_id, job))
        outcome = Skip.outcome
        for n, (job_id, job) in enumerate(jobs):
            loaded = await self.loaded(job_id, invoice_id_for(cause, job_id), now, job)
            decision = decide(cause, loaded, now, self.settings)
            tracked = n == len(jobs) - 1  # several released by one change: the last one's batch moves the tracking
            done = await self.saved(
                notification if tracked else None, decision, f"{self.name}:{notification.id}:{job_id}"
            )
            if isinstance(decision, Issue):
                log.info("job %s: held invoice released (%s)", job_id, notification.topic)
            outcome = done if done != Skip.outcome else outcome
        return outcome

    async def saved(
        self, cause: Notification | None, decision: Decision | CreditNote | Proforma, command_id: str = ""
    ) -> str:
        """What the decision says, saved with the tracking record of ``cause`` in one batch."""
        if isinstance(decision, Skip):
            return decision.outcome
        await self.save(cause, decision.touched, command_id)
        if isinstance(decision, Hold):
            log.warning("job %s: invoice held: %s", decision.held.id, decision.held.reason)
        elif isinstance(decision, Issue):
            self.issued += 1
            invoice = decision.invoice
            log.info(
                "job %s: invoice %s issued, %s %s",
                invoice.job_id,
                invoice.number,
                invoice.gross_total,
                invoice.currency,
            )
        elif isinstance(decision, CreditNote):
            note = decision.note
            log.info(
                "invoice %s: credit note %s issued, %s %s",
                note.invoice_number,
                note.number,
                note.gross_total,
                note.currency,
            )
        return decision.outcome

    async def credit(self, notification: Notification, request: CreditNoteRequested, now: datetime) -> str:
        """Issue the credit note the office requested: numbered in its own series, gapless,
        with the invoice's InvoiceCredited in the same atomic batch."""
        invoice = await self.load(request.id)
        number = await next_number(
            self, self.settings.pattern, self.settings.credit_series, series_year(now, self.settings)
        )
        return await self.saved(notification, decide_credit(request, invoice, number, now, self.settings))

    async def proforma(self, notification: Notification, accepted: QuoteAccepted, now: datetime) -> str:
        """A proforma invoice for an accepted quote, when the customer wants one."""
        existing = await self.head(proforma_id_of(accepted.quote_id))
        job = await self.load(accepted.id)
        number = await next_number(
            self, self.settings.pattern, self.settings.proforma_series, series_year(now, self.settings)
        )
        return await self.saved(
            notification,
            decide_proforma(
                accepted,
                existing,
                job,
                await self.customer_of(job, accepted.id),
                await self.price_lists(),
                number,
                now,
                self.settings,
            ),
        )

    async def preview(self, job_id: UUID) -> dict[str, object]:
        """The dry run: the invoice the job would get if it were completed now, by the same
        code that issues the real one (nothing is stored)."""
        job = await self.load(job_id)
        priced = price(
            work_of(job_id, job.events),
            await self.customer_of(job, job_id),
            await self.price_lists(),
            self.settings.seller,
            datetime.now(UTC),
        )
        result = priced.result
        if result is None:
            return {"job_id": str(job_id), "billable": False, "reason": priced.problem}
        if isinstance(result, Unbillable):
            return {
                "job_id": str(job_id),
                "billable": False,
                "reason": f"not billed: {result.reason}",
                "cost": str(result.cost),
                "currency": result.currency,
            }
        return {
            "job_id": str(job_id),
            "billable": True,
            "status": priced.work.status.value,
            **msgspec.to_builtins(result, enc_hook=str),
        }

    async def answer_previews(self) -> object:
        """Answer dry-run requests (``rpc.invoice-preview``, a job id) until the connection closes."""

        async def answer(msg: Msg) -> None:
            try:
                reply = await self.preview(UUID(msg.data.decode()))
            except (ValueError, UnicodeDecodeError):
                reply = {"billable": False, "reason": "not a job id"}
            await msg.respond(msgspec.json.encode(reply))

        return await self.connection.nc.subscribe(
            self.connection.settings.rpc_subject("invoice-preview"), queue="invoicer", cb=answer
        )
