"""The read side of RO e-Factura on real invoices taken through the real uploader against the
stand-in: each document's e-Factura state and upload index in the read models, rebuilt
equal from the stream; the invoice's JSON and page, with ANAF's messages for a refusal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from events.contract import InvoiceIssued
from tests.conftest import new_read_model
from tests.integration.conftest import Api, read_side, stored
from tests.integration.test_efactura_upload import Clock, Office, issue, until_answered, upload
from tests.integration.test_projections import catch_up, dump

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn


def test_each_invoices_efactura_state_and_index_are_read_shown_and_rebuilt(
    api: Api, stream_env: dict[str, str], read_model_url: str, tmp_path: Path, efactura_standin: StandIn
) -> None:
    office = Office(api.jobstream)
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    office.completed_job()
    issue(stream_env)
    message = "E: [BR-RO-100] Adresa vanzatorului trebuie sa contina strada"
    efactura_standin.refuse_next(message)
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)
    ((ok, refused),) = stored(api.jobstream, InvoiceIssued)
    (ok_there,), (refused_there,) = efactura_standin.of(ok.number), efactura_standin.of(refused.number)

    with read_side(api, stream_env, read_model_url) as reader:
        got = reader.get(f"/api/invoices/{ok.id}").json()["efactura"]
        assert got == {
            "state": "accepted",
            "upload_index": ok_there.index,
            "messages": [],
            "retry_at": "",
            "reason": "",
            "answer": f"efactura/{ok.id}-answer.zip",
        }
        said = reader.get(f"/api/invoices/{refused.id}").json()["efactura"]
        assert (said["state"], said["upload_index"], said["messages"]) == ("refused", refused_there.index, [message])
        page = reader.get(f"/invoices/{ok.id}").text
        assert 'id="efactura"' in page and f'id="efactura-index">{ok_there.index}<' in page
        page = reader.get(f"/invoices/{refused.id}").text
        assert "Refused by ANAF" in page and "BR-RO-100" in page

    kind = "sqlite" if read_model_url.startswith("sqlite") else "postgres"
    with new_read_model(kind, tmp_path) as again:
        catch_up(stream_env, again)
        assert dump(again)["efactura_documents"] == dump(read_model_url)["efactura_documents"]
        assert len(dump(again)["efactura_documents"]) == 2
