"""`jobstream up` leaves nothing behind, however it ends: Ctrl-C, SIGTERM, a hang-up, its
output closed (`jobstream up | head -1`), or its own SIGKILL. Not the nats-server, `run
web`, `run workers`, the document writer's render processes nor multiprocessing's
resource tracker."""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.natsd import free_port
from tests.e2e.conftest import JOBSTREAM, descendants, described, left_behind, running_with

UP_FOR = 120.0  # seconds `up --demo` may take to start on a busy machine


class Up:
    """`jobstream up --demo` on a fresh data directory, its output on a pipe read here."""

    def __init__(self, env: dict[str, str]) -> None:
        self.data = Path(env["JOBSTREAM_DATA"])
        self.errors = open(self.data.parent / "up.stderr", "w+b")
        self.process = subprocess.Popen(
            [*JOBSTREAM, "up", "--demo", "--port", str(free_port()), "--read-port", str(free_port())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.output = self.process.stdout.fileno()
        self.said = b""
        self.tree: set[int] = set()  # every process seen below `up`

    def read_until(self, text: bytes, timeout: float = UP_FOR) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.said:
            self.tree |= descendants(self.process.pid)
            left = deadline - time.monotonic()
            assert left > 0, self.story(f"no {text!r} in time")
            if select.select([self.output], [], [], min(left, 0.2))[0]:
                chunk = os.read(self.output, 65536)
                assert chunk, self.story("up closed its output")
                self.said += chunk

    def wait_for_the_whole_tree(self, timeout: float = UP_FOR) -> None:
        """Until a render process and the resource tracker have been seen (the demo's two
        invoices are rendered as the workers start), collecting every pid on the way."""
        deadline = time.monotonic() + timeout
        while True:
            self.tree |= descendants(self.process.pid)
            commands = [described(pid) for pid in self.tree]
            if any("multiprocessing.spawn" in c for c in commands) and any(
                "multiprocessing.resource_tracker" in c for c in commands
            ):
                return
            assert time.monotonic() < deadline, self.story(f"no render process in time: {commands}")
            if select.select([self.output], [], [], 0.05)[0]:  # keep the pipe drained
                self.said += os.read(self.output, 65536)

    def story(self, what: str) -> str:
        self.errors.seek(0)
        return (
            f"{what}\n--- up said:\n{self.said.decode(errors='replace')}\n--- on stderr:\n"
            f"{self.errors.read().decode(errors='replace')[-6000:]}"
        )

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in running_with(self.data):  # what this test started and left: not left for the next
            os.kill(pid, signal.SIGKILL)
        self.errors.close()


@pytest.fixture
def up(clean_env: dict[str, str]) -> Iterator[Up]:
    running = Up(clean_env)
    yield running
    running.close()


ENDINGS = {
    # a terminal's Ctrl-C reaches the whole foreground process group
    "ctrl-c": lambda up: os.killpg(up.process.pid, signal.SIGINT),
    "sigterm": lambda up: os.kill(up.process.pid, signal.SIGTERM),
    # a terminal closed: the shell passes the hang-up on to its jobs' process groups
    "sighup": lambda up: os.killpg(up.process.pid, signal.SIGHUP),
    "closed-stdout": lambda up: up.process.stdout.close(),  # type: ignore[union-attr]
    "sigkill": lambda up: os.kill(up.process.pid, signal.SIGKILL),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_nothing_of_jobstream_up_outlives_it(up: Up, ending: str) -> None:
    up.read_until(b"Press Ctrl-C to stop.")
    assert (up.data / "nats.url").exists()
    up.wait_for_the_whole_tree()
    up.tree |= descendants(up.process.pid)
    assert len(up.tree) >= 5, [described(pid) for pid in up.tree]  # nats, web, workers, a renderer, the tracker

    ENDINGS[ending](up)
    try:
        code = up.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(up.story(f"up did not end on {ending}")) from None

    assert left_behind(up.tree, up.data) == [], up.story(f"up ended with {code}")
    if ending == "sigkill":
        assert code == -signal.SIGKILL
    else:  # stopped in order, and said so where it still could
        assert code in (0, 1), up.story(f"up ended with {code}")
        assert "Traceback" not in up.story(""), up.story("a traceback on the way out")


def test_up_piped_into_head_stops_and_leaves_nothing(clean_env: dict[str, str]) -> None:
    """`jobstream up | head -1`: head reads the first line and goes; up's next line finds no
    reader. It stops everything it started, and the pipeline ends."""
    data = Path(clean_env["JOBSTREAM_DATA"])
    line = " ".join(
        shlex.quote(part) for part in [*JOBSTREAM, "up", "--port", str(free_port()), "--read-port", str(free_port())]
    )
    pipeline = subprocess.Popen(
        ["sh", "-c", f"{line} | head -1"],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        try:
            out, err = pipeline.communicate(timeout=UP_FOR)  # the shell waits for both sides of the pipe
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"up went on after head had gone: {[described(pid) for pid in running_with(data)]}"
            ) from None
        assert out.decode().startswith("Started nats-server with JetStream at nats://"), out
        assert left_behind(set(), data) == [], err.decode()
        assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()
    finally:  # what this test started and left: not left for the next
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
        for pid in running_with(data):
            os.kill(pid, signal.SIGKILL)
