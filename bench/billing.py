"""Billing, measured in one run beside the raw JetStream limit on the same machine.

    .venv/bin/python bench/billing.py [--jobs 1000] [--paced 300] [--rate 20]

Starts its own nats-server (the project's nats.conf) on a free port, takes ``--jobs`` jobs
to "in progress" with 2 h 10 min logged, starts the invoicer as its own process
(``python -m invoicer issue`` and ``documents``, two processes as ``jobstream up`` runs them), and then:

- completes ``--paced`` jobs at ``--rate`` per second: latency from JobCompleted to
  InvoiceIssued and to InvoiceDocumentStored (the PDF in the object store), p50/p99, from
  the events' own timestamps;
- completes the rest as one burst: invoices per minute, from the first completion of the
  burst to the last invoice;
- counts invoices per job and checks the numbers run 1..n (duplicates, gaps);
- renders a one-page invoice in-process: ms per PDF, p50/p99;
- imports a camt.053 of ``--lines`` credits, each naming one of the invoices: parsed, stored,
  and every line matched (a PaymentApplied) or queued (StatementLineUnmatched);
- the raw limit: sequential atomic batches of the invoicer's shape (three events with
  expected-last-subject-sequence headers and a tracking message), per second.

Prints a Markdown table for docs/benchmarks.md. The machine's load varies: compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nats.js.api import ConsumerConfig, DeliverPolicy  # noqa: E402

from bench.backbone import percentile  # noqa: E402
from events.contract import (  # noqa: E402
    Address,
    AddTimeEntry,
    CompleteJob,
    CreatePriceList,
    InvoiceDocumentStored,
    InvoiceIssued,
    InvoiceNumberAllocated,
    JobCompleted,
    PriceActivity,
    RegisterCustomer,
    RegisterTechnician,
    RequestJob,
    Role,
    ScheduleJob,
    StartWork,
    Unit,
    decode_event,
)
from events.jetstream import NatsConnection, StreamSettings  # noqa: E402
from invoicer.documents import Branding  # noqa: E402
from invoicer.writer import render_pdf  # noqa: E402
from services.application import JobstreamApp  # noqa: E402
from services.domain.common import Actor  # noqa: E402
from services.natsd import EmbeddedNats  # noqa: E402

OFFICE = Actor(id="bench", role=Role.OFFICE)


def business(app: JobstreamApp) -> uuid.UUID:
    prices = uuid.uuid4()
    app.execute(prices, CreatePriceList(name="Standard", currency="EUR", is_default=True), OFFICE)
    for code, unit, rate in [("repair", Unit.STARTED_HOUR, "50.00"), ("callout", Unit.FLAT, "39.00")]:
        app.execute(
            prices,
            PriceActivity(code=code, name=code.title(), unit=unit, rate=Decimal(rate), vat_rate=Decimal(21)),
            OFFICE,
        )
    customer = uuid.uuid4()
    address = Address(street="Quay Street 1", city="Dublin", postal_code="D02 X285", country="IE")
    app.execute(customer, RegisterCustomer(name="Harbour Café", billing_address=address), OFFICE)
    return customer


def jobs_in_progress(app: JobstreamApp, customer: uuid.UUID, count: int) -> list[uuid.UUID]:
    """Each with a technician of its own: one technician's stopwatch times one job at a time."""

    def one(_: int) -> uuid.UUID:
        job, tech, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
        app.execute(tech, RegisterTechnician(name="Bench Tech"), OFFICE)
        app.execute(job, RequestJob(customer_id=customer, job_type="repair", description="Leak"), OFFICE)
        app.execute(job, ScheduleJob(technician_ids=[tech], start=now), OFFICE)
        app.execute(job, StartWork(), OFFICE)
        app.execute(job, AddTimeEntry(started_at=now - timedelta(hours=3), minutes=130), OFFICE)
        return job

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def complete(app: JobstreamApp, jobs: list[uuid.UUID], rate: float | None) -> None:
    """At ``rate`` per second on a fixed schedule, or (None) as fast as four threads go."""
    if rate is None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda job: app.execute(job, CompleteJob(summary="Fixed"), OFFICE), jobs))
        return
    started = time.perf_counter()
    for n, job in enumerate(jobs):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing the load generator, not waiting for a consumer
        app.execute(job, CompleteJob(summary="Fixed"), OFFICE)


