"""No single event stops a consumer: events the command API would refuse today, written
straight to the stream (as an import or an older version would have stored them), are
parked as ProcessingFailed, and every consumer goes on with the next event. The office
can have a parked event tried again once its cause is fixed; a transient failure is
tried again on its own and never parked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from events.contract import (
    ActivityPriced,
    Address,
    BankStatementImported,
    CustomerRegistered,
    Event,
    InvoiceDocumentStored,
    InvoiceIssued,
    MessageQueued,
    PaymentApplied,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    RecurringPlan,
    RecurringServiceChanged,
    RecurringServiceDefined,
    StatementLine,
    Unit,
    decode_event,
    event_hash,
    failure_id,
    seal,
)
from events.jetstream import NatsConnection, StreamSettings
from invoicer.ids import invoice_id_of
from invoicer.invoicing import Invoicer
from invoicer.payments import PaymentMatcher
from invoicer.settings import Settings
from invoicer.writer import DocumentWriter
from notifier.service import Notifier
from notifier.service import Settings as NotifierSettings
from services.application import JobstreamApp
from tests.integration.conftest import ADDRESS, Api

NUL_CTL = "Nul\u0000Ctl\u0001 Ltd"


def straight(app: JobstreamApp, aggregate_id: UUID, *events: Event) -> int:
    """Events appended past the command API and its checks, as an import or an older
    version of jobstream may have stored them; the stream position of the last."""
    before = app.history(aggregate_id)
    version = before[-1].originator_version if before else 0
    sealed = seal(
        aggregate_id,
        version,
        event_hash(before[-1].state) if before else "",
        list(events),
        now=datetime.now(UTC),
        actor_id="import",
        actor_role="admin",
        command_id=f"import:{uuid.uuid4()}",
        correlation_id="import",
    )
    return app.recorder.insert_events(sealed)[-1]  # type: ignore[no-any-return]


def unreadable(app: JobstreamApp, aggregate_id: UUID, topic: str, payload: bytes) -> int:
    """A stored event that does not decode as its topic says (a field of the wrong type)."""
    return app.recorder.insert_events([StoredEvent(aggregate_id, 1, topic, payload)])[-1]  # type: ignore[no-any-return]


def of_type(app: JobstreamApp, kind: type[Event]) -> list[Any]:
    """Every stored event of this type (only these are decoded: others here do not decode)."""
    return [decode_event(n.state) for n in app.recorder.select_notifications(1, 1_000_000) if n.topic == kind.__name__]


def failures(app: JobstreamApp, consumer: str) -> list[ProcessingFailed]:
    return [f for f in of_type(app, ProcessingFailed) if f.consumer == consumer]


@contextlib.asynccontextmanager
async def connected(env: dict[str, str]) -> AsyncIterator[NatsConnection]:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        yield connection
    finally:
        await connection.aclose()


async def catch_up(env: dict[str, str], *makers: Any) -> list[Any]:
    """Each consumer (made on one connection) through what is stored now, in turn."""
    async with connected(env) as connection:
        consumers = []
        for make in makers:
            consumer = make(connection)
            try:
                await consumer.catch_up()
            finally:
                if isinstance(consumer, DocumentWriter):
                    consumer.close()
            consumers.append(consumer)
        return consumers


async def project(env: dict[str, str], read_model_url: str) -> int:
    """The board projection through what is stored now; the position it reached."""
    from projections.runner import Runner, build

    projection = build("board", read_model_url)
    try:
        async with connected(env) as connection:
            return await Runner(projection, connection).catch_up()
    finally:
        projection.close()


def parked_by_the_board(api: Api, env: dict[str, str], tmp_path: Path) -> tuple[str, ProcessingFailed]:
    """A customer stored with a name that is not text, and the board (on SQLite) past it:
    the view's URL and the failure it recorded."""
    url = f"sqlite:///{tmp_path / 'board.sqlite3'}"
    garbled = uuid.uuid4()
    unreadable(
        api.jobstream,
        garbled,
        "CustomerRegistered",
        b'{"type":"CustomerRegistered","id":"%s","name":5}' % str(garbled).encode(),
    )
    asyncio.run(project(env, url))
    (failure,) = failures(api.jobstream, "board")
    return url, failure


def billable_setup(api: Api, currency: str = "EUR") -> tuple[str, UUID]:
    """A default price list with repair work, and a technician with a token: (price list, tom)."""
    prices = api.ok("/price-lists", {"name": "Standard", "currency": currency, "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Repair work", "unit": "started_hour", "rate": "50.00", "vat_rate": "21"},
    )
    return prices, api.technician("tom")


