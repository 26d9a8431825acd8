"""The notifier, measured in one run beside the raw JetStream round trip on the same machine.

    .venv/bin/python bench/notifier.py [--seconds 30] [--rate 20]

Starts its own nats-server on a free port, a real SMTP server (aiosmtpd) and a local Web
Push receiver that checks the VAPID signature and decrypts every payload (RFC 8291), and the
notifier as its own process (``python -m notifier``). Then, for ``--seconds`` at ``--rate``
per second, alternately:

- schedules a job for a technician who has a push subscription: latency from the
  JobScheduled event to the decrypted push at the receiver;
- stores an invoice's documents (InvoiceIssued + InvoiceDocumentStored, a small PDF in the
  object store): latency from InvoiceDocumentStored to the email accepted by the SMTP server.

Halfway through, the notifier is killed (SIGKILL) and started again. At the end every
message is counted: duplicates at the receivers (must be 0), missing ones, and the ones left
"uncertain" (the kill fell between an attempt and its outcome: not sent again, by design).

The raw limit beside it: a message published to JetStream and received by a core
subscriber, p50/p99, at the same rate. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from py_vapid import Vapid02  # noqa: E402

from bench.backbone import percentile  # noqa: E402
from events.contract import (  # noqa: E402
    Address,
    DeliveryUncertain,
    InvoiceDocumentStored,
    InvoiceIssued,
    InvoiceLine,
    MessageQueued,
    Party,
    RegisterCustomer,
    RegisterPushSubscription,
    RegisterTechnician,
    RequestJob,
    Role,
    ScheduleJob,
    VatSubtotal,
    decode_event,
    recipient_id,
    seal,
)
from events.jetstream import NatsConnection, StreamSettings  # noqa: E402
from services.application import JobstreamApp  # noqa: E402
from services.domain.common import Actor  # noqa: E402
from services.natsd import EmbeddedNats, free_port  # noqa: E402
from tests.receivers import Mailbox, PushReceiver  # noqa: E402

OFFICE = Actor(id="bench", role=Role.OFFICE)
ADDRESS = Address(street="Quay Street 1", city="Dublin", postal_code="D02 X285", country="IE")


def subscription(receiver: PushReceiver) -> RegisterPushSubscription:
    return msgspec.convert(receiver.subscription("/push"), RegisterPushSubscription)


def invoice(id: uuid.UUID, customer: uuid.UUID, n: int) -> InvoiceIssued:
    line = InvoiceLine(
        kind="time",
        code="repair",
        description="Repair",
        quantity=Decimal(1),
        unit="hour",
        unit_price=Decimal(50),
        net=Decimal(50),
        vat_rate=Decimal(23),
    )
    return InvoiceIssued(
        id=id,
        number=f"BENCH/{n:06d}",
        series="BENCH",
        sequence=n,
        job_id=uuid.uuid4(),
        customer_id=customer,
        issue_date=date(2026, 11, 23),
        supply_date=date(2026, 11, 23),
        due_date=date(2026, 12, 7),
        currency="EUR",
        language="en",
        seller=Party(name="Bench Services"),
        buyer=Party(name="Harbour Café", email="hello@harbour.example"),
        lines=[line],
        vat=[VatSubtotal(category="S", rate=Decimal(23), taxable=Decimal(50), vat=Decimal("11.50"))],
        net_total=Decimal(50),
        vat_total=Decimal("11.50"),
        gross_total=Decimal("61.50"),
        payment_reference=f"B{n}",
    )


async def raw_round_trips(url: str, rate: float, count: int) -> list[float]:
    """Publish to JetStream, received by a core subscriber: the floor under any consumer."""
    import nats

    connection = await nats.connect(url)
    js = connection.jetstream()
    await js.add_stream(name="RAWBENCH", subjects=["rawbench.>"])
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def received(msg: Any) -> None:
        latencies.append(time.perf_counter() - sent[msg.data.decode()])
        if len(latencies) >= count:
            done.set()

    await connection.subscribe("rawbench.>", cb=received)
    for i in range(count):
        sent[str(i)] = time.perf_counter()
        await js.publish("rawbench.x", str(i).encode())
        await asyncio.sleep(1 / rate)
    await asyncio.wait_for(done.wait(), 30)
    await connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    mailbox, pushes = Mailbox(), PushReceiver()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    with pushes.serving():
        measure(args, mailbox, pushes, smtp.port)
    smtp.stop()


def measure(args: argparse.Namespace, mailbox: Mailbox, pushes: PushReceiver, smtp_port: int) -> None:
    vapid = Vapid02()
    vapid.generate_keys()
    with tempfile.TemporaryDirectory() as tmp:
        nats_server = EmbeddedNats(Path(tmp) / "nats").start()
        env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": nats_server.admin_url, "NATS_STREAM": "JOBSTREAM"}
        app = JobstreamApp(env)
        technicians = []
        for i in range(20):
            tech = uuid.uuid4()
            app.execute(tech, RegisterTechnician(name=f"Tech {i}"), OFFICE)
            app.issue_token(f"tech{i}", Role.TECHNICIAN, tech)
            user = Actor(id=f"tech{i}", role=Role.TECHNICIAN, technician_id=tech)
            app.execute(recipient_id(user.id), subscription(pushes), user)
            technicians.append(tech)
        customer = uuid.uuid4()
        app.execute(customer, RegisterCustomer(name="Harbour Café", billing_address=ADDRESS), OFFICE)
        child_env = {
            **os.environ,
            **env,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "VAPID_PRIVATE_KEY": vapid.private_pem().decode(),
            "NOTIFIER_RETRIES": "1,2,4",
            "NOTIFIER_LEASE_SECONDS": "5",
        }

        def start_notifier() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "notifier"],
                cwd=ROOT,
                env=child_env,
                stdout=subprocess.DEVNULL,
                stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
            )

        notifier = start_notifier()
        total = int(args.seconds * args.rate)
        pushed_at: dict[str, float] = {}  # job id -> when JobScheduled was stored
        stored_at: dict[str, float] = {}  # invoice id -> when InvoiceDocumentStored was stored
        connection_holder: dict[str, Any] = {}

        async def store_invoice(n: int) -> None:
            connection = connection_holder.get("c")
            if connection is None:
                connection = connection_holder["c"] = await NatsConnection.open_on_running_loop(
                    StreamSettings.from_env(env)
                )
            from events.jetstream import NatsApplicationRecorder

            recorder = NatsApplicationRecorder(connection)
            id = uuid.uuid4()
            name = f"invoices/{id}.pdf"
            await (await connection.documents()).put(name, b"%PDF-1.4 bench\n")
            events = [
                invoice(id, customer, n),
                InvoiceDocumentStored(id=id, name=name, media_type="application/pdf", sha256="0" * 64, size=15),
            ]
            await recorder.insert_events_async(
                seal(
                    id,
                    0,
                    "",
                    events,
                    now=datetime.now(UTC),
                    actor_id="bench",
                    actor_role="system",
                    command_id=str(id),
                    correlation_id=str(id),
                )
            )
            stored_at[str(id)] = time.time()

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        killed_at = None
        started = time.perf_counter()
        for n in range(total):
            if n % 2 == 0:
                job = uuid.uuid4()
                app.execute(
                    job,
                    RequestJob(customer_id=customer, job_type="repair", description=f"Job {n}", site_address=ADDRESS),
                    OFFICE,
                )
                app.execute(job, ScheduleJob(technician_ids=[technicians[n % 20]], start=datetime.now(UTC)), OFFICE)
                pushed_at[str(job)] = time.time()
            else:
                asyncio.run_coroutine_threadsafe(store_invoice(n), loop).result()
            if n == total // 2:
                notifier.send_signal(signal.SIGKILL)
                notifier.wait()
                killed_at = n
                notifier = start_notifier()
            time.sleep(max(0.0, started + (n + 1) / args.rate - time.perf_counter()))
        # every message settled: delivered, given up or uncertain
        deadline = time.time() + 60
        while time.time() < deadline:
            settled = sum(
                1
                for n in app.recorder.select_notifications(1, 10_000_000)
                if n.topic in ("MessageDelivered", "DeliveryUncertain")
                or (n.topic == "DeliveryFailed" and b'"retry_at":null' in n.state)
            )
            queued = sum(1 for n in app.recorder.select_notifications(1, 10_000_000) if n.topic == "MessageQueued")
            if queued and settled >= queued and queued >= total:
                break
            time.sleep(0.5)
        notifier.send_signal(signal.SIGTERM)
        notifier.wait(timeout=30)
        messages = [
            decode_event(n.state)
            for n in app.recorder.select_notifications(1, 10_000_000)
            if n.topic in ("MessageQueued", "DeliveryUncertain")
        ]
        queued_by_id = {m.id: m for m in messages if isinstance(m, MessageQueued)}
        uncertain = [m for m in messages if isinstance(m, DeliveryUncertain)]
        push = [
            (alert["id"], alert["url"].rsplit("/", 1)[1], at)
            for alert, at in zip(pushes.received, pushes.arrived_at, strict=True)
        ]
        mail = [
            (str(m["Message-ID"]).strip("<>").split("@")[0], at)
            for m, at in zip(mailbox.messages, mailbox.arrived_at, strict=True)
        ]
        push_latency = [at - pushed_at[job] for _, job, at in push if job in pushed_at]
        mail_latency = []
        for message_id, at in mail:
            queued = queued_by_id.get(uuid.UUID(message_id))
            if queued is not None and str(queued.about_id) in stored_at:
                mail_latency.append(at - stored_at[str(queued.about_id)])
        duplicate_push = sum(c - 1 for c in collections.Counter(m for m, _, _ in push).values())
        duplicate_mail = sum(c - 1 for c in collections.Counter(m for m, _ in mail).values())
        missing = len(queued_by_id) - len({m for m, _, _ in push} | {m for m, _ in mail}) - len(uncertain)
        raw = asyncio.run_coroutine_threadsafe(raw_round_trips(nats_server.admin_url, args.rate, total), loop).result()
        if "c" in connection_holder:  # the invoices' connection, closed on its own loop before that stops
            asyncio.run_coroutine_threadsafe(connection_holder["c"].aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        app.close()
        nats_server.stop()
    ms = 1000
    print(
        f"arrived: {len(push)} pushes, {len(mail)} emails; measured {len(push_latency)} / {len(mail_latency)}",
        file=sys.stderr,
    )
    raw50, raw99 = percentile(raw, 50) * ms, percentile(raw, 99) * ms
    print(
        f"\n{total} events at {args.rate:g}/s over {args.seconds:g} s; the notifier SIGKILLed and restarted "
        f"after event {killed_at}\n"
    )
    print("| figure | p50 | p99 | raw JetStream p50 / p99 | ratio p99 | goal |")
    print("|---|---|---|---|---|---|")
    for name, values, goal in [
        ("JobScheduled → push decrypted at the receiver", push_latency, "p99 < 1 s"),
        ("InvoiceDocumentStored → email accepted by SMTP", mail_latency, "p99 < 2 s"),
    ]:
        p50, p99 = percentile(values, 50) * ms, percentile(values, 99) * ms
        print(
            f"| {name} ({len(values)}) | {p50:.0f} ms | {p99:.0f} ms | {raw50:.1f} / {raw99:.1f} ms "
            f"| {p99 / raw99:.0f}× | {goal} |"
        )
    print(
        f"\nmessages queued {len(queued_by_id)}; duplicates: push {duplicate_push}, email {duplicate_mail}; "
        f"uncertain (kill between attempt and outcome, not resent) {len(uncertain)}; missing {missing}"
    )


if __name__ == "__main__":
    main()
