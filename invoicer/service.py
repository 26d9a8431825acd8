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

import argparse
import asyncio
import collections
import hashlib
import logging
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    Notification,
)

from events.bridge import stop_on_signals
from events.consumer import Consumer, Stored
from events.faults import Transient
from events.lifetime import deaf_to_the_terminal, pool_worker
from events.contract import (
    Address,
    CreditNoteDocumentStored,
    CreditNoteIssued,
    CreditNoteRequested,
    Event,
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoiceCredited,
    InvoiceDocumentStored,
    InvoiceIssued,
    InvoiceNumberAllocated,
    InvoicingHeld,
    JobInvoiced,
    JobNotBilled,
    JobQuoted,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    ProformaDocumentStored,
    ProformaIssued,
    QuoteAccepted,
    Status,
    decode_event,
)
from events.jetstream import NatsConnection, StreamSettings, run_plainly
from invoicer.documents import Branding, invoice_pdf
from invoicer.einvoice import ubl_invoice
from invoicer.pricing import (
    Bill,
    Buyer,
    PriceList,
    Seller,
    Unbillable,
    Unpriced,
    Work,
    bill,
    buyer_of,
    creditor_reference,
    invoice_number,
    line_of,
    local_day,
    merged,
    money,
    price_list_of,
    reverse_charge,
    vat_breakdown,
    work_of,
)

log = logging.getLogger("invoicer")

NAME = "invoicer"
# what may have held a job's invoice changed (or the office asks): its held jobs are tried again
HELD_CAUSES = frozenset({"CustomerDetailsChanged", "PriceListCreated", "ActivityPriced", "ActivityRemoved",
                         "InvoicingReleaseRequested"})
TRIGGERS = frozenset({"JobCompleted", "JobSignedOff", "CreditNoteRequested", "QuoteAccepted",
                      "InterimInvoiceRequested"}) | HELD_CAUSES
# the job events that say whether its invoicing is held
HOLDING = frozenset({"InvoicingHeld", "JobInvoiced", "JobNotBilled", "JobReopened"})
NAMESPACE = UUID("1d7c1b52-8f0e-4d59-b7a3-5f3f0b6a4c21")


DEFAULT_SERIES = "FV"
DEFAULT_PATTERN = "{series}/{year}/{sequence:06d}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    series: str = DEFAULT_SERIES
    credit_series: str = "KOR"
    pattern: str = DEFAULT_PATTERN
    seller: Seller = Seller()
    sign_off_job_types: frozenset[str] = frozenset()  # invoiced on sign-off, not on completion

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        get = env.get
        address = Address(street=get("JOBSTREAM_COMPANY_STREET") or "1 Main Street",
                          city=get("JOBSTREAM_COMPANY_CITY") or "Springfield",
                          postal_code=get("JOBSTREAM_COMPANY_POSTAL_CODE") or "00-001",
                          country=get("JOBSTREAM_COMPANY_COUNTRY") or "PL")
        seller = Seller(name=get("JOBSTREAM_COMPANY_NAME") or "jobstream demo services",
                        address=address, vat_id=get("JOBSTREAM_COMPANY_VAT_ID", ""),
                        email=get("JOBSTREAM_COMPANY_EMAIL", ""),
                        bank_account=get("JOBSTREAM_COMPANY_IBAN", ""),
                        timezone=get("JOBSTREAM_TIMEZONE") or "UTC",
                        material_vat_rate=Decimal(get("JOBSTREAM_MATERIAL_VAT_RATE") or "23"))
        sign_off = frozenset(t for t in (get("INVOICE_AFTER_SIGN_OFF") or "").split(",") if t.strip())
        pattern = get("INVOICE_NUMBER_PATTERN") or DEFAULT_PATTERN
        try:
            invoice_number(pattern, DEFAULT_SERIES, 2026, 1)
        except (KeyError, ValueError, IndexError) as error:  # fails at start-up, not on a job
            raise SystemExit(f"INVOICE_NUMBER_PATTERN {pattern!r} is not usable ({error}); "
                             "use {series}, {year} and {sequence}, e.g. " + DEFAULT_PATTERN) from None
        if "{sequence" not in pattern:
            raise SystemExit(f"INVOICE_NUMBER_PATTERN {pattern!r} lacks {{sequence}}: numbers would repeat")
        return cls(series=get("INVOICE_SERIES") or DEFAULT_SERIES,
                   credit_series=get("CREDIT_NOTE_SERIES") or "KOR", pattern=pattern, seller=seller,
                   sign_off_job_types=sign_off)


