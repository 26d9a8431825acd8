"""The invoicer on a real nats-server: one invoice per completed job, numbers without gaps,
whatever replicas race and however often the invoicer is killed."""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from events.bridge import LoopThread
from events.contract import (
    Address,
    AddTimeEntry,
    CompleteJob,
    CreatePriceList,
    InvoiceIssued,
    InvoiceNumberAllocated,
    PriceActivity,
    RegisterCustomer,
    RegisterTechnician,
    RequestJob,
    Role,
    ScheduleJob,
    StartWork,
    Unit,
)
from events.jetstream import TOPIC_HEADER, NatsConnection, StreamSettings
from invoicer.ids import invoice_id_of
from invoicer.invoicing import Invoicer
from invoicer.settings import Settings
from services.application import JobstreamApp
from services.domain.common import Actor
from tests.integration.conftest import ADDRESS, Api, read_settings, read_side, stored

settings_of = StreamSettings.from_env  # a service's stream settings from its environment

ROOT = Path(__file__).resolve().parents[2]
OFFICE = Actor(id="olga", role=Role.OFFICE)
YEAR = datetime.now(UTC).year


async def invoice_all(env: dict[str, str], replicas: int = 1, settings: Settings | None = None) -> list[Invoicer]:
    """Each replica catches up with what is stored now, all at once."""
    connections = [await NatsConnection.open_on_running_loop(settings_of(env)) for _ in range(replicas)]
    try:
        invoicers = [Invoicer(c, settings or Settings()) for c in connections]
        await asyncio.gather(*(i.catch_up() for i in invoicers))
        return invoicers
    finally:
        for connection in connections:
            await connection.aclose()


def invoices(app: JobstreamApp) -> tuple[list[InvoiceIssued], list[InvoiceNumberAllocated]]:
    issued, allocated = stored(app, InvoiceIssued, InvoiceNumberAllocated)
    return issued, allocated


def price_list(app: JobstreamApp, currency: str = "CZK") -> UUID:
    prices = app.execute(
        app.new_id(OFFICE, None), CreatePriceList(name="Standard", currency=currency, is_default=True), OFFICE
    ).id
    app.execute(
        prices,
        PriceActivity(
            code="repair", name="Repair work", unit=Unit.STARTED_HOUR, rate=Decimal("50.00"), vat_rate=Decimal(21)
        ),
        OFFICE,
    )
    return prices


