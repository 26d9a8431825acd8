"""The e-Factura uploader: every invoice and credit note of a Romanian seller to ANAF, once.

    python -m invoicer.efactura.uploader        (``jobstream run invoicer efactura``)

Two halves on one loop, like the KSeF submitter (invoicer.ksef.submitter). The consumer
(``invoicer-efactura``, events.consumer) follows the stream for ``InvoiceIssued`` and
``CreditNoteIssued`` of a seller in Romania, builds its CIUS-RO UBL (invoicer.einvoice), puts
it in the documents' store and appends ``EfacturaDocumentPrepared`` with its tracking record
in one batch. The sender takes each prepared document through e-Factura as
``submission.next_step`` says: it claims the upload (``EfacturaUploadStarted`` at the
aggregate's next version), uploads it (``/upload``, or ``/uploadb2c`` for a buyer without a
CIF, with the seller's CIF from its VAT id), polls its state, downloads ANAF's answer (the
signed ZIP, or the error list) into the documents' store, and records every answer as
``submission.decide`` says. Each decision is made on the aggregate as just loaded, so a
second process that claimed first makes this one's append fail, and it looks again.

ANAF has no duplicate check. A claim left without an answer (a kill between the claim and
ANAF's answer, a timeout once the XML was sent) is looked up in ANAF's message list
(``listaMesajeFactura``) after the claim's lease: found, it is recorded as uploaded with the
index ANAF gave it; not found, it is uploaded again under a new claim.

At start the sender reads every e-Factura event (``events.efactura.*``) and takes up each
document not yet done.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Notification

from events.consumer import Consumer, Stored
from events.contract import CreditNoteIssued, Event, InvoiceIssued, decode_event, event_hash
from events.contract.efactura import EfacturaEvent, EfacturaEvents, efactura_id
from events.jetstream import PAGE, NatsConnection, notification_of
from events.writes import sealed
from invoicer.efactura.client import (
    EfacturaClient,
    EfacturaConfig,
    Refused,
    State,
    Transient,
    Upload,
    answer_messages,
)
from invoicer.efactura.submission import (
    Accept,
    Claim,
    Fail,
    Happened,
    Prepare,
    Refuse,
    StoreAnswer,
    Submission,
    SubmissionSettings,
    Uploaded,
    decide,
    evolve,
    fold,
    next_step,
)
from invoicer.einvoice import ubl_invoice

log = logging.getLogger("invoicer.efactura")

Clock = Callable[[], datetime]


class EfacturaSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    token: str
    timeout: float = 30.0
    submission: SubmissionSettings = SubmissionSettings()

    @classmethod
    def from_env(cls, env: dict[str, str]) -> EfacturaSettings | None:
        """The settings, or None when e-Factura is not configured (EFACTURA_URL, EFACTURA_TOKEN)."""
        if not (env.get("EFACTURA_URL") and env.get("EFACTURA_TOKEN")):
            return None
        defaults = SubmissionSettings()
        backoff = env.get("EFACTURA_BACKOFF", "")
        try:
            return cls(
                url=env["EFACTURA_URL"],
                token=env["EFACTURA_TOKEN"],
                timeout=float(env.get("EFACTURA_TIMEOUT_SECONDS") or 30),
                submission=SubmissionSettings(
                    backoff=tuple(float(s) for s in backoff.split(",")) if backoff else defaults.backoff,
                    lease=timedelta(seconds=float(env.get("EFACTURA_LEASE_SECONDS") or 600)),
                    poll_seconds=float(env.get("EFACTURA_POLL_SECONDS") or 60),
                ),
            )
        except ValueError as error:
            raise SystemExit(f"jobstream: an EFACTURA_ setting is not a number: {error}") from None


class Anaf(Protocol):
    """e-Factura as the sender uses it (invoicer.efactura.client.EfacturaClient). Failures are
    ``Transient``, a refusal of the request ``Refused``."""

    async def upload(self, xml: bytes, *, cif: str, credit_note: bool = False, b2c: bool = False) -> Upload: ...

    async def state(self, index: str) -> State: ...

    async def download(self, download_id: str) -> bytes: ...

    async def find_upload(self, *, cif: str, number: str, since: datetime, now: datetime) -> Upload | None: ...


class EfacturaUploader(Consumer):
    name = "invoicer-efactura"
    triggers = frozenset({"InvoiceIssued", "CreditNoteIssued"})

    def __init__(
        self, connection: NatsConnection, anaf: Anaf, settings: EfacturaSettings, clock: Clock | None = None
    ) -> None:
        super().__init__(connection)
        self.anaf = anaf
        self.settings = settings
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.pending: dict[UUID, datetime | None] = {}  # document -> when to look again (None: now)
        self.wake = asyncio.Event()

    # -- preparing (the stream consumer) --

    async def decide_and_save(self, notification: Notification) -> str:
        issued = decode_event(notification.state)
        if not isinstance(issued, InvoiceIssued | CreditNoteIssued) or not romanian(issued):
            return "skipped"
        cif = seller_cif(issued)
        if not cif:
            log.warning("%s %s: the seller has no CIF (seller.vat_id): not uploaded", kind_of(issued), issued.number)
            return "skipped"
        aggregate = efactura_id(issued.id)
        stored = await self.load(aggregate)
        state = fold(issued.id, efactura_events(stored))
        if state.prepared is not None:
            return "skipped"
        xml = ubl_invoice(issued)
        name = xml_name(issued.id)
        store = await self.connection.documents()
        await store.put(name, xml)  # the same name again after a crash: replaced, not duplicated
        what = Prepare(
            document_kind="credit_note" if isinstance(issued, CreditNoteIssued) else "invoice",
            number=issued.number,
            cif=cif,
            issue_date=issued.issue_date,
            b2c=not issued.buyer.vat_id,
            xml_name=name,
            xml_sha256=hashlib.sha256(xml).hexdigest(),
            xml_size=len(xml),
        )
        await self.save(notification, [(aggregate, stored, list(decide(what, state, self.settings.submission)))])
        self.pending[issued.id] = None
        self.wake.set()
        return "prepared"

    # -- uploading --

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(super().run(stop), self.send_all(stop))

    async def recover(self) -> int:
        """Take up every document whose way through e-Factura is not done; how many."""
        states: dict[UUID, Submission] = {}
        subject = self.connection.settings.kind_filter("events", "efactura")
        position = 0
        while True:
            page = await self.connection.direct_batch({"seq": position + 1, "next_by_subj": subject, "batch": PAGE})
            if not page:
                break
            for msg in page:
                notification = notification_of(msg)
                position = notification.id
                event = decode_event(notification.state)
                if isinstance(event, EfacturaEvents):
                    states[event.id] = evolve(states.get(event.id) or Submission(id=event.id), event)
        open_ = [document for document, state in states.items() if not state.final]
        for document in open_:
            self.pending.setdefault(document, None)
        return len(open_)

    async def send_all(self, stop: asyncio.Event) -> None:
        """Until ``stop``: each pending document's next step when it is due."""
        while not stop.is_set():
            try:
                found = await self.recover()
                break
            except Exception as error:
                if not _transient(error):
                    raise
                log.warning("e-Factura: could not read the pending documents (%s); trying again", error)
                await _pause(stop, 5)
        else:
            return
        if found:
            log.info("e-Factura: %d documents taken up where they were left", found)
        while not stop.is_set():
            await self.send_due(stop)
            await self._idle(stop)

    async def send_due(self, stop: asyncio.Event | None = None) -> int:
        """Every pending document that is due, one step at a time, until none is; how many
        steps were taken."""
        steps = 0
        while stop is None or not stop.is_set():
            now = self.clock()
            due = [d for d, at in self.pending.items() if at is None or at <= now]
            if not due:
                return steps
            for document in due:
                if stop is not None and stop.is_set():
                    return steps
                try:
                    again = await self.step(document)
                except Exception as error:
                    if not _transient(error):
                        raise
                    log.warning("e-Factura: %s: %s; trying again", document, error)
                    again = self.clock() + timedelta(seconds=5)
                steps += 1
                if again is None:
                    self.pending.pop(document, None)
                else:
                    self.pending[document] = again
        return steps

    async def _idle(self, stop: asyncio.Event) -> None:
        now = self.clock()
        waits = [(at - now).total_seconds() for at in self.pending.values() if at is not None]
        self.wake.clear()
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait(
                [stopping, woken], timeout=max(min([5.0, *waits]), 0.01), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
            woken.cancel()

    async def step(self, document: UUID) -> datetime | None:
        """One step of one document; when to look at it again (None: nothing more to do)."""
        stored = await self.load(efactura_id(document))
        state = fold(document, efactura_events(stored))
        now = self.clock()
        action, at = next_step(state, now, self.settings.submission)
        if action == "wait":
            return at
        if action == "upload":
            return await self._upload(stored, state, looked=False)
        if action == "look":
            return await self._look(stored, state)
        if action == "poll":
            return await self._poll(stored, state)
        return await self._download(stored, state)

    async def _upload(self, stored: Stored, state: Submission, *, looked: bool) -> datetime | None:
        assert state.prepared is not None
        prepared = state.prepared
        now = self.clock()
        claim = decide(Claim(now=now, looked=looked), state, self.settings.submission)
        if not claim:
            return now
        try:
            stored = await self.append(efactura_id(state.id), stored, list(claim), f"{self.name}:upload:{state.id}")
        except IntegrityError:
            return now  # another process moved it on: look again
        state = fold(state.id, efactura_events(stored))
        store = await self.connection.documents()
        xml = (await store.get(prepared.xml_name)).data
        try:
            upload = await self.anaf.upload(
                xml, cif=prepared.cif, credit_note=prepared.document_kind == "credit_note", b2c=prepared.b2c
            )
        except Transient as failed:
            return await self._failed(stored, state, failed, uncertain=failed.uncertain)
        except Refused as refused:
            await self._record(stored, state, Refuse(state="upload", messages=refused.messages))
            log.warning("e-Factura: ANAF refused the upload of %s: %s", state.label, "; ".join(refused.messages))
            return None
        await self._record(stored, state, Uploaded(upload_index=upload.index, uploaded_at=upload.at))
        log.info("e-Factura: %s uploaded, index %s", state.label, upload.index)
        return self.clock() + timedelta(seconds=self.settings.submission.poll_seconds)

    async def _look(self, stored: Stored, state: Submission) -> datetime | None:
        """A claim left without an answer: is the upload at ANAF? Recorded if so, else uploaded."""
        assert state.prepared is not None and state.unsure_since is not None
        try:
            found = await self.anaf.find_upload(
                cif=state.prepared.cif, number=state.prepared.number, since=state.unsure_since, now=self.clock()
            )
        except Transient as failed:
            return await self._failed(stored, state, failed, uncertain=True)  # still not known: look again
        if found is None:
            log.info("e-Factura: %s is not at ANAF: uploaded again", state.label)
            return await self._upload(stored, state, looked=True)
        await self._record(stored, state, Uploaded(upload_index=found.index, uploaded_at=found.at, found=True))
        log.info("e-Factura: %s was uploaded before, index %s", state.label, found.index)
        return self.clock()

    async def _poll(self, stored: Stored, state: Submission) -> datetime | None:
        assert state.uploaded is not None
        try:
            answer = await self.anaf.state(state.uploaded.upload_index)
        except (Transient, Refused) as failed:
            return await self._failed(stored, state, _transient_of(failed))
        if answer.state == "in prelucrare":
            return self.clock() + timedelta(seconds=self.settings.submission.poll_seconds)
        if answer.state == "ok":
            await self._record(stored, state, Accept(download_id=answer.download_id))
            log.info("e-Factura: %s accepted by ANAF", state.label)
            return self.clock()
        if answer.state == "XML cu erori nepreluat de sistem" or not answer.download_id:
            await self._record(stored, state, Refuse(state=answer.state, messages=[answer.state]))
            log.warning("e-Factura: ANAF refused %s: %s", state.label, answer.state)
            return None
        try:  # nok: ANAF's messages are in the error list it gives to download
            errors = await self.anaf.download(answer.download_id)
        except (Transient, Refused) as failed:
            return await self._failed(stored, state, _transient_of(failed))
        messages = answer_messages(errors)
        stored_answer = await self._store_answer(state, errors)
        await self._record(
            stored, state, Refuse(state="nok", messages=messages, download_id=answer.download_id), stored_answer
        )
        log.warning("e-Factura: ANAF refused %s: %s", state.label, "; ".join(messages))
        return None

    async def _download(self, stored: Stored, state: Submission) -> datetime | None:
        download_id = (
            state.accepted.download_id if state.accepted else state.refused.download_id if state.refused else ""
        )
        try:
            answer = await self.anaf.download(download_id)
        except (Transient, Refused) as failed:
            log.info("e-Factura: the answer %s of %s is not there yet (%s)", download_id, state.label, failed)
            return self.clock() + timedelta(seconds=self.settings.submission.poll_seconds)
        await self._record(stored, state, await self._store_answer(state, answer))
        return None

    async def _store_answer(self, state: Submission, answer: bytes) -> StoreAnswer:
        name = answer_name(state.id)
        store = await self.connection.documents()
        await store.put(name, answer)
        return StoreAnswer(
            name=name, media_type="application/zip", sha256=hashlib.sha256(answer).hexdigest(), size=len(answer)
        )

    async def _failed(
        self, stored: Stored, state: Submission, failed: Transient, *, uncertain: bool = False
    ) -> datetime | None:
        now = self.clock()
        what = Fail(now=now, reason=failed.reason, retry_after=failed.retry_after, uncertain=uncertain)
        events = await self._record(stored, state, what)
        log.warning("e-Factura: %s: %s", state.label, failed.reason)
        return next((e.retry_at for e in events if hasattr(e, "retry_at")), now)

    async def _record(self, stored: Stored, state: Submission, *happened: Happened) -> list[EfacturaEvent]:
        """The events ``happened`` decide, one after the other, appended in one batch at the
        version loaded (a conflict: another process moved on; the next look decides again)."""
        events: list[EfacturaEvent] = []
        for what in happened:
            decided = decide(what, state, self.settings.submission)
            for event in decided:
                if isinstance(event, EfacturaEvents):
                    state = evolve(state, event)
            events += decided
        if events:
            try:
                await self.append(
                    efactura_id(state.id), stored, list(events), f"{self.name}:{type(happened[0]).__name__}"
                )
            except IntegrityError:
                return []
        return events

    async def append(self, id: UUID, before: Stored, events: list[Event], command_id: str) -> Stored:
        """Consumer.append, the events stamped with this uploader's clock: a claim's lease runs
        from the time it records."""
        stored = sealed([(id, before.version, before.last_hash, events)], self._author(command_id), self.clock())
        await self.recorder.insert_events_async(stored)
        return Stored(before.events + events, stored[-1].originator_version, event_hash(stored[-1].state))


def efactura_events(stored: Stored) -> list[EfacturaEvents]:
    return [e for e in stored.events if isinstance(e, EfacturaEvents)]


def romanian(issued: InvoiceIssued | CreditNoteIssued) -> bool:
    address = issued.seller.address
    return address is not None and address.country == "RO"


def seller_cif(issued: InvoiceIssued | CreditNoteIssued) -> str:
    """The seller's CIF as the upload takes it: its VAT id's digits (RO18547290 -> 18547290)."""
    vat_id = issued.seller.vat_id.strip().upper().removeprefix("RO")
    return vat_id if re.fullmatch(r"\d{2,10}", vat_id) else ""


def kind_of(issued: InvoiceIssued | CreditNoteIssued) -> str:
    return "credit note" if isinstance(issued, CreditNoteIssued) else "invoice"


def xml_name(document_id: UUID) -> str:
    return f"efactura/{document_id}.xml"


def answer_name(document_id: UUID) -> str:
    return f"efactura/{document_id}-answer.zip"


def _transient_of(error: Transient | Refused) -> Transient:
    """A refused query (not the document: an unknown index, a daily limit) is tried again later."""
    return error if isinstance(error, Transient) else Transient(f"ANAF refused the query: {error}")


def _transient(error: BaseException) -> bool:
    from events.faults import is_transient

    return is_transient(error)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


# --- the process ---------------------------------------------------------------------------------


async def serve(env: dict[str, str], stop: asyncio.Event | None = None) -> None:
    """The uploader until ``stop`` (else SIGINT or SIGTERM); nothing when e-Factura is not
    configured."""
    from events.bridge import stop_on_signals
    from events.jetstream import StreamSettings

    settings = EfacturaSettings.from_env(env)
    stop = stop or stop_on_signals()
    if settings is None:
        log.info("e-Factura is not configured (EFACTURA_URL, EFACTURA_TOKEN): nothing is uploaded")
        await stop.wait()
        return
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    await connection.ensure_stream_async()
    client = EfacturaClient(EfacturaConfig(url=settings.url, token=settings.token, timeout=settings.timeout))
    uploader = EfacturaUploader(connection, client, settings)
    log.info(
        "%s starting after position %s, uploading to %s",
        uploader.name,
        await uploader.recorder.max_tracking_id_async(uploader.name) or 0,
        settings.url,
    )
    try:
        await uploader.run(stop)
    finally:
        await client.aclose()
        await connection.aclose()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """The uploader beside the other services (`jobstream run workers`), when configured."""
    await serve(env, stop)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from events.jetstream import run_plainly

    argparse.ArgumentParser(
        prog="jobstream run invoicer efactura",
        description="Upload every invoice and credit note of a Romanian seller to ANAF's RO e-Factura, once, and "
        "record its upload index and ANAF's answer (settings: EFACTURA_URL, EFACTURA_TOKEN).",
    ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_plainly("jobstream run invoicer efactura", serve(dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
