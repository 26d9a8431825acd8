"""`jobstream audit` as an accountant runs it, against a real nats-server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from services.application import JobstreamApp
from services.demo import load_demo
from services.natsd import EmbeddedNats
from tests.integration.conftest import Api
from tests.integration.test_invoicer import Office
from tests.integration.test_projections import catch_up, work_a_day

ROOT = Path(__file__).resolve().parents[2]


def audit(env: dict[str, str], *args: str, read_model_url: str = "") -> subprocess.CompletedProcess[str]:
    """`jobstream audit ...`; its checkpoints in the test's data directory (else a new one), never the user's."""
    data = env.get("JOBSTREAM_DATA") or tempfile.mkdtemp(prefix="jobstream-audit-")
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", *args],
        cwd=ROOT,
        env={**os.environ, **env, "JOBSTREAM_DATA": data, "READ_MODEL_URL": read_model_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def altered_copy(original: Path, copy: Path, text: bytes, instead: bytes) -> int:
    """A copy of a stopped server's store with ``text`` replaced in its block files; in how many."""
    shutil.copytree(original, copy)
    altered = 0
    for block in copy.rglob("*.blk"):
        data = block.read_bytes()
        if text in data:
            block.write_bytes(data.replace(text, instead))
            altered += 1
    return altered


def test_replay_selects_by_job_customer_type_time_and_position(api: Api, stream_env: dict[str, str]) -> None:
    load_demo(api.jobstream, lambda line: None)
    positions = work_a_day(api)
    lines = audit(stream_env, "replay", "--after", str(positions[0] - 1), "--json").stdout.splitlines()
    job = msgspec.json.decode(lines[0])
    assert job["type"] == "JobRequested" and job["actor_role"] == "office"
    mine = [
        msgspec.json.decode(line)
        for line in audit(stream_env, "replay", "--job", job["aggregate_id"], "--json").stdout.splitlines()
    ]
    assert [e["version"] for e in mine] == list(range(1, len(mine) + 1)) and len(mine) == 7
    customer = job["event"]["customer_id"]
    theirs = [
        msgspec.json.decode(line)
        for line in audit(stream_env, "replay", "--customer", customer, "--json").stdout.splitlines()
    ]
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
    jsonl = [
        msgspec.json.decode(line)
        for line in audit(stream_env, "export", "--format", "jsonl", "--type", "NoteAdded").stdout.splitlines()
    ]
    assert [entry["event"]["text"] for entry in jsonl[:-1]] == ["Seal worn out"]


async def digest_as_documented(env: dict[str, str], head: int) -> str:
    """The checkpoint's digest as README defines it, from each message got by any NATS client."""
    import hashlib

    import nats

    connection = await nats.connect(env["NATS_URL"])
    try:
        digest = "0" * 64
        for sequence in range(1, head + 1):
            msg = await connection.jetstream().get_msg(env["NATS_STREAM"], sequence)
            text = f"{digest}\n{sequence} {msg.subject} {hashlib.sha256(msg.data or b'').hexdigest()}"
            digest = hashlib.sha256(text.encode()).hexdigest()
        return digest
    finally:
        await connection.close()


