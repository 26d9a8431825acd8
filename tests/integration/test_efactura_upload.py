"""The e-Factura uploader on a real nats-server against the HTTP stand-in of ANAF's API
(tests/efactura_standin, validating with the CIUS-RO schematron when ../shared is there):
Romanian invoices issued by the real invoicer from completed jobs, uploaded once, accepted
with their upload indexes and ANAF's signed answers stored; after a kill with the upload
claimed, a refusal, an outage and back, and an answer lost after the XML reached ANAF.

The uploader (``invoicer-efactura``) is driven step by step with a clock of the test's own
(``catch_up`` prepares, ``send_due`` does whatever is due), so a retry or an expired lease
is reached by moving the clock; the stand-in's background processing is waited for with
``processed()``, never with a sleep."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import pytest

from events.contract import (
    Address,
    AddTimeEntry,
    CompleteJob,
    CreatePriceList,
    InvoiceIssued,
    PriceActivity,
    RegisterCustomer,
    RegisterTechnician,
    RequestJob,
    Role,
    ScheduleJob,
    StartWork,
    Unit,
    decode_event,
)
from events.contract.efactura import (
    EfacturaAccepted,
    EfacturaAnswerStored,
    EfacturaAttemptFailed,
    EfacturaDocumentPrepared,
    EfacturaEvent,
    EfacturaRefused,
    EfacturaUploaded,
    efactura_id,
)
from events.jetstream import NatsConnection, StreamSettings
from invoicer.efactura.client import EfacturaClient, EfacturaConfig, Upload
from invoicer.efactura.submission import SubmissionSettings
from invoicer.efactura.uploader import EfacturaSettings, EfacturaUploader
from invoicer.invoicing import Invoicer
from invoicer.pricing import Seller
from invoicer.settings import Settings
from services.application import JobstreamApp
from services.domain.common import Actor
from tests.integration.conftest import stored

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn

OFFICE = Actor(id="ioana", role=Role.OFFICE)
CIF = "18547290"
ROMANIAN = Settings(
    seller=Seller(
        name="Instalații Popescu SRL",
        address=Address(street="Strada Lipscani 10", city="București", postal_code="030031", country="RO"),
        vat_id=f"RO{CIF}",
        email="facturi@popescu.example",
        bank_account="RO49 AAAA 1B31 0075 9384 0000",
        timezone="Europe/Bucharest",
        material_vat_rate=Decimal(21),
    )
)
SETTINGS = EfacturaSettings(url="http://efactura.invalid", token="t", submission=SubmissionSettings(poll_seconds=30))
T = TypeVar("T")


class Office:
    """Romanian customers' jobs taken from request to completion through the write side."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        prices = app.execute(
            app.new_id(OFFICE, None), CreatePriceList(name="Tarife", currency="RON", is_default=True), OFFICE
        ).id
        app.execute(
            prices,
            PriceActivity(
                code="reparatie", name="Reparație", unit=Unit.STARTED_HOUR, rate=Decimal("150.00"), vat_rate=Decimal(21)
            ),
            OFFICE,
        )
        self.tech = app.execute(app.new_id(OFFICE, None), RegisterTechnician(name="Andrei"), OFFICE).id
        self.company = self._customer(
            name="Brutăria Dulce SRL",
            vat_id="RO14399840",
            billing_address=Address(
                street="Bulevardul Unirii 20", city="București", postal_code="040104", country="RO"
            ),
        )
        self.household = self._customer(  # a consumer without a CNP: uploaded with /uploadb2c
            name="Ion Ionescu",
            billing_address=Address(
                street="Strada Memorandumului 3", city="Cluj-Napoca", postal_code="400114", country="RO"
            ),
        )

    def _customer(self, **details: Any) -> UUID:
        command = RegisterCustomer(currency="RON", language="ro", email="contabil@client.example", **details)
        return self.app.execute(self.app.new_id(OFFICE, None), command, OFFICE).id

    def completed_job(self, customer: UUID | None = None, minutes: int = 130) -> UUID:
        app, job = self.app, self.app.new_id(OFFICE, None)
        app.execute(
            job, RequestJob(customer_id=customer or self.company, job_type="reparatie", description="Scurgere"), OFFICE
        )
        app.execute(job, ScheduleJob(technician_ids=[self.tech], start=datetime.now(UTC)), OFFICE)
        app.execute(job, StartWork(), OFFICE)
        app.execute(job, AddTimeEntry(started_at=datetime.now(UTC), minutes=minutes), OFFICE)
        app.execute(job, CompleteJob(summary="Garnitură schimbată"), OFFICE)
        return job


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Died(BaseException):
    """The uploading process died (a kill): nothing after it ran."""


