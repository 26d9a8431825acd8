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

from events.contract.base import (
    Bound,
    Command,
    Event,
    EventMeta,
    check_decimal,
)
from events.contract.creditnote import (
    CreditNoteDocumentStored,
    CreditNoteEvent,
    CreditNoteEvents,
    CreditNoteIssued,
)
from events.contract.customer import (
    AgreeRetainer,
    ChangeCustomerDetails,
    CustomerDetailsChanged,
    CustomerEvent,
    CustomerEvents,
    CustomerRegistered,
    EndRetainer,
    HoursPackageSold,
    Month,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    RegisterCustomer,
    RetainerAgreed,
    RetainerEnded,
    SellHoursPackage,
)
from events.contract.document import (
    DOCUMENT_FIELDS,
    Contact,
    InvoiceLine,
    IssuedDocumentBase,
    Party,
    VatSubtotal,
    contact_of,
)
from events.contract.efactura import (
    EfacturaAccepted,
    EfacturaAnswerStored,
    EfacturaAttemptFailed,
    EfacturaDocumentKind,
    EfacturaDocumentPrepared,
    EfacturaEvent,
    EfacturaEvents,
    EfacturaRefused,
    EfacturaUploaded,
    EfacturaUploadStarted,
)
from events.contract.failure import (
    FAILURES,
    FailureEvent,
    FailureEvents,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    RetryProcessing,
    failure_id,
)
from events.contract.invoice import (
    CreditNoteRequested,
    InvoiceCredited,
    InvoiceDocumentStored,
    InvoiceEvent,
    InvoiceEvents,
    InvoiceIssued,
    IssueCreditNote,
    PaymentApplied,
    PaymentReminderDue,
    RecordPayment,
)
from events.contract.job import (
    AcceptQuote,
    AddNote,
    AddTimeEntry,
    AttachPhoto,
    CancelJob,
    ChangeJobDetails,
    CompleteJob,
    CorrectTimeEntry,
    InterimInvoiced,
    InterimInvoiceRequested,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobCancelled,
    JobCommand,
    JobCompleted,
    JobDetailsChanged,
    JobEvent,
    JobEvents,
    JobInvoiced,
    JobNotBilled,
    JobPutOnHold,
    JobQuoted,
    JobReopened,
    JobRequested,
    JobRescheduled,
    JobResumed,
    JobScheduled,
    JobSignedOff,
    JobTaken,
    JobUnassigned,
    MaterialUsed,
    NoteAdded,
    PhotoAttached,
    PutJobOnHold,
    QuoteAccepted,
    QuoteJob,
    QuoteRejected,
    RejectQuote,
    ReleaseInvoicing,
    ReopenJob,
    RequestInterimInvoice,
    RequestJob,
    RescheduleJob,
    ResumeJob,
    ScheduleJob,
    SignOffJob,
    SlaAtRisk,
    StartWork,
    StopWork,
    TakeJob,
    TimeEntryAdded,
    TimeEntryCorrected,
    UnassignJob,
    UseMaterial,
    WarnSlaAtRisk,
    WorkStarted,
    WorkStopped,
)
from events.contract.ksef import (
    KsefAccepted,
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefDocumentKind,
    KsefDocumentPrepared,
    KsefEvent,
    KsefEvents,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
    OfflineMode,
)
from events.contract.message import (
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    MessageDelivered,
    MessageEvent,
    MessageEvents,
    MessageQueued,
    RedeliveryRequested,
    RequestRedelivery,
)
from events.contract.pricelist import (
    ActivityPriced,
    ActivityRemoved,
    CreatePriceList,
    PriceActivity,
    PriceListCreated,
    PriceListEvent,
    PriceListEvents,
    RemoveActivity,
)
from events.contract.proforma import (
    ProformaDocumentStored,
    ProformaEvent,
    ProformaEvents,
    ProformaIssued,
)
from events.contract.recipient import (
    RECIPIENTS,
    Alert,
    ChangeNotificationPreferences,
    ClockTime,
    NotificationPreferencesChanged,
    PushKeys,
    PushSubscriptionRegistered,
    PushSubscriptionRemoved,
    RecipientEvent,
    RecipientEvents,
    RegisterPushSubscription,
    recipient_id,
)
from events.contract.recurrence import (
    ChangeRecurringService,
    DefineRecurringService,
    EndRecurringService,
    LocalTime,
    OccurrenceGenerated,
    OccurrenceWithdrawn,
    RecordOccurrence,
    RecurrenceEvent,
    RecurrenceEvents,
    RecurringPlan,
    RecurringServiceChanged,
    RecurringServiceDefined,
    RecurringServiceEnded,
    Rule,
    WithdrawOccurrence,
)
from events.contract.series import (
    InvoiceNumberAllocated,
    SeriesEvent,
    SeriesEvents,
)
from events.contract.slot import (
    ClaimSlot,
    SlotClaimed,
    SlotEvent,
    SlotEvents,
)
from events.contract.statement import (
    BankStatementImported,
    StatementEvent,
    StatementEvents,
    StatementLine,
    StatementLineUnmatched,
)
from events.contract.technician import (
    ChangeTechnicianDetails,
    DeactivateTechnician,
    ReactivateTechnician,
    RegisterTechnician,
    StopwatchStarted,
    StopwatchStopped,
    TechnicianDeactivated,
    TechnicianDetailsChanged,
    TechnicianEvent,
    TechnicianEvents,
    TechnicianReactivated,
    TechnicianRegistered,
)
from events.contract.token import (
    TokenEvent,
    TokenEvents,
    TokenIssued,
    TokenRevoked,
)
from events.contract.values import (
    CONTROLS,
    EMAIL,
    LINE,
    LINE_CHARACTER,
    LINE_RULE,
    LINES,
    LINES_RULE,
    REASON,
    TEXT_CHARACTER,
    Address,
    BillingKind,
    Code,
    Country,
    Currency,
    Day,
    Email,
    Language,
    Location,
    LongText,
    Minutes,
    Money,
    OptionalText,
    Phone,
    PositiveMinutes,
    Priority,
    Quantity,
    Reason,
    Role,
    Source,
    Status,
    Text,
    TimeEntryMinutes,
    TimeZone,
    Unit,
    UtcTime,
    VatRate,
    line,
    lines,
    unreadable,
    whole,
)

AnyEvent = (
    CustomerEvents
    | TechnicianEvents
    | PriceListEvents
    | JobEvents
    | InvoiceEvents
    | SeriesEvents
    | StatementEvents
    | CreditNoteEvents
    | ProformaEvents
    | TokenEvents
    | MessageEvents
    | RecipientEvents
    | RecurrenceEvents
    | FailureEvents
    | SlotEvents
    | KsefEvents
    | EfacturaEvents
)

# The three documents the invoicer issues and renders; what they share is
# events.contract.document.IssuedDocumentBase (DOCUMENT_FIELDS are its fields' names).
IssuedDocument = InvoiceIssued | CreditNoteIssued | ProformaIssued

EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in AnyEvent.__args__}

# The codec, the hash chain and ``seal`` live in events.wire; their names are still found here.
_WIRE = frozenset({"encode_event", "decode_event", "topic_of", "event_hash", "seal"})
if TYPE_CHECKING:
    from events.wire import decode_event, encode_event, event_hash, seal, topic_of


def __getattr__(name: str) -> object:
    if name in _WIRE:
        from events import wire  # on first use: events.wire imports this module

        return getattr(wire, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