async def documents_stored(settings: StreamSettings, count: int, timeout: float) -> None:
    """Wait on the stream itself until ``count`` invoices have their documents stored."""
    connection = await NatsConnection.open_on_running_loop(settings)
    seen = 0
    done = asyncio.Event()

    async def delivered(msg) -> None:  # type: ignore[no-untyped-def]
        nonlocal seen
        # an invoice's PDF and XML are stored together, the XML last: count those
        if msg.headers and msg.headers.get("Es-Topic") == "InvoiceDocumentStored" and b"application/xml" in msg.data:
            seen += 1
            if seen >= count:
                done.set()

    sub = await connection.js.subscribe(
        f"{settings.prefix}events.invoice.*", cb=delivered, ordered_consumer=True, stream=settings.stream
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
        await connection.aclose()


def statement_of(invoices: list[InvoiceIssued], lines: int) -> bytes:
    """A camt.053 statement of ``lines`` credits, each paying a part of one of the invoices."""
    entries = []
    for n in range(lines):
        invoice = invoices[n % len(invoices)]
        entries.append(
            f'<Ntry><Amt Ccy="{invoice.currency}">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>2026-11-23</Dt></BookgDt><NtryDtls><TxDtls><Refs><AcctSvcrRef>B{n}</AcctSvcrRef></Refs>"
            f"<RltdPties><Dbtr><Nm>Payer {n}</Nm></Dbtr><DbtrAcct><Id><IBAN>IE29AIBK93115212345678</IBAN></Id>"
            f"</DbtrAcct></RltdPties><RmtInf><Ustrd>Invoice {invoice.number}</Ustrd></RmtInf></TxDtls></NtryDtls>"
            f"</Ntry>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        "<BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-23T18:00:00Z</CreDtTm></GrpHdr>"
        f"<Stmt><Id>BENCH-{uuid.uuid4().hex[:8]}</Id><Acct><Id><IBAN>IE29AIBK93115212345678</IBAN></Id></Acct>"
        + "".join(entries)
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


async def lines_settled(settings: StreamSettings, count: int, timeout: float, ready: threading.Event) -> None:
    """Wait on the stream until ``count`` statement lines are matched or queued for review."""
    connection = await NatsConnection.open_on_running_loop(settings)
    seen = 0
    done = asyncio.Event()

    async def delivered(msg) -> None:  # type: ignore[no-untyped-def]
        nonlocal seen
        if msg.headers and msg.headers.get("Es-Topic") in ("PaymentApplied", "StatementLineUnmatched"):
            seen += 1
            if seen >= count:
                done.set()

    sub = await connection.js.subscribe(
        f"{settings.prefix}events.>",
        cb=delivered,
        ordered_consumer=True,
        stream=settings.stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, headers_only=True),
    )
    ready.set()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
        await connection.aclose()


async def raw_big_batches(settings: StreamSettings, batches: int, size: int) -> float:
    """Atomic batches of ``size`` messages like the matcher's, one after another: seconds."""
    connection = await NatsConnection.open_on_running_loop(settings)
    payload = b'{"type":"PaymentApplied","amount":"1.00","currency":"EUR","rule":"invoice number"}' * 4
    started = time.perf_counter()
    for _ in range(batches):
        messages = [
            (
                f"{settings.prefix}tracking.raw-pay-{uuid.uuid4().hex}",
                payload,
                {"Nats-Expected-Last-Subject-Sequence": "0"},
            )
            for _ in range(size)
        ]
        await connection.publish(messages)
    elapsed = time.perf_counter() - started
    await connection.aclose()
    return elapsed


async def raw_batches(settings: StreamSettings, seconds: float) -> float:
    """Atomic batches of the invoicer's shape, one after another: the write limit it works under."""
    connection = await NatsConnection.open_on_running_loop(settings)
    payload = b'{"type":"InvoiceIssued","number":"FV/2026/000001","lines":[]}' * 20
    count, tracking_seq = 0, 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        ids = [uuid.uuid4().hex for _ in range(3)]
        # tracking subjects: in the stream, read by nobody else (no consumer decodes them)
        messages = [
            (f"{settings.prefix}tracking.raw-{kind}-{i}", payload, {"Nats-Expected-Last-Subject-Sequence": "0"})
            for kind, i in zip(("s", "i", "j"), ids, strict=True)
        ]
        messages.append(
            (
                f"{settings.prefix}tracking.raw-tracking",
                b'{"notification_id": 1}',
                {"Nats-Expected-Last-Subject-Sequence": str(tracking_seq)},
            )
        )
        tracking_seq, _ = await connection.publish(messages)
        count += 1
    elapsed = time.perf_counter() - started
    await connection.aclose()
    return count / elapsed


def from_the_stream(app: JobstreamApp) -> dict[str, dict[uuid.UUID, object]]:
    found: dict[str, dict[uuid.UUID, object]] = {"completed": {}, "issued": {}, "stored": {}, "allocated": {}}
    start = 1
    while True:
        page = app.recorder.select_notifications(start, 10_000)
        for n in page:
            event = decode_event(n.state)
            if isinstance(event, JobCompleted):
                found["completed"][event.id] = event
            elif isinstance(event, InvoiceIssued):
                found["issued"].setdefault(event.job_id, []).append(event)  # type: ignore[union-attr]
            elif isinstance(event, InvoiceDocumentStored) and event.media_type == "application/pdf":
                found["stored"][event.id] = event
            elif isinstance(event, InvoiceNumberAllocated):
                found["allocated"][event.invoice_id] = event
        if len(page) < 10_000:
            return found
        start = page[-1].id + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1001, help="the first one warms the invoicer up")
    parser.add_argument("--paced", type=int, default=300, help="jobs completed at --rate; the rest as a burst")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--lines", type=int, default=10_000, help="credits in the imported camt.053 statement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats").start()
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.admin_url, "NATS_STREAM": "JOBSTREAM"}
        settings = StreamSettings.from_env(env)
        app = JobstreamApp(env)
        invoicer = None
        try:
            customer = business(app)
            print(f"taking {args.jobs} jobs to 'in progress' ...", file=sys.stderr, flush=True)
            jobs = jobs_in_progress(app, customer, args.jobs)
            raw = asyncio.run(raw_batches(settings, 5.0))
            invoicer = [
                subprocess.Popen(
                    [sys.executable, "-m", "invoicer", part],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for part in ("issue", "documents")
            ]
            # one job first, awaited, so the figures do not include the processes starting up
            complete(app, jobs[:1], None)
            asyncio.run(documents_stored(settings, 1, 120))
            paced, burst = jobs[1 : args.paced + 1], jobs[args.paced + 1 :]
            print(f"completing {len(paced)} at {args.rate:g}/s ...", file=sys.stderr, flush=True)
            complete(app, paced, args.rate)
            asyncio.run(documents_stored(settings, 1 + len(paced), 120))
            print(f"completing {len(burst)} as a burst ...", file=sys.stderr, flush=True)
            burst_started = datetime.now(UTC)
            complete(app, burst, None)
            asyncio.run(documents_stored(settings, len(jobs), 600))
            found = from_the_stream(app)
            issued_invoices = [v[0] for v in found["issued"].values()]  # type: ignore[index]
            statement = statement_of(issued_invoices, args.lines)
            print(
                f"importing a camt.053 of {args.lines} lines ({len(statement) / 1e6:.1f} MB) ...",
                file=sys.stderr,
                flush=True,
            )
            from services.bank import parse_statement

            started = time.perf_counter()
            parse_statement(statement)
            parse_seconds = time.perf_counter() - started
            subscribed = threading.Event()  # the waiting consumer counts only what is new: start it first
            settled = threading.Thread(target=lambda: asyncio.run(lines_settled(settings, args.lines, 600, subscribed)))
            settled.start()
            subscribed.wait(30)
            started = time.perf_counter()
            app.run(app.import_statement_async(statement, OFFICE))
            stored_seconds = time.perf_counter() - started
            settled.join()
            matched_seconds = time.perf_counter() - started
            raw_import = asyncio.run(raw_big_batches(settings, -(-args.lines // 500), 500))
        finally:
            for process in invoicer or []:
                process.terminate()
                process.wait(10)
            app.close()
            server.stop()

    def at(event: object) -> datetime:
        return event.meta.occurred_at  # type: ignore[attr-defined, no-any-return]

    issued_latency, stored_latency = [], []
    for job in paced:
        completed, (issued,) = found["completed"][job], found["issued"][job]  # type: ignore[misc]
        issued_latency.append((at(issued) - at(completed)).total_seconds())
        stored_latency.append((at(found["stored"][issued.id]) - at(completed)).total_seconds())  # type: ignore[attr-defined]
    burst_issued = [at(found["issued"][job][0]) for job in burst]  # type: ignore[index]
    burst_minutes = (max(burst_issued) - burst_started).total_seconds() / 60
    per_minute = len(burst) / burst_minutes
    duplicates = sum(len(v) - 1 for v in found["issued"].values())  # type: ignore[arg-type]
    missing = len(set(jobs) - set(found["issued"]))
    sequences = sorted(a.sequence for a in found["allocated"].values())  # type: ignore[attr-defined]
    gaps = len(set(range(1, len(jobs) + 1)) - set(sequences))
    sample = found["issued"][paced[0]][0]  # type: ignore[index]
    renders = []
    render_pdf(sample, Branding())  # the first render loads the fonts; the writer pays that once
    for _ in range(40):
        started = time.perf_counter()
        render_pdf(sample, Branding())  # type: ignore[arg-type]
        renders.append(time.perf_counter() - started)

    def ms(values: list[float], p: float) -> str:
        return f"{percentile(values, p) * 1000:,.0f} ms"

    print(
        f"\n{len(paced) + len(burst)} jobs, {len(paced)} completed at {args.rate:g}/s, {len(burst)} as a burst; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print("| figure | value | raw JetStream limit, same run | ratio |")
    print("|---|---|---|---|")
    print(
        f"| JobCompleted → InvoiceIssued at {args.rate:g}/s | p50 {ms(issued_latency, 50)}, "
        f"p99 {ms(issued_latency, 99)} | one atomic batch of that shape: {1000 / raw:.1f} ms | "
        f"p50 {percentile(issued_latency, 50) * raw:.1f}× |"
    )
    print(
        f"| JobCompleted → PDF stored at {args.rate:g}/s | p50 {ms(stored_latency, 50)}, "
        f"p99 {ms(stored_latency, 99)} | | |"
    )
    print(
        f"| invoices per minute, burst of {len(burst)} | {per_minute:,.0f} | {raw * 60:,.0f} batches/min | "
        f"{per_minute / (raw * 60):.2f} |"
    )
    print(
        f"| one-page PDF render (Factur-X: PDF/A-3 with its CII XML) | p50 {ms(renders, 50)}, p99 {ms(renders, 99)} | | |"
    )
    print(f"| duplicates / missing / number gaps | {duplicates} / {missing} / {gaps} | | |")
    print(f"| camt.053 of {args.lines:,} lines: parsed | {parse_seconds:.2f} s | | |")
    print(f"| camt.053 of {args.lines:,} lines: parsed and stored (the HTTP answer) | {stored_seconds:.2f} s | | |")
    print(
        f"| camt.053 of {args.lines:,} lines: every line matched or queued | {matched_seconds:.2f} s | "
        f"the same messages as raw 500-message batches: {raw_import:.2f} s | {matched_seconds / raw_import:.1f}× |"
    )


if __name__ == "__main__":
    main()
