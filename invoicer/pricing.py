"""What a job bills: pure functions from the job's, the customer's and the price lists' events.

The invoicer issues what ``bill`` returns, and the dry run shows the same thing for an open
job, so the invoice a job would get and the invoice it gets are computed by one piece of code.
Quantities are derived from the minutes logged; the minutes themselves are never changed.

Rounding follows EN 16931: each line's net amount is rounded to the currency's minor unit,
the VAT of each (category, rate) is computed once on the sum of its lines' nets and rounded,
and the totals are sums of rounded amounts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct, structs

from events.contract import (
    ActivityPriced,
    ActivityRemoved,
    Address,
    BillingKind,
    Contact,
    CustomerDetailsChanged,
    CustomerRegistered,
    Event,
    HoursPackageSold,
    InterimInvoiced,
    InvoiceLine,
    InvoicingHeld,
    JobCompleted,
    JobEvents,
    JobInvoiced,
    JobNotBilled,
    JobReopened,
    JobRequested,
    JobSignedOff,
    Location,
    MaterialUsed,
    Party,
    PrepaidHoursConsumed,
    PriceListCreated,
    Priority,
    Status,
    TimeEntryAdded,
    TimeEntryCorrected,
    Unit,
    VatSubtotal,
    WorkStarted,
    WorkStopped,
)
from events.job_status import status_after

CENT = Decimal("0.01")
EU = {
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
}
TIMED = {Unit.HOUR, Unit.STARTED_HOUR, Unit.QUARTER_HOUR}  # units prepaid hours cover
LABOUR = "labour"  # the activity time is billed as when it names none and the job type is not priced
CALL_OUT = "callout"  # priced on a list: charged once per visit to the site
URGENT = "urgent"  # priced on a list: a flat surcharge on urgent jobs


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# --- the facts pricing needs, folded from events ---------------------------------------


class Entry(Struct, frozen=True):
    minutes: int
    billable: bool
    activity: str


class Work(Struct, frozen=True, kw_only=True):
    """A job as billing sees it."""

    id: UUID
    version: int = 0
    customer_id: UUID | None = None
    job_type: str = ""
    priority: Priority = Priority.NORMAL
    billing_kind: BillingKind = BillingKind.PAID
    location: Location = Location.ON_SITE
    status: Status = Status.NEW
    entries: dict[UUID, Entry] = {}
    materials: tuple[MaterialUsed, ...] = ()
    visits: int = 0
    summary: str = ""
    completed_at: datetime | None = None
    signed_off: bool = False
    settled: str = ""  # the last billing decision since the last completion: invoiced, not billed, held
    billed_entries: frozenset[UUID] = frozenset()  # on interim invoices
    billed_materials: int = 0
    billed_visits: int = 0


def evolve_work(work: Work, event: JobEvents) -> Work:
    """The job as billing sees it once ``event`` has happened; its status moves by the one
    fold of job statuses (events.job_status)."""
    before = work.status
    work = structs.replace(work, version=work.version + 1, status=status_after(before, event))
    match event:
        case JobRequested():
            return structs.replace(
                work,
                customer_id=event.customer_id,
                job_type=event.job_type,
                priority=event.priority,
                billing_kind=event.billing_kind,
                location=event.location,
            )
        case WorkStarted():
            visits = work.visits + (0 if before is Status.IN_PROGRESS else 1)
            return structs.replace(work, visits=visits)
        case WorkStopped() | TimeEntryAdded():
            entry = Entry(event.minutes, event.billable, event.activity)
            return structs.replace(work, entries={**work.entries, event.entry_id: entry})
        case TimeEntryCorrected():
            old = work.entries[event.entry_id]
            entry = Entry(event.minutes, event.billable, old.activity)
            return structs.replace(work, entries={**work.entries, event.entry_id: entry})
        case MaterialUsed():
            return structs.replace(work, materials=(*work.materials, event))
        case JobCompleted():
            at = event.meta.occurred_at if event.meta else None
            return structs.replace(work, summary=event.summary, completed_at=at, settled="")
        case JobSignedOff():
            return structs.replace(work, signed_off=True)
        case JobReopened():
            return structs.replace(work, signed_off=False, settled="")
        case JobInvoiced():
            return structs.replace(work, settled="invoiced")
        case JobNotBilled():
            return structs.replace(work, settled="not billed")
        case InvoicingHeld():
            return structs.replace(work, settled="held")
        case InterimInvoiced():
            return structs.replace(
                work,
                billed_entries=work.billed_entries | set(event.entries),
                billed_materials=event.materials,
                billed_visits=event.visits,
            )
    return work  # the others change nothing billing reads but the status


def work_of(job_id: UUID, events: Iterable[Event]) -> Work:
    work = Work(id=job_id)
    for event in events:
        if isinstance(event, JobEvents):
            work = evolve_work(work, event)
    return work


class Buyer(Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    prepaid_minutes: int = 0  # left of the prepaid hours packages
    warn_below_minutes: int = 0
    name: str = ""
    billing_address: Address | None = None
    email: str = ""
    vat_id: str = ""
    language: str = "en"
    currency: str = "EUR"
    payment_terms_days: int = 14
    price_list_id: UUID | None = None
    wants_proforma: bool = False
    buyer_reference: str = ""
    electronic_address: str = ""

    def party(self) -> Party:
        """The buyer as printed on a document, with what their e-invoices are routed by."""
        party = Party(name=self.name, address=self.billing_address, vat_id=self.vat_id, email=self.email)
        if not (self.buyer_reference or self.electronic_address):
            return party
        scheme, address = electronic_address(self.electronic_address)
        contact = Contact(reference=self.buyer_reference, electronic_address=address, electronic_address_scheme=scheme)
        return structs.replace(party, contact=contact)


def electronic_address(text: str) -> tuple[str, str]:
    """An electronic address as written in the settings or on a customer: (EAS scheme, id).
    An email is EM; ``0204:991-12345-67`` is a Leitweg-ID; nothing is ("", "")."""
    text = text.strip()
    scheme, _, value = text.partition(":")
    if not value or "@" in scheme:
        return ("EM", text) if text else ("", "")
    return scheme, value


def buyer_of(customer_id: UUID, events: Iterable[Event]) -> Buyer:
    """The customer as of the last of ``events``; a change sets only the fields it names."""
    buyer = Buyer(id=customer_id)
    names = set(Buyer.__struct_fields__) - {"id", "version", "prepaid_minutes", "warn_below_minutes"}
    for event in events:
        buyer = structs.replace(buyer, version=buyer.version + 1)
        if isinstance(event, CustomerRegistered | CustomerDetailsChanged):
            changed = {
                k: v
                for k, v in msgspec.structs.asdict(event).items()
                if k in names and v is not None and v is not msgspec.UNSET
            }
            buyer = structs.replace(buyer, **changed)
        elif isinstance(event, HoursPackageSold):
            buyer = structs.replace(
                buyer,
                prepaid_minutes=buyer.prepaid_minutes + int(event.hours * 60),
                warn_below_minutes=int(event.warn_below_hours * 60),
            )
        elif isinstance(event, PrepaidHoursConsumed):
            buyer = structs.replace(buyer, prepaid_minutes=event.balance_minutes)
    return buyer


class Activity(Struct, frozen=True, kw_only=True):
    code: str
    name: str
    unit: Unit
    rate: Decimal
    minimum_charge: Decimal = Decimal(0)
    vat_rate: Decimal = Decimal(0)


class PriceList(Struct, frozen=True, kw_only=True):
    id: UUID
    name: str = ""
    currency: str = "EUR"
    is_default: bool = False
    customer_id: UUID | None = None
    activities: dict[str, Activity] = {}


def price_list_of(list_id: UUID, events: Iterable[Event]) -> PriceList:
    prices = PriceList(id=list_id)
    for event in events:
        match event:
            case PriceListCreated():
                prices = structs.replace(
                    prices,
                    name=event.name,
                    currency=event.currency,
                    is_default=event.is_default,
                    customer_id=event.customer_id,
                )
            case ActivityPriced():
                activity = Activity(
                    code=event.code,
                    name=event.name,
                    unit=event.unit,
                    rate=event.rate,
                    minimum_charge=event.minimum_charge,
                    vat_rate=event.vat_rate,
                )
                prices = structs.replace(prices, activities={**prices.activities, event.code: activity})
            case ActivityRemoved():
                prices = structs.replace(
                    prices, activities={k: v for k, v in prices.activities.items() if k != event.code}
                )
    return prices


def merged(own: PriceList | None, default: PriceList | None) -> dict[str, Activity]:
    """The customer's list over the default one: an activity the customer's list lacks is
    priced from the default."""
    return {**(default.activities if default else {}), **(own.activities if own else {})}


# --- pricing -----------------------------------------------------------------------------


class Seller(Struct, frozen=True, kw_only=True):
    """The company issuing invoices (configured, and copied onto every invoice)."""

    name: str = "jobstream demo services"
    address: Address = Address(street="1 Main Street", city="Springfield", postal_code="00-001", country="PL")
    vat_id: str = ""
    email: str = ""
    bank_account: str = ""
    timezone: str = "UTC"
    material_vat_rate: Decimal = Decimal(23)
    contact: Contact = Contact()  # the e-invoices' contact point and electronic address (XRechnung wants them)

    def party(self) -> Party:
        party = Party(
            name=self.name, address=self.address, vat_id=self.vat_id, email=self.email, bank_account=self.bank_account
        )
        return structs.replace(party, contact=self.contact) if self.contact != Contact() else party


class Bill(Struct, frozen=True, kw_only=True):
    """An invoice's content before it has a number."""

    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    prepaid_minutes_used: int = 0
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    reverse_charge: bool
    currency: str
    issue_date: date
    supply_date: date
    due_date: date


