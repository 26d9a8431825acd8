"""A German seller's job for a public buyer, on a real nats-server: the customer registered
through the command API with its Leitweg-ID and electronic address, the job completed, and
the stored UBL routes the invoice by them (BT-10, BT-49) as XRechnung."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from xml.etree import ElementTree as ET

from events.contract import Address, Contact, InvoiceDocumentStored, InvoiceIssued
from events.jetstream import NatsConnection, StreamSettings
from invoicer.einvoice import XRECHNUNG
from invoicer.invoicing import Invoicer
from invoicer.pricing import Seller
from invoicer.settings import Settings as InvoicerSettings
from invoicer.writer import DocumentWriter
from tests.integration.conftest import Api, stored

UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
GERMAN_SELLER = Seller(
    name="Müller Haustechnik GmbH",
    vat_id="DE136695976",
    address=Address(street="Hauptstraße 5", city="Dresden", postal_code="01067", country="DE"),
    email="rechnung@mueller.example",
    bank_account="DE89 3704 0044 0532 0130 00",
    timezone="Europe/Berlin",
    material_vat_rate=Decimal(19),
    contact=Contact(name="Anna Müller", phone="+49 351 1234567", electronic_address="rechnung@mueller.example"),
)


def test_a_public_buyer_s_invoice_is_routed_by_its_leitweg_id(api: Api, stream_env: dict[str, str]) -> None:
    prices = api.ok("/price-lists", {"name": "Preisliste", "currency": "EUR", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Reparatur", "unit": "hour", "rate": "85.00", "vat_rate": "19"},
    )
    refused = api.client.post(
        "/customers",
        json={
            "name": "Stadt Dresden",
            "billing_address": {"street": "Rathausplatz 1", "city": "Dresden", "postal_code": "01067", "country": "DE"},
            "electronic_address": "0204 991",
        },
        headers=api.headers("office"),
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "electronic_address"
    customer = api.ok(
        "/customers",
        {
            "name": "Stadt Dresden",
            "currency": "EUR",
            "language": "de",
            "email": "rechnungen@dresden.example",
            "buyer_reference": "991-12345-67",
            "billing_address": {"street": "Rathausplatz 1", "city": "Dresden", "postal_code": "01067", "country": "DE"},
        },
    )["id"]
    api.ok(f"/customers/{customer}/details", {"electronic_address": "0204:991-12345-67"})
    tom = api.technician("tom")
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 90}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Heizung repariert"}, who="tom")

    async def invoice_and_render() -> bytes:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(stream_env))
        try:
            await Invoicer(connection, InvoicerSettings(seller=GERMAN_SELLER)).catch_up()
            await DocumentWriter(connection).catch_up()
            ((issued,), documents) = stored(api.jobstream, InvoiceIssued, InvoiceDocumentStored)
            (ubl,) = [d for d in documents if d.name.endswith(".xml") and d.id == issued.id]
            return (await (await connection.documents()).get(ubl.name)).data or b""
        finally:
            await connection.aclose()

    root = ET.fromstring(asyncio.run(invoice_and_render()))
    assert root.findtext("cbc:CustomizationID", namespaces=UBL) == XRECHNUNG
    assert root.findtext("cbc:BuyerReference", namespaces=UBL) == "991-12345-67"
    endpoint = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", UBL)
    assert endpoint is not None and (endpoint.text, endpoint.get("schemeID")) == ("991-12345-67", "0204")
    seller = root.find("cac:AccountingSupplierParty/cac:Party/cac:Contact", UBL)
    assert seller is not None and seller.findtext("cbc:Telephone", namespaces=UBL) == "+49 351 1234567"
