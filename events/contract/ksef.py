"""A Polish document's way through KSeF, the national e-invoicing system: its FA(3) file
prepared (or held), sent, accepted with its KSeF number and official receipt (UPO),
refused for its content, or issued offline and sent later.

Every event names its document: its ``id`` is the document's own (an invoice's or a credit
note's id). The aggregate they are stored in is ``ksef_id(document id)``, derived from it, so
its subject is ``events.ksef.<ksef_id(document id)>``: the store keeps one aggregate per id
across ``events.*.<id>``, and the document's own events (its documents stored, payments,
credits) are appended by other consumers at their own versions. The submitting consumer
appends to the KSeF aggregate with the store's optimistic concurrency, and every attempt is
an event. A document is sent at most
once per ``KsefSendStarted``; after a restart between the send and its answer, sending again
is safe because KSeF refuses a duplicate (same seller, type and number), and the consumer
then looks the number up (``KsefAccepted.duplicate``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID, uuid5

from events.contract.base import Event

# Which document the FA(3) is for: an invoice (VAT, ZAL for an interim/retainer's advance,
# ROZ for the final settlement of advances) or a correction (KOR, KOR_ZAL, KOR_ROZ).
KsefDocumentKind = Literal["invoice", "credit_note"]
# Why a document is issued offline (tryby-offline.md): the seller chose offline24, or KSeF
# did not answer (niedostępność), or KSeF announced a failure (awaria).
OfflineMode = Literal["offline24", "unavailable", "failure"]


class KsefEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "ksef"


class KsefDocumentPrepared(KsefEvent, frozen=True, kw_only=True, tag=True):
    """The FA(3) file was built from the issued document's event and stored in the
    documents' store; its SHA-256 is what KSeF is told and what KOD I (the QR code) carries."""

    document_kind: KsefDocumentKind
    number: str  # the document's own number, e.g. FV/2026/000123
    seller_nip: str
    issue_date: date
    fa3_name: str  # its name in the documents' store
    fa3_sha256: str  # hex
    fa3_size: int
    invoice_type: str = "VAT"  # FA(3) RodzajFaktury: VAT, KOR, ZAL, ROZ, KOR_ZAL, KOR_ROZ


class KsefHeld(KsefEvent, frozen=True, kw_only=True, tag=True):
    """The FA(3) file would not pass KSeF's checks, so it is never sent: the office
    corrects the data (the field named) and issues the document again."""

    field: str
    reason: str


class KsefSendStarted(KsefEvent, frozen=True, kw_only=True, tag=True):
    """The consumer claimed the send (appended at the aggregate's next version, so only
    one process sends) and is about to hand the encrypted file to KSeF."""

    attempt: int  # 1, 2, ...
    session_reference: str = ""  # the online session it is sent in


class KsefAttemptFailed(KsefEvent, frozen=True, kw_only=True, tag=True):
    """A transient failure (network, 5xx, 429): tried again after ``retry_at``."""

    attempt: int
    reason: str
    retry_at: datetime  # UTC; from Retry-After when KSeF gave one, else the backoff


class KsefSent(KsefEvent, frozen=True, kw_only=True, tag=True):
    """KSeF took the file for processing; its status is polled with these references."""

    attempt: int
    session_reference: str
    invoice_reference: str


class KsefAccepted(KsefEvent, frozen=True, kw_only=True, tag=True):
    """KSeF accepted the document: its KSeF number is the document's legal identity."""

    ksef_number: str  # NIP-YYYYMMDD-XXXXXXXXXXXX-CC (faktury/numer-ksef.md)
    accepted_at: datetime  # UTC, KSeF's acquisition time (data przyjęcia)
    duplicate: bool = False  # KSeF already had it (a resend after a restart): number looked up


class KsefUpoStored(KsefEvent, frozen=True, kw_only=True, tag=True):
    """The official receipt (UPO XML) for the accepted document, in the documents' store."""

    upo_name: str
    upo_sha256: str
    upo_size: int


class KsefRefused(KsefEvent, frozen=True, kw_only=True, tag=True):
    """KSeF refused the document for its content: not retried. The office corrects and
    issues again; KSeF's own code and words are kept."""

    code: int
    reason: str
    details: list[str] = []


class KsefIssuedOffline(KsefEvent, frozen=True, kw_only=True, tag=True):
    """Issued without KSeF: the document carries "OFFLINE" by its QR code and is sent once
    KSeF answers again, by ``deadline`` (tryby-offline.md)."""

    mode: OfflineMode
    reason: str
    deadline: datetime  # UTC: the end of the next business day for offline24 and unavailability


class KsefDeadlineNear(KsefEvent, frozen=True, kw_only=True, tag=True):
    """An offline document still not accepted as its deadline nears: the office is warned."""

    deadline: datetime


KsefEvents = (
    KsefDocumentPrepared
    | KsefHeld
    | KsefSendStarted
    | KsefAttemptFailed
    | KsefSent
    | KsefAccepted
    | KsefUpoStored
    | KsefRefused
    | KsefIssuedOffline
    | KsefDeadlineNear
)


KSEF_NAMESPACE = UUID("6b1f3a0e-2c4d-5e8f-9a7b-0c1d2e3f4a5b")


def ksef_id(document_id: UUID) -> UUID:
    """The KSeF aggregate of a document (its events' ``id`` is the document's own). A
    separate id: with the document's own, the store would take the KSeF events for the
    invoice's (one aggregate per id, whatever the subject's kind) and refuse them."""
    return uuid5(KSEF_NAMESPACE, f"ksef:{document_id}")
