"""schemathesis, every check, against both OpenAPI documents (the command API's and the read
API's), as the office and as a technician, with real ids of every kind mixed into what it
generates: no input is a 500, every answer is one the document declares, and what the
document allows the server accepts.

``positive_data_acceptance`` expects a schema-valid request to be accepted. Domain rules the
document cannot say (the job must be scheduled, the customer must exist, a day within a year
of today) rightly refuse some with a 422 after the request was read; so a 422 is allowed
there, and ``schema_and_door_agree`` checks what that leaves out: a schema-valid command
body decodes as its command, and the read API refuses a schema-valid read only for a
position beyond the stream's head."""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from events.contract import Address, InvoiceIssued, MessageQueued, Party, Role, recipient_id
from read_api.app import Settings as ReadSettings
from read_api.app import create_app as create_read_app
from services.api import Settings, _decoded, create_app
from services.application import JobstreamApp
from services.domain.common import Invalid
from services.natsd import EmbeddedNats
from tests.conftest import Projectors
from tests.integration.conftest import ADDRESS
from tests.integration.test_poison import straight

# The apps are built at import so schemathesis can read their OpenAPI documents (which need
# no NATS); the fixture fills in where NATS is before the apps' lifespans connect.
ENV: dict[str, str] = {}
READ_MODELS = f"sqlite:///{Path(tempfile.mkdtemp(prefix='fuzz-')) / 'readmodels.sqlite3'}"
APP = create_app(Settings(env=ENV))
READ_APP = create_read_app(ReadSettings(read_model_url=READ_MODELS, stream_env=ENV, wait_seconds=1.0))
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]  # 5xx: not_a_server_error's to catch
# A 503 is a documented "try again": a service this one asks is not running (the invoicer's
# preview, here); any other 5xx is a server error.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
        }
    }
)
# Streams without an end (server-sent events, the audit's follow) are driven by other tests.
commands = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG).exclude(path="/me/alerts")
commands.app = APP  # calls go to the app in-process, as from_asgi would send them
reads = schemathesis.openapi.from_dict(READ_APP.openapi(), config=CONFIG).exclude(
    path_regex="^/api/(live|audit/follow)"
)
READ_URL: list[str] = []  # where the read API listens: a server of its own, on its own loop
IDS: dict[str, str] = {}  # kind -> a real id, seeded by the fixture
TOKENS: dict[str, str] = {}


