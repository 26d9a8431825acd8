"""A consumer of the stream: follows it from a shared tracking position and handles the
events it triggers on, each handled event saved with its tracking record in one atomic
batch. The invoicer's consumers and the notifier are built on it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    StoredEvent,
    Tracking,
)

from events.contract import Event, decode_event, event_hash, seal
from events.follow import follow
from events.jetstream import NatsConnection, NatsProcessRecorder

RETRIES = 5
IDLE_TRACKING = 5000  # events skipped before the position is recorded on its own


class Stored(msgspec.Struct, frozen=True):
    """An aggregate as stored: its events, version and the hash of its last event."""

    events: list[Event]
    version: int
    last_hash: str

    @classmethod
    def of(cls, positioned: Sequence[tuple[int, StoredEvent]]) -> Stored:
        if not positioned:
            return cls([], 0, "")
        last = positioned[-1][1]
        return cls([decode_event(s.state) for _, s in positioned], last.originator_version, event_hash(last.state))



class Consumer:
    """Follows the stream from its shared tracking position and handles the events it
    triggers on, each handled event saved with the tracking record in one atomic batch."""

    name = ""
    triggers: frozenset[str] = frozenset()

    def __init__(self, connection: NatsConnection) -> None:
        self.connection = connection
        self.recorder = NatsProcessRecorder(connection)
        self.stopping = asyncio.Event()
        self._scanned = 0  # the position read past (tracking records only what was done)
        self._skipped = 0  # events read past since the tracking record last moved

    async def load(self, id: UUID) -> Stored:
        return Stored.of(await self.recorder.select_positioned_async(id))

    async def head(self, id: UUID) -> Stored:
        """Only the version and last hash: what appending to a long aggregate (a series) needs."""
        last = await self.recorder.latest_async(id)
        if last is None:
            return Stored([], 0, "")
        return Stored([], last.originator_version, event_hash(last.state))

    async def decide_and_save(self, notification: Notification) -> str:
        raise NotImplementedError

    def prepare(self, page: Sequence[Notification]) -> None:
        """Start work ahead on a page's triggers (a consumer whose work is pure may)."""

    async def handle(self, notification: Notification) -> str:
        """What was done about one stored event; "done" when another replica did it first."""
        for _ in range(RETRIES):
            try:
                return await self.decide_and_save(notification)
            except IntegrityError:
                reached = await self.recorder.max_tracking_id_async(self.name) or 0
                if reached >= notification.id:
                    return "done"
        raise RuntimeError(f"{self.name}: gave up on stream position {notification.id} "
                           f"after {RETRIES} conflicts")

    def _sealed(self, touched: Sequence[tuple[UUID, Stored, list[Event]]], command_id: str) -> list[StoredEvent]:
        now = datetime.now(UTC)
        return [s for aggregate_id, before, events in touched
                for s in seal(aggregate_id, before.version, before.last_hash, events, now=now, actor_id=self.name,
                              actor_role="system", command_id=command_id, correlation_id=command_id)]

    async def save(self, cause: Notification | None, touched: Sequence[tuple[UUID, Stored, list[Event]]],
                   command_id: str = "") -> list[int]:
        """The events, stamped and hash-chained, with this consumer's tracking record of
        ``cause`` in the same atomic batch (without one when there is no cause)."""
        command_id = command_id or f"{self.name}:{cause.id if cause else uuid.uuid4()}"
        stored = self._sealed(touched, command_id)
        if cause is None:
            return await self.recorder.insert_events_async(stored)
        return await self.recorder.insert_tracked_async(stored, Tracking(self.name, cause.id))

    async def append(self, id: UUID, before: Stored, events: list[Event], command_id: str) -> Stored:
        """Events of one aggregate after ``before`` (a conflict if it moved on); the aggregate
        as it now stands, without reading it back."""
        stored = self._sealed([(id, before, events)], command_id)
        await self.recorder.insert_events_async(stored)
        return Stored(before.events + events, stored[-1].originator_version, event_hash(stored[-1].state))

    async def catch_up(self) -> int:
        """Handle every stored event after the shared tracking position; the position reached.

        The position this consumer has read past is kept in memory too: a consumer whose
        triggers are rare (a statement a day) must not read the whole stream again on every
        wake-up. Its tracking record moves on its own every IDLE_TRACKING skipped events.
        """
        position = max(self._scanned, await self.recorder.max_tracking_id_async(self.name) or 0)
        while True:
            page = await self.connection.notifications(position)
            if not page:
                break
            self.prepare(page)
            for notification in page:
                if self.stopping.is_set():  # stop between events; the next start goes on from here
                    self._scanned = position
                    return position
                if notification.topic in self.triggers:
                    outcome = await self.handle(notification)
                    if outcome == "done":  # another replica is ahead: go on from its position
                        position = max(notification.id,
                                       await self.recorder.max_tracking_id_async(self.name) or 0)
                        break
                    self._skipped = 0 if outcome != "skipped" else self._skipped + 1
                else:
                    self._skipped += 1
                position = notification.id
        self._scanned = position
        if self._skipped >= IDLE_TRACKING:
            await self._record_position(position)
            self._skipped = 0
        return position

    async def _record_position(self, position: int) -> None:
        """Move the tracking past events that needed nothing, so a restart need not read them."""
        try:
            await self.recorder.insert_tracked_async([], Tracking(self.name, position))
        except IntegrityError:
            pass  # another replica recorded as far or further

    async def run(self, stop: asyncio.Event) -> None:
        self.stopping = stop
        try:
            await follow(self.connection, self.catch_up, stop)
        finally:
            self.stopping = asyncio.Event()  # a catch_up called after run() reads to the end
