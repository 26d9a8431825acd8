"""One event-loop thread that lets synchronous code call asyncio (nats-py) code.

The eventsourcing library is synchronous; nats-py is asyncio. Every recorder made by one
infrastructure factory shares a single loop thread and NATS connection, and calls into it
with `LoopThread.run(coroutine)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "jobstream-nats") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from its own loop: it would deadlock")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def owned(self) -> bool:
        return True

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class RunningLoop:
    """An event loop that is already running (a web server's): nothing to start or stop.

    Code on that loop awaits the recorders' coroutines directly; other threads (a
    threadpool route, say) still reach it through `run`.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.current_thread()

    @property
    def owned(self) -> bool:
        return False

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("synchronous call on the event loop's own thread: await it instead")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        pass
