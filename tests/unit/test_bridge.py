"""The loop thread between the synchronous library and nats-py."""

from __future__ import annotations

import time

import pytest

from events.bridge import LoopThread


def test_a_request_that_times_out_is_reported_at_once() -> None:
    """nats-py's timeouts are TimeoutError, the same class as a wait that ran out: the
    caller must get the error, not wait on it forever."""
    loop = LoopThread()

    async def timed_out() -> None:
        raise TimeoutError("nats: timeout")

    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="nats: timeout"):
            loop.run(timed_out())
        assert time.monotonic() - started < 1.0
    finally:
        loop.stop()