@schemathesis.check
def schema_and_door_agree(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    detail = response.json().get("detail")
    on_commands = case.operation.schema.raw_schema["info"]["title"] == APP.title
    route = APP.state.command_routes.get(case.operation.path) if on_commands else None
    if route is not None and case.body is not None:
        try:  # as the door decodes it
            _decoded(msgspec.json.Decoder(route[1]), msgspec.json.encode(case.body))
        except Invalid as error:
            if not any(rule in error.reason for rule in UNSAID):
                raise AssertionError(f"the document allows a body the command refuses: {error}") from None
    refused = detail if isinstance(detail, list) else [{"field": "", "reason": str(detail)}]
    for problem in refused:
        field = str(problem.get("field") or ".".join(map(str, problem.get("loc", []))))
        if (
            route is not None
            and not field.startswith(("path.", "header."))
            and "not valid JSON" not in str(problem.get("reason"))
        ):
            continue  # a domain rule, after the command was read
        if route is None and (
            "beyond the stream's head" in str(problem.get("reason"))
            or "not a cursor this board gave out" in str(problem.get("reason"))
        ):
            continue  # a position no read model will reach: the stream decides, not the document
        if field == "header.Idempotency-Key" and "already used" in str(problem.get("reason")):
            continue  # the key made another kind of aggregate: the log decides
        if field in ("statement", "photo", "caption"):
            continue  # what is in a file (a camt.053, an image) or a percent-encoded header: read, then judged
        raise AssertionError(f"the document allows what the server refused: {field or 'the request'}: {problem}")
    return None


# What JSON Schema cannot say, and the door checks: a JSON number's decimal places (a
# fraction sent as a string is exact), and rules across fields
UNSAID = ("may have at most 6 decimal places", "quiet hours need both")


def seeded(case: Any) -> None:
    """Most generated ids replaced by real ones of every kind (chosen by the generated value,
    so a failing example replays)."""
    kinds = sorted(IDS)

    def real(value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 36:  # a UUID as written, not a number that parses as one
            return value
        digest = hashlib.sha256(value.encode()).digest()[0]
        try:
            uuid.UUID(value)
        except ValueError:
            return value
        return IDS[kinds[digest % len(kinds)]] if digest % (len(kinds) + 3) < len(kinds) else value

    for where in (case.path_parameters, case.query):
        for name, value in list((where or {}).items()):
            where[name] = real(value)
    if isinstance(case.body, dict):
        for name, value in list(case.body.items()):
            case.body[name] = (
                [real(v) for v in value]
                if isinstance(value, list) and name.endswith("_ids")
                else (real(value) if name.endswith("_id") else value)
            )


@pytest.fixture(scope="module")
def running(nats_server: EmbeddedNats) -> Iterator[None]:
    token = uuid.uuid4().hex[:12]
    ENV.update(
        {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": nats_server.admin_url,
            "NATS_STREAM": f"T{token}",
            "NATS_SUBJECT_PREFIX": f"t{token}",
        }
    )
    issuer = JobstreamApp(ENV)
    TOKENS["office"] = issuer.issue_token("fuzz", Role.OFFICE)
    projectors = Projectors(ENV, READ_MODELS)
    server = uvicorn.Server(uvicorn.Config(READ_APP, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the read API did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        READ_URL.append(f"http://127.0.0.1:{port}")
        with TestClient(APP) as client:
            office = {"Authorization": f"Bearer {TOKENS['office']}"}

            def ok(path: str, body: dict[str, Any]) -> str:
                answer = client.post(path, json=body, headers=office)
                assert answer.status_code in (200, 201), answer.text
                return str(answer.json()["id"])

            tech = ok("/technicians", {"name": "Jana", "skills": ["hvac"]})
            TOKENS["technician"] = issuer.issue_token("jana", Role.TECHNICIAN, uuid.UUID(tech))
            customer = ok("/customers", {"name": "Novák Stavby", "billing_address": ADDRESS})
            job = ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "Boiler leaks"})
            ok(f"/jobs/{job}/schedule", {"technician_ids": [tech], "start": "2026-11-23T09:00:00Z"})
            price_list = ok("/price-lists", {"name": "Default", "is_default": True})
            recurrence = ok(
                "/recurring-services",
                {
                    "customer_id": customer,
                    "job_type": "inspection",
                    "description": "Monthly check",
                    "technician_ids": [tech],
                    "rule": "FREQ=MONTHLY;COUNT=2",
                    "start": "2027-01-04T09:00:00",
                },
            )
            address = Address(**ADDRESS)
            invoice, message = uuid.uuid4(), uuid.uuid4()
            straight(
                issuer,
                invoice,
                InvoiceIssued(
                    id=invoice,
                    number="2026-000001",
                    series="2026",
                    sequence=1,
                    job_id=uuid.UUID(job),
                    customer_id=uuid.UUID(customer),
                    issue_date="2026-03-01",
                    supply_date="2026-03-01",
                    due_date="2026-03-15",
                    currency="EUR",
                    language="en",
                    seller=Party(name="Seller", address=address),
                    buyer=Party(name="Novák", address=address),
                    lines=[],
                    vat=[],
                    net_total=Decimal(100),
                    vat_total=Decimal(0),
                    gross_total=Decimal(100),
                    payment_reference="1",
                ),
            )
            last = straight(
                issuer,
                message,
                MessageQueued(
                    id=message,
                    channel="email",
                    purpose="invoice",
                    recipient="novak@example.cz",
                    subject="Invoice",
                    body="...",
                    about_kind="invoice",
                    about_id=invoice,
                ),
            )
            IDS.update(
                {
                    "job": job,
                    "customer": customer,
                    "technician": tech,
                    "pricelist": price_list,
                    "invoice": str(invoice),
                    "message": str(message),
                    "recurrence": recurrence,
                    "recipient": str(recipient_id("jana")),
                }
            )
            projectors.wait(last)
            yield
    finally:
        server.should_exit = True
        thread.join(30)
        projectors.stop()
        issuer.close()


FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("who", ["office", "technician"])
@commands.parametrize()
@FUZZ
def test_no_input_breaks_the_command_api(case: Any, who: str, running: None) -> None:
    seeded(case)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKENS[who]}"}, additional_checks=[schema_and_door_agree]
    )


@pytest.mark.parametrize("who", ["office", "technician"])
@reads.parametrize()
@FUZZ
def test_no_input_breaks_the_read_api(case: Any, who: str, running: None) -> None:
    seeded(case)
    case.call_and_validate(
        base_url=READ_URL[0],
        headers={"Authorization": f"Bearer {TOKENS[who]}"},
        additional_checks=[schema_and_door_agree],
    )
