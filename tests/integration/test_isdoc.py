"""A Czech seller's job, completed, invoiced and credited on a real nats-server: the writer
stores an ISDOC beside the PDF and the UBL, the read API serves it to the office, and the
customer's email (through a real SMTP server) carries it beside the PDF."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from aiosmtpd.controller import Controller

from events.contract import Address, CreditNoteDocumentStored, CreditNoteIssued, InvoiceDocumentStored, InvoiceIssued
from events.jetstream import NatsConnection, StreamSettings
from invoicer.invoicing import Invoicer
from invoicer.pricing import Seller
from invoicer.settings import Settings as InvoicerSettings
from invoicer.writer import DocumentWriter
from notifier.delivery import SmtpSettings
from notifier.service import Notifier
from notifier.service import Settings as NotifierSettings
from tests.integration.conftest import Api, read_side, stored
from tests.receivers import Mailbox, free_port

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
NS = {"i": "http://isdoc.cz/namespace/2013"}
CZECH_SELLER = Seller(
    name="Instalace Dvořák s.r.o.",
    vat_id="CZ27082440",
    address=Address(street="Vinohradská 1511/230", city="Praha", postal_code="100 00", country="CZ"),
    email="fakturace@dvorak.example",
    bank_account="CZ65 0800 0000 1920 0014 5399",
    timezone="Europe/Prague",
    material_vat_rate=Decimal(21),
)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield mailbox, controller.port
    finally:
        controller.stop()


def czech_job_invoiced(api: Api) -> str:
    """A Czech household's boiler repair at 21 % with a part at 12 %: the job, completed."""
    prices = api.ok("/price-lists", {"name": "Ceník", "currency": "CZK", "is_default": True})["id"]
    for activity in (
        {"code": "repair", "name": "Oprava kotle", "unit": "hour", "rate": "900.00", "vat_rate": "21"},
        {"code": "valve", "name": "Ventil", "unit": "piece", "rate": "333.33", "vat_rate": "12"},
    ):
        api.ok(f"/price-lists/{prices}/activities", activity)
    tom = api.technician("tom")
    customer = api.ok(
        "/customers",
        {
            "name": "Jana Svobodová",
            "currency": "CZK",
            "language": "cs",
            "email": "jana@svobodova.example",
            "billing_address": {"street": "Lidická 8", "city": "Brno", "postal_code": "602 00", "country": "CZ"},
        },
    )["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 70}, who="tom")
    api.ok(f"/jobs/{job}/materials", {"code": "valve", "description": "Ventil", "quantity": 3}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Ventil vyměněn"}, who="tom")
    return job


async def invoice_and_render(env: dict[str, str]) -> None:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await Invoicer(connection, InvoicerSettings(seller=CZECH_SELLER)).catch_up()
        await DocumentWriter(connection).catch_up()
    finally:
        await connection.aclose()


async def notify(env: dict[str, str], port: int) -> None:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    settings = NotifierSettings(smtp=SmtpSettings(host="127.0.0.1", port=port, sender="Faktury <f@dvorak.example>"))
    notifier = Notifier(connection, settings)
    try:
        await notifier.catch_up()
        await notifier.send_due()
        await notifier.settle()
    finally:
        await notifier.pusher.aclose()
        await connection.aclose()


def recapitulation(data: bytes) -> tuple[list[tuple[Decimal, Decimal, Decimal]], Decimal, Decimal]:
    """(rate, taxable, VAT) per rate, the VAT total and the amount payable, read back."""
    root = ET.fromstring(data)

    def number(element: ET.Element, path: str) -> Decimal:
        found = element.find(path, NS)
        assert found is not None and found.text, path
        return Decimal(found.text)

    per_rate = [
        (number(s, "i:TaxCategory/i:Percent"), number(s, "i:TaxableAmount"), number(s, "i:TaxAmount"))
        for s in root.findall("i:TaxTotal/i:TaxSubTotal", NS)
    ]
    return per_rate, number(root, "i:TaxTotal/i:TaxAmount"), number(root, "i:LegalMonetaryTotal/i:PayableAmount")


def test_a_czech_invoice_and_its_credit_note_have_an_isdoc_stored_served_and_emailed(
    api: Api, stream_env: dict[str, str], read_model_url: str, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    job = czech_job_invoiced(api)
    asyncio.run(invoice_and_render(stream_env))
    ((invoice,),) = stored(api.jobstream, InvoiceIssued)
    api.ok(f"/invoices/{invoice.id}/credit-notes", {"reason": "Zakázka zrušena"})
    asyncio.run(invoice_and_render(stream_env))  # the credit note, issued and rendered
    asyncio.run(notify(stream_env, port))
    (note,), invoice_stored, note_stored = stored(
        api.jobstream, CreditNoteIssued, InvoiceDocumentStored, CreditNoteDocumentStored
    )
    assert sorted(e.name.rpartition(".")[2] for e in invoice_stored) == ["isdoc", "pdf", "xml"]
    assert sorted(e.name.rpartition(".")[2] for e in note_stored) == ["isdoc", "pdf", "xml"]
    assert len({d.rate for d in invoice.vat}) == 2  # 21 % and 12 %

    with read_side(api, stream_env, read_model_url) as reader:
        served = reader.get(f"/invoices/{invoice.id}.isdoc")
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == "application/x-isdoc+xml"
        filename = invoice.number.replace("/", "-") + ".isdoc"
        assert served.headers["content-disposition"] == f'inline; filename="{filename}"'
        credit = reader.get(f"/credit-notes/{note.id}.isdoc")
        assert credit.status_code == 200, credit.text
        page = reader.get(f"/jobs/{job}")
        assert f"/invoices/{invoice.id}.isdoc" in page.text
        listing = reader.get("/invoices")
        assert f"/invoices/{invoice.id}.isdoc" in listing.text
        as_technician = reader.get(
            f"/invoices/{invoice.id}.isdoc", headers={"Authorization": f"Bearer {api.tokens['tom']}"}
        )
        assert as_technician.status_code == 403

    # the very bytes stored, with the invoice's amounts to the cent
    (isdoc_event,) = [e for e in invoice_stored if e.name.endswith(".isdoc")]
    assert hashlib.sha256(served.content).hexdigest() == isdoc_event.sha256
    assert recapitulation(served.content) == (
        [(v.rate, v.taxable, v.vat) for v in invoice.vat],
        invoice.vat_total,
        invoice.gross_total,
    )
    assert recapitulation(credit.content) == (
        [(v.rate, v.taxable, v.vat) for v in note.vat],
        note.vat_total,
        note.gross_total,
    )

    # the customer's emails: the invoice's and the credit note's, each with its ISDOC beside the PDF
    mails = {mail["Subject"]: mail for mail in mailbox.messages}
    assert len(mails) == 2, list(mails)
    for mail, document in zip(
        sorted(mails.values(), key=lambda m: note.number in m["Subject"]), (served.content, credit.content), strict=True
    ):
        assert mail["To"] == "jana@svobodova.example"
        attached = {part.get_filename(): part.get_payload(decode=True) for part in mail.iter_attachments()}
        assert sorted(name.rpartition(".")[2] for name in attached) == ["isdoc", "pdf", "xml"]
        assert next(data for name, data in attached.items() if name.endswith(".isdoc")) == document

    if VALIDATOR.exists():
        paths = []
        for name, data in (("invoice", served.content), ("credit-note", credit.content)):
            (tmp_path / f"{name}.isdoc").write_bytes(data)
            paths.append(str(tmp_path / f"{name}.isdoc"))
        result = subprocess.run(
            [sys.executable, str(VALIDATOR), "--profile", "isdoc", "--json", "--strict", *paths],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert [r["findings"] for r in json.loads(result.stdout)] == [[], []]


def test_a_polish_seller_s_invoice_has_no_isdoc(api: Api, stream_env: dict[str, str], read_model_url: str) -> None:
    czech_job_invoiced(api)

    async def polish() -> None:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(stream_env))
        try:
            await Invoicer(connection, InvoicerSettings()).catch_up()  # the default seller is Polish
            await DocumentWriter(connection).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(polish())
    ((invoice,), documents) = stored(api.jobstream, InvoiceIssued, InvoiceDocumentStored)
    assert sorted(e.name.rpartition(".")[2] for e in documents) == ["pdf", "xml"]
    with read_side(api, stream_env, read_model_url) as reader:
        missing = reader.get(f"/invoices/{invoice.id}.isdoc")
        assert missing.status_code == 404 and "only a Czech seller's invoices" in missing.json()["detail"]
