"""The README's path as a user walks it: `jobstream up --demo`, a job from request to
completion over HTTP as office and technician (after its workers died and were restarted),
its events listed with the CLI, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.jetstream import TOPIC_HEADER, id_token
from tests.e2e.conftest import JOBSTREAM, Running


async def next_event_of(nats_url: str, job: str, topic: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait on the stream itself for the job's event of this type (no polling, no sleeping)."""
    import nats

    connection = await nats.connect(nats_url)
    try:
        found: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def delivered(msg: Any) -> None:
            if msg.headers and msg.headers.get(TOPIC_HEADER) == topic and not found.done():
                found.set_result(json.loads(msg.data))

        sub = await connection.jetstream().subscribe(f"events.job.{id_token(job)}", cb=delivered, ordered_consumer=True)
        try:
            return await asyncio.wait_for(found, timeout)
        finally:
            await sub.unsubscribe()
    finally:
        await connection.close()


def children_of(pid: int) -> list[int]:
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_up_demo_walk_a_job_list_its_events_and_stop(
    jobstream_up: tuple[Running, int], clean_env: dict[str, str]
) -> None:
    running, port = jobstream_up
    printed = running.wait_for(r"Started nats-server with JetStream at (nats://\S+)").group(1)
    nats_url = running.as_admin(printed)
    office = running.wait_for(r"office \(Olga\)\s+(js_\S+)").group(1)
    tech_line = running.wait_for(r"technician \(jana, id (\S+)\)\s+(js_\S+)")
    jana, jana_token = tech_line.group(1), tech_line.group(2)
    base = running.wait_for(r"command API\s+(http://\S+)").group(1)
    running.wait_for("Press Ctrl-C to stop")
    assert base == f"http://127.0.0.1:{port}"

    # `up` runs two processes: the HTTP doors, and the workers behind them. The workers die;
    # `up` starts them again, and the invoice below is issued by the new ones.
    workers = [pid for pid in children_of(running.process.pid) if b"run\0workers" in cmdline(pid)]
    assert len(workers) == 1, [cmdline(pid) for pid in children_of(running.process.pid)]
    os.kill(workers[0], signal.SIGKILL)
    running.wait_for(r"workers exited with -9; restarting it")

    as_office = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {office}"}, timeout=10)
    as_jana = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {jana_token}"}, timeout=10)
    customer = as_office.post(
        "/customers",
        json={
            "name": "Harbour Café",
            "billing_address": {
                "street": "1 Quay Street",
                "city": "Dublin",
                "postal_code": "D02 X285",
                "country": "IE",
            },
        },
    )
    assert customer.status_code == 201, customer.text
    job = as_office.post(
        "/jobs",
        json={"customer_id": customer.json()["id"], "job_type": "repair", "description": "Coffee machine leaks"},
    ).json()["id"]
    assert (
        as_office.post(
            f"/jobs/{job}/schedule", json={"technician_ids": [jana], "start": "2026-11-24T09:00:00Z"}
        ).status_code
        == 200
    )
    assert as_jana.post(f"/jobs/{job}/start", json={}).status_code == 200
    assert as_jana.post(f"/jobs/{job}/notes", json={"text": "Gasket replaced"}).status_code == 200
    done = as_jana.post(f"/jobs/{job}/complete", json={"summary": "Fixed"})
    assert done.status_code == 200 and done.json()["events"] == ["WorkStopped", "JobCompleted"]

    # The invoicer issues the invoice on its own (the demo's default list has a call-out fee).
    invoiced = asyncio.run(next_event_of(nats_url, job, "JobInvoiced"))
    assert invoiced["number"].startswith("FV/")

    listed = subprocess.run(
        [*JOBSTREAM, "events", "--job", job], env=clean_env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    types = [line.split()[4] for line in listed.stdout.splitlines()]
    assert types == [
        "JobRequested",
        "JobScheduled",
        "WorkStarted",
        "NoteAdded",
        "WorkStopped",
        "JobCompleted",
        "JobInvoiced",
    ]
    assert "olga (office)" in listed.stdout and "jana (technician)" in listed.stdout
    assert "invoicer (system)" in listed.stdout

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=30) == 0
    running.wait_for("Stopped.")
    host, nats_port = printed.removeprefix("nats://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(nats_port)), timeout=1).close()
    with pytest.raises(httpx.ConnectError):
        as_office.get("/health")
