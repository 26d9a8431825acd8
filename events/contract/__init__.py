"""jobstream's events and commands.

Events are past tense (``JobScheduled``), commands imperative (``ScheduleJob``). One name
serves as the class, the msgspec tag and the stored topic; the aggregate it belongs to
names its subject, ``events.<aggregate>.<id>``. Fields are only ever added, with defaults,
never renamed: old events still decode. Events tolerate unknown fields; commands forbid them.
Money is Decimal, times are aware UTC datetimes.

One module per aggregate holds its events and the commands for it (``events.contract.job``,
``events.contract.invoice``, ...); the value types are in ``events.contract.values`` and the
bases in ``events.contract.base``. Import from the aggregate's module; every name is also
found here, for the code written before the split. The codec is ``events.wire``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from events.contract.values import (
    CONTROLS, LINE_CHARACTER, TEXT_CHARACTER, whole, LINE, LINES, LINE_RULE, LINES_RULE, unreadable, line,
    lines, Text, LongText, OptionalText, REASON, Reason, EMAIL, Email, Phone, Country, Currency, Language,
    Minutes, PositiveMinutes, Money, VatRate, Quantity, UtcTime, TimeEntryMinutes, Day, Code, Role, Status,
    Source, Priority, BillingKind, Location, Unit, Address, TimeZone,
)
from events.contract.base import (
    EventMeta, Event, Bound, Command, check_decimal,
)
from events.contract.customer import (
    CustomerEvent, CustomerRegistered, CustomerDetailsChanged, HoursPackageSold, PrepaidHoursConsumed,
    RetainerAgreed, RetainerEnded, PrepaidBalanceLow, CustomerEvents, RegisterCustomer, ChangeCustomerDetails,
    SellHoursPackage, Month, AgreeRetainer, EndRetainer,
)
from events.contract.technician import (
    TechnicianEvent, TechnicianRegistered, TechnicianDetailsChanged, TechnicianDeactivated,
    TechnicianReactivated, StopwatchStarted, StopwatchStopped, TechnicianEvents, RegisterTechnician,
    ChangeTechnicianDetails, DeactivateTechnician, ReactivateTechnician,
)
from events.contract.pricelist import (
    PriceListEvent, PriceListCreated, ActivityPriced, ActivityRemoved, PriceListEvents, CreatePriceList,
    PriceActivity, RemoveActivity,
)
from events.contract.job import (
    JobEvent, JobRequested, JobDetailsChanged, JobQuoted, QuoteAccepted, QuoteRejected, JobScheduled,
    JobRescheduled, JobUnassigned, JobTaken, WorkStarted, WorkStopped, TimeEntryAdded, TimeEntryCorrected,
    NoteAdded, MaterialUsed, SlaAtRisk, PhotoAttached, JobCompleted, JobSignedOff, JobPutOnHold, JobResumed,
    JobCancelled, JobReopened, InterimInvoiceRequested, InterimInvoiced, JobInvoiced, JobNotBilled,
    InvoicingHeld, InvoicingReleaseRequested, JobEvents, RequestJob, ChangeJobDetails, QuoteJob, AcceptQuote,
    RejectQuote, ScheduleJob, RescheduleJob, UnassignJob, TakeJob, StartWork, StopWork, AddTimeEntry,
    CorrectTimeEntry, AddNote, UseMaterial, RequestInterimInvoice, ReleaseInvoicing, AttachPhoto, CompleteJob,
    SignOffJob, PutJobOnHold, ResumeJob, CancelJob, ReopenJob, WarnSlaAtRisk, JobCommand,
)
from events.contract.document import (
    Party, InvoiceLine, VatSubtotal,
)
from events.contract.invoice import (
    InvoiceEvent, InvoiceIssued, CreditNoteRequested, InvoiceCredited, InvoiceDocumentStored, PaymentApplied,
    PaymentReminderDue, InvoiceEvents, IssueCreditNote, RecordPayment,
)
from events.contract.statement import (
    StatementLine, StatementEvent, BankStatementImported, StatementLineUnmatched, StatementEvents,
)
from events.contract.proforma import (
    ProformaEvent, ProformaIssued, ProformaDocumentStored, ProformaEvents,
)
from events.contract.creditnote import (
    CreditNoteEvent, CreditNoteIssued, CreditNoteDocumentStored, CreditNoteEvents,
)
from events.contract.series import (
    SeriesEvent, InvoiceNumberAllocated, SeriesEvents,
)
from events.contract.token import (
    TokenEvent, TokenIssued, TokenRevoked, TokenEvents,
)
from events.contract.message import (
    MessageEvent, MessageQueued, DeliveryAttempted, MessageDelivered, DeliveryFailed, DeliveryUncertain,
    RedeliveryRequested, MessageEvents, RequestRedelivery,
)
from events.contract.recipient import (
    RECIPIENTS, recipient_id, RecipientEvent, NotificationPreferencesChanged, PushSubscriptionRegistered,
    PushSubscriptionRemoved, RecipientEvents, Alert, ClockTime, ChangeNotificationPreferences, PushKeys,
    RegisterPushSubscription,
)
from events.contract.recurrence import (
    LocalTime, Rule, RecurrenceEvent, RecurringPlan, RecurringServiceDefined, RecurringServiceChanged,
    RecurringServiceEnded, OccurrenceGenerated, OccurrenceWithdrawn, RecurrenceEvents, DefineRecurringService,
    ChangeRecurringService, EndRecurringService, RecordOccurrence, WithdrawOccurrence,
)
from events.contract.slot import (
    SlotEvent, SlotClaimed, SlotEvents, ClaimSlot,
)
from events.contract.failure import (
    FAILURES, failure_id, FailureEvent, ProcessingFailed, ProcessingRetryRequested, ProcessingResolved,
    ProcessingFailedAgain, FailureEvents, RetryProcessing,
)

AnyEvent = (
    CustomerEvents | TechnicianEvents | PriceListEvents | JobEvents | InvoiceEvents | SeriesEvents
    | StatementEvents | CreditNoteEvents | ProformaEvents | TokenEvents | MessageEvents | RecipientEvents
    | RecurrenceEvents
    | FailureEvents
    | SlotEvents
)

# The three documents the invoicer issues and renders. They print the same parties, lines,
# VAT subtotals and totals (DOCUMENT_FIELDS, same names and types: tests/unit/test_wire.py),
# each declared in its own struct: msgspec encodes a base's fields first, so a shared base
# struct would reorder the fields of every document as stored, and their hashes with them.
IssuedDocument = InvoiceIssued | CreditNoteIssued | ProformaIssued
DOCUMENT_FIELDS = ("number", "customer_id", "issue_date", "currency", "language", "seller", "buyer", "lines", "vat",
                   "net_total", "vat_total", "gross_total", "reverse_charge", "job_type")

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in AnyEvent.__args__  # type: ignore[attr-defined]
}

# The codec, the hash chain and ``seal`` live in events.wire; their names are still found here.
_WIRE = frozenset({"encode_event", "decode_event", "topic_of", "event_hash", "seal"})
if TYPE_CHECKING:
    from events.wire import decode_event, encode_event, event_hash, seal, topic_of  # noqa: F401


def __getattr__(name: str) -> object:
    if name in _WIRE:
        from events import wire  # on first use: events.wire imports this module

        return getattr(wire, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
