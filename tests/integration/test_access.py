"""Who may see and do what, on a real nats-server with real tokens: what a technician may read
on the command API, revocation in every process, the technicians' read-side door, and
signing in to downloads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from events.contract import decode_event
from events.jetstream import NatsConnection, StreamSettings
from invoicer.invoicing import Invoicer
from invoicer.settings import Settings as InvoicerSettings
from services.natsd import free_port
from tests.conftest import Projectors, new_read_model
from tests.integration.conftest import Api, read_settings


@contextlib.contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """The ASGI app behind uvicorn on this port, in a thread of its own, with its lifespan."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Servers:
    """The command API and the read API on real ports, each knowing the other's address, with
    every projection following the stream: as `jobstream run web` serves them."""

    def __init__(self, api: Api, command: str, read: str, projectors: Projectors, apps: tuple[Any, Any]) -> None:
        self.api, self.command, self.read, self.projectors = api, command, read, projectors
        self.command_app, self.read_app = apps  # their state: what each process has seen

    def caught_up(self) -> None:
        self.projectors.wait(self.api.jobstream.recorder.max_notification_id() or 0)


@pytest.fixture
def servers(api: Api, stream_env: dict[str, str], tmp_path: Path) -> Iterator[Servers]:
    from read_api.app import create_app as create_read_app
    from services.api import Settings as CommandSettings
    from services.api import create_app as create_command_app

    read_port, command_port = free_port(), free_port()
    with new_read_model("sqlite", tmp_path) as url:
        projectors = Projectors(stream_env, url)
        try:
            reader = create_read_app(
                read_settings(
                    stream_env, url, command_api_url=f"http://127.0.0.1:{command_port}", link_secret="matrix-secret"
                )
            )
            commands = create_command_app(
                CommandSettings(
                    env={
                        **stream_env,
                        "READ_API_URL": f"http://127.0.0.1:{read_port}",
                        "VAPID_PUBLIC_KEY": "BPublicKeyForTests",
                        "JOBSTREAM_BOOKING_SERVICES": "boiler-service:hvac:60:Annual boiler service",
                    }
                )
            )
            with serving(reader, read_port) as read, serving(commands, command_port) as command:
                yield Servers(api, command, read, projectors, (commands, reader))
        finally:
            projectors.stop()


def invoiced_job(api: Api, tech: Any, env: dict[str, str]) -> tuple[str, str]:
    """A job of ``tech``'s, completed and invoiced by the real invoicer: (job id, invoice id)."""
    prices = api.ok("/price-lists", {"name": "Standard", "currency": "EUR", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {"code": "repair", "name": "Repair", "unit": "hour", "rate": "60.00", "vat_rate": "21"},
    )
    customer = api.ok(
        "/customers",
        {
            "name": "Harbour Café",
            "phone": "+353 1 555 0101",
            "email": "hello@harbourcafe.example",
            "billing_address": {
                "street": "1 Quay Street",
                "city": "Dublin",
                "postal_code": "D02 X285",
                "country": "IE",
            },
        },
    )["id"]
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
    api: Api, stream_env: dict[str, str]
) -> None:
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
    photo = api.client.post(
        f"/jobs/{job}/photos",
        content=b"\x89PNG\r\n\x1a\n" + b"0" * 100,
        headers=api.headers("accountant", **{"Content-Type": "image/png"}),
    )
    assert photo.status_code == 403, photo.text


TRAVERSALS = [
    "..%2Fhealth",
    "..%2fhealth",
    "%2e%2e%2fhealth",
    "%2E%2E%2Fhealth",
    "..%252Fhealth",
    "..%252fhealth",
    "%252e%252e%252fhealth",
    "..%5Chealth",
    "..%5chealth",
    "..%255Chealth",
    "..\\health",
    "%2e%2e/health",
    "board%2F..%2F..%2Fhealth",
    "jobs%2F..%2F..%2Fhealth",
    "..%2F..%2Fhealth",
    "..%2Fdocs",
    "..%2Fopenapi.json",
    "..%2Finvoices",
    "..%2F%2E%2E%2Fhealth",
    ".%2E%2Fhealth",
    "%2E.%2Fhealth",
    "..;%2Fhealth",
]


