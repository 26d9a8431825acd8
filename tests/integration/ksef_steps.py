"""Polish invoices issued for real, and their way through KSeF appended as the submitting
consumer appends it: to the document's KSeF aggregate (``ksef_id``), each event naming the
document, sealed like any event."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from events.contract import (
    Event,
    InvoiceIssued,
    KsefAccepted,
    KsefDocumentPrepared,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
    event_hash,
)
from events.contract.ksef import ksef_id
from events.jetstream import NatsConnection, StreamSettings
from events.wire import seal
from services.application import JobstreamApp
from tests.integration.conftest import Api, stored

NIP = "5260250274"


def polish_customer(api: Api, email: str = "") -> str:
    body: dict[str, Any] = {
        "name": "Piekarnia Kowalski",
        "currency": "PLN",
        "language": "pl",
        "vat_id": "PL7740001454",
        "billing_address": {"street": "ul. Długa 3", "city": "Kraków", "postal_code": "31-147", "country": "PL"},
    }
    if email:
        body["email"] = email
    return api.ok("/customers", body)["id"]  # type: ignore[no-any-return]


def completed_jobs(api: Api, count: int, customer: str) -> list[str]:
    """Billable jobs of a Polish customer, each completed (the seller is Polish by default)."""
    tom: UUID | None = getattr(api, "ksef_technician", None)
    if tom is None:  # the first jobs of this test: the price list and the technician
        prices = api.ok("/price-lists", {"name": "Cennik", "currency": "PLN", "is_default": True})["id"]
        api.ok(
            f"/price-lists/{prices}/activities",
            {"code": "repair", "name": "Naprawa pieca", "unit": "hour", "rate": "120.00", "vat_rate": "23"},
        )
        tom = api.technician("tom")
        api.ksef_technician = tom  # type: ignore[attr-defined]  # the Api fixture knows no KSeF
    jobs = []
    for _ in range(count):
        job = api.scheduled_job(tom, customer)
        api.ok(f"/jobs/{job}/start", {}, who="tom")
        api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 90}, who="tom")
        api.ok(f"/jobs/{job}/complete", {"summary": "Termostat wymieniony"}, who="tom")
        jobs.append(job)
    return jobs


async def invoice_and_render(env: dict[str, str]) -> None:
    from invoicer.invoicing import Invoicer
    from invoicer.settings import Settings
    from invoicer.writer import DocumentWriter

    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await Invoicer(connection, Settings()).catch_up()
        await DocumentWriter(connection).catch_up()
    finally:
        await connection.aclose()


def polish_invoices(api: Api, env: dict[str, str], count: int, email: str = "") -> list[InvoiceIssued]:
    """``count`` Polish invoices issued and rendered by the real invoicer, oldest first."""
    completed_jobs(api, count, polish_customer(api, email))
    asyncio.run(invoice_and_render(env))
    (issued,) = stored(api.jobstream, InvoiceIssued)
    return issued


def append(app: JobstreamApp, env: dict[str, str], document_id: UUID, *events: Event) -> int:
    """KSeF's events for the document (each names it), appended to its KSeF aggregate
    (``ksef_id``) at its next version, as the KSeF consumer appends them; the stream
    position of the last."""
    aggregate = ksef_id(document_id)
    before = app.history(aggregate)
    sealed = seal(
        aggregate,
        before[-1].originator_version if before else 0,
        event_hash(before[-1].state) if before else "",
        list(events),
        now=datetime.now(UTC),
        actor_id="invoicer-ksef",
        actor_role="system",
        command_id=f"ksef:{uuid.uuid4()}",
        correlation_id=str(document_id),
    )
    return app.recorder.insert_events(sealed)[-1]  # type: ignore[no-any-return]


def prepared(invoice: InvoiceIssued) -> KsefDocumentPrepared:
    return KsefDocumentPrepared(
        id=invoice.id,
        document_kind="invoice",
        number=invoice.number,
        seller_nip=NIP,
        issue_date=invoice.issue_date,
        fa3_name=f"ksef/{invoice.id}.xml",
        fa3_sha256="0" * 64,
        fa3_size=1000,
    )


def ksef_number(invoice: InvoiceIssued) -> str:
    return f"{NIP}-{invoice.issue_date:%Y%m%d}-{invoice.id.hex[:12].upper()}-AB"


async def store_document(env: dict[str, str], name: str, data: bytes) -> None:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await (await connection.documents()).put(name, data)
    finally:
        await connection.aclose()


UPO = b'<?xml version="1.0" encoding="UTF-8"?><Potwierdzenie><NumerKSeFDokumentu>{number}</NumerKSeFDokumentu></Potwierdzenie>'


def accepted(app: JobstreamApp, env: dict[str, str], invoice: InvoiceIssued, at: datetime | None = None) -> int:
    """Prepared, sent and accepted, its UPO stored: the stream position of the last."""
    number = ksef_number(invoice)
    upo = UPO.replace(b"{number}", number.encode())
    asyncio.run(store_document(env, f"ksef/{invoice.id}-upo.xml", upo))
    append(app, env, invoice.id, prepared(invoice))
    append(app, env, invoice.id, KsefSendStarted(id=invoice.id, attempt=1, session_reference="S-1"))
    append(app, env, invoice.id, KsefSent(id=invoice.id, attempt=1, session_reference="S-1", invoice_reference="R-1"))
    append(
        app,
        env,
        invoice.id,
        KsefAccepted(id=invoice.id, ksef_number=number, accepted_at=at or datetime.now(UTC) - timedelta(seconds=5)),
    )
    return append(
        app,
        env,
        invoice.id,
        KsefUpoStored(
            id=invoice.id,
            upo_name=f"ksef/{invoice.id}-upo.xml",
            upo_sha256=hashlib.sha256(upo).hexdigest(),
            upo_size=len(upo),
        ),
    )
