"""The verification QR codes a Polish invoice carries (kody-qr.md).

KOD I links to the invoice in KSeF: the environment's QR address, the seller's NIP, the issue
date (P_1) as DD-MM-RRRR and the SHA-256 of the FA(3) file, Base64URL without padding. Below it
the KSeF number once KSeF gave one, else "OFFLINE". KOD II, only on an invoice issued offline,
proves the issuer by signing the certificate link with the offline certificate's private key
(RSASSA-PSS with SHA-256 and 32 bytes of salt, or ECDSA P-256 as R || S); below it "CERTYFIKAT".

The codes are drawn by segno (ISO/IEC 18004, pure Python, PNG without Pillow).
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import date
from urllib.parse import urlsplit

import segno
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# kody-qr.md, "Środowiska"
QR_HOSTS = {
    "test": "qr-test.ksef.mf.gov.pl",
    "demo": "qr-demo.ksef.mf.gov.pl",
    "production": "qr.ksef.mf.gov.pl",
}
# srodowiska.md: the API host of each environment
API_HOSTS = {"api-test.ksef.mf.gov.pl": "test", "api-demo.ksef.mf.gov.pl": "demo", "api.ksef.mf.gov.pl": "production"}
OFFLINE = "OFFLINE"
CERTIFICATE = "CERTYFIKAT"
PIXELS_PER_MODULE = 5  # as the Ministry's own client draws them


def environment_of(ksef_url: str) -> str:
    """The KSeF environment a KSEF_URL points at: production and demo by their API hosts,
    anything else (the test environment, a stand-in, none) is test."""
    return API_HOSTS.get((urlsplit(ksef_url).hostname or "").lower(), "test")


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def invoice_link(environment: str, nip: str, issue_date: date, fa3_sha256: bytes) -> str:
    """KOD I: https://<qr host>/invoice/{NIP}/{DD-MM-RRRR}/{SHA-256 of the FA(3) file, Base64URL}."""
    return f"https://{QR_HOSTS[environment]}/invoice/{nip}/{issue_date:%d-%m-%Y}/{base64url(fa3_sha256)}"


class OfflineCertificate:
    """A KSeF offline certificate and its private key (one PEM file holding both), which
    sign KOD II's link."""

    def __init__(self, pem: bytes, password: bytes | None = None) -> None:
        try:
            self.certificate = x509.load_pem_x509_certificate(pem)
            self.key = serialization.load_pem_private_key(pem, password)
        except ValueError as error:
            raise ValueError(f"KSEF_OFFLINE_CERT: not a PEM certificate and private key ({error})") from None
        if not isinstance(self.key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("KSEF_OFFLINE_CERT: the key must be RSA or ECDSA P-256")
        if isinstance(self.key, ec.EllipticCurvePrivateKey) and not isinstance(self.key.curve, ec.SECP256R1):
            raise ValueError("KSEF_OFFLINE_CERT: an ECDSA key must be on P-256")

    @property
    def serial(self) -> str:
        """The certificate's serial number as the link writes it: upper-case hex."""
        return f"{self.certificate.serial_number:X}"

    def sign(self, text: str) -> bytes:
        data = text.encode("utf-8")
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # IEEE P1363, the recommended form


def certificate_link(
    environment: str,
    certificate: OfflineCertificate,
    nip: str,
    fa3_sha256: bytes,
    context_type: str = "Nip",
    context_id: str = "",
) -> str:
    """KOD II: https://<qr host>/certificate/{context type}/{context id}/{seller's NIP}/{serial}/
    {SHA-256 of the FA(3), Base64URL}/{signature of the link without https:// , Base64URL}.
    The context is the seller's own NIP unless said otherwise."""
    signed = (
        f"{QR_HOSTS[environment]}/certificate/{context_type}/{context_id or nip}/{nip}/"
        f"{certificate.serial}/{base64url(fa3_sha256)}"
    )
    return f"https://{signed}/{base64url(certificate.sign(signed))}"


def qr_png(text: str) -> bytes:
    """The QR code of a link as PNG bytes (error correction M, as segno picks it at least)."""
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=PIXELS_PER_MODULE, border=4)
    return out.getvalue()


def qr_data_url(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode("ascii")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