def test_the_technicians_read_door_forwards_only_the_reads_of_the_app(servers: Servers) -> None:
    api = servers.api
    tom, _ = api.technician("tom"), api.technician("eve")
    job = api.scheduled_job(tom)
    servers.caught_up()
    tom_says = api.headers("tom")
    with httpx.Client(base_url=servers.command, headers=tom_says) as phone:
        assert phone.get("/tech/api/board").status_code == 200
        # a technician's list of technicians is themselves: not their colleagues' phones and emails
        assert [t["id"] for t in httpx.get(f"{servers.read}/api/technicians", headers=tom_says).json()] == [str(tom)]
        assert phone.get(f"/tech/api/jobs/{job}").json()["job"]["id"] == job
        for path in TRAVERSALS:
            answer = phone.get(f"/tech/api/{path}")
            assert answer.status_code == 404, (path, answer.status_code, answer.text)
            assert '"status":"ok"' not in answer.text.replace(" ", ""), path  # the read API's /health


DOWNLOADS = [
    "/invoices/{invoice}.pdf",
    "/invoices/{invoice}.xml",
    "/invoices/{invoice}.isdoc",
    "/credit-notes/{invoice}.pdf",
    "/credit-notes/{invoice}.xml",
    "/credit-notes/{invoice}.isdoc",
    "/proformas/{invoice}.pdf",
    "/jobs/{job}/photos/{invoice}",
]


def test_a_download_without_a_token_is_a_401_for_an_api_client_and_the_sign_in_page_for_a_browser(
    api: Api, stream_env: dict[str, str], servers: Servers
) -> None:
    job, invoice = invoiced_job(api, api.technician("tom"), stream_env)
    servers.caught_up()
    with httpx.Client(base_url=servers.read) as anonymous:
        for template in DOWNLOADS:
            path = template.format(invoice=invoice, job=job)
            for accept in ({}, {"Accept": "*/*"}, {"Accept": "application/pdf"}, {"Accept": "application/json"}):
                answer = anonymous.get(path, headers=accept)
                assert answer.status_code == 401, (path, accept, answer.status_code)
                assert answer.headers["www-authenticate"] == "Bearer" and answer.json()["detail"]
            for browser in (
                {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
                {"Accept": "*/*", "Sec-Fetch-Mode": "navigate"},
            ):
                answer = anonymous.get(path, headers=browser)
                assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}", path


def revoke_with_the_cli(token: str, env: dict[str, str], data: Path) -> None:
    """`jobstream admin revoke TOKEN`, as an admin runs it: a process of its own."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "admin", "revoke", token, "--reason", "lost phone"],
        env={**os.environ, **env, "JOBSTREAM_DATA": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "Revoked" in done.stdout, done.stdout + done.stderr


class Loop:
    """A client sending one request after another until told to stop, recording each answer
    with what the serving process had seen of the token events before it was sent."""

    def __init__(self, send: Any, seen: Any) -> None:
        self.send, self.seen = send, seen
        self.answers: list[tuple[int, int, Any]] = []  # (seen before sending, status, body)
        self.stopping = threading.Event()
        self.refused = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            before = self.seen()
            answer = self.send()
            json_body = answer.headers.get("content-type", "").startswith("application/json")
            self.answers.append((before, answer.status_code, answer.json() if json_body else answer.text))
            if answer.status_code == 401:
                self.refused.set()

    def until_refused(self, then: int = 20) -> None:
        """Until the first 401, and ``then`` requests more."""
        assert self.refused.wait(60), f"no 401 in {len(self.answers)} requests: {self.answers[-3:]}"
        count = len(self.answers)
        while len(self.answers) < count + then and self.thread.is_alive():
            threading.Event().wait(0.01)
        self.stopping.set()
        self.thread.join(30)


def token_position(api: Api, token: str) -> int:
    """The stream position of the token's last event: its TokenRevoked, once revoked."""
    from services.application import token_hash
    from services.domain.common import derived_id

    return api.jobstream.recorder.select_positioned(derived_id("token", token_hash(token)))[-1][0]