class DiesAfterUploading:
    """ANAF's client in a process killed once ANAF has the XML, before its answer is read."""

    def __init__(self, client: EfacturaClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def upload(self, xml: bytes, **how: Any) -> Upload:
        await self.client.upload(xml, **how)
        raise Died


class DiesBeforeUploading(DiesAfterUploading):
    """Killed after the claim, before the XML left."""

    async def upload(self, xml: bytes, **how: Any) -> Upload:
        raise Died


def run(env: dict[str, str], work: Callable[[NatsConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        try:
            return await work(connection)
        finally:
            await connection.aclose()

    return asyncio.run(go())


def issue(env: dict[str, str]) -> None:
    run(env, lambda c: Invoicer(c, ROMANIAN).catch_up())


def upload(
    env: dict[str, str],
    standin: StandIn,
    clock: Clock,
    wrap: Callable[[EfacturaClient], Any] = lambda c: c,
    timeout: float = 30.0,
) -> EfacturaUploader:
    """One uploader, as a process that starts, works and stops: prepares what the stream
    holds, then does whatever is due, over the real client."""

    async def work(connection: NatsConnection) -> EfacturaUploader:
        client = EfacturaClient(EfacturaConfig(url=standin.url, token=standin.token, timeout=timeout))
        uploader = EfacturaUploader(connection, wrap(client), SETTINGS, clock)
        try:
            await uploader.catch_up()
            await uploader.recover()
            await uploader.send_due()
        finally:
            await client.aclose()
        return uploader

    return run(env, work)


def until_answered(env: dict[str, str], standin: StandIn, clock: Clock) -> None:
    """The stand-in processes what it took; the uploader polls after its interval."""
    standin.processed()
    clock.now += timedelta(seconds=SETTINGS.submission.poll_seconds)
    upload(env, standin, clock)


def events_of(app: JobstreamApp, document: UUID) -> list[EfacturaEvent]:
    return [decode_event(s.state) for s in app.recorder.select_events(efactura_id(document))]  # type: ignore[misc]


def kinds(events: list[EfacturaEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def objects(env: dict[str, str], name: str) -> bytes:
    async def get(connection: NatsConnection) -> bytes:
        store = await connection.documents()
        return (await store.get(name)).data  # type: ignore[no-any-return]

    return run(env, get)


def the_invoice(app: JobstreamApp) -> InvoiceIssued:
    ((invoice,),) = stored(app, InvoiceIssued)
    return invoice  # type: ignore[no-any-return]


@pytest.fixture
def office(jobstream: JobstreamApp) -> Office:
    return Office(jobstream)


def test_a_day_of_romanian_invoices_each_accepted_once_with_its_index_and_answer(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    jobs = [office.completed_job(minutes=30 + 20 * n) for n in range(3)]
    consumer_job = office.completed_job(office.household)
    issue(stream_env)
    clock = Clock()

    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)

    (issued,) = stored(jobstream, InvoiceIssued)
    assert sorted(i.job_id for i in issued) == sorted([*jobs, consumer_job])
    for invoice in issued:
        events = events_of(jobstream, invoice.id)
        assert kinds(events) == [
            "EfacturaDocumentPrepared",
            "EfacturaUploadStarted",
            "EfacturaUploaded",
            "EfacturaAccepted",
            "EfacturaAnswerStored",
        ], [(u.state, u.messages) for u in efactura_standin.of(invoice.number)]
        prepared, _, uploaded, accepted, answer = events
        assert isinstance(prepared, EfacturaDocumentPrepared) and isinstance(uploaded, EfacturaUploaded)
        assert isinstance(accepted, EfacturaAccepted) and isinstance(answer, EfacturaAnswerStored)
        assert all(e.id == invoice.id for e in events)  # every event names its document
        assert prepared.number == invoice.number and prepared.cif == CIF
        assert prepared.b2c == (invoice.job_id == consumer_job)
        xml = objects(stream_env, prepared.xml_name)
        assert hashlib.sha256(xml).hexdigest() == prepared.xml_sha256
        (there,) = efactura_standin.of(invoice.number)  # ANAF has it once, as it was prepared
        assert there.xml == xml and there.state == "ok" and there.b2c == prepared.b2c
        assert uploaded.upload_index == accepted.upload_index == there.index and not uploaded.found
        assert accepted.download_id == there.download_id
        zipped = objects(stream_env, answer.name)
        assert hashlib.sha256(zipped).hexdigest() == answer.sha256 and answer.media_type == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            assert archive.read(f"{there.index}.xml") == xml
            assert f"semnatura_{there.index}.xml" in archive.namelist()
    assert len(efactura_standin.uploads) == 4


def test_killed_after_the_claim_before_the_xml_left_it_is_uploaded_once_after_looking(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()

    with pytest.raises(Died):
        upload(stream_env, efactura_standin, clock, DiesBeforeUploading)
    invoice = the_invoice(jobstream)
    assert kinds(events_of(jobstream, invoice.id)) == ["EfacturaDocumentPrepared", "EfacturaUploadStarted"]

    upload(stream_env, efactura_standin, clock)  # at once: the claim may be alive
    assert efactura_standin.uploads == []

    clock.now += SETTINGS.submission.lease  # its claimant is taken as dead: looked for, not there
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    assert kinds(events_of(jobstream, invoice.id)) == [
        "EfacturaDocumentPrepared",
        "EfacturaUploadStarted",
        "EfacturaUploadStarted",
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaAnswerStored",
    ]
    assert len(efactura_standin.of(invoice.number)) == 1


def test_killed_once_anaf_had_the_xml_the_next_process_finds_it_and_never_uploads_again(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()

    with pytest.raises(Died):
        upload(stream_env, efactura_standin, clock, DiesAfterUploading)
    invoice = the_invoice(jobstream)
    (first,) = efactura_standin.of(invoice.number)
    efactura_standin.processed()  # ANAF lists an upload once it processed it

    clock.now += SETTINGS.submission.lease
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)

    events = events_of(jobstream, invoice.id)
    assert kinds(events) == [
        "EfacturaDocumentPrepared",
        "EfacturaUploadStarted",
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaAnswerStored",
    ]
    uploaded = events[2]
    assert isinstance(uploaded, EfacturaUploaded) and uploaded.found and uploaded.upload_index == first.index
    assert efactura_standin.of(invoice.number) == [first]  # ANAF has it once
    assert ("POST", "/upload", 200) in efactura_standin.requests
    assert sum(1 for m, p, _ in efactura_standin.requests if m == "POST") == 1


def test_a_refusal_is_recorded_with_anafs_messages_and_not_uploaded_again(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    message = "E: [BR-RO-100] Adresa vanzatorului (BT-35) trebuie sa contina strada"
    efactura_standin.refuse_next(message)

    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    clock.now += timedelta(days=1)
    upload(stream_env, efactura_standin, clock)

    invoice = the_invoice(jobstream)
    events = events_of(jobstream, invoice.id)
    assert kinds(events) == [
        "EfacturaDocumentPrepared",
        "EfacturaUploadStarted",
        "EfacturaUploaded",
        "EfacturaRefused",
        "EfacturaAnswerStored",
    ]
    refused, answer = events[3], events[4]
    assert isinstance(refused, EfacturaRefused) and isinstance(answer, EfacturaAnswerStored)
    assert refused.state == "nok" and refused.messages == [message]
    (there,) = efactura_standin.of(invoice.number)
    assert refused.upload_index == there.index and refused.download_id == there.download_id
    assert message.encode() in zipfile.ZipFile(io.BytesIO(objects(stream_env, answer.name))).read(f"{there.index}.xml")


def test_anaf_down_the_attempts_are_recorded_with_backoff_and_the_invoice_is_accepted_when_it_is_back(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    efactura_standin.down()

    upload(stream_env, efactura_standin, clock)
    invoice = the_invoice(jobstream)
    events = events_of(jobstream, invoice.id)
    assert kinds(events) == ["EfacturaDocumentPrepared", "EfacturaUploadStarted", "EfacturaAttemptFailed"]
    failed = events[2]
    assert isinstance(failed, EfacturaAttemptFailed) and not failed.uncertain  # refused: nothing left
    assert failed.retry_at == clock.now + timedelta(seconds=SubmissionSettings().backoff[0])

    clock.now = failed.retry_at - timedelta(seconds=1)
    upload(stream_env, efactura_standin, clock)  # not due yet: nothing tried
    assert len(events_of(jobstream, invoice.id)) == 3

    clock.now = failed.retry_at
    upload(stream_env, efactura_standin, clock)  # still down: one more attempt, later
    again = events_of(jobstream, invoice.id)[3:]
    assert kinds(again) == ["EfacturaUploadStarted", "EfacturaAttemptFailed"]
    assert isinstance(again[1], EfacturaAttemptFailed) and again[1].attempt == 2
    assert again[1].retry_at == clock.now + timedelta(seconds=SubmissionSettings().backoff[1])

    efactura_standin.up()
    clock.now = again[1].retry_at
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    assert kinds(events_of(jobstream, invoice.id))[5:] == [
        "EfacturaUploadStarted",
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaAnswerStored",
    ]
    assert len(efactura_standin.of(invoice.number)) == 1


def test_a_5xx_to_the_upload_is_looked_for_before_uploading_again(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    efactura_standin.fail_next(1, 503)

    upload(stream_env, efactura_standin, clock)
    invoice = the_invoice(jobstream)
    failed = events_of(jobstream, invoice.id)[-1]
    assert isinstance(failed, EfacturaAttemptFailed) and failed.uncertain  # it may be at ANAF

    clock.now += SETTINGS.submission.lease  # looked for, not there (the 503 came before it): uploaded
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    assert kinds(events_of(jobstream, invoice.id))[-3:] == [
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaAnswerStored",
    ]
    assert len(efactura_standin.of(invoice.number)) == 1
    assert [p for m, p, _ in efactura_standin.requests].count("/listaMesajeFactura") == 1


def test_a_slow_anaf_times_the_upload_out_and_the_upload_it_took_is_found_not_repeated(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    efactura_standin.slow(1.5)

    upload(stream_env, efactura_standin, clock, timeout=0.5)
    invoice = the_invoice(jobstream)
    failed = events_of(jobstream, invoice.id)[-1]
    assert isinstance(failed, EfacturaAttemptFailed) and failed.uncertain
    efactura_standin.slow(0)
    assert len(efactura_standin.of(invoice.number)) == 1  # the stand-in took it all the same
    efactura_standin.processed()

    clock.now += SETTINGS.submission.lease
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    uploaded = next(e for e in events_of(jobstream, invoice.id) if isinstance(e, EfacturaUploaded))
    assert uploaded.found
    assert kinds(events_of(jobstream, invoice.id))[-2:] == ["EfacturaAccepted", "EfacturaAnswerStored"]
    assert len(efactura_standin.of(invoice.number)) == 1


def test_settings_come_from_the_environment(efactura_standin: StandIn) -> None:
    assert EfacturaSettings.from_env({}) is None
    settings = EfacturaSettings.from_env({**efactura_standin.env(), "EFACTURA_POLL_SECONDS": "5"})
    assert settings is not None and settings.url == efactura_standin.url and settings.submission.poll_seconds == 5
    with pytest.raises(SystemExit, match="EFACTURA_"):
        EfacturaSettings.from_env({**efactura_standin.env(), "EFACTURA_LEASE_SECONDS": "soon"})


def test_a_credit_note_is_uploaded_as_cn_and_accepted(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    from events.contract import CreditNoteIssued, IssueCreditNote

    office.completed_job()
    issue(stream_env)
    invoice = the_invoice(jobstream)
    jobstream.execute(invoice.id, IssueCreditNote(reason="Cota TVA greșită"), OFFICE)
    issue(stream_env)
    clock = Clock()

    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)

    ((note,),) = stored(jobstream, CreditNoteIssued)
    events = events_of(jobstream, note.id)
    assert kinds(events)[-2:] == ["EfacturaAccepted", "EfacturaAnswerStored"]
    prepared = events[0]
    assert isinstance(prepared, EfacturaDocumentPrepared) and prepared.document_kind == "credit_note"
    (there,) = efactura_standin.of(note.number)
    assert there.standard == "CN" and there.state == "ok", there.messages
    assert [u.standard for u in efactura_standin.of(invoice.number)] == ["UBL"]


def test_a_seller_outside_romania_uploads_nothing(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office.completed_job()
    run(stream_env, lambda c: Invoicer(c, Settings()).catch_up())  # the default seller is Polish

    uploader = upload(stream_env, efactura_standin, Clock())

    assert events_of(jobstream, the_invoice(jobstream).id) == []
    assert efactura_standin.requests == [] and not uploader.pending


def test_two_uploaders_racing_upload_each_invoice_once(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    for n in range(3):
        office.completed_job(minutes=40 + 10 * n)
    issue(stream_env)
    clock = Clock()

    async def race(connection: NatsConnection) -> None:
        clients = [EfacturaClient(EfacturaConfig(url=efactura_standin.url, token=efactura_standin.token)) for _ in "ab"]
        uploaders = [EfacturaUploader(connection, client, SETTINGS, clock) for client in clients]
        try:
            await uploaders[0].catch_up()
            for uploader in uploaders:
                await uploader.recover()
            await asyncio.gather(*(uploader.send_due() for uploader in uploaders))
        finally:
            for client in clients:
                await client.aclose()

    run(stream_env, race)
    until_answered(stream_env, efactura_standin, clock)

    (issued,) = stored(jobstream, InvoiceIssued)
    assert len(issued) == 3
    for invoice in issued:
        assert len(efactura_standin.of(invoice.number)) == 1
        assert kinds(events_of(jobstream, invoice.id)).count("EfacturaUploadStarted") == 1
        assert kinds(events_of(jobstream, invoice.id))[-2:] == ["EfacturaAccepted", "EfacturaAnswerStored"]