class Office:
    """Jobs taken from request to completion through the write side, as fast as it goes."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        self.tech = app.execute(app.new_id(OFFICE, None), RegisterTechnician(name="Tom"), OFFICE).id
        self.customer = app.execute(
            app.new_id(OFFICE, None),
            RegisterCustomer(name="Novák Stavby", billing_address=Address(**ADDRESS), currency="CZK", language="en"),
            OFFICE,
        ).id

    def completed_job(self, minutes: int = 130) -> UUID:
        app, job = self.app, self.app.new_id(OFFICE, None)
        app.execute(job, RequestJob(customer_id=self.customer, job_type="repair", description="Leak"), OFFICE)
        app.execute(job, ScheduleJob(technician_ids=[self.tech], start=datetime.now(UTC)), OFFICE)
        app.execute(job, StartWork(), OFFICE)
        app.execute(job, AddTimeEntry(started_at=datetime.now(UTC), minutes=minutes), OFFICE)
        app.execute(job, CompleteJob(summary="Seal replaced"), OFFICE)
        return job


def test_a_job_completed_in_the_api_is_invoiced_once(api: Api, stream_env: dict[str, str]) -> None:
    prices = api.ok("/price-lists", {"name": "Standard", "currency": "CZK", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Repair work", "unit": "started_hour", "rate": "50.00", "vat_rate": "21"},
    )
    tom = api.technician("tom")
    customer = api.ok(
        "/customers",
        {
            "name": "Novák Stavby",
            "billing_address": ADDRESS,
            "currency": "CZK",
            "email": "ucetni@novak.example",
            "language": "cs",
        },
    )["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 130}, who="tom")
    api.ok(
        f"/jobs/{job}/materials",
        {"code": "seal-22", "description": "Seal 22 mm", "quantity": "2", "unit_price": "3.40"},
        who="tom",
    )
    api.ok(f"/jobs/{job}/complete", {"summary": "Seal replaced"}, who="tom")

    asyncio.run(invoice_all(stream_env))
    asyncio.run(invoice_all(stream_env))  # a second pass, as after a restart: nothing new

    (invoice,), (allocated,) = invoices(api.jobstream)
    assert invoice.id == invoice_id_of(UUID(job)) and invoice.number == f"FV/{YEAR}/000001"
    assert allocated.sequence == 1 and allocated.invoice_id == invoice.id
    assert [(l.code, l.quantity, l.net, l.logged_minutes) for l in invoice.lines] == [
        ("repair", Decimal(3), Decimal("150.00"), 130),
        ("seal-22", Decimal(2), Decimal("6.80"), 0),
    ]
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        Decimal("156.80"),
        Decimal("33.06"),
        Decimal("189.86"),
    )  # 31.50 on 150 at 21 %, 1.56 on 6.80 at 23 %
    assert invoice.currency == "CZK" and invoice.language == "cs" and invoice.buyer.name == "Novák Stavby"
    state = api.get(f"/jobs/{job}").json()
    assert state["status"] == "invoiced"
    refused = api.post(f"/jobs/{job}/reopen", {"reason": "customer called back"})
    assert refused.status_code == 409 and "invoiced" in refused.json()["detail"]


def test_jobs_that_get_no_invoice_say_why(api: Api, stream_env: dict[str, str]) -> None:
    prices = api.ok("/price-lists", {"name": "Standard", "currency": "EUR", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Repair work", "unit": "started_hour", "rate": "50.00", "vat_rate": "21"},
    )
    tom = api.technician("tom")
    customer = api.customer()  # pays in EUR
    in_czk = api.ok("/customers", {"name": "Dvořák", "billing_address": ADDRESS, "currency": "CZK"})["id"]
    jobs = {
        "warranty": api.ok(
            "/jobs", {"customer_id": customer, "job_type": "repair", "description": "Leak", "billing_kind": "warranty"}
        )["id"],
        "unpriced activity": api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "Leak"})[
            "id"
        ],
        "no list in CZK": api.ok("/jobs", {"customer_id": in_czk, "job_type": "repair", "description": "Leak"})["id"],
    }
    for case, job in jobs.items():
        api.ok(f"/jobs/{job}/schedule", {"technician_ids": [str(tom)], "start": "2026-11-23T09:00:00Z"})
        api.ok(f"/jobs/{job}/start", {}, who="tom")
        activity = "commissioning" if case == "unpriced activity" else ""
        api.ok(
            f"/jobs/{job}/time-entries",
            {"started_at": "2026-11-23T09:00:00Z", "minutes": 60, "activity": activity},
            who="tom",
        )
        api.ok(f"/jobs/{job}/complete", {"summary": "Done"}, who="tom")

    asyncio.run(invoice_all(stream_env))

    assert invoices(api.jobstream) == ([], [])
    last = {case: api.get(f"/jobs/{job}/events").json()[-1] for case, job in jobs.items()}
    assert {case: event["type"] for case, event in last.items()} == {
        "warranty": "JobNotBilled",
        "unpriced activity": "InvoicingHeld",
        "no list in CZK": "InvoicingHeld",
    }
    assert last["warranty"]["event"]["cost"] == "50.00"  # one started hour, at no charge
    assert "'commissioning'" in last["unpriced activity"]["event"]["reason"]
    assert "no price list in CZK" in last["no list in CZK"]["event"]["reason"]
    assert all(api.get(f"/jobs/{job}").json()["status"] == "completed" for job in jobs.values())


def test_three_replicas_racing_issue_one_invoice_per_job_without_gaps(
    jobstream: JobstreamApp, stream_env: dict[str, str]
) -> None:
    price_list(jobstream)
    office = Office(jobstream)
    jobs: list[UUID] = []

    async def race() -> None:
        connections = [await NatsConnection.open_on_running_loop(settings_of(stream_env)) for _ in range(3)]
        replicas = [Invoicer(c, Settings()) for c in connections]
        stop = asyncio.Event()
        running = [asyncio.ensure_future(r.run(stop)) for r in replicas]
        await asyncio.to_thread(lambda: jobs.extend(office.completed_job() for _ in range(40)))
        stop.set()
        await asyncio.gather(*running)
        await replicas[0].catch_up()  # whatever was stored after the last wake-up
        for connection in connections:
            await connection.aclose()

    asyncio.run(race())

    issued, allocated = invoices(jobstream)
    assert Counter(i.job_id for i in issued) == Counter(jobs)  # every job exactly once
    assert sorted(a.sequence for a in allocated) == list(range(1, len(jobs) + 1))  # no gap, no duplicate
    assert sorted(i.number for i in issued) == [f"FV/{YEAR}/{n:06d}" for n in range(1, len(jobs) + 1)]


class IssuedCount:
    """How many invoices the stream holds, followed live by an ordered consumer: what the
    kills below wait on, so they land on the replicas' progress, not on the machine's speed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.settings = settings_of(env)
        self.count = 0
        self.changed = threading.Condition()
        self.loop = LoopThread("issued-count")
        self.connection = self.loop.run(self._follow())

    async def _follow(self) -> Any:
        import nats

        connection = await nats.connect(self.settings.url)

        async def stored(msg: Any) -> None:
            if msg.headers and msg.headers.get(TOPIC_HEADER) == "InvoiceIssued":
                with self.changed:
                    self.count += 1
                    self.changed.notify_all()

        await connection.jetstream().subscribe(
            self.settings.kind_filter("events", "invoice"), cb=stored, ordered_consumer=True
        )
        return connection

    def wait_until(self, reached: Any, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: reached(self.count), timeout)

    def close(self) -> None:
        self.loop.run(self.connection.close())
        self.loop.stop()