def test_a_revoked_token_writes_and_reads_nothing_once_a_process_has_seen_the_revocation(
    api: Api, stream_env: dict[str, str], servers: Servers, tmp_path: Path
) -> None:
    from events.contract import Role

    customer = api.customer()
    token = api.jobstream.issue_token("lost-phone", Role.OFFICE)
    job = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "Leak"})["id"]
    servers.caught_up()
    commands = servers.command_app.state.jobstream.revocations
    reads = servers.read_app.state.revocations
    headers = {"Authorization": f"Bearer {token}"}
    writing = httpx.Client(base_url=servers.command, headers=headers)
    reading = httpx.Client(base_url=servers.read, headers=headers)
    writer = Loop(
        lambda: writing.post("/jobs", json={"customer_id": customer, "job_type": "repair", "description": "Again"}),
        lambda: commands.position,
    )
    board = Loop(lambda: reading.get("/api/board"), lambda: reads.position)  # the board's hot path
    job_page = Loop(lambda: reading.get(f"/api/jobs/{job}"), lambda: reads.position)
    phone = Loop(lambda: writing.get(f"/tech/api/jobs/{job}"), lambda: reads.position)  # the app, forwarded
    loops = (writer, board, job_page, phone)
    for loop in loops:
        loop.thread.start()
    deadline = time.monotonic() + 60
    while any(len(loop.answers) < 10 for loop in loops):  # each answered with the token a few times
        assert time.monotonic() < deadline and all(loop.thread.is_alive() for loop in loops), [
            loop.answers[-1:] for loop in loops
        ]
        threading.Event().wait(0.01)
    assert all(status in (200, 201) for loop in loops for _, status, _ in loop.answers[:10])

    revoke_with_the_cli(token, stream_env, tmp_path / "cli")
    for loop in loops:
        loop.until_refused()
    writing.close()
    reading.close()
    revoked_at = token_position(api, token)
    assert commands.revoked[next(iter(commands.revoked))] == revoked_at == reads.revoked[next(iter(reads.revoked))]

    for loop in loops:
        statuses = [status for _, status, _ in loop.answers]
        first = statuses.index(401)
        # once refused, refused for good; and refused whenever the process had seen the revocation
        assert set(statuses[first:]) == {401}, statuses[first:]
        assert all(status == 401 for seen, status, _ in loop.answers if seen >= revoked_at)
        assert all(seen < revoked_at for seen, _, _ in loop.answers[:first])
    # A write accepted at a later position than the revocation's can only be the one on its way
    # when the revocation was delivered (authenticated, decided and checked again before it):
    # how many there are depends on the machine's speed, so it is shown, not asserted.
    written = [body["position"] for _, status, body in writer.answers if status == 201]
    after = [p for p in written if p > revoked_at]
    print(f"writes accepted after the revocation's position {revoked_at}: {len(after)} of {len(written)}")


