"""The KSeF verification QR codes on a Polish invoice's PDF (kody-qr.md): given an issued
invoice, when its PDF is rendered, then it carries KOD I, whose link (read back from the
image) names the environment, the seller's NIP, the issue date and the SHA-256 of the very
FA(3) bytes sent, labelled with the KSeF number or OFFLINE; and KOD II when issued offline."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from msgspec.structs import replace

from invoicer.documents import Branding, KsefMark, invoice_pdf
from invoicer.ksef import qr
from invoicer.ksef.fa3 import fa3_invoice
from invoicer.writer import render_pdf
from tests.unit.invoices import ABROAD, SELLER
from tests.unit.test_fa3 import CORRECTION, PLAIN

KSEF_NUMBER = "5261040828-20261123-0100A1B2C3D4-7F"


def pdf_text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def pdf_codes(pdf: bytes) -> list[str]:
    """What the QR codes printed in the PDF say, decoded from their images."""
    found = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        for image in page.images:
            found.extend(code.text for code in zxingcpp.read_barcodes(image.image))
    return found


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_the_environment_follows_ksef_url() -> None:
    assert qr.environment_of("https://api.ksef.mf.gov.pl/v2") == "production"
    assert qr.environment_of("https://API-DEMO.ksef.mf.gov.pl") == "demo"
    assert qr.environment_of("https://api-test.ksef.mf.gov.pl/v2") == "test"
    assert qr.environment_of("http://127.0.0.1:8123") == "test"  # a stand-in
    assert qr.environment_of("") == "test"


def test_kod_i_is_the_specification_s_own_example() -> None:
    digest = base64.urlsafe_b64decode("UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE=")
    assert (
        qr.invoice_link("test", "1111111111", date(2026, 2, 1), digest)
        == "https://qr-test.ksef.mf.gov.pl/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
    )
    assert qr.invoice_link("production", "1111111111", date(2026, 2, 1), digest).startswith(
        "https://qr.ksef.mf.gov.pl/invoice/"
    )


def test_a_polish_invoice_s_pdf_carries_kod_i_with_the_hash_of_its_fa3_labelled_offline() -> None:
    pdf = invoice_pdf(PLAIN)
    link = f"https://qr-test.ksef.mf.gov.pl/invoice/5261040828/23-11-2026/{b64url_sha256(fa3_invoice(PLAIN))}"
    assert pdf_codes(pdf) == [link]  # the image read back says the link
    text = pdf_text(pdf)
    assert link in text  # printed beside it
    assert "OFFLINE" in text  # no KSeF number yet
    assert "Sprawdź fakturę w Krajowym Systemie e-Faktur (KSeF):" in text


def test_once_accepted_the_code_is_labelled_with_the_ksef_number() -> None:
    pdf = invoice_pdf(PLAIN, Branding(ksef_environment="production"), KsefMark(ksef_number=KSEF_NUMBER))
    [link] = pdf_codes(pdf)
    assert link.startswith("https://qr.ksef.mf.gov.pl/invoice/5261040828/23-11-2026/")
    text = pdf_text(pdf)
    assert KSEF_NUMBER in text and "OFFLINE" not in text


def test_the_hash_is_the_sent_file_s_when_it_is_given() -> None:
    """A credit note's FA(3) names its original's KSeF number once known: the code carries the
    hash of the file KSeF was sent, as the KSeF events record it."""
    sent = fa3_invoice(CORRECTION, original_ksef_number=KSEF_NUMBER)
    mark = KsefMark(fa3_sha256=hashlib.sha256(sent).hexdigest())
    [link] = pdf_codes(invoice_pdf(CORRECTION, ksef=mark))
    assert link == f"https://qr-test.ksef.mf.gov.pl/invoice/5261040828/30-11-2026/{b64url_sha256(sent)}"


def test_no_code_for_a_seller_outside_poland_or_a_document_ksef_would_refuse() -> None:
    czech = replace(PLAIN, seller=replace(SELLER, address=ABROAD.address, vat_id="CZ12345678"))
    assert pdf_codes(invoice_pdf(czech)) == []
    refused = replace(PLAIN, seller=replace(SELLER, vat_id="PL5261040827"))  # held, never sent
    assert pdf_codes(invoice_pdf(refused)) == []
    assert "OFFLINE" not in pdf_text(invoice_pdf(czech))


def test_the_code_survives_the_factur_x_pdf() -> None:
    assert pdf_codes(render_pdf(PLAIN, Branding())) == pdf_codes(invoice_pdf(PLAIN))


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="KSeF environment 'prod'"):
        Branding(ksef_environment="prod")


# --- KOD II: the offline certificate -------------------------------------------------------


def offline_certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed certificate and its key in one PEM, as KSEF_OFFLINE_CERT holds it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Instalacje Nowak offline")])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x01F20A5D352AE590)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signed_part(link: str) -> tuple[str, bytes]:
    path, _, signature = link.removeprefix("https://").rpartition("/")
    return path, base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def test_an_offline_invoice_carries_kod_ii_signed_with_the_offline_certificate_s_rsa_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    branding = Branding(offline_certificate=offline_certificate(key))
    pdf = invoice_pdf(PLAIN, branding, KsefMark(offline=True))
    first, second = sorted(pdf_codes(pdf), key=lambda link: "/certificate/" in link)  # KOD I, KOD II
    digest = b64url_sha256(fa3_invoice(PLAIN))
    assert first == f"https://qr-test.ksef.mf.gov.pl/invoice/5261040828/23-11-2026/{digest}"
    path, signature = signed_part(second)
    assert path == f"qr-test.ksef.mf.gov.pl/certificate/Nip/5261040828/5261040828/1F20A5D352AE590/{digest}"
    key.public_key().verify(signature, path.encode(), padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    text = pdf_text(pdf)
    assert "OFFLINE" in text and "CERTYFIKAT" in text


def test_kod_ii_with_an_ecdsa_key_is_signed_as_r_and_s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    link = qr.certificate_link("demo", qr.OfflineCertificate(offline_certificate(key)), "5261040828", b"\0" * 32)
    path, signature = signed_part(link)
    assert path.startswith("qr-demo.ksef.mf.gov.pl/certificate/Nip/5261040828/5261040828/")
    assert len(signature) == 64  # IEEE P1363: R || S
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.public_key().verify(der, path.encode(), ec.ECDSA(hashes.SHA256()))


def test_no_kod_ii_without_a_certificate_or_once_accepted() -> None:
    assert len(pdf_codes(invoice_pdf(PLAIN, ksef=KsefMark(offline=True)))) == 1
    key = ec.generate_private_key(ec.SECP256R1())
    branding = Branding(offline_certificate=offline_certificate(key))
    assert len(pdf_codes(invoice_pdf(PLAIN, branding, KsefMark(offline=True, ksef_number=KSEF_NUMBER)))) == 1


def test_a_certificate_that_is_not_one_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="KSEF_OFFLINE_CERT"):
        qr.OfflineCertificate(b"not a certificate")


def test_the_settings_give_the_environment_and_the_certificate(tmp_path: Path) -> None:
    assert Branding.from_env({}).ksef_environment == "test"
    assert Branding.from_env({"KSEF_URL": "https://api.ksef.mf.gov.pl"}).ksef_environment == "production"
    pem = tmp_path / "offline.pem"
    pem.write_bytes(offline_certificate(ec.generate_private_key(ec.SECP256R1())))
    assert Branding.from_env({"KSEF_OFFLINE_CERT": str(pem)}).offline_certificate == pem.read_bytes()
    with pytest.raises(SystemExit, match="KSEF_OFFLINE_CERT="):
        Branding.from_env({"KSEF_OFFLINE_CERT": str(tmp_path / "missing.pem")})
    pem.write_text("nothing")
    with pytest.raises(SystemExit, match="not a PEM certificate"):
        Branding.from_env({"KSEF_OFFLINE_CERT": str(pem)})
