"""What the invoicer decides about a job: a pure function of the job, its customer and the
price lists as loaded, the invoice and the series' next number as stored, and one ``now``.

    decide(trigger, loaded, now, settings) -> Issue | Hold | NotBilled | Skip

Each decision carries what is saved for it, in one atomic batch with the invoicer's
tracking record: an invoice with its number, the job's record of it and the prepaid hours
it used (``Issue``); the reason a job cannot be priced (``Hold``); why it gets no invoice
and what its work cost (``NotBilled``); or nothing, and why (``Skip``).

Whether a job is due for billing is said once, by ``stage``: completed (and signed off,
where its type is invoiced on sign-off), and not decided since its completion.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from msgspec import Struct

from events.consumer import Stored
from events.contract import (
    ActivityPriced,
    ActivityRemoved,
    CustomerDetailsChanged,
    Event,
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoiceIssued,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCompleted,
    JobInvoiced,
    JobNotBilled,
    JobSignedOff,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    PriceListCreated,
    Status,
)
from invoicer.ids import interim_invoice_id_of, invoice_id_of
from invoicer.numbering import Numbered
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
    local_day,
    merged,
    work_of,
)
from invoicer.settings import Settings

Touched = tuple[UUID, Stored, list[Event]]  # an aggregate as loaded and the events appended to it

# the events a job's billing is decided on
Completion = JobCompleted | JobSignedOff  # may make a job due
HeldCause = CustomerDetailsChanged | PriceListCreated | ActivityPriced | ActivityRemoved | InvoicingReleaseRequested
Trigger = Completion | InterimInvoiceRequested | HeldCause
TRIGGERS = frozenset(t.__name__ for t in typing.get_args(Trigger))
OPEN = (Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD)  # what an interim invoice may bill


class Stage(enum.Enum):
    """Where a job stands in its billing."""

    NOT_DUE = "not due"  # not completed, or not signed off where its type is invoiced on sign-off
    DUE = "due"  # completed, and nothing decided since
    HELD = "held"  # it could not be priced: waits for the cause to be fixed
    SETTLED = "settled"  # invoiced, or not billed


def stage(work: Work, settings: Settings) -> Stage:
    """The one answer to "is this job due for billing?"."""
    if work.settled in ("invoiced", "not billed"):
        return Stage.SETTLED
    if work.status is not Status.COMPLETED or (work.job_type in settings.sign_off_job_types and not work.signed_off):
        return Stage.NOT_DUE
    return Stage.HELD if work.settled == "held" else Stage.DUE


def concerns(cause: HeldCause, work: Work) -> bool:
    """Whether a held job is to be tried again after ``cause``: a customer's details concern
    their jobs, a price list or an activity every held job, the office's release its job."""
    if isinstance(cause, CustomerDetailsChanged):
        return work.customer_id == cause.id
    if isinstance(cause, InvoicingReleaseRequested):
        return work.id == cause.id
    return True


def invoice_id_for(trigger: Trigger, job_id: UUID) -> UUID:
    """The invoice a trigger may issue: the job's, or the interim one the office requested."""
    if isinstance(trigger, InterimInvoiceRequested):
        return interim_invoice_id_of(trigger.request_id)
    return invoice_id_of(job_id)


def series_year(now: datetime, settings: Settings) -> int:
    """The year whose series numbers an invoice issued at ``now`` (the seller's calendar)."""
    return local_day(now, settings.seller.timezone).year


# --- the loaded state, and what the job bills ------------------------------------------


class Loaded(Struct, frozen=True, kw_only=True):
    """What a job's billing is decided on, as loaded."""

    job_id: UUID
    job: Stored
    customer: Stored | None = None  # none when the job names no customer (there is no such job)
    price_lists: Mapping[UUID, PriceList] = {}
    invoice: Stored = Stored([], 0, "")  # the invoice the trigger may issue, as stored (version 0: none yet)
    number: Numbered  # the invoice series' next number, of the year ``now`` falls in


class Priced(Struct, frozen=True, kw_only=True):
    """The job's bill as of ``now``, or why it cannot be priced."""

    work: Work
    buyer: Buyer | None
    result: Bill | Unbillable | None = None
    problem: str = ""  # why there is no result


def price(
    work: Work,
    customer: Stored | None,
    lists: Mapping[UUID, PriceList],
    seller: Seller,
    now: datetime,
    interim: bool = False,
) -> Priced:
    """What the job bills at ``now``, from the customer's own price list over the default one,
    only lists in the customer's currency (a rate in EUR is no rate in CZK)."""
    if work.customer_id is None or customer is None:
        return Priced(work=work, buyer=None, problem=f"no job {work.id}")
    buyer = buyer_of(work.customer_id, customer.events)
    own = lists.get(buyer.price_list_id) if buyer.price_list_id else None
    own = own if own is not None and own.currency == buyer.currency else None
    default = next((p for p in lists.values() if p.is_default and p.currency == buyer.currency), None)
    if own is None and default is None:
        return Priced(work=work, buyer=buyer, problem=f"no price list in {buyer.currency} for this customer")
    try:
        return Priced(work=work, buyer=buyer, result=bill(work, buyer, merged(own, default), seller, now, interim))
    except Unpriced as reason:
        return Priced(work=work, buyer=buyer, problem=str(reason))


# --- the decisions -------------------------------------------------------------------------


class Issue(Struct, frozen=True, kw_only=True):
    """Issue the invoice: its number, the invoice, the job's record of it and the prepaid hours
    it used, in one batch."""

    outcome: ClassVar[str] = "issued"
    invoice: InvoiceIssued
    touched: list[Touched]