def test_a_revoked_tokens_open_streams_end(
    api: Api, stream_env: dict[str, str], servers: Servers, tmp_path: Path
) -> None:
    """The technician's alerts (command API) and the dashboard's live position (read API)."""
    tom = api.technician("tom")
    servers.caught_up()
    with (
        httpx.Client(headers=api.headers("tom"), timeout=60) as phone,
        phone.stream("GET", f"{servers.command}/me/alerts") as alerts,
        phone.stream("GET", f"{servers.read}/api/live") as live,
    ):
        streams = {"alerts": alerts.iter_lines(), "live": live.iter_lines()}
        assert next(streams["alerts"]) == ": connected" and next(streams["live"]).startswith("retry:")
        revoke_with_the_cli(api.tokens["tom"], stream_env, tmp_path / "cli")
        rest: dict[str, list[str]] = {name: [] for name in streams}
        readers = [
            threading.Thread(target=rest[name].extend, args=(lines,), daemon=True) for name, lines in streams.items()
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(30)  # a deadline: an open stream sends a keep-alive every 15 s
        assert not any(reader.is_alive() for reader in readers), f"a stream is still open: {rest}"
    assert "event: alert" not in rest["alerts"]
    with httpx.Client(headers=api.headers("tom")) as phone:
        assert phone.get(f"{servers.command}/me/alerts").status_code == 401
        assert phone.get(f"{servers.command}/technicians/{tom}").status_code == 401
        assert phone.get(f"{servers.read}/api/live").status_code == 401


# --- the role matrix (docs/architecture.md), walked --------------------------------------

ROLES = ("anonymous", "technician", "office", "accountant", "admin")
MATRIX_DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
TABLES = {"command": "Command API routes", "read": "Read API routes"}
CELLS = {"yes", "own", "401", "403", "404"}


def app_routes() -> dict[str, set[str]]:
    """Every route of both apps as 'METHOD path', read from the apps themselves (a mount as
    its path and '/{path}')."""
    from starlette.routing import Mount

    from read_api.app import Settings as ReadSettings
    from read_api.app import create_app as create_read_app
    from services.api import Settings as CommandSettings
    from services.api import create_app as create_command_app

    found: dict[str, set[str]] = {}
    for name, app in (
        ("command", create_command_app(CommandSettings(env={}))),
        ("read", create_read_app(ReadSettings(read_model_url="sqlite://"))),
    ):
        found[name] = set()
        for route in app.routes:
            if isinstance(route, Mount):
                found[name].add(f"GET {route.path}/{{path}}")
                continue
            for method in sorted((getattr(route, "methods", None) or set()) - {"HEAD"}):
                found[name].add(f"{method} {route.path}")
    return found


def documented_matrix() -> dict[str, dict[str, dict[str, str]]]:
    """The role matrix as docs/architecture.md writes it: app -> route -> role -> cell."""
    lines = MATRIX_DOC.read_text().splitlines()
    matrix: dict[str, dict[str, dict[str, str]]] = {}
    for name, heading in TABLES.items():
        start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
        rows: dict[str, dict[str, str]] = {}
        header: list[str] = []
        for line in lines[start + 1 :]:
            if line.startswith("#"):
                break
            if not line.startswith("|") or set(line) <= set("|- "):
                continue
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not header:
                header = cells
                assert tuple(header[1:]) == ROLES, header
                continue
            route = cells[0].strip("`")
            assert route not in rows, f"{route} twice in the {heading} table"
            assert set(cells[1:]) <= CELLS, (route, cells)
            rows[route] = dict(zip(ROLES, cells[1:], strict=True))
        matrix[name] = rows
    return matrix


def test_the_role_matrix_has_a_row_for_every_route_of_both_apps_and_no_other() -> None:
    matrix, routes = documented_matrix(), app_routes()
    for name in TABLES:
        missing = sorted(routes[name] - set(matrix[name]))
        unknown = sorted(set(matrix[name]) - routes[name])
        assert not missing, f"routes of the {name} API with no row in docs/architecture.md's role matrix: {missing}"
        assert not unknown, f"rows in the {name} API's role matrix for routes it does not have: {unknown}"


class Business:
    """Real ids of every kind the routes take, and real tokens: two technicians (tom, whose
    jobs are 'own', and eve), the office, an accountant and an admin."""

    def __init__(self, api: Api, env: dict[str, str], servers: Servers) -> None:
        from invoicer.writer import DocumentWriter
        from notifier.service import Notifier
        from notifier.service import Settings as NotifierSettings

        tom, eve = api.technician("tom"), api.technician("eve")
        self.job, self.invoice = invoiced_job(api, tom, env)
        customer = api.get(f"/jobs/{self.job}").json()["customer_id"]
        self.own_job = api.scheduled_job(tom, customer)
        self.other_job = api.scheduled_job(eve, customer)
        png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
        self.photos = {}
        for job in (self.own_job, self.other_job):
            attached = api.client.post(
                f"/jobs/{job}/photos", content=png, headers=api.headers("office", **{"Content-Type": "image/png"})
            )
            assert attached.status_code == 201, attached.text
            self.photos[job] = attached.json()["photo_id"]
        api.ok(f"/invoices/{self.invoice}/credit-notes", {"reason": "wrong address"})
        api.ok(f"/customers/{customer}/details", {"wants_proforma": True})  # a proforma on the quote accepted
        quoted = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "New boiler"})["id"]
        api.ok(f"/jobs/{quoted}/quote", {"amount": "900.00"})
        api.ok(f"/jobs/{quoted}/quote/accept", {})
        self.recurrence = api.ok(
            "/recurring-services",
            {
                "customer_id": customer,
                "job_type": "repair",
                "description": "Boiler check",
                "technician_ids": [str(eve)],
                "rule": "FREQ=MONTHLY",
                "start": "2027-01-04T09:00:00",
                "horizon_days": 31,
            },
        )["id"]

        async def work() -> None:
            connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
            try:
                await Invoicer(connection, InvoicerSettings()).catch_up()  # the credit note
                await DocumentWriter(connection).catch_up()
                await Notifier(connection, NotifierSettings()).catch_up()  # push alerts: messages
            finally:
                await connection.aclose()

        asyncio.run(work())
        from events.contract import CreditNoteIssued, MessageQueued, ProformaIssued
        from tests.integration.conftest import stored

        notes, messages, proformas = stored(api.jobstream, CreditNoteIssued, MessageQueued, ProformaIssued)
        assert notes and messages and proformas, "the invoicer issued them and the notifier queued alerts"
        self.note, self.message, self.proforma = str(notes[0].id), str(messages[0].id), str(proformas[0].id)
        self.tom, self.eve, self.customer = str(tom), str(eve), customer
        self.prices = api.ok("/price-lists", {"name": "Other", "currency": "EUR"})["id"]
        servers.caught_up()
        link = httpx.get(f"{servers.read}/api/invoices/{self.invoice}/link", headers=api.headers("office"))
        self.link = link.json()["url"].rsplit("/", 1)[1]

    def path(self, route: str, mine: bool) -> str:
        """The route with real ids: a technician's own (``mine``) or another technician's."""
        job = self.own_job if mine else self.other_job
        kinds = {
            "/jobs/": job,
            "/customers/": self.customer,
            "/technicians/": self.tom if mine else self.eve,
            "/price-lists/": self.prices,
            "/invoices/": self.invoice,
            "/recurring-services/": self.recurrence,
            "/messages/": self.message,
            "/failures/": NO_FAILURE,
        }
        id = next((value for prefix, value in kinds.items() if route.startswith(prefix)), "")
        named = {
            "{id}": id,
            "{job_id}": job,
            "{photo_id}": self.photos[job],
            "{invoice_id}": self.invoice,
            "{note_id}": self.note,
            "{proforma_id}": self.proforma,
            "{recurrence_id}": self.recurrence,
            "{message_id}": self.message,
            "{failure_id}": NO_FAILURE,
            "{token}": self.link,
            "{path:path}": "board",
            "{path}": "style.css",
            "/tech/{name}": "/tech/pwa.js",
            "/reports/{name}": "/reports/job_types",
        }
        if route.startswith("/jobs/{job_id}/{action}"):
            route = route.replace("{action}", "notes")
        if route.startswith("/invoices/{invoice_id}/{action}"):
            route = route.replace("{action}", "payments")
        for name, value in named.items():
            route = route.replace(name, value)
        return route


