"""Live updates: one poller of the read models' position per process, and its server-sent
events (``GET /api/live``), which every open dashboard page listens to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from read_api.deps import CurrentUser
from read_api.errors import ERRORS
from read_api.queries import BoardFilter, Page, ReadModels

log = logging.getLogger(__name__)
router = APIRouter(tags=["read"], responses=ERRORS)


@router.get("/api/live", summary="Server-sent events: the read models' position as it moves")
async def live(request: Request, who: CurrentUser) -> StreamingResponse:
    revocations = request.app.state.revocations
    return StreamingResponse(
        request.app.state.live.stream(request, lambda: who.token_id in revocations),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class Live:
    """One poller of the read models' position, fanned out to every open dashboard."""

    def __init__(self, models: ReadModels, every: float = 0.05) -> None:
        self.models = models
        self.every = every
        self.position = 0
        self.board_position = 0
        self.users_position = 0  # the board position the remembered users were last read at
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._remaking: dict[bytes, asyncio.Task[Any]] = {}

    def making(self, f: BoardFilter) -> asyncio.Task[Page]:
        """This filter's page, being made: one make at a time per filter, shared by every
        reader who asks meanwhile (a hundred dashboards opening the same new filter wait
        for one query, not a hundred in a row)."""
        key = msgspec.json.encode(f)
        task = self._remaking.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.models.board_json, f))
            self._remaking[key] = task
            task.add_done_callback(lambda _: self._remaking.pop(key, None))
        return task

    def remake(self, f: BoardFilter) -> None:
        """Make this filter's page again in the background, once at a time."""
        if not self._stopping.is_set():
            self.making(f)

    def start(self) -> None:
        if self._task is None and not self._stopping.is_set():
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling and wait for every read in flight, so the models can be closed.

        A read is never cancelled half-way: its thread would carry on with a
        connection that is being closed under it, and could wait forever.
        """
        self._stopping.set()
        waiting = [t for t in (self._task, *self._remaking.values()) if t is not None]
        await asyncio.gather(*waiting, return_exceptions=True)

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                reached, self.board_position = await asyncio.to_thread(
                    lambda: (self.models.position(), self.models.board_position())
                )
                if self.board_position != self.users_position:
                    await asyncio.to_thread(self.models.refresh_users)
                    self.users_position = self.board_position
            except Exception:  # a database hiccup must not end live updates for good
                log.exception("could not read the read models' position; trying again")
                reached = self.position
            if reached != self.position:
                self.position = reached
                async with self.changed:
                    self.changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)

    async def wake(self) -> None:
        """Every open stream looks again (a token was revoked: its streams end)."""
        async with self.changed:
            self.changed.notify_all()

    async def stream(self, request: Request, revoked: Callable[[], bool]) -> AsyncIterator[bytes]:
        """The position as it moves, until the reader goes or their token is revoked."""
        self.start()
        seen = await asyncio.to_thread(self.models.position)
        yield f"retry: 1000\nevent: position\ndata: {seen}\n\n".encode()
        while not revoked() and not await request.is_disconnected():
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
            if self.position != seen:
                seen = self.position
                yield f"event: position\ndata: {seen}\n\n".encode()
