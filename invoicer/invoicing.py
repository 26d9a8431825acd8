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
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoiceCredited,
    InvoiceIssued,
    InvoicingHeld,
    JobInvoiced,
    JobNotBilled,
    JobQuoted,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    ProformaIssued,
    QuoteAccepted,
    Status,
    decode_event,
)
from events.jetstream import NatsConnection
from invoicer.ids import credit_note_id_of, interim_invoice_id_of, invoice_id_of, proforma_id_of
from invoicer.numbering import next_number
from invoicer.pricing import (
    Bill,
    Buyer,
    PriceList,
    Unbillable,
    Unpriced,
    Work,
    bill,
    buyer_of,
    creditor_reference,
    line_of,
    local_day,
    merged,
    money,
    price_list_of,
    reverse_charge,
    vat_breakdown,
    work_of,
)
from invoicer.settings import Settings

log = logging.getLogger("invoicer")

NAME = "invoicer"
# what may have held a job's invoice changed (or the office asks): its held jobs are tried again
HELD_CAUSES = frozenset({"CustomerDetailsChanged", "PriceListCreated", "ActivityPriced", "ActivityRemoved",
                         "InvoicingReleaseRequested"})
TRIGGERS = frozenset({"JobCompleted", "JobSignedOff", "CreditNoteRequested", "QuoteAccepted",
                      "InterimInvoiceRequested"}) | HELD_CAUSES
# the job events that say whether its invoicing is held
HOLDING = frozenset({"InvoicingHeld", "JobInvoiced", "JobNotBilled", "JobReopened"})


