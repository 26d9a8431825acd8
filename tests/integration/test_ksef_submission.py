"""The KSeF submitter on a real nats-server: Polish invoices issued by the real invoicer from
completed jobs, prepared as FA(3), sent once, accepted with their KSeF numbers and UPOs;
after a kill mid-send, a duplicate, a refusal, an outage and back.

``Office`` takes jobs from request to completion through the write side; the invoicer
issues their invoices; the submitter (``invoicer-ksef``) is driven step by step with a clock
of the test's own (``catch_up`` prepares, ``send_due`` sends whatever is due), so a retry or
an expired lease is reached by moving the clock, never by sleeping. ``MinistryDesk`` is an
in-memory KSeF with KSeF's rules for what matters here (a number per seller, type and
invoice number; a duplicate refused with the number it already has; content refused;
down); the tests against the HTTP stand-in (tests/ksef_standin) run the same flows over the
real client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID
from xml.etree import ElementTree as ET

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
)
from events.contract.ksef import (
    KsefAccepted,
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefDocumentPrepared,
    KsefEvent,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
    ksef_id,
)
from events.jetstream import NatsConnection, StreamSettings
from invoicer.invoicing import Invoicer
from invoicer.ksef.client import KsefClient
from invoicer.ksef.submission import Accept, Refuse, SubmissionSettings
from invoicer.ksef.submitter import ClientKsef, Ksef, KsefFailed, KsefSettings, KsefSubmitter
from invoicer.pricing import Seller
from invoicer.settings import Settings
from services.application import JobstreamApp
from services.domain.common import Actor
from tests.integration.conftest import stored

if TYPE_CHECKING:  # the stand-in is imported by the tests that use it (it takes seconds)
    from tests.ksef_standin.server import StandIn

ROOT = Path(__file__).resolve().parents[2]
OFFICE = Actor(id="olga", role=Role.OFFICE)
NIP = "5261040828"
WARSAW = Address(street="ul. Długa 1", city="Kraków", postal_code="31-147", country="PL")
POLISH = Settings(
    seller=Seller(
        name="Instalacje Demo sp. z o.o.",
        address=WARSAW,
        vat_id=f"PL{NIP}",
        bank_account="PL61 1090 1014 0000 0712 1981 2874",
        timezone="Europe/Warsaw",
    )
)
CZECH = Settings(
    seller=Seller(
        name="Novák Servis s.r.o.",
        address=Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ"),
        vat_id="CZ12345678",
    )
)
T = TypeVar("T")


class Office:
    """Polish customers' jobs taken from request to completion through the write side."""

    def __init__(self, app: JobstreamApp) -> None:
        self.app = app
        prices = app.execute(
            app.new_id(OFFICE, None), CreatePriceList(name="Cennik", currency="PLN", is_default=True), OFFICE
        ).id
        app.execute(
            prices,
            PriceActivity(
                code="repair", name="Naprawa", unit=Unit.STARTED_HOUR, rate=Decimal("180.00"), vat_rate=Decimal(23)
            ),
            OFFICE,
        )
        self.tech = app.execute(app.new_id(OFFICE, None), RegisterTechnician(name="Tomasz"), OFFICE).id
        self.customer = app.execute(
            app.new_id(OFFICE, None),
            RegisterCustomer(
                name="Kowalski Budownictwo sp. j.",
                billing_address=Address(street="ul. Floriańska 3", city="Kraków", postal_code="31-019", country="PL"),
                vat_id="PL7740001454",
                currency="PLN",
                language="pl",
            ),
            OFFICE,
        ).id

    def completed_job(self, minutes: int = 130) -> UUID:
        app, job = self.app, self.app.new_id(OFFICE, None)
        app.execute(job, RequestJob(customer_id=self.customer, job_type="repair", description="Przeciek"), OFFICE)
        app.execute(job, ScheduleJob(technician_ids=[self.tech], start=datetime.now(UTC)), OFFICE)
        app.execute(job, StartWork(), OFFICE)
        app.execute(job, AddTimeEntry(started_at=datetime.now(UTC), minutes=minutes), OFFICE)
        app.execute(job, CompleteJob(summary="Uszczelka wymieniona"), OFFICE)
        return job


