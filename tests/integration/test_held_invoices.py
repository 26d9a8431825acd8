"""A held invoice is released when its cause is fixed: the invoicer looks again at the held
jobs a change concerns (the customer's details, a price list, an activity), or at the one
the office releases by hand, and issues each invoice once, numbered without a gap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import Tracking

from events.contract import (
    Address,
    AddTimeEntry,
    CompleteJob,
    InvoiceIssued,
    InvoicingHeld,
    InvoicingReleaseRequested,
    JobInvoiced,
    RegisterCustomer,
    RequestJob,
    ScheduleJob,
    StartWork,
)
from events.jetstream import NatsConnection, NatsProcessRecorder, StreamSettings
from services.application import JobstreamApp
from tests.integration.conftest import ADDRESS, Api, stored
from tests.integration.test_invoicer import OFFICE, Office, invoice_all, invoices, price_list


def held_job(app: JobstreamApp, customer: UUID, tech: UUID, activity: str = "") -> UUID:
    """A job completed with 130 minutes of ``activity`` (the job type's, ``repair``, if none)."""
    job = app.new_id(OFFICE, None)
    app.execute(job, RequestJob(customer_id=customer, job_type="repair", description="Leak"), OFFICE)
    app.execute(job, ScheduleJob(technician_ids=[tech], start=datetime.now(UTC)), OFFICE)
    app.execute(job, StartWork(), OFFICE)
    app.execute(job, AddTimeEntry(started_at=datetime.now(UTC), minutes=130, activity=activity), OFFICE)
    app.execute(job, CompleteJob(summary="Seal replaced"), OFFICE)
    return job


def reasons(app: JobstreamApp) -> list[str]:
    (held,) = stored(app, InvoicingHeld)
    return [h.reason for h in held]


def assert_invoiced_once(app: JobstreamApp, jobs: list[UUID]) -> list[InvoiceIssued]:
    issued, allocated = invoices(app)
    assert sorted(i.job_id for i in issued) == sorted(jobs)  # one invoice per job, none twice
    assert sorted(a.sequence for a in allocated) == list(range(1, len(allocated) + 1))  # no gap
    return issued


def test_a_held_job_is_invoiced_once_its_customers_currency_is_fixed(api: Api, stream_env: dict[str, str]) -> None:
    """The probe: registered in EUR, priced in CZK; the office sets the customer's currency."""
    price_list(api.jobstream, "CZK")
    office = Office(api.jobstream)
    customer = UUID(
        api.ok("/customers", {"name": "Petra Svobodová", "billing_address": ADDRESS, "currency": "EUR"})["id"]
    )
    job = held_job(api.jobstream, customer, office.tech)
    asyncio.run(invoice_all(stream_env))
    assert reasons(api.jobstream) == ["no price list in EUR for this customer"]
    assert invoices(api.jobstream)[0] == []

    api.ok(f"/customers/{customer}/details", {"currency": "CZK"})
    asyncio.run(invoice_all(stream_env))
    asyncio.run(invoice_all(stream_env, replicas=2))  # delivered again, to two replicas: nothing twice
    (invoice,) = assert_invoiced_once(api.jobstream, [job])
    assert (invoice.currency, invoice.gross_total) == ("CZK", Decimal("181.50"))
    assert api.get(f"/jobs/{job}").json()["status"] == "invoiced"


def test_a_price_list_change_releases_every_held_job_it_fixes_each_once(api: Api, stream_env: dict[str, str]) -> None:
    prices = price_list(api.jobstream, "CZK")
    office = Office(api.jobstream)
    first, second = (held_job(api.jobstream, office.customer, office.tech, "boiler") for _ in range(2))
    done = office.completed_job()  # priced: invoiced at once
    asyncio.run(invoice_all(stream_env))
    assert reasons(api.jobstream) == ["activity 'boiler' is on no price list of this customer"] * 2
    # another customer's details change: the held jobs are not theirs, nothing happens
    other = api.ok("/customers", {"name": "Other", "billing_address": ADDRESS, "currency": "CZK"})["id"]
    api.ok(f"/customers/{other}/details", {"phone": "+420 600 000 000"})
    asyncio.run(invoice_all(stream_env))
    assert len(reasons(api.jobstream)) == 2 and len(invoices(api.jobstream)[0]) == 1

    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "boiler", "name": "Boiler work", "unit": "started_hour", "rate": "60.00", "vat_rate": "21"},
    )
    asyncio.run(invoice_all(stream_env, replicas=3))  # three replicas race for both
    asyncio.run(invoice_all(stream_env))
    issued = assert_invoiced_once(api.jobstream, [done, first, second])
    assert {i.job_id: i.gross_total for i in issued}[first] == Decimal("217.80")  # 3 h at 60.00, plus 21 %
    (recorded,) = stored(api.jobstream, JobInvoiced)
    assert len(recorded) == 3


def test_the_office_releases_a_held_job_by_hand(api: Api, stream_env: dict[str, str]) -> None:
    """Held, and fixed where the invoicer did not look (an invoicer from before this release
    went past the change): the office asks it to try again."""
    price_list(api.jobstream, "CZK")
    office = Office(api.jobstream)
    customer = api.jobstream.execute(
        api.jobstream.new_id(OFFICE, None),
        RegisterCustomer(name="Petra Svobodová", billing_address=Address(**ADDRESS), currency="EUR"),
        OFFICE,
    ).id
    job = held_job(api.jobstream, customer, office.tech)
    asyncio.run(invoice_all(stream_env))
    assert api.post(f"/jobs/{job}/release-invoicing", {}, who="accountant").status_code == 403
    api.ok(f"/customers/{customer}/details", {"currency": "CZK"})
    asyncio.run(tracked_past(stream_env, api.jobstream.recorder.max_notification_id()))
    asyncio.run(invoice_all(stream_env))
    assert invoices(api.jobstream)[0] == [] and api.get(f"/jobs/{job}").json()["invoicing_held"] is True

    released = api.post(f"/jobs/{job}/release-invoicing", {"note": "currency fixed"})
    assert released.status_code == 200, released.text
    assert released.json()["events"] == ["InvoicingReleaseRequested"]
    again = api.post(f"/jobs/{job}/release-invoicing", {})
    assert again.status_code == 409 and "not held" in again.text
    asyncio.run(invoice_all(stream_env, replicas=2))
    asyncio.run(invoice_all(stream_env))
    assert_invoiced_once(api.jobstream, [job])
    (asked,) = stored(api.jobstream, InvoicingReleaseRequested)
    assert [a.note for a in asked] == ["currency fixed"]
    assert api.post(f"/jobs/{job}/release-invoicing", {}).status_code == 409  # invoiced: nothing to release
    # a job that is not held cannot be released
    tech_job = office.completed_job()
    assert api.post(f"/jobs/{tech_job}/release-invoicing", {}).status_code == 409


async def tracked_past(env: dict[str, str], position: int | None) -> None:
    """The invoicer's tracking moved past ``position`` without handling what lies before it."""
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await NatsProcessRecorder(connection).insert_tracked_async([], Tracking("invoicer", position or 0))
    finally:
        await connection.aclose()
