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

The consumer loads, reads the clock once, decides (``invoicer.billing.decide``, pure) and
saves what the decision says.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from events.consumer import Consumer, Stored
from events.contract import (
    CreditNoteIssued,
    CreditNoteRequested,
    Event,
    InvoiceCredited,
    InterimInvoiceRequested,
    InvoiceIssued,
    InvoicingReleaseRequested,
    JobQuoted,
    ProformaIssued,
    QuoteAccepted,
    decode_event,
)
from events.jetstream import NatsConnection
from invoicer.billing import (
    TRIGGERS as BILLING_TRIGGERS,
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
from invoicer.ids import credit_note_id_of, proforma_id_of
from invoicer.numbering import next_number
from invoicer.pricing import (
    PriceList,
    Unbillable,
    buyer_of,
    creditor_reference,
    line_of,
    local_day,
    money,
    price_list_of,
    reverse_charge,
    vat_breakdown,
    work_of,
)
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
                self._held.add(stored.originator_id)
            elif stored.topic in HOLDING:
                self._held.discard(stored.originator_id)
        return self._held

    async def price_lists(self) -> dict[UUID, PriceList]:
        """Every price list as stored now (read incrementally: lists change rarely)."""
        for position, stored in await self.recorder.kind_events_async("pricelist", self._lists_position):
            self._lists.setdefault(stored.originator_id, []).append(decode_event(stored.state))  # type: ignore[arg-type]
            self._lists_position = position
        return {id: price_list_of(id, events) for id, events in self._lists.items()}

    async def customer_of(self, job: Stored, job_id: UUID) -> Stored | None:
        customer_id = work_of(job_id, job.events).customer_id
        return await self.load(customer_id) if customer_id is not None else None

    async def loaded(self, job_id: UUID, invoice_id: UUID, now: datetime, job: Stored | None = None) -> Loaded:
        """Everything a job's billing is decided on, as stored now."""
        job = job if job is not None else await self.load(job_id)
        return Loaded(job_id=job_id, job=job, customer=await self.customer_of(job, job_id),
                      price_lists=await self.price_lists(), invoice=await self.head(invoice_id),
                      number=await next_number(self, self.settings.pattern, self.settings.series,
                                               series_year(now, self.settings)))

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
        return await self.saved(notification, job_id, decide(trigger, loaded, now, self.settings))

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
            done = await self.saved(notification if tracked else None, job_id, decision,
                                    f"{self.name}:{notification.id}:{job_id}")
            if isinstance(decision, Issue):
                log.info("job %s: held invoice released (%s)", job_id, notification.topic)
            outcome = done if done != Skip.outcome else outcome
        return outcome

    async def saved(self, cause: Notification | None, job_id: UUID, decision: Decision, command_id: str = "") -> str:
        """What the decision says, saved with the tracking record of ``cause`` in one batch."""
        if isinstance(decision, Skip):
            return decision.outcome
        await self.save(cause, decision.touched, command_id)
        if isinstance(decision, Hold):
            log.warning("job %s: invoice held: %s", job_id, decision.held.reason)
        elif isinstance(decision, Issue):
            self.issued += 1
            invoice = decision.invoice
            log.info("job %s: invoice %s issued, %s %s", job_id, invoice.number, invoice.gross_total, invoice.currency)
        return decision.outcome

    async def credit(self, notification: Notification, request: CreditNoteRequested, now: datetime) -> str:
        """Issue the credit note the office requested: numbered in its own series, gapless,
        with the invoice's InvoiceCredited in the same atomic batch."""
        invoice = await self.load(request.id)
        credit_id = credit_note_id_of(request.request_id)
        if any(isinstance(e, InvoiceCredited) and e.credit_note_id == credit_id for e in invoice.events):
            return "skipped"
        issued = next(e for e in invoice.events if isinstance(e, InvoiceIssued))
        if request.whole:
            lines, vat = issued.lines, issued.vat
        else:
            (rate,) = issued.vat
            net = money(request.amount / (1 + rate.rate / 100))
            line = line_of("correction", "correction", f"Correction of {issued.number}: {request.reason}",
                           Decimal(1), "flat", net, rate.rate, reverse=rate.category == "AE")
            lines, vat = [line], vat_breakdown([line])
        net_total = sum((line.net for line in lines), Decimal(0))
        vat_total = sum((v.vat for v in vat), Decimal(0))
        today = local_day(now, self.settings.seller.timezone)
        numbered = await next_number(self, self.settings.pattern, self.settings.credit_series, today.year)
        number = numbered.number
        note = CreditNoteIssued(
            id=credit_id, number=number, series=numbered.series, sequence=numbered.sequence,
            invoice_id=issued.id, invoice_number=issued.number, invoice_issue_date=issued.issue_date,
            customer_id=issued.customer_id, issue_date=today, currency=issued.currency,
            language=issued.language, reason=request.reason, seller=issued.seller, buyer=issued.buyer,
            lines=lines, vat=vat, net_total=net_total, vat_total=vat_total, gross_total=net_total + vat_total,
            reverse_charge=issued.reverse_charge, job_type=issued.job_type)
        await self.save(notification, [
            numbered.allocation(credit_id),
            (credit_id, Stored([], 0, ""), [note]),
            (issued.id, invoice, [InvoiceCredited(id=issued.id, credit_note_id=credit_id, number=number,
                                                  amount=note.gross_total)]),
        ])
        log.info("invoice %s: credit note %s issued, %s %s", issued.number, number, note.gross_total, note.currency)
        return "credited"

    async def proforma(self, notification: Notification, accepted: QuoteAccepted, now: datetime) -> str:
        """A proforma invoice for an accepted quote, when the customer wants one."""
        proforma_id = proforma_id_of(accepted.quote_id)
        if (await self.load(proforma_id)).version:
            return "skipped"
        job = await self.load(accepted.id)
        quote = next((e for e in job.events if isinstance(e, JobQuoted) and e.quote_id == accepted.quote_id), None)
        work = work_of(accepted.id, job.events)
        if quote is None or work.customer_id is None:
            return "skipped"
        buyer = buyer_of(work.customer_id, (await self.load(work.customer_id)).events)
        if not buyer.wants_proforma:
            return "skipped"
        lists = await self.price_lists()
        activities = {k: v for p in lists.values() if p.currency == buyer.currency and (
            p.is_default or p.id == buyer.price_list_id) for k, v in p.activities.items()}
        listed = activities.get(work.job_type) or activities.get("labour")
        rate = listed.vat_rate if listed else self.settings.seller.material_vat_rate
        reverse = reverse_charge(self.settings.seller, buyer)
        line = line_of("quote", work.job_type or "quote", f"Quoted work: {work.job_type}", Decimal(1), "flat",
                       money(quote.amount), rate, reverse)
        vat = vat_breakdown([line])
        tax = sum((v.vat for v in vat), Decimal(0))
        today = local_day(now, self.settings.seller.timezone)
        numbered = await next_number(self, self.settings.pattern, self.settings.proforma_series, today.year)
        number = numbered.number
        issued = ProformaIssued(
            id=proforma_id, number=number, job_id=accepted.id, quote_id=accepted.quote_id, customer_id=buyer.id,
            issue_date=today, due_date=today + timedelta(days=buyer.payment_terms_days),
            currency=buyer.currency, language=buyer.language, seller=self.settings.seller.party(),
            buyer=buyer.party(), lines=[line], vat=vat, net_total=line.net, vat_total=tax,
            gross_total=line.net + tax,
            payment_reference=creditor_reference(number), reverse_charge=reverse, job_type=work.job_type)
        await self.save(notification, [
            numbered.allocation(proforma_id),
            (proforma_id, Stored([], 0, ""), [issued]),
        ])
        return "proforma"

    async def preview(self, job_id: UUID) -> dict[str, object]:
        """The dry run: the invoice the job would get if it were completed now, by the same
        code that issues the real one (nothing is stored)."""
        job = await self.load(job_id)
        priced = price(work_of(job_id, job.events), await self.customer_of(job, job_id), await self.price_lists(),
                       self.settings.seller, datetime.now(UTC))
        result = priced.result
        if result is None:
            return {"job_id": str(job_id), "billable": False, "reason": priced.problem}
        if isinstance(result, Unbillable):
            return {"job_id": str(job_id), "billable": False, "reason": f"not billed: {result.reason}",
                    "cost": str(result.cost), "currency": result.currency}
        return {"job_id": str(job_id), "billable": True, "status": priced.work.status.value,
                **msgspec.to_builtins(result, enc_hook=str)}

    async def answer_previews(self) -> object:
        """Answer dry-run requests (``rpc.invoice-preview``, a job id) until the connection closes."""

        async def answer(msg: object) -> None:
            try:
                reply = await self.preview(UUID(msg.data.decode()))  # type: ignore[attr-defined]
            except (ValueError, UnicodeDecodeError):
                reply = {"billable": False, "reason": "not a job id"}
            await msg.respond(msgspec.json.encode(reply))  # type: ignore[attr-defined]

        return await self.connection.nc.subscribe(self.connection.settings.rpc_subject("invoice-preview"),
                                                  queue="invoicer", cb=answer)
