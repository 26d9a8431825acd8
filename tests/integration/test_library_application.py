"""The library's own example application (bank accounts, snapshots, a custom transcoding)
on the JetStream persistence module with the orjson transcoder, unmodified."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, UUIDAsHex
from eventsourcing.tests.application import ExampleApplicationTestCase

from events.codec import OrjsonTranscoder
from events.jetstream import NatsFactory


@pytest.fixture(autouse=True)
def _on_jetstream(nats_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    token = uuid.uuid4().hex[:12]
    monkeypatch.setenv("PERSISTENCE_MODULE", "events.jetstream")
    monkeypatch.setenv("NATS_URL", nats_server.admin_url)
    monkeypatch.setenv("NATS_STREAM", f"A{token}")
    monkeypatch.setenv("NATS_SUBJECT_PREFIX", f"a{token}")


class TestExampleApplicationOnJetStream(ExampleApplicationTestCase):
    expected_factory_topic = "events.jetstream:NatsFactory"


def test_the_factory_uses_the_orjson_transcoder() -> None:
    transcoder = NatsFactory({}).transcoder()
    assert isinstance(transcoder, OrjsonTranscoder)
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    from datetime import UTC, datetime
    from decimal import Decimal

    value = {
        "id": uuid.uuid4(),
        "amount": Decimal("12.30"),
        "at": datetime.now(UTC),
        "lines": [{"n": 1, "name": "Příplatek"}],
    }
    data = transcoder.encode(value)
    assert transcoder.decode(data) == value
    assert "Příplatek".encode() in data  # readable UTF-8 JSON on the wire


del ExampleApplicationTestCase
