"""`jobstream audit` as an accountant runs it, against a real nats-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from services.app import JobstreamApp
from services.demo import load_demo
from services.natsd import EmbeddedNats

from tests.integration.conftest import Api
from tests.integration.test_projections import catch_up, work_a_day

ROOT = Path(__file__).resolve().parents[2]


def audit(env: dict[str, str], *args: str, read_model_url: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", "audit", *args], cwd=ROOT,
                          env={**os.environ, **env, "READ_MODEL_URL": read_model_url},
                          capture_output=True, text=True, timeout=120)


def test_replay_selects_by_job_customer_type_time_and_position(api: Api, stream_env: dict[str, str]) -> None:
    load_demo(api.jobstream, lambda line: None)
    positions = work_a_day(api)
    lines = audit(stream_env, "replay", "--after", str(positions[0] - 1), "--json").stdout.splitlines()
    job = msgspec.json.decode(lines[0])
    assert job["type"] == "JobRequested" and job["actor_role"] == "office"
    mine = [msgspec.json.decode(line) for line in
            audit(stream_env, "replay", "--job", job["aggregate_id"], "--json").stdout.splitlines()]
    assert [e["version"] for e in mine] == list(range(1, len(mine) + 1)) and len(mine) == 7
    customer = job["event"]["customer_id"]
    theirs = [msgspec.json.decode(line) for line in
              audit(stream_env, "replay", "--customer", customer, "--json").stdout.splitlines()]
    assert {e["aggregate_id"] for e in theirs} == {customer, job["aggregate_id"]}
    completed = audit(stream_env, "replay", "--type", "JobCompleted", "--json").stdout.splitlines()
    assert len(completed) == 3  # two in the demo, one today
    table = audit(stream_env, "replay", "--until", str(positions[0]), "--from", "2000-01-01")
    assert table.returncode == 0 and "JobRequested" in table.stdout.splitlines()[-1]
    assert audit(stream_env, "replay", "--to", "2000-01-01").stdout == ""
    refused = audit(stream_env, "replay", "--job", "not-an-id")
    assert refused.returncode != 0 and "--job 'not-an-id' is not an id" in refused.stderr


def test_export_writes_csv_and_json_lines(api: Api, stream_env: dict[str, str], tmp_path: Path) -> None:
    work_a_day(api)
    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "events.csv"
    done = audit(stream_env, "export", "--from", today, "--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = out.read_text().splitlines()
    assert rows[0].startswith("position,occurred_at,aggregate") and len(rows) > 7
    jsonl = audit(stream_env, "export", "--format", "jsonl", "--type", "NoteAdded").stdout.splitlines()
    assert [msgspec.json.decode(line)["event"]["text"] for line in jsonl] == ["Seal worn out"]


def test_as_of_shows_a_job_as_it_stood(api: Api, stream_env: dict[str, str]) -> None:
    positions = work_a_day(api)
    events = [msgspec.json.decode(line) for line in
              audit(stream_env, "replay", "--after", str(positions[0] - 1), "--json").stdout.splitlines()]
    job = events[0]["aggregate_id"]
    started = next(e for e in events if e["type"] == "WorkStarted")["occurred_at"]
    then = msgspec.json.decode(audit(stream_env, "as-of", "--job", job, "--at", started, "--json").stdout)
    assert then["job"]["status"] == "in_progress" and [e["type"] for e in then["events"]][-1] == "WorkStarted"
    now = audit(stream_env, "as-of", "--job", job, "--at", datetime.now(UTC).isoformat())
    assert "status             completed" in now.stdout
    before = audit(stream_env, "as-of", "--job", job, "--at", "2000-01-01T00:00:00Z")
    assert before.returncode == 1 and "did not exist" in before.stdout


def test_rebuild_compares_with_the_live_read_model(api: Api, stream_env: dict[str, str], tmp_path: Path) -> None:
    load_demo(api.jobstream, lambda line: None)
    work_a_day(api)
    live = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    catch_up(stream_env, live)
    done = audit(stream_env, "rebuild", "--into", f"sqlite:///{tmp_path / 'new.sqlite3'}", read_model_url=live)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "board (up to position" in done.stdout and "DIFFERS" not in done.stdout
    assert "jobs             live       10 rows, rebuilt       10, differing 0" in done.stdout


def test_verify_catches_a_tampered_copy_of_the_data_and_names_the_event(tmp_path: Path) -> None:
    original = tmp_path / "nats"
    server = EmbeddedNats(original).start()
    env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.admin_url, "NATS_STREAM": "AUDITED"}
    app = JobstreamApp(env)
    try:
        load_demo(app, lambda line: None)
    finally:
        app.close()
    assert audit(env, "verify").returncode == 0
    notes = [msgspec.json.decode(line) for line in audit(env, "replay", "--type", "NoteAdded", "--json").stdout.splitlines()]
    note = next(n for n in notes if n["event"]["text"] == "Burner cleaned, seals replaced.")
    server.stop()

    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    altered = 0
    for block in copy.rglob("*.blk"):
        data = block.read_bytes()
        if b"Burner cleaned, seals replaced." in data:  # a note in the demo, same length after
            block.write_bytes(data.replace(b"Burner cleaned, seals replaced.", b"Burner cleaned, seals repaired."))
            altered += 1
    assert altered == 1
    tampered = EmbeddedNats(copy).start()
    try:
        found = audit({**env, "NATS_URL": tampered.admin_url}, "verify")
    finally:
        tampered.stop()
    assert found.returncode == 1, found.stdout
    # nats-server checks each stored message's checksum and drops the altered one; the
    # audit names the gap and the event of the job whose chain it breaks.
    assert "The log is NOT whole" in found.stdout
    lines = found.stdout.splitlines()
    gone, version = note["position"], note["version"]
    assert any(f"sequences {gone}..{gone} are missing from the stream" in line for line in lines), found.stdout
    assert any(f"v{version + 1} of events.job.{note['aggregate_id']})" in line
               and f"versions {version}..{version} of this aggregate are missing" in line
               for line in lines), found.stdout


def test_as_of_shows_an_invoice_as_it_stood_and_reconcile_checks_billing(
        api: Api, stream_env: dict[str, str]) -> None:
    import asyncio
    from datetime import timedelta

    from events.contract import InvoiceIssued, PaymentApplied
    from tests.integration.conftest import stored
    from tests.integration.test_invoicer import Office, invoice_all, price_list

    price_list(api.jobstream)
    Office(api.jobstream).completed_job()
    asyncio.run(invoice_all(stream_env))
    (invoice,) = stored(api.jobstream, InvoiceIssued)[0]
    api.ok(f"/invoices/{invoice.id}/payments", {"amount": "100.00", "received_on": "2026-11-24"})
    (payment,) = stored(api.jobstream, PaymentApplied)[0]
    between = invoice.meta.occurred_at + (payment.meta.occurred_at - invoice.meta.occurred_at) / 2  # type: ignore[union-attr]

    before = audit(stream_env, "as-of", "--invoice", str(invoice.id), "--at", between.isoformat())
    assert before.returncode == 0, before.stderr
    assert "status         issued" in before.stdout and "\n  paid " not in before.stdout
    after = audit(stream_env, "as-of", "--invoice", str(invoice.id),
                  "--at", (payment.meta.occurred_at + timedelta(seconds=1)).isoformat())  # type: ignore[union-attr]
    assert "status         partially paid" in after.stdout and "paid           100.00" in after.stdout
    assert "Repair work: 3 started_hour × 50.00 = 150.00 (VAT 21 %)" in after.stdout

    reconciled = audit(stream_env, "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "1 completed jobs: 1 invoiced" in reconciled.stdout


def test_the_audit_tools_help_needs_no_running_jobstream(tmp_path: Path) -> None:
    nowhere = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    helped = subprocess.run([sys.executable, "-m", "services.cli", "--data", str(tmp_path), "audit", "-h"],
                            cwd=ROOT, env=nowhere, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "{replay,export,verify,reconcile,as-of,rebuild}" in helped.stdout
