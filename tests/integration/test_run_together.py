"""`jobstream run workers`: the background services in one process, as `jobstream up` runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_failing_service_ends_the_process_so_up_restarts_it(stream_env: dict[str, str], tmp_path: Path) -> None:
    # the projections cannot open their database: they fail at once, the invoicer, notifier
    # and scheduler beside them are stopped (not left running without them), and the process
    # ends with the reason
    env = {**os.environ, **stream_env, "JOBSTREAM_DATA": str(tmp_path),
           "READ_MODEL_URL": "sqlite:////proc/no-such-place/readmodels.sqlite3"}
    ended = subprocess.run([sys.executable, "-m", "services.cli", "run", "workers"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode != 0
    assert "/proc/no-such-place" in ended.stderr, ended.stderr[-2000:]
