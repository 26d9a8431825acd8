"""The uploader as it ships: `jobstream run invoicer efactura` SIGKILLed once its claim of the
upload is on the stream and ANAF is answering slowly, then started again; and `jobstream run
workers` with EFACTURA_URL and EFACTURA_TOKEN set, invoicing a completed job and uploading it,
in the one process. The stand-in is waited for on its own processing, the stream on its
positions, never on a timer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from events.consumer import Consumer
from events.contract import InvoiceIssued
from events.contract.efactura import (
    EfacturaAnswerStored,
    EfacturaEvent,
    EfacturaUploaded,
    EfacturaUploadStarted,
    efactura_id,
)
from events.jetstream import NatsConnection
from services.application import JobstreamApp
from tests.integration.conftest import stored
from tests.integration.test_efactura_upload import CIF, Office, issue, kinds, run

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn

ROOT = Path(__file__).resolve().parents[2]
SELLER = {
    "JOBSTREAM_COMPANY_NAME": "Instalații Popescu SRL",
    "JOBSTREAM_COMPANY_STREET": "Strada Lipscani 10",
    "JOBSTREAM_COMPANY_CITY": "București",
    "JOBSTREAM_COMPANY_POSTAL_CODE": "030031",
    "JOBSTREAM_COMPANY_COUNTRY": "RO",
    "JOBSTREAM_COMPANY_VAT_ID": f"RO{CIF}",
}


async def until_stored(
    connection: NatsConnection, document: UUID, last: type, timeout: float = 60
) -> list[EfacturaEvent]:
    """The document's e-Factura events, once one of type ``last`` is stored: woken by the
    stream as it stores events."""
    reader = Consumer(connection)
    woken = asyncio.Event()
    subscription = await connection.watch(lambda position: woken.set())
    try:
        async with asyncio.timeout(timeout):
            while True:
                woken.clear()
                events = [e for e in (await reader.load(efactura_id(document))).events if isinstance(e, EfacturaEvent)]
                if any(isinstance(e, last) for e in events):
                    return events
                await woken.wait()
    finally:
        await subscription.unsubscribe()


def test_jobstream_run_invoicer_efactura_killed_mid_upload_and_started_again_uploads_once(
    jobstream: JobstreamApp, stream_env: dict[str, str], efactura_standin: StandIn, tmp_path: Path
) -> None:
    Office(jobstream).completed_job()
    issue(stream_env)
    ((invoice,),) = stored(jobstream, InvoiceIssued)
    env = {**os.environ, **stream_env, **efactura_standin.env(), "JOBSTREAM_DATA": str(tmp_path)}

    def started(**extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "invoicer", "efactura"],
            cwd=ROOT,
            env={**env, "EFACTURA_POLL_SECONDS": "0.2", **extra},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"efactura-{len(list(tmp_path.glob('efactura-*')))}.log").open("wb"),
        )

    async def kill_and_start_again(connection: NatsConnection) -> list[EfacturaEvent]:
        efactura_standin.slow(30)  # the upload taken, its answer late: the kill lands before it
        first = started()
        try:
            await until_stored(connection, invoice.id, EfacturaUploadStarted)
            await asyncio.to_thread(efactura_standin.received)  # ANAF has it, its answer not yet sent
            await asyncio.to_thread(efactura_standin.processed)  # and lists it
        finally:
            first.kill()
            first.wait(10)
        efactura_standin.slow(0)
        second = started(EFACTURA_LEASE_SECONDS="1")  # the first claim's process is gone
        try:
            return await until_stored(connection, invoice.id, EfacturaAnswerStored)
        finally:
            second.terminate()
            assert second.wait(20) == 0

    events = run(stream_env, kill_and_start_again)

    assert len(efactura_standin.of(invoice.number)) == 1  # uploaded once, through the kill
    (uploaded,) = [e for e in events if isinstance(e, EfacturaUploaded)]
    assert uploaded.found and uploaded.upload_index == efactura_standin.of(invoice.number)[0].index
    assert kinds(events)[-2:] == ["EfacturaAccepted", "EfacturaAnswerStored"]


def test_run_workers_uploads_to_efactura_when_it_is_configured(
    jobstream: JobstreamApp, stream_env: dict[str, str], efactura_standin: StandIn, tmp_path: Path
) -> None:
    from invoicer.ids import invoice_id_of

    office = Office(jobstream)
    env = {
        **os.environ,
        **stream_env,
        **efactura_standin.env(),
        **SELLER,
        "EFACTURA_POLL_SECONDS": "0.2",
        "JOBSTREAM_DATA": str(tmp_path),
    }
    workers = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "workers"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "workers.log").open("wb"),
    )

    async def work(connection: NatsConnection) -> list[EfacturaEvent]:
        try:
            job = await asyncio.to_thread(office.completed_job)
            return await until_stored(connection, invoice_id_of(job), EfacturaAnswerStored, timeout=120)
        finally:
            workers.terminate()
            workers.wait(30)

    events = run(stream_env, work)
    assert kinds(events) == [
        "EfacturaDocumentPrepared",
        "EfacturaUploadStarted",
        "EfacturaUploaded",
        "EfacturaAccepted",
        "EfacturaAnswerStored",
    ]
    (there,) = efactura_standin.uploads
    assert there.state == "ok" and there.cif == CIF, there.messages
