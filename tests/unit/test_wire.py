"""The stored topics: every event's topic is its bare class name, and each belongs to the
aggregate whose subject it is written on. Moving a class between modules is wire-safe; a
class missing from the registry, or moved to another aggregate, is not."""

import hashlib
import subprocess
import sys
import typing
from pathlib import Path

from events.contract import DOCUMENT_FIELDS, IssuedDocument, IssuedDocumentBase
from events.contract.base import Event
from events.jetstream import StreamSettings
from events.wire import EVENT_TYPES, TOPIC_AGGREGATES, decode_event, encode_event, event_hash

# One event of every type, as the codec wrote it before the contract was split by aggregate
# (every field given, business days as ISO dates): the bytes a hash chain is made of.
STORED = Path(__file__).with_name("stored_events.jsonl")

TOPICS = {
    "customer": {
        "CustomerDetailsChanged",
        "CustomerRegistered",
        "HoursPackageSold",
        "PrepaidBalanceLow",
        "PrepaidHoursConsumed",
        "RetainerAgreed",
        "RetainerEnded",
    },
    "technician": {
        "StopwatchStarted",
        "StopwatchStopped",
        "TechnicianDeactivated",
        "TechnicianDetailsChanged",
        "TechnicianReactivated",
        "TechnicianRegistered",
    },
    "pricelist": {
        "ActivityPriced",
        "ActivityRemoved",
        "PriceListCreated",
    },
    "job": {
        "InterimInvoiceRequested",
        "InterimInvoiced",
        "InvoicingHeld",
        "InvoicingReleaseRequested",
        "JobCancelled",
        "JobCompleted",
        "JobDetailsChanged",
        "JobInvoiced",
        "JobNotBilled",
        "JobPutOnHold",
        "JobQuoted",
        "JobReopened",
        "JobRequested",
        "JobRescheduled",
        "JobResumed",
        "JobScheduled",
        "JobSignedOff",
        "JobTaken",
        "JobUnassigned",
        "MaterialUsed",
        "NoteAdded",
        "PhotoAttached",
        "QuoteAccepted",
        "QuoteRejected",
        "SlaAtRisk",
        "TimeEntryAdded",
        "TimeEntryCorrected",
        "WorkStarted",
        "WorkStopped",
    },
    "invoice": {
        "CreditNoteRequested",
        "InvoiceCredited",
        "InvoiceDocumentStored",
        "InvoiceIssued",
        "PaymentApplied",
        "PaymentReminderDue",
    },
    "series": {
        "InvoiceNumberAllocated",
    },
    "statement": {
        "BankStatementImported",
        "StatementLineUnmatched",
    },
    "creditnote": {
        "CreditNoteDocumentStored",
        "CreditNoteIssued",
    },
    "proforma": {
        "ProformaDocumentStored",
        "ProformaIssued",
    },
    "token": {
        "TokenIssued",
        "TokenRevoked",
    },
    "message": {
        "DeliveryAttempted",
        "DeliveryFailed",
        "DeliveryUncertain",
        "MessageDelivered",
        "MessageQueued",
        "RedeliveryRequested",
    },
    "recipient": {
        "NotificationPreferencesChanged",
        "PushSubscriptionRegistered",
        "PushSubscriptionRemoved",
    },
    "recurrence": {
        "OccurrenceGenerated",
        "OccurrenceWithdrawn",
        "RecurringServiceChanged",
        "RecurringServiceDefined",
        "RecurringServiceEnded",
    },
    "failure": {
        "ProcessingFailed",
        "ProcessingFailedAgain",
        "ProcessingResolved",
        "ProcessingRetryRequested",
    },
    "slot": {
        "SlotClaimed",
    },
    "ksef": {
        "KsefDocumentPrepared",
        "KsefHeld",
        "KsefSendStarted",
        "KsefAttemptFailed",
        "KsefSent",
        "KsefAccepted",
        "KsefUpoStored",
        "KsefRefused",
        "KsefIssuedOffline",
        "KsefDeadlineNear",
    },
    "efactura": {
        "EfacturaDocumentPrepared",
        "EfacturaUploadStarted",
        "EfacturaAttemptFailed",
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaRefused",
        "EfacturaAnswerStored",
    },
}


