"""The KSeF submitter: every invoice and credit note of a Polish seller to KSeF, exactly once.

    python -m invoicer.ksef.submitter        (``jobstream run invoicer ksef``)

Two halves on one loop. The consumer (``invoicer-ksef``, events.consumer) follows the stream
for ``InvoiceIssued`` and ``CreditNoteIssued`` of a seller in Poland (proformas are no
invoices), builds the FA(3) file (invoicer.ksef.fa3), puts it in the documents' object store
and appends ``KsefDocumentPrepared``, or ``KsefHeld`` with the field and the reason when it
would not pass, with its tracking record in one batch. The sender takes each prepared
document through KSeF as ``submission.next_step`` says: it claims the send
(``KsefSendStarted`` at the aggregate's next version), sends it in the one online session
it keeps open while there is work (closed after ``idle_seconds`` without any), polls its
status, fetches the UPO into the documents' store, and records every answer as
``submission.decide`` says. Each decision is made on the aggregate as just loaded, so a
second process that claimed first makes this one's append fail, and it looks again.

At start the sender reads every KSeF event (``events.ksef.*``) and takes up each document
not yet done: an offline one, one waiting for a retry, one whose claim outlived its lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Notification

from events.consumer import Consumer, Stored
from events.contract import CreditNoteIssued, Event, InvoiceIssued, decode_event, event_hash
from events.contract.ksef import KsefEvent, KsefEvents, ksef_id
from events.faults import Transient
from events.jetstream import PAGE, NatsConnection, notification_of
from events.writes import sealed
from invoicer.ksef.fa3 import Fa3Refused, fa3_invoice, seller_nip
from invoicer.ksef.submission import (
    Accept,
    Claim,
    Fail,
    Happened,
    Hold,
    Prepare,
    Refuse,
    StoreUpo,
    Submission,
    SubmissionSettings,
    Taken,
    Tick,
    decide,
    evolve,
    fold,
    next_step,
)

if TYPE_CHECKING:
    from invoicer.ksef.client import KsefClient, OnlineSession

log = logging.getLogger("invoicer.ksef")

Clock = Callable[[], datetime]
STUCK_AGAIN = timedelta(minutes=10)  # a document whose step failed for no transient reason is looked at again


class KsefSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    nip: str
    token: str
    idle_seconds: float = 30.0  # the online session is closed after this long without work
    poll_seconds: float = 1.0  # between two status queries of a document KSeF is processing
    submission: SubmissionSettings = SubmissionSettings()

    @classmethod
    def from_env(cls, env: dict[str, str]) -> KsefSettings | None:
        """The settings, or None when KSeF is not configured (KSEF_URL, KSEF_NIP, KSEF_TOKEN)."""
        if not (env.get("KSEF_URL") and env.get("KSEF_NIP") and env.get("KSEF_TOKEN")):
            return None
        defaults = SubmissionSettings()
        backoff = env.get("KSEF_BACKOFF", "")
        try:
            return cls(
                url=env["KSEF_URL"],
                nip=env["KSEF_NIP"],
                token=env["KSEF_TOKEN"],
                idle_seconds=float(env.get("KSEF_SESSION_IDLE_SECONDS") or 30),
                poll_seconds=float(env.get("KSEF_POLL_SECONDS") or 1),
                submission=SubmissionSettings(
                    backoff=tuple(float(s) for s in backoff.split(",")) if backoff else defaults.backoff,
                    deadline_warning=timedelta(hours=float(env.get("KSEF_DEADLINE_WARNING_HOURS") or 4)),
                    send_lease=timedelta(seconds=float(env.get("KSEF_SEND_LEASE_SECONDS") or 60)),
                ),
            )
        except ValueError as error:
            raise SystemExit(f"jobstream: a KSEF_ setting is not a number: {error}") from None


# --- what the sender needs of KSeF ---------------------------------------------------------------


class KsefFailed(Exception):
    """KSeF did not take the request now: tried again later. ``unavailable``: it did not
    answer or could not (network, 5xx), not a rate limit; ``session_gone``: the online
    session is closed or unknown, so the next send opens another."""

    def __init__(
        self, reason: str, retry_after: float | None = None, unavailable: bool = True, session_gone: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason, self.retry_after, self.unavailable = reason, retry_after, unavailable
        self.session_gone = session_gone


class KsefRefusedDocument(Exception):
    """KSeF refused the document for its content: final."""

    def __init__(self, code: int, reason: str, details: list[str] | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.details = code, reason, list(details or [])


class Ksef(Protocol):
    """KSeF as the sender uses it (``client_api`` adapts invoicer.ksef.client). Failures are
    ``KsefFailed``; a refusal of the document at sending is ``KsefRefusedDocument``; the
    access token is refreshed inside."""

    async def open_session(self) -> str: ...  # the online session's reference

    async def send(self, session: str, fa3: bytes, *, offline: bool) -> str: ...  # the invoice's reference

    async def status(
        self, session: str, invoice: str, *, number: str, issue_date: date
    ) -> Accept | Refuse | None: ...  # None: still processing; a duplicate is Accept(duplicate=True)

    async def upo(self, session: str, invoice: str, ksef_number: str) -> bytes: ...

    async def close_session(self, session: str) -> None: ...


# --- the consumer and the sender -------------------------------------------------------------------


class KsefSubmitter(Consumer):
    name = "invoicer-ksef"
    triggers = frozenset({"InvoiceIssued", "CreditNoteIssued"})

    def __init__(
        self,
        connection: NatsConnection,
        ksef: Ksef,
        settings: KsefSettings,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(connection)
        self.ksef = ksef
        self.settings = settings
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.pending: dict[UUID, datetime | None] = {}  # document -> when to look again (None: now)
        self.wake = asyncio.Event()
        self.session: str | None = None
        self._last_work = 0.0  # monotonic time the session was last used

    # -- preparing (the stream consumer) --

    async def decide_and_save(self, notification: Notification) -> str:
        issued = decode_event(notification.state)
        if not isinstance(issued, InvoiceIssued | CreditNoteIssued) or not polish(issued):
            return "skipped"
        aggregate = ksef_id(issued.id)
        stored = await self.load(aggregate)
        state = fold(issued.id, ksef_events(stored))
        if state.prepared is not None or state.held is not None:
            return "skipped"
        what = await self._prepare(issued)
        events = decide(what, state, self.settings.submission)
        await self.save(notification, [(aggregate, stored, list(events))])
        if isinstance(what, Hold):
            log.warning("%s %s held for KSeF: %s: %s", kind_of(issued), issued.number, what.field, what.reason)
            return "held"
        self.pending[issued.id] = None
        self.wake.set()
        return "prepared"

    async def _prepare(self, issued: InvoiceIssued | CreditNoteIssued) -> Prepare | Hold:
        original = ""
        if isinstance(issued, CreditNoteIssued):
            corrected = fold(issued.invoice_id, ksef_events(await self.load(ksef_id(issued.invoice_id))))
            if corrected.accepted is None and awaited(corrected):
                # a correction goes to KSeF once the corrected invoice has its number (tryby-offline.md):
                # the stream is read again shortly, while the sender beside this gets it accepted
                raise Transient(f"credit note {issued.number} waits for invoice {issued.invoice_number}'s KSeF number")
            original = corrected.accepted.ksef_number if corrected.accepted is not None else ""
        try:
            nip = seller_nip(issued.seller)
            fa3 = fa3_invoice(issued, original_ksef_number=original)
        except Fa3Refused as refused:
            return Hold(field=refused.field, reason=refused.reason)
        name = fa3_name(issued.id)
        store = await self.connection.documents()
        await store.put(name, fa3)  # the same name again after a crash: replaced, not duplicated
        return Prepare(
            document_kind="credit_note" if isinstance(issued, CreditNoteIssued) else "invoice",
            number=issued.number,
            seller_nip=nip,
            issue_date=issued.issue_date,
            fa3_name=name,
            fa3_sha256=hashlib.sha256(fa3).hexdigest(),
            fa3_size=len(fa3),
            invoice_type="KOR" if isinstance(issued, CreditNoteIssued) else "VAT",
        )

    # -- sending --

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(super().run(stop), self.send_all(stop))

    async def recover(self) -> int:
        """Take up every document whose way through KSeF is not done (read from the KSeF
        events alone); how many."""
        states: dict[UUID, Submission] = {}
        subject = self.connection.settings.kind_filter("events", "ksef")
        position = 0
        while True:
            page = await self.connection.direct_batch({"seq": position + 1, "next_by_subj": subject, "batch": PAGE})
            if not page:
                break
            for msg in page:
                notification = notification_of(msg)
                position = notification.id
                event = decode_event(notification.state)
                if isinstance(event, KsefEvents):
                    states[event.id] = evolve(states.get(event.id) or Submission(id=event.id), event)
        for document, state in states.items():
            if not state.final:
                self.pending.setdefault(document, None)
        return sum(1 for state in states.values() if not state.final)

    async def send_all(self, stop: asyncio.Event) -> None:
        """Until ``stop``: each pending document's next step when it is due."""
        while not stop.is_set():
            try:
                found = await self.recover()
                break
            except Exception as error:
                if not _transient(error):
                    raise
                log.warning("KSeF: could not read the pending documents (%s); trying again", error)
                await _pause(stop, 5)
        else:
            return
        if found:
            log.info("KSeF: %d documents taken up where they were left", found)
        try:
            while not stop.is_set():
                await self.send_due(stop)
                await self._idle(stop)
        finally:
            await self.close_session()

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
                    if _transient(error):
                        log.warning("KSeF: %s: %s; trying again", document, error)
                        again = self.clock() + timedelta(seconds=5)
                    else:  # a bug, or data nothing here can cure: the others go on, this one later
                        log.error(
                            "KSeF: document %s could not be taken further (%s: %s); looked at again in %s",
                            document,
                            type(error).__name__,
                            error,
                            STUCK_AGAIN,
                            exc_info=error,
                        )
                        again = self.clock() + STUCK_AGAIN
                steps += 1
                if again is None:
                    self.pending.pop(document, None)
                else:
                    self.pending[document] = again
        return steps

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for new work, the next due time, or the session's idle end."""
        now = self.clock()
        waits = [(at - now).total_seconds() for at in self.pending.values() if at is not None]
        timeout = min([5.0, *waits])
        if self.session is not None:
            idle_end = self._last_work + self.settings.idle_seconds - time.monotonic()
            if idle_end <= 0 and not [a for a in self.pending.values() if a is None or a <= now]:
                await self.close_session()
            else:
                timeout = min(timeout, max(idle_end, 0.0))
        self.wake.clear()
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait([stopping, woken], timeout=max(timeout, 0.01), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            woken.cancel()

    async def step(self, document: UUID) -> datetime | None:
        """One step of one document; when to look at it again (None: nothing more to do)."""
        aggregate = ksef_id(document)
        stored = await self.load(aggregate)
        state = fold(document, ksef_events(stored))
        now = self.clock()
        s = self.settings.submission
        action, at = next_step(state, now, s)
        if action == "wait":
            return at
        if action == "warn":
            await self._record(stored, Tick(now=now), state)
            assert state.offline is not None
            log.warning("KSeF: %s is still not accepted; its deadline is %s", state.label, state.offline.deadline)
            return now
        if action == "upo":
            return await self._fetch_upo(stored, state)
        if action == "poll":
            assert state.sent is not None
            try:
                answer = await self.ksef.status(
                    state.sent.session_reference,
                    state.sent.invoice_reference,
                    number=state.prepared.number if state.prepared else "",
                    issue_date=state.prepared.issue_date if state.prepared else now.date(),
                )
            except KsefFailed as failed:
                return await self._failed(stored, state, failed)
            if answer is None:
                return now + timedelta(seconds=self.settings.poll_seconds)
            await self._record(stored, answer, state)
            return now
        return await self._send(stored, state)

    async def _send(self, stored: Stored, state: Submission) -> datetime | None:
        assert state.prepared is not None
        try:
            session = await self.open_session()
        except KsefFailed as failed:
            return await self._failed(stored, state, failed)
        now = self.clock()
        claim = decide(Claim(now=now, session_reference=session), state, self.settings.submission)
        if not claim:
            return now
        try:
            stored = await self.append(ksef_id(state.id), stored, list(claim), f"{self.name}:send:{state.id}")
        except IntegrityError:
            return now  # another process moved it on: look again
        state = fold(state.id, ksef_events(stored))
        store = await self.connection.documents()
        fa3 = (await store.get(state.prepared.fa3_name)).data if state.prepared else b""
        self._last_work = time.monotonic()
        try:
            invoice = await self.ksef.send(session, fa3, offline=state.offline is not None)
        except KsefFailed as failed:
            if failed.unavailable or failed.session_gone:
                self.session = None  # opened again when KSeF answers
            return await self._failed(stored, state, failed)
        except KsefRefusedDocument as refused:
            await self._record(stored, Refuse(code=refused.code, reason=refused.reason, details=refused.details), state)
            return None
        self._last_work = time.monotonic()
        await self._record(stored, Taken(session_reference=session, invoice_reference=invoice), state)
        return now + timedelta(seconds=self.settings.poll_seconds)

    async def _fetch_upo(self, stored: Stored, state: Submission) -> datetime | None:
        assert state.accepted is not None
        session = state.sent.session_reference if state.sent is not None else state.session_reference
        invoice = state.sent.invoice_reference if state.sent is not None else ""
        try:
            upo = await self.ksef.upo(session, invoice, state.accepted.ksef_number)
        except KsefFailed as failed:
            wait = failed.retry_after if failed.retry_after is not None else self.settings.poll_seconds * 5
            log.info("KSeF: the UPO of %s is not there yet (%s)", state.accepted.ksef_number, failed.reason)
            return self.clock() + timedelta(seconds=wait)
        name = upo_name(state.id)
        store = await self.connection.documents()
        await store.put(name, upo)
        await self._record(
            stored, StoreUpo(upo_name=name, upo_sha256=hashlib.sha256(upo).hexdigest(), upo_size=len(upo)), state
        )
        return None

    async def _failed(self, stored: Stored, state: Submission, failed: KsefFailed) -> datetime | None:
        now = self.clock()
        what = Fail(now=now, reason=failed.reason, retry_after=failed.retry_after, unavailable=failed.unavailable)
        events = await self._record(stored, what, state)
        log.warning("KSeF: %s: %s", state.label, failed.reason)
        return next((e.retry_at for e in events if hasattr(e, "retry_at")), now)

    async def _record(self, stored: Stored, what: Happened, state: Submission) -> list[KsefEvent]:
        """The events ``what`` decides, appended at the version loaded (a conflict: another
        process moved on; the next look decides again)."""
        events = decide(what, state, self.settings.submission)
        if events:
            try:
                await self.append(ksef_id(state.id), stored, list(events), f"{self.name}:{type(what).__name__}")
            except IntegrityError:
                return []
        return events

    async def append(self, id: UUID, before: Stored, events: list[Event], command_id: str) -> Stored:
        """Consumer.append, the events stamped with this submitter's clock: a claim's lease
        runs from the time it records."""
        stored = sealed([(id, before.version, before.last_hash, events)], self._author(command_id), self.clock())
        await self.recorder.insert_events_async(stored)
        return Stored(before.events + events, stored[-1].originator_version, event_hash(stored[-1].state))

    async def open_session(self) -> str:
        if self.session is None:
            self.session = await self.ksef.open_session()
            log.info("KSeF: online session %s opened", self.session)
        self._last_work = time.monotonic()
        return self.session

    async def close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            await self.ksef.close_session(session)
            log.info("KSeF: online session %s closed", session)
        except KsefFailed as failed:
            log.warning("KSeF: could not close session %s: %s", session, failed.reason)


def awaited(state: Submission) -> bool:
    """Whether the corrected invoice's KSeF number is worth waiting for: it is on its way, not
    held, refused or issued offline (KSeF down: the correction is prepared without it)."""
    return state.prepared is not None and not state.final and state.offline is None


def ksef_events(stored: Stored) -> list[KsefEvents]:
    return [e for e in stored.events if isinstance(e, KsefEvents)]


def polish(issued: InvoiceIssued | CreditNoteIssued) -> bool:
    address = issued.seller.address
    return address is not None and address.country == "PL"


def kind_of(issued: InvoiceIssued | CreditNoteIssued) -> str:
    return "credit note" if isinstance(issued, CreditNoteIssued) else "invoice"


def fa3_name(document_id: UUID) -> str:
    return f"ksef/{document_id}.xml"


def upo_name(document_id: UUID) -> str:
    return f"ksef/{document_id}-upo.xml"


def _transient(error: BaseException) -> bool:
    from events.faults import is_transient

    return is_transient(error)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


# --- the process ---------------------------------------------------------------------------------


class ClientKsef:
    """The KSeF API client (invoicer.ksef.client) as the sender uses it: its errors turned
    into the sender's (``Transient`` into ``KsefFailed``, a refusal of the invoice into
    ``Refuse`` or ``KsefRefusedDocument``, ``Duplicate`` into ``Accept(duplicate=True)`` with the
    number KSeF gave or looked up), its online sessions kept by reference. The client
    refreshes the access token itself (before it expires, or on a 401) and authenticates anew
    when the refresh token has expired too."""

    def __init__(self, client: KsefClient) -> None:
        self.client = client
        self.sessions: dict[str, OnlineSession] = {}

    @classmethod
    def from_env(cls, env: dict[str, str]) -> ClientKsef:
        from invoicer.ksef.client import KsefClient, KsefConfig

        config = KsefConfig.from_env(env)
        if config is None:
            raise SystemExit("jobstream: KSEF_URL is not set")
        return cls(KsefClient(config))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def open_session(self) -> str:
        from invoicer.ksef.client import KsefError

        try:
            session = await self.client.open_online_session()
        except KsefError as error:
            raise _failure(error) from error
        self.sessions[session.reference_number] = session
        return session.reference_number

    async def send(self, session: str, fa3: bytes, *, offline: bool) -> str:
        from invoicer.ksef.client import KsefError, Refused

        opened = self.sessions.get(session)
        if opened is None:
            raise KsefFailed(
                f"the online session {session} is not this process's", unavailable=False, session_gone=True
            )
        try:
            sent = await self.client.send_invoice(opened, fa3, offline=offline)
        except Refused as refused:
            raise KsefRefusedDocument(refused.code, refused.reason, list(refused.details)) from refused
        except KsefError as error:
            raise _failure(error) from error
        return sent.reference_number

    async def status(self, session: str, invoice: str, *, number: str, issue_date: date) -> Accept | Refuse | None:
        from invoicer.ksef.client import Accepted, Duplicate, KsefError, Refused

        try:
            answer = await self.client.invoice_status(session, invoice)
        except Duplicate as duplicate:
            try:
                found = await self.client.find_ksef_number(number, issue_date)
            except KsefError as error:
                raise _failure(error) from error
            if found is None and not duplicate.ksef_number:
                raise KsefFailed(f"KSeF says {number} is a duplicate but not of which", unavailable=False) from None
            ksef_number = duplicate.ksef_number or (found.ksef_number if found else "")
            accepted_at = found.acquired_at if found is not None else _numbered_on(ksef_number)
            return Accept(ksef_number=ksef_number, accepted_at=accepted_at, duplicate=True)
        except Refused as refused:
            return Refuse(code=refused.code, reason=refused.reason, details=list(refused.details))
        except KsefError as error:
            raise _failure(error) from error
        if isinstance(answer, Accepted):
            return Accept(ksef_number=answer.ksef_number, accepted_at=answer.acquired_at.astimezone(UTC))
        return None

    async def upo(self, session: str, invoice: str, ksef_number: str) -> bytes:
        """The UPO of the invoice as sent; for a duplicate, the original's, from its session."""
        from invoicer.ksef.client import Duplicate, KsefError

        try:
            try:
                await self.client.invoice_status(session, invoice)
            except Duplicate as duplicate:
                return await self.client.upo_by_ksef_number(duplicate.original_session or session, ksef_number)
            return await self.client.upo(session, invoice)
        except KsefError as error:
            raise _failure(error) from error

    async def close_session(self, session: str) -> None:
        from invoicer.ksef.client import KsefError

        self.sessions.pop(session, None)
        try:
            await self.client.close_session(session)
        except KsefError as error:
            raise _failure(error) from error


def _failure(error: Exception) -> KsefFailed:
    """A client error as the sender's ``KsefFailed``: KSeF not answering or failing (the network,
    5xx) is unavailability, its rate limit, a closed session or a refused token is not."""
    from invoicer.ksef.client import Refused, SessionClosed, Transient

    if isinstance(error, SessionClosed):
        return KsefFailed(error.reason, error.retry_after, unavailable=False, session_gone=True)
    if isinstance(error, Transient):
        return KsefFailed(error.reason, error.retry_after, unavailable="rate limit" not in error.reason)
    if isinstance(error, Refused):
        return KsefFailed(f"KSeF refused the request: {error}", unavailable=False)
    return KsefFailed(f"{type(error).__name__}: {error}", unavailable=False)  # AuthExpired: the token itself


def _numbered_on(ksef_number: str) -> datetime:
    """The day a KSeF number was given (NIP-YYYYMMDD-...), at midnight UTC."""
    day = ksef_number.split("-")[1]
    return datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), tzinfo=UTC)