class Unbillable(Struct, frozen=True, kw_only=True):
    """A completed job that gets no invoice, and what its work cost."""

    reason: str
    cost: Decimal
    currency: str


class Unpriced(Exception):
    """The job cannot be priced; the reason names what is missing."""


def quantity(unit: Unit, minutes: int, entries: int) -> Decimal:
    """The billed quantity of time: 2 h 10 min is 2.17 hours, 3 started hours, 9 quarter hours."""
    match unit:
        case Unit.HOUR:
            return money(Decimal(minutes) / 60)
        case Unit.STARTED_HOUR:
            return Decimal(math.ceil(minutes / 60))
        case Unit.QUARTER_HOUR:
            return Decimal(math.ceil(minutes / 15))
        case Unit.PIECE:
            return Decimal(entries)
        case Unit.FLAT:
            return Decimal(1)


def reverse_charge(seller: Seller, buyer: Buyer) -> bool:
    """EU business to EU business across a border: the buyer accounts for the VAT."""
    country = buyer.billing_address.country if buyer.billing_address else ""
    return bool(buyer.vat_id) and country in EU and seller.address.country in EU and country != seller.address.country


def line_of(
    kind: str,
    code: str,
    description: str,
    qty: Decimal,
    unit: str,
    price: Decimal,
    vat_rate: Decimal,
    reverse: bool,
    minutes: int = 0,
    minimum: Decimal = Decimal(0),
) -> InvoiceLine:
    net = money(qty * price)
    if minimum and net < minimum:  # the minimum charge replaces the line, as one flat unit
        description, qty, unit, price, net = (
            f"{description} (minimum charge)",
            Decimal(1),
            "flat",
            minimum,
            money(minimum),
        )
    category = "AE" if reverse else ("Z" if vat_rate == 0 else "S")
    return InvoiceLine(
        kind=kind,
        code=code,
        description=description,
        quantity=qty,
        unit=unit,
        unit_price=price,
        net=net,
        vat_rate=Decimal(0) if reverse else vat_rate,
        vat_category=category,
        logged_minutes=minutes,
    )


