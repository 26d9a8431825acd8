"""The event backbone, measured in one run beside the raw JetStream limit on the same machine.

    .venv/bin/python bench/backbone.py [--seconds 5]

Starts its own nats-server (the project's nats.conf: sync_interval always) on a free port
and its own command API, and prints a Markdown table for docs/benchmarks.md:

- raw JetStream conditional publish (Nats-Expected-Last-Subject-Sequence, one subject per
  writer, each waiting for its ack), in the NATS protocol over one socket with no client
  library: the limit, at 1 and 32 concurrent writers;
- the recorder's insert_events of one event, at 1 and 32 threads;
- commands through the HTTP API (AddNote with a fresh Idempotency-Key, on one of 1,000
  jobs at random) at 1 and 32 concurrent connections, driven by wrk (a C load generator, so
  the client does not take the API's CPU; `apt-get install wrk`), with p50 and p99;
- loading a job with 500 events: cold (a fresh process cache) and warm;
- the resident memory of the whole product (`jobstream up`) when idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.persistence import StoredEvent

from events.contract import AddNote, Role, ScheduleJob
from services.application import JobstreamApp
from services.domain.common import Actor
from services.natsd import EmbeddedNats, free_port

OFFICE = Actor(id="bench", role=Role.OFFICE)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Figure:
    def __init__(self, name: str, rate: float, latencies: list[float] | None = None) -> None:
        self.name, self.rate = name, rate
        self.p50 = percentile(latencies, 50) * 1000 if latencies else None
        self.p99 = percentile(latencies, 99) * 1000 if latencies else None


# --- raw JetStream ---------------------------------------------------------------------


async def raw_conditional_publish(server: EmbeddedNats, stream: str, writers: int, seconds: float) -> Figure:
    """The limit: conditional publishes in the NATS protocol itself, over one socket, with no
    client library (nats-py's request path, headers parsed into a dict and a Msg per reply,
    costs more CPU than the server's work and made the "limit" lower than the API's rate)."""
    nc = await nats.connect(server.admin_url)
    await nc.jetstream().add_stream(
        name=stream, subjects=[f"{stream}.>"], storage="file", allow_direct=True, deny_delete=True, deny_purge=True
    )
    await nc.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await reader.readline()  # INFO
    connect = {
        "verbose": False,
        "pedantic": False,
        "headers": True,
        "no_responders": True,
        "protocol": 1,
        "user": "admin",
        "pass": server.passwords["admin"],
    }
    writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\nSUB _RAW.* 1\r\nPING\r\n")
    while (await reader.readline()).strip() != b"PONG":
        pass
    replies: dict[bytes, asyncio.Future[bytes]] = {}

    async def read() -> None:
        while True:
            line = await reader.readline()
            if line.startswith(b"MSG "):  # MSG <subject> <sid> <size>: the PubAck
                _, subject, _, size = line.split()
                payload = await reader.readexactly(int(size) + 2)
                replies.pop(subject).set_result(payload)
            elif line.startswith(b"PING"):
                writer.write(b"PONG\r\n")
            elif line.startswith(b"-ERR") or not line:
                raise RuntimeError(f"nats-server said {line!r}")

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    payload = b'{"type":"NoteAdded","text":"benchmark"}'

    async def publisher(n: int) -> int:
        subject, last, count = f"{stream}.raw.{n}".encode(), 0, 0
        loop = asyncio.get_running_loop()
        while time.perf_counter() < deadline:
            reply = f"_RAW.{n}".encode()
            headers = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: %d\r\n\r\n" % last
            answered = replies[reply] = loop.create_future()
            started = time.perf_counter()
            writer.write(
                b"HPUB %s %s %d %d\r\n%s%s\r\n"
                % (subject, reply, len(headers), len(headers) + len(payload), headers, payload)
            )
            ack = await asyncio.wait_for(answered, 10)
            latencies.append(time.perf_counter() - started)
            last = int(ack.split(b'"seq":')[1].split(b",")[0].split(b"}")[0])
            count += 1
        return count

    reading = asyncio.create_task(read())
    started = time.perf_counter()
    counts = await asyncio.gather(*(publisher(n) for n in range(writers)))
    elapsed = time.perf_counter() - started
    reading.cancel()
    writer.close()
    return Figure(f"raw conditional publish, {writers} writer(s)", sum(counts) / elapsed, latencies)


# --- the recorder ------------------------------------------------------------------------


def recorder_inserts(app: JobstreamApp, threads: int, seconds: float) -> Figure:
    recorder = app.recorder
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def insert() -> int:
        count = 0
        while time.perf_counter() < deadline:
            event = StoredEvent(uuid.uuid4(), 1, "NoteAdded", b'{"type":"NoteAdded","text":"benchmark"}')
            started = time.perf_counter()
            recorder.insert_events([event])
            latencies.append(time.perf_counter() - started)
            count += 1
        return count

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        counts = list(pool.map(lambda _: insert(), range(threads)))
    elapsed = time.perf_counter() - started
    return Figure(f"recorder insert_events, {threads} thread(s)", sum(counts) / elapsed, latencies)


# --- the HTTP command path -----------------------------------------------------------------


def prepare_jobs(app: JobstreamApp, count: int) -> tuple[list[uuid.UUID], str]:
    from events.contract import Address, RegisterCustomer, RegisterTechnician, RequestJob

    customer, tech = uuid.uuid4(), uuid.uuid4()
    address = Address(street="Benchmark 1", city="Brno", postal_code="60200", country="CZ")
    app.execute(customer, RegisterCustomer(name="Bench", billing_address=address), OFFICE)
    app.execute(tech, RegisterTechnician(name="Bench Tech"), OFFICE)
    jobs = []
    for _ in range(count):
        job = uuid.uuid4()
        app.execute(job, RequestJob(customer_id=customer, job_type="repair", description="bench"), OFFICE)
        app.execute(job, ScheduleJob(technician_ids=[tech], start=_now()), OFFICE)
        jobs.append(job)
    return jobs, app.issue_token("bench", Role.OFFICE)


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


WRK_SCRIPT = r"""
local f = io.open(os.getenv("JOBSTREAM_BENCH_JOBS")); local data = f:read("*a"); f:close()
local token = data:match('"token":"([^"]+)"')
local jobs = {}
for j in data:gmatch('"(%x+%-%x+%-%x+%-%x+%-%x+)"') do table.insert(jobs, j) end
local counter = 0
math.randomseed(os.time())
request = function()
  counter = counter + 1
  local job = jobs[math.random(#jobs)]
  local key = string.format("%d-%d-%d", math.random(1e9), counter, math.random(1e9))
  return wrk.format("POST", "/jobs/" .. job .. "/notes",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
     ["Idempotency-Key"] = key}, '{"text":"benchmark note"}')
end
"""


def wait_healthy(base: str) -> None:
    """Until the service started at ``base`` answers /health (at most 30 s)."""
    for _ in range(300):
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)


def wrk_percentile(out: str, percent: int) -> float:
    """A latency percentile from wrk's "Latency Distribution", in ms. Anchored at the start of
    a line: the thread statistics above it print percentages too ("+/- Stdev  75.50%")."""
    found = re.search(rf"^\s+{percent}%\s+(\S+)", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no {percent}th percentile:\n{out}")
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", found.group(1))
    if match is None:
        raise RuntimeError(f"wrk printed a latency this bench cannot read: {found.group(1)!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def http_commands(base: str, script: Path, clients: int, seconds: float) -> Figure:
    """wrk (C) posts AddNote with a fresh Idempotency-Key, each to one of the jobs at random."""
    out = subprocess.run(
        ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"commands failed under load:\n{out}")
    figure = Figure(
        f"HTTP commands (AddNote, Idempotency-Key), {clients} client(s)",
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
    )  # type: ignore[union-attr]
    figure.p50, figure.p99 = wrk_percentile(out, 50), wrk_percentile(out, 99)
    return figure


# --- loading a long job --------------------------------------------------------------------


def load_500(env: dict[str, str]) -> tuple[float, float]:
    writer = JobstreamApp(env)
    job = prepare_jobs(writer, 1)[0][0]
    for n in range(498):
        writer.execute(job, AddNote(text=f"note {n}"), OFFICE)
    assert writer.load("job", job).version == 500
    writer.close()
    cold, warm = [], []
    for _ in range(20):
        reader = JobstreamApp(env)
        started = time.perf_counter()
        reader.load("job", job)
        cold.append(time.perf_counter() - started)
        for _ in range(20):
            started = time.perf_counter()
            reader.load("job", job)
            warm.append(time.perf_counter() - started)
        reader.close()
    return statistics.median(cold) * 1000, statistics.median(warm) * 1000


# --- memory ------------------------------------------------------------------------------


def tree_rss_mb(pid: int) -> float:
    return sum(mb for _, _, mb in tree_processes(pid))


def tree_processes(pid: int) -> list[tuple[int, str, float]]:
    """Each process of the tree: pid, command line (shortened), RSS in MB."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
            found.append((current, " ".join(a.decode() for a in argv[1:6]), rss))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            continue
    return found


def idle_rss(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
        env["JOBSTREAM_DATA"] = data
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "up",
                "--demo",
                "--port",
                str(free_port()),
                "--read-port",
                str(free_port()),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if "Press Ctrl-C" in line:
                break
        time.sleep(seconds)  # idle: nothing to wait for but the passing of time
        rss = tree_rss_mb(process.pid)
        for pid, name, mb in tree_processes(process.pid):
            print(f"  idle RSS {mb:6.1f} MB  {pid}  {name}", file=sys.stderr)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk, a C HTTP load generator: apt-get install wrk")
    data = tempfile.mkdtemp(prefix="jobstream-bench-")
    figures: list[Figure] = []
    with EmbeddedNats(Path(data) / "nats") as server:
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.admin_url}
        for writers in (1, 32):
            figures.append(asyncio.run(raw_conditional_publish(server, f"RAW{writers}", writers, args.seconds)))
        app = JobstreamApp(env)
        for threads in (1, 32):
            figures.append(recorder_inserts(app, threads, args.seconds))
        jobs, token = prepare_jobs(app, 1000)
        app.close()
        script = Path(data) / "notes.lua"
        script.write_text(WRK_SCRIPT)
        (Path(data) / "jobs.json").write_text(
            json.dumps({"token": token, "jobs": [str(j) for j in jobs]}, separators=(",", ":"))
        )
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "command-api", "--port", str(port)],
            # signed in as the command API is in production: its own NATS user (nats.conf)
            env={
                **os.environ,
                **env,
                "NATS_URL": server.url,
                "NATS_USER": "command",
                "NATS_PASSWORD": server.passwords["command"],
                "JOBSTREAM_BENCH_JOBS": str(Path(data) / "jobs.json"),
            },
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base)
            os.environ["JOBSTREAM_BENCH_JOBS"] = str(Path(data) / "jobs.json")
            http_commands(base, script, 32, 5)  # warm up: every job loaded once
            for clients in (1, 32):
                figures.append(http_commands(base, script, clients, args.seconds))
            api_rss = tree_rss_mb(api.pid)
        finally:
            api.terminate()
            api.wait()
        cold, warm = load_500(env)
    rss = idle_rss(30.0)  # past the document writer's idle time, when it lets its renderer go

    raw = {1: figures[0].rate, 32: figures[1].rate}
    print("| measurement | per second | ratio to raw at same concurrency | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for figure in figures:
        concurrency = 32 if "32" in figure.name else 1
        ratio = figure.rate / raw[concurrency]
        print(f"| {figure.name} | {figure.rate:,.0f} | {ratio:.2f} | {figure.p50:.2f} | {figure.p99:.2f} |")
    print()
    print(f"- loading a job with 500 events: cold {cold:.2f} ms, warm (cached) {warm:.2f} ms (median)")
    print(f"- command API process after the run: {api_rss:.0f} MB RSS")
    print(f"- whole product idle (`jobstream up --demo`, every process of it, 30 s after start): {rss:.0f} MB RSS")


if __name__ == "__main__":
    main()