# Its length is the machine's: six or more rounds of starting two Python processes and
# killing them once they move. Each round has its own 120 s guard; the suite-wide 180 s cap
# (a hang detector) would end a correct run on a loaded machine.
@pytest.mark.timeout(900)
def test_killing_the_invoicer_at_random_points_loses_and_duplicates_nothing(
    jobstream: JobstreamApp, stream_env: dict[str, str]
) -> None:
    price_list(jobstream)
    office = Office(jobstream)
    jobs = [office.completed_job() for _ in range(40)]  # a backlog, so the first kills land mid-work
    done = threading.Event()

    def complete_jobs() -> None:
        for _ in range(60):
            jobs.append(office.completed_job())
        done.set()

    writer = threading.Thread(target=complete_jobs)
    writer.start()
    env = {**os.environ, **stream_env, "PYTHONPATH": str(ROOT)}
    rng = random.Random(20261123)
    issued = IssuedCount(stream_env)
    kills = 0
    try:
        # At least six kills, and on until the killed replicas have issued most invoices
        # themselves. Each pair is killed once it has issued a random few (1 to 5) more: the
        # kill lands mid-work however slowly the machine starts and runs them.
        while kills < 6 or not done.is_set() or issued.count < 60:
            before = issued.count
            more = rng.randint(1, 5)
            replicas = [
                subprocess.Popen(
                    [sys.executable, "-m", "invoicer", "issue"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(2)
            ]
            moved = issued.wait_until(
                lambda count, before=before, more=more: (
                    count >= before + more or (done.is_set() and count >= len(jobs))
                ),
                timeout=120,
            )
            for replica in replicas:
                os.kill(replica.pid, signal.SIGKILL)
                replica.wait()
            assert moved, f"two replicas issued no {more} invoices in 120 s (at {issued.count} of {len(jobs)})"
            kills += 1
            if done.is_set() and issued.count >= len(jobs):
                break
        writer.join()
    finally:
        issued.close()
    by_killed_replicas = len(invoices(jobstream)[0])
    asyncio.run(invoice_all(stream_env))  # the next start finishes what the killed ones left

    issued_now, allocated = invoices(jobstream)
    assert Counter(i.job_id for i in issued_now) == Counter(jobs)
    assert sorted(a.sequence for a in allocated) == list(range(1, len(jobs) + 1))
    assert {a.invoice_id for a in allocated} == {i.id for i in issued_now}
    assert kills >= 6 and by_killed_replicas >= 60, "the killed replicas should have done most of the work"


def test_the_invoice_pdf_is_stored_once_and_served_to_the_office(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    from pypdf import PdfReader

    from invoicer.writer import DocumentWriter
    from read_api.app import create_app as create_read_app

    prices = api.ok("/price-lists", {"name": "Cennik", "currency": "PLN", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Naprawa pieca", "unit": "hour", "rate": "120.00", "vat_rate": "23"},
    )
    tom = api.technician("tom")
    customer = api.ok(
        "/customers",
        {
            "name": "Piekarnia Kowalski – Łódź",
            "currency": "PLN",
            "language": "pl",
            "billing_address": {"street": "ul. Długa 3", "city": "Kraków", "postal_code": "31-147", "country": "PL"},
        },
    )["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 90}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Termostat wymieniony"}, who="tom")

    async def invoice_and_render() -> None:
        connection = await NatsConnection.open_on_running_loop(settings_of(stream_env))
        try:
            await Invoicer(connection, Settings()).catch_up()
            writer = DocumentWriter(connection)
            await writer.catch_up()
            await writer.catch_up()  # again, as after a restart: nothing rendered twice
            assert len(writer.render_seconds) == 1
        finally:
            await connection.aclose()

    asyncio.run(invoice_and_render())
    (invoice,), _ = invoices(api.jobstream)
    stored = list(api.jobstream.history(invoice.id))
    assert [s.topic for s in stored] == ["InvoiceIssued", "InvoiceDocumentStored", "InvoiceDocumentStored"]

    links = {"link_secret": "test-secret", "public_url": "https://billing.example"}
    with read_side(api, stream_env, read_model_url, **links) as reader:
        link = reader.get(f"/api/invoices/{invoice.id}/link").json()
        assert link["url"].startswith("https://billing.example/d/")
        path = link["url"].removeprefix("https://billing.example")
        customer_app = create_read_app(read_settings(stream_env, read_model_url, **links))
        with TestClient(customer_app) as customer:  # no token, no cookie
            opened = customer.get(path)
            assert opened.status_code == 200 and opened.content.startswith(b"%PDF")
            assert customer.get(path[:-3] + "abc").status_code == 403
            signed_out = customer.get(f"/invoices/{invoice.id}.pdf", follow_redirects=False)
            assert signed_out.status_code == 401 and signed_out.headers["www-authenticate"] == "Bearer"
        listed = reader.get("/api/invoices").json()
        assert [(i["number"], i["gross_total"], i["currency"]) for i in listed] == [
            (invoice.number, "221.40", "PLN")
        ]  # 1.5 h at 120.00 plus 23 %
        pdf = reader.get(f"/invoices/{invoice.id}.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        assert "Faktura" in text and "Piekarnia Kowalski – Łódź" in text and "221,40 zł" in text
        from facturx import get_xml_from_pdf

        name, embedded = get_xml_from_pdf(pdf.content, check_xsd=False)
        assert name == "factur-x.xml" and f"<ram:ID>{invoice.number}</ram:ID>".encode() in embedded
        xml = reader.get(f"/invoices/{invoice.id}.xml")
        assert xml.status_code == 200 and f"<cbc:ID>{invoice.number}</cbc:ID>".encode() in xml.content
        page = reader.get(f"/jobs/{job}")
        assert invoice.number in page.text and f"/invoices/{invoice.id}.pdf" in page.text
        as_technician = reader.get(
            f"/invoices/{invoice.id}.pdf", headers={"Authorization": f"Bearer {api.tokens['tom']}"}
        )
        assert as_technician.status_code == 403


def test_reconciliation_names_a_completed_job_without_an_invoice(
    jobstream: JobstreamApp, stream_env: dict[str, str]
) -> None:
    from projections.audit import reconcile

    price_list(jobstream)
    office = Office(jobstream)
    office.completed_job()
    office.completed_job()
    asyncio.run(invoice_all(stream_env))

    async def check() -> object:
        connection = await NatsConnection.open_on_running_loop(settings_of(stream_env))
        try:
            return await reconcile(connection)
        finally:
            await connection.aclose()

    found = asyncio.run(check())
    assert (found.completed, found.invoiced, found.problems) == (2, 2, [])  # type: ignore[attr-defined]
    late = office.completed_job()  # completed while no invoicer runs
    found = asyncio.run(check())
    assert found.problems == [f"job {late} is completed but has no invoice and no reason it is not billed"]  # type: ignore[attr-defined]


def test_the_dry_run_shows_what_completing_the_job_would_invoice(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    from events.bridge import LoopThread

    price_list(api.jobstream)
    tom = api.technician("tom")
    customer = api.ok("/customers", {"name": "Dvořák", "billing_address": ADDRESS, "currency": "CZK"})["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 95}, who="tom")

    loop = LoopThread("test-invoicer")
    connection = loop.run(NatsConnection.open_on_running_loop(settings_of(stream_env)))
    invoicer = Invoicer(connection, Settings())
    loop.run(invoicer.answer_previews())
    try:
        with read_side(api, stream_env, read_model_url) as reader:
            preview = reader.get(f"/api/jobs/{job}/invoice-preview").json()
            assert preview["billable"] and preview["status"] == "in_progress"
            assert [(l["code"], l["quantity"], l["logged_minutes"]) for l in preview["lines"]] == [("repair", "2", 95)]
            assert "Invoice if completed now" in reader.get(f"/jobs/{job}").text
            assert invoices(api.jobstream) == ([], [])  # a dry run stores nothing
            api.ok(f"/jobs/{job}/complete", {"summary": "Done"}, who="tom")
            loop.run(invoicer.catch_up())
            (issued,), _ = invoices(api.jobstream)
            assert (str(issued.net_total), str(issued.gross_total)) == (preview["net_total"], preview["gross_total"])
    finally:
        loop.run(connection.aclose())
        loop.stop()


def test_a_signed_link_opens_the_pdf_for_the_customer_and_nothing_else() -> None:
    import time as clock
    import uuid as uuids

    import pytest

    from read_api import links

    invoice = uuids.uuid4()
    token, expires = links.sign(invoice, "s3cret", days=30)
    assert links.verify(token, "s3cret") == invoice
    assert expires > clock.time() + 29 * 86400
    _, _, mac = token.partition(".")
    other = links.sign(uuids.uuid4(), "s3cret")[0].partition(".")[0]
    for altered, why in [(f"{other}.{mac}", "not valid"), (token, "not valid"), (token, "expired")]:
        with pytest.raises(links.BadLink, match=why):
            if why == "expired":
                links.verify(altered, "s3cret", now=expires + 1)
            elif altered == token:
                links.verify(altered, "another secret")
            else:
                links.verify(altered, "s3cret")


def test_prepaid_hours_are_spent_once_and_a_low_balance_is_flagged(api: Api, stream_env: dict[str, str]) -> None:
    from events.contract import PrepaidBalanceLow, PrepaidHoursConsumed

    price_list(api.jobstream)
    office = Office(api.jobstream)
    package = api.post(f"/customers/{office.customer}/hours-packages", {"hours": "4", "warn_below_hours": "1.5"})
    assert package.status_code == 200, package.text
    assert api.post(f"/customers/{office.customer}/hours-packages", {"hours": "0"}).status_code == 422
    jobs = [office.completed_job(minutes=130), office.completed_job(minutes=130)]
    asyncio.run(invoice_all(stream_env, replicas=3))  # racing replicas: the same hours are never spent twice

    consumed, low = stored(api.jobstream, PrepaidHoursConsumed, PrepaidBalanceLow)
    assert [(c.job_id, c.minutes, c.balance_minutes) for c in consumed] == [(jobs[0], 130, 110), (jobs[1], 110, 0)]
    assert [(l.balance_minutes, l.warn_below_minutes) for l in low] == [(0, 90)]
    issued = {i.job_id: i for i in invoices(api.jobstream)[0]}
    assert issued[jobs[0]].gross_total == Decimal("0.00")
    assert [(l.kind, l.logged_minutes) for l in issued[jobs[1]].lines] == [("prepaid", 110), ("time", 20)]
    assert issued[jobs[1]].gross_total == Decimal("60.50")  # one started hour at 50.00, plus 21 %


def test_a_retainer_is_invoiced_once_a_month_from_its_first_month_until_it_ends(
    api: Api, stream_env: dict[str, str]
) -> None:
    from datetime import date

    from invoicer.retainers import RetainerBilling

    office = Office(api.jobstream)
    agreed = api.post(
        f"/customers/{office.customer}/retainers",
        {"description": "Monthly HVAC care", "amount": "200.00", "vat_rate": "21", "first_month": "2026-09"},
    )
    assert agreed.status_code == 200, agreed.text
    bad = api.post(
        f"/customers/{office.customer}/retainers",
        {"description": "x", "amount": "10", "vat_rate": "21", "first_month": "2026-13"},
    )
    assert bad.status_code == 422 and "first_month" in bad.text

    async def run(*days: date) -> list[int]:
        connections = [await NatsConnection.open_on_running_loop(settings_of(stream_env)) for _ in range(2)]
        try:
            done = []
            for day in days:  # two replicas at once, each day
                counts = await asyncio.gather(*(RetainerBilling(c, Settings()).run_once(day) for c in connections))
                done.append(sum(counts))
            return done
        finally:
            for connection in connections:
                await connection.aclose()

    assert asyncio.run(run(date(2026, 11, 23), date(2026, 11, 24))) == [3, 0]  # Sept, Oct, Nov; then nothing
    issued, allocated = invoices(api.jobstream)
    assert sorted(i.period for i in issued) == ["2026-09", "2026-10", "2026-11"]
    assert sorted(a.sequence for a in allocated) == [1, 2, 3]
    assert all(
        i.gross_total == Decimal("242.00") and i.lines[0].description.startswith("Monthly HVAC care") for i in issued
    )

    retainer_id = str(issued[0].retainer_id)
    ended = api.post(
        f"/customers/{office.customer}/retainers/end", {"retainer_id": retainer_id, "last_month": "2026-12"}
    )
    assert ended.status_code == 200, ended.text
    assert asyncio.run(run(date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1))) == [1, 0, 0]
    assert len(invoices(api.jobstream)[0]) == 4


def test_an_accepted_quote_gets_a_proforma_when_the_customer_wants_one(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    from events.contract import ProformaDocumentStored, ProformaIssued
    from tests.integration.test_payments import render_documents

    price_list(api.jobstream)
    wants = api.ok(
        "/customers", {"name": "Dvořák", "billing_address": ADDRESS, "currency": "CZK", "wants_proforma": True}
    )["id"]
    does_not = api.ok("/customers", {"name": "Horák", "billing_address": ADDRESS, "currency": "CZK"})["id"]
    jobs = {}
    for customer in (wants, does_not):
        job = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "New boiler"})["id"]
        api.ok(f"/jobs/{job}/quote", {"amount": "500.00"})
        api.ok(f"/jobs/{job}/quote/accept", {})
        jobs[customer] = job
    asyncio.run(invoice_all(stream_env))
    asyncio.run(invoice_all(stream_env))
    render_documents(stream_env)

    (proforma,), (document,) = stored(api.jobstream, ProformaIssued, ProformaDocumentStored)
    assert (proforma.job_id, proforma.number, proforma.gross_total) == (
        UUID(jobs[wants]),
        f"PRO/{YEAR}/000001",
        Decimal("605.00"),
    )  # 500 plus 21 %, the job type's rate
    assert document.media_type == "application/pdf" and invoices(api.jobstream)[0] == []  # no tax invoice

    with read_side(api, stream_env, read_model_url) as r:
        assert f"PRO/{YEAR}/000001" in r.get(f"/jobs/{jobs[wants]}").text
        pdf = r.get(f"/proformas/{proforma.id}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_an_interim_invoice_bills_the_work_to_date_and_the_final_one_only_the_rest(
    api: Api, stream_env: dict[str, str]
) -> None:
    price_list(api.jobstream)
    tom = api.technician("tom")
    customer = api.ok("/customers", {"name": "Dvořák", "billing_address": ADDRESS, "currency": "CZK"})["id"]
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 240}, who="tom")
    assert api.post(f"/jobs/{job}/interim-invoice", {}, who="tom").status_code == 403
    api.ok(f"/jobs/{job}/interim-invoice", {})
    asyncio.run(invoice_all(stream_env))
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-24T09:00:00Z", "minutes": 70}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Done"}, who="tom")
    asyncio.run(invoice_all(stream_env))
    asyncio.run(invoice_all(stream_env))

    first, final = sorted(invoices(api.jobstream)[0], key=lambda i: i.sequence)
    assert (first.interim, [(l.quantity, l.logged_minutes) for l in first.lines]) == (True, [(Decimal(4), 240)])
    assert (final.interim, [(l.quantity, l.logged_minutes) for l in final.lines]) == (False, [(Decimal(2), 70)])
    assert api.get(f"/jobs/{job}").json()["status"] == "invoiced"
    done = api.post(f"/jobs/{job}/interim-invoice", {})
    assert done.status_code == 409 and "invoiced" in done.json()["detail"]