def lines_of(
    work: Work,
    activities: dict[str, Activity],
    seller: Seller,
    reverse: bool,
    prepaid_minutes: int = 0,
    interim: bool = False,
) -> list[InvoiceLine]:
    """The lines of the job's billable work; raises Unpriced naming what has no price.

    Prepaid minutes are used first, activity by activity: each use is a line at no charge
    showing the time it covered, and only the rest is priced."""
    lines: list[InvoiceLine] = []
    by_activity: dict[str, list[Entry]] = {}
    for entry_id, entry in work.entries.items():
        if entry.billable and entry.minutes > 0 and entry_id not in work.billed_entries:
            code = entry.activity or (work.job_type if work.job_type in activities else LABOUR)
            by_activity.setdefault(code, []).append(entry)
    for code, entries in sorted(by_activity.items()):
        activity = activities.get(code)
        if activity is None:
            raise Unpriced(f"activity {code!r} is on no price list of this customer")
        minutes = sum(e.minutes for e in entries)
        covered = min(prepaid_minutes, minutes) if activity.unit in TIMED else 0
        prepaid_minutes -= covered
        if covered:
            lines.append(
                line_of(
                    "prepaid",
                    code,
                    f"{activity.name} (prepaid hours)",
                    money(Decimal(covered) / 60),
                    "hour",
                    Decimal(0),
                    activity.vat_rate,
                    reverse,
                    covered,
                )
            )
        if minutes - covered > 0:
            qty = quantity(activity.unit, minutes - covered, len(entries))
            lines.append(
                line_of(
                    "time",
                    code,
                    activity.name,
                    qty,
                    activity.unit.value,
                    activity.rate,
                    activity.vat_rate,
                    reverse,
                    minutes - covered,
                    activity.minimum_charge,
                )
            )
    visits = work.visits - work.billed_visits
    if work.location is Location.ON_SITE and CALL_OUT in activities and visits > 0:
        fee = activities[CALL_OUT]
        lines.append(line_of("fee", CALL_OUT, fee.name, Decimal(visits), "visit", fee.rate, fee.vat_rate, reverse))
    if work.priority is Priority.URGENT and URGENT in activities and not interim:
        fee = activities[URGENT]
        lines.append(line_of("fee", URGENT, fee.name, Decimal(1), "flat", fee.rate, fee.vat_rate, reverse))
    for used in work.materials[work.billed_materials :]:
        if not used.billable:
            continue
        listed = activities.get(used.code)
        price = used.unit_price if used.unit_price is not None else (listed.rate if listed else None)
        if price is None:
            raise Unpriced(f"material {used.code!r} has no price on the job or on a price list")
        vat_rate = listed.vat_rate if listed else seller.material_vat_rate
        description = used.description
        if used.discount_percent:  # the net price after the discount: quantity × price is the line
            price = price * (1 - used.discount_percent / 100)
            description = f"{used.description} (−{used.discount_percent.normalize():f} %)"
        lines.append(line_of("material", used.code, description, used.quantity, used.unit, price, vat_rate, reverse))
    return lines


