"""KSeF clearance, measured in one run beside the invoicer's own rate and the raw JetStream limit.

    .venv/bin/python bench/ksef.py [--jobs 301]

Starts its own nats-server (the project's nats.conf) on a free port and the KSeF stand-in
(tests/ksef_standin: a real HTTP server on a free 127.0.0.1 port, every request and answer
checked against the Ministry's API description, the FA(3) against its XSD when
../shared holds it), takes ``--jobs`` jobs of a Polish seller to "in progress", starts the
invoicer (``python -m invoicer issue``) and the KSeF submitter (``python -m
invoicer.ksef.submitter``) as their own processes, completes one job and waits until its
UPO is stored (start-up is not measured), then completes the rest as one burst from four
threads and waits, on the stream, until every invoice's UPO is stored. From the events'
own timestamps:

- invoices issued per minute (first completion of the burst to the last InvoiceIssued);
- KSeF-cleared invoices per minute (to the last KsefAccepted: the KSeF number recorded),
  and to the last KsefUpoStored;
- InvoiceIssued -> KsefAccepted per invoice, p50/p99;
- KSeF numbers per invoice, and what the stand-in accepted;
- the raw limit: plain JetStream publishes of one message, each waiting for its ack, one
  after another, on the same server.

Prints a Markdown table for docs/benchmarks.md. The machine's load varies: compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nats.aio.msg import Msg  # noqa: E402

from bench.backbone import percentile  # noqa: E402
from events.contract import (  # noqa: E402
    Address,
    AddTimeEntry,
    CompleteJob,
    CreatePriceList,
    InvoiceIssued,
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
from events.contract.ksef import KsefAccepted, KsefHeld, KsefRefused, KsefUpoStored  # noqa: E402
from events.jetstream import NatsConnection, StreamSettings  # noqa: E402
from services.application import JobstreamApp  # noqa: E402
from services.domain.common import Actor  # noqa: E402
from services.natsd import EmbeddedNats  # noqa: E402

OFFICE = Actor(id="bench", role=Role.OFFICE)
# The seller the stand-in's KSeF token signs in for (tests.ksef_standin.server.TEST_NIP)
SELLER = {
    "JOBSTREAM_COMPANY_NAME": "Instalacje Demo sp. z o.o.",
    "JOBSTREAM_COMPANY_STREET": "ul. Długa 1",
    "JOBSTREAM_COMPANY_CITY": "Kraków",
    "JOBSTREAM_COMPANY_POSTAL_CODE": "31-147",
    "JOBSTREAM_COMPANY_COUNTRY": "PL",
    "JOBSTREAM_COMPANY_VAT_ID": "PL5265877635",
}


def business(app: JobstreamApp) -> uuid.UUID:
    """A PLN price list and a Polish customer with a NIP."""
    prices = uuid.uuid4()
    app.execute(prices, CreatePriceList(name="Cennik", currency="PLN", is_default=True), OFFICE)
    app.execute(
        prices,
        PriceActivity(
            code="repair", name="Naprawa", unit=Unit.STARTED_HOUR, rate=Decimal("180.00"), vat_rate=Decimal(23)
        ),
        OFFICE,
    )
    customer = uuid.uuid4()
    address = Address(street="ul. Floriańska 3", city="Kraków", postal_code="31-019", country="PL")
    app.execute(
        customer,
        RegisterCustomer(
            name="Kowalski Budownictwo sp. j.",
            billing_address=address,
            vat_id="PL7740001454",
            currency="PLN",
            language="pl",
        ),
        OFFICE,
    )
    return customer


def jobs_in_progress(app: JobstreamApp, customer: uuid.UUID, count: int) -> list[uuid.UUID]:
    """Each with a technician of its own: one technician's stopwatch times one job at a time."""

    def one(_: int) -> uuid.UUID:
        job, tech, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
        app.execute(tech, RegisterTechnician(name="Tomasz"), OFFICE)
        app.execute(job, RequestJob(customer_id=customer, job_type="repair", description="Przeciek"), OFFICE)
        app.execute(job, ScheduleJob(technician_ids=[tech], start=now), OFFICE)
        app.execute(job, StartWork(), OFFICE)
        app.execute(job, AddTimeEntry(started_at=now - timedelta(hours=3), minutes=130), OFFICE)
        return job

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def complete(app: JobstreamApp, jobs: list[uuid.UUID]) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda job: app.execute(job, CompleteJob(summary="Uszczelka wymieniona"), OFFICE), jobs))


