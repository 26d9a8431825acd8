"""Reading the stream far (`NatsConnection.stream_events`): every event once, in order,
across consumer chunks, with the tracking records between them left out."""

from __future__ import annotations

import asyncio
import uuid

from eventsourcing.persistence import InfrastructureFactory, StoredEvent, Tracking
from eventsourcing.utils import Environment

from events.jetstream import _TOPIC_KEY, _VERSION_KEY, NatsConnection, StreamSettings, _raw_header


def test_stream_events_reads_every_event_once_in_order_across_chunks(stream_env: dict[str, str]) -> None:
    factory = InfrastructureFactory.construct(env=Environment("reading", stream_env))
    recorder = factory.process_recorder()
    written = []
    for n in range(40):  # events of three aggregates, and a tracking record after every few
        originator = uuid.UUID(int=n % 3 + 1)
        version = n // 3 + 1
        event = StoredEvent(
            originator_id=originator, originator_version=version, topic=f"t:E{n}", state=f'{{"n":{n}}}'.encode()
        )
        tracking = Tracking(application_name="upstream", notification_id=n + 1) if n % 4 == 0 else None
        written.append((n, recorder.insert_events([event], tracking=tracking)[0]))
    factory.close()

    async def read(chunk: int, page: int) -> list[tuple[int, str, int, bytes]]:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(stream_env))
        try:
            return [
                (n.id, n.topic, n.originator_version, n.state)
                async for p in connection.stream_events(0, chunk=chunk, page=page)
                for n in p
            ]
        finally:
            await connection.aclose()

    expected = [(position, f"t:E{n}", n // 3 + 1, f'{{"n":{n}}}'.encode()) for n, position in written]
    assert max(p for _, p in written) > len(written)  # tracking records lie between the events
    for chunk, page in ((7, 3), (1, 1), (1000, 1000)):
        assert asyncio.run(read(chunk, page)) == expected


def test_a_header_is_read_from_the_raw_block() -> None:
    block = b"NATS/1.0\r\nEs-Topic: services.domain:JobRequested\r\nEs-Version:  12 \r\nNats-Msg-Id: x\r\n\r\n"
    assert _raw_header(block, _TOPIC_KEY) == b"services.domain:JobRequested"
    assert _raw_header(block, _VERSION_KEY) == b"12"