def test_the_registry_holds_every_stored_topic_and_its_aggregate():
    assert dict(TOPIC_AGGREGATES) == {topic: kind for kind, topics in TOPICS.items() for topic in topics}


def test_a_topic_is_the_bare_class_name_of_an_event():
    for topic, cls in EVENT_TYPES.items():
        assert cls.__name__ == topic and issubclass(cls, Event)
        assert TOPIC_AGGREGATES[topic] == cls.aggregate


def test_the_store_writes_each_topic_on_its_aggregates_subject():
    settings = StreamSettings.from_env({"NATS_SUBJECT_PREFIX": "t"})
    assert settings.subject("events", "JobScheduled", "abc") == "t.events.job.abc"
    assert settings.subject("events", "InvoiceIssued", "abc") == "t.events.invoice.abc"
    assert settings.subject("events", "mod:Dog.Registered", "abc") == "t.events.dog.abc"  # a library aggregate


def test_the_store_and_the_contract_do_not_import_each_other():
    code = (
        "import sys, {module}; "
        "print(sorted(m for m in sys.modules if m in ('events.contract', 'events.jetstream', 'events.wire')))"
    )
    seen = {
        module: subprocess.run(
            [sys.executable, "-c", code.format(module=module)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for module in ("events.jetstream", "events.contract")
    }
    assert seen == {"events.jetstream": "['events.jetstream']", "events.contract": "['events.contract']"}


def test_stored_events_decode_and_encode_again_to_the_same_bytes_and_hash():
    stored = STORED.read_bytes().splitlines()
    assert (
        hashlib.sha256(b"\n".join(stored[:79])).hexdigest()
        == "ab5bc494797668e9259f5292e5e6a311107d386f54c423f9246f82f906e56010"
    )  # the file as first written; the events added since are appended, never rewritten
    assert (
        hashlib.sha256(b"\n".join(stored[79:89])).hexdigest()
        == "678f1d3a5a43c7d0032835f45c4b2e7b034d387f51e3fd9bde6ed93fd40389f3"
    )  # the KSeF events, 2026-12
    assert (
        hashlib.sha256(b"\n".join(stored[89:96])).hexdigest()
        == "099848358c5a8e795f1066fadea8ebeda3576cc5199fa821ce1757ec934d1873"
    )  # the e-Factura events, 2026-12
    assert sorted(decode_event(data).__class__.__name__ for data in stored) == sorted(EVENT_TYPES)
    for data in stored:
        again = encode_event(decode_event(data))
        assert (again, event_hash(again)) == (data, event_hash(data))


def test_the_three_documents_declare_their_shared_base_field_for_field():
    base = {
        name: typing.get_type_hints(prop.fget)["return"]
        for name, prop in vars(IssuedDocumentBase).items()
        if isinstance(prop, property)
    }
    assert tuple(base) == DOCUMENT_FIELDS and len(base) == 14
    documents = typing.get_args(IssuedDocument)
    assert len(documents) == 3
    for cls in documents:
        hints = typing.get_type_hints(cls)
        assert {name: hints[name] for name in base} == base, cls.__name__


def printed(document: IssuedDocumentBase) -> str:
    return f"{document.number} {document.gross_total} {document.currency}"


def test_code_typed_on_the_base_takes_each_document():
    documents = [
        decode_event(line)
        for line in STORED.read_bytes().splitlines()
        if b'"type":"InvoiceIssued"' in line
        or b'"type":"CreditNoteIssued"' in line
        or b'"type":"ProformaIssued"' in line
    ]
    assert sorted(type(d).__name__ for d in documents) == ["CreditNoteIssued", "InvoiceIssued", "ProformaIssued"]
    assert all(printed(d).startswith(d.number) for d in documents)
