"""An id of the wrong kind of aggregate is a 404 naming the kind expected, on every route that
takes an id: never a 500 (a job's events folded as a customer's) nor a 409 "reload and retry"."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from events.contract import Address, InvoiceIssued, MessageQueued, Party, recipient_id
from services.application import NAMES
from tests.integration.conftest import ADDRESS, Api
from tests.integration.test_poison import straight

# a value for each field a command requires (what it says is beside the point: the kind is
# checked before any rule of the command)
SAMPLES: dict[str, Any] = {
    "description": "Service",
    "amount": "10",
    "vat_rate": "21",
    "first_month": "2026-01",
    "last_month": "2026-02",
    "retainer_id": str(uuid.uuid4()),
    "hours": "5",
    "code": "valve",
    "name": "Valve",
    "unit": "hour",
    "rate": "10",
    "start": "2026-11-23T09:00:00Z",
    "started_at": "2026-11-23T09:00:00Z",
    "minutes": 30,
    "entry_id": str(uuid.uuid4()),
    "reason": "because",
    "text": "a note",
    "quantity": "1",
    "summary": "done",
    "signed_by": "Petra",
    "received_on": "2026-03-01",
}


def body_of(command_type: type[msgspec.Struct], technician: str) -> dict[str, Any]:
    required = [f.encode_name for f in msgspec.structs.fields(command_type) if f.required]
    return {name: [technician] if name == "technician_ids" else SAMPLES[name] for name in required}


def ids_of_every_kind(api: Api) -> dict[str, str]:
    tech = api.technician("jana")
    customer = api.customer()
    job = api.scheduled_job(tech, customer)
    price_list = api.ok("/price-lists", {"name": "Default", "is_default": True})["id"]
    recurrence = api.ok(
        "/recurring-services",
        {
            "customer_id": customer,
            "job_type": "inspection",
            "description": "Monthly check",
            "technician_ids": [str(tech)],
            "rule": "FREQ=MONTHLY;COUNT=2",
            "start": "2027-01-04T09:00:00",
        },
    )["id"]
    api.ok(
        "/me/push-subscriptions",
        {"endpoint": "https://push.example/1", "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}},
        who="jana",
    )
    address = Address(**ADDRESS)
    invoice, message = uuid.uuid4(), uuid.uuid4()
    straight(
        api.jobstream,
        invoice,
        InvoiceIssued(
            id=invoice,
            number="2026-000001",
            series="2026",
            sequence=1,
            job_id=UUID(job),
            customer_id=UUID(customer),
            issue_date=date(2026, 3, 1),
            supply_date=date(2026, 3, 1),
            due_date=date(2026, 3, 15),
            currency="EUR",
            language="en",
            seller=Party(name="Seller", address=address),
            buyer=Party(name="Novák", address=address),
            lines=[],
            vat=[],
            net_total=Decimal(0),
            vat_total=Decimal(0),
            gross_total=Decimal(0),
            payment_reference="1",
        ),
    )
    straight(
        api.jobstream,
        message,
        MessageQueued(
            id=message, channel="email", purpose="invoice", recipient="novak@example.cz", subject="Invoice", body="..."
        ),
    )
    return {
        "job": job,
        "customer": customer,
        "technician": str(tech),
        "pricelist": price_list,
        "invoice": str(invoice),
        "message": str(message),
        "recurrence": recurrence,
        "recipient": str(recipient_id("jana")),
    }


def kind_of_read(path: str) -> str:
    first = path.split("/")[1]
    return {
        "jobs": "job",
        "customers": "customer",
        "technicians": "technician",
        "price-lists": "pricelist",
        "invoices": "invoice",
        "recurring-services": "recurrence",
    }[first]


def test_an_id_of_another_kind_is_a_404_naming_the_kind_expected(api: Api) -> None:
    ids = ids_of_every_kind(api)
    routes: dict[str, tuple[str, type[msgspec.Struct]]] = api.client.app.state.command_routes  # type: ignore[attr-defined]
    on_one = {path: route for path, route in routes.items() if "{id}" in path}
    assert len(on_one) >= 30  # every command on an aggregate, as the door serves them
    tried = 0
    before = api.jobstream.recorder.max_notification_id()
    for path, (kind, command_type) in on_one.items():
        body = body_of(command_type, ids["technician"])
        for other, id in ids.items():
            if other == kind:
                continue
            answer = api.post(path.replace("{id}", id), body)
            assert answer.status_code == 404, (path, other, answer.status_code, answer.text)
            expected = f"no {NAMES[kind]} {id}: that id is"
            assert answer.json()["detail"].startswith(expected) and NAMES[other] in answer.json()["detail"], answer.text
            tried += 1
    assert api.jobstream.recorder.max_notification_id() == before, "a refused command stored something"
    # the reads, as the office and as a technician (whose own settings' id is not a job)
    reads = [
        p
        for p, item in api.client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        if re.fullmatch(r"/[a-z-]+/\{id\}(/events)?", p) and "get" in item
    ]
    assert len(reads) >= 7
    for path in reads:
        kind = kind_of_read(path)
        for other, id in ids.items():
            if other == kind:
                continue
            for who in ("office", "jana"):
                answer = api.get(path.replace("{id}", id), who=who)
                assert answer.status_code in (403, 404), (path, other, who, answer.text)
                if answer.status_code == 404:
                    assert answer.json()["detail"].startswith(f"no {NAMES[kind]} {id}"), answer.text
                tried += 1
    assert api.get(f"/jobs/{ids['recipient']}", who="jana").status_code == 404
    # a field naming another kind's id: 422 on that field
    wrong = api.post("/jobs", {"customer_id": ids["job"], "job_type": "repair", "description": "Leak"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "customer_id", wrong.text
    assert "that id is a job" in wrong.json()["detail"][0]["reason"]
    wrong = api.post(
        f"/jobs/{ids['job']}/reschedule", {"technician_ids": [ids["customer"]], "start": "2026-11-24T09:00:00Z"}
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "technician_ids", wrong.text
    assert tried > 250


def test_an_id_nothing_was_stored_for_is_a_404_of_no_kind_whatever_was_asked_before(api: Api) -> None:
    """An unknown id is not found, on every command route, and stays of no kind: asking for it as
    a customer first must not make the next request call it a customer."""
    tech = api.technician("jana")
    routes: dict[str, tuple[str, type[msgspec.Struct]]] = api.client.app.state.command_routes  # type: ignore[attr-defined]
    before = api.jobstream.recorder.max_notification_id()
    unknown = str(uuid.uuid4())
    kinds_asked = set()
    for path, (kind, command_type) in routes.items():
        if "{id}" not in path or kind in ("slot", "failure", "message"):
            continue
        answer = api.post(path.replace("{id}", unknown), body_of(command_type, str(tech)))
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        assert answer.json()["detail"].endswith(f"{unknown} not found"), (path, answer.text)
        kinds_asked.add(kind)
    assert {"job", "customer", "technician", "invoice"} <= kinds_asked
    assert api.get(f"/jobs/{unknown}").json()["detail"] == f"job {unknown} not found"
    # a refused creating command leaves its Idempotency-Key free for the next one
    key = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
    refused = api.post("/jobs", {"customer_id": str(uuid.uuid4()), "job_type": "repair", "description": "Leak"}, **key)
    assert refused.status_code == 422, refused.text
    registered = api.post("/customers", {"name": "Novák s.r.o.", "billing_address": ADDRESS}, **key)
    assert registered.status_code == 201, registered.text
    assert api.jobstream.recorder.max_notification_id() == before + 1, "only the customer was stored"
