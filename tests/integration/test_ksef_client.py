"""The KSeF client against the KSeF stand-in: real HTTP, real encryption, the real XSDs."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from invoicer.ksef.client import (
    Accepted,
    AuthExpired,
    Duplicate,
    KsefClient,
    KsefConfig,
    Refused,
    SessionClosed,
    Transient,
)
from invoicer.ksef.crypto import FileDigest, SymmetricKey
from tests.ksef_standin.server import (
    ARTEFACTS,
    SHARED,
    TEST_NIP,
    TEST_TOKEN,
    StandIn,
    _self_signed,
    crc8,
    fa3_schema,
    ksef_number,
    ksef_number_valid,
)

EXAMPLE = SHARED / "tools" / "einvoice" / "examples" / "ksef" / "ksef-pdf-generator-invoice.xml"
UPO_XSD = SHARED / "reference" / "ksef" / "faktury" / "upo" / "schemy" / "upo-v4-3.xsd"
needs_example = pytest.mark.skipif(
    not EXAMPLE.exists(), reason="the FA(3) example (../shared/tools/einvoice) is not here"
)
needs_xsd = pytest.mark.skipif(
    not (ARTEFACTS / "catalog.xml").exists(), reason="the FA(3) XSD (../shared/tools/einvoice) is not here"
)


def invoice(number: str = "FV/2026/000001") -> bytes:
    """The official FA(3) example with its own invoice number (P_2)."""
    xml = EXAMPLE.read_bytes()
    return re.sub(rb"<P_2>[^<]*</P_2>", f"<P_2>{number}</P_2>".encode(), xml, count=1)


def calls(standin: StandIn, path: str) -> int:
    return sum(1 for _, called, _ in standin.requests if called.endswith(path))


# ---------------------------------------------------------------- numbers


def test_the_documented_ksef_number_checks_out() -> None:
    assert ksef_number_valid("5265877635-20250826-0100001AF629-AF")
    assert not ksef_number_valid("5265877635-20250826-0100001AF629-AE")
    assert f"{crc8(b'5265877635-20250826-0100001AF629'):02X}" == "AF"


def test_the_stand_in_numbers_as_ksef_does() -> None:
    number = ksef_number(TEST_NIP, dt.date(2026, 12, 3), "0100001AF629")
    assert number.startswith(f"{TEST_NIP}-20261203-0100001AF629-")
    assert len(number) == 35 and ksef_number_valid(number)


def test_settings_come_from_the_environment() -> None:
    assert KsefConfig.from_env({}) is None
    config = KsefConfig.from_env(
        {"KSEF_URL": "https://api-test.ksef.mf.gov.pl/v2/", "KSEF_NIP": TEST_NIP, "KSEF_TOKEN": "s3cret-token"}
    )
    assert config is not None and config.url == "https://api-test.ksef.mf.gov.pl/v2" and config.nip == TEST_NIP
    assert "s3cret" not in repr(config)  # the token stays out of logs
    with pytest.raises(SystemExit, match="KSEF_TOKEN"):
        KsefConfig.from_env({"KSEF_URL": "https://x/v2", "KSEF_NIP": TEST_NIP})
    with pytest.raises(SystemExit, match="KSEF_NIP"):
        KsefConfig.from_env({"KSEF_URL": "https://x/v2", "KSEF_NIP": "12-34", "KSEF_TOKEN": "t"})
    with pytest.raises(SystemExit, match="KSEF_PUBLIC_KEY_FILE"):
        KsefConfig.from_env(
            {
                "KSEF_URL": "https://x/v2",
                "KSEF_NIP": TEST_NIP,
                "KSEF_TOKEN": "t",
                "KSEF_PUBLIC_KEY_FILE": "/nonexistent",
            }
        )


# ---------------------------------------------------------------- the flow


@needs_example
async def test_an_invoice_goes_through_to_its_number_and_upo(ksef_standin: StandIn) -> None:
    xml = invoice()
    async with KsefClient(ksef_standin.config()) as ksef:
        tokens = await ksef.authenticate()
        assert tokens.access_valid_until > dt.datetime.now(dt.UTC)
        session = await ksef.open_online_session()
        sent = await ksef.send_invoice(session, xml)
        assert sent.invoice == FileDigest.of(xml)
        accepted = await ksef.wait_for_invoice(sent)
        upo = await ksef.upo(sent.session_reference_number, sent.reference_number)
        await ksef.close_session(session)
        with pytest.raises(SessionClosed):
            await ksef.send_invoice(session, invoice("FV/2026/000002"))

    today = dt.datetime.now(dt.UTC).date()
    assert ksef_number_valid(accepted.ksef_number)
    assert re.fullmatch(rf"{TEST_NIP}-\d{{8}}-[0-9A-F]{{12}}-[0-9A-F]{{2}}", accepted.ksef_number)
    assert (
        abs(
            (
                dt.date.fromisoformat(
                    f"{accepted.ksef_number[11:15]}-{accepted.ksef_number[15:17]}-{accepted.ksef_number[17:19]}"
                )
                - today
            ).days
        )
        <= 1
    )
    # the stand-in decrypted exactly what was sent, and checked it against the description
    (received,) = ksef_standin.accepted()
    assert received.digest.sha256 == base64.b64encode(hashlib.sha256(xml).digest()).decode()
    assert received.number == "FV/2026/000001"
    # the UPO names the invoice and its number, and is a UPO by the Ministry's XSD
    document = etree.fromstring(upo)
    ns = {"upo": "http://upo.schematy.mf.gov.pl/KSeF/v4-3"}
    assert document.findtext("upo:Dokument/upo:NumerKSeFDokumentu", namespaces=ns) == accepted.ksef_number
    assert document.findtext("upo:Dokument/upo:SkrotDokumentu", namespaces=ns) == sent.invoice.sha256
    assert document.findtext("upo:NumerReferencyjnySesji", namespaces=ns) == session.reference_number
    if UPO_XSD.exists():
        schema = etree.XMLSchema(etree.parse(str(UPO_XSD)))
        assert schema.validate(document.getroottree()), schema.error_log


@needs_example
async def test_an_expired_access_token_is_refreshed(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        await ksef.authenticate()
        ksef_standin.expire_access_tokens()
        session = await ksef.open_online_session()
        accepted = await ksef.wait_for_invoice(await ksef.send_invoice(session, invoice()))
    assert ksef_number_valid(accepted.ksef_number)
    assert calls(ksef_standin, "/auth/token/refresh") == 1
    assert calls(ksef_standin, "/auth/ksef-token") == 1  # refreshed, not authenticated anew
    assert ("POST", "/v2/sessions/online", 401) in ksef_standin.requests


async def test_a_token_near_its_valid_until_is_refreshed_before_use(ksef_standin: StandIn) -> None:
    ksef_standin.access_ttl = dt.timedelta(seconds=4)  # inside the client's margin: refreshed before each use
    async with KsefClient(ksef_standin.config()) as ksef:
        await ksef.authenticate()
        await ksef.open_online_session()
    assert calls(ksef_standin, "/auth/token/refresh") == 1
    assert not [r for r in ksef_standin.requests if r[2] == 401]


async def test_an_expired_refresh_token_means_a_new_authentication(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        await ksef.authenticate()
        ksef_standin.expire_access_tokens()
        ksef_standin.expire_refresh_tokens()
        await ksef.open_online_session()
    assert calls(ksef_standin, "/auth/ksef-token") == 2
    assert ("POST", "/v2/auth/token/refresh", 401) in ksef_standin.requests


async def test_a_wrong_ksef_token_is_refused(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config(token="not-the-token")) as ksef:
        with pytest.raises(AuthExpired, match="Nieprawidłowy token"):
            await ksef.open_online_session()


# ---------------------------------------------------------------- duplicates and refusals


@needs_example
async def test_a_duplicate_gives_the_original_s_number_and_upo(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        first_session = await ksef.open_online_session()
        original = await ksef.wait_for_invoice(await ksef.send_invoice(first_session, invoice()))
        again = await ksef.open_online_session()
        sent = await ksef.send_invoice(again, invoice())
        with pytest.raises(Duplicate) as duplicate:
            await ksef.wait_for_invoice(sent)
        upo = await ksef.upo_by_ksef_number(duplicate.value.original_session, duplicate.value.ksef_number)
        found = await ksef.find_ksef_number("FV/2026/000001", dt.date(2025, 10, 31))
        not_there = await ksef.find_ksef_number("FV/2026/999999", dt.date(2025, 10, 31))
    assert duplicate.value.ksef_number == original.ksef_number
    assert duplicate.value.original_session == first_session.reference_number
    assert original.ksef_number.encode() in upo
    assert isinstance(found, Accepted) and found.ksef_number == original.ksef_number
    assert not_there is None
    assert len(ksef_standin.accepted()) == 1


@needs_example
async def test_a_refusal_for_content_carries_ksef_s_code_and_reason(ksef_standin: StandIn) -> None:
    ksef_standin.refuse_next_invoice("Kwota podatku nie zgadza się z sumą pozycji.")
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        with pytest.raises(Refused) as refused:
            await ksef.wait_for_invoice(await ksef.send_invoice(session, invoice()))
        # the next one goes through: the refusal was for that invoice only
        accepted = await ksef.wait_for_invoice(await ksef.send_invoice(session, invoice("FV/2026/000002")))
    assert refused.value.code == 450
    assert refused.value.details == ("Kwota podatku nie zgadza się z sumą pozycji.",)
    assert ksef_number_valid(accepted.ksef_number)


@needs_example
@needs_xsd
async def test_an_invoice_the_xsd_refuses_is_refused_with_the_schema_s_words(ksef_standin: StandIn) -> None:
    broken = re.sub(rb"<P_2>[^<]*</P_2>", b"", invoice(), count=1)
    assert fa3_schema(ARTEFACTS) is not None
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        with pytest.raises(Refused) as refused:
            await ksef.wait_for_invoice(await ksef.send_invoice(session, broken))
    assert refused.value.code == 430
    assert any("P_2" in detail for detail in refused.value.details), refused.value.details


@needs_example
async def test_an_invoice_of_another_seller_is_refused(ksef_standin: StandIn) -> None:
    other = invoice().replace(f"<NIP>{TEST_NIP}</NIP>".encode(), b"<NIP>1111111111</NIP>", 1)
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        with pytest.raises(Refused) as refused:
            await ksef.wait_for_invoice(await ksef.send_invoice(session, other))
    assert refused.value.code == 410


# ---------------------------------------------------------------- transient failures


async def test_a_rate_limit_is_transient_with_ksef_s_retry_after(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        await ksef.authenticate()
        ksef_standin.rate_limit_next(1, retry_after=7)
        with pytest.raises(Transient) as limited:
            await ksef.open_online_session()
        assert limited.value.retry_after == 7
        await ksef.open_online_session()  # the next attempt goes through


async def test_5xx_is_transient(ksef_standin: StandIn) -> None:
    ksef_standin.fail_next(2, status=503)
    async with KsefClient(ksef_standin.config()) as ksef:
        for _ in range(2):
            with pytest.raises(Transient, match="503"):
                await ksef.authenticate()
        await ksef.authenticate()
    ksef_standin.fail_next(1, status=500)
    async with KsefClient(ksef_standin.config()) as ksef:
        with pytest.raises(Transient, match="500"):
            await ksef.authenticate()


@needs_example
async def test_ksef_down_is_transient_and_the_session_goes_on_when_it_is_back(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        ksef_standin.down()
        with pytest.raises(Transient, match="could not be reached"):
            await ksef.send_invoice(session, invoice())
        ksef_standin.up()
        accepted = await ksef.wait_for_invoice(await ksef.send_invoice(session, invoice()))
    assert ksef_number_valid(accepted.ksef_number)


async def test_a_slow_ksef_is_transient(ksef_standin: StandIn) -> None:
    ksef_standin.slow(2.0)
    async with KsefClient(ksef_standin.config(timeout=0.3)) as ksef:
        with pytest.raises(Transient, match="in time"):
            await ksef.authenticate()


# ---------------------------------------------------------------- keys


async def test_keys_pinned_to_other_certificates_are_not_used(ksef_standin: StandIn, tmp_path: Path) -> None:
    stranger = _self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048), "KsefTokenEncryption")
    pinned = tmp_path / "other.pem"
    pinned.write_bytes(stranger.public_bytes(serialization.Encoding.PEM))
    async with KsefClient(ksef_standin.config(public_key_file=str(pinned))) as ksef:
        with pytest.raises(Transient, match="no Ministry public key"):
            await ksef.authenticate()
    assert calls(ksef_standin, "/auth/ksef-token") == 0


async def test_keys_saved_from_the_endpoint_are_used_without_asking(ksef_standin: StandIn, tmp_path: Path) -> None:
    saved = tmp_path / "keys.json"
    async with httpx.AsyncClient() as http:
        saved.write_text((await http.get(f"{ksef_standin.url}/security/public-key-certificates")).text)
    ksef_standin.requests.clear()
    async with KsefClient(ksef_standin.config(public_key_file=str(saved))) as ksef:
        await ksef.authenticate()
    assert calls(ksef_standin, "/security/public-key-certificates") == 0


# ---------------------------------------------------------------- the stand-in holds the client to the description


def test_the_stand_in_refuses_requests_outside_the_description(ksef_standin: StandIn) -> None:
    url = ksef_standin.url
    bad = httpx.post(
        f"{url}/auth/ksef-token", json={"challenge": "short", "contextIdentifier": {"type": "Pesel", "value": "1"}}
    )
    assert bad.status_code == 400
    (error,) = bad.json()["exception"]["exceptionDetailList"]
    assert error["exceptionCode"] == 21405
    assert any("encryptedToken" in detail for detail in error["details"])
    assert any("Pesel" in detail for detail in error["details"])
    problem = httpx.post(f"{url}/auth/ksef-token", json={}, headers={"X-Error-Format": "problem-details"})
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["errors"][0]["code"] == 21405
    unauthorized = httpx.post(f"{url}/sessions/online", json={})
    assert unauthorized.status_code == 401 and unauthorized.json()["title"] == "Unauthorized"
    assert httpx.get(f"{url}/no/such/endpoint").status_code == 404


@needs_example
async def test_the_stand_in_checks_the_hashes_and_sizes(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        access = (await ksef.authenticate()).access
    xml = invoice()
    encrypted = session.key.encrypt(xml)
    plain, sealed = FileDigest.of(xml), FileDigest.of(encrypted)
    body = {
        "invoiceHash": FileDigest.of(b"something else").sha256,
        "invoiceSize": plain.size,
        "encryptedInvoiceHash": sealed.sha256,
        "encryptedInvoiceSize": sealed.size,
        "encryptedInvoiceContent": base64.b64encode(encrypted).decode(),
    }
    headers = {"Authorization": f"Bearer {access}"}
    path = f"{ksef_standin.url}/sessions/online/{session.reference_number}/invoices"
    async with httpx.AsyncClient(headers=headers) as http:
        wrong_hash = await http.post(path, json=body)
        wrong_size = await http.post(
            path, json={**body, "invoiceHash": plain.sha256, "encryptedInvoiceSize": sealed.size + 1}
        )
    codes = [r.json()["exception"]["exceptionDetailList"][0]["exceptionCode"] for r in (wrong_hash, wrong_size)]
    assert codes == [21403, 21402]
    assert not ksef_standin.invoices


async def test_the_stand_in_can_be_steered_over_http(ksef_standin: StandIn) -> None:
    async with httpx.AsyncClient() as http:
        steer = f"http://127.0.0.1:{ksef_standin.port}/_standin/faults"
        await http.post(steer, json={"fail_next": 1, "fail_status": 500})
    async with KsefClient(ksef_standin.config()) as ksef:
        with pytest.raises(Transient, match="500"):
            await ksef.authenticate()
        await ksef.authenticate()
    assert ("POST", "/v2/auth/challenge", 500) in ksef_standin.requests
    assert ksef_standin.faults.fail_next == 0


@pytest.fixture
def standin_process() -> Iterator[str]:
    """``python -m tests.ksef_standin.server`` in a process of its own, stopped by its PID; its URL."""
    from tests.ksef_standin.server import OPENAPI

    if not OPENAPI.is_file():
        pytest.skip(f"the KSeF API description is not at {OPENAPI} (../shared beside the repository)")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ksef_standin.server", "--port", "0"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_stand_in_runs_as_its_own_process(standin_process: str) -> None:
    url = standin_process
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v2", url), url
    async with httpx.AsyncClient() as http:
        await http.post(url.replace("/v2", "/_standin/faults"), json={"rate_limit_next": 1, "retry_after": 3})
    async with KsefClient(KsefConfig(url=url, nip=TEST_NIP, token=TEST_TOKEN)) as ksef:
        with pytest.raises(Transient) as limited:
            await ksef.authenticate()
        assert limited.value.retry_after == 3
        await ksef.authenticate()
        await ksef.open_online_session()


@needs_xsd
async def test_the_project_s_own_fa3_invoice_and_correction_are_accepted(ksef_standin: StandIn) -> None:
    from invoicer.ksef.fa3 import fa3_invoice, seller_nip
    from tests.unit.invoices import CREDIT_NOTE, INVOICE

    nip = seller_nip(INVOICE.seller)
    ksef_standin.tokens[nip] = "the-seller-s-ksef-token"
    async with KsefClient(ksef_standin.config(nip=nip, token="the-seller-s-ksef-token")) as ksef:
        session = await ksef.open_online_session()
        invoice_accepted = await ksef.wait_for_invoice(await ksef.send_invoice(session, fa3_invoice(INVOICE)))
        correction = fa3_invoice(CREDIT_NOTE, original_ksef_number=invoice_accepted.ksef_number)
        correction_accepted = await ksef.wait_for_invoice(await ksef.send_invoice(session, correction))
    assert invoice_accepted.ksef_number.startswith(f"{nip}-")
    assert ksef_number_valid(correction_accepted.ksef_number)
    assert [(i.invoice_type, i.number) for i in ksef_standin.accepted()] == [
        ("VAT", INVOICE.number),
        ("KOR", CREDIT_NOTE.number),
    ]


async def test_calls_that_see_the_token_expire_together_share_one_refresh(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        await ksef.authenticate()
        ksef_standin.expire_access_tokens()
        sessions = await asyncio.gather(*(ksef.open_online_session() for _ in range(5)))
    assert len({s.reference_number for s in sessions}) == 5
    assert calls(ksef_standin, "/auth/token/refresh") == 1


@needs_example
async def test_an_invoice_under_another_key_does_not_decrypt(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        impostor = dataclasses.replace(session, key=SymmetricKey.new())
        with pytest.raises(Refused) as refused:
            await ksef.wait_for_invoice(await ksef.send_invoice(impostor, invoice()))
    # 435: it does not decrypt; once in about 256 keys the garbage ends in valid PKCS#7 padding,
    # and then its SHA-256 is not the invoice's (21403, at sending)
    assert refused.value.code in (435, 21403)
    assert not ksef_standin.accepted()


async def test_an_authentication_in_progress_is_polled_until_it_is_done(ksef_standin: StandIn) -> None:
    ksef_standin.auth_pending_polls = 3
    async with KsefClient(ksef_standin.config(), poll_interval=0.01) as ksef:
        await ksef.authenticate()
    statuses = [status for _, path, status in ksef_standin.requests if "/auth/2" in path]
    assert statuses == [200] * 4  # three times "in progress" (100 in the body), then done


@needs_example
async def test_an_invoice_issued_offline_is_sent_as_such(ksef_standin: StandIn) -> None:
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        sent = await ksef.send_invoice(session, invoice(), offline=True)
        await ksef.wait_for_invoice(sent)
        upo = await ksef.upo(sent.session_reference_number, sent.reference_number)
    (received,) = ksef_standin.accepted()
    assert received.offline
    assert b"<TrybWysylki>Offline</TrybWysylki>" in upo


@needs_example
async def test_a_full_session_means_another_one(ksef_standin: StandIn) -> None:
    ksef_standin.session_invoice_limit = 1
    async with KsefClient(ksef_standin.config()) as ksef:
        session = await ksef.open_online_session()
        await ksef.send_invoice(session, invoice())
        with pytest.raises(SessionClosed, match="21155"):
            await ksef.send_invoice(session, invoice("FV/2026/000002"))
        await ksef.send_invoice(await ksef.open_online_session(), invoice("FV/2026/000002"))
    assert len(ksef_standin.accepted()) == 2


@needs_example
async def test_without_the_xsd_the_stand_in_says_so_and_skips_only_that_check(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="no FA\\(3\\) XSD"):
        standin = StandIn(artefacts=tmp_path / "not-here")
    standin.start()
    try:
        async with KsefClient(standin.config()) as ksef:
            session = await ksef.open_online_session()
            without_p2 = re.sub(rb"<P_2>[^<]*</P_2>", b"", invoice(), count=1)
            await ksef.wait_for_invoice(await ksef.send_invoice(session, without_p2))
            other = invoice("FV/2026/000002").replace(f"<NIP>{TEST_NIP}</NIP>".encode(), b"<NIP>1111111111</NIP>", 1)
            with pytest.raises(Refused) as refused:
                await ksef.wait_for_invoice(await ksef.send_invoice(session, other))
    finally:
        standin.stop()
    assert refused.value.code == 410
    assert not standin.response_errors
