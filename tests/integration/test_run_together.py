"""`jobstream run workers`: the background services in one process, as `jobstream up` runs them."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_failing_service_ends_the_process_so_up_restarts_it(stream_env: dict[str, str], tmp_path: Path) -> None:
    # the projections cannot open their database: they fail at once, the invoicer, notifier
    # and scheduler beside them are stopped (not left running without them), and the process
    # ends with the reason
    env = {
        **os.environ,
        **stream_env,
        "JOBSTREAM_DATA": str(tmp_path),
        "READ_MODEL_URL": "sqlite:////proc/no-such-place/readmodels.sqlite3",
    }
    ended = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "workers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode != 0
    assert "/proc/no-such-place" in ended.stderr, ended.stderr[-2000:]


def test_projections_waiting_for_their_database_do_not_hold_the_other_services(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    # nothing answers on port 1: the library retries the read models' PostgreSQL for minutes,
    # and meanwhile the invoicer, beside the projections on the same loop, must start working
    env = {
        **os.environ,
        **stream_env,
        "JOBSTREAM_DATA": str(tmp_path),
        "READ_MODEL_URL": "postgresql://127.0.0.1:1/nowhere?connect_timeout=1",
    }
    workers = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "workers"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in workers.stderr or ()], daemon=True).start()
    try:
        seen: list[str] = []
        while not any("invoicer starting after position" in line for line in seen):
            try:
                seen.append(lines.get(timeout=60))
            except queue.Empty:
                raise AssertionError("the invoicer did not start:\n" + "".join(seen)) from None
    finally:
        workers.kill()  # a thread still waiting for the database would hold a clean stop
        workers.wait()


def test_a_second_up_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    """Two nats-servers on one JetStream store would corrupt it: while one `up` holds the
    data directory, another is refused before it starts anything."""
    from services.cli import _hold

    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    first = _hold(tmp_path)  # as the running `up` holds it
    try:
        second = subprocess.run(
            [sys.executable, "-m", "services.cli", "--data", str(tmp_path), "up"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"jobstream: already running with the data in {tmp_path} (pid {os.getpid()}); "
            "stop that one first, or give this one its own --data"
        )
        assert not (tmp_path / "nats").exists()
    finally:
        first.close()
