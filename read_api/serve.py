"""Run the read API alone: ``python -m read_api.serve --port 8001`` (what `jobstream run read-api` starts).

Settings come from the environment, here, once: READ_MODEL_URL (sqlite:///path or
postgresql://...), COMMAND_API_URL (where the dashboard's forms go), JOBSTREAM_TIMEZONE.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

import uvicorn

from read_api.app import create_app
from read_api.settings import settings_from_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobstream run read-api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not os.environ.get("READ_MODEL_URL"):
        raise SystemExit("read API: READ_MODEL_URL is not set (sqlite:///path or postgresql://...)")
    gc.set_threshold(100_000, 50, 50)  # as the command API: fewer young-generation pauses
    if args.workers > 1:
        uvicorn.run(
            "read_api.app:app_from_environment",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )
        return 0
    settings = settings_from_environment()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
