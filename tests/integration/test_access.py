"""Who may see and do what, on a real nats-server with real tokens: what a technician may read
on the command API, revocation in every process, the technicians' read-side door, and
signing in to downloads."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from events.contract import decode_event
from events.jetstream import NatsConnection, StreamSettings
from invoicer.service import Invoicer, Settings as InvoicerSettings

from tests.integration.conftest import Api


def invoiced_job(api: Api, tech: Any, env: dict[str, str]) -> tuple[str, str]:
    """A job of ``tech``'s, completed and invoiced by the real invoicer: (job id, invoice id)."""
    prices = api.ok("/price-lists", {"name": "Standard", "currency": "EUR", "is_default": True})["id"]
    api.ok(f"/price-lists/{prices}/activities", {"code": "repair", "name": "Repair", "unit": "hour",
                                                 "rate": "60.00", "vat_rate": "21"})
    customer = api.ok("/customers", {"name": "Harbour Café", "phone": "+353 1 555 0101",
                                     "email": "hello@harbourcafe.example", "billing_address": {
                                         "street": "1 Quay Street", "city": "Dublin", "postal_code": "D02 X285",
                                         "country": "IE"}})["id"]
    job = api.scheduled_job(tech, customer)
    name = next(n for n, t in api.tokens.items() if n not in ("office", "accountant", "admin"))
    api.ok(f"/jobs/{job}/start", {}, who=name)
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 90}, who=name)
    api.ok(f"/jobs/{job}/complete", {"summary": "Fixed"}, who=name)

    async def invoice() -> None:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        try:
            await Invoicer(connection, InvoicerSettings()).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(invoice())
    invoiced = [decode_event(e.state) for e in api.jobstream.history(UUID(job)) if e.topic == "JobInvoiced"]
    assert invoiced, "the invoicer invoiced the job"
    return job, str(invoiced[0].invoice_id)


def test_a_technician_reads_on_the_command_api_only_their_own_jobs_the_pool_and_themselves(
        api: Api, stream_env: dict[str, str]) -> None:
    tom, eve = api.technician("tom"), api.technician("eve")
    job, invoice = invoiced_job(api, tom, stream_env)
    customer = api.get(f"/jobs/{job}").json()["customer_id"]
    eves_job = api.scheduled_job(eve, customer)
    pool_job = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "Door sticks"})["id"]
    prices = api.ok("/price-lists", {"name": "Other", "currency": "EUR"})["id"]

    # the office and the accountants read everything
    for who in ("office", "accountant", "admin"):
        assert api.get(f"/invoices/{invoice}", who).status_code == 200
        assert api.get(f"/customers/{customer}", who).status_code == 200
        assert api.get(f"/price-lists/{prices}", who).status_code == 200
        assert api.get(f"/technicians/{tom}", who).status_code == 200

    # a technician: no invoice (number, total, customer), no customer record, no price list,
    # no other technician
    refused = api.get(f"/invoices/{invoice}", "tom")
    assert refused.status_code == 403, refused.text
    assert "number" not in refused.text and "total" not in refused.text
    assert api.get(f"/customers/{customer}", "tom").status_code == 403
    assert api.get(f"/price-lists/{prices}", "tom").status_code == 403
    assert api.get(f"/technicians/{eve}", "tom").status_code == 403
    assert api.get(f"/technicians/{tom}", "tom").status_code == 200
    # their own job, the pool, and how to reach the customer of those; nobody else's
    for own in (job, pool_job):
        assert api.get(f"/jobs/{own}", "tom").status_code == 200
        assert api.get(f"/jobs/{own}/events", "tom").status_code == 200
        reach = api.get(f"/jobs/{own}/customer", "tom")
        assert reach.status_code == 200 and reach.json()["name"] == "Harbour Café", reach.text
        assert set(reach.json()) == {"id", "name", "phone", "email", "language", "site_address"}
    for other in (f"/jobs/{eves_job}", f"/jobs/{eves_job}/events", f"/jobs/{eves_job}/customer"):
        assert api.get(other, "tom").status_code == 403, other


def test_a_role_that_may_not_send_a_command_is_refused_before_its_body_is_read(api: Api) -> None:
    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    # an accountant or a technician scheduling: 403, whatever the body holds
    for who in ("accountant", "tom"):
        for body in ({}, {"technician_ids": "nonsense"}):
            answer = api.post(f"/jobs/{job}/schedule", body, who)
            assert answer.status_code == 403, (who, answer.text)
        assert api.post("/customers", {}, who).status_code == 403
    assert api.post(f"/jobs/{job}/schedule", {}, "office").status_code == 422  # the office may: the body is wrong
    # nor may an accountant attach a photo
    photo = api.client.post(f"/jobs/{job}/photos", content=b"\x89PNG\r\n\x1a\n" + b"0" * 100,
                            headers=api.headers("accountant", **{"Content-Type": "image/png"}))
    assert photo.status_code == 403, photo.text
