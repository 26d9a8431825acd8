"""jobstream's events and commands.

Events are past tense (``JobScheduled``), commands imperative (``ScheduleJob``). One name
serves as the class, the msgspec tag and the stored topic; the aggregate it belongs to
names its subject, ``events.<aggregate>.<id>``. Fields are only ever added, with defaults,
never renamed: old events still decode. Events tolerate unknown fields; commands forbid them.
Money is Decimal, times are aware UTC datetimes.
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
import calendar
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, ClassVar, NamedTuple
from uuid import UUID

from msgspec import Meta, Struct

# --- value types ----------------------------------------------------------------------

# Characters no text field takes: the C0 and C1 control characters and the noncharacters
# U+FFFE and U+FFFF, which XML cannot hold (a customer's name ends up in invoice XML).
# Multi-line fields (notes, descriptions, scope, summaries, reasons) keep tab, newline and CR.
# Lone surrogates never get this far: the JSON decoder refuses "\\ud800" (422, body).
CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
LINE_CHARACTER = rf"[^\t\n\r{CONTROLS}]"
TEXT_CHARACTER = rf"[^{CONTROLS}]"


def whole(body: str) -> str:
    """A pattern the whole of a single-line value must match. msgspec checks with Python's
    ``re.search``, whose ``$`` also matches before a final newline: the lookahead refuses
    that newline, so the pattern means what it means in JSON Schema (ECMA-262)."""
    return rf"^(?!.*\n)(?:{body})$"


LINE = whole(f"{LINE_CHARACTER}*")  # one line: no control characters at all
LINES = f"^{TEXT_CHARACTER}*$"  # several lines: tab, newline and CR allowed
_UNREADABLE = {False: re.compile(rf"[\t\n\r{CONTROLS}\ud800-\udfff]"), True: re.compile(rf"[{CONTROLS}\ud800-\udfff]")}


LINE_RULE = ("one line of text: no tab, newline or other control character (U+0000-U+001F, "
             "U+007F-U+009F), and no U+FFFE or U+FFFF")
LINES_RULE = ("text without control characters (U+0000-U+001F, U+007F-U+009F; tab and newline are "
              "allowed) and without U+FFFE or U+FFFF")


def unreadable(text: str, multiline: bool = False) -> str:
    """Why a text cannot be stored ('' when it can), for the doors that take text without
    decoding a command (the booking form, a photo's caption)."""
    found = _UNREADABLE[multiline].search(text)
    if found is None:
        return ""
    return f"contains U+{ord(found.group()):04X}: {LINES_RULE if multiline else LINE_RULE}"


def line(max_length: int, min_length: int = 0) -> Meta:
    return Meta(min_length=min_length, max_length=max_length, pattern=LINE)


def lines(max_length: int, min_length: int = 0) -> Meta:
    return Meta(min_length=min_length, max_length=max_length, pattern=LINES)


Text = Annotated[str, line(200, 1)]
LongText = Annotated[str, lines(10_000)]
OptionalText = Annotated[str, line(200)]
# A reason someone must give (cancel, hold, reopen, correct): blank or only spaces is no reason.
REASON = rf"^[^\S{CONTROLS}]*[^\s{CONTROLS}]{TEXT_CHARACTER}*$"  # some words, then any lines
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern=REASON)]
EMAIL = whole(rf"[^@\s{CONTROLS}]+@[^@\s{CONTROLS}]+\.[^@\s{CONTROLS}]+")
Email = Annotated[str, Meta(pattern=EMAIL, max_length=254)]
Phone = Annotated[str, line(40)]
Country = Annotated[str, Meta(pattern=whole(r"[A-Z]{2}"))]
Currency = Annotated[str, Meta(pattern=whole(r"EUR|PLN|CZK|RON|USD|GBP|CHF|HUF"))]
Language = Annotated[str, Meta(pattern=whole(r"en|pl|cs|de|ro"))]
Minutes = Annotated[int, Meta(ge=0, le=60 * 24 * 366)]
PositiveMinutes = Annotated[int, Meta(ge=1, le=60 * 24 * 31)]
# msgspec cannot bound a Decimal: commands holding money check it in __post_init__.
Money = Decimal
VatRate = Decimal
Quantity = Decimal
UtcTime = Annotated[datetime, Meta(tz=True)]
TimeEntryMinutes = Annotated[int, Meta(ge=1, le=24 * 60)]  # one entry is at most a day


class Day(date):
    """A business day in an event (a payment's ``received_on``, a statement line's ``booked_on``),
    decoded leniently.

    Commands take a ``date``, so new events hold real days. Before that, a payment's day was
    a string checked only for its shape, and ``2026-02-30`` was stored for ever: such an event
    still decodes, read as the nearest real day (2026-02-28), and ``written`` keeps what was
    stored (an encoding gives it back). msgspec cannot union ``date`` with ``str``: this type
    is decoded by the codec's ``dec_hook`` instead."""

    written: str

    @classmethod
    def of(cls, day: date) -> Day:
        made = cls(day.year, day.month, day.day)
        made.written = day.isoformat()
        return made

    @classmethod
    def read(cls, text: str) -> Day:
        try:
            made = cls.of(date.fromisoformat(text))
        except ValueError:
            parts = text.split("-")
            if len(parts) == 3 and all(p.isdigit() for p in parts):  # the shape, not a real day
                year = min(max(int(parts[0]), 1), 9999)
                month = min(max(int(parts[1]), 1), 12)
                made = cls(year, month, min(max(int(parts[2]), 1), calendar.monthrange(year, month)[1]))
            else:  # not a day at all: the earliest, which nothing real precedes
                made = cls(1, 1, 1)
        made.written = text
        return made

    @staticmethod
    def text(day: date) -> str:
        """The day as stored: what was written, for a day decoded from an event."""
        return getattr(day, "written", None) or day.isoformat()

    @property
    def real(self) -> bool:
        """Whether the stored text was this real day."""
        return self.written == self.isoformat()
