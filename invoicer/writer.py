"""The document writer: renders each issued invoice, credit note and proforma and stores the
files in the documents object store, with their hashes recorded once.

Rendering is pure and the slowest step, so it runs ahead in worker processes while the
documents before it are stored in stream order with their tracking records."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from uuid import UUID

from eventsourcing.persistence import Notification

from events.consumer import Consumer
from events.contract import (
    CreditNoteDocumentStored,
    CreditNoteIssued,
    Event,
    InvoiceDocumentStored,
    InvoiceIssued,
    IssuedDocument,
    KsefAccepted,
    KsefDocumentPrepared,
    KsefIssuedOffline,
    ProformaDocumentStored,
    ProformaIssued,
    decode_event,
)
from events.faults import Transient
from events.jetstream import NatsConnection
from events.lifetime import deaf_to_the_terminal, pool_worker
from events.wire import originator_uuid
from invoicer.documents import Branding, KsefMark, invoice_pdf
from invoicer.einvoice import ubl_invoice
from invoicer.facturx import facturx_pdf
from invoicer.isdoc import MEDIA_TYPE as ISDOC_MEDIA_TYPE
from invoicer.isdoc import has_isdoc, isdoc_invoice


class DocumentWriter(Consumer):
    """Renders each issued invoice to a Factur-X PDF (PDF/A-3 with its CII XML) and to EN 16931
    UBL XML, and each credit note to PDF and UBL (a Czech seller's also to ISDOC); puts them in the documents object store and
    records their hashes (two ...DocumentStored events), once."""

    name = "invoicer-documents"
    issued_topics = frozenset({"InvoiceIssued", "CreditNoteIssued", "ProformaIssued"})
    # KSeF's answer for a Polish document: its PDF again, with the KSeF number or OFFLINE by its QR code
    ksef_topics = frozenset({"KsefAccepted", "KsefIssuedOffline"})
    triggers = issued_topics | ksef_topics

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
        self._waiting: collections.deque[tuple[UUID, Event]] = collections.deque()

    def prepare(self, page: Sequence[Notification]) -> None:
        """Rendering is pure and the slowest step: with worker processes, the page's documents
        are rendered ahead, in parallel, while the ones before them are stored in order."""
        if not self.workers:
            return
        wanted = [n for n in page if n.topic in self.issued_topics]
        ids = {originator_uuid(n) for n in wanted}
        for stale in [k for k in self._ahead if k not in ids]:  # work of a page left behind
            self._ahead.pop(stale).cancel()
        self._waiting.clear()
        self._waiting.extend(
            (originator_uuid(n), decode_event(n.state)) for n in wanted if originator_uuid(n) not in self._ahead
        )
        self._fill()

    def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        # The pool starts its render processes (and multiprocessing's resource tracker) as work
        # is handed to it: each dies with this process, however it ends, and leaves a
        # terminal's Ctrl-C and hang-up to it (events.lifetime).
        if self._pool is None:
            with deaf_to_the_terminal():
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=pool_worker,
                    initargs=(os.getpid(),),
                )
        with deaf_to_the_terminal():  # again: starting the tracker unblocked SIGINT
            while self._waiting and len(self._ahead) < self.AHEAD:
                document_id, event = self._waiting.popleft()
                if document_id not in self._ahead and isinstance(event, IssuedDocument):  # all that wait are
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
        if notification.topic in self.ksef_topics:
            return await self._render_again(notification)
        document = await self.load(originator_uuid(notification))
        stored_type = {"CreditNoteIssued": CreditNoteDocumentStored, "ProformaIssued": ProformaDocumentStored}.get(
            notification.topic, InvoiceDocumentStored
        )
        if any(isinstance(e, stored_type) for e in document.events):
            self._ahead.pop(originator_uuid(notification), None)
            return "skipped"
        issued = next(e for e in document.events if isinstance(e, InvoiceIssued | CreditNoteIssued | ProformaIssued))
        started = time.perf_counter()
        pdf = await self._render(issued)
        self.render_seconds.append(time.perf_counter() - started)
        renderings = [("pdf", "application/pdf", pdf)]
        if not isinstance(issued, ProformaIssued):  # a proforma is no tax document: no e-invoice
            renderings.append(("xml", "application/xml", ubl_invoice(issued)))
            if has_isdoc(issued):  # a Czech seller's: ISDOC, for the buyer's accountant
                renderings.append(("isdoc", ISDOC_MEDIA_TYPE, isdoc_invoice(issued)))
        folder = {CreditNoteDocumentStored: "credit-notes", ProformaDocumentStored: "proformas"}.get(
            stored_type, "invoices"
        )
        store = await self.connection.documents()
        stored: list[Event] = []
        for kind, media_type, data in renderings:
            name = document_name(issued.id, kind, folder)
            await store.put(name, data)  # the same name again after a crash: replaced, not duplicated
            stored.append(
                stored_type(
                    id=issued.id,
                    name=name,
                    media_type=media_type,
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                )
            )
        await self.save(notification, [(issued.id, document, stored)])
        return "stored"

    async def _render_again(self, notification: Notification) -> str:
        """A Polish document's PDF once KSeF has answered: KOD I labelled with its KSeF number
        (or OFFLINE, with KOD II), over the hash of the FA(3) file KSeF was sent. Stored under a
        name of its own, so the first rendering stays as its hash says."""
        answer = decode_event(notification.state)
        if not isinstance(answer, KsefAccepted | KsefIssuedOffline):
            return "skipped"
        ksef = await self.load(originator_uuid(notification))
        prepared = next((e for e in ksef.events if isinstance(e, KsefDocumentPrepared)), None)
        document = await self.load(answer.id)
        issued = next((e for e in document.events if isinstance(e, InvoiceIssued | CreditNoteIssued)), None)
        if prepared is None or issued is None:
            return "skipped"
        stored_type = CreditNoteDocumentStored if isinstance(issued, CreditNoteIssued) else InvoiceDocumentStored
        accepted = isinstance(answer, KsefAccepted)
        folder = "credit-notes" if isinstance(issued, CreditNoteIssued) else "invoices"
        name = document_name(issued.id, "ksef.pdf" if accepted else "offline.pdf", folder)
        if any(isinstance(e, stored_type) and e.name == name for e in document.events):
            return "skipped"
        mark = KsefMark(
            fa3_sha256=prepared.fa3_sha256,
            ksef_number=answer.ksef_number if isinstance(answer, KsefAccepted) else "",
            offline=not accepted,
        )
        pdf = await asyncio.to_thread(render_document, issued, self.branding, mark)
        store = await self.connection.documents()
        await store.put(name, pdf)
        stored = stored_type(
            id=issued.id,
            name=name,
            media_type="application/pdf",
            sha256=hashlib.sha256(pdf).hexdigest(),
            size=len(pdf),
        )
        await self.save(notification, [(issued.id, document, [stored])])
        return "stored"


class RenderFailed(Exception):
    """A document that could not be rendered, said in plain words. It is what a render
    process raises, so it crosses back into this one (lxml's own errors carry an error log
    that cannot be pickled: the parent got "cannot pickle '_ListErrorLog'" instead)."""


def render_document(
    document: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding, ksef: KsefMark | None = None
) -> bytes:
    """``render_pdf``, its failure a RenderFailed naming the document and the cause."""
    try:
        return render_pdf(document, branding, ksef)
    except Exception as error:  # noqa: BLE001 - any cause (xhtml2pdf, lxml, pikepdf) crosses back from the render process as a RenderFailed
        kind = type(document).__name__.removesuffix("Issued").lower().replace("creditnote", "credit note")
        cause = " ".join(str(error).split()) or repr(error)
        raise RenderFailed(
            f"the PDF of {kind} {document.number} could not be rendered: {type(error).__name__}: {cause}"
        ) from None


def render_pdf(
    document: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding, ksef: KsefMark | None = None
) -> bytes:
    """An invoice's or a credit note's PDF is a Factur-X (PDF/A-3 with its CII XML inside); a
    proforma's, no tax document, is a plain PDF. A Polish one carries its KSeF QR codes."""
    pdf = invoice_pdf(document, branding, ksef)
    if isinstance(document, InvoiceIssued | CreditNoteIssued):
        return facturx_pdf(pdf, document)
    return pdf


def document_name(document_id: UUID, kind: str = "pdf", folder: str = "invoices") -> str:
    return f"{folder}/{document_id}.{kind}"
