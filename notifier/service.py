"""The notifier: turns events into emails and push alerts, each delivery recorded as an event.

Two halves. The *consumer* follows the stream from its tracking position and, for each
event that calls for messages (a job assigned, an invoice's PDF stored, a reminder due),
saves one ``MessageQueued`` per message with its tracking record in one atomic batch. A
message's id derives from the event and the recipient, so a redelivery or a second replica
queues nothing twice.

The *sender* delivers queued messages. Before sending it records ``DeliveryAttempted`` at
the message's version (another sender that tried the same fails that append, so one sends);
after, ``MessageDelivered`` or ``DeliveryFailed`` (with the time of the next try, backing
off, or without one: given up, for the office to see). A sender that stops between the
attempt and its outcome leaves the attempt open; after the attempt's lease, the next sender
records ``DeliveryUncertain`` instead of sending again: a customer never gets an invoice
twice, and the office sees the one message that may not have gone out, and may send it again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Notification

from events.bridge import stop_on_signals
from events.consumer import Consumer, Stored
from events.contract import (
    CreditNoteDocumentStored,
    CreditNoteIssued,
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    Event,
    InvoiceDocumentStored,
    InvoiceIssued,
    KsefAccepted,
    KsefDocumentPrepared,
    KsefIssuedOffline,
    MessageDelivered,
    MessageQueued,
    PaymentReminderDue,
    PushSubscriptionRemoved,
    RedeliveryRequested,
    decode_event,
    recipient_id,
)
from events.contract.ksef import ksef_id
from events.jetstream import NatsConnection, StreamSettings, run_plainly
from events.wire import originator_uuid
from notifier.compose import (
    PENDING,
    Directory,
    credit_note_email,
    invoice_email,
    job_alerts,
    job_facts,
    reminder_email,
)
from notifier.delivery import Failed, Gone, Mailer, Pusher, PushSettings, SmtpSettings

log = logging.getLogger("notifier")

NAME = "notifier"
NAMESPACE = UUID("0c5e7a2e-93f4-4b8e-a1f6-2d1b9f3c6e07")
JOB_TRIGGERS = frozenset(
    {"JobScheduled", "JobRescheduled", "JobCancelled", "JobUnassigned", "JobCompleted", "SlaAtRisk"}
)
# KSeF's answer for a Polish document: its email goes once KSeF has numbered it (or it was
# issued offline), with the rendering stored after that answer
KSEF_TRIGGERS = frozenset({"KsefAccepted", "KsefIssuedOffline"})
# Whether the document writer renders a KSeF document again once KSeF has answered (with its
# KSeF number, or OFFLINE): then its email waits for that rendering, else it goes at the answer.
RENDERED_AGAIN = True
TRIGGERS = JOB_TRIGGERS | {"InvoiceDocumentStored", "CreditNoteDocumentStored", "PaymentReminderDue"} | KSEF_TRIGGERS
DEFAULT_RETRIES = "5,30,120,600,1800"  # seconds before each further attempt
LEASE = timedelta(seconds=60)  # an attempt longer than this is taken as abandoned
SENDERS = 8  # messages sent at once
APP_URL = "http://127.0.0.1:8000"
DASHBOARD_URL = "http://127.0.0.1:8001"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    smtp: SmtpSettings = SmtpSettings()
    push: PushSettings = PushSettings()
    retries: tuple[float, ...] = (5, 30, 120, 600, 1800)
    office_email: str = ""
    app_url: str = APP_URL  # the command service: the technicians' app
    dashboard_url: str = DASHBOARD_URL
    lease: float = LEASE.total_seconds()
    ksef: bool = False  # KSeF configured (KSEF_URL): a Polish seller's documents wait for their KSeF number

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        text = env.get("NOTIFIER_RETRIES") or DEFAULT_RETRIES
        try:
            retries = tuple(float(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise SystemExit(f"NOTIFIER_RETRIES {text!r}: seconds between attempts, e.g. {DEFAULT_RETRIES}") from None
        return cls(
            smtp=SmtpSettings.from_env(env),
            push=PushSettings.from_env(env),
            retries=retries,
            office_email=env.get("JOBSTREAM_OFFICE_EMAIL") or env.get("JOBSTREAM_COMPANY_EMAIL", ""),
            app_url=env.get("JOBSTREAM_APP_URL") or APP_URL,
            dashboard_url=env.get("JOBSTREAM_DASHBOARD_URL") or DASHBOARD_URL,
            lease=float(env.get("NOTIFIER_LEASE_SECONDS") or LEASE.total_seconds()),
            ksef=bool(env.get("KSEF_URL")),
        )


def message_id_of(event_id: UUID, channel: str, recipient: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"{event_id}:{channel}:{recipient}")


def ksef_email_id(document_id: UUID, channel: str, recipient: str) -> UUID:
    """A document's one email under KSeF, whichever event made it due."""
    return uuid.uuid5(NAMESPACE, f"{document_id}:ksef:{channel}:{recipient}")


