"""`jobstream up --demo` as a user starts it, on free ports, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now, read from /proc (its threads' children, and theirs)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        try:
            tasks = list(Path(f"/proc/{todo.pop()}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            todo.extend(child for child in children if child not in found)
            found.update(children)
    return found


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def described(pid: int) -> str:
    try:
        status = dict(
            line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line
        )
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} (parent {status.get('PPid', '?').strip()}): {command[:160]}"


def running_with(data: Path) -> set[int]:
    """Every live process started for this data directory, whoever its parent is now: each
    one of `jobstream up`'s tree carries JOBSTREAM_DATA in its environment."""
    mark = f"JOBSTREAM_DATA={data}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in environment and alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def left_behind(pids: set[int], data: Path, timeout: float = 60.0) -> list[str]:
    """The processes of ``pids``, or of the data directory, still alive once ``timeout`` has
    passed without all of them ending (polling /proc): what outlived `jobstream up`."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = {pid for pid in pids if alive(pid)} | running_with(data)
        if not remaining or time.monotonic() > deadline:
            return [described(pid) for pid in sorted(remaining)]
        time.sleep(0.1)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env["JOBSTREAM_DATA"] = str(tmp_path / "data")
    return env


@pytest.fixture
def jobstream_up(clean_env: dict[str, str]) -> Iterator[tuple[Running, int]]:
    port = free_port()
    process = subprocess.Popen(
        [*JOBSTREAM, "up", "--demo", "--port", str(port), "--read-port", str(free_port())],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Running(process, Path(clean_env["JOBSTREAM_DATA"]))
    yield running, port
    tree = descendants(process.pid)
    if process.poll() is None:  # stop it as Ctrl-C would, then make sure nothing is left
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # nothing of it outlives it: not the nats-server, the services, their render processes
    # or multiprocessing's resource tracker (also those of the workers a test killed)
    leftovers = left_behind(tree, running.data)
    for pid in running_with(running.data):  # not left for the next test
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []
    # every service signed in as its own NATS user and was refused nothing it needed
    log = (running.data / "nats" / "nats-server.log").read_text()
    assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]


async def stream_events_of(
    nats_url: str, subject: str, topic: str, count: int, timeout: float = 30.0, where: Any = None
) -> tuple[int, list[dict[str, Any]]]:
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


def wait_for_events(
    nats_url: str, subject: str, topic: str, count: int, timeout: float = 30.0, where: Any = None
) -> tuple[int, list[dict[str, Any]]]:
    """stream_events_of, from synchronous code (a thread of its own: Playwright's sync API
    already runs an event loop on this one)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, stream_events_of(nats_url, subject, topic, count, timeout, where)).result()
