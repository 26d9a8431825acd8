"""One event-loop thread that lets synchronous code call asyncio (nats-py) code.

The eventsourcing library is synchronous; nats-py is asyncio. Every recorder made by one
infrastructure factory shares a single loop thread and NATS connection, and calls into it
with `LoopThread.run(coroutine)`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "jobstream-nats") -> None:
        self.loop = asyncio.new_event_loop()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run the coroutine on the loop and wait for its result.

        Never waits forever on a loop that has stopped: a call made from another thread while
        (or after) the connection closes raises ConnectionError instead of parking its
        thread, which would keep the interpreter from exiting.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from its own loop: it would deadlock")
        if self._stopping.is_set():
            coroutine.close()
            raise ConnectionError("the NATS connection is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        waited = 0.0
        while True:
            slice_ = 0.5 if timeout is None else max(0.0, min(0.5, timeout - waited))
            try:
                return future.result(slice_)
            except concurrent.futures.TimeoutError:
                if future.done():  # the coroutine's own TimeoutError (one class since Python 3.11)
                    raise
                waited += slice_
                if not self._thread.is_alive():
                    future.cancel()
                    raise ConnectionError("the NATS connection closed while waiting") from None
                if timeout is not None and waited >= timeout:
                    future.cancel()
                    raise
            except concurrent.futures.CancelledError:
                raise ConnectionError("the NATS connection closed while waiting") from None

    @property
    def owned(self) -> bool:
        return True

    def stop(self) -> None:
        """Cancel what is still running on the loop (its callers get ConnectionError), stop it."""
        if self.loop.is_closed():
            return
        self._stopping.set()

        async def cancel_the_rest() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            asyncio.get_running_loop().stop()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop)
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


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT, SIGTERM or SIGHUP (its terminal closed): how a service run
    alone learns to stop. (Run beside others in one process, `jobstream run workers`, it is
    handed the process's.)"""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    return stop