class Priced(msgspec.Struct, frozen=True, kw_only=True):
    job: Stored
    work: Work
    buyer: Buyer | None
    customer: Stored | None = None
    result: Bill | Unbillable | None = None
    problem: str = ""  # why there is no result


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

    async def price(self, job_id: UUID, now: datetime, interim: bool = False) -> Priced:
        """The job's bill as of now, or why it cannot be priced, with the facts it came from."""
        job = await self.load(job_id)
        work = work_of(job_id, job.events)
        if work.customer_id is None:
            return Priced(job=job, work=work, buyer=None, problem=f"no job {job_id}")
        customer = await self.load(work.customer_id)
        buyer = buyer_of(work.customer_id, customer.events)
        lists = await self.price_lists()
        # Only lists in the customer's currency apply: a rate in EUR is no rate in CZK.
        own = lists.get(buyer.price_list_id) if buyer.price_list_id else None
        own = own if own is not None and own.currency == buyer.currency else None
        default = next((p for p in lists.values() if p.is_default and p.currency == buyer.currency), None)
        if own is None and default is None:
            return Priced(job=job, work=work, buyer=buyer,
                          problem=f"no price list in {buyer.currency} for this customer")
        try:
            result = bill(work, buyer, merged(own, default), self.settings.seller, now, interim)
        except Unpriced as reason:
            return Priced(job=job, work=work, buyer=buyer, customer=customer, problem=str(reason))
        return Priced(job=job, work=work, buyer=buyer, customer=customer, result=result)

    async def decide_and_save(self, notification: Notification) -> str:
        if notification.topic in HELD_CAUSES:
            return await self.try_held_again(notification)
        if notification.topic == "CreditNoteRequested":
            return await self.credit(notification)
        if notification.topic == "QuoteAccepted":
            return await self.proforma(notification)
        interim = notification.topic == "InterimInvoiceRequested"
        job_id = notification.originator_id
        priced = await self.price(job_id, datetime.now(UTC), interim)
        job, work, buyer, result = priced.job, priced.work, priced.buyer, priced.result
        if interim:
            request = decode_event(notification.state)
            assert isinstance(request, InterimInvoiceRequested)
            invoice_id = interim_invoice_id_of(request.request_id)
            if work.status not in (Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD) or \
                    not isinstance(result, Bill) or (await self.load(invoice_id)).version:
                return "skipped"  # closed meanwhile, nothing new to bill, or issued already
            return await self._issue(notification, priced, result, invoice_id, interim=True)
        if not self._due(work, notification.topic):
            return "skipped"
        if result is None:
            await self.save(notification, [(job_id, job, [InvoicingHeld(id=job_id, reason=priced.problem)])])
            log.warning("job %s: invoice held: %s", job_id, priced.problem)
            return "held"
        if isinstance(result, Unbillable):
            not_billed = JobNotBilled(id=job_id, reason=result.reason, cost=result.cost,
                                      currency=result.currency)
            await self.save(notification, [(job_id, job, [not_billed])])
            return "not billed"
        assert buyer is not None
        invoice_id = invoice_id_of(job_id)
        if (await self.load(invoice_id)).version:
            return "skipped"  # issued already, with the job's JobInvoiced: nothing to repair
        return await self._issue(notification, priced, result, invoice_id)

    async def try_held_again(self, notification: Notification) -> str:
        """The held jobs a change concerns, priced again: the office's release names its job,
        a customer's details their jobs, a price list or an activity every held job. Each is
        then invoiced by the same path as at completion (or held again, saying why, when the
        office asked or the reason changed). The last one's batch carries the tracking record;
        an invoice already there is never issued again (its id is derived from the job's)."""
        cause = decode_event(notification.state)
        if notification.topic == "InvoicingReleaseRequested":
            concerned = [cause.id]
        else:
            concerned = sorted(await self.held_jobs())
        if notification.topic == "CustomerDetailsChanged":
            concerned = [job_id for job_id in concerned
                         if work_of(job_id, (await self.load(job_id)).events).customer_id == cause.id]
        outcome = "skipped"
        for n, job_id in enumerate(concerned):
            done = await self._try_again(notification, job_id, tracked=n == len(concerned) - 1)
            outcome = done if done != "skipped" else outcome
        return outcome

    async def _try_again(self, notification: Notification, job_id: UUID, tracked: bool) -> str:
        priced = await self.price(job_id, datetime.now(UTC))
        job, work, result = priced.job, priced.work, priced.result
        asked = notification.topic == "InvoicingReleaseRequested"
        if work.status is not Status.COMPLETED or work.settled != "held" or (
                work.job_type in self.settings.sign_off_job_types and not work.signed_off):
            return "skipped"  # invoiced, not billed or reopened meanwhile, or not due yet
        cause = notification if tracked else None
        command_id = f"{self.name}:{notification.id}:{job_id}"
        if result is None:
            held = [e for e in job.events if isinstance(e, InvoicingHeld)]
            if not asked and held and held[-1].reason == priced.problem:
                return "skipped"  # held for the same reason still
            await self.save(cause, [(job_id, job, [InvoicingHeld(id=job_id, reason=priced.problem)])], command_id)
            return "held"
        if isinstance(result, Unbillable):
            not_billed = JobNotBilled(id=job_id, reason=result.reason, cost=result.cost, currency=result.currency)
            await self.save(cause, [(job_id, job, [not_billed])], command_id)
            return "not billed"
        invoice_id = invoice_id_of(job_id)
        if (await self.load(invoice_id)).version:
            return "skipped"
        log.info("job %s: held invoice released (%s)", job_id, notification.topic)
        return await self._issue(notification, priced, result, invoice_id, tracked=tracked)

    async def _issue(self, notification: Notification, priced: Priced, result: Bill, invoice_id: UUID,
                     interim: bool = False, tracked: bool = True) -> str:
        """The invoice, its number, the job's record of it (and the prepaid hours it used), with
        the tracking record: one atomic batch."""
        job, work, buyer = priced.job, priced.work, priced.buyer
        job_id = work.id
        assert buyer is not None
        numbered = await next_number(self, self.settings.pattern, self.settings.series, result.issue_date.year)
        number = numbered.number
        issued = InvoiceIssued(
            id=invoice_id, number=number, series=numbered.series, sequence=numbered.sequence,
            job_id=job_id, customer_id=buyer.id, issue_date=result.issue_date,
            supply_date=result.supply_date, due_date=result.due_date,
            currency=result.currency, language=buyer.language, seller=self.settings.seller.party(),
            buyer=buyer.party(), lines=result.lines, vat=result.vat, net_total=result.net_total,
            vat_total=result.vat_total, gross_total=result.gross_total,
            payment_reference=creditor_reference(number), reverse_charge=result.reverse_charge,
            job_type=work.job_type, job_summary=work.summary, interim=interim)
        on_job: Event = JobInvoiced(id=job_id, invoice_id=invoice_id, number=number)
        if interim:
            billed = [k for k, e in work.entries.items()
                      if e.billable and e.minutes > 0 and k not in work.billed_entries]
            on_job = InterimInvoiced(id=job_id, invoice_id=invoice_id, number=number,
                                     entries=[*work.billed_entries, *billed], materials=len(work.materials),
                                     visits=work.visits)
        touched = [
            numbered.allocation(invoice_id),
            (invoice_id, Stored([], 0, ""), [issued]),
            (job_id, job, [on_job]),
        ]
        if result.prepaid_minutes_used and priced.customer is not None:
            # in the same batch, at the customer's version as read: two invoices never spend the same hours
            left = buyer.prepaid_minutes - result.prepaid_minutes_used
            prepaid: list[Event] = [PrepaidHoursConsumed(id=buyer.id, minutes=result.prepaid_minutes_used,
                                                         job_id=job_id, invoice_id=invoice_id, balance_minutes=left)]
            if left < buyer.warn_below_minutes <= buyer.prepaid_minutes:
                prepaid.append(PrepaidBalanceLow(id=buyer.id, balance_minutes=left,
                                                 warn_below_minutes=buyer.warn_below_minutes))
            touched.append((buyer.id, priced.customer, prepaid))
        if tracked:
            await self.save(notification, touched)
        else:  # one of several jobs a change released: the last one's batch moves the tracking
            await self.save(None, touched, f"{self.name}:{notification.id}:{job_id}")
        self.issued += 1
        log.info("job %s: invoice %s issued, %s %s", job_id, number, result.gross_total, result.currency)
        return "issued"

    async def credit(self, notification: Notification) -> str:
        """Issue the credit note the office requested: numbered in its own series, gapless,
        with the invoice's InvoiceCredited in the same atomic batch."""
        request = decode_event(notification.state)
        assert isinstance(request, CreditNoteRequested)
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
        today = local_day(datetime.now(UTC), self.settings.seller.timezone)
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

    async def proforma(self, notification: Notification) -> str:
        """A proforma invoice for an accepted quote, when the customer wants one."""
        accepted = decode_event(notification.state)
        assert isinstance(accepted, QuoteAccepted)
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
        today = local_day(datetime.now(UTC), self.settings.seller.timezone)
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
        priced = await self.price(job_id, datetime.now(UTC))
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

    def _due(self, work: Work, topic: str) -> bool:
        """Whether the job waits for a billing decision now."""
        if work.status is not Status.COMPLETED or work.settled:
            return False
        if work.job_type in self.settings.sign_off_job_types:
            return work.signed_off
        return topic in TRIGGERS
