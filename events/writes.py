"""The one write path: the events of the aggregates one decision touched, sealed (stamped
with who wrote them and when, numbered and hash-chained to each aggregate's last event) and
appended in one atomic batch, with a consumer's tracking record when there is one.

The application service (services.application) and the consumers (events.consumer) both
write through ``write``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent, Tracking

from events.contract import Event
from events.wire import seal


class Author(msgspec.Struct, frozen=True, kw_only=True):
    """Who writes, and on whose command: recorded in every event's metadata."""

    actor_id: str
    actor_role: str
    command_id: str
    correlation_id: str


# per aggregate: its id, its version and last event's hash before, and the events after
Touched = Sequence[tuple[UUID, int, str, Sequence[Event]]]


def sealed(touched: Touched, author: Author, now: datetime) -> list[StoredEvent]:
    """The events as stored, aggregate by aggregate in the order given."""
    return [
        stored
        for aggregate_id, version, last_hash, events in touched
        for stored in seal(
            aggregate_id,
            version,
            last_hash,
            events,
            now=now,
            actor_id=author.actor_id,
            actor_role=author.actor_role,
            command_id=author.command_id,
            correlation_id=author.correlation_id,
        )
    ]


async def write(
    recorder: Any, touched: Touched, author: Author, now: datetime, tracking: Tracking | None = None
) -> tuple[list[StoredEvent], list[int]]:
    """Seal and append in one batch (IntegrityError if an aggregate moved on, or the
    tracking record is taken): the events as stored, and their stream positions. Nothing is
    appended when there is nothing to write."""
    stored = sealed(touched, author, now)
    if tracking is not None:
        return stored, await recorder.insert_tracked_async(stored, tracking)
    if not stored:
        return stored, []
    return stored, await recorder.insert_events_async(stored)
