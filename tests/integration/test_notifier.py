"""The notifier on a real nats-server, with a real SMTP server (aiosmtpd) and a local Web
Push receiver that decrypts what it gets (RFC 8291): each message sent once, failures
retried and then shown to the office, nothing sent twice after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from events.contract import (
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    MessageDelivered,
    MessageQueued,
    RedeliveryRequested,
)
from events.jetstream import NatsConnection, StreamSettings
from invoicer.invoicing import Invoicer
from invoicer.settings import Settings as InvoicerSettings
from invoicer.writer import DocumentWriter
from notifier.delivery import PushSettings, SmtpSettings
from notifier.service import Notifier, Settings
from tests.integration.conftest import Api, stored
from tests.integration.test_read_api import reader  # noqa: F401 - the read API fixture
from tests.receivers import Mailbox, PushReceiver, free_port

settings_of = StreamSettings.from_env  # a service's stream settings from its environment


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield mailbox, controller.port
    finally:
        controller.stop()


def settings(port: int, **extra: Any) -> Settings:
    return Settings(smtp=SmtpSettings(host="127.0.0.1", port=port, sender="Faktury <faktury@demo.example>"), **extra)


async def notify(env: dict[str, str], config: Settings, rounds: int = 1) -> Notifier:
    """One notifier process's life: catch up, deliver what is due, stop cleanly."""
    connection = await NatsConnection.open_on_running_loop(settings_of(env))
    notifier = Notifier(connection, config)
    try:
        for _ in range(rounds):
            await notifier.catch_up()
            await notifier.send_due()
            await notifier.settle()
        return notifier
    finally:
        await notifier.pusher.aclose()
        await connection.aclose()


def invoiced_job(api: Api, env: dict[str, str], email_address: str = "ucetni@novak.example") -> str:
    """A job taken to completion and invoiced, its PDF and XML stored."""
    prices = api.ok("/price-lists", {"name": "Ceník", "currency": "CZK", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Oprava kotle", "unit": "hour", "rate": "900.00", "vat_rate": "21"},
    )
    tom = api.technician("tom")
    contact = {"email": email_address} if email_address else {}
    customer = api.ok(
        "/customers",
        {
            "name": "Novák Stavby",
            "currency": "CZK",
            "language": "cs",
            **contact,
            "billing_address": {"street": "Údolní 12", "city": "Brno", "postal_code": "602 00", "country": "CZ"},
        },
    )["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 60}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Těsnění vyměněno"}, who="tom")

    async def issue() -> None:
        connection = await NatsConnection.open_on_running_loop(settings_of(env))
        try:
            await Invoicer(connection, InvoicerSettings()).catch_up()
            await DocumentWriter(connection).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(issue())
    return job


