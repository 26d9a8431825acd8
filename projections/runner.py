"""Feeds a projection from the stream, and runs one as a process of its own.

    python -m projections.runner board        (what `jobstream run projector board` starts)

The runner starts after the position its view last committed, reads the stream in pages of
up to 1,000 events with batch direct gets, and commits each page in one transaction with
its last position. Once it has caught up it waits for a wake-up from a headers-only
ordered consumer and reads again, so a live event reaches the read model in about a
millisecond plus the commit. Settings come from the environment, in ``main``:
NATS_URL, NATS_STREAM, NATS_SUBJECT_PREFIX and READ_MODEL_URL.

A page that fails for a reason trying again would not cure (events.faults) is taken again
one event at a time: the events that can be projected are, and the one that cannot is
recorded on the stream as ``ProcessingFailed`` (the projection's name, its position, the
error) while the view's position moves past it. When the office asks for it to be tried
again, the runner projects it anew and records the outcome. A transient failure (the
database locked or down, NATS not answering) is tried again with backoff (events.follow).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from events.bridge import stop_on_signals
from events.contract import (
    Event,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    decode_event,
    event_hash,
)
from events.faults import error_text, is_transient, parked, sealed
from events.follow import follow
from events.jetstream import (
    PAGE,
    STREAM_VARIABLES,
    NatsApplicationRecorder,
    NatsConnection,
    StreamSettings,
    run_plainly,
)
from projections.definitions import PROJECTIONS, BatchProjection, Positioned
from projections.failures import failures
from projections.store import open_view

log = logging.getLogger("jobstream.projector")
RETRY = "ProcessingRetryRequested"

Progress = Callable[[int], None]
# Events per transaction when far behind (a rebuild): a commit rewrites every index page it
# touched, and a page of 5,000 events touches few more of them than a page of 1,000
COMMIT = 5 * PAGE


class Runner:
    """One projection, kept up to date from one NATS connection."""

    def __init__(self, projection: BatchProjection, connection: NatsConnection) -> None:
        self.projection = projection
        self.connection = connection
        self.position = 0
        self.recorder = NatsApplicationRecorder(connection)  # for the failures it records
        self.parked = 0
        self._settled = False  # retries interrupted by a stop looked at (once, at the start)

    async def catch_up(self, until: int | None = None, progress: Progress | None = None) -> int:
        """Project every stored event (up to ``until``); return the position reached.

        A short way behind (live), one batch direct get reads what is new. Further behind
        (a rebuild, a restart after a while), the events are pushed by an ordered consumer,
        so nats-server sends the next page from the other core while this process evolves
        rows and SQLite commits them.
        """
        self.position = await asyncio.to_thread(self._committed)
        if not self._settled:
            await self._settle_interrupted()
            self._settled = True
        while True:
            page = await self.connection.notifications(self.position)
            if until is not None:
                page = [n for n in page if n.id <= until]
            if not page:
                return self.position
            if not await self._commit(page, progress):
                continue
            if until is not None and self.position >= until:
                return self.position
            if len(page) < PAGE:
                continue  # a short page: read again, it is probably the end
            pages = self.connection.stream_events(self.position, until, page=COMMIT)
            try:
                async for page in pages:
                    if not await self._commit(page, progress):
                        break
            finally:
                await pages.aclose()

    async def _commit(self, page: list[Notification], progress: Progress | None) -> bool:
        """Evolve and commit one page; False (and the position re-read) if another runner got there first.

        The office's requests to try a parked event of this projection again split the page:
        what comes before a request is committed first, then the event it names."""
        start = 0
        for index, notification in enumerate(page):
            if notification.topic == RETRY and self._asks_me(notification):
                if not await self._commit_part(page[start:index]) or not await self._retry(notification):
                    return False
                start = index + 1
        if not await self._commit_part(page[start:]):
            return False
        if progress is not None:
            progress(self.position)
        return True

    async def _commit_part(self, part: list[Notification]) -> bool:
        """Commit these events with the last one's position; if that fails for good, again one
        at a time, recording the one that cannot be projected and moving past it."""
        if not part:
            return True
        try:
            return await self._commit_items(self._items(part), part[-1].id)
        except Exception as error:
            if is_transient(error):
                raise
            if len(part) == 1:
                return await self._park(part[0], error)
            log.warning(
                "projector %s: a page of %s events after position %s failed (%s: %s); taking them one at a time",
                self.projection.name,
                len(part),
                self.position,
                type(error).__name__,
                error,
            )
        for notification in part:
            if not await self._commit_part([notification]):
                return False
        return True

    def _items(self, part: Sequence[Notification]) -> list[Positioned]:
        topics = self.projection.wanted_topics  # the rest need not even be decoded
        return [Positioned(n.id, n.originator_version, decode_event(n.state)) for n in part if n.topic in topics]

    async def _commit_items(self, items: list[Positioned], position: int) -> bool:
        tracking = Tracking(self.projection.name, position)
        if not await asyncio.to_thread(self.projection.process_batch, items, tracking, self.position):
            self.position = await asyncio.to_thread(self._committed)
            return False
        self.position = position
        return True

    async def _park(self, notification: Notification, error: BaseException) -> bool:
        """Record the event as failed on the stream, then move the view's position past it
        (a crash between the two records it again: the same failure, one event)."""
        name = self.projection.name
        failed = parked(
            name, notification.id, notification.topic, notification.originator_id, notification.state, error
        )
        log.error(
            "projector %s: cannot project the %s at stream position %s (%s: %s); recorded as failure %s, "
            "going on with the next event",
            name,
            notification.topic,
            notification.id,
            failed.error_type,
            failed.error,
            failed.id,
            exc_info=error,
        )
        await self._record(sealed(name, failed.id, 0, "", failed, f"{name}:failed:{notification.id}"))
        self.parked += 1
        return await self._commit_items([], notification.id)

    def _asks_me(self, request: Notification) -> bool:
        try:
            asked = decode_event(request.state)
        except msgspec.MsgspecError:
            return False  # not a request anyone can act on
        return isinstance(asked, ProcessingRetryRequested) and asked.consumer == self.projection.name

    async def _retry(self, request: Notification) -> bool:
        """Project the parked event again, with the request's position; then record the outcome."""
        asked = decode_event(request.state)
        assert isinstance(asked, ProcessingRetryRequested)
        outcome: Event = ProcessingResolved(id=asked.id, outcome="projected")
        try:
            found = await self.connection.notifications(asked.position - 1, limit=1)
            if not found or found[0].id != asked.position:
                raise LookupError(f"the stream no longer holds position {asked.position}")
            committed = await self._commit_items(self._items(found), request.id)
        except Exception as error:
            if is_transient(error):
                raise
            error_type, message = error_text(error)
            # recorded before the position moves: a retry whose position was committed and
            # whose outcome is missing is then known to have succeeded (see _settle_interrupted)
            await self._outcome(request, ProcessingFailedAgain(id=asked.id, error_type=error_type, error=message))
            return await self._commit_items([], request.id)
        if committed:
            await self._outcome(request, outcome)
        return committed

    async def _outcome(self, request: Notification, outcome: Event) -> None:
        name = self.projection.name
        await self._record(
            sealed(
                name,
                outcome.id,
                request.originator_version,
                event_hash(request.state),
                outcome,
                f"{name}:retried:{request.id}",
            )
        )

    async def _settle_interrupted(self) -> None:
        """A runner stopped between committing a retried event and recording that it was
        resolved: record it now (a retry that failed again was recorded before its commit)."""
        name, committed = self.projection.name, self.position
        for row in await failures(self.connection, ["retrying"]):
            if row.consumer != name:
                continue
            position, last = (await self.recorder.select_positioned_async(row.id))[-1]
            if last.topic == RETRY and position <= committed:
                await self._record(
                    sealed(
                        name,
                        row.id,
                        last.originator_version,
                        event_hash(last.state),
                        ProcessingResolved(id=row.id, outcome="projected"),
                        f"{name}:retried:{position}",
                    )
                )

    async def _record(self, stored: list[Any]) -> None:
        try:
            await self.recorder.insert_events_async(stored)
        except IntegrityError:
            pass  # recorded already: by this runner before a restart, or by another replica

    async def follow(self, stop: asyncio.Event) -> None:
        """Catch up, then stay caught up until ``stop`` is set."""
        await follow(self.connection, self.catch_up, stop, f"projector {self.projection.name}")

    def _committed(self) -> int:
        return self.projection.view.max_tracking_id(self.projection.name) or 0