def completed(api: Api, tom: UUID, customer: str) -> str:
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 60}, who="tom")
    api.ok(f"/jobs/{job}/complete", {"summary": "Fixed"}, who="tom")
    return job


def nul_customer(app: JobstreamApp) -> str:
    """The customer the probe registered, as it is stored (the door refuses such a name now)."""
    customer = uuid.uuid4()
    straight(
        app,
        customer,
        CustomerRegistered(id=customer, name=NUL_CTL, email="nul@example.com", billing_address=Address(**ADDRESS)),
    )
    return str(customer)


def test_the_document_writer_parks_the_nul_customers_invoice_and_documents_the_next(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The probe: lxml's "Char 0x0" in a render process came back as "cannot pickle
    '_ListErrorLog'", and every restart crashed on the same invoice. Now that invoice is
    parked with the reason in words, and the next gets its PDF, its XML and its email."""
    _prices, tom = billable_setup(api)
    poisoned = completed(api, tom, nul_customer(api.jobstream))
    normal = completed(
        api,
        tom,
        api.ok(
            "/customers", {"name": "Harbour Café", "email": "hello@harbourcafe.example", "billing_address": ADDRESS}
        )["id"],
    )

    asyncio.run(
        catch_up(stream_env, lambda c: Invoicer(c, Settings()), lambda c: DocumentWriter(c, workers=1))
    )  # rendered in a worker process

    (failure,) = failures(api.jobstream, "invoicer-documents")
    assert failure.aggregate_id == str(invoice_id_of(UUID(poisoned))) and failure.topic == "InvoiceIssued"
    assert failure.error_type == "RenderFailed" and "Char 0x0" in failure.error and "pickle" not in failure.error
    assert failure.id == failure_id("invoicer-documents", failure.position) and failure.event_id is not None
    documents = of_type(api.jobstream, InvoiceDocumentStored)
    assert {(d.id, d.media_type) for d in documents} == {
        (invoice_id_of(UUID(normal)), "application/pdf"),
        (invoice_id_of(UUID(normal)), "application/xml"),
    }

    # a restart goes on past it (nothing crashes, nothing is recorded twice), and the email goes out
    asyncio.run(catch_up(stream_env, lambda c: DocumentWriter(c, workers=1), lambda c: Notifier(c, NotifierSettings())))
    assert len(failures(api.jobstream, "invoicer-documents")) == 1
    queued = of_type(api.jobstream, MessageQueued)
    emails = [m for m in queued if m.channel == "email"]
    assert [(m.recipient, m.about_id) for m in emails] == [("hello@harbourcafe.example", invoice_id_of(UUID(normal)))]
    from tests.integration.conftest import read_side

    with read_side(api, stream_env, f"sqlite:///{tmp_path / 'read.sqlite3'}") as reader:
        assert reader.get(f"/invoices/{invoice_id_of(UUID(normal))}.pdf").content.startswith(b"%PDF")
        missing = reader.get(f"/invoices/{invoice_id_of(UUID(poisoned))}.pdf")
        assert missing.status_code == 404 and "Char 0x0" in missing.text and "Failures page" in missing.text


def test_a_projection_goes_on_past_events_it_cannot_project(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    first = api.ok("/customers", {"name": "Before", "billing_address": ADDRESS})
    garbled = uuid.uuid4()
    bad = unreadable(
        api.jobstream,
        garbled,
        "CustomerRegistered",
        b'{"type":"CustomerRegistered","id":"%s","name":5}' % str(garbled).encode(),
    )
    nul = nul_customer(api.jobstream)  # PostgreSQL cannot hold U+0000 in text
    last = api.ok("/customers", {"name": "After", "billing_address": ADDRESS})

    assert asyncio.run(project(stream_env, read_model_url)) >= last["position"]
    parked = failures(api.jobstream, "board")
    assert bad in {f.position for f in parked}
    (garbled_failure,) = [f for f in parked if f.position == bad]
    assert garbled_failure.error_type == "ValidationError" and "name" in garbled_failure.error
    assert garbled_failure.event_id is None  # not even its metadata could be read
    from read_api.queries import ReadModels

    models = ReadModels(read_model_url, "UTC")
    try:
        names = {c.name for c in models.customers()}
    finally:
        models.close()
    assert {"Before", "After"} <= names
    if read_model_url.startswith("postgresql"):
        assert any(f.aggregate_id == nul for f in parked)
    assert first["id"] != last["id"]
    again = asyncio.run(project(stream_env, read_model_url))  # a restart: nothing recorded twice
    assert again >= last["position"] and len(failures(api.jobstream, "board")) == len(parked)


def test_the_notifier_goes_on_past_an_event_it_cannot_read(api: Api, stream_env: dict[str, str]) -> None:
    tom = api.technician("tom")
    customer = api.customer()
    broken_job = uuid.uuid4()
    bad = unreadable(
        api.jobstream,
        broken_job,
        "JobScheduled",
        b'{"type":"JobScheduled","id":"%s","technician_ids":["not an id"],'
        b'"start":"2026-11-23T09:00:00Z","duration_minutes":60}' % str(broken_job).encode(),
    )
    job = api.scheduled_job(tom, customer)

    asyncio.run(catch_up(stream_env, lambda c: Notifier(c, NotifierSettings())))

    (failure,) = failures(api.jobstream, "notifier")
    assert (failure.position, failure.topic, failure.aggregate_id) == (bad, "JobScheduled", str(broken_job))
    queued = of_type(api.jobstream, MessageQueued)
    assert [(m.recipient, m.about_id) for m in queued if m.purpose == "job_assigned"] == [("tom", UUID(job))]


def test_the_payment_matcher_goes_on_past_a_statement_it_cannot_match(api: Api, stream_env: dict[str, str]) -> None:
    from tests.integration.test_payments import camt

    _prices, tom = billable_setup(api)
    job = completed(api, tom, api.customer())
    asyncio.run(catch_up(stream_env, lambda c: Invoicer(c, Settings())))
    (invoice,) = of_type(api.jobstream, InvoiceIssued)
    statement = uuid.uuid4()
    bad = straight(
        api.jobstream,
        statement,
        BankStatementImported(
            id=statement,
            format="camt.053",
            account="X",
            reference="OLD-1",
            sha256="0" * 64,
            part=1,
            parts=1,
            lines=[
                StatementLine(
                    index=1, booked_on="2026-11-23", amount=Decimal("NaN"), currency="EUR", text=invoice.number
                )
            ],
        ),
    )
    response = api.client.post(
        "/bank-statements",
        content=camt(
            [(str(invoice.gross_total), "EUR", "Novák", "CZ6508000000192000145399", invoice.number)], "STMT-OK"
        ),
        headers=api.headers("office", **{"Content-Type": "application/xml"}),
    )
    assert response.status_code == 201, response.text

    asyncio.run(catch_up(stream_env, PaymentMatcher))

    (failure,) = failures(api.jobstream, "payments")
    assert failure.position == bad and failure.error_type == "InvalidOperation"
    paid = of_type(api.jobstream, PaymentApplied)
    assert [(p.id, p.amount) for p in paid] == [(invoice.id, invoice.gross_total)]
    assert invoice.job_id == UUID(job)


def test_the_office_has_a_parked_event_tried_again_once_its_cause_is_fixed(
    api: Api, stream_env: dict[str, str]
) -> None:
    """A price imported as Infinity made pricing fail; the office prices the activity again
    and asks for the invoice once more: it is issued, and the failure is resolved."""
    prices, tom = billable_setup(api)
    straight(
        api.jobstream,
        UUID(prices),
        ActivityPriced(
            id=UUID(prices),
            code="repair",
            name="Repair work",
            unit=Unit.STARTED_HOUR,
            rate=Decimal("Infinity"),
            vat_rate=Decimal(21),
        ),
    )
    job = completed(api, tom, api.customer())
    asyncio.run(catch_up(stream_env, lambda c: Invoicer(c, Settings())))
    (failure,) = failures(api.jobstream, "invoicer")
    assert failure.aggregate_id == job and failure.error_type == "InvalidOperation"
    assert of_type(api.jobstream, InvoiceIssued) == []

    # tried again before the fix: it fails again, and can be tried once more
    asked = api.ok(f"/failures/{failure.id}/retry", {"reason": "try now"})
    assert api.post(f"/failures/{failure.id}/retry", {}).status_code == 409  # one retry at a time
    asyncio.run(catch_up(stream_env, lambda c: Invoicer(c, Settings())))
    (again,) = of_type(api.jobstream, ProcessingFailedAgain)
    assert again.id == failure.id and again.error_type == "InvalidOperation" and asked["position"]

    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Repair work", "unit": "started_hour", "rate": "50.00", "vat_rate": "21"},
    )
    api.ok(f"/failures/{failure.id}/retry", {})
    (invoicer,) = asyncio.run(catch_up(stream_env, lambda c: Invoicer(c, Settings())))
    assert invoicer.issued == 1
    (invoice,) = of_type(api.jobstream, InvoiceIssued)
    assert invoice.job_id == UUID(job) and invoice.gross_total == Decimal("60.50")
    (resolved,) = of_type(api.jobstream, ProcessingResolved)
    assert resolved.id == failure.id
    assert api.post(f"/failures/{failure.id}/retry", {}).status_code == 409  # resolved: nothing to try
    assert api.post(f"/failures/{failure.id}/retry", {}, who="accountant").status_code == 403
    assert api.post(f"/failures/{uuid.uuid4()}/retry", {}).status_code == 404
    asyncio.run(catch_up(stream_env, lambda c: Invoicer(c, Settings())))  # a restart: issued once
    assert len(of_type(api.jobstream, InvoiceIssued)) == 1


def test_a_projection_tries_a_parked_event_again_when_asked(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    url, failure = parked_by_the_board(api, stream_env, tmp_path)
    api.ok(f"/failures/{failure.id}/retry", {})
    reached = asyncio.run(project(stream_env, url))
    (again,) = of_type(api.jobstream, ProcessingFailedAgain)  # the event itself cannot change
    assert again.id == failure.id and again.error_type == "ValidationError"
    assert reached == api.jobstream.recorder.max_notification_id()


def test_the_scheduler_goes_on_past_a_recurring_service_it_cannot_plan(api: Api, stream_env: dict[str, str]) -> None:
    from services.recurring import Scheduler

    tom = api.technician("tom")
    customer = api.customer()
    broken = uuid.uuid4()
    plan = RecurringPlan(
        customer_id=UUID(customer),
        site_address=None,
        job_type="maintenance",
        description="Monthly check",
        technician_ids=[tom],
        rule="FREQ=FORTNIGHTLY",
        start=datetime(2026, 1, 5, 9, 0),
        timezone="Europe/Prague",
        duration_minutes=60,
        horizon_days=60,
    )
    straight(api.jobstream, broken, RecurringServiceDefined(id=broken, plan=plan))
    good = api.ok(
        "/recurring-services",
        {
            "customer_id": customer,
            "job_type": "maintenance",
            "description": "Weekly check",
            "technician_ids": [str(tom)],
            "rule": "FREQ=WEEKLY",
            "start": "2026-01-05T09:00:00",
            "timezone": "Europe/Prague",
            "duration_minutes": 60,
            "horizon_days": 30,
        },
    )
    app = JobstreamApp(stream_env)
    try:
        scheduler = Scheduler(app)
        app.run(scheduler.run_once())
        app.run(scheduler.run_once())  # again, as every minute: recorded once
        (failure,) = failures(api.jobstream, "scheduler")
        assert failure.aggregate_id == str(broken) and failure.topic == "RecurringServiceDefined"
        assert "FORTNIGHTLY" in failure.error
        assert api.get(f"/recurring-services/{good['id']}").json()["occurrences"]

        api.ok(f"/failures/{failure.id}/retry", {})  # the plan is still broken: it fails again
        app.run(scheduler.run_once())
        (again,) = of_type(api.jobstream, ProcessingFailedAgain)
        assert again.id == failure.id and "FORTNIGHTLY" in again.error
        straight(
            api.jobstream,
            broken,
            RecurringServiceChanged(
                id=broken,
                plan=msgspec.structs.replace(plan, rule="FREQ=WEEKLY;INTERVAL=2"),
                reason="fixed the imported rule",
            ),
        )
        api.ok(f"/failures/{failure.id}/retry", {})
        app.run(scheduler.run_once())
        (resolved,) = of_type(api.jobstream, ProcessingResolved)
        assert resolved.id == failure.id
        assert api.get(f"/recurring-services/{broken}").json()["occurrences"]  # its visits are planned now
    finally:
        app.close()


class Cuttable:
    """A TCP relay to the nats-server that the test can cut and mend: the network between
    a consumer and NATS failing for a while, for real."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cut = False
        self.open: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.open.update({writer, up_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def sever(self) -> None:
        self.cut = True
        for writer in self.open:
            writer.close()
        self.open.clear()

    async def stop(self) -> None:
        self.sever()
        if self.server is not None:
            self.server.close()


def test_a_transient_failure_is_tried_again_not_parked(
    api: Api, stream_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The invoicer loses NATS while a job is completed; it tries again with backoff and
    issues the invoice once NATS is back: nothing is parked, nothing stops."""
    from urllib.parse import urlparse

    _prices, tom = billable_setup(api)
    customer = api.customer()
    job = api.scheduled_job(tom, customer)
    api.ok(f"/jobs/{job}/start", {}, who="tom")
    api.ok(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T09:00:00Z", "minutes": 60}, who="tom")
    caplog.set_level(logging.WARNING, logger="jobstream.follow")
    nats_url = urlparse(stream_env["NATS_URL"])

    async def scenario() -> None:
        relay = Cuttable(nats_url.port or 4222)
        port = await relay.start()
        url = stream_env["NATS_URL"].replace(f":{nats_url.port}", f":{port}")
        env = {**stream_env, "NATS_URL": url}
        stop = asyncio.Event()
        async with connected(env) as connection:
            invoicer = Invoicer(connection, Settings())
            running = asyncio.ensure_future(invoicer.run(stop))
            loop = asyncio.get_running_loop()
            try:
                head = await connection.last_position()
                deadline = loop.time() + 60
                while invoicer._scanned < head:  # following: caught up with what is stored
                    assert not running.done(), running.exception()
                    assert loop.time() < deadline, "the invoicer never caught up"
                    await asyncio.sleep(0.05)
                relay.sever()  # the network goes; the job is completed meanwhile
                await asyncio.to_thread(api.ok, f"/jobs/{job}/complete", {"summary": "Fixed"}, "tom")
                while "trying again in" not in caplog.text:  # it met the failure, and waits to try again
                    assert not running.done(), running.exception()
                    assert loop.time() < deadline, "the invoicer never met the cut network"
                    await asyncio.sleep(0.05)
                relay.cut = False  # the network comes back
                while invoicer.issued == 0:
                    assert not running.done(), running.exception()
                    assert loop.time() < deadline + 60, "the invoice was never issued"
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(running, 30)
                await relay.stop()
        assert invoicer.parked == 0

    asyncio.run(scenario())
    (invoice,) = of_type(api.jobstream, InvoiceIssued)
    assert invoice.job_id == UUID(job)
    assert of_type(api.jobstream, ProcessingFailed) == []  # the office has nothing to do


def test_the_read_api_lists_failures_straight_from_the_stream(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.integration.conftest import read_side

    tom = api.technician("tom")
    broken_job = uuid.uuid4()
    unreadable(
        api.jobstream,
        broken_job,
        "JobScheduled",
        b'{"type":"JobScheduled","id":"%s","technician_ids":["not an id"],'
        b'"start":"2026-11-23T09:00:00Z","duration_minutes":60}' % str(broken_job).encode(),
    )
    api.scheduled_job(tom)
    asyncio.run(catch_up(stream_env, lambda c: Notifier(c, NotifierSettings())))
    (failure,) = failures(api.jobstream, "notifier")
    with read_side(api, stream_env, f"sqlite:///{tmp_path / 'read.sqlite3'}") as reader:
        listed = reader.get("/api/failures", params={"state": "open"}).json()
        assert [
            (f["id"], f["doing"], f["what"], f["aggregate"], f["state"]) for f in listed if f["consumer"] == "notifier"
        ] == [(str(failure.id), "Emails and alerts", "job scheduled", "job", "open")]
        refused = reader.get("/api/failures", params={"state": "gone"})
        assert refused.status_code == 422 and isinstance(refused.json()["detail"], list)
        page = reader.get("/failures")
        assert page.status_code == 200 and f'data-failure="{failure.id}"' in page.text and "Try again" in page.text
        as_technician = reader.get("/api/failures", headers={"Authorization": f"Bearer {api.tokens['tom']}"})
        assert as_technician.status_code == 403


def test_a_projector_stopped_after_committing_a_retry_records_its_resolution_when_it_starts(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The view committed the retried event with the request's position (one transaction)
    and the projector stopped before recording the outcome: the next start records it."""
    from eventsourcing.persistence import Tracking

    from projections.runner import build

    url, failure = parked_by_the_board(api, stream_env, tmp_path)
    asked = api.ok(f"/failures/{failure.id}/retry", {})
    projection = build("board", url)
    try:  # what the runner's retry commits, as if it stopped right after
        committed = projection.view.max_tracking_id("board")
        assert projection.process_batch([], Tracking("board", asked["position"]), committed)
    finally:
        projection.close()
    asyncio.run(project(stream_env, url))
    (resolved,) = of_type(api.jobstream, ProcessingResolved)
    assert resolved.id == failure.id and of_type(api.jobstream, ProcessingFailedAgain) == []