def vat_breakdown(lines: Sequence[InvoiceLine]) -> list[VatSubtotal]:
    taxable: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.vat_category, line.vat_rate)
        taxable[key] = taxable.get(key, Decimal(0)) + line.net
    return [
        VatSubtotal(category=category, rate=rate, taxable=amount, vat=money(amount * rate / 100))
        for (category, rate), amount in sorted(taxable.items(), key=lambda kv: (-kv[0][1], kv[0][0]))
    ]


def local_day(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


def bill(
    work: Work, buyer: Buyer, activities: dict[str, Activity], seller: Seller, now: datetime, interim: bool = False
) -> Bill | Unbillable:
    """What the job bills if it is invoiced at ``now`` (raises Unpriced): its work not billed
    on an interim invoice yet; an interim bill leaves the once-per-job fees for the final one."""
    reverse = reverse_charge(seller, buyer)
    prepaid = buyer.prepaid_minutes if work.billing_kind is BillingKind.PAID else 0  # warranty uses none
    lines = lines_of(work, activities, seller, reverse, prepaid, interim)
    if work.billing_kind is not BillingKind.PAID:
        return Unbillable(
            reason=work.billing_kind.value, cost=sum((l.net for l in lines), Decimal(0)), currency=buyer.currency
        )
    if not lines:
        reason = (
            "nothing billable since the last invoice"
            if work.billed_entries or work.billed_materials
            else "nothing billable was recorded"
        )
        return Unbillable(reason=reason, cost=Decimal(0), currency=buyer.currency)
    vat = vat_breakdown(lines)
    net = sum((line.net for line in lines), Decimal(0))
    tax = sum((v.vat for v in vat), Decimal(0))
    issued = local_day(now, seller.timezone)
    supplied = local_day(work.completed_at, seller.timezone) if work.completed_at else issued
    used = sum(line.logged_minutes for line in lines if line.kind == "prepaid")
    return Bill(
        lines=lines,
        vat=vat,
        prepaid_minutes_used=used,
        net_total=net,
        vat_total=tax,
        gross_total=net + tax,
        reverse_charge=reverse,
        currency=buyer.currency,
        issue_date=issued,
        supply_date=supplied,
        due_date=issued + timedelta(days=buyer.payment_terms_days),
    )


# --- numbers and references --------------------------------------------------------------


def invoice_number(pattern: str, series: str, year: int, sequence: int) -> str:
    """``{series}/{year}/{sequence:06d}`` gives FV/2026/000123."""
    return pattern.format(series=series, year=year, sequence=sequence)


def creditor_reference(text: str) -> str:
    """The ISO 11649 (RF) creditor reference for an invoice number: RF, two check digits, the
    number's letters and digits."""
    body = "".join(c for c in text.upper() if c.isalnum())[:21]
    digits = "".join(str(int(c, 36)) for c in body + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{body}"


def variable_symbol(number: str) -> str:
    """The Czech variable symbol for an invoice number: its digits, at most the last ten
    (FV/2026/000123 gives 2026000123), which Czech payers type into the payment."""
    return "".join(c for c in number if c.isdigit())[-10:]