class MinistryDesk:
    """An in-memory KSeF: numbers per (seller NIP, type, invoice number), a duplicate refused
    with the number it has (code 440), content refused on request (450), and down on request."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str, str], str] = {}
        self.taken: dict[str, tuple[str, str, bytes, bool]] = {}  # invoice reference -> (key, number, fa3, offline)
        self.sends = 0
        self.sessions_opened = 0
        self.sessions_closed = 0
        self.down = False
        self.refuse: set[str] = set()  # invoice numbers refused for their content
        self.die_after_taking = False  # the sender dies once KSeF has the document, before the answer

    def _check(self) -> None:
        if self.down:
            raise KsefFailed("KSeF did not answer: connection refused", unavailable=True)

    async def open_session(self) -> str:
        self._check()
        self.sessions_opened += 1
        return f"20261203-SO-{self.sessions_opened:010d}-0000000000-00"

    async def send(self, session: str, fa3: bytes, *, offline: bool) -> str:
        self._check()
        self.sends += 1
        root = ET.fromstring(fa3)
        ns = {"f": root.tag[1:].split("}")[0]}
        nip = root.findtext("f:Podmiot1/f:DaneIdentyfikacyjne/f:NIP", namespaces=ns) or ""
        kind = root.findtext("f:Fa/f:RodzajFaktury", namespaces=ns) or ""
        number = root.findtext("f:Fa/f:P_2", namespaces=ns) or ""
        key = (nip, kind, number)
        reference = f"INV-{self.sends:06d}"
        if key in self.numbers:
            self.taken[reference] = ("duplicate", self.numbers[key], fa3, offline)
        elif number in self.refuse:
            self.taken[reference] = ("refused", "", fa3, offline)
        else:
            digest = hashlib.sha256(fa3).hexdigest().upper()
            self.numbers[key] = f"{nip}-20261203-{digest[:6]}-{digest[6:12]}-{digest[12:14]}"
            self.taken[reference] = ("accepted", self.numbers[key], fa3, offline)
        if self.die_after_taking:
            self.die_after_taking = False
            raise Died
        return reference

    async def status(self, session: str, invoice: str, *, number: str, issue_date: date) -> Accept | Refuse | None:
        self._check()
        outcome, number, _, _ = self.taken[invoice]
        if outcome == "refused":
            return Refuse(code=450, reason="Błąd weryfikacji semantyki dokumentu faktury", details=["P_15"])
        return Accept(ksef_number=number, accepted_at=NOW, duplicate=outcome == "duplicate")

    async def upo(self, session: str, invoice: str, ksef_number: str) -> bytes:
        self._check()
        return f"<UPO><NumerKSeFDokumentu>{ksef_number}</NumerKSeFDokumentu></UPO>".encode()

    async def close_session(self, session: str) -> None:
        self.sessions_closed += 1


class Died(BaseException):
    """The sending process died (a kill): nothing after it ran."""


NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


SETTINGS = KsefSettings(url="http://ksef.invalid", nip=NIP, token="t", poll_seconds=0, submission=SubmissionSettings())


def run(env: dict[str, str], work: Callable[[NatsConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        try:
            return await work(connection)
        finally:
            await connection.aclose()

    return asyncio.run(go())


def issue(env: dict[str, str], settings: Settings = POLISH) -> None:
    run(env, lambda c: Invoicer(c, settings).catch_up())


def submit(env: dict[str, str], desk: Ksef | Callable[[], ClientKsef], clock: Clock, **settings: Any) -> KsefSubmitter:
    """One submitter, as a process that starts, works and stops: prepares what the stream
    holds, then sends whatever is due. ``desk`` is a KSeF, or makes the client of one (its
    HTTP connections live on this run's loop)."""

    async def work(connection: NatsConnection) -> KsefSubmitter:
        ksef = desk() if callable(desk) else desk
        submitter = KsefSubmitter(connection, ksef, SETTINGS if not settings else _settings(**settings), clock)
        try:
            await submitter.catch_up()
            await submitter.recover()
            await submitter.send_due()
            await submitter.close_session()
        finally:
            if isinstance(ksef, ClientKsef):
                await ksef.aclose()
        return submitter

    return run(env, work)


def _settings(**changes: Any) -> KsefSettings:
    import msgspec

    return msgspec.structs.replace(SETTINGS, **changes)


def _decoded(app: JobstreamApp, document: UUID) -> list[KsefEvent]:
    from events.contract import decode_event

    return [decode_event(s.state) for s in app.recorder.select_events(ksef_id(document))]  # type: ignore[misc]


def kinds(events: list[KsefEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def objects(env: dict[str, str], name: str) -> bytes:
    async def get(connection: NatsConnection) -> bytes:
        store = await connection.documents()
        return (await store.get(name)).data  # type: ignore[no-any-return]

    return run(env, get)


@pytest.fixture
def office(jobstream: JobstreamApp) -> Office:
    return Office(jobstream)


def test_a_day_of_polish_invoices_each_accepted_once_with_its_number_and_upo(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    czech_job = office.completed_job()
    issue(stream_env, CZECH)  # a seller outside Poland: KSeF never hears of it
    jobs = [office.completed_job(minutes=30 + 7 * n) for n in range(20)]
    issue(stream_env)
    desk, clock = MinistryDesk(), Clock()

    submitter = submit(stream_env, desk, clock)

    (issued,) = stored(jobstream, InvoiceIssued)
    polish = [i for i in issued if i.job_id in jobs]
    assert len(polish) == 20
    for invoice in polish:
        events = _decoded(jobstream, invoice.id)
        assert kinds(events) == [
            "KsefDocumentPrepared",
            "KsefSendStarted",
            "KsefSent",
            "KsefAccepted",
            "KsefUpoStored",
        ]
        prepared, _, _, accepted, upo = events
        assert isinstance(prepared, KsefDocumentPrepared) and isinstance(accepted, KsefAccepted)
        assert isinstance(upo, KsefUpoStored)
        assert all(e.id == invoice.id for e in events)  # every event names its document
        assert prepared.number == invoice.number and prepared.seller_nip == NIP and prepared.invoice_type == "VAT"
        fa3 = objects(stream_env, prepared.fa3_name)
        assert hashlib.sha256(fa3).hexdigest() == prepared.fa3_sha256 and len(fa3) == prepared.fa3_size
        assert accepted.ksef_number == desk.numbers[(NIP, "VAT", invoice.number)] and not accepted.duplicate
        assert accepted.ksef_number.encode() in objects(stream_env, upo.upo_name)
    czech = next(i for i in issued if i.job_id == czech_job)
    assert _decoded(jobstream, czech.id) == []
    assert desk.sends == 20 and len(desk.numbers) == 20
    assert desk.sessions_opened == 1 and desk.sessions_closed == 1  # one session for the day's work
    assert submitter.name == "invoicer-ksef" and not submitter.pending


def test_killed_between_the_send_and_the_answer_the_next_process_records_the_number_once(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    issue(stream_env)
    desk, clock = MinistryDesk(), Clock()
    desk.die_after_taking = True

    with pytest.raises(Died):
        submit(stream_env, desk, clock)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    assert kinds(_decoded(jobstream, invoice.id)) == ["KsefDocumentPrepared", "KsefSendStarted"]

    submit(stream_env, desk, clock)  # at once: the claim is another process's, and may be alive
    assert kinds(_decoded(jobstream, invoice.id)) == ["KsefDocumentPrepared", "KsefSendStarted"]
    assert desk.sends == 1

    clock.now += SubmissionSettings().send_lease  # its claimant is taken as dead: sent again
    submit(stream_env, desk, clock)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events) == [
        "KsefDocumentPrepared",
        "KsefSendStarted",
        "KsefSendStarted",
        "KsefSent",
        "KsefAccepted",
        "KsefUpoStored",
    ]
    accepted = events[4]
    assert isinstance(accepted, KsefAccepted) and accepted.duplicate
    assert accepted.ksef_number == desk.numbers[(NIP, "VAT", invoice.number)]
    assert len(desk.numbers) == 1 and desk.sends == 2


def test_a_document_ksef_already_has_is_accepted_with_the_number_looked_up(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    desk = MinistryDesk()
    desk.numbers[(NIP, "VAT", invoice.number)] = f"{NIP}-20261203-ABCDEF-012345-6A"  # sent before, elsewhere

    submit(stream_env, desk, Clock())

    accepted = [e for e in _decoded(jobstream, invoice.id) if isinstance(e, KsefAccepted)]
    assert [(a.ksef_number, a.duplicate) for a in accepted] == [(f"{NIP}-20261203-ABCDEF-012345-6A", True)]


def test_a_refusal_for_content_is_recorded_with_ksefs_reason_and_not_sent_again(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    desk, clock = MinistryDesk(), Clock()
    desk.refuse.add(invoice.number)

    submit(stream_env, desk, clock)
    clock.now += timedelta(days=1)
    submit(stream_env, desk, clock)

    events = _decoded(jobstream, invoice.id)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefRefused"]
    refused = events[-1]
    assert isinstance(refused, KsefRefused) and refused.code == 450 and refused.details == ["P_15"]
    assert "semantyki" in refused.reason
    assert desk.sends == 1


def test_an_outage_issues_the_invoice_offline_and_it_is_sent_when_ksef_is_back(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    desk, clock = MinistryDesk(), Clock()
    desk.down = True

    submit(stream_env, desk, clock)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefAttemptFailed", "KsefIssuedOffline"]
    failed, offline = events[1], events[2]
    assert isinstance(failed, KsefAttemptFailed) and isinstance(offline, KsefIssuedOffline)
    assert offline.mode == "unavailable" and offline.deadline == datetime(2026, 12, 4, 22, 59, 59, tzinfo=UTC)

    clock.now = failed.retry_at - timedelta(seconds=1)
    submit(stream_env, desk, clock)  # not due yet: nothing tried
    assert len(_decoded(jobstream, invoice.id)) == 3

    clock.now = failed.retry_at
    submit(stream_env, desk, clock)  # still down: one more attempt, no second offline
    assert kinds(_decoded(jobstream, invoice.id))[3:] == ["KsefAttemptFailed"]

    desk.down = False
    clock.now += timedelta(minutes=1)
    submit(stream_env, desk, clock)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events)[4:] == ["KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
    assert [offline for _, _, _, offline in desk.taken.values()] == [True]  # sent as an offline invoice


def test_the_office_is_warned_once_as_an_offline_invoices_deadline_nears(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    desk, clock = MinistryDesk(), Clock()
    desk.down = True
    submit(stream_env, desk, clock)
    offline = _decoded(jobstream, invoice.id)[-1]
    assert isinstance(offline, KsefIssuedOffline)

    clock.now = offline.deadline - SubmissionSettings().deadline_warning  # KSeF still down all the while
    submit(stream_env, desk, clock)
    submit(stream_env, desk, clock)

    warned = [e for e in _decoded(jobstream, invoice.id) if isinstance(e, KsefDeadlineNear)]
    assert [w.deadline for w in warned] == [offline.deadline]


def test_an_invoice_that_would_not_pass_is_held_with_the_field_and_never_sent(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    office.completed_job()
    no_nip = Settings(seller=Seller(name="Bez NIP", address=WARSAW))
    issue(stream_env, no_nip)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    desk = MinistryDesk()

    submit(stream_env, desk, Clock())

    (held,) = _decoded(jobstream, invoice.id)
    assert isinstance(held, KsefHeld) and held.field.startswith("seller")
    assert desk.sends == 0


def test_two_submitters_racing_send_each_document_once(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    for _ in range(6):
        office.completed_job()
    issue(stream_env)
    desk, clock = MinistryDesk(), Clock()

    async def race() -> None:
        connections = [await NatsConnection.open_on_running_loop(StreamSettings.from_env(stream_env)) for _ in range(2)]
        submitters = [KsefSubmitter(c, desk, SETTINGS, clock) for c in connections]
        try:
            await asyncio.gather(*(s.catch_up() for s in submitters))
            await asyncio.gather(*(s.recover() for s in submitters))
            await asyncio.gather(*(s.send_due() for s in submitters))
        finally:
            for connection in connections:
                await connection.aclose()

    asyncio.run(race())

    (issued,) = stored(jobstream, InvoiceIssued)
    for invoice in issued:
        events = _decoded(jobstream, invoice.id)
        assert kinds(events).count("KsefSendStarted") == 1
        assert kinds(events).count("KsefAccepted") == 1
        assert sum(isinstance(e, KsefSent) for e in events) == 1
    assert desk.sends == 6


def test_the_submitter_follows_the_stream_live(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    desk = MinistryDesk()

    async def live(connection: NatsConnection) -> list[KsefEvent]:
        submitter = KsefSubmitter(connection, desk, SETTINGS)
        invoicer = Invoicer(connection, POLISH)
        stop = asyncio.Event()
        running = [asyncio.ensure_future(submitter.run(stop)), asyncio.ensure_future(invoicer.run(stop))]
        job = await asyncio.to_thread(office.completed_job)
        from invoicer.ids import invoice_id_of

        document = invoice_id_of(job)
        found = await until_stored(connection, document, KsefUpoStored)
        stop.set()
        await asyncio.gather(*running)
        return found

    events = run(stream_env, live)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
    assert desk.sessions_closed == 1  # closed when the submitter stopped


async def until_stored(connection: NatsConnection, document: UUID, last: type, timeout: float = 20) -> list[KsefEvent]:
    """The document's KSeF events, once one of type ``last`` is stored: woken by the stream
    as it stores events, never by a timer."""
    from events.consumer import Consumer

    reader = Consumer(connection)
    woken = asyncio.Event()
    subscription = await connection.watch(lambda position: woken.set())
    try:
        async with asyncio.timeout(timeout):
            while True:
                woken.clear()
                events = [e for e in (await reader.load(ksef_id(document))).events if isinstance(e, KsefEvent)]
                if any(isinstance(e, last) for e in events):
                    return events
                await woken.wait()
    finally:
        await subscription.unsubscribe()


# --- against the KSeF stand-in, over HTTP, through the real client --------------------------------

STANDIN_NIP = "5265877635"  # tests.ksef_standin.server.TEST_NIP: the context its token signs in to
STANDIN_SELLER = Settings(
    seller=Seller(
        name="Instalacje Demo sp. z o.o.",
        address=WARSAW,
        vat_id=f"PL{STANDIN_NIP}",
        bank_account="PL61 1090 1014 0000 0712 1981 2874",
        timezone="Europe/Warsaw",
    )
)


def client_of(standin: StandIn) -> Callable[[], ClientKsef]:
    return lambda: ClientKsef(KsefClient(standin.config()))


class DiesAfterSending(ClientKsef):
    """The real client, in a process killed once KSeF has the invoice, before its answer."""

    async def send(self, session: str, fa3: bytes, *, offline: bool) -> str:
        await super().send(session, fa3, offline=offline)
        raise Died


def test_a_day_of_invoices_through_the_standin_each_accepted_with_its_number_and_upo(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    czech_job = office.completed_job()
    issue(stream_env, CZECH)
    jobs = [office.completed_job(minutes=30 + 7 * n) for n in range(20)]
    issue(stream_env, STANDIN_SELLER)

    submit(stream_env, client_of(ksef_standin), Clock(datetime.now(UTC)))

    (issued,) = stored(jobstream, InvoiceIssued)
    accepted_there = {i.number: i for i in ksef_standin.accepted()}
    assert len(accepted_there) == 20
    for invoice in (i for i in issued if i.job_id in jobs):
        events = _decoded(jobstream, invoice.id)
        assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
        prepared, _, sent, accepted, upo = events
        assert isinstance(prepared, KsefDocumentPrepared) and isinstance(sent, KsefSent)
        assert isinstance(accepted, KsefAccepted) and isinstance(upo, KsefUpoStored)
        there = accepted_there[invoice.number]
        assert (accepted.ksef_number, sent.invoice_reference) == (there.ksef_number, there.reference)
        assert not accepted.duplicate and there.digest.sha256 == _b64_sha256(objects(stream_env, prepared.fa3_name))
        receipt = objects(stream_env, upo.upo_name)
        assert hashlib.sha256(receipt).hexdigest() == upo.upo_sha256 and there.ksef_number.encode() in receipt
    assert len({i.session for i in ksef_standin.accepted()}) == 1  # one online session for them all
    czech = next(i for i in issued if i.job_id == czech_job)
    assert _decoded(jobstream, czech.id) == []


def _b64_sha256(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_killed_after_the_standin_took_the_invoice_the_next_process_records_its_number_once(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    clock = Clock(datetime.now(UTC))

    with pytest.raises(Died):
        submit(stream_env, lambda: DiesAfterSending(KsefClient(ksef_standin.config())), clock)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    assert kinds(_decoded(jobstream, invoice.id)) == ["KsefDocumentPrepared", "KsefSendStarted"]
    (first,) = ksef_standin.accepted()

    clock.now += SubmissionSettings().send_lease
    submit(stream_env, client_of(ksef_standin), clock)

    events = _decoded(jobstream, invoice.id)
    assert kinds(events)[2:] == ["KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
    (accepted,) = [e for e in events if isinstance(e, KsefAccepted)]
    assert accepted.duplicate and accepted.ksef_number == first.ksef_number
    assert [i.ksef_number for i in ksef_standin.accepted()] == [first.ksef_number]  # KSeF has it once
    upo = events[-1]
    assert isinstance(upo, KsefUpoStored) and first.ksef_number.encode() in objects(stream_env, upo.upo_name)


def test_a_content_refusal_from_the_standin_is_recorded_and_not_retried(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    ksef_standin.refuse_next_invoice("Błąd weryfikacji semantyki dokumentu faktury.")
    clock = Clock(datetime.now(UTC))

    submit(stream_env, client_of(ksef_standin), clock)
    clock.now += timedelta(hours=1)
    submit(stream_env, client_of(ksef_standin), clock)

    ((invoice,),) = stored(jobstream, InvoiceIssued)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefRefused"]
    refused = events[-1]
    assert isinstance(refused, KsefRefused) and "semantyki" in refused.reason and refused.code
    assert len(ksef_standin.invoices) == 1 and ksef_standin.accepted() == []


def test_the_standin_down_then_up_the_invoice_goes_offline_and_is_accepted_when_it_is_back(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    clock = Clock(datetime.now(UTC))
    ksef_standin.down()

    submit(stream_env, client_of(ksef_standin), clock)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefAttemptFailed", "KsefIssuedOffline"]
    failed, offline = events[1], events[2]
    assert isinstance(failed, KsefAttemptFailed) and isinstance(offline, KsefIssuedOffline)
    assert offline.mode == "unavailable" and offline.deadline > clock.now

    ksef_standin.up()
    clock.now = failed.retry_at
    submit(stream_env, client_of(ksef_standin), clock)

    assert kinds(_decoded(jobstream, invoice.id))[3:] == [
        "KsefSendStarted",
        "KsefSent",
        "KsefAccepted",
        "KsefUpoStored",
    ]
    (there,) = ksef_standin.accepted()
    assert there.offline and there.number == invoice.number


def test_a_rate_limit_waits_for_retry_after_and_then_the_invoice_is_accepted(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    clock = Clock(datetime.now(UTC))
    ksef_standin.rate_limit_next(1, retry_after=7)

    submit(stream_env, client_of(ksef_standin), clock)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    events = _decoded(jobstream, invoice.id)
    assert kinds(events)[1:] in (["KsefAttemptFailed"], ["KsefSendStarted", "KsefAttemptFailed"])
    failed = events[-1]
    assert isinstance(failed, KsefAttemptFailed) and failed.retry_at == clock.now + timedelta(seconds=7)

    clock.now = failed.retry_at
    submit(stream_env, client_of(ksef_standin), clock)
    assert kinds(_decoded(jobstream, invoice.id))[-2:] == ["KsefAccepted", "KsefUpoStored"]


def test_an_invoice_the_standin_has_already_is_accepted_as_a_duplicate_with_its_number(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    from invoicer.ksef.fa3 import fa3_invoice

    async def sent_before() -> None:  # the same invoice, sent by another program
        async with KsefClient(ksef_standin.config()) as client:
            session = await client.open_online_session()
            await client.wait_for_invoice(await client.send_invoice(session, fa3_invoice(invoice)))
            await client.close_session(session)

    asyncio.run(sent_before())
    (before,) = ksef_standin.accepted()

    submit(stream_env, client_of(ksef_standin), Clock(datetime.now(UTC)))

    (accepted,) = [e for e in _decoded(jobstream, invoice.id) if isinstance(e, KsefAccepted)]
    assert accepted.duplicate and accepted.ksef_number == before.ksef_number
    assert len(ksef_standin.accepted()) == 1


def test_an_expired_access_token_is_refreshed_and_sending_goes_on(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)

    async def work(connection: NatsConnection) -> None:
        ksef = ClientKsef(KsefClient(ksef_standin.config()))
        submitter = KsefSubmitter(connection, ksef, SETTINGS, Clock(datetime.now(UTC)))
        try:
            await submitter.catch_up()
            await submitter.send_due()
            ksef_standin.expire_access_tokens()  # every access token issued so far is refused now
            await asyncio.to_thread(office.completed_job)
            await asyncio.to_thread(issue, stream_env, STANDIN_SELLER)
            await submitter.catch_up()
            await submitter.send_due()
            await submitter.close_session()
        finally:
            await ksef.aclose()

    run(stream_env, work)

    (issued,) = stored(jobstream, InvoiceIssued)
    assert len(issued) == 2
    for invoice in issued:
        assert kinds(_decoded(jobstream, invoice.id))[-2:] == ["KsefAccepted", "KsefUpoStored"]
    assert len(ksef_standin.accepted()) == 2


def test_a_credit_note_names_the_corrected_invoices_ksef_number_and_is_accepted_as_a_correction(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn
) -> None:
    from events.contract import CreditNoteIssued, IssueCreditNote

    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    clock = Clock(datetime.now(UTC))
    submit(stream_env, client_of(ksef_standin), clock)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    (original,) = [e for e in _decoded(jobstream, invoice.id) if isinstance(e, KsefAccepted)]

    jobstream.execute(invoice.id, IssueCreditNote(reason="Błędna stawka"), OFFICE)
    issue(stream_env, STANDIN_SELLER)
    submit(stream_env, client_of(ksef_standin), clock)

    ((note,),) = stored(jobstream, CreditNoteIssued)
    events = _decoded(jobstream, note.id)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
    prepared = events[0]
    assert isinstance(prepared, KsefDocumentPrepared)
    assert (prepared.document_kind, prepared.invoice_type, prepared.number) == ("credit_note", "KOR", note.number)
    assert original.ksef_number.encode() in objects(stream_env, prepared.fa3_name)  # NrKSeFFaKorygowanej
    assert sorted(i.invoice_type for i in ksef_standin.accepted()) == ["KOR", "VAT"]


def test_the_standins_nip_is_the_sellers(ksef_standin: StandIn) -> None:
    from tests.ksef_standin.server import TEST_NIP

    assert ksef_standin.config().nip == TEST_NIP == STANDIN_NIP


def test_jobstream_run_invoicer_ksef_killed_mid_send_and_started_again_records_one_number(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn, tmp_path: Path
) -> None:
    """The process as it ships (`jobstream run invoicer ksef`), SIGKILLed once its claim of the
    send is on the stream and KSeF is answering slowly; a second one, started after it, finishes.
    Whether KSeF took the killed send or not (the stand-in drops a request whose client went away
    mid-wait), the number is recorded once; the path where it did is
    ``test_killed_after_the_standin_took_the_invoice_...``."""
    office.completed_job()
    issue(stream_env, STANDIN_SELLER)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    env = {
        **os.environ,
        **stream_env,
        **ksef_standin.env(),
        "JOBSTREAM_DATA": str(tmp_path),
        "KSEF_POLL_SECONDS": "0.1",
    }

    def started(**extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "invoicer", "ksef"],
            cwd=ROOT,
            env={**env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"ksef-{len(list(tmp_path.glob('ksef-*')))}.log").open("wb"),
        )

    async def kill_and_start_again(connection: NatsConnection) -> list[KsefEvent]:
        ksef_standin.slow(1.0)  # every answer a second late: the kill lands mid-request
        first = started()
        try:
            await until_stored(connection, invoice.id, KsefSendStarted, timeout=60)
        finally:
            first.kill()
            first.wait(10)
        ksef_standin.slow(0)
        second = started(KSEF_SEND_LEASE_SECONDS="1")  # the first claim's process is gone: taken over soon
        try:
            return await until_stored(connection, invoice.id, KsefUpoStored, timeout=60)
        finally:
            second.terminate()
            assert second.wait(20) == 0

    events = run(stream_env, kill_and_start_again)

    accepted = [e for e in events if isinstance(e, KsefAccepted)]
    (there,) = ksef_standin.accepted()
    assert [a.ksef_number for a in accepted] == [there.ksef_number]  # the number recorded once
    assert kinds(events).count("KsefSendStarted") >= 2  # claimed again by the second process
    assert accepted[0].duplicate == (len(ksef_standin.invoices) == 2)  # KSeF took the first send too


def test_run_workers_sends_to_ksef_when_it_is_configured(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str], ksef_standin: StandIn, tmp_path: Path
) -> None:
    """`jobstream run workers` (what `jobstream up` runs) with KSEF_URL, KSEF_NIP and KSEF_TOKEN:
    a job completed is invoiced and its invoice accepted by KSeF, in the one process."""
    from invoicer.ids import invoice_id_of

    seller = {
        "JOBSTREAM_COMPANY_NAME": "Instalacje Demo sp. z o.o.",
        "JOBSTREAM_COMPANY_STREET": "ul. Długa 1",
        "JOBSTREAM_COMPANY_CITY": "Kraków",
        "JOBSTREAM_COMPANY_POSTAL_CODE": "31-147",
        "JOBSTREAM_COMPANY_COUNTRY": "PL",
        "JOBSTREAM_COMPANY_VAT_ID": f"PL{STANDIN_NIP}",
    }
    env = {**os.environ, **stream_env, **ksef_standin.env(), **seller, "JOBSTREAM_DATA": str(tmp_path)}

    def started() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "workers"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "workers.log").open("wb"),
        )

    async def work(connection: NatsConnection) -> list[KsefEvent]:
        workers = started()
        try:
            job = await asyncio.to_thread(office.completed_job)
            return await until_stored(connection, invoice_id_of(job), KsefUpoStored, timeout=90)
        finally:
            workers.terminate()
            workers.wait(30)

    events = run(stream_env, work)
    assert kinds(events) == ["KsefDocumentPrepared", "KsefSendStarted", "KsefSent", "KsefAccepted", "KsefUpoStored"]
    assert [i.ksef_number for i in ksef_standin.accepted()] == [
        next(e.ksef_number for e in events if isinstance(e, KsefAccepted))
    ]


def test_a_credit_note_issued_before_its_invoice_is_accepted_waits_for_the_invoices_number(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    from events.contract import CreditNoteIssued, IssueCreditNote

    office.completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    jobstream.execute(invoice.id, IssueCreditNote(reason="Błędna stawka"), OFFICE)
    issue(stream_env)  # both on the stream before the submitter starts
    ((note,),) = stored(jobstream, CreditNoteIssued)
    desk = MinistryDesk()

    async def live(connection: NatsConnection) -> list[KsefEvent]:
        submitter = KsefSubmitter(connection, desk, SETTINGS)
        stop = asyncio.Event()
        running = asyncio.ensure_future(submitter.run(stop))
        try:
            return await until_stored(connection, note.id, KsefUpoStored)
        finally:
            stop.set()
            await running

    events = run(stream_env, live)
    prepared = events[0]
    assert isinstance(prepared, KsefDocumentPrepared) and prepared.invoice_type == "KOR"
    number = desk.numbers[(NIP, "VAT", invoice.number)]
    assert number.encode() in objects(stream_env, prepared.fa3_name)  # NrKSeFFaKorygowanej, not NrKSeFN
    assert list(desk.numbers) == [(NIP, "VAT", invoice.number), (NIP, "KOR", note.number)]  # in that order


def test_a_document_that_breaks_the_sender_does_not_stop_the_others(
    jobstream: JobstreamApp, office: Office, stream_env: dict[str, str]
) -> None:
    for _ in range(3):
        office.completed_job()
    issue(stream_env)
    (issued,) = stored(jobstream, InvoiceIssued)
    broken = issued[1].number

    class Breaks(MinistryDesk):
        async def status(self, session: str, invoice: str, *, number: str, issue_date: date) -> Accept | Refuse | None:
            if number == broken:
                raise ValueError("an answer nothing here can read")
            return await super().status(session, invoice, number=number, issue_date=issue_date)

    clock = Clock()
    submitter = submit(stream_env, Breaks(), clock)

    states = {i.number: kinds(_decoded(jobstream, i.id))[-1] for i in issued}
    assert states == {issued[0].number: "KsefUpoStored", broken: "KsefSent", issued[2].number: "KsefUpoStored"}
    assert list(submitter.pending) == [issued[1].id]  # looked at again later, not dropped