NO_FAILURE = str(UUID(int=2))  # no consumer failed here: an unknown failure's id (404 or 409 when allowed)


# Valid bodies for the commands a technician may send on their own job, so that the answer
# on another technician's job is the decider's 403, not a 422 about the body.
BODIES: dict[str, Any] = {
    "/time-entries": {"started_at": "2026-11-23T09:00:00Z", "minutes": 30},
    "/time-entries/correct": {"entry_id": str(UUID(int=7)), "minutes": 10, "reason": "typo"},
    "/notes": {"text": "Checked the valve"},
    "/complete": {"summary": "Done"},
    "/materials": {"code": "gasket", "description": "Gasket", "quantity": 1},
    "/sign-off": {"signed_by": "Máire Byrne"},
    "/hold": {"reason": "waiting for a part"},
}


def answer(client: httpx.Client, method: str, path: str, token: str | None, login: bool) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options: dict[str, Any] = {"headers": headers}
    if method == "POST":
        if path.endswith("/photos"):
            options.update(content=b"\x89PNG\r\n\x1a\n" + b"1" * 64, headers={**headers, "Content-Type": "image/png"})
        elif login:  # the dashboard's forms: form-encoded
            options["data"] = {"token": token} if path == "/login" and token else {}
        else:
            options["json"] = next((body for suffix, body in BODIES.items() if path.endswith(suffix)), {})
    with client.stream(method, path, **options) as response:  # the status only: /me/alerts and /api/live stream
        return response.status_code


