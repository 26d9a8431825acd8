"""A write JetStream refuses for good (a message over the stream's size limit) is not
transient: the consumer parks it instead of trying it again for ever."""

from __future__ import annotations

import asyncio
import uuid

import nats
import nats.errors
import pytest
from eventsourcing.persistence import IntegrityError

from events.faults import is_transient
from events.jetstream import WriteRefused, _parse_ack
from services.natsd import EmbeddedNats


def test_a_message_over_the_streams_size_limit_is_refused_for_good(nats_server: EmbeddedNats) -> None:
    async def main() -> None:
        nc = await nats.connect(nats_server.admin_url)
        name = f"REFUSED_{uuid.uuid4().hex[:8]}"
        try:
            js = nc.jetstream()
            await js.add_stream(name=name, subjects=[f"{name}.>"], max_msg_size=256)
            small = await nc.request(f"{name}.a", b"x" * 10, timeout=5)
            assert _parse_ack(small.data) == 1
            big = await nc.request(f"{name}.a", b"x" * 1024, timeout=5)
            with pytest.raises(WriteRefused) as refused:
                _parse_ack(big.data)
            assert not is_transient(refused.value), refused.value
            wrong = await nc.request(
                f"{name}.a", b"x", timeout=5, headers={"Nats-Expected-Last-Subject-Sequence": "99"}
            )
            with pytest.raises(IntegrityError):  # a conflict, not a refusal
                _parse_ack(wrong.data)
            assert not is_transient(nats.errors.MaxPayloadError())
        finally:
            await nc.jetstream().delete_stream(name)
            await nc.close()

    asyncio.run(main())
