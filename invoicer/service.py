"""The invoicer's process: issuing (the invoicer, the payment matcher, retainers and
dunning) and the document writer, each part alone or both on one loop.

    python -m invoicer [all|issue|documents]      (``jobstream run invoicer``)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from events.bridge import stop_on_signals
from events.consumer import Consumer
from events.jetstream import NatsConnection, StreamSettings, run_plainly
from invoicer.documents import Branding
from invoicer.dunning import DEFAULT_SCHEDULE, Dunning, every, schedule_of
from invoicer.invoicing import Invoicer
from invoicer.payments import PaymentMatcher
from invoicer.retainers import RetainerBilling
from invoicer.settings import Settings
from invoicer.writer import DocumentWriter

log = logging.getLogger("invoicer")


async def serve(env: dict[str, str], part: str = "all", stop: asyncio.Event | None = None) -> None:
    """Run the invoicer, the document writer, or both, until ``stop`` (else SIGINT or SIGTERM)."""
    settings = Settings.from_env(env)
    for missing in settings.missing():
        log.warning("%s", missing)
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    await connection.ensure_stream_async()
    stop = stop or stop_on_signals()
    consumers: list[Consumer] = []
    if part in ("all", "issue"):
        invoicer = Invoicer(connection, settings)
        await invoicer.answer_previews()
        consumers.extend([invoicer, PaymentMatcher(connection)])
    if part in ("all", "documents"):
        consumers.append(
            DocumentWriter(
                connection,
                Branding.from_env(env),
                workers=int(env.get("DOCUMENT_WORKERS") or max(1, (os.cpu_count() or 2) - 1)),
            )
        )
    for consumer in consumers:
        log.info(
            "%s starting after position %s",
            consumer.name,
            await consumer.recorder.max_tracking_id_async(consumer.name) or 0,
        )
    runs = [consumer.run(stop) for consumer in consumers]
    if part in ("all", "issue"):
        try:
            schedule = schedule_of(env.get("DUNNING_SCHEDULE") or DEFAULT_SCHEDULE)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        dunning = Dunning(connection, schedule, env.get("JOBSTREAM_TIMEZONE") or "UTC")
        retainers = RetainerBilling(connection, settings)
        runs.append(every(float(env.get("DUNNING_EVERY_SECONDS") or 3600), stop, retainers.run_once, dunning.run_once))
    try:
        await asyncio.gather(*runs)
    finally:
        for consumer in consumers:
            if isinstance(consumer, DocumentWriter):
                consumer.close()
        await connection.aclose()


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """Issuing and documents until ``stop``, beside the other services (`jobstream run workers`)."""
    await serve(env, "all", stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jobstream run invoicer",
        description="Issue the invoice of each completed job as it happens, and render its PDF.",
    )
    parser.add_argument(
        "part",
        nargs="?",
        choices=("all", "issue", "documents"),
        default="all",
        help="issue invoices and match bank payments to them, render their documents, "
        "or both (the default, and what `jobstream up` runs: the PDFs are "
        "rendered in worker processes, so rendering never delays issuing)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_plainly("jobstream run invoicer", serve(dict(os.environ), args.part))
    return 0


if __name__ == "__main__":
    sys.exit(main())