Issued = InvoiceIssued | CreditNoteIssued
Rendered = InvoiceDocumentStored | CreditNoteDocumentStored


def under_ksef(history: list[Event], ksef_on: bool) -> bool:
    """Whether the document goes through KSeF, so that its email waits for KSeF's answer: it
    has a KSeF aggregate (its FA(3) was prepared), or KSeF is configured and the seller is Polish."""
    if any(isinstance(e, KsefDocumentPrepared) for e in history):
        return True
    issued = next((e for e in history if isinstance(e, Issued)), None)
    seller = issued.seller.address if issued is not None else None
    return ksef_on and seller is not None and seller.country.upper() == "PL"


def document_email(
    history: list[Event], ksef_on: bool, later: Sequence[Event] = (), rendered_again: bool = False
) -> tuple[Issued, list[str]] | None:
    """The document's email if the last event of ``history`` (the document's events up to the
    one being handled) makes it due: the document and its attachments (its renderings as
    stored now: ``later`` has the events after it, the XML stored in the PDF's batch among
    them); None if not now.

    A document outside KSeF is emailed when its PDF is stored (the XML comes in the same
    batch), with every rendering. Under KSeF it waits for KSeF's answer (``KsefAccepted``, or
    ``KsefIssuedOffline``) and goes with the latest rendering of each kind: when the document
    writer renders it again after that answer (``RENDERED_AGAIN``), the PDF stored after it,
    which carries the KSeF number or OFFLINE; otherwise at the answer. Refused or held, it is
    not a valid invoice and no email goes."""
    trigger = history[-1]
    issued = next((e for e in history if isinstance(e, Issued)), None)
    if issued is None:
        return None
    rendered = [e for e in [*history, *later] if isinstance(e, Rendered)]
    if not under_ksef([*history, *later], ksef_on):  # the KSeF aggregate may come after the PDF
        if isinstance(trigger, Rendered) and trigger.media_type == "application/pdf":
            return issued, [e.name for e in rendered]
        return None
    answered = next((n for n, e in enumerate(history) if isinstance(e, KsefAccepted | KsefIssuedOffline)), None)
    if answered is None:
        return None  # KSeF has not numbered it yet
    pdf = [n for n, e in enumerate(history) if isinstance(e, Rendered) and e.media_type == "application/pdf"]
    if answered == len(history) - 1:  # KSeF's (first) answer
        if rendered_again or not pdf:
            return None  # the rendering stored after it is the one to send
    elif not pdf or pdf[-1] != len(history) - 1 or pdf[-1] < answered:
        return None  # not a PDF stored after KSeF's answer
    latest = {e.media_type: e.name for e in rendered}  # the last of each kind, in the order first stored
    return issued, list(latest.values())


class Pending(msgspec.Struct, kw_only=True):
    """A message not yet settled, as the sender knows it."""

    queued: MessageQueued
    state: str = "queued"  # queued, attempting, retrying
    attempt: int = 0
    due: datetime


