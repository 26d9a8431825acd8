"""The e-Factura stand-in answers like ANAF over real HTTP, to the real client: a CIUS-RO
invoice accepted and listed; a plain EN 16931 one refused after processing with BR-RO-001;
what is no UBL of the standard refused at the upload; no token, no answer."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from invoicer.efactura.client import EfacturaClient, EfacturaConfig, Refused, Transient, answer_messages
from tests.efactura_standin.server import VALIDATOR

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn

EXAMPLE = VALIDATOR.parent / "examples" / "cius-ro" / "ubl_b2g_example2.xml"
needs_shared = pytest.mark.skipif(not EXAMPLE.is_file(), reason="../shared/tools/einvoice is not here")
EXAMPLE_CIF = "1111111111118"  # the example's seller
INVOICE_ROOT = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'


def client(standin: StandIn, token: str = "") -> EfacturaClient:
    return EfacturaClient(EfacturaConfig(url=standin.url, token=token or standin.token))


@needs_shared
def test_a_cius_ro_invoice_is_processed_accepted_listed_and_signed(efactura_standin: StandIn) -> None:
    xml = Path(EXAMPLE).read_bytes()

    async def go() -> None:
        async with client(efactura_standin) as anaf:
            upload = await anaf.upload(xml, cif=EXAMPLE_CIF)
            assert (await anaf.state(upload.index)).state in ("in prelucrare", "ok")
            await asyncio.to_thread(efactura_standin.processed)
            state = await anaf.state(upload.index)
            assert state.state == "ok" and state.download_id
            answer = await anaf.download(state.download_id)
            with zipfile.ZipFile(io.BytesIO(answer)) as archive:
                assert archive.read(f"{upload.index}.xml") == xml
            (listed,) = await anaf.messages(EXAMPLE_CIF, 1)
            assert (listed.tip, listed.id_solicitare, listed.id) == ("FACTURA TRIMISA", upload.index, state.download_id)
            since = datetime.now(UTC) - timedelta(minutes=5)
            found = await anaf.find_upload(cif=EXAMPLE_CIF, number="TOSL108", since=since, now=datetime.now(UTC))
            assert found is not None and found.index == upload.index
            assert await anaf.find_upload(cif=EXAMPLE_CIF, number="OTHER", since=since, now=datetime.now(UTC)) is None

    asyncio.run(go())
    assert efactura_standin.schematron


@needs_shared
def test_plain_en16931_ubl_is_refused_with_anafs_br_ro_001(efactura_standin: StandIn) -> None:
    xml = Path(EXAMPLE).read_bytes().replace(b":CIUS-RO:1.0.1", b"")

    async def go() -> list[str]:
        async with client(efactura_standin) as anaf:
            upload = await anaf.upload(xml, cif=EXAMPLE_CIF)
            await asyncio.to_thread(efactura_standin.processed)
            state = await anaf.state(upload.index)
            assert state.state == "nok"
            assert await anaf.messages(EXAMPLE_CIF, 1) != []
            return answer_messages(await anaf.download(state.download_id))

    messages = asyncio.run(go())
    assert any("BR-RO-001" in m for m in messages), messages


def test_what_is_not_ubl_of_the_standard_is_refused_at_the_upload(efactura_standin: StandIn) -> None:
    async def go() -> list[list[str]]:
        refusals = []
        async with client(efactura_standin) as anaf:
            for body, credit_note in ((b"not xml", False), (b"<Invoice/>", False), (INVOICE_ROOT, True)):
                with pytest.raises(Refused) as refused:
                    await anaf.upload(body, cif="18547290", credit_note=credit_note)
                refusals.append(refused.value.messages)
            with pytest.raises(Transient, match="Nu exista factura"):
                await anaf.state("999")
        return refusals

    not_xml, not_ubl, not_a_credit_note = asyncio.run(go())
    assert (
        "nu este valid" in not_xml[0] and "standardului UBL" in not_ubl[0] and "standardului CN" in not_a_credit_note[0]
    )
    assert efactura_standin.uploads == []


def test_without_the_token_anaf_answers_nothing(efactura_standin: StandIn) -> None:
    async def go() -> None:
        async with client(efactura_standin, token="wrong") as anaf:
            with pytest.raises(Transient, match="EFACTURA_TOKEN"):
                await anaf.upload(b"<x/>", cif="18547290")

    asyncio.run(go())
    assert efactura_standin.requests == [("POST", "/upload", 401)]


@needs_shared
def test_the_full_schematron_is_run_on_what_is_processed(efactura_standin: StandIn) -> None:
    xml = Path(EXAMPLE).read_bytes()
    wrong_total = xml.replace(b'<cbc:PayableAmount currencyID="RON">', b'<cbc:PayableAmount currencyID="RON">9', 1)
    assert wrong_total != xml

    async def go() -> list[str]:
        async with client(efactura_standin) as anaf:
            upload = await anaf.upload(wrong_total, cif=EXAMPLE_CIF)
            await asyncio.to_thread(efactura_standin.processed)
            state = await anaf.state(upload.index)
            assert state.state == "nok"
            return answer_messages(await anaf.download(state.download_id))

    messages = asyncio.run(go())
    assert any("[BR-CO-16]" in m for m in messages), messages  # EN 16931's, from the official schematron