def invoice_id_of(job_id: UUID) -> UUID:
    return uuid.uuid5(NAMESPACE, f"invoice:{job_id}")


def series_id_of(series: str, year: int) -> UUID:
    return uuid.uuid5(NAMESPACE, f"series:{series}:{year}")


class Numbered(msgspec.Struct, frozen=True, kw_only=True):
    """A number of a series, to be allocated with the document it numbers."""

    series: str
    year: int
    sequence: int
    number: str
    series_id: UUID
    head: Stored

    def allocation(self, document_id: UUID) -> tuple[UUID, Stored, list[Event]]:
        return (self.series_id, self.head, [InvoiceNumberAllocated(
            id=self.series_id, series=self.series, year=self.year, sequence=self.sequence, number=self.number,
            invoice_id=document_id)])


async def next_number(consumer: Consumer, pattern: str, series: str, year: int) -> Numbered:
    """The series' next number, read from its last allocation only (a year's series holds
    every number). Saved in the document's batch, so no number is used twice or skipped."""
    series_id = series_id_of(series, year)
    head = await consumer.head(series_id)
    sequence = head.version + 1
    return Numbered(series=series, year=year, sequence=sequence, series_id=series_id, head=head,
                    number=invoice_number(pattern, series, year, sequence))


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
            invoice_id = uuid.uuid5(NAMESPACE, f"interim:{request.request_id}")
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
        credit_id = uuid.uuid5(NAMESPACE, f"creditnote:{request.request_id}")
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
        proforma_id = uuid.uuid5(NAMESPACE, f"proforma:{accepted.quote_id}")
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
        numbered = await next_number(self, self.settings.pattern, "PRO", today.year)
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



