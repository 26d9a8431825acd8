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
    MessageDelivered,
    MessageQueued,
    PaymentReminderDue,
    PushSubscriptionRemoved,
    RedeliveryRequested,
    decode_event,
    recipient_id,
)
from events.jetstream import NatsConnection, StreamSettings, run_plainly
from notifier.compose import (
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
TRIGGERS = JOB_TRIGGERS | {"InvoiceDocumentStored", "CreditNoteDocumentStored", "PaymentReminderDue"}
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
        )


def message_id_of(event_id: UUID, channel: str, recipient: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"{event_id}:{channel}:{recipient}")


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
        touched = []
        for message in outgoing:
            message_id = message_id_of(event.meta.event_id, message.channel, message.recipient)
            queued = msgspec.structs.replace(message, id=message_id, cause_position=notification.id)
            touched.append((message_id, Stored([], 0, ""), [queued]))
        await self.save(notification, touched)
        for message_id, _, (queued,) in touched:
            self._track(message_id, queued)  # type: ignore[arg-type]
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
        if isinstance(event, InvoiceDocumentStored | CreditNoteDocumentStored):
            if event.media_type != "application/pdf":
                return []  # one email per document, sent when its PDF is stored (the XML is in the same batch)
            stored = await self.load(event.id)
            issued = next(e for e in stored.events if isinstance(e, InvoiceIssued | CreditNoteIssued))
            names = [e.name for e in stored.events if isinstance(e, InvoiceDocumentStored | CreditNoteDocumentStored)]
            if isinstance(issued, CreditNoteIssued):
                return [credit_note_email(issued, names)]
            return [invoice_email(issued, names)]
        if isinstance(event, PaymentReminderDue):
            stored = await self.load(event.id)
            issued = next(e for e in stored.events if isinstance(e, InvoiceIssued))
            names = [e.name for e in stored.events if isinstance(e, InvoiceDocumentStored)]
            recipient = event.escalate_to if "@" in event.escalate_to else self.settings.office_email
            return [reminder_email(event, issued, names, recipient, self.settings.dashboard_url)]
        return []

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
            id = stored.originator_id
            pending = self.pending.get(id)  # type: ignore[arg-type]
            match event:
                case MessageQueued():
                    self._track(id, event)  # type: ignore[arg-type]
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
                        self.pending[id] = Pending(queued=msgspec.structs.replace(queued, not_before=None), due=now)  # type: ignore[index]
                case DeliveryAttempted() if pending is not None:
                    pending.state, pending.attempt = "attempting", event.attempt
                    pending.due = event.lease_until
                case DeliveryFailed() if pending is not None and event.retry_at is not None:
                    pending.state, pending.attempt, pending.due = "retrying", event.attempt, event.retry_at
                case MessageDelivered() | DeliveryFailed() | DeliveryUncertain():
                    self.pending.pop(id, None)  # type: ignore[arg-type]

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
