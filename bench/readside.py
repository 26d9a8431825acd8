"""The read side, measured in one run beside the raw JetStream read rate on the same machine.

    .venv/bin/python bench/readside.py [--small 100000] [--large 1000000] [--jobs 50000]

Starts its own nats-server (the project's nats.conf) on a free port, writes two histories
straight into the stream (atomic batches of 1,000 realistic job events: requested,
scheduled, started, notes, stopped, completed, signed off; customers, technicians, a
token), and prints a Markdown table for docs/benchmarks.md:

- the raw rate of reading the stream with an ordered consumer (the limit);
- `jobstream audit replay --json` to /dev/null, and the board and timesheet projections
  rebuilt into a fresh SQLite file (`jobstream run projector <name> --once`), as events
  per second and as a ratio to the raw rate, with each process's peak RSS;
- the read API at 100 concurrent clients (wrk) on the large board, p50/p99;
- how soon a command's effect is on the board: command acknowledged -> the board
  projector's committed position reaches it, p50/p99, at 20 commands per second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.backbone import percentile, wait_healthy, wrk_percentile  # noqa: E402
from events.contract import (  # noqa: E402
    AddNote,
    Address,
    CustomerRegistered,
    JobCompleted,
    JobRequested,
    JobScheduled,
    JobSignedOff,
    NoteAdded,
    Priority,
    Role,
    TechnicianRegistered,
    TokenIssued,
    WorkStarted,
    WorkStopped,
    event_hash,
    seal,
)
from events.jetstream import NatsConnection, StreamSettings, connect  # noqa: E402
from services.application import JobstreamApp  # noqa: E402
from services.domain.common import Actor  # noqa: E402
from services.natsd import EmbeddedNats, free_port  # noqa: E402

TOKEN = "js_bench_reader"
CITIES = ["Brno", "Praha", "Kraków", "Leipzig", "Cluj-Napoca", "Dublin", "Ostrava", "Wrocław"]
TYPES = ["repair", "boiler-service", "install", "hvac-maintenance", "deep-clean", "network", "leak"]


# --- writing a history ---------------------------------------------------------------------


class Writer:
    """Events with real metadata and hash chains, stored in atomic batches of 1,000."""

    def __init__(self, connection: NatsConnection) -> None:
        self.connection = connection
        self.pending: list[tuple[str, bytes, dict[str, str]]] = []
        self.versions: dict[uuid.UUID, tuple[int, str]] = {}
        self.count = 0

    async def add(self, event: object, when: datetime, actor: str, role: str) -> None:
        aggregate_id = event.id  # type: ignore[attr-defined]
        version, previous = self.versions.get(aggregate_id, (0, ""))
        (stored,) = seal(
            aggregate_id,
            version,
            previous,
            [event],
            now=when,
            actor_id=actor,  # type: ignore[list-item]
            actor_role=role,
            command_id=f"bench-{uuid.uuid4().hex}",
            correlation_id="bench",
        )
        self.versions[aggregate_id] = (stored.originator_version, event_hash(stored.state))
        subject = self.connection.settings.subject("events", stored.topic, aggregate_id)
        self.pending.append(
            (subject, stored.state, {"Es-Topic": stored.topic, "Es-Version": str(stored.originator_version)})
        )
        if len(self.pending) == 1000:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            await self.connection.publish(self.pending)
            self.count += len(self.pending)
            self.pending = []


async def write_history(settings: StreamSettings, events: int, jobs: int) -> int:
    connection = await NatsConnection.open_on_running_loop(settings)
    await connection.ensure_stream_async()
    writer = Writer(connection)
    rng = random.Random(7)
    start = datetime(2026, 8, 1, 7, 0, tzinfo=UTC)
    await writer.add(
        TokenIssued(
            id=uuid.uuid4(), user_name="bench", role=Role.OFFICE, token_hash=hashlib.sha256(TOKEN.encode()).hexdigest()
        ),
        start,
        "admin",
        "admin",
    )
    technicians = [TechnicianRegistered(id=uuid.uuid4(), name=f"Technician {n}", skills=["hvac"]) for n in range(20)]
    customers = []
    for n in range(500):
        city = CITIES[n % len(CITIES)]
        customers.append(
            CustomerRegistered(
                id=uuid.uuid4(),
                name=f"Customer {n} {city}",
                billing_address=Address(street=f"Street {n}", city=city, postal_code="10000", country="CZ"),
                email=f"c{n}@example.com",
            )
        )
    for event in [*technicians, *customers]:
        await writer.add(event, start, "office", "office")
    per_job = max(7, -(-(events - 521) // jobs))  # rounded up: at least the events asked for
    for n in range(jobs):
        job, tech = uuid.uuid4(), rng.choice(technicians).id
        customer = rng.choice(customers)
        when = start + timedelta(minutes=n * (90 * 24 * 60) // jobs)
        urgent = rng.random() < 0.2
        await writer.add(
            JobRequested(
                id=job,
                source="phone",
                customer_id=customer.id,
                site_address=customer.billing_address,
                job_type=rng.choice(TYPES),
                description=f"Job {n}: {rng.choice(['leak', 'noise', 'no heat', 'check'])}",
                priority=Priority.URGENT if urgent else Priority.NORMAL,
                sla_deadline=when + timedelta(hours=8) if urgent else None,
            ),
            when,
            "office",
            "office",
        )
        await writer.add(
            JobScheduled(id=job, technician_ids=[tech], start=when + timedelta(hours=2), duration_minutes=90),
            when,
            "office",
            "office",
        )
        entry, began = uuid.uuid4(), when + timedelta(hours=2)
        await writer.add(
            WorkStarted(id=job, technician_id=tech, entry_id=entry, started_at=began), began, "tech", "technician"
        )
        done = rng.random() < 0.6
        notes = per_job - (6 if done else 3)
        for k in range(notes):
            await writer.add(NoteAdded(id=job, text=f"note {k}"), began + timedelta(minutes=k), "tech", "technician")
        if done:
            stopped = began + timedelta(minutes=70)
            await writer.add(
                WorkStopped(
                    id=job, technician_id=tech, entry_id=entry, started_at=began, stopped_at=stopped, minutes=70
                ),
                stopped,
                "tech",
                "technician",
            )
            await writer.add(JobCompleted(id=job, summary="done"), stopped, "tech", "technician")
            await writer.add(JobSignedOff(id=job, signed_by="Customer"), stopped, "tech", "technician")
    await writer.flush()
    await connection.aclose()
    return writer.count


# --- reading it --------------------------------------------------------------------------


async def raw_read(settings: StreamSettings, expected: int) -> float:
    """An ordered consumer over every event: the limit a reader of the stream can reach.

    Read with the project's own client (nats-py with the faster header reader), the same
    one replay and the projectors use, so the ratio compares like with like.
    """
    nc = await connect(servers=[settings.url])
    js = nc.jetstream()
    done = asyncio.Event()
    seen = 0

    async def on_message(msg: object) -> None:
        nonlocal seen
        seen += 1
        if seen >= expected:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(
        settings.events_filter,
        cb=on_message,
        ordered_consumer=True,
        stream=settings.stream,
        pending_msgs_limit=2_000_000,
        pending_bytes_limit=2**31,
    )
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    await nc.close()
    return expected / elapsed


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; its wall time in seconds and its own peak RSS in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def wrk(url: str, clients: int, seconds: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {TOKEN}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"reads failed under load:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, wrk_percentile(out, 50), wrk_percentile(out, 99)


def visibility(env: dict[str, str], db: Path, commands: int, rate: float) -> list[float]:
    """Command acknowledged -> the live board projector has committed its position."""
    projector = subprocess.Popen(
        [sys.executable, "-m", "projections.runner", "board"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    app = JobstreamApp(
        {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": env["NATS_URL"],
            "NATS_STREAM": env["NATS_STREAM"],
            "NATS_SUBJECT_PREFIX": env["NATS_SUBJECT_PREFIX"],
        }
    )
    office = Actor(id="bench", role=Role.OFFICE)
    reader = sqlite3.connect(db, timeout=30)
    jobs = [uuid.UUID(r[0]) for r in reader.execute("SELECT id FROM jobs WHERE status = 'in_progress' LIMIT 200")]

    def position() -> int:
        row = reader.execute("SELECT notification_id FROM tracking WHERE application_name = 'board'").fetchone()
        return int(row[0]) if row else 0

    latencies = []
    try:
        while position() < (app.recorder.max_notification_id() or 0):
            time.sleep(0.05)  # the projector catching up with the history before we start
        for n in range(commands):
            tick = time.perf_counter()
            result = app.execute(jobs[n % len(jobs)], AddNote(text=f"visible {n}"), office)
            acknowledged = time.perf_counter()
            while position() < result.position:
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - acknowledged)
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - tick)))
    finally:
        app.close()
        projector.terminate()
        projector.wait()
        reader.close()
    return latencies


def measure(server: EmbeddedNats, data: Path, events: int, jobs: int, name: str) -> dict[str, float]:
    settings = StreamSettings(url=server.admin_url, stream=name, prefix=f"{name.lower()}.")
    started = time.perf_counter()
    written = asyncio.run(write_history(settings, events, jobs))
    print(f"  wrote {written:,} events for {jobs:,} jobs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    figures: dict[str, float] = {"events": written, "jobs": jobs}
    figures["raw"] = asyncio.run(raw_read(settings, written))
    env = {
        **os.environ,
        "NATS_URL": server.admin_url,
        "NATS_STREAM": name,
        "NATS_SUBJECT_PREFIX": name.lower(),
        "READ_MODEL_URL": f"sqlite:///{data / f'{name}.sqlite3'}",
    }
    elapsed, _ = timed([sys.executable, "-m", "projections.audit", "replay", "--json"], env)
    figures["replay"] = written / elapsed
    for projection in ("board", "timesheets"):
        elapsed, peak = timed([sys.executable, "-m", "projections.runner", projection, "--once"], env)
        figures[f"rebuild_{projection}"] = written / elapsed
        figures[f"rss_{projection}"] = peak
    figures["env"] = env  # type: ignore[assignment]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=100_000, help="events in the small history")
    parser.add_argument("--large", type=int, default=1_000_000, help="events in the large history")
    parser.add_argument("--jobs", type=int, default=50_000, help="jobs in the large history (the board)")
    parser.add_argument("--seconds", type=int, default=10, help="per HTTP measurement")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk, a C HTTP load generator: apt-get install wrk")
    data = Path(tempfile.mkdtemp(prefix="jobstream-bench-read-"))
    try:
        large, runs, board, filtered, search, api_rss, seen = measure_all(args, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)  # a million events and their read models: about 1 GB
    report(runs, large, board, filtered, search, api_rss, seen)


def measure_all(args: argparse.Namespace, data: Path) -> tuple[Any, ...]:
    runs = []
    with EmbeddedNats(data / "nats") as server:
        for events, jobs, name in [
            (args.small, max(1, args.small * args.jobs // args.large), "SMALL"),
            (args.large, args.jobs, "LARGE"),
        ]:
            print(f"{name}: {events:,} events", file=sys.stderr)
            runs.append(measure(server, data, events, jobs, name))
        large = runs[-1]
        env = large["env"]  # type: ignore[index]
        port = free_port()
        api = subprocess.Popen([sys.executable, "-m", "read_api.serve", "--port", str(port)], env=env, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base)
            wrk(f"{base}/api/board?limit=50", 100, 3)  # warm up
            board = wrk(f"{base}/api/board?limit=50", 100, args.seconds)
            filtered = wrk(
                f"{base}/api/board?limit=50&status=in_progress&priority=urgent&sort=sla&order=asc", 100, args.seconds
            )
            search = wrk(f"{base}/api/board?limit=50&q=krak", 100, args.seconds)
            api_rss = rss_mb(api.pid)
        finally:
            api.terminate()
            api.wait()
        seen = visibility(
            runs[0]["env"],
            Path(runs[0]["env"]["READ_MODEL_URL"].removeprefix("sqlite:///")),  # type: ignore[index]
            200,
            20.0,
        )
    return large, runs, board, filtered, search, api_rss, seen


def report(
    runs: list[dict[str, Any]],
    large: dict[str, Any],
    board: tuple[float, float, float],
    filtered: tuple[float, float, float],
    search: tuple[float, float, float],
    api_rss: float,
    seen: list[float],
) -> None:
    print("| measurement | events | events per second | ratio to raw read | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for run in runs:
        n = f"{int(run['events']):,}"
        print(f"| raw read, ordered consumer (the limit) | {n} | {run['raw']:,.0f} | 1.00 | |")
        print(
            f"| `audit replay --json` > /dev/null | {n} | {run['replay']:,.0f} | {run['replay'] / run['raw']:.2f} | |"
        )
        for projection in ("board", "timesheets"):
            rate = run[f"rebuild_{projection}"]
            print(
                f"| rebuild {projection} into SQLite | {n} | {rate:,.0f} | {rate / run['raw']:.2f} | "
                f"{run[f'rss_{projection}']:.0f} |"
            )
    print()
    print(
        f"Read API at 100 concurrent clients, board of {int(large['jobs']):,} jobs ({int(large['events']):,} events):"
    )
    print()
    print("| query | requests per second | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for label, (rate, p50, p99) in [
        ("board, first page of 50", board),
        ("in progress + urgent, by SLA", filtered),
        ("text search 'krak'", search),
    ]:
        print(f"| {label} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    print()
    print(f"- read API RSS after the run: {api_rss:.0f} MB")
    print(
        f"- a command's effect on the board (ack -> projector committed), 200 commands at 20/s: "
        f"p50 {percentile(seen, 50) * 1000:.1f} ms, p99 {percentile(seen, 99) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