def client_api(settings: KsefSettings, env: dict[str, str]) -> Ksef:
    """The KSeF API client (invoicer.ksef.client) as the sender uses it."""
    return ClientKsef.from_env(env)


async def serve(env: dict[str, str], stop: asyncio.Event | None = None) -> None:
    """The KSeF submitter until ``stop`` (else SIGINT or SIGTERM); nothing when KSeF is not
    configured."""
    from events.bridge import stop_on_signals
    from events.jetstream import StreamSettings

    settings = KsefSettings.from_env(env)
    stop = stop or stop_on_signals()
    if settings is None:
        log.info("KSeF is not configured (KSEF_URL, KSEF_NIP, KSEF_TOKEN): nothing is sent to it")
        await stop.wait()
        return
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    await connection.ensure_stream_async()
    ksef = client_api(settings, env)
    submitter = KsefSubmitter(connection, ksef, settings)
    log.info(
        "%s starting after position %s, sending to %s",
        submitter.name,
        await submitter.recorder.max_tracking_id_async(submitter.name) or 0,
        settings.url,
    )
    try:
        await submitter.run(stop)
    finally:
        aclose = getattr(ksef, "aclose", None)
        if aclose is not None:
            await aclose()
        await connection.aclose()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """The submitter beside the other services (`jobstream run workers`), when KSeF is configured."""
    await serve(env, stop)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from events.jetstream import run_plainly

    argparse.ArgumentParser(
        prog="jobstream run invoicer ksef",
        description="Send every invoice and credit note of a Polish seller to KSeF, once, and record its "
        "KSeF number and UPO (settings: KSEF_URL, KSEF_NIP, KSEF_TOKEN).",
    ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_plainly("jobstream run invoicer ksef", serve(dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