def test_every_export_carries_a_checkpoint_that_verify_compares(
    api: Api, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The export's last record is a checkpoint of the whole stream (its head, the digest of
    every message up to it), kept in the data directory too: the accountant files it, and
    verify compares the stream with it later."""
    import csv

    work_a_day(api)
    env = {**stream_env, "JOBSTREAM_DATA": str(tmp_path / "data")}
    out = tmp_path / "events.csv"
    done = audit(env, "export", "--type", "NoteAdded", "--out", str(out))
    assert done.returncode == 0, done.stderr
    *notes, last = list(csv.DictReader(out.read_text().splitlines()))
    assert [n["type"] for n in notes] == ["NoteAdded"] and last["type"] == "Checkpoint"
    checkpoint = msgspec.json.decode(last["event"])
    assert checkpoint["stream"] == stream_env["NATS_STREAM"] and len(checkpoint["digest"]) == 64
    assert int(last["position"]) == checkpoint["head"] == checkpoint["messages"]
    assert f"head {checkpoint['head']}, " in done.stderr and checkpoint["digest"] in done.stderr
    kept = (tmp_path / "data" / "audit-checkpoints.jsonl").read_text().splitlines()
    assert msgspec.json.decode(kept[-1]) == checkpoint
    assert checkpoint["digest"] == asyncio.run(digest_as_documented(stream_env, checkpoint["head"]))
    # taken again, it extends the first and comes to the same digest
    again = audit(env, "export", "--format", "jsonl", "--type", "NoteAdded").stdout.splitlines()
    assert msgspec.json.decode(again[-1])["event"]["digest"] == checkpoint["digest"]

    # a filed export that saw more than the stream holds: verify names what is missing
    forged = {**checkpoint, "head": checkpoint["head"] + 5, "digest": "f" * 64}
    filed = tmp_path / "filed.jsonl"
    filed.write_text(msgspec.json.encode({"type": "Checkpoint", "event": forged}).decode() + "\n")
    matched = audit(env, "verify", "--checkpoints", str(out))
    assert matched.returncode == 0 and "every checkpoint matched" in matched.stdout, matched.stdout
    found = audit(env, "verify", "--checkpoints", str(filed))
    head = checkpoint["head"]
    assert found.returncode == 1 and f"positions {head + 1:,}-{head + 5:,} are missing" in found.stdout


def test_as_of_shows_a_job_as_it_stood(api: Api, stream_env: dict[str, str]) -> None:
    positions = work_a_day(api)
    events = [
        msgspec.json.decode(line)
        for line in audit(stream_env, "replay", "--after", str(positions[0] - 1), "--json").stdout.splitlines()
    ]
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
    env = {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": server.admin_url,
        "NATS_STREAM": "AUDITED",
        "JOBSTREAM_DATA": str(tmp_path / "data"),
    }
    app = JobstreamApp(env)
    try:
        load_demo(app, lambda line: None)
    finally:
        app.close()
    assert audit(env, "checkpoint").returncode == 0
    assert audit(env, "verify").returncode == 0
    notes = [
        msgspec.json.decode(line) for line in audit(env, "replay", "--type", "NoteAdded", "--json").stdout.splitlines()
    ]
    note = next(n for n in notes if n["event"]["text"] == "Burner cleaned, seals replaced.")
    server.stop()

    copy = tmp_path / "copy"
    # a note in the demo, the same length after
    assert altered_copy(original, copy, b"Burner cleaned, seals replaced.", b"Burner cleaned, seals repaired.") == 1
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
    assert any(
        f"v{version + 1} of events.job.{note['aggregate_id']})" in line
        and f"versions {version}..{version} of this aggregate are missing" in line
        for line in lines
    ), found.stdout
    # the checkpoint saw another log up to its head; the gap is the first thing wrong
    assert any(line.startswith("  - positions 1-") and "the digest of the log up to" in line for line in lines)
    assert f"The last intact position is {gone - 1:,}." in found.stdout, found.stdout


def test_as_of_shows_an_invoice_as_it_stood_and_reconcile_checks_billing(api: Api, stream_env: dict[str, str]) -> None:
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
    after = audit(
        stream_env,
        "as-of",
        "--invoice",
        str(invoice.id),
        "--at",
        (payment.meta.occurred_at + timedelta(seconds=1)).isoformat(),
    )  # type: ignore[union-attr]
    assert "status         partially paid" in after.stdout and "paid           100.00" in after.stdout
    assert "Repair work: 3 started_hour × 50.00 = 150.00 (VAT 21 %)" in after.stdout

    reconciled = audit(stream_env, "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "1 completed jobs: 1 invoiced" in reconciled.stdout


def test_the_audit_tools_help_needs_no_running_jobstream(tmp_path: Path) -> None:
    nowhere = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    helped = subprocess.run(
        [sys.executable, "-m", "services.cli", "--data", str(tmp_path), "audit", "-h"],
        cwd=ROOT,
        env=nowhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "{replay,export,verify,reconcile,checkpoint,as-of,rebuild}" in helped.stdout


def test_verify_names_the_tail_cut_from_a_copy_of_the_store(tmp_path: Path) -> None:
    """The hash chains prove only what is still there: cut the end off the last block file of
    a copy of a real store and every chain is still whole. The checkpoints, kept outside the
    stream, saw further: verify (and reconcile) name the missing positions."""
    original, data = tmp_path / "nats", tmp_path / "data"
    server = EmbeddedNats(original).start()
    env = {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": server.admin_url,
        "NATS_STREAM": "CUT",
        "JOBSTREAM_DATA": str(data),
    }
    app = JobstreamApp(env)
    try:
        load_demo(app, lambda line: None)
        early = audit(env, "checkpoint", read_model_url=f"sqlite:///{tmp_path / 'readmodels.sqlite3'}")
        assert early.returncode == 0, early.stdout + early.stderr
        Office(app).completed_job()
        Office(app).completed_job()
    finally:
        app.close()
    taken = audit(env, "checkpoint")  # the data directory's file only
    assert taken.returncode == 0, taken.stdout + taken.stderr
    head = int(taken.stdout.split("head ")[1].split(",")[0])
    assert audit(env, "verify").returncode == 0
    # killed, as by a power cut: no index of the store's state is written, and the server
    # started on the copy rebuilds it from the blocks alone, so a cut leaves no gap
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()

    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    blocks = sorted(
        (copy / "jetstream" / "$G" / "streams" / "CUT" / "msgs").glob("*.blk"), key=lambda block: int(block.stem)
    )
    last = blocks[-1]
    assert last.stat().st_size > 20_000
    with last.open("r+b") as block:
        block.truncate(last.stat().st_size - 20_000)
    cut = EmbeddedNats(copy).start()
    try:
        on_copy = {**env, "NATS_URL": cut.admin_url}
        found = audit(on_copy, "verify", read_model_url=f"sqlite:///{tmp_path / 'readmodels.sqlite3'}")
        reconciled = audit(on_copy, "reconcile")
        refused = audit(on_copy, "checkpoint")
    finally:
        cut.stop()
    assert found.returncode == 1, found.stdout + found.stderr
    ends = int(found.stdout.split("sequences ")[1].split("..")[1].split(")")[0])
    assert ends < head, found.stdout + taken.stdout
    assert "sequences" not in found.stdout.split("problem(s).")[1]  # no gap: the chains alone saw nothing
    assert (
        f"positions {ends + 1:,}-{head:,} are missing: the stream ends at {ends:,}, the checkpoint of " in found.stdout
    ), found.stdout
    assert f"saw {head:,}" in found.stdout
    assert f"The last intact position is {ends:,}" in found.stdout, found.stdout
    assert "Compared with 2 checkpoint(s)" in found.stdout
    assert reconciled.returncode == 1 and f"positions {ends + 1:,}-{head:,} are missing" in reconciled.stdout
    assert refused.returncode == 1 and "No checkpoint taken" in refused.stdout


def test_reconcile_reports_a_number_whose_invoice_is_gone(tmp_path: Path) -> None:
    """An invoice dropped from the stream (its stored bytes altered: nats-server drops a
    message whose checksum fails) while its number's allocation and the job's JobInvoiced
    are still there: the job looks invoiced and the numbers run without a gap, yet the
    invoice is gone. Reconcile names the number and the document."""

    from tests.integration.test_invoicer import invoice_all, price_list

    original = tmp_path / "nats"
    server = EmbeddedNats(original).start()
    env = {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": server.admin_url,
        "NATS_STREAM": "BILLED",
        "JOBSTREAM_DATA": str(tmp_path / "data"),
    }
    app = JobstreamApp(env)
    try:
        price_list(app)
        Office(app).completed_job()
        asyncio.run(invoice_all(env))
    finally:
        app.close()
    whole = audit(env, "reconcile")
    assert whole.returncode == 0 and "1 completed jobs: 1 invoiced" in whole.stdout, whole.stdout
    (issued,) = [
        msgspec.json.decode(line)
        for line in audit(env, "replay", "--type", "InvoiceIssued", "--json").stdout.splitlines()
    ]
    server.stop()

    copy = tmp_path / "copy"
    assert altered_copy(original, copy, b'"type":"InvoiceIssued"', b'"type":"InvoiceIssueD"') == 1
    tampered = EmbeddedNats(copy).start()
    try:
        on_copy = {**env, "NATS_URL": tampered.admin_url}
        assert audit(on_copy, "replay", "--type", "InvoiceIssued", "--json").stdout == ""
        found = audit(on_copy, "reconcile")
    finally:
        tampered.stop()
    assert found.returncode == 1, found.stdout + found.stderr
    number, invoice = issued["event"]["number"], issued["aggregate_id"]
    assert (
        f"number {number} was allocated at position {issued['position'] - 1} to document {invoice}, "
        f"but no invoice, credit note or pro forma {invoice} is in the stream"
    ) in found.stdout, found.stdout


def test_reconcile_fails_while_a_completed_job_is_held_longer_than_allowed(
    jobstream: JobstreamApp, stream_env: dict[str, str]
) -> None:
    """Held for the office (no price list in the customer's currency) is fine for a while;
    past the limit (a day, unless JOBSTREAM_AUDIT_HELD_HOURS or --held-hours says otherwise)
    reconcile fails and names the job. Time is the event's occurred_at against --now."""
    from datetime import timedelta

    from events.contract import InvoicingHeld
    from tests.integration.conftest import stored
    from tests.integration.test_invoicer import invoice_all

    job = Office(jobstream).completed_job()  # no price list at all: the invoicer holds it
    asyncio.run(invoice_all(stream_env))
    (held,) = stored(jobstream, InvoicingHeld)[0]
    assert held.id == job and held.meta is not None
    since = held.meta.occurred_at

    def at(hours: float, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return audit({**stream_env, **env}, "reconcile", "--now", (since + timedelta(hours=hours)).isoformat(), *args)

    within = at(23)
    assert within.returncode == 0, within.stdout + within.stderr
    assert f"held  {job}: {held.reason}" in within.stdout and "allowed 24 h" in within.stdout
    late = at(25)
    assert late.returncode == 1, late.stdout
    assert f"job {job} has been held for the office since " in late.stdout
    assert f"25 h, longer than the 24 h allowed: {held.reason}" in late.stdout
    assert at(25, "--held-hours", "48").returncode == 0
    assert at(3, JOBSTREAM_AUDIT_HELD_HOURS="2").returncode == 1

    # the office asks for another try; the invoicer holds it again: still held since the first time
    from events.contract import ReleaseInvoicing
    from tests.integration.test_invoicer import OFFICE

    jobstream.execute(job, ReleaseInvoicing(note="try again"), OFFICE)
    asyncio.run(invoice_all(stream_env))
    assert len(stored(jobstream, InvoicingHeld)[0]) == 2
    assert at(25).returncode == 1


def test_the_workers_take_checkpoints_as_the_stream_grows(
    jobstream: JobstreamApp, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """`jobstream run workers` (what `up` runs) checkpoints the stream every
    JOBSTREAM_CHECKPOINT_MESSAGES new messages, into the data directory and the read models."""
    import time

    from projections.audit import Checkpoint
    from projections.store import open_view

    data, url = tmp_path / "data", f"sqlite:///{tmp_path / 'readmodels.sqlite3'}"
    env = {
        **os.environ,
        **stream_env,
        "JOBSTREAM_DATA": str(data),
        "READ_MODEL_URL": url,
        "JOBSTREAM_CHECKPOINT_MESSAGES": "1",
        "JOBSTREAM_CHECKPOINT_SECONDS": "3600",
    }
    kept = data / "audit-checkpoints.jsonl"

    def checkpoint_reaching(head: int) -> Checkpoint:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = kept.read_text().splitlines() if kept.exists() else []
            seen = [msgspec.json.decode(line, type=Checkpoint) for line in lines]
            if seen and seen[-1].head >= head:
                return seen[-1]
            assert workers.poll() is None, "the workers ended"
            time.sleep(0.1)  # polling the file the workers write, with a deadline
        raise AssertionError(f"no checkpoint reached position {head}: {kept.read_text() if kept.exists() else ''}")

    office = Office(jobstream)
    workers = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "workers"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = checkpoint_reaching(jobstream.recorder.max_notification_id() or 0)
        office.completed_job()
        later = checkpoint_reaching(first.head + 1)
    finally:
        workers.terminate()
        workers.wait(timeout=60)
    assert later.messages > first.messages and later.digest != first.digest
    view = open_view("checkpoints", url)
    try:
        assert later.digest in {
            msgspec.json.decode(doc, type=Checkpoint).digest for doc in view.checkpoint_docs(stream_env["NATS_STREAM"])
        }
    finally:
        view.datastore.close()
    verified = audit({**stream_env, "JOBSTREAM_DATA": str(data)}, "verify", read_model_url=url)
    assert verified.returncode == 0 and "every checkpoint matched" in verified.stdout, verified.stdout
