"""The stream is created at start-up, or verified; a mismatching one is reported, never changed."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.js.api import StorageType, StreamConfig

from events.jetstream import NatsFactory, StreamMismatchError
from services.natsd import EmbeddedNats


async def _stream_config(url: str, name: str) -> StreamConfig:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(name)).config
    finally:
        await nc.close()


async def _add_stream(url: str, config: StreamConfig) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(config)
    finally:
        await nc.close()


def test_the_stream_is_created_with_what_jobstream_needs(nats_server: EmbeddedNats) -> None:
    name = f"S{uuid.uuid4().hex[:10]}"
    factory = NatsFactory({"NATS_URL": nats_server.admin_url, "NATS_STREAM": name, "NATS_SUBJECT_PREFIX": name})
    factory.application_recorder()
    factory.close()
    config = asyncio.run(_stream_config(nats_server.admin_url, name))
    assert config.storage == StorageType.FILE
    assert (config.deny_delete, config.deny_purge, config.allow_direct, config.allow_atomic) == (True, True, True, True)
    assert sorted(config.subjects or []) == [f"{name}.events.>", f"{name}.snapshots.>", f"{name}.tracking.>"]


def test_a_mismatching_stream_is_reported_and_left_alone(nats_server: EmbeddedNats) -> None:
    name = f"S{uuid.uuid4().hex[:10]}"
    subjects = [f"{name}.{kind}.>" for kind in ("events", "snapshots", "tracking")]
    asyncio.run(
        _add_stream(
            nats_server.admin_url,
            StreamConfig(name=name, subjects=subjects, storage=StorageType.MEMORY, allow_direct=True),
        )
    )
    factory = NatsFactory({"NATS_URL": nats_server.admin_url, "NATS_STREAM": name, "NATS_SUBJECT_PREFIX": name})
    with pytest.raises(StreamMismatchError) as reported:
        factory.application_recorder()
    factory.close()
    message = str(reported.value)
    assert "storage is memory, expected file" in message
    assert "deny_delete is off" in message and "allow_atomic is off" in message
    after = asyncio.run(_stream_config(nats_server.admin_url, name))
    assert after.storage == StorageType.MEMORY and not after.allow_atomic  # untouched
