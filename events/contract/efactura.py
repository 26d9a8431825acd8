"""A Romanian document's way through RO e-Factura, ANAF's national e-invoicing system: its
CIUS-RO UBL prepared, the upload claimed, uploaded with ANAF's upload index, its state
polled until ANAF accepted it (with the id of the signed answer) or refused it (with ANAF's
messages), and the answer (the signed ZIP, or the error list) kept in the documents' store.

Every event names its document: its ``id`` is the document's own (an invoice's or a credit
note's id). The aggregate they are stored in is ``efactura_id(document id)``, derived from
it, so its subject is ``events.efactura.<efactura_id(document id)>``: the store keeps one
aggregate per id across ``events.*.<id>``, and the document's own events are appended by
other consumers at their own versions (``events.contract.ksef`` does the same for KSeF).

Exactly once. An upload is claimed with ``EfacturaUploadStarted`` appended at the
aggregate's next version before the XML leaves, so only one process uploads. ANAF keeps no
duplicate check, so a claim left without an outcome (its process died) is never simply
uploaded again: the uploader first looks for it in ANAF's list of recent messages
(``EfacturaUploaded.found``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID, uuid5

from events.contract.base import Event

EfacturaDocumentKind = Literal["invoice", "credit_note"]


class EfacturaEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "efactura"


class EfacturaDocumentPrepared(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """The CIUS-RO UBL was built from the issued document's event and put in the documents'
    store: the bytes that are uploaded, as many times as it takes."""

    document_kind: EfacturaDocumentKind
    number: str  # the document's own number
    cif: str  # the seller's CIF, digits only (the upload's ``cif``)
    issue_date: date  # the 5 calendar days to upload run from it
    b2c: bool  # the buyer has no Romanian CIF: uploaded with /uploadb2c
    xml_name: str  # its name in the documents' store
    xml_sha256: str  # hex
    xml_size: int


class EfacturaUploadStarted(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """The uploader claimed the upload (appended at the aggregate's next version, so only
    one process uploads) and is about to send the XML to ANAF."""

    attempt: int  # 1, 2, ...


class EfacturaAttemptFailed(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """A transient failure (network, 5xx, 429, ANAF's own technical error): tried again
    after ``retry_at``."""

    attempt: int
    reason: str
    retry_at: datetime  # UTC, after the backoff
    # The XML may have reached ANAF (no answer after it was sent: a timeout, a 5xx): it is
    # looked for in ANAF's message list before it is uploaded again.
    uncertain: bool = False


class EfacturaUploaded(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """ANAF took the XML (ExecutionStatus 0): its state is polled with ``upload_index``."""

    attempt: int
    upload_index: str  # index_incarcare
    uploaded_at: datetime  # UTC, from ANAF's dateResponse
    found: bool = False  # found in ANAF's message list after a claim left without an answer


class EfacturaAccepted(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """ANAF accepted the document (stare ``ok``): the signed answer is downloaded by
    ``download_id``."""

    upload_index: str
    download_id: str  # id_descarcare


class EfacturaRefused(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """ANAF refused the document, at the upload (ExecutionStatus 1) or after processing
    (stare ``nok``, or ``XML cu erori nepreluat de sistem``): not uploaded again. The
    office corrects the data and issues the document again; ANAF's words are kept."""

    upload_index: str = ""  # empty when refused at the upload itself
    download_id: str = ""  # the error list's id, when ANAF gave one
    state: str  # ANAF's stare, or "upload" when refused at the upload
    messages: list[str] = []  # ANAF's errorMessage texts


class EfacturaAnswerStored(EfacturaEvent, frozen=True, kw_only=True, tag=True):
    """ANAF's answer in the documents' store: the ZIP with the invoice and ANAF's signature,
    or, for a refusal, the error list."""

    name: str
    media_type: str  # application/zip
    sha256: str
    size: int


EfacturaEvents = (
    EfacturaDocumentPrepared
    | EfacturaUploadStarted
    | EfacturaAttemptFailed
    | EfacturaUploaded
    | EfacturaAccepted
    | EfacturaRefused
    | EfacturaAnswerStored
)


EFACTURA_NAMESPACE = UUID("3e5c8a71-9b2d-5f40-8c6e-1a2b3c4d5e6f")


def efactura_id(document_id: UUID) -> UUID:
    """The e-Factura aggregate of a document (its events' ``id`` is the document's own). A
    separate id: with the document's own, the store would take the e-Factura events for the
    invoice's (one aggregate per id, whatever the subject's kind) and refuse them; a
    namespace of its own keeps it apart from the document's KSeF aggregate too."""
    return uuid5(EFACTURA_NAMESPACE, f"efactura:{document_id}")
