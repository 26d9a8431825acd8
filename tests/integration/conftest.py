"""Fixtures for the command API on a real nats-server: env -> app -> client -> tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from events.contract import Role
from services.api import Settings, create_app
from services.application import JobstreamApp

ADDRESS = {"street": "Údolní 12", "city": "Brno", "postal_code": "602 00", "country": "CZ"}


@pytest.fixture
def jobstream(stream_env: dict[str, str]) -> Iterator[JobstreamApp]:
    """The write-side application on this test's own stream."""
    app = JobstreamApp(stream_env)
    yield app
    app.close()


@dataclass
class Api:
    """The command API as users call it: each role with its own token."""

    client: TestClient
    tokens: dict[str, str]
    jobstream: JobstreamApp

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def post(self, path: str, body: dict[str, Any], who: str = "office", **headers: str) -> Any:
        return self.client.post(path, json=body, headers=self.headers(who, **headers))

    def get(self, path: str, who: str = "office") -> Any:
        return self.client.get(path, headers=self.headers(who))

    def ok(self, path: str, body: dict[str, Any], who: str = "office", **headers: str) -> dict[str, Any]:
        response = self.post(path, body, who, **headers)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def technician(self, name: str) -> UUID:
        """Register a technician and give them a token under their name."""
        tech = UUID(self.ok("/technicians", {"name": name, "skills": ["hvac"]})["id"])
        self.tokens[name] = self.jobstream.issue_token(name, Role.TECHNICIAN, tech)
        return tech

    def customer(self) -> str:
        return self.ok("/customers", {"name": "Novák Stavby", "billing_address": ADDRESS})["id"]  # type: ignore[no-any-return]

    def scheduled_job(self, tech: UUID, customer: str | None = None) -> str:
        job = self.ok(
            "/jobs", {"customer_id": customer or self.customer(), "job_type": "repair", "description": "Boiler leaks"}
        )["id"]
        self.ok(f"/jobs/{job}/schedule", {"technician_ids": [str(tech)], "start": "2026-11-23T09:00:00Z"})
        return job  # type: ignore[no-any-return]


@pytest.fixture
def api(stream_env: dict[str, str], jobstream: JobstreamApp) -> Iterator[Api]:
    tokens = {
        "office": jobstream.issue_token("olga", Role.OFFICE),
        "accountant": jobstream.issue_token("anna", Role.ACCOUNTANT),
        "admin": jobstream.issue_token("root", Role.ADMIN),
    }
    with TestClient(create_app(Settings(env=stream_env))) as client:
        yield Api(client, tokens, jobstream)


def stored(app: JobstreamApp, *types: type) -> list[list[Any]]:
    """Every stored event of each of these types, in stream order: one list per type."""
    from events.contract import decode_event

    found: list[list[Any]] = [[] for _ in types]
    for notification in app.recorder.select_notifications(1, 1_000_000):
        event = decode_event(notification.state)
        for bucket, kind in zip(found, types, strict=True):
            if isinstance(event, kind):
                bucket.append(event)
    return found


def read_settings(stream_env: dict[str, str], read_model_url: str, **extra: Any) -> Any:
    from read_api.app import Settings as ReadSettings

    return ReadSettings(read_model_url=read_model_url, stream_env=stream_env, wait_seconds=10, **extra)


@contextlib.contextmanager
def read_side(
    api: Api, stream_env: dict[str, str], read_model_url: str, who: str = "office", **extra: Any
) -> Iterator[TestClient]:
    """Every projection caught up with what the test stored, and the read API over them, as ``who``."""
    from read_api.app import create_app as create_read_app
    from tests.conftest import Projectors

    projectors = Projectors(stream_env, read_model_url)
    try:
        projectors.wait(api.jobstream.recorder.max_notification_id() or 0)
        settings = read_settings(stream_env, read_model_url, **extra)
        with TestClient(create_read_app(settings), headers=api.headers(who)) as reader:
            yield reader
    finally:
        projectors.stop()