Code = Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_.-]{1,40}"))]


class Role(enum.StrEnum):
    OFFICE = "office"
    TECHNICIAN = "technician"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


class Status(enum.StrEnum):
    NEW = "new"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"


class Source(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    IMPORT = "import"
    RECURRING = "recurring"  # generated from a recurring service


class Priority(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class BillingKind(enum.StrEnum):
    PAID = "paid"
    WARRANTY = "warranty"
    INTERNAL = "internal"


class Location(enum.StrEnum):
    ON_SITE = "on_site"
    IN_SHOP = "in_shop"


class Unit(enum.StrEnum):
    HOUR = "hour"
    STARTED_HOUR = "started_hour"
    QUARTER_HOUR = "quarter_hour"
    PIECE = "piece"
    FLAT = "flat"


class Address(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    street: Text
    city: Text
    postal_code: Annotated[str, line(20, 1)]
    country: Country
    label: OptionalText = ""


class EventMeta(Struct, frozen=True, kw_only=True):
    """Who did what, when, as which command, and the hash of the aggregate's previous event."""

    event_id: UUID
    occurred_at: datetime
    actor_id: str
    actor_role: str
    command_id: str
    correlation_id: str
    previous_hash: str = ""



# --- events ----------------------------------------------------------------------------


class Event(Struct, frozen=True, kw_only=True, tag=True):
    """Every event: the aggregate's id, and metadata stamped by the application."""

    aggregate: ClassVar[str]
    id: UUID
    meta: EventMeta | None = None


# customers


class CustomerEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "customer"


class CustomerRegistered(CustomerEvent, frozen=True, kw_only=True, tag=True):
    name: str
    billing_address: Address
    site_addresses: list[Address] = []
    email: str = ""
    phone: str = ""
    vat_id: str = ""
    language: str = "en"
    currency: str = "EUR"
    payment_terms_days: int = 14
    wants_proforma: bool = False  # a proforma invoice when a quote is accepted
    price_list_id: UUID | None = None


class CustomerDetailsChanged(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Only the fields that changed are set."""

    name: str | None = None
    billing_address: Address | None = None
    site_addresses: list[Address] | None = None
    email: str | None = None
    phone: str | None = None
    vat_id: str | None = None
    language: str | None = None
    currency: str | None = None
    payment_terms_days: int | None = None
    wants_proforma: bool | None = None
    price_list_id: UUID | None = None


class HoursPackageSold(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Prepaid hours: the customer's time is billed from these first."""

    package_id: UUID
    hours: Decimal
    warn_below_hours: Decimal = Decimal(2)
    note: str = ""


class PrepaidHoursConsumed(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Recorded by the invoicer with the invoice that used the hours."""

    minutes: int
    job_id: UUID
    invoice_id: UUID
    balance_minutes: int  # left after this


class RetainerAgreed(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """A monthly flat fee, invoiced on the first of each month from ``first_month`` on."""

    retainer_id: UUID
    description: str
    amount: Decimal  # net, in the customer's currency
    vat_rate: Decimal
    first_month: str  # YYYY-MM


class RetainerEnded(CustomerEvent, frozen=True, kw_only=True, tag=True):
    retainer_id: UUID
    last_month: str  # YYYY-MM, the last month invoiced


class PrepaidBalanceLow(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """The prepaid balance fell below the package's warning level: time to offer another."""

    balance_minutes: int
    warn_below_minutes: int


# technicians


class TechnicianEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "technician"


class TechnicianRegistered(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    name: str
    skills: list[str] = []
    email: str = ""
    phone: str = ""


class TechnicianDetailsChanged(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    name: str | None = None
    skills: list[str] | None = None
    email: str | None = None
    phone: str | None = None


class TechnicianDeactivated(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    reason: str = ""


class TechnicianReactivated(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    pass


class StopwatchStarted(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    """The technician's one running stopwatch now times this job."""

    job_id: UUID
    at: datetime


class StopwatchStopped(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    job_id: UUID
    at: datetime


# price lists and the service catalogue


class PriceListEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "pricelist"


class PriceListCreated(PriceListEvent, frozen=True, kw_only=True, tag=True):
    name: str
    currency: str
    is_default: bool = False
    customer_id: UUID | None = None


class ActivityPriced(PriceListEvent, frozen=True, kw_only=True, tag=True):
    code: str
    name: str
    unit: Unit
    rate: Decimal
    minimum_charge: Decimal = Decimal(0)
    vat_rate: Decimal = Decimal(0)


class ActivityRemoved(PriceListEvent, frozen=True, kw_only=True, tag=True):
    code: str


# jobs


class JobEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "job"


class JobRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    source: Source
    customer_id: UUID
    site_address: Address | None
    job_type: str
    description: str
    scope: str = ""
    priority: Priority = Priority.NORMAL
    sla_deadline: datetime | None = None
    billing_kind: BillingKind = BillingKind.PAID
    location: Location = Location.ON_SITE
    estimate_minutes: int | None = None


class JobDetailsChanged(JobEvent, frozen=True, kw_only=True, tag=True):
    site_address: Address | None = None
    description: str | None = None
    scope: str | None = None


class JobQuoted(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID
    amount: Decimal
    currency: str = ""  # empty: the customer's currency
    valid_until: datetime | None = None
    note: str = ""


class QuoteAccepted(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID


class QuoteRejected(JobEvent, frozen=True, kw_only=True, tag=True):
    quote_id: UUID
    reason: str = ""


class JobScheduled(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_ids: list[UUID]
    start: datetime
    duration_minutes: int


class JobRescheduled(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_ids: list[UUID]
    start: datetime
    duration_minutes: int
    reason: str = ""


class JobUnassigned(JobEvent, frozen=True, kw_only=True, tag=True):
    """Back to the open pool, for any technician to take."""

    reason: str = ""


class JobTaken(JobEvent, frozen=True, kw_only=True, tag=True):
    """A technician took the job from the open pool."""

    technician_id: UUID
    start: datetime
    duration_minutes: int


class WorkStarted(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_id: UUID
    entry_id: UUID
    started_at: datetime


class WorkStopped(JobEvent, frozen=True, kw_only=True, tag=True):
    """Closes the running time entry of this technician on this job."""

    technician_id: UUID
    entry_id: UUID
    started_at: datetime
    stopped_at: datetime
    minutes: int
    billable: bool = True
    activity: str = ""


class TimeEntryAdded(JobEvent, frozen=True, kw_only=True, tag=True):
    technician_id: UUID
    entry_id: UUID
    started_at: datetime
    minutes: int
    billable: bool = True
    activity: str = ""
    note: str = ""


class TimeEntryCorrected(JobEvent, frozen=True, kw_only=True, tag=True):
    entry_id: UUID
    minutes: int
    billable: bool
    reason: str


class NoteAdded(JobEvent, frozen=True, kw_only=True, tag=True):
    text: str


class MaterialUsed(JobEvent, frozen=True, kw_only=True, tag=True):
    code: str
    description: str
    quantity: Decimal
    unit: str = "piece"
    unit_price: Decimal | None = None
    billable: bool = True
    discount_percent: Decimal = Decimal(0)


class SlaAtRisk(JobEvent, frozen=True, kw_only=True, tag=True):
    """An urgent job still open close to (or past) its SLA deadline: the office is alerted once
    per deadline."""

    deadline: datetime
    minutes_left: int  # negative once the deadline has passed


class PhotoAttached(JobEvent, frozen=True, kw_only=True, tag=True):
    """A photo taken on the job, kept in the documents object store under ``name``."""

    photo_id: UUID
    name: str
    media_type: str
    size: int
    sha256: str
    caption: str = ""


class JobCompleted(JobEvent, frozen=True, kw_only=True, tag=True):
    summary: str
    first_visit: bool = True


class JobSignedOff(JobEvent, frozen=True, kw_only=True, tag=True):
    signed_by: str
    signature: str = ""  # a data: URL of the drawn signature, or empty


class JobPutOnHold(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str
    previous_status: Status


class JobResumed(JobEvent, frozen=True, kw_only=True, tag=True):
    status: Status


class JobCancelled(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str


class JobReopened(JobEvent, frozen=True, kw_only=True, tag=True):
    reason: str
    status: Status


class InterimInvoiceRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for the work to date on a long job to be invoiced now."""

    request_id: UUID


class InterimInvoiced(JobEvent, frozen=True, kw_only=True, tag=True):
    """Work billed ahead of completion (with the interim invoice, in one batch): the final
    invoice bills only what came after."""

    invoice_id: UUID
    number: str
    entries: list[UUID]  # time entries billed
    materials: int  # materials billed so far (the first n recorded)
    visits: int  # visits whose call-out fee is billed


class JobInvoiced(JobEvent, frozen=True, kw_only=True, tag=True):
    """Recorded by the invoicer in the same atomic batch as the invoice."""

    invoice_id: UUID
    number: str


class JobNotBilled(JobEvent, frozen=True, kw_only=True, tag=True):
    """A completed job that gets no invoice, and why (warranty, internal); its cost is kept."""

    reason: str
    cost: Decimal = Decimal(0)
    currency: str = ""


class InvoicingHeld(JobEvent, frozen=True, kw_only=True, tag=True):
    """The invoicer could not price the job (say, an activity missing from the price list)."""

    reason: str


class InvoicingReleaseRequested(JobEvent, frozen=True, kw_only=True, tag=True):
    """The office asks the invoicer to try a held job again (its cause fixed, say)."""

    note: str = ""


# invoices (the id is derived from the job's; the number from its series' next sequence)


class Party(Struct, frozen=True, kw_only=True):
    name: str
    address: Address | None = None
    vat_id: str = ""
    email: str = ""
    bank_account: str = ""


class InvoiceLine(Struct, frozen=True, kw_only=True):
    """One billed line. Time lines keep the minutes logged; the quantity is derived from them."""

    kind: str  # time, material, fee
    code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    vat_rate: Decimal
    vat_category: str = "S"  # EN 16931: S standard, Z zero, AE reverse charge
    logged_minutes: int = 0


class VatSubtotal(Struct, frozen=True, kw_only=True):
    category: str
    rate: Decimal
    taxable: Decimal
    vat: Decimal


class InvoiceEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "invoice"


class InvoiceIssued(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """Everything printed on the invoice, so it can be rendered again from the log alone."""

    number: str
    series: str
    sequence: int
    job_id: UUID
    customer_id: UUID
    issue_date: date  # in the company's time zone; stored as "YYYY-MM-DD", as always
    supply_date: date
    due_date: date
    currency: str
    language: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    payment_reference: str
    reverse_charge: bool = False
    job_type: str = ""
    job_summary: str = ""
    interim: bool = False  # the work to date on a job still open; the final invoice follows
    retainer_id: UUID | None = None  # a retainer's monthly invoice: job_id is the retainer's id
    period: str = ""  # the month a retainer's invoice is for, YYYY-MM


class CreditNoteRequested(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for the invoice to be corrected: the invoicer issues the credit note."""

    request_id: UUID
    reason: str
    amount: Decimal  # gross, in the invoice's currency
    whole: bool  # the whole invoice, line by line


class InvoiceCredited(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A credit note issued against the invoice (in the same batch as the credit note)."""

    credit_note_id: UUID
    number: str
    amount: Decimal  # gross


class InvoiceDocumentStored(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A rendering of the invoice, put in the documents object store."""

    name: str
    media_type: str
    sha256: str
    size: int


class PaymentApplied(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """Money received for the invoice, and which rule matched it (or the office by hand)."""

    payment_id: UUID
    amount: Decimal
    currency: str
    received_on: Day
    rule: str  # invoice number, RF reference, variable symbol, amount and payer, office
    payer: str = ""
    payer_iban: str = ""
    statement_id: UUID | None = None
    line: int = 0


class PaymentReminderDue(InvoiceEvent, frozen=True, kw_only=True, tag=True):
    """A step of the dunning schedule reached for an unpaid invoice, for the notifier to
    deliver (a reminder to the customer, or an escalation to a named office user)."""

    step: int
    level: str  # friendly, firm, escalation
    days_overdue: int
    outstanding: Decimal
    currency: str
    due_date: date
    escalate_to: str = ""


# bank statements (the id is derived from the file's SHA-256: a second import is refused)


class StatementLine(Struct, frozen=True, kw_only=True):
    index: int
    booked_on: Day  # from a bank's file: an old stored line may not hold a real day
    amount: Decimal  # negative for a debit
    currency: str
    payer: str = ""
    payer_iban: str = ""
    reference: str = ""  # structured (an RF reference, say)
    text: str = ""  # unstructured remittance information
    bank_reference: str = ""
    account: str = ""
    # the bank's own reference for the entry (camt.053 AcctSvcrRef, MT940 bank reference), with
    # the account: the same entry in two files, or twice in one, has the same key
    entry_key: str = ""

    def key(self) -> str:
        """What identifies the entry across statements: the bank's reference, else its content."""
        if self.entry_key:
            return self.entry_key
        content = "|".join([self.account, Day.text(self.booked_on), format(self.amount.normalize(), "f"), self.currency,
                            self.payer_iban, self.payer, self.reference, self.text])
        return "content:" + hashlib.sha256(content.encode()).hexdigest()


class StatementEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "statement"


class BankStatementImported(StatementEvent, frozen=True, kw_only=True, tag=True):
    """One part of a statement's lines (a statement of thousands of lines is several parts,
    saved together in one atomic batch)."""

    format: str
    account: str
    reference: str
    sha256: str
    part: int
    parts: int
    lines: list[StatementLine]


class StatementLineUnmatched(StatementEvent, frozen=True, kw_only=True, tag=True):
    """A credit no rule matched to an invoice: it waits in the office's review queue."""

    line: int
    amount: Decimal
    currency: str
    payer: str = ""
    text: str = ""
    reason: str = ""


class ProformaEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "proforma"


class ProformaIssued(ProformaEvent, frozen=True, kw_only=True, tag=True):
    """A proforma invoice for an accepted quote (not a tax document: it asks for payment in
    advance, and is not posted to the ledger)."""

    number: str
    job_id: UUID
    quote_id: UUID
    customer_id: UUID
    issue_date: date
    due_date: date
    currency: str
    language: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    payment_reference: str
    reverse_charge: bool = False
    job_type: str = ""


class ProformaDocumentStored(ProformaEvent, frozen=True, kw_only=True, tag=True):
    name: str
    media_type: str
    sha256: str
    size: int


class CreditNoteEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "creditnote"


class CreditNoteIssued(CreditNoteEvent, frozen=True, kw_only=True, tag=True):
    """A correction of an issued invoice, by reference; amounts are positive and credited.
    Everything printed on it is here, as on an invoice."""

    number: str
    series: str
    sequence: int
    invoice_id: UUID
    invoice_number: str
    invoice_issue_date: date
    customer_id: UUID
    issue_date: date
    currency: str
    language: str
    reason: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    reverse_charge: bool = False
    job_type: str = ""


class CreditNoteDocumentStored(CreditNoteEvent, frozen=True, kw_only=True, tag=True):
    """A rendering of the credit note, put in the documents object store."""

    name: str
    media_type: str
    sha256: str
    size: int


class SeriesEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "series"


class InvoiceNumberAllocated(SeriesEvent, frozen=True, kw_only=True, tag=True):
    """The series' next number; its version is the sequence, so numbers have no gaps."""

    series: str
    year: int
    sequence: int
    number: str
    invoice_id: UUID  # or the credit note's, in a credit note series


# access tokens (the id is derived from the token's hash; the token itself is never stored)


class TokenEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "token"


class TokenIssued(TokenEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    role: Role
    technician_id: UUID | None = None
    token_hash: str


class TokenRevoked(TokenEvent, frozen=True, kw_only=True, tag=True):
    reason: str = ""



# notifications: one aggregate per message, its id derived from what caused it and who gets it


class MessageEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "message"


class MessageQueued(MessageEvent, frozen=True, kw_only=True, tag=True):
    """A message the notifier will deliver: an email to a customer or the office, or a push
    alert to a user's devices (and open clients)."""

    channel: str  # email, push
    purpose: str  # invoice, credit_note, reminder, escalation, job_assigned, ...
    recipient: str  # an email address; for push, a user name
    subject: str
    body: str
    language: str = "en"
    url: str = ""  # where the message leads
    about_kind: str = ""  # invoice, credit_note, job
    about_id: UUID | None = None
    attachments: list[str] = []  # names in the documents object store
    not_before: datetime | None = None  # held over the recipient's quiet hours
    cause_position: int = 0  # the stream position of the event it tells of: read models at it show it


class DeliveryAttempted(MessageEvent, frozen=True, kw_only=True, tag=True):
    """A sender has taken the message: no other sends it while the lease runs."""

    attempt: int
    lease_until: datetime


class MessageDelivered(MessageEvent, frozen=True, kw_only=True, tag=True):
    attempt: int
    detail: str = ""  # the SMTP server's reply; the push services' statuses


class DeliveryFailed(MessageEvent, frozen=True, kw_only=True, tag=True):
    """An attempt failed; tried again at ``retry_at``, or, without one, given up: the office sees it."""

    attempt: int
    error: str
    retry_at: datetime | None = None


class DeliveryUncertain(MessageEvent, frozen=True, kw_only=True, tag=True):
    """The sender stopped during an attempt, so whether it went out is unknown. Not sent
    again on its own (a customer must not get an invoice twice): the office decides."""

    attempt: int


class RedeliveryRequested(MessageEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for a failed or uncertain message to be sent again."""

    reason: str = ""


# recipients: a user's alert preferences and push subscriptions (id derived from the user name)


RECIPIENTS = UUID("3f3a9a0e-6a43-4f0e-8f57-0b8c4f3f2d11")


def recipient_id(user_name: str) -> UUID:
    """A user's notification settings live in an aggregate whose id derives from their name."""
    return uuid.uuid5(RECIPIENTS, user_name)


class RecipientEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "recipient"


class NotificationPreferencesChanged(RecipientEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    alerts: list[str]
    quiet_from: str = ""  # HH:MM local time; push alerts wait until quiet_until
    quiet_until: str = ""
    timezone: str = "UTC"


class PushSubscriptionRegistered(RecipientEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    endpoint: str
    p256dh: str
    auth: str


class PushSubscriptionRemoved(RecipientEvent, frozen=True, kw_only=True, tag=True):
    endpoint: str
    reason: str = ""


# --- recurring services ---------------------------------------------------------------


class RecurrenceEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "recurrence"


class RecurringPlan(Struct, frozen=True, kw_only=True):
    """What each occurrence of a recurring service becomes: a job scheduled at the rule's times.

    ``rule`` is an RFC 5545 RRULE (``FREQ=MONTHLY;BYDAY=1MO``), read from ``start`` in the local
    ``timezone``: a visit at 09:00 stays at 09:00 across daylight-saving changes."""

    customer_id: UUID
    site_address: Address | None
    job_type: str
    description: str
    scope: str = ""
    technician_ids: list[UUID]
    rule: str
    start: datetime  # local wall-clock time, no offset
    timezone: str
    duration_minutes: int
    horizon_days: int
    billing_kind: BillingKind = BillingKind.PAID


class RecurringServiceDefined(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    plan: RecurringPlan


class RecurringServiceChanged(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    """The plan from now on: future occurrences are moved, added or withdrawn to match it."""

    plan: RecurringPlan
    reason: str = ""


class RecurringServiceEnded(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    """No occurrences after ``after`` (UTC); the future ones already generated are cancelled."""

    after: datetime
    reason: str = ""


class OccurrenceGenerated(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    at: datetime  # UTC
    job_id: UUID
    plan_version: int  # the plan it was made (or last moved) to


class OccurrenceWithdrawn(RecurrenceEvent, frozen=True, kw_only=True, tag=True):
    at: datetime
    job_id: UUID
    reason: str = ""


# --- booking slots: one technician's slot, claimed by one booking ----------------------


class SlotEvent(Event, frozen=True, kw_only=True, tag=True):
    """A technician's slot on the booking page's grid. Its id derives from the technician
    and the slot's start (``services.domain.slots.slot_id``): every command-API replica
    booking it appends to the same subject, and the store's optimistic concurrency lets
    one of them win."""

    aggregate: ClassVar[str] = "slot"


class SlotClaimed(SlotEvent, frozen=True, kw_only=True, tag=True):
    """A booking took the slot for its job (the first claim at version 0). Claimed again
    only once that job no longer holds it: cancelled, moved, given to someone else, or
    never scheduled on it within a minute of the claim."""

    technician_id: UUID
    start: datetime  # UTC
    job_id: UUID


SlotEvents = SlotClaimed


# --- consumers' failures: an event a consumer could not process, parked for the office ---


FAILURES = UUID("6b1f0c1e-2f7d-4f4e-9a51-7e0d3c2b8a94")


def failure_id(consumer: str, position: int) -> UUID:
    """One failure per consumer and stream position: recording it twice is one event."""
    return uuid.uuid5(FAILURES, f"{consumer}:{position}")


class FailureEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "failure"


class ProcessingFailed(FailureEvent, frozen=True, kw_only=True, tag=True):
    """A consumer could not process the event stored at ``position``, and trying again
    would not cure it (what would is tried again with backoff instead): it went on with the
    next event, and the office sees this one."""

    consumer: str  # the consumer's (or projection's) name: its tracking name
    position: int
    event_id: UUID | None = None  # None when the stored event could not even be read
    topic: str
    aggregate_id: str = ""
    error_type: str
    error: str


class ProcessingRetryRequested(FailureEvent, frozen=True, kw_only=True, tag=True):
    """The office asks the consumer to process the event again (its cause fixed)."""

    consumer: str
    position: int
    reason: str = ""


class ProcessingResolved(FailureEvent, frozen=True, kw_only=True, tag=True):
    """Tried again, the consumer processed the event."""

    outcome: str = ""


class ProcessingFailedAgain(FailureEvent, frozen=True, kw_only=True, tag=True):
    """Tried again, the event still could not be processed."""

    error_type: str
    error: str


FailureEvents = ProcessingFailed | ProcessingRetryRequested | ProcessingResolved | ProcessingFailedAgain


CustomerEvents = (
    CustomerRegistered | CustomerDetailsChanged | HoursPackageSold | PrepaidHoursConsumed | PrepaidBalanceLow
    | RetainerAgreed | RetainerEnded
)
TechnicianEvents = (
    TechnicianRegistered | TechnicianDetailsChanged | TechnicianDeactivated
    | TechnicianReactivated | StopwatchStarted | StopwatchStopped
)
PriceListEvents = PriceListCreated | ActivityPriced | ActivityRemoved
JobEvents = (
    JobRequested | JobDetailsChanged | JobQuoted | QuoteAccepted | QuoteRejected | JobScheduled
    | JobRescheduled | JobUnassigned | JobTaken | WorkStarted | WorkStopped | TimeEntryAdded
    | TimeEntryCorrected | NoteAdded | MaterialUsed | JobCompleted | JobSignedOff | JobPutOnHold
    | JobResumed | JobCancelled | JobReopened | JobInvoiced | JobNotBilled | InvoicingHeld | InvoicingReleaseRequested
    | InterimInvoiceRequested | InterimInvoiced | PhotoAttached | SlaAtRisk
)
InvoiceEvents = (
    InvoiceIssued | InvoiceDocumentStored | PaymentApplied | PaymentReminderDue | CreditNoteRequested
    | InvoiceCredited
)
CreditNoteEvents = CreditNoteIssued | CreditNoteDocumentStored
ProformaEvents = ProformaIssued | ProformaDocumentStored
StatementEvents = BankStatementImported | StatementLineUnmatched
SeriesEvents = InvoiceNumberAllocated
TokenEvents = TokenIssued | TokenRevoked
MessageEvents = (
    MessageQueued | DeliveryAttempted | MessageDelivered | DeliveryFailed | DeliveryUncertain
    | RedeliveryRequested
)
RecipientEvents = NotificationPreferencesChanged | PushSubscriptionRegistered | PushSubscriptionRemoved
RecurrenceEvents = (
    RecurringServiceDefined | RecurringServiceChanged | RecurringServiceEnded | OccurrenceGenerated
    | OccurrenceWithdrawn
)
AnyEvent = (
    CustomerEvents | TechnicianEvents | PriceListEvents | JobEvents | InvoiceEvents | SeriesEvents
    | StatementEvents | CreditNoteEvents | ProformaEvents | TokenEvents | MessageEvents | RecipientEvents
    | RecurrenceEvents
    | FailureEvents
    | SlotEvents
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in AnyEvent.__args__  # type: ignore[attr-defined]
}


# --- commands ----------------------------------------------------------------------------


class Bound(NamedTuple):
    """What a decimal field of a command takes (msgspec cannot bound a Decimal): the door
    checks it, and the OpenAPI document says it."""

    low: Decimal
    high: Decimal
    low_inclusive: bool = True


class Command(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    decimals: ClassVar[dict[str, Bound]] = {}

    def __post_init__(self) -> None:
        for field, bound in self.decimals.items():
            check_decimal(field, getattr(self, field), *bound)


def check_decimal(field: str, value: Decimal | None, low: Decimal, high: Decimal,
                  low_inclusive: bool = True) -> None:
    """Raise ValueError (a 422 naming the field) unless low <= value <= high."""
    if value is None:
        return
    if not value.is_finite():
        raise ValueError(f"`{field}` must be a finite number")
    if value < low or (value == low and not low_inclusive) or value > high:
        bound = "at least" if low_inclusive else "more than"
        raise ValueError(f"`{field}` must be {bound} {low} and at most {high}")
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ValueError(f"`{field}` may have at most 6 decimal places")


class RegisterCustomer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    billing_address: Address
    site_addresses: Annotated[list[Address], Meta(max_length=50)] = []
    email: Email | None = None
    phone: Phone = ""
    vat_id: Annotated[str, Meta(pattern=whole(r"([A-Z]{2}[A-Za-z0-9]{2,14})?"))] = ""
    # not given: the language of the billing address's country, and the seller's currency
    language: Language | None = None
    currency: Currency | None = None
    payment_terms_days: Annotated[int, Meta(ge=0, le=365)] = 14
    wants_proforma: bool = False
    price_list_id: UUID | None = None


class ChangeCustomerDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text | None = None
    billing_address: Address | None = None
    site_addresses: Annotated[list[Address], Meta(max_length=50)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    vat_id: Annotated[str, Meta(pattern=whole(r"([A-Z]{2}[A-Za-z0-9]{2,14})?"))] | None = None
    language: Language | None = None
    currency: Currency | None = None
    payment_terms_days: Annotated[int, Meta(ge=0, le=365)] | None = None
    wants_proforma: bool | None = None
    price_list_id: UUID | None = None


class SellHoursPackage(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prepaid hours for a customer: their time is billed from these first."""

    hours: Quantity
    warn_below_hours: Quantity = Decimal(2)
    note: OptionalText = ""

    decimals: ClassVar[dict[str, Bound]] = {"hours": Bound(Decimal(0), Decimal(100_000), low_inclusive=False),
                                         "warn_below_hours": Bound(Decimal(0), Decimal(100_000))}


Month = Annotated[str, Meta(pattern=whole(r"\d{4}-(0[1-9]|1[0-2])"))]


class AgreeRetainer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A monthly flat-rate service agreement, invoiced on schedule."""

    description: Text
    amount: Money
    vat_rate: VatRate
    first_month: Month

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e9"), low_inclusive=False),
                                         "vat_rate": Bound(Decimal(0), Decimal(100))}


class EndRetainer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    retainer_id: UUID
    last_month: Month


class RegisterTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    skills: Annotated[list[Code], Meta(max_length=50)] = []
    email: Email | None = None
    phone: Phone = ""


class ChangeTechnicianDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text | None = None
    skills: Annotated[list[Code], Meta(max_length=50)] | None = None
    email: Email | None = None
    phone: Phone | None = None


class DeactivateTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: OptionalText = ""


class ReactivateTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreatePriceList(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    currency: Currency = "EUR"
    is_default: bool = False
    customer_id: UUID | None = None


class PriceActivity(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: Text
    unit: Unit
    rate: Money
    minimum_charge: Money = Decimal(0)
    vat_rate: VatRate = Decimal(0)

    decimals: ClassVar[dict[str, Bound]] = {"rate": Bound(Decimal(0), Decimal("1e9")),
                                         "minimum_charge": Bound(Decimal(0), Decimal("1e9")),
                                         "vat_rate": Bound(Decimal(0), Decimal(100))}


class RemoveActivity(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code


class RequestJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    customer_id: UUID
    job_type: Code
    description: LongText
    source: Source = Source.PHONE
    site_address: Address | None = None
    scope: LongText = ""
    priority: Priority = Priority.NORMAL
    sla_deadline: UtcTime | None = None
    billing_kind: BillingKind = BillingKind.PAID
    location: Location = Location.ON_SITE
    estimate_minutes: Minutes | None = None


class ChangeJobDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    site_address: Address | None = None
    description: LongText | None = None
    scope: LongText | None = None


class QuoteJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: Money
    valid_until: UtcTime | None = None
    note: LongText = ""

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"))}


class AcceptQuote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class RejectQuote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: LongText = ""


class ScheduleJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    start: UtcTime
    duration_minutes: PositiveMinutes = 60


class RescheduleJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    start: UtcTime
    duration_minutes: PositiveMinutes = 60
    reason: LongText = ""


class UnassignJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: LongText = ""


class TakeJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: UtcTime | None = None
    duration_minutes: PositiveMinutes = 60


class StartWork(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_id: UUID | None = None  # a technician starts their own; the office names one
    at: UtcTime | None = None  # when, if not now: a phone that was offline sends it later


class StopWork(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    technician_id: UUID | None = None
    at: UtcTime | None = None
    billable: bool = True
    activity: Annotated[str, line(40)] = ""


class AddTimeEntry(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    started_at: UtcTime
    minutes: TimeEntryMinutes
    technician_id: UUID | None = None
    billable: bool = True
    activity: Annotated[str, line(40)] = ""
    note: LongText = ""


class CorrectTimeEntry(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entry_id: UUID
    minutes: Annotated[int, Meta(ge=0, le=24 * 60)]
    billable: bool = True
    reason: Reason


class AddNote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, lines(10_000, 1)]


class UseMaterial(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    description: Text
    quantity: Quantity
    unit: Annotated[str, line(20, 1)] = "piece"
    unit_price: Money | None = None
    billable: bool = True
    discount_percent: Decimal = Decimal(0)

    decimals: ClassVar[dict[str, Bound]] = {"quantity": Bound(Decimal(0), Decimal("1e9"), low_inclusive=False),
                                         "unit_price": Bound(Decimal(0), Decimal("1e9")),
                                         "discount_percent": Bound(Decimal(0), Decimal(100))}


class RequestInterimInvoice(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Invoice the work to date on a long job (the office); the invoicer issues it."""


class ReleaseInvoicing(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Have the invoicer try a held job again (the office, once the cause is fixed)."""

    note: OptionalText = ""


class AttachPhoto(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Made by the photo upload route (the photo itself is the request body), not posted as JSON."""

    photo_id: UUID
    name: str
    media_type: Annotated[str, Meta(pattern=whole(r"image/(jpeg|png|webp)"))]
    size: int
    sha256: str
    caption: Annotated[str, line(200)] = ""


class CompleteJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    summary: Annotated[str, lines(10_000, 1)]
    first_visit: bool = True


class SignOffJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    signed_by: Text
    signature: Annotated[str, Meta(max_length=500_000, pattern=whole(r"(data:image/(png|svg\+xml);base64,[A-Za-z0-9+/=]+)?"))] = ""


class PutJobOnHold(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ResumeJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CancelJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ReopenJob(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class IssueCreditNote(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Correct an issued invoice: credit all of it (no amount), or part of a single-rate one."""

    reason: Reason
    amount: Money | None = None  # gross; none: the whole invoice

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"), low_inclusive=False)}


class RecordPayment(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The office records money received for an invoice (cash, a card, a transfer seen)."""

    amount: Money
    received_on: date  # from 2000-01-01 to a year from today
    payer: OptionalText = ""
    note: OptionalText = ""

    decimals: ClassVar[dict[str, Bound]] = {"amount": Bound(Decimal(0), Decimal("1e12"), low_inclusive=False)}


class WarnSlaAtRisk(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The scheduler's: flag an open urgent job whose SLA deadline is within ``within_minutes``."""

    within_minutes: Annotated[int, Meta(ge=0, le=60 * 24 * 7)] = 60


# --- recurring services ----------------------------------------------------------------

LocalTime = Annotated[datetime, Meta(tz=False)]
TimeZone = Annotated[str, Meta(pattern=whole(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*"), max_length=60)]
Rule = Annotated[str, Meta(min_length=6, max_length=300, pattern=whole(r"[A-Z0-9=;,+-]+"))]


class DefineRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A visit that repeats: ``rule`` is an RFC 5545 RRULE without DTSTART (``FREQ=WEEKLY;BYDAY=MO``,
    ``FREQ=MONTHLY;BYMONTHDAY=1;COUNT=12``), ``start`` the first visit's local time in ``timezone``.
    The jobs are generated and scheduled ``horizon_days`` ahead."""

    customer_id: UUID
    job_type: Code
    description: LongText
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)]
    rule: Rule
    start: LocalTime
    timezone: TimeZone = "UTC"
    duration_minutes: PositiveMinutes = 60
    horizon_days: Annotated[int, Meta(ge=1, le=366)] = 60
    site_address: Address | None = None
    scope: LongText = ""
    billing_kind: BillingKind = BillingKind.PAID


class ChangeRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change what is given; the future occurrences follow (moved, added or withdrawn)."""

    job_type: Code | None = None
    description: LongText | None = None
    technician_ids: Annotated[list[UUID], Meta(min_length=1, max_length=10)] | None = None
    rule: Rule | None = None
    start: LocalTime | None = None
    timezone: TimeZone | None = None
    duration_minutes: PositiveMinutes | None = None
    horizon_days: Annotated[int, Meta(ge=1, le=366)] | None = None
    site_address: Address | None = None
    scope: LongText | None = None
    reason: LongText = ""


class EndRecurringService(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """No visits after ``after`` (default: now); future jobs already generated are cancelled."""

    after: UtcTime | None = None
    reason: Reason


class RecordOccurrence(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The generator's: an occurrence's job was created and scheduled (or moved) to the plan."""

    at: UtcTime
    job_id: UUID


class WithdrawOccurrence(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    at: UtcTime
    job_id: UUID
    reason: LongText = ""


# --- booking slots ------------------------------------------------------------------


class ClaimSlot(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The booking page takes one technician's slot for a job, before scheduling it there."""

    technician_id: UUID
    start: UtcTime
    job_id: UUID


JobCommand = (
    RequestJob | ChangeJobDetails | QuoteJob | AcceptQuote | RejectQuote | ScheduleJob
    | RescheduleJob | UnassignJob | TakeJob | StartWork | StopWork | AddTimeEntry
    | CorrectTimeEntry | AddNote | UseMaterial | CompleteJob | SignOffJob | PutJobOnHold
    | ResumeJob | CancelJob | ReopenJob | RequestInterimInvoice | AttachPhoto | WarnSlaAtRisk | ReleaseInvoicing
)


# --- the codec -------------------------------------------------------------------------


class Alert(enum.StrEnum):
    """The push alerts a user can have. By default a technician gets the first three, the
    office the last two."""

    JOB_ASSIGNED = "job_assigned"
    JOB_RESCHEDULED = "job_rescheduled"
    JOB_CANCELLED = "job_cancelled"
    JOB_COMPLETED = "job_completed"
    SLA_AT_RISK = "sla_at_risk"


ClockTime = Annotated[str, Meta(pattern=whole(r"(([01][0-9]|2[0-3]):[0-5][0-9])?"))]  # HH:MM, or none


class ChangeNotificationPreferences(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    alerts: list[Alert]
    quiet_from: ClockTime = ""
    quiet_until: ClockTime = ""
    timezone: TimeZone = "UTC"

    def __post_init__(self) -> None:
        if bool(self.quiet_from) != bool(self.quiet_until):
            raise ValueError("quiet hours need both `quiet_from` and `quiet_until`")


class PushKeys(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    p256dh: Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_-]{80,100}={0,2}"))]
    auth: Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_-]{16,24}={0,2}"))]


class RegisterPushSubscription(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the browser's ``PushSubscription.toJSON()`` gives."""

    endpoint: Annotated[str, Meta(max_length=1000, pattern=whole(rf"https://[^\s{CONTROLS}]+|http://(127\.0\.0\.1|localhost)(:[0-9]+)?/[^\s{CONTROLS}]*"))]
    keys: PushKeys
    expirationTime: int | None = None  # noqa: N815 - the browser's own name


class RequestRedelivery(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, lines(500)] = ""


class RetryProcessing(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ask the consumer a failure names to process its event again."""

    reason: Annotated[str, Meta(max_length=500)] = ""


# The codec, the hash chain and ``seal`` live in events.wire; their names are still found here.
_WIRE = frozenset({"encode_event", "decode_event", "topic_of", "event_hash", "seal"})
if TYPE_CHECKING:
    from events.wire import decode_event, encode_event, event_hash, seal, topic_of  # noqa: F401


def __getattr__(name: str) -> object:
    if name in _WIRE:
        from events import wire  # on first use: events.wire imports this module

        return getattr(wire, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