class Notifier(Consumer):
    name = NAME
    triggers = TRIGGERS

    def __init__(self, connection: NatsConnection, settings: Settings) -> None:
        super().__init__(connection)
        self.settings = settings
        self.directory = Directory()
        self._directory_position = {"token": 0, "recipient": 0}
        self.pending: dict[UUID, Pending] = {}
        self._messages_position = 0
        self._wake = asyncio.Event()
        self._sending: set[UUID] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(SENDERS)
        self.mailer = Mailer(settings.smtp, self._fetch)
        self.pusher = Pusher(settings.push)
        self.sent = 0
        self._warned_sla: set[UUID] = set()

    # --- the consumer: events to queued messages -------------------------------------

    async def refresh_directory(self) -> None:
        for kind in ("token", "recipient"):
            for position, stored in await self.recorder.kind_events_async(kind, self._directory_position[kind]):
                self.directory.apply(decode_event(stored.state))
                self._directory_position[kind] = position

    async def decide_and_save(self, notification: Notification) -> str:
        event = decode_event(notification.state)
        assert event.meta is not None
        now = datetime.now(UTC)
        outgoing = await self.compose(notification.topic, event, notification.id, now)
        if not outgoing:
            return "skipped"
        touched: list[tuple[UUID, Stored, list[Event]]] = []
        queued_here: list[tuple[UUID, MessageQueued]] = []
        for message in outgoing:
            message_id = message.id
            if message_id == PENDING:
                message_id = message_id_of(event.meta.event_id, message.channel, message.recipient)
            elif (await self.head(message_id)).version:
                continue  # a message with a fixed id (a KSeF document's email) already queued
            queued = msgspec.structs.replace(message, id=message_id, cause_position=notification.id)
            touched.append((message_id, Stored([], 0, ""), [queued]))
            queued_here.append((message_id, queued))
        if not touched:
            return "skipped"
        await self.save(notification, touched)
        for message_id, queued in queued_here:
            self._track(message_id, queued)
        self._wake.set()
        return "queued"

    async def compose(self, topic: str, event: Event, position: int, now: datetime) -> list[MessageQueued]:
        if topic in JOB_TRIGGERS:
            await self.refresh_directory()
            history = [
                e
                for _, s in await self.recorder.select_positioned_async(event.id, lte=position)
                for e in [decode_event(s.state)]
            ]
            before = job_facts(event.id, history[:-1]).technician_ids
            return job_alerts(
                event,
                job_facts(event.id, history),
                before,
                self.directory,
                now,
                self.settings.app_url,
                self.settings.dashboard_url,
            )
        if isinstance(event, Rendered | KsefAccepted | KsefIssuedOffline):
            if isinstance(event, Rendered) and event.media_type != "application/pdf":
                return []  # one email per document, sent when its PDF is stored (the XML is in the same batch)
            history, later = await self.document_history(event.id, position)
            due = document_email(history, self.settings.ksef, later, RENDERED_AGAIN)
            if due is None:
                return []
            issued, names = due
            email = (
                credit_note_email(issued, names)
                if isinstance(issued, CreditNoteIssued)
                else invoice_email(issued, names)
            )
            if under_ksef([*history, *later], self.settings.ksef):
                email = msgspec.structs.replace(email, id=ksef_email_id(issued.id, email.channel, email.recipient))
            return [email]
        if isinstance(event, PaymentReminderDue):
            stored = await self.load(event.id)
            issued = next(e for e in stored.events if isinstance(e, InvoiceIssued))
            names = [e.name for e in stored.events if isinstance(e, InvoiceDocumentStored)]
            recipient = event.escalate_to if "@" in event.escalate_to else self.settings.office_email
            return [reminder_email(event, issued, names, recipient, self.settings.dashboard_url)]
        return []

    async def document_history(self, document_id: UUID, position: int) -> tuple[list[Event], list[Event]]:
        """A document's events and its KSeF aggregate's, in stream order: up to ``position``, and after it."""
        positioned = sorted(
            [
                *await self.recorder.select_positioned_async(document_id),
                *await self.recorder.select_positioned_async(ksef_id(document_id)),
            ],
            key=lambda p: p[0],
        )
        return (
            [decode_event(s.state) for seq, s in positioned if seq <= position],
            [decode_event(s.state) for seq, s in positioned if seq > position],
        )

    # --- the sender: queued messages to deliveries ------------------------------------

    def _track(self, message_id: UUID, queued: MessageQueued) -> None:
        now = datetime.now(UTC)
        due = max(queued.not_before or now, now)
        self.pending[message_id] = Pending(queued=queued, due=due)

    async def refresh_messages(self) -> None:
        """What every sender recorded since last time (this one's own and other replicas')."""
        now = datetime.now(UTC)
        for position, stored in await self.recorder.kind_events_async("message", self._messages_position):
            self._messages_position = position
            event = decode_event(stored.state)
            id = originator_uuid(stored)
            pending = self.pending.get(id)
            match event:
                case MessageQueued():
                    self._track(id, event)
                case RedeliveryRequested() if id not in self.pending:
                    queued = next(
                        (
                            decode_event(s.state)
                            for _, s in await self.recorder.select_positioned_async(id)
                            if s.topic == "MessageQueued"
                        ),
                        None,
                    )
                    if isinstance(queued, MessageQueued):
                        self.pending[id] = Pending(queued=msgspec.structs.replace(queued, not_before=None), due=now)
                case DeliveryAttempted() if pending is not None:
                    pending.state, pending.attempt = "attempting", event.attempt
                    pending.due = event.lease_until
                case DeliveryFailed() if pending is not None and event.retry_at is not None:
                    pending.state, pending.attempt, pending.due = "retrying", event.attempt, event.retry_at
                case MessageDelivered() | DeliveryFailed() | DeliveryUncertain():
                    self.pending.pop(id, None)

    async def send_due(self) -> datetime | None:
        """Start delivering every message that is due; when the next one will be."""
        await self.refresh_messages()
        if any(p.queued.channel == "push" for p in self.pending.values()):
            await self.refresh_directory()  # the devices to push to, once for every push due now
        now = datetime.now(UTC)
        upcoming = None
        for id, pending in list(self.pending.items()):
            if id in self._sending:
                continue
            if pending.due > now:
                upcoming = pending.due if upcoming is None else min(upcoming, pending.due)
                continue
            self._sending.add(id)
            task = asyncio.create_task(self._deliver(id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return upcoming

    async def _deliver(self, id: UUID) -> None:
        try:
            async with self._slots:
                await self.deliver(id)
        except Exception:
            log.exception("message %s: delivery failed unexpectedly; tried again later", id)
        finally:
            self._sending.discard(id)
            self._wake.set()

    async def deliver(self, id: UUID) -> None:
        stored = await self.load(id)
        last = stored.events[-1] if stored.events else None
        now = datetime.now(UTC)
        if isinstance(last, DeliveryAttempted):
            if last.lease_until > now:
                return  # another sender is on it
            await self._append(id, stored, [DeliveryUncertain(id=id, attempt=last.attempt)])
            log.warning("message %s: a sender stopped while sending it; not sent again, the office decides", id)
            self.pending.pop(id, None)
            return
        if isinstance(last, MessageDelivered | DeliveryUncertain) or (
            isinstance(last, DeliveryFailed) and last.retry_at is None
        ):
            self.pending.pop(id, None)
            return
        queued = next(e for e in stored.events if isinstance(e, MessageQueued))
        attempt = sum(isinstance(e, DeliveryAttempted) for e in stored.events) + 1
        claim = DeliveryAttempted(id=id, attempt=attempt, lease_until=now + timedelta(seconds=self.settings.lease))
        try:
            stored = await self._append(id, stored, [claim])
        except IntegrityError:
            return  # another sender took it; its outcome arrives with the next refresh
        try:
            detail = await self.send(id, queued)
        except Failed as failure:
            retry = None if failure.permanent else self._retry_at(stored, now)
            await self._append(
                id, stored, [DeliveryFailed(id=id, attempt=attempt, error=str(failure)[:500], retry_at=retry)]
            )
            (log.info if retry else log.warning)(
                "message %s to %s: %s%s",
                id,
                queued.recipient,
                failure,
                f"; again at {retry:%H:%M:%S}" if retry else "; given up",
            )
            return
        await self._append(id, stored, [MessageDelivered(id=id, attempt=attempt, detail=detail[:500])])
        self.pending.pop(id, None)
        self.sent += 1

    def _retry_at(self, stored: Stored, now: datetime) -> datetime | None:
        """Back off: the n-th failure waits the n-th configured delay; after the last, none."""
        failures = sum(isinstance(e, DeliveryFailed) for e in stored.events)
        if failures >= len(self.settings.retries):
            return None
        return now + timedelta(seconds=self.settings.retries[failures])

    async def _append(self, id: UUID, stored: Stored, events: list[Event]) -> Stored:
        return await self.append(id, stored, events, command_id=f"{self.name}:{id}:{stored.version}")

    async def send(self, id: UUID, queued: MessageQueued) -> str:
        if queued.channel == "email":
            return (await self.mailer.send(id, queued)).detail
        return await self.push(id, queued)

    async def push(self, id: UUID, queued: MessageQueued) -> str:
        """To each of the user's devices. Open clients see the queued message live anyway."""
        subscriptions = dict(self.directory.subscriptions.get(queued.recipient, {}))
        if not subscriptions:
            return "no device subscribed: shown to open clients only"
        outcomes, failures = [], []
        for endpoint, (p256dh, auth) in subscriptions.items():
            try:
                outcomes.append(await self.pusher.send(id, queued, endpoint, p256dh, auth))
            except Gone:
                await self._forget(queued.recipient, endpoint)
            except Failed as failure:
                failures.append(failure)
        if outcomes:
            return "push service: " + ", ".join(outcomes)
        if failures:
            raise Failed("; ".join(map(str, failures)), permanent=all(f.permanent for f in failures))
        return "every device had unsubscribed"

    async def _forget(self, user_name: str, endpoint: str) -> None:
        recipient = recipient_id(user_name)
        try:
            await self.save(
                None,
                [
                    (
                        recipient,
                        await self.head(recipient),
                        [
                            PushSubscriptionRemoved(
                                id=recipient, endpoint=endpoint, reason="the push service says it is gone"
                            )
                        ],
                    )
                ],
            )
        except IntegrityError:
            pass  # the user changed something meanwhile; the next failure removes it
        self.directory.subscriptions.get(user_name, {}).pop(endpoint, None)

    async def _fetch(self, name: str) -> bytes:
        store = await self.connection.documents()
        return bytes((await store.get(name)).data)

    async def sending(self, stop: asyncio.Event) -> None:
        """Deliver what is due, then sleep until the next is due or something new is queued."""
        while not stop.is_set():
            self._wake.clear()
            upcoming = await self.send_due()
            timeout = 5.0 if upcoming is None else max(0.0, (upcoming - datetime.now(UTC)).total_seconds())
            waking = asyncio.ensure_future(self._wake.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waking, stopping}, timeout=min(timeout, 5.0), return_when=asyncio.FIRST_COMPLETED)
            waking.cancel()
            stopping.cancel()

    async def settle(self) -> None:
        """Wait for the deliveries under way (a clean stop leaves no attempt open)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        sender = asyncio.create_task(self.sending(stop))
        try:
            await super().run(stop)
        finally:
            await sender
            await self.settle()
            await self.pusher.aclose()


async def serve(env: dict[str, str], stop: asyncio.Event | None = None) -> None:
    """Run the notifier until ``stop`` (else SIGINT or SIGTERM)."""
    settings = Settings.from_env(env)
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    await connection.ensure_stream_async()
    stop = stop or stop_on_signals()
    notifier = Notifier(connection, settings)
    where = f"SMTP {settings.smtp.host}:{settings.smtp.port}" if settings.smtp.host else "no SMTP server (SMTP_HOST)"
    print(
        f"notifier: sending email through {where}; push {'on' if settings.push.private_key else 'off (no VAPID key)'}",
        flush=True,
    )
    try:
        await notifier.run(stop)
    finally:
        await connection.aclose()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """The notifier until ``stop``, beside the other services (`jobstream run workers`)."""
    await serve(env, stop)


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(prog="python -m notifier", description="Deliver emails and push alerts.")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    run_plainly("jobstream run notifier", serve(dict(os.environ)))
