"""A consumer of the stream: follows it from a shared tracking position and handles the
events it triggers on, each handled event saved with its tracking record in one atomic
batch. The invoicer's consumers and the notifier are built on it.

No single event stops it. An event it cannot process for a reason trying again would not
cure is recorded as ``ProcessingFailed`` (events.faults), with the tracking record in the
same batch, and it goes on with the next; a transient failure is tried again with backoff
(events.follow). When the office asks (``ProcessingRetryRequested`` naming this consumer),
it processes the event again and records ``ProcessingResolved`` (with its effect and the
tracking record, one batch) or ``ProcessingFailedAgain``."""

from __future__ import annotations

import asyncio
import logging
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

from events.contract import (
    Event,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    decode_event,
    event_hash,
)
from events.faults import Transient, error_text, is_transient, parked
from events.follow import follow
from events.jetstream import NatsConnection, NatsProcessRecorder
from events.writes import Author, sealed, write

log = logging.getLogger("jobstream.consumer")

RETRIES = 5
IDLE_TRACKING = 5000  # events skipped before the position is recorded on its own
RETRY = "ProcessingRetryRequested"  # every consumer reads it: is it asked to try one again?


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


class Retrying(msgspec.Struct, kw_only=True):
    """A retry the office asked for: the event is processed again, and what that saves goes
    with the failure's outcome and the tracking record of the request, in one batch."""

    request: Notification
    failure: UUID
    before: Stored  # the failure as the request left it
    position: int  # the event tried again
    saved: bool = False

    def resolved(self, outcome: str) -> tuple[UUID, Stored, list[Event]]:
        return self.failure, self.before, [ProcessingResolved(id=self.failure, outcome=outcome)]


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
        self._retrying: Retrying | None = None
        self.parked = 0  # events recorded as failed by this instance

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

    async def handle(self, notification: Notification, tracked: int = 0) -> str:
        """What was done about one stored event; "done" when another replica did it first
        (its tracking reached ``tracked``, by default the event's own position)."""
        for _ in range(RETRIES):
            try:
                return await self.decide_and_save(notification)
            except IntegrityError:
                reached = await self.recorder.max_tracking_id_async(self.name) or 0
                if reached >= (tracked or notification.id):
                    return "done"
        raise Transient(f"{self.name}: gave up on stream position {notification.id} after {RETRIES} conflicts")

    async def processed(self, notification: Notification) -> str:
        """``handle``, except that an event it cannot process is parked, not raised: only a
        transient failure goes up (to be tried again with backoff)."""
        if notification.topic == RETRY:
            return await self.retry(notification)
        try:
            return await self.handle(notification)
        except Exception as error:
            if is_transient(error):
                raise
            return await self.park(notification, error)

    async def park(self, notification: Notification, error: BaseException) -> str:
        """Record that the event cannot be processed, with the tracking record: the next
        event is next."""
        failed = parked(
            self.name, notification.id, notification.topic, notification.originator_id, notification.state, error
        )
        log.error(
            "%s: cannot process the %s at stream position %s (%s: %s); recorded as failure %s, "
            "going on with the next event",
            self.name,
            notification.topic,
            notification.id,
            failed.error_type,
            failed.error,
            failed.id,
            exc_info=error,
        )
        try:
            await self.save(
                notification,
                [(failed.id, Stored([], 0, ""), [failed])],
                command_id=f"{self.name}:failed:{notification.id}",
            )
        except IntegrityError:
            if (await self.recorder.max_tracking_id_async(self.name) or 0) >= notification.id:
                return "done"  # another replica recorded it (or did it) first
            raise Transient(f"{self.name}: could not record the failure at {notification.id}") from None
        self.parked += 1
        return "parked"

    async def retry(self, request: Notification) -> str:
        """Process a parked event again, if the office asked this consumer to."""
        asked = decode_event(request.state)
        assert isinstance(asked, ProcessingRetryRequested)
        if asked.consumer != self.name:
            return "skipped"
        before = Stored([], request.originator_version, event_hash(request.state))
        found = await self.connection.notifications(asked.position - 1, limit=1)
        retrying = Retrying(request=request, failure=asked.id, before=before, position=asked.position)
        try:
            if not found or found[0].id != asked.position:
                raise LookupError(f"the stream no longer holds position {asked.position}")
            self._retrying = retrying
            try:
                outcome = await self.handle(found[0], tracked=request.id)
            finally:
                self._retrying = None
        except Exception as error:
            if is_transient(error):
                raise
            error_type, message = error_text(error)
            log.warning("%s: position %s failed again: %s: %s", self.name, asked.position, error_type, message)
            return await self._settle(
                request,
                [(asked.id, before, [ProcessingFailedAgain(id=asked.id, error_type=error_type, error=message)])],
                "failed again",
            )
        if outcome == "done" or retrying.saved:
            return outcome
        return await self._settle(request, [retrying.resolved(outcome)], "resolved")

    async def _settle(
        self, request: Notification, touched: list[tuple[UUID, Stored, list[Event]]], outcome: str
    ) -> str:
        try:
            await self.save(request, touched, command_id=f"{self.name}:retried:{request.id}")
        except IntegrityError:
            if (await self.recorder.max_tracking_id_async(self.name) or 0) >= request.id:
                return "done"
            raise Transient(f"{self.name}: could not record the retry at {request.id}") from None
        return outcome

    def _author(self, command_id: str) -> Author:
        return Author(actor_id=self.name, actor_role="system", command_id=command_id, correlation_id=command_id)

    def _sealed(self, touched: Sequence[tuple[UUID, Stored, list[Event]]], command_id: str) -> list[StoredEvent]:
        return sealed(
            [(id, before.version, before.last_hash, events) for id, before, events in touched],
            self._author(command_id),
            datetime.now(UTC),
        )

    async def save(
        self, cause: Notification | None, touched: Sequence[tuple[UUID, Stored, list[Event]]], command_id: str = ""
    ) -> list[int]:
        """The events, stamped and hash-chained, with this consumer's tracking record of
        ``cause`` in the same atomic batch (without one when there is no cause). While the
        office's retry of ``cause`` runs, the failure's resolution goes with them and the
        tracking record is the request's."""
        retrying = self._retrying
        if cause is not None and retrying is not None and cause.id == retrying.position:
            touched = [*touched, retrying.resolved("processed")]
            cause, retrying.saved = retrying.request, True
        command_id = command_id or f"{self.name}:{cause.id if cause else uuid.uuid4()}"
        _, positions = await write(
            self.recorder,
            [(id, before.version, before.last_hash, events) for id, before, events in touched],
            self._author(command_id),
            datetime.now(UTC),
            Tracking(self.name, cause.id) if cause is not None else None,
        )
        return positions

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
            try:
                self.prepare(page)
            except Exception as error:  # only work ahead: each event is still handled (or parked) below
                if is_transient(error):
                    raise
                log.warning(
                    "%s: could not work ahead on a page (%s: %s); its events are taken one by one",
                    self.name,
                    type(error).__name__,
                    error,
                )
            for notification in page:
                if self.stopping.is_set():  # stop between events; the next start goes on from here
                    self._scanned = position
                    return position
                if notification.topic in self.triggers or notification.topic == RETRY:
                    outcome = await self.processed(notification)
                    if outcome == "done":  # another replica is ahead: go on from its position
                        position = max(notification.id, await self.recorder.max_tracking_id_async(self.name) or 0)
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
            await follow(self.connection, self.catch_up, stop, self.name)
        finally:
            self.stopping = asyncio.Event()  # a catch_up called after run() reads to the end
