"""What the office reads of invoices the real KSeF submitter took through the KSeF stand-in
over HTTP: one accepted (the stand-in's KSeF number, its UPO downloadable), one refused for
its content (the stand-in's words), in the read models and the read API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from events.contract import InvoiceIssued
from events.jetstream import NatsConnection, StreamSettings
from tests.integration.conftest import Api, read_side, stored
from tests.integration.test_ksef_submission import STANDIN_SELLER, Clock, Office, client_of, issue, submit
from tests.ksef_standin.server import StandIn


def render(env: dict[str, str]) -> None:
    from invoicer.writer import DocumentWriter

    async def run() -> None:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        try:
            await DocumentWriter(connection).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(run())


def test_the_office_reads_what_the_submitter_recorded_through_the_standin(
    api: Api, stream_env: dict[str, str], read_model_url: str, ksef_standin: StandIn
) -> None:
    office = Office(api.jobstream)
    office.completed_job()
    office.completed_job(minutes=45)
    issue(stream_env, STANDIN_SELLER)
    render(stream_env)
    reason = "Błąd weryfikacji semantyki dokumentu faktury."
    ksef_standin.refuse_next_invoice(reason)
    submit(stream_env, client_of(ksef_standin), Clock(datetime.now(UTC)))
    submit(stream_env, client_of(ksef_standin), Clock(datetime.now(UTC)))  # a restart: nothing new
    ((one, two),) = stored(api.jobstream, InvoiceIssued)
    (there,) = ksef_standin.accepted()

    with read_side(api, stream_env, read_model_url) as reader:
        (accepted,) = reader.get("/api/invoices?ksef=accepted").json()
        (refused,) = reader.get("/api/invoices?ksef=refused").json()
        assert {accepted["id"], refused["id"]} == {str(one.id), str(two.id)}
        assert accepted["number"] == there.number and accepted["ksef"]["number"] == there.ksef_number
        assert accepted["ksef"]["accepted_at"] and accepted["ksef"]["upo"]
        assert reason in refused["ksef"]["reason"] and refused["ksef"]["number"] == ""
        receipt = reader.get(f"/invoices/{accepted['id']}/upo.xml")
        assert receipt.status_code == 200 and there.ksef_number.encode() in receipt.content
        page = reader.get(f"/invoices/{refused['id']}").text
        assert reason in page and 'id="ksef-refused"' in page
        assert reader.get("/api/invoices?ksef=waiting").json() == []