def test_every_route_answers_every_role_as_the_role_matrix_says(
    api: Api, stream_env: dict[str, str], servers: Servers
) -> None:
    matrix = documented_matrix()
    business = Business(api, stream_env, servers)
    tokens = {
        "anonymous": None,
        "technician": api.tokens["tom"],
        "office": api.tokens["office"],
        "accountant": api.tokens["accountant"],
        "admin": api.tokens["admin"],
    }
    wrong: list[str] = []
    walked = 0
    with (
        httpx.Client(base_url=servers.command, timeout=30) as command,
        httpx.Client(base_url=servers.read, timeout=30) as read,
    ):
        clients = {"command": command, "read": read}
        for role in ROLES:  # technicians before the office, whose commands move the jobs on
            for name, rows in matrix.items():
                for route, cells in sorted(rows.items()):
                    method, path = route.split(" ", 1)
                    cell = cells[role]
                    tries = (
                        [(True, "allowed"), (False, "403")]
                        if cell == "own"
                        else [(True, "allowed" if cell == "yes" else cell)]
                    )
                    for mine, expected in tries:
                        url = business.path(path, mine)
                        status = answer(clients[name], method, url, tokens[role], name == "read")
                        walked += 1
                        refused = status in (401, 403)
                        if (expected == "allowed" and (refused or status == 500)) or (
                            expected != "allowed" and str(status) != expected
                        ):
                            wrong.append(
                                f"{role} {method} {url} ({name} API): {status}, the matrix says {cell}"
                                + ("" if cell != "own" else " (own job)" if mine else " (another's job)")
                            )
    assert walked > 5 * 120
    assert not wrong, "\n".join(wrong)


def test_a_user_name_is_never_given_to_another_technician_or_role(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """Alerts, quiet hours and phones are kept under the user's name: a second Jana, or an
    office user named like a technician, would get the first one's alerts on their phone."""
    import os
    import subprocess
    import sys

    from events.contract import Role
    from services.domain.common import Invalid

    first, second = api.technician("jana"), api.technician("piotr")
    api.jobstream.issue_token("jana", Role.TECHNICIAN, first)  # Jana's second phone: the same user
    for role, technician in ((Role.TECHNICIAN, second), (Role.OFFICE, None)):
        with pytest.raises(Invalid, match="already the name of a technician user"):
            api.jobstream.issue_token("jana", role, technician)
    api.jobstream.revoke_token(api.tokens["jana"])
    with pytest.raises(Invalid):  # revoked, the name still holds her alert settings and phones
        api.jobstream.issue_token("jana", Role.TECHNICIAN, second)
    created = subprocess.run(
        [sys.executable, "-m", "services.cli", "admin", "create-user", "jana", "--role", "office"],
        env={**os.environ, **stream_env, "JOBSTREAM_DATA": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode != 0 and "already the name of a technician user" in created.stderr, created.stderr
