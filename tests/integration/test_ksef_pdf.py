"""A Polish invoice's PDF rendered again once KSeF has answered: given an issued and rendered
invoice, when KSeF accepts it (or it is issued offline), then the document writer stores a
PDF of its own whose KOD I carries the hash of the FA(3) file KSeF was sent and is labelled
with the KSeF number (or OFFLINE), once, the first rendering kept as its hash says."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pypdf
import zxingcpp
from msgspec.structs import replace

from events.contract import InvoiceDocumentStored, InvoiceIssued, KsefAccepted, KsefDocumentPrepared, KsefIssuedOffline
from events.jetstream import NatsConnection, StreamSettings
from invoicer.invoicing import Invoicer
from invoicer.pricing import Seller
from invoicer.settings import Settings
from invoicer.writer import DocumentWriter
from tests.integration.conftest import Api, stored
from tests.integration.ksef_steps import NIP, append, completed_jobs, ksef_number, polish_customer, prepared

SENT_SHA256 = "ab" * 32  # what KsefDocumentPrepared says KSeF was sent


async def issue(env: dict[str, str]) -> None:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await Invoicer(connection, Settings(seller=Seller(vat_id=f"PL{NIP}"))).catch_up()
        await DocumentWriter(connection).catch_up()
    finally:
        await connection.aclose()


def polish_invoices(api: Api, env: dict[str, str]) -> list[InvoiceIssued]:
    """A Polish seller's invoice, with its NIP, issued and rendered by the real invoicer."""
    completed_jobs(api, 1, polish_customer(api))
    asyncio.run(issue(env))
    (issued,) = stored(api.jobstream, InvoiceIssued)
    return issued


async def catch_up_and_read(env: dict[str, str], name: str) -> bytes:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        writer = DocumentWriter(connection)
        await writer.catch_up()
        await writer.catch_up()  # again, as after a restart: nothing rendered twice
        return (await (await connection.documents()).get(name)).data or b""
    finally:
        await connection.aclose()


def code_and_text(pdf: bytes) -> tuple[list[str], str]:
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    codes = [c.text for image in page.images for c in zxingcpp.read_barcodes(image.image)]
    return codes, page.extract_text()


def pdfs(api: Api) -> list[InvoiceDocumentStored]:
    (renderings,) = stored(api.jobstream, InvoiceDocumentStored)
    return [r for r in renderings if r.media_type == "application/pdf"]


def test_once_accepted_the_pdf_carries_the_ksef_number_under_the_code_of_the_file_sent(
    api: Api, stream_env: dict[str, str]
) -> None:
    (invoice,) = polish_invoices(api, stream_env)
    [first] = pdfs(api)
    append(api.jobstream, stream_env, invoice.id, replace_hash(prepared(invoice)))
    number = ksef_number(invoice)
    append(
        api.jobstream,
        stream_env,
        invoice.id,
        KsefAccepted(id=invoice.id, ksef_number=number, accepted_at=datetime.now(UTC) - timedelta(seconds=2)),
    )
    name = f"invoices/{invoice.id}.ksef.pdf"
    pdf = asyncio.run(catch_up_and_read(stream_env, name))
    assert [p.name for p in pdfs(api)] == [first.name, name]  # stored once, the first kept
    assert hashlib.sha256(pdf).hexdigest() == pdfs(api)[-1].sha256
    codes, text = code_and_text(pdf)
    digest = base64.urlsafe_b64encode(bytes.fromhex(SENT_SHA256)).rstrip(b"=").decode()
    assert codes == [f"https://qr-test.ksef.mf.gov.pl/invoice/{NIP}/{invoice.issue_date:%d-%m-%Y}/{digest}"]
    assert number in text and "OFFLINE" not in text


def test_issued_offline_the_pdf_says_offline(api: Api, stream_env: dict[str, str]) -> None:
    (invoice,) = polish_invoices(api, stream_env)
    append(api.jobstream, stream_env, invoice.id, replace_hash(prepared(invoice)))
    append(
        api.jobstream,
        stream_env,
        invoice.id,
        KsefIssuedOffline(
            id=invoice.id, mode="unavailable", reason="KSeF did not answer", deadline=datetime.now(UTC) + timedelta(1)
        ),
    )
    pdf = asyncio.run(catch_up_and_read(stream_env, f"invoices/{invoice.id}.offline.pdf"))
    codes, text = code_and_text(pdf)
    assert len(codes) == 1 and "OFFLINE" in text
    assert [p.name for p in pdfs(api)][-1] == f"invoices/{invoice.id}.offline.pdf"


def replace_hash(event: KsefDocumentPrepared) -> KsefDocumentPrepared:
    return replace(event, fa3_sha256=SENT_SHA256)
