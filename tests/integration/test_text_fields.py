"""Text that XML cannot hold never gets in: every door refuses control characters (C0, C1),
U+FFFE, U+FFFF and lone surrogates, naming the field, and stores nothing; what the doors
accept, the documents (UBL, CII) can hold."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from events.contract import LINE, LINES, Address, InvoiceIssued, InvoiceLine, Party, VatSubtotal
from invoicer.einvoice import ubl_invoice
from invoicer.facturx import cii_invoice
from services.api import Settings, create_app
from tests.integration.conftest import ADDRESS, Api

BAD = ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\x7f", "\x85", "\x9f", "\ufffe", "\uffff"]
SURROGATES = ["\\ud800", "\\udfff", "\\udbff"]  # as they come in JSON: escapes without their pair
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def head(api: Api) -> int:
    return api.jobstream.recorder.max_notification_id() or 0


def refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    fields = [problem["field"] for problem in response.json()["detail"]]
    assert fields == [field], response.text
    assert (
        "control character" in response.json()["detail"][0]["reason"]
        or "surrogate" in response.json()["detail"][0]["reason"]
    )


@pytest.fixture
def public(stream_env: dict[str, str]) -> Iterator[TestClient]:
    env = {
        **stream_env,
        "JOBSTREAM_BOOKING_SERVICES": "repair:hvac:60:Repair",
        "JOBSTREAM_BOOKING_HOURS": "Mon-Sun 08:00-17:00",
    }
    with TestClient(create_app(Settings(env=env)), follow_redirects=False) as client:
        yield client


def test_every_door_refuses_what_xml_cannot_hold_and_stores_nothing(api: Api, public: TestClient) -> None:
    tech = api.technician("jana")
    customer = api.customer()
    job = api.scheduled_job(tech, customer)
    api.ok(f"/jobs/{job}/start", {}, who="jana")
    before = head(api)
    for bad in BAD:
        refused(api.post("/customers", {"name": f"Nul{bad}Ctl Ltd", "billing_address": ADDRESS}), "name")
        refused(
            api.post(f"/customers/{customer}/details", {"billing_address": {**ADDRESS, "city": f"Brno{bad}"}}),
            "billing_address.city",
        )
        refused(api.post(f"/customers/{customer}/details", {"email": f"a{bad}@example.cz"}), "email")
        refused(api.post(f"/jobs/{job}/notes", {"text": f"line one\nline{bad}two"}, who="jana"), "text")
        refused(
            api.post(
                f"/jobs/{job}/materials", {"code": "valve", "description": f"Valve{bad}", "quantity": "1"}, who="jana"
            ),
            "description",
        )
        refused(api.post(f"/jobs/{job}/complete", {"summary": f"done{bad}"}, who="jana"), "summary")
        refused(api.post(f"/jobs/{job}/hold", {"reason": f"parts{bad}"}, who="jana"), "reason")
        photo = api.client.post(
            f"/jobs/{job}/photos",
            content=PNG,
            headers=api.headers(
                "jana", **{"X-Caption": "the%20" + "".join(f"%{b:02X}" for b in bad.encode()) + "valve"}
            ),
        )
        refused(photo, "caption")
        booked = public.post(
            "/book",
            data={
                "service": "repair",
                "key": str(uuid.uuid4()),
                "slot": "call",
                "name": f"Petra{bad}",
                "email": "petra@example.cz",
                "street": "Lidická 5",
                "city": "Brno",
                "postal_code": "602 00",
                "country": "CZ",
                "details": f"It{bad} clicks",
            },
        )
        assert booked.status_code == 422 and "cannot be read" in booked.text, booked.text
    for surrogate in SURROGATES:  # msgspec refuses the whole document; the door still names the field
        raw = (
            '{"name": "Nul' + surrogate + ' Ltd", "billing_address": {"street": "a", "city": "b", '
            '"postal_code": "1", "country": "CZ"}}'
        )
        answer = api.client.post(
            "/customers", content=raw.encode(), headers=api.headers("office", **{"Content-Type": "application/json"})
        )
        refused(answer, "name")
        raw = (
            '{"name": "Nul Ltd", "billing_address": {"street": "a", "city": "b' + surrogate + '", '
            '"postal_code": "1", "country": "CZ"}}'
        )
        answer = api.client.post(
            "/customers", content=raw.encode(), headers=api.headers("office", **{"Content-Type": "application/json"})
        )
        refused(answer, "billing_address.city")
        answer = api.client.post(
            f"/jobs/{job}/notes",
            content=('{"text": "a' + surrogate + '"}').encode(),
            headers=api.headers("jana", **{"Content-Type": "application/json"}),
        )
        refused(answer, "text")
    # the headers stored with the events (the command id, the correlation id) are text too
    for header in ("Idempotency-Key", "X-Correlation-Id"):
        answer = api.client.post(
            f"/jobs/{job}/notes",
            json={"text": "fine"},
            headers={**api.headers("jana"), header: "key\x85one".encode("latin-1")},
        )
        refused(answer, f"header.{header}")
    # a single-line field takes no newline, not even a last one (Python's `$` would let it by)
    refused(api.post("/customers", {"name": "Novák\n", "billing_address": ADDRESS}), "name")
    answer = api.post("/customers", {"name": "Novák", "billing_address": {**ADDRESS, "country": "CZ\n"}})
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "billing_address.country"
    assert head(api) == before, "a refused command stored something"
    # what stays allowed: tab and newline where there are several lines, any other character
    api.ok(f"/jobs/{job}/notes", {"text": "Valve:\tcracked\r\nReplaced ✓ 😀 \ufffd"}, who="jana")
    api.ok("/customers", {"name": "Žluťoučký kůň «s.r.o.» 😀", "billing_address": ADDRESS})


TEXT = st.from_regex(re.compile(LINE), fullmatch=True).filter(lambda s: 0 < len(s) <= 200)
NOTES = st.from_regex(re.compile(LINES), fullmatch=True).filter(lambda s: len(s) <= 2000)


def invoice(name: str, description: str) -> InvoiceIssued:
    address = Address(street=name, city="Brno", postal_code="602 00", country="CZ")
    line = InvoiceLine(
        kind="material",
        code="valve",
        description=description,
        quantity=Decimal(1),
        unit="piece",
        unit_price=Decimal(10),
        net=Decimal(10),
        vat_rate=Decimal(21),
    )
    return InvoiceIssued(
        id=uuid.uuid4(),
        number="2026-000001",
        series="2026",
        sequence=1,
        job_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        issue_date=date(2026, 3, 1),
        supply_date=date(2026, 3, 1),
        due_date=date(2026, 3, 15),
        currency="EUR",
        language="en",
        seller=Party(name="Seller s.r.o.", address=address, vat_id="CZ12345678"),
        buyer=Party(name=name, address=address),
        lines=[line],
        vat=[VatSubtotal(category="S", rate=Decimal(21), taxable=Decimal(10), vat=Decimal("2.10"))],
        net_total=Decimal(10),
        vat_total=Decimal("2.10"),
        gross_total=Decimal("12.10"),
        payment_reference="1",
        job_summary=description,
    )


@settings(max_examples=60, deadline=None)
@given(name=TEXT, description=NOTES)
def test_what_the_text_fields_accept_the_invoice_xml_holds(name: str, description: str) -> None:
    document = invoice(name, description)
    for xml in (ubl_invoice(document), cii_invoice(document)):
        parsed = etree.fromstring(xml)
        assert parsed is not None
