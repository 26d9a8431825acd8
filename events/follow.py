"""Staying caught up with the stream: the loop every consumer (projectors, the invoicer) runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from events.jetstream import NatsConnection

SAFETY_POLL = 5.0  # seconds: the wake-up is the fast path; this only guards against a lost one


async def follow(connection: NatsConnection, catch_up: Callable[[], Awaitable[int]],
                 stop: asyncio.Event) -> None:
    """Call ``catch_up()`` (which returns the position it reached) now and whenever the stream
    stores something newer, until ``stop`` is set. An ordered consumer with headers only
    wakes it up; the reading itself is ``catch_up``'s."""
    stored = 0
    woken = asyncio.Event()

    def on_stored(position: int) -> None:
        nonlocal stored
        stored = max(stored, position)
        woken.set()

    subscription = await connection.watch(on_stored)
    try:
        while not stop.is_set():
            reached = await catch_up()
            if stored > reached:
                continue  # stored while we were catching up
            woken.clear()
            waiting = asyncio.ensure_future(woken.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, timeout=SAFETY_POLL,
                               return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            stopping.cancel()
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