async def upos_stored(settings: StreamSettings, count: int, timeout: float) -> None:
    """Wait on the stream itself until ``count`` KSeF receipts (UPOs) are stored, or a
    document is held or refused (then the bench stops: it measures clearance)."""
    connection = await NatsConnection.open_on_running_loop(settings)
    seen = 0
    done = asyncio.Event()
    failed: list[str] = []

    async def delivered(msg: Msg) -> None:
        nonlocal seen
        topic = msg.headers.get("Es-Topic") if msg.headers else None
        if topic == "KsefUpoStored":
            seen += 1
        elif topic in ("KsefHeld", "KsefRefused"):
            failed.append(msg.data.decode())
        if seen >= count or failed:
            done.set()

    sub = await connection.js.subscribe(
        f"{settings.prefix}events.ksef.*", cb=delivered, ordered_consumer=True, stream=settings.stream
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
        await connection.aclose()
    if failed:
        raise SystemExit(f"KSeF did not clear a document: {failed[0]}")


async def raw_publishes(settings: StreamSettings, seconds: float) -> float:
    """Plain publishes of one message, each waiting for its ack, one after another: per second."""
    connection = await NatsConnection.open_on_running_loop(settings)
    payload = b'{"type":"KsefAccepted","ksef_number":"5265877635-20261203-0123456789AB-CD"}' * 4
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        # tracking subjects: in the stream, read by nobody else (no consumer decodes them)
        await connection.publish([(f"{settings.prefix}tracking.raw-ksef-{uuid.uuid4().hex}", payload, {})])
        count += 1
    elapsed = time.perf_counter() - started
    await connection.aclose()
    return count / elapsed


def from_the_stream(app: JobstreamApp) -> dict[str, dict[uuid.UUID, list[object]]]:
    found: dict[str, dict[uuid.UUID, list[object]]] = {"completed": {}, "issued": {}, "accepted": {}, "upo": {}}
    start = 1
    while True:
        page = app.recorder.select_notifications(start, 10_000)
        for n in page:
            event = decode_event(n.state)
            if isinstance(event, JobCompleted):
                found["completed"].setdefault(event.id, []).append(event)
            elif isinstance(event, InvoiceIssued):
                found["issued"].setdefault(event.job_id, []).append(event)
            elif isinstance(event, KsefAccepted):
                found["accepted"].setdefault(event.id, []).append(event)  # the KSeF events name the document
            elif isinstance(event, KsefUpoStored):
                found["upo"].setdefault(event.id, []).append(event)
            elif isinstance(event, KsefHeld | KsefRefused):
                raise SystemExit(f"KSeF did not clear {event.id}: {event}")
        if len(page) < 10_000:
            return found
        start = page[-1].id + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=301, help="the first one warms the invoicer and the submitter up")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every UPO")
    args = parser.parse_args()

    from tests.ksef_standin.server import StandIn

    with tempfile.TemporaryDirectory() as tmp:
        standin = StandIn()
        standin.key_file = Path(tmp) / "ksef-public-keys.pem"
        standin.key_file.write_bytes(standin.public_keys_pem())
        standin.start()
        server = EmbeddedNats(Path(tmp) / "nats").start()
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": server.admin_url, "NATS_STREAM": "JOBSTREAM"}
        settings = StreamSettings.from_env(env)
        app = JobstreamApp(env)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            customer = business(app)
            print(f"taking {args.jobs} jobs to 'in progress' ...", file=sys.stderr, flush=True)
            jobs = jobs_in_progress(app, customer, args.jobs)
            raw = asyncio.run(raw_publishes(settings, 5.0))
            worker_env = {**os.environ, **env, **SELLER, **standin.env(), "JOBSTREAM_DATA": tmp}
            for module in (["invoicer", "issue"], ["invoicer.ksef.submitter"]):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", *module],
                        cwd=ROOT,
                        env=worker_env,
                        stdout=subprocess.DEVNULL,
                        stderr=(Path(tmp) / f"{module[-1]}.log").open("wb"),
                    )
                )
            # one job first, awaited, so the figures do not include the processes starting up
            complete(app, jobs[:1])
            asyncio.run(upos_stored(settings, 1, 120))
            burst = jobs[1:]
            print(f"completing {len(burst)} as a burst ...", file=sys.stderr, flush=True)
            burst_started = datetime.now(UTC)
            complete(app, burst)
            asyncio.run(upos_stored(settings, len(jobs), args.timeout))
            found = from_the_stream(app)
            accepted_by_standin = len(standin.accepted())
            answers_outside = list(standin.response_errors)
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):  # what the workers said, before they go
                print(f"--- {log.name} (last lines)", file=sys.stderr)
                print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
            raise
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
            app.close()
            server.stop()
            standin.stop()

    def at(event: object) -> datetime:
        return event.meta.occurred_at  # type: ignore[attr-defined]  # every stored event has its meta

    issued = {job: found["issued"][job][0] for job in burst}
    accepted = {job: found["accepted"][invoice.id][0] for job, invoice in issued.items()}  # type: ignore[attr-defined]
    upo = {job: found["upo"][invoice.id][0] for job, invoice in issued.items()}  # type: ignore[attr-defined]
    minutes = {
        what: (max(at(e) for e in events.values()) - burst_started).total_seconds() / 60
        for what, events in (("issued", issued), ("accepted", accepted), ("upo", upo))
    }
    issued_rate, cleared_rate, upo_rate = (len(burst) / minutes[w] for w in ("issued", "accepted", "upo"))
    latency = [(at(accepted[job]) - at(issued[job])).total_seconds() for job in burst]
    numbers = Counter(len(v) for v in found["accepted"].values())
    duplicates = sum(len(v) - 1 for v in found["accepted"].values())
    missing = len(jobs) - len(found["accepted"])
    raw_per_minute = raw * 60

    def ms(p: float) -> str:
        return f"{percentile(latency, p) * 1000:,.0f} ms"

    print(f"\n{len(burst)} jobs of a Polish seller completed as a burst; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print("| figure | per minute | ratio to raw publish | ratio to invoices issued |")
    print("|---|---:|---:|---:|")
    print(f"| raw JetStream publish, one message acked at a time (the limit) | {raw_per_minute:,.0f} | 1.00 | |")
    print(f"| invoices issued (InvoiceIssued) | {issued_rate:,.0f} | {issued_rate / raw_per_minute:.3f} | 1.00 |")
    print(
        f"| invoices cleared by KSeF (KsefAccepted: number recorded) | {cleared_rate:,.0f} | "
        f"{cleared_rate / raw_per_minute:.3f} | {cleared_rate / issued_rate:.2f} |"
    )
    print(
        f"| invoices with their UPO stored (KsefUpoStored) | {upo_rate:,.0f} | "
        f"{upo_rate / raw_per_minute:.3f} | {upo_rate / issued_rate:.2f} |"
    )
    print()
    print(f"- InvoiceIssued → KsefAccepted: p50 {ms(50)}, p99 {ms(99)}")
    print(
        f"- KSeF numbers per invoice: {dict(sorted(numbers.items()))}; duplicates {duplicates}, missing {missing}; "
        f"the stand-in accepted {accepted_by_standin}"
    )
    print(f"- stand-in answers outside the API description: {len(answers_outside)}")
    for line in answers_outside[:5]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