def test_documents_rendered_ahead_by_worker_processes_are_stored_once_each(
    jobstream: JobstreamApp, stream_env: dict[str, str]
) -> None:
    from events.contract import InvoiceDocumentStored
    from invoicer.writer import DocumentWriter

    price_list(jobstream)
    office = Office(jobstream)
    jobs = [office.completed_job() for _ in range(6)]
    asyncio.run(invoice_all(stream_env))

    async def render() -> list[float]:
        connection = await NatsConnection.open_on_running_loop(settings_of(stream_env))
        writer = DocumentWriter(connection, workers=2)
        try:
            await writer.catch_up()
            await writer.catch_up()
            assert writer._pool is not None and writer._retiring is not None  # its idle timer is set
            writer._retire()  # what the timer does once nothing was rendered for IDLE seconds
            assert writer._pool is None
            jobs.append(await asyncio.to_thread(office.completed_job))  # and the next one starts them again
            await invoice_all(stream_env)
            await writer.catch_up()
            await writer.catch_up()
            return writer.render_seconds
        finally:
            writer.close()
            await connection.aclose()

    assert len(asyncio.run(render())) == len(jobs) == 7
    (stored_documents,) = stored(jobstream, InvoiceDocumentStored)
    assert Counter((d.id, d.media_type) for d in stored_documents) == Counter(
        {(invoice_id_of(job), kind): 1 for job in jobs for kind in ("application/pdf", "application/xml")}
    )
