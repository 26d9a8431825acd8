"""A Polish document's email waits for its KSeF number: the real invoicer, document writer
and notifier on a real nats-server, with a real SMTP server. No email while KSeF has not
answered; exactly one once it has, with the rendering stored after the answer."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from events.contract import (
    InvoiceDocumentStored,
    KsefAccepted,
    KsefHeld,
    KsefIssuedOffline,
    KsefSendStarted,
    KsefSent,
    MessageQueued,
)
from events.jetstream import NatsConnection, StreamSettings
from invoicer.writer import DocumentWriter
from tests.integration.conftest import Api, stored
from tests.integration.ksef_steps import append, ksef_number, polish_invoices, prepared
from tests.integration.test_notifier import notify, settings, smtp  # noqa: F401 - the SMTP server fixture
from tests.receivers import Mailbox

EMAIL = "ksiegowa@piekarnia.example"


def render(env: dict[str, str]) -> None:
    """The document writer catching up, as it runs beside the others."""

    async def run() -> None:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        try:
            await DocumentWriter(connection).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(run())


def emails(api: Api) -> list[MessageQueued]:
    (queued,) = stored(api.jobstream, MessageQueued)
    return [q for q in queued if q.channel == "email"]


def test_the_customers_email_waits_for_the_ksef_number_and_goes_once(
    api: Api,
    stream_env: dict[str, str],
    smtp: tuple[Mailbox, int],  # noqa: F811 - the SMTP server fixture imported above
) -> None:
    mailbox, port = smtp
    config = settings(port, ksef=True)
    (invoice,) = polish_invoices(api, stream_env, 1, email=EMAIL)
    asyncio.run(notify(stream_env, config))  # the PDF is stored, KSeF has not been asked yet
    assert mailbox.messages == [] and emails(api) == []

    app = api.jobstream
    append(app, stream_env, invoice.id, prepared(invoice))
    append(app, stream_env, invoice.id, KsefSendStarted(id=invoice.id, attempt=1))
    append(
        app, stream_env, invoice.id, KsefSent(id=invoice.id, attempt=1, session_reference="S", invoice_reference="R")
    )
    render(stream_env)
    asyncio.run(notify(stream_env, config))  # sent, not yet accepted
    assert mailbox.messages == [] and emails(api) == []

    accepted_at = datetime.now(UTC) - timedelta(seconds=3)
    append(
        app,
        stream_env,
        invoice.id,
        KsefAccepted(id=invoice.id, ksef_number=ksef_number(invoice), accepted_at=accepted_at),
    )
    render(stream_env)  # the writer renders it again with its KSeF number, where it does
    asyncio.run(notify(stream_env, config))
    asyncio.run(notify(stream_env, config))  # a restart: nothing sent twice
    render(stream_env)
    asyncio.run(notify(stream_env, config))

    (mail,) = mailbox.messages
    assert mail["To"] == EMAIL and invoice.number in mail["Subject"]
    (queued,) = emails(api)
    assert queued.about_id == invoice.id
    pdf = next(
        part.get_payload(decode=True) for part in mail.iter_attachments() if part.get_filename().endswith(".pdf")
    )
    (renderings,) = stored(api.jobstream, InvoiceDocumentStored)
    first_pdf, latest_pdf = [r for r in renderings if r.media_type == "application/pdf"]
    assert latest_pdf.name.endswith("ksef.pdf") and first_pdf.name != latest_pdf.name  # rendered after KSeF's answer
    assert hashlib.sha256(pdf).hexdigest() == latest_pdf.sha256  # the one the email carries


def test_an_invoice_issued_offline_is_emailed_and_a_held_one_is_not(
    api: Api,
    stream_env: dict[str, str],
    smtp: tuple[Mailbox, int],  # noqa: F811 - the SMTP server fixture imported above
) -> None:
    mailbox, port = smtp
    config = settings(port)  # KSeF not configured here: the documents' KSeF aggregates say it
    offline, held = polish_invoices(api, stream_env, 2, email=EMAIL)
    app = api.jobstream
    for invoice in (offline, held):
        append(app, stream_env, invoice.id, prepared(invoice))
    deadline = datetime.now(UTC) + timedelta(days=1)
    append(
        app,
        stream_env,
        offline.id,
        KsefIssuedOffline(id=offline.id, mode="unavailable", reason="KSeF timed out", deadline=deadline),
    )
    append(app, stream_env, held.id, KsefHeld(id=held.id, field="Podmiot2/NIP", reason="not a valid NIP"))
    render(stream_env)
    asyncio.run(notify(stream_env, config))
    asyncio.run(notify(stream_env, config))

    assert [q.about_id for q in emails(api)] == [offline.id]
    (mail,) = mailbox.messages
    assert offline.number in mail["Subject"]
    names = [part.get_filename() for part in mail.iter_attachments()]
    assert len([n for n in names if n.endswith(".pdf")]) == 1  # the PDF marked OFFLINE, once
