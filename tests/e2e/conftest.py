"""`jobstream up --demo` as a user starts it, on free ports, for the end-to-end tests."""

from __future__ import annotations

from typing import Any

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.natsd import free_port

JOBSTREAM = [sys.executable, "-m", "services.cli"]


class Running:
    def __init__(self, process: subprocess.Popen[str], data: Path) -> None:
        self.process = process
        self.data = data
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("<exit>")

    def as_admin(self, nats_url: str) -> str:
        """The NATS URL `up` printed, signed in as its admin user (the password `up` keeps in
        its data directory), as the CLI signs in."""
        password = json.loads((self.data / "nats.passwords").read_text())["admin"]
        return nats_url.replace("nats://", f"nats://admin:{password}@", 1)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            if line == "<exit>":
                raise AssertionError("jobstream exited; it said:\n" + "\n".join(self.seen))
            found = re.search(pattern, line)
            if found:
                return found


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env["JOBSTREAM_DATA"] = str(tmp_path / "data")
    return env


@pytest.fixture
def jobstream_up(clean_env: dict[str, str]) -> Iterator[tuple[Running, int]]:
    port = free_port()
    process = subprocess.Popen([*JOBSTREAM, "up", "--demo", "--port", str(port),
                                "--read-port", str(free_port())], env=clean_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    running = Running(process, Path(clean_env["JOBSTREAM_DATA"]))
    yield running, port
    if process.poll() is None:  # stop it as Ctrl-C would, then make sure nothing is left
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # every service signed in as its own NATS user and was refused nothing it needed
    log = (running.data / "nats" / "nats-server.log").read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]




async def stream_events_of(nats_url: str, subject: str, topic: str, count: int,
                           timeout: float = 30.0, where: Any = None) -> tuple[int, list[dict[str, Any]]]:
    """Wait on the stream itself until ``count`` events of this type (that ``where`` accepts)
    are stored under ``subject`` (a wildcard filter): their last stream position, and the
    events. No polling, no sleeping."""
    import asyncio
    import json

    import nats

    connection = await nats.connect(nats_url)
    found: list[dict[str, Any]] = []
    last = 0
    done = asyncio.Event()

    async def delivered(msg: Any) -> None:
        nonlocal last
        if msg.headers and msg.headers.get("Es-Topic") == topic:
            event = json.loads(msg.data)
            if where is not None and not where(event):
                return
            found.append(event)
            last = msg.metadata.sequence.stream
            if len(found) >= count:
                done.set()

    try:
        sub = await connection.jetstream().subscribe(subject, cb=delivered, ordered_consumer=True)
        try:
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            await sub.unsubscribe()
    finally:
        await connection.close()
    return last, found


def wait_for_events(nats_url: str, subject: str, topic: str, count: int,
                    timeout: float = 30.0, where: Any = None) -> tuple[int, list[dict[str, Any]]]:
    """stream_events_of, from synchronous code (a thread of its own: Playwright's sync API
    already runs an event loop on this one)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, stream_events_of(nats_url, subject, topic, count, timeout, where)).result()