class Hold(Struct, frozen=True, kw_only=True):
    """Hold the job's invoice: it cannot be priced, and the job says why."""

    outcome: ClassVar[str] = "held"
    job: Stored
    held: InvoicingHeld

    @property
    def touched(self) -> list[Touched]:
        return [(self.held.id, self.job, [self.held])]


class NotBilled(Struct, frozen=True, kw_only=True):
    """The job gets no invoice (warranty, internal, nothing billable); its cost is kept."""

    outcome: ClassVar[str] = "not billed"
    job: Stored
    not_billed: JobNotBilled

    @property
    def touched(self) -> list[Touched]:
        return [(self.not_billed.id, self.job, [self.not_billed])]


class Skip(Struct, frozen=True, kw_only=True):
    """Nothing to save."""

    outcome: ClassVar[str] = "skipped"
    why: str


Decision = Issue | Hold | NotBilled | Skip


def decide(trigger: Trigger, loaded: Loaded, now: datetime, settings: Settings) -> Decision:
    """What the job's billing does about ``trigger``, at ``now``."""
    work = work_of(loaded.job_id, loaded.job.events)
    if isinstance(trigger, InterimInvoiceRequested):
        if work.status not in OPEN:
            return Skip(why=f"the job is {work.status.value}: no interim invoice")
        priced = price(work, loaded.customer, loaded.price_lists, settings.seller, now, interim=True)
        if not isinstance(priced.result, Bill):
            return Skip(why="nothing new to bill")
        if loaded.invoice.version:
            return Skip(why="issued already")
        return issue(loaded, priced, priced.result, invoice_id_for(trigger, loaded.job_id), settings, interim=True)
    wanted = Stage.DUE if isinstance(trigger, Completion) else Stage.HELD
    if (now_at := stage(work, settings)) is not wanted:
        return Skip(why=f"the job is {now_at.value}")
    priced = price(work, loaded.customer, loaded.price_lists, settings.seller, now)
    result = priced.result
    if result is None:
        held = [e for e in loaded.job.events if isinstance(e, InvoicingHeld)]
        if (
            isinstance(trigger, HeldCause)
            and not isinstance(trigger, InvoicingReleaseRequested)
            and held
            and held[-1].reason == priced.problem
        ):
            return Skip(why="held for the same reason still")
        return Hold(job=loaded.job, held=InvoicingHeld(id=loaded.job_id, reason=priced.problem))
    if isinstance(result, Unbillable):
        return NotBilled(
            job=loaded.job,
            not_billed=JobNotBilled(id=loaded.job_id, reason=result.reason, cost=result.cost, currency=result.currency),
        )
    if loaded.invoice.version:
        return Skip(why="invoiced already")  # with the job's JobInvoiced: nothing to repair
    return issue(loaded, priced, result, invoice_id_for(trigger, loaded.job_id), settings)


def issue(
    loaded: Loaded, priced: Priced, result: Bill, invoice_id: UUID, settings: Settings, interim: bool = False
) -> Issue:
    """The invoice, its number, the job's record of it (and the prepaid hours it used)."""
    work, buyer, number = priced.work, priced.buyer, loaded.number
    assert buyer is not None
    assert number.year == result.issue_date.year, "the number is of the series of the year it is issued in"
    issued = InvoiceIssued(
        id=invoice_id,
        number=number.number,
        series=number.series,
        sequence=number.sequence,
        job_id=work.id,
        customer_id=buyer.id,
        issue_date=result.issue_date,
        supply_date=result.supply_date,
        due_date=result.due_date,
        currency=result.currency,
        language=buyer.language,
        seller=settings.seller.party(),
        buyer=buyer.party(),
        lines=result.lines,
        vat=result.vat,
        net_total=result.net_total,
        vat_total=result.vat_total,
        gross_total=result.gross_total,
        payment_reference=creditor_reference(number.number),
        reverse_charge=result.reverse_charge,
        job_type=work.job_type,
        job_summary=work.summary,
        interim=interim,
    )
    on_job: Event = JobInvoiced(id=work.id, invoice_id=invoice_id, number=number.number)
    if interim:
        billed = [k for k, e in work.entries.items() if e.billable and e.minutes > 0 and k not in work.billed_entries]
        on_job = InterimInvoiced(
            id=work.id,
            invoice_id=invoice_id,
            number=number.number,
            entries=[*work.billed_entries, *billed],
            materials=len(work.materials),
            visits=work.visits,
        )
    touched: list[Touched] = [
        number.allocation(invoice_id),
        (invoice_id, Stored([], 0, ""), [issued]),
        (work.id, loaded.job, [on_job]),
    ]
    if result.prepaid_minutes_used and loaded.customer is not None:
        # in the same batch, at the customer's version as read: two invoices never spend the same hours
        touched.append(
            (buyer.id, loaded.customer, prepaid_used(buyer, result.prepaid_minutes_used, work.id, invoice_id))
        )
    return Issue(invoice=issued, touched=touched)


def prepaid_used(buyer: Buyer, minutes: int, job_id: UUID, invoice_id: UUID) -> list[Event]:
    """The customer's prepaid hours an invoice spends, and a low balance when it crosses the warning level."""
    left = buyer.prepaid_minutes - minutes
    used: list[Event] = [
        PrepaidHoursConsumed(id=buyer.id, minutes=minutes, job_id=job_id, invoice_id=invoice_id, balance_minutes=left)
    ]
    if left < buyer.warn_below_minutes <= buyer.prepaid_minutes:
        used.append(PrepaidBalanceLow(id=buyer.id, balance_minutes=left, warn_below_minutes=buyer.warn_below_minutes))
    return used