def test_the_customer_gets_the_invoice_by_email_once_in_their_language(
    api: Api, stream_env: dict[str, str], smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    invoiced_job(api, stream_env)

    asyncio.run(notify(stream_env, settings(port)))
    asyncio.run(notify(stream_env, settings(port)))  # a restart: nothing new to send

    (mail,) = mailbox.messages
    assert mail["To"] == "ucetni@novak.example"
    assert mail["Subject"].startswith("Faktura FV/") and "Částka k úhradě" in mail.get_body().get_content()
    documents = {part.get_filename(): part.get_payload(decode=True) for part in mail.iter_attachments()}
    assert sorted(documents) == [f for f in sorted(documents) if f.endswith((".pdf", ".xml"))] and len(documents) == 2
    pdf = next(data for name, data in documents.items() if name.endswith(".pdf"))
    assert pdf.startswith(b"%PDF")
    queued_all, delivered_all, attempted_all = stored(api.jobstream, MessageQueued, MessageDelivered, DeliveryAttempted)
    (queued,) = [q for q in queued_all if q.channel == "email"]
    (delivered,) = [d for d in delivered_all if d.id == queued.id]
    (attempted,) = [a for a in attempted_all if a.id == queued.id]
    assert queued.purpose == "invoice" and queued.language == "cs" and queued.recipient == "ucetni@novak.example"
    assert "accepted by 127.0.0.1" in delivered.detail and attempted.attempt == 1
    assert mail["Message-ID"] == f"<{queued.id}@jobstream>"
    # the attachment is the very document the invoicer stored
    from events.contract import InvoiceDocumentStored

    ((pdf_stored, _),) = stored(api.jobstream, InvoiceDocumentStored)
    assert hashlib.sha256(pdf).hexdigest() == pdf_stored.sha256


def test_a_failing_mail_server_is_retried_then_shown_to_the_office_who_can_send_again(
    api: Api, stream_env: dict[str, str], smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    invoiced_job(api, stream_env)
    nobody = free_port()  # nothing listens here

    asyncio.run(notify(stream_env, settings(nobody, retries=(0.0,)), rounds=3))

    (queued,) = [q for q in stored(api.jobstream, MessageQueued)[0] if q.channel == "email"]
    failures = [f for f in stored(api.jobstream, DeliveryFailed)[0] if f.id == queued.id]
    assert [f.retry_at is not None for f in failures] == [True, False]  # one retry, then given up
    assert "unreachable" in failures[-1].error and not mailbox.messages

    refused = api.post(f"/messages/{queued.id}/redeliver", {}, who="tom")
    assert refused.status_code == 403
    api.ok(f"/messages/{queued.id}/redeliver", {"reason": "mail server fixed"})
    again = api.post(f"/messages/{queued.id}/redeliver", {})
    assert again.status_code == 409  # queued again already: not twice

    asyncio.run(notify(stream_env, settings(port)))
    (mail,) = mailbox.messages
    assert mail["To"] == "ucetni@novak.example"
    delivered, (requested,) = stored(api.jobstream, MessageDelivered, RedeliveryRequested)
    assert requested.id == queued.id and queued.id in {d.id for d in delivered}


def test_a_customer_without_an_email_address_is_shown_not_retried(
    api: Api, stream_env: dict[str, str], smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    invoiced_job(api, stream_env, email_address="")
    asyncio.run(notify(stream_env, settings(port)))
    (failed,) = [f for f in stored(api.jobstream, DeliveryFailed)[0] if "email" in f.error]
    assert failed.retry_at is None and "no email address" in failed.error and not mailbox.messages


def test_a_sender_stopped_mid_attempt_never_sends_twice(
    api: Api, stream_env: dict[str, str], smtp: tuple[Mailbox, int]
) -> None:
    """The crash window: the attempt recorded, the outcome not. The next sender cannot know
    whether the server took it, so it does not send again: the office sees it as uncertain."""
    mailbox, port = smtp
    invoiced_job(api, stream_env)
    config = settings(port, lease=0.0)

    async def crash_mid_attempt() -> None:
        connection = await NatsConnection.open_on_running_loop(settings_of(stream_env))
        notifier = Notifier(connection, config)
        try:
            await notifier.catch_up()  # queued, not yet sent
            (id,) = [id for id, p in notifier.pending.items() if p.queued.channel == "email"]
            head = await notifier.load(id)
            await notifier.save(
                None,
                [
                    (
                        id,
                        head,
                        [DeliveryAttempted(id=id, attempt=1, lease_until=datetime.now(UTC) - timedelta(seconds=1))],
                    )
                ],
            )
        finally:
            await notifier.pusher.aclose()
            await connection.aclose()

    asyncio.run(crash_mid_attempt())
    asyncio.run(notify(stream_env, config))
    assert not mailbox.messages
    (uncertain,), delivered = stored(api.jobstream, DeliveryUncertain, MessageDelivered)
    assert uncertain.attempt == 1 and uncertain.id not in {d.id for d in delivered}
    api.ok(f"/messages/{uncertain.id}/redeliver", {"reason": "the customer says it never came"})
    asyncio.run(notify(stream_env, config))
    assert len(mailbox.messages) == 1


# --- push --------------------------------------------------------------------------------


@pytest.fixture
def push_receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver()
    with receiver.serving():
        yield receiver


def vapid_key() -> str:
    from py_vapid import Vapid02

    vapid = Vapid02()
    vapid.generate_keys()
    return vapid.private_pem().decode()


def test_a_technician_gets_an_encrypted_push_when_a_job_is_assigned(
    api: Api, stream_env: dict[str, str], push_receiver: PushReceiver
) -> None:
    tom = api.technician("tom")
    api.ok("/me/push-subscriptions", push_receiver.subscription(), who="tom")
    config = Settings(push=PushSettings(private_key=vapid_key()), app_url="http://127.0.0.1:8000")
    job = api.scheduled_job(tom)

    asyncio.run(notify(stream_env, config))
    asyncio.run(notify(stream_env, config))  # restarted: not pushed again

    (alert,) = push_receiver.received
    assert alert["title"] == "New job: Boiler leaks" and alert["url"] == f"http://127.0.0.1:8000/tech/#/jobs/{job}"
    assert alert["path"] == "/push/device-1"
    (delivered,) = stored(api.jobstream, MessageDelivered)[0]
    assert delivered.detail == "push service: 201"


def test_a_push_is_signed_with_a_vapid_token_that_holds_twelve_hours(
    api: Api, stream_env: dict[str, str], push_receiver: PushReceiver
) -> None:
    """RFC 8292 allows at most 24 h, on the push service's clock: a token signed for exactly
    24 h is refused by a service whose clock runs behind. Ours holds 12 h from signing."""
    tom = api.technician("tom")
    api.ok("/me/push-subscriptions", push_receiver.subscription(), who="tom")
    api.scheduled_job(tom)
    before = int(time.time())
    asyncio.run(notify(stream_env, Settings(push=PushSettings(private_key=vapid_key()))))
    after = int(time.time())

    (claims,) = push_receiver.claims
    assert before + 12 * 3600 <= claims["exp"] <= after + 12 * 3600, (before, claims, after)
    assert claims["aud"] == f"http://127.0.0.1:{push_receiver.port}"


def test_alerts_follow_each_users_choice_and_wait_out_quiet_hours(
    api: Api, stream_env: dict[str, str], push_receiver: PushReceiver
) -> None:
    tom, eva = api.technician("tom"), api.technician("eva")
    for who in ("tom", "eva"):
        api.ok("/me/push-subscriptions", push_receiver.subscription(f"/push/{who}"), who=who)
    # tom wants no assignment alerts; eva is in her quiet hours for the next minutes
    api.ok("/me/notifications", {"alerts": ["job_cancelled"]}, who="tom")
    now = datetime.now(UTC)
    quiet_from = (now - timedelta(minutes=1)).strftime("%H:%M")
    quiet_until = (now + timedelta(minutes=3)).strftime("%H:%M")
    api.ok(
        "/me/notifications",
        {"alerts": ["job_assigned"], "quiet_from": quiet_from, "quiet_until": quiet_until, "timezone": "UTC"},
        who="eva",
    )
    bad = api.post(
        "/me/notifications", {"alerts": ["job_assigned"], "quiet_from": "25:00", "quiet_until": "07:00"}, who="eva"
    )
    assert bad.status_code == 422 and "quiet_from" in bad.text
    unknown_zone = api.post("/me/notifications", {"alerts": [], "timezone": "Mars/Olympus"}, who="eva")
    assert unknown_zone.status_code == 422 and "timezone" in unknown_zone.text
    api.scheduled_job(tom)
    api.scheduled_job(eva)

    notifier = asyncio.run(notify(stream_env, Settings(push=PushSettings(private_key=vapid_key()))))
    assert push_receiver.received == []  # tom opted out; eva's waits
    (held,) = notifier.pending.values()
    assert held.queued.recipient == "eva" and now + timedelta(minutes=1) < held.due <= now + timedelta(minutes=3)


def test_a_subscription_the_push_service_says_is_gone_is_forgotten(
    api: Api, stream_env: dict[str, str], push_receiver: PushReceiver
) -> None:
    from events.contract import PushSubscriptionRemoved

    tom = api.technician("tom")
    api.ok("/me/push-subscriptions", push_receiver.subscription(), who="tom")
    push_receiver.status = 410
    api.scheduled_job(tom)
    asyncio.run(notify(stream_env, Settings(push=PushSettings(private_key=vapid_key()))))
    (removed,), (delivered,) = stored(api.jobstream, PushSubscriptionRemoved, MessageDelivered)
    assert removed.endpoint.endswith("/push/device-1") and "unsubscribed" in delivered.detail


def test_push_subscriptions_are_validated(api: Api) -> None:
    api.technician("tom")
    for body, field in [
        ({"endpoint": "ftp://x/y", "keys": {"p256dh": "A" * 87, "auth": "B" * 22}}, "endpoint"),
        ({"endpoint": "https://push.example/1", "keys": {"p256dh": "short", "auth": "B" * 22}}, "p256dh"),
    ]:
        response = api.post("/me/push-subscriptions", body, who="tom")
        assert response.status_code == 422 and field in response.text, response.text


def test_the_office_is_alerted_once_when_an_urgent_jobs_sla_is_at_risk(
    api: Api, stream_env: dict[str, str], push_receiver: PushReceiver
) -> None:
    from services.recurring import Scheduler

    api.ok("/me/push-subscriptions", push_receiver.subscription("/push/olga"), who="office")
    deadline = datetime.now(UTC) + timedelta(minutes=20)
    job = api.ok(
        "/jobs",
        {
            "customer_id": api.customer(),
            "job_type": "repair",
            "description": "Server room too hot",
            "priority": "urgent",
            "sla_deadline": deadline.isoformat(),
        },
    )["id"]
    config = Settings(push=PushSettings(private_key=vapid_key()), dashboard_url="http://127.0.0.1:8001")
    for _ in range(2):  # the scheduler and the notifier each run twice (restarted): one alert
        api.jobstream.run(Scheduler(api.jobstream, sla_warn_minutes=60).run_once())
        asyncio.run(notify(stream_env, config))
    (alert,) = push_receiver.received
    assert alert["title"] == "SLA at risk: Server room too hot" and alert["path"] == "/push/olga"
    assert "min left" in alert["body"] and alert["url"] == f"http://127.0.0.1:8001/jobs/{job}"


def test_the_dashboard_shows_each_invoices_email_and_what_needs_sending_again(
    api: Api,
    stream_env: dict[str, str],
    smtp: tuple[Mailbox, int],
    projectors: Any,
    reader: Any,  # noqa: F811 - the read API fixture imported above
) -> None:
    mailbox, port = smtp
    invoiced_job(api, stream_env)
    asyncio.run(notify(stream_env, settings(free_port(), retries=(0.0,)), rounds=3))  # nothing listens: given up
    (queued,) = [q for q in stored(api.jobstream, MessageQueued)[0] if q.channel == "email"]
    office = api.headers("office")
    position = api.jobstream.recorder.max_notification_id()

    failed = reader.get("/api/messages", params={"state": "failed", "position": position}, headers=office).json()
    assert [(m["id"], m["state"], m["attempts"]) for m in failed] == [(str(queued.id), "failed", 2)]
    assert "unreachable" in failed[0]["detail"]
    page = reader.get("/messages", headers=office).text
    assert f'data-message="{queued.id}"' in page and "Send again" in page
    invoices = reader.get("/invoices", headers=office).text
    assert 'class="status failed"' in invoices and "ucetni@novak.example" in invoices
    assert reader.get("/api/messages", params={"state": "lost"}, headers=office).status_code == 422
    assert reader.get("/messages", headers=api.headers("tom")).status_code == 403

    # sent again (as the page's button asks the command API), and delivered: the invoice says so
    api.ok(f"/messages/{queued.id}/redeliver", {"reason": "mail server fixed"})
    asyncio.run(notify(stream_env, settings(port)))
    assert len(mailbox.messages) == 1
    position = api.jobstream.recorder.max_notification_id()
    assert reader.get("/api/messages", params={"state": "failed", "position": position}, headers=office).json() == []
    assert 'class="status delivered"' in reader.get("/invoices", headers=office).text
