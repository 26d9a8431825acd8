"""schemathesis against the command API's own OpenAPI document: no input is a 500, every
answer is one the document declares. Runs as the office (the role allowed the most)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from events.contract import Role
from services.api import Settings, create_app
from services.app import JobstreamApp
from services.natsd import EmbeddedNats

# The app is built at import so schemathesis can read its OpenAPI document (which needs no
# NATS); the fixture fills in where NATS is before the app's lifespan connects.
ENV: dict[str, str] = {}
APP = create_app(Settings(env=ENV))
# The alert stream has no end (server-sent events): the technicians' day in Chromium covers it.
schema = schemathesis.openapi.from_dict(APP.openapi()).exclude(path="/me/alerts")
schema.app = APP  # calls go to the app in-process, as from_asgi would send them


@pytest.fixture(scope="module")
def office_token(nats_server: EmbeddedNats) -> Iterator[str]:
    token = uuid.uuid4().hex[:12]
    ENV.update({"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": nats_server.admin_url,
                "NATS_STREAM": f"T{token}", "NATS_SUBJECT_PREFIX": f"t{token}"})
    issuer = JobstreamApp(ENV)
    office = issuer.issue_token("fuzz", Role.OFFICE)
    issuer.close()
    with TestClient(APP):  # runs the lifespan: the app holds its NATS connection
        yield office


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: Any, office_token: str) -> None:
    # Every check but positive_data_acceptance: domain rules (the customer must exist, the
    # job must be in the right status) rightly refuse some schema-valid requests with a
    # documented 404, 409 or 422.
    case.call_and_validate(headers={"Authorization": f"Bearer {office_token}"},
                           excluded_checks=[positive_data_acceptance])