def build(name: str, read_model_url: str) -> BatchProjection:
    if name not in PROJECTIONS:
        raise SystemExit(f"no projection named {name!r}; one of: {', '.join(PROJECTIONS)}")
    return PROJECTIONS[name](view=open_view(name, read_model_url))


async def serve(
    names: Sequence[str],
    env: dict[str, str],
    read_model_url: str,
    once: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Keep the named projections up to date (on one connection, in this one process) until
    ``stop`` (else SIGINT or SIGTERM), or with ``once`` catch each up with what is stored now
    and stop."""
    # Opening a view waits for its database (the library retries a PostgreSQL that is not up
    # yet): on a thread, so the services sharing this loop (`jobstream run workers`) go on.
    projections = await asyncio.to_thread(lambda: [build(name, read_model_url) for name in names])
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        await connection.ensure_stream_async()
        if once:  # catch up with what is stored now, say how far and how fast, and stop
            for projection in projections:
                runner = Runner(projection, connection)
                started, before = time.perf_counter(), runner._committed()
                reached = await runner.catch_up(until=await connection.last_position())
                elapsed = time.perf_counter() - started
                print(
                    f"projector {projection.name}: caught up from position {before} to {reached} in {elapsed:.2f} s",
                    flush=True,
                )
            return
        stop = stop or stop_on_signals()
        runners = [Runner(projection, connection) for projection in projections]
        for runner in runners:
            log.info("projector %s starting after position %s", runner.projection.name, runner._committed())
        await asyncio.gather(*(runner.follow(stop) for runner in runners))
    finally:
        await connection.aclose()
        for projection in projections:
            projection.close()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """Every projection until ``stop``, beside the other services (`jobstream run workers`)."""
    if not env.get("READ_MODEL_URL"):
        raise SystemExit("projector: READ_MODEL_URL is not set (sqlite:///path or postgresql://...)")
    await serve(list(PROJECTIONS), env, env["READ_MODEL_URL"], stop=stop)


def environment() -> tuple[dict[str, str], str]:
    env = {key: os.environ.get(key, "") for key in STREAM_VARIABLES}
    url = os.environ.get("READ_MODEL_URL") or ""
    if not url:
        raise SystemExit("projector: READ_MODEL_URL is not set (sqlite:///path or postgresql://...)")
    return env, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobstream run projector")
    parser.add_argument(
        "projection", choices=[*sorted(PROJECTIONS), "all"], help="one projection, or all of them in this one process"
    )
    parser.add_argument("--once", action="store_true", help="catch up with the stream as it is now, then stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env, url = environment()
    names = list(PROJECTIONS) if args.projection == "all" else [args.projection]
    run_plainly("jobstream run projector", serve(names, env, url, once=args.once))
    return 0


if __name__ == "__main__":
    sys.exit(main())
