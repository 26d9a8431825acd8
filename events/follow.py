"""Staying caught up with the stream: the loop every consumer (projectors, the invoicer) runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from events.faults import TRANSIENT, backoff, is_transient, pause
from events.jetstream import NatsConnection

log = logging.getLogger("jobstream.follow")

SAFETY_POLL = 5.0  # seconds: the wake-up is the fast path; this only guards against a lost one


async def follow(
    connection: NatsConnection, catch_up: Callable[[], Awaitable[int]], stop: asyncio.Event, name: str = ""
) -> None:
    """Call ``catch_up()`` (which returns the position it reached) now and whenever the stream
    stores something newer, until ``stop`` is set. An ordered consumer with headers only
    wakes it up; the reading itself is ``catch_up``'s.

    A transient failure (events.faults: NATS, a database, a mail server not answering) is
    tried again after a pause that grows with each failure in a row; ``catch_up`` goes on
    from its last committed position. Any other failure ends the loop."""
    stored = 0
    woken = asyncio.Event()

    def on_stored(position: int) -> None:
        nonlocal stored
        stored = max(stored, position)
        woken.set()

    failures = 0

    async def failed(error: BaseException) -> None:
        nonlocal failures
        if not is_transient(error):  # a permanent subclass of a transient kind
            raise error
        failures += 1
        log.warning(
            "%s: %s: %s; trying again in %.1f s (failure %d in a row)",
            name or "consumer",
            type(error).__name__,
            error,
            backoff(failures),
            failures,
        )
        await pause(stop, backoff(failures))

    subscription = None
    while subscription is None and not stop.is_set():
        try:
            subscription = await connection.watch(on_stored)
        except TRANSIENT as error:
            await failed(error)
    try:
        while not stop.is_set():
            try:
                reached = await catch_up()
            except TRANSIENT as error:
                await failed(error)
                continue
            if failures:
                log.info("%s: going again after %d transient failures", name or "consumer", failures)
                failures = 0
            if stored > reached:
                continue  # stored while we were catching up
            woken.clear()
            waiting = asyncio.ensure_future(woken.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, timeout=SAFETY_POLL, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            stopping.cancel()
    finally:
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