class DocumentWriter(Consumer):
    """Renders each issued invoice to a Factur-X PDF (PDF/A-3 with its CII XML) and to EN 16931
    UBL XML, and each credit note to PDF and UBL; puts them in the documents object store and
    records their hashes (two ...DocumentStored events), once."""

    name = "invoicer-documents"
    triggers = frozenset({"InvoiceIssued", "CreditNoteIssued", "ProformaIssued"})

    AHEAD = 16  # documents rendered ahead of the one being stored
    IDLE = 20.0  # seconds with nothing to render before the render processes are let go (~110 MB each)

    def __init__(self, connection: NatsConnection, branding: Branding | None = None, workers: int = 0) -> None:
        super().__init__(connection)
        self.branding = branding or Branding()
        self.render_seconds: list[float] = []
        self.workers = workers  # render processes; 0: in a thread of this process
        self._pool: ProcessPoolExecutor | None = None
        self._retiring: asyncio.TimerHandle | None = None
        self._ahead: dict[UUID, asyncio.Future[bytes]] = {}
        self._waiting: collections.deque[tuple[UUID, object]] = collections.deque()

    def prepare(self, page: Sequence[Notification]) -> None:
        """Rendering is pure and the slowest step: with worker processes, the page's documents
        are rendered ahead, in parallel, while the ones before them are stored in order."""
        if not self.workers:
            return
        wanted = [n for n in page if n.topic in self.triggers]
        ids = {n.originator_id for n in wanted}
        for stale in [k for k in self._ahead if k not in ids]:  # work of a page left behind
            self._ahead.pop(stale).cancel()
        self._waiting.clear()
        self._waiting.extend((n.originator_id, decode_event(n.state)) for n in wanted if n.originator_id not in self._ahead)
        self._fill()

    def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        # The pool starts its render processes (and multiprocessing's resource tracker) as work
        # is handed to it: each dies with this process, however it ends, and leaves a
        # terminal's Ctrl-C and hang-up to it (events.lifetime).
        if self._pool is None:
            with deaf_to_the_terminal():
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=pool_worker, initargs=(os.getpid(),))
        with deaf_to_the_terminal():  # again: starting the tracker unblocked SIGINT
            while self._waiting and len(self._ahead) < self.AHEAD:
                document_id, event = self._waiting.popleft()
                if document_id not in self._ahead:
                    self._ahead[document_id] = loop.run_in_executor(self._pool, render_document, event, self.branding)
        if self._retiring is not None:
            self._retiring.cancel()
        self._retiring = loop.call_later(self.IDLE, self._retire)

    def _retire(self) -> None:
        """Let the render processes go while there is nothing to render: an idle product
        keeps no 110 MB renderer; the next document starts one again (about a second)."""
        self._retiring = None
        if self._pool is None:
            return
        if self._ahead or self._waiting:
            self._retiring = asyncio.get_running_loop().call_later(self.IDLE, self._retire)
            return
        self._pool.shutdown(wait=False)
        self._pool = None

    def close(self) -> None:
        if self._retiring is not None:
            self._retiring.cancel()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    async def _render(self, issued: InvoiceIssued | CreditNoteIssued | ProformaIssued) -> bytes:
        ahead = self._ahead.pop(issued.id, None)
        if ahead is None:
            return await asyncio.to_thread(render_document, issued, self.branding)
        self._fill()
        try:
            return await ahead
        except BrokenProcessPool as error:  # a render process died (killed, out of memory): start afresh
            for pending in self._ahead.values():
                pending.cancel()
            self._ahead.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise Transient(f"a render process died: {error}") from None

    async def decide_and_save(self, notification: Notification) -> str:
        document = await self.load(notification.originator_id)
        stored_type = {"CreditNoteIssued": CreditNoteDocumentStored, "ProformaIssued": ProformaDocumentStored}.get(
            notification.topic, InvoiceDocumentStored)
        if any(isinstance(e, stored_type) for e in document.events):
            self._ahead.pop(notification.originator_id, None)
            return "skipped"
        issued = next(e for e in document.events if isinstance(e, InvoiceIssued | CreditNoteIssued | ProformaIssued))
        started = time.perf_counter()
        pdf = await self._render(issued)
        self.render_seconds.append(time.perf_counter() - started)
        renderings = [("pdf", "application/pdf", pdf)]
        if not isinstance(issued, ProformaIssued):  # a proforma is no tax document: no e-invoice
            renderings.append(("xml", "application/xml", ubl_invoice(issued)))
        folder = {CreditNoteDocumentStored: "credit-notes", ProformaDocumentStored: "proformas"}.get(
            stored_type, "invoices")
        store = await self.connection.documents()
        stored: list[Event] = []
        for kind, media_type, data in renderings:
            name = document_name(issued.id, kind, folder)
            await store.put(name, data)  # the same name again after a crash: replaced, not duplicated
            stored.append(stored_type(id=issued.id, name=name, media_type=media_type,
                                      sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
        await self.save(notification, [(issued.id, document, stored)])
        return "stored"


class RenderFailed(Exception):
    """A document that could not be rendered, said in plain words. It is what a render
    process raises, so it crosses back into this one (lxml's own errors carry an error log
    that cannot be pickled: the parent got "cannot pickle '_ListErrorLog'" instead)."""


def render_document(document: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding) -> bytes:
    """``render_pdf``, its failure a RenderFailed naming the document and the cause."""
    try:
        return render_pdf(document, branding)
    except Exception as error:
        kind = type(document).__name__.removesuffix("Issued").lower().replace("creditnote", "credit note")
        cause = " ".join(str(error).split()) or repr(error)
        raise RenderFailed(f"the PDF of {kind} {document.number} could not be rendered: "
                           f"{type(error).__name__}: {cause}") from None


def render_pdf(document: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding) -> bytes:
    """An invoice's or a credit note's PDF is a Factur-X (PDF/A-3 with its CII XML inside); a
    proforma's, no tax document, is a plain PDF."""
    pdf = invoice_pdf(document, branding)
    if isinstance(document, InvoiceIssued | CreditNoteIssued):
        from invoicer.facturx import facturx_pdf

        return facturx_pdf(pdf, document)
    return pdf


def document_name(document_id: UUID, kind: str = "pdf", folder: str = "invoices") -> str:
    return f"{folder}/{document_id}.{kind}"


async def serve(env: dict[str, str], part: str = "all", stop: asyncio.Event | None = None) -> None:
    """Run the invoicer, the document writer, or both, until ``stop`` (else SIGINT or SIGTERM)."""
    settings = Settings.from_env(env)
    if not settings.seller.vat_id:
        log.warning("JOBSTREAM_COMPANY_VAT_ID is not set: invoices will lack the seller's VAT id, "
                    "and their e-invoices will not pass EN 16931 (BR-S-02, BR-CO-26)")
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    await connection.ensure_stream_async()
    stop = stop or stop_on_signals()
    consumers: list[Consumer] = []
    if part in ("all", "issue"):
        from invoicer.payments import PaymentMatcher

        invoicer = Invoicer(connection, settings)
        await invoicer.answer_previews()
        consumers.extend([invoicer, PaymentMatcher(connection)])
    if part in ("all", "documents"):
        consumers.append(DocumentWriter(connection, Branding(logo=env.get("JOBSTREAM_LOGO", ""),
                                                             colour=env.get("JOBSTREAM_COLOUR") or "#0b6b61"),
                                        workers=int(env.get("DOCUMENT_WORKERS") or max(1, (os.cpu_count() or 2) - 1))))
    for consumer in consumers:
        log.info("%s starting after position %s", consumer.name,
                 await consumer.recorder.max_tracking_id_async(consumer.name) or 0)
    runs = [consumer.run(stop) for consumer in consumers]
    if part in ("all", "issue"):
        from invoicer.dunning import DEFAULT_SCHEDULE, Dunning, every, schedule_of
        from invoicer.retainers import RetainerBilling

        try:
            schedule = schedule_of(env.get("DUNNING_SCHEDULE") or DEFAULT_SCHEDULE)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        dunning = Dunning(connection, schedule, env.get("JOBSTREAM_TIMEZONE") or "UTC")
        retainers = RetainerBilling(connection, settings)
        runs.append(every(float(env.get("DUNNING_EVERY_SECONDS") or 3600), stop, retainers.run_once, dunning.run_once))
    try:
        await asyncio.gather(*runs)
    finally:
        for consumer in consumers:
            if isinstance(consumer, DocumentWriter):
                consumer.close()
        await connection.aclose()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """Issuing and documents until ``stop``, beside the other services (`jobstream run workers`)."""
    await serve(env, "all", stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jobstream run invoicer",
        description="Issue the invoice of each completed job as it happens, and render its PDF.")
    parser.add_argument("part", nargs="?", choices=("all", "issue", "documents"), default="all",
                        help="issue invoices and match bank payments to them, render their documents, "
                             "or both (the default, and what `jobstream up` runs: the PDFs are "
                             "rendered in worker processes, so rendering never delays issuing)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_plainly("jobstream run invoicer", serve(dict(os.environ), args.part))
    return 0


if __name__ == "__main__":
    sys.exit(main())
