"""A KSeF 2.0 stand-in: the endpoints jobstream uses, built from the Ministry's open-api.json.

It is a real HTTP server (starlette on uvicorn, in a thread, on a free 127.0.0.1 port),
serving under ``/v2`` as KSeF does. Every request under ``/v2`` is checked against the API
description with openapi-core (path, method, parameters, the bearer token's presence, the
body against its component schema) and refused 400 (21405, the description's error shape;
401 without a token) when it does not fit; every answer is checked against the description
too, and the mismatches are kept in ``response_errors`` (the fixture fails a test that has
any). Then it does what KSeF does:

- its own RSA keys, served as the Ministry's self-signed certificates, one per usage;
- the KSeF-token authentication: the challenge, the token decrypted and compared with the
  registered one and the challenge's timestamp, the status polled, the tokens redeemed once,
  JWT-like access and refresh tokens (HS256) whose lifetimes a test sets;
- online sessions: the AES key unwrapped, each invoice's sizes and SHA-256 checked before and
  after decryption, the FA(3) checked (UTF-8 without BOM, no processing instructions, the
  session's form code, the XSD from ../shared/tools/einvoice/artefacts/ksef when it is there,
  the seller's NIP is the context's, the issue date not in the future), duplicates refused
  440 with the original's number (same seller NIP, RodzajFaktury and P_2), KSeF numbers in
  KSeF's format with their CRC-8, and a UPO per accepted invoice;
- the invoices' metadata query, for the seller's own invoices by number.

Faults a test sets on the object (or over ``POST /_standin/faults`` when it runs as its own
process): the next N requests fail with 500/503, or 429 with Retry-After; every answer late
by some seconds; down (the port closed: connection refused) and up again on the same port;
the next invoice refused for content; all access or refresh tokens expired at once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jsonschema_path import SchemaPath
from lxml import etree
from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.exceptions import SecurityValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from invoicer.ksef.client import KsefConfig
from invoicer.ksef.crypto import (
    SYMMETRIC_KEY_USAGE,
    TOKEN_USAGE,
    FileDigest,
    SymmetricKey,
    b64,
    oaep,
    public_key_id,
)

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED = REPOSITORY.parent / "shared"
OPENAPI = SHARED / "reference" / "ksef" / "open-api.json"
ARTEFACTS = SHARED / "tools" / "einvoice" / "artefacts" / "ksef"
SPEC_HOST = "https://api-test.ksef.mf.gov.pl"
FA3_NS = "http://crd.gov.pl/wzor/2025/06/25/13775/"
UPO_NS = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"
WARSAW = ZoneInfo("Europe/Warsaw")
TEST_NIP = "5265877635"
TEST_TOKEN = "20251203-EC-0123456789-ABCDEF0123-45|nip-5265877635|standin0123456789abcdef"
INVOICE_TYPES = {
    "VAT": "Vat",
    "ZAL": "Zal",
    "KOR": "Kor",
    "ROZ": "Roz",
    "UPR": "Upr",
    "KOR_ZAL": "KorZal",
    "KOR_ROZ": "KorRoz",
}


def crc8(data: bytes) -> int:
    """CRC-8 as numer-ksef.md gives it: polynomial 0x07, initial value 0x00."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def ksef_number(nip: str, day: dt.date, technical: str) -> str:
    """``NIP-YYYYMMDD-12 hex-CRC``, 35 characters; the CRC-8 is over the first 32."""
    data = f"{nip}-{day:%Y%m%d}-{technical}"
    return f"{data}-{crc8(data.encode()):02X}"


def ksef_number_valid(number: str) -> bool:
    return len(number) == 35 and f"{crc8(number[:32].encode()):02X}" == number[33:]


def reference_number(kind: str, day: dt.date) -> str:
    """A 36-character reference like KSeF's: ``YYYYMMDD-KK-10 hex-10 hex-2 hex``."""
    data = f"{day:%Y%m%d}-{kind}-{secrets.token_hex(5).upper()}-{secrets.token_hex(5).upper()}"
    return f"{data}-{crc8(data.encode()):02X}"


@functools.cache
def openapi() -> OpenAPI:
    """The Ministry's API description, loaded once per process (about a second)."""
    # problem details are JSON; the UPO's XML is the description's "string", not parsed
    deserializers: dict[str, Callable[[bytes], Any]] = {
        "application/problem+json": json.loads,
        "application/xml": lambda data: data.decode("utf-8"),
    }
    config = Config(extra_media_type_deserializers=deserializers)
    return OpenAPI(SchemaPath.from_dict(json.loads(OPENAPI.read_text(encoding="utf-8"))), config=config)


@functools.cache
def fa3_schema(artefacts: Path) -> etree.XMLSchema | None:
    """The FA(3) XSD with its crd.gov.pl imports rewritten to the local copies the catalog names."""
    xsd = artefacts / "schemat_FA(3)_v1-0E.xsd"
    if not xsd.exists():
        return None
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    catalog = etree.parse(str(artefacts / "catalog.xml"), parser).getroot()
    rewrites = [
        (entry.get("uriStartString") or "", str(artefacts / (entry.get("rewritePrefix") or "")))
        for entry in catalog.iter("{urn:oasis:names:tc:entity:xmlns:xml:catalog}rewriteURI")
    ]
    tree = etree.parse(str(xsd), parser)
    xs = "http://www.w3.org/2001/XMLSchema"
    for element in tree.getroot().iter(f"{{{xs}}}import", f"{{{xs}}}include"):
        location = element.get("schemaLocation") or ""
        for start, local in rewrites:
            if start and location.startswith(start):
                element.set("schemaLocation", local + "/" + location[len(start) :])
    return etree.XMLSchema(tree)


@functools.cache
def _ministry_keys() -> tuple[dict[str, rsa.RSAPrivateKey], dict[str, x509.Certificate]]:
    """The stand-in's "Ministry" keys and certificates, one per usage: made once per process
    (RSA key generation is the slowest part of starting a stand-in)."""
    keys = {
        usage: rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for usage in (TOKEN_USAGE, SYMMETRIC_KEY_USAGE)
    }
    return keys, {usage: _self_signed(key, usage) for usage, key in keys.items()}


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _self_signed(key: rsa.RSAPrivateKey, usage: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "PL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KSeF stand-in"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Ministerstwo Finansów ({usage})"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=730))
        .sign(key, hashes.SHA256())
    )


@dataclass
class Faults:
    """What goes wrong next; the stand-in counts the next-N faults down as it answers."""

    fail_next: int = 0
    fail_status: int = 503
    rate_limit_next: int = 0
    retry_after: int = 1
    delay: float = 0.0
    refuse_next_invoice: list[str] = field(default_factory=list)


@dataclass
class AuthOperation:
    reference: str
    nip: str
    started: dt.datetime
    code: int
    description: str
    details: list[str]
    token_reference: str
    pending_polls: int
    redeemed: bool = False


@dataclass
class Invoice:
    ordinal: int
    reference: str
    session: str
    nip: str
    received: dt.datetime
    digest: FileDigest
    code: int
    description: str
    details: list[str] = field(default_factory=list)
    extensions: dict[str, str] | None = None
    number: str = ""
    issue_date: str = ""
    invoice_type: str = ""
    ksef_number: str = ""
    acquired: dt.datetime | None = None
    offline: bool = False
    pending_polls: int = 0
    amounts: dict[str, Any] = field(default_factory=dict)
    upo: bytes = b""


@dataclass
class Session:
    reference: str
    nip: str
    opened: dt.datetime
    valid_until: dt.datetime
    key: SymmetricKey | None
    token_reference: str
    closed: bool = False
    invoices: list[str] = field(default_factory=list)


class StandIn:
    """KSeF as far as jobstream uses it; ``start()`` serves it, the attributes steer it."""

    def __init__(self, *, artefacts: Path = ARTEFACTS, tokens: dict[str, str] | None = None) -> None:
        self.artefacts = artefacts
        self.xsd_checked = (artefacts / "schemat_FA(3)_v1-0E.xsd").exists()
        if not self.xsd_checked:
            warnings.warn(
                f"the KSeF stand-in finds no FA(3) XSD in {artefacts}: invoices are not checked against it",
                stacklevel=2,
            )
        self.tokens = dict(tokens or {TEST_NIP: TEST_TOKEN})  # NIP -> the KSeF token valid for it
        self.access_ttl = dt.timedelta(minutes=15)
        self.refresh_ttl = dt.timedelta(days=7)
        self.auth_pending_polls = 1  # status 100 answered this many times before the outcome
        self.invoice_pending_polls = 1  # status 150 answered this many times before the outcome
        self.session_invoice_limit = 10_000  # weryfikacja-faktury.md: invoices in one session
        self.faults = Faults()
        self.response_errors: list[str] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        self.lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._epochs = {"access": 0, "refresh": 0}
        self._keys, self.certificates = _ministry_keys()
        self._challenges: dict[str, int] = {}
        self._auth: dict[str, AuthOperation] = {}
        self.sessions: dict[str, Session] = {}
        self.invoices: dict[str, Invoice] = {}
        self._accepted: dict[tuple[str, str, str], Invoice] = {}  # (NIP, type, number) -> original
        self.key_file: Path | None = None  # where the fixture wrote public_keys_pem()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(routes=self._routes())
        self.app.add_middleware(_Gate, standin=self)  # type: ignore[arg-type]  # starlette's middleware factory typing

    # ------------------------------------------------------------------ lifetime
    @property
    def url(self) -> str:
        """The base URL as KSEF_URL takes it."""
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (a free port unless given) in a thread; the base URL."""
        openapi()  # loaded before the first request, not during it
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port or self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ksef-standin", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the KSeF stand-in did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        return self.url

    def stop(self) -> None:
        """Stop listening (connections are refused from now on); the state stays."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def down(self) -> None:
        """KSeF unreachable: the port closed, so connecting is refused."""
        self.stop()

    def up(self) -> None:
        """KSeF back, on the same port, with everything it knew."""
        if self._server is None:
            self.start(self.port)

    # ------------------------------------------------------------------ steering
    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.faults.fail_next, self.faults.fail_status = count, status

    def rate_limit_next(self, count: int, retry_after: int = 1) -> None:
        with self.lock:
            self.faults.rate_limit_next, self.faults.retry_after = count, retry_after

    def slow(self, seconds: float) -> None:
        with self.lock:
            self.faults.delay = seconds

    def refuse_next_invoice(self, reason: str = "Błąd weryfikacji semantyki dokumentu faktury.") -> None:
        with self.lock:
            self.faults.refuse_next_invoice.append(reason)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401), as after its exp."""
        with self.lock:
            self._epochs["access"] += 1

    def expire_refresh_tokens(self) -> None:
        with self.lock:
            self._epochs["refresh"] += 1

    def config(self, **overrides: Any) -> KsefConfig:
        """The client's configuration for this stand-in (its certificates pinned when
        ``key_file`` is set)."""
        fields: dict[str, Any] = {"url": self.url, "nip": TEST_NIP, "token": self.tokens.get(TEST_NIP, TEST_TOKEN)}
        if self.key_file is not None:
            fields["public_key_file"] = str(self.key_file)
        fields.update(overrides)
        return KsefConfig(**fields)

    def env(self) -> dict[str, str]:
        """KSEF_URL, KSEF_NIP, KSEF_TOKEN (and KSEF_PUBLIC_KEY_FILE) for a process running jobstream."""
        config = self.config()
        env = {"KSEF_URL": config.url, "KSEF_NIP": config.nip, "KSEF_TOKEN": config.token}
        if config.public_key_file:
            env["KSEF_PUBLIC_KEY_FILE"] = config.public_key_file
        return env

    def public_keys_pem(self) -> bytes:
        """The certificates as PEM, for KSEF_PUBLIC_KEY_FILE."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates.values())

    def accepted(self) -> list[Invoice]:
        with self.lock:
            return [invoice for invoice in self.invoices.values() if invoice.code == 200]

    # ------------------------------------------------------------------ tokens
    def _jwt(self, kind: str, nip: str, reference: str, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
        now = dt.datetime.now(dt.UTC)
        until = now + ttl
        claims = {
            "token-type": kind,
            "context-identifier-type": "Nip",
            "context-identifier-value": nip,
            "operation-reference-number": reference,
            "epoch": self._epochs.get(kind, 0),
            "exp": until.timestamp(),
            "iat": now.timestamp(),
            "iss": "ksef-standin",
            "jti": secrets.token_hex(8),
        }
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps(claims).encode())
        signature = _b64url(hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{signature}", until

    def claims(self, request: Request, kind: str) -> dict[str, Any] | None:
        """The bearer token's claims when it is a valid unexpired token of ``kind``, else None."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        try:
            head, body, signature = token.split(".")
            expected = _b64url(hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
            claims: dict[str, Any] = json.loads(_unb64url(body))
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(signature, expected) or claims.get("token-type") != kind:
            return None
        if claims["exp"] <= time.time() or claims.get("epoch", 0) != self._epochs.get(kind, 0):
            return None
        return claims

    # ------------------------------------------------------------------ routes
    def _routes(self) -> list[Route]:
        v2 = "/v2"
        return [
            Route(f"{v2}/security/public-key-certificates", self.public_key_certificates, methods=["GET"]),
            Route(f"{v2}/auth/challenge", self.challenge, methods=["POST"]),
            Route(f"{v2}/auth/ksef-token", self.ksef_token, methods=["POST"]),
            Route(f"{v2}/auth/token/redeem", self.redeem, methods=["POST"]),
            Route(f"{v2}/auth/token/refresh", self.refresh, methods=["POST"]),
            Route(f"{v2}/auth/{{reference}}", self.auth_status, methods=["GET"]),
            Route(f"{v2}/sessions/online", self.open_session, methods=["POST"]),
            Route(f"{v2}/sessions/online/{{reference}}/invoices", self.send_invoice, methods=["POST"]),
            Route(f"{v2}/sessions/online/{{reference}}/close", self.close_session, methods=["POST"]),
            Route(f"{v2}/sessions/{{reference}}/invoices/ksef/{{number}}/upo", self.upo_by_number, methods=["GET"]),
            Route(f"{v2}/sessions/{{reference}}/invoices/{{invoice}}/upo", self.upo, methods=["GET"]),
            Route(f"{v2}/sessions/{{reference}}/invoices/{{invoice}}", self.invoice_status, methods=["GET"]),
            Route(f"{v2}/invoices/query/metadata", self.query_metadata, methods=["POST"]),
            Route("/_standin/faults", self.set_faults, methods=["POST"]),
        ]

    async def public_key_certificates(self, request: Request) -> Response:
        listing = []
        for usage, certificate in self.certificates.items():
            der = certificate.public_bytes(serialization.Encoding.DER)
            listing.append(
                {
                    "certificate": b64(der),
                    "certificateId": b64(hashlib.sha256(der).digest()),
                    "publicKeyId": public_key_id(self._keys[usage].public_key()),
                    "validFrom": _iso(certificate.not_valid_before_utc),
                    "validTo": _iso(certificate.not_valid_after_utc),
                    "usage": [usage],
                }
            )
        return JSONResponse(listing)

    async def challenge(self, request: Request) -> Response:
        now = dt.datetime.now(dt.UTC)
        reference = reference_number("CR", now.date())
        with self.lock:
            self._challenges[reference] = int(now.timestamp() * 1000)
        return JSONResponse(
            {
                "challenge": reference,
                "timestamp": _iso(now),
                "timestampMs": self._challenges[reference],
                "clientIp": request.client.host if request.client else "127.0.0.1",
            }
        )

    async def ksef_token(self, request: Request) -> Response:
        body = await request.json()
        nip = body["contextIdentifier"]["value"]
        with self.lock:
            timestamp = self._challenges.pop(body["challenge"], None)
            if timestamp is None:
                return bad_request(request, 21111, "Nieprawidłowe wyzwanie autoryzacyjne.")
            token_key = self._keys[TOKEN_USAGE]
            key_id = body.get("publicKeyId")
            if key_id and key_id != public_key_id(token_key.public_key()):
                return bad_request(
                    request,
                    21470,
                    "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
                    [f"Klucz o identyfikatorze {key_id} nie jest wspierany."],
                )
            code, description, details = 200, "Uwierzytelnianie zakończone sukcesem", []
            failed = "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu"
            try:
                token, _, stamp = (
                    token_key.decrypt(base64.b64decode(body["encryptedToken"]), oaep()).decode().rpartition("|")
                )
            except (ValueError, binascii.Error):
                token, stamp = "", ""
            if not token or self.tokens.get(nip) != token:
                code, description, details = 450, failed, ["Nieprawidłowy token"]
            elif stamp != str(timestamp):
                code, description, details = 450, failed, ["Nieprawidłowy czas tokena"]
            now = dt.datetime.now(dt.UTC)
            reference = reference_number("AU", now.date())
            self._auth[reference] = AuthOperation(
                reference=reference,
                nip=nip,
                started=now,
                code=code,
                description=description,
                details=details,
                token_reference=reference_number("EC", now.date()),
                pending_polls=self.auth_pending_polls,
            )
            token_text, until = self._jwt("OperationToken", nip, reference, dt.timedelta(minutes=10))
        return JSONResponse(
            {"referenceNumber": reference, "authenticationToken": {"token": token_text, "validUntil": _iso(until)}},
            status_code=202,
        )

    def _operation(self, request: Request) -> AuthOperation | None:
        claims = self.claims(request, "OperationToken")
        return self._auth.get(claims["operation-reference-number"]) if claims else None

    async def auth_status(self, request: Request) -> Response:
        with self.lock:
            operation = self._operation(request)
            if operation is None or operation.reference != request.path_params["reference"]:
                return unauthorized(request)
            if operation.pending_polls > 0:
                operation.pending_polls -= 1
                code, description, details = 100, "Uwierzytelnianie w toku", []
            else:
                code, description, details = operation.code, operation.description, operation.details
        status: dict[str, Any] = {"code": code, "description": description}
        if details:
            status["details"] = details
        return JSONResponse(
            {
                "startDate": _iso(operation.started),
                "authenticationMethod": "Token",
                "authenticationMethodInfo": {"category": "Token", "code": "token.ksef", "displayName": "Token KSeF"},
                "status": status,
            }
        )

    async def redeem(self, request: Request) -> Response:
        with self.lock:
            operation = self._operation(request)
            if operation is None:
                return unauthorized(request)
            if operation.redeemed:
                return bad_request(
                    request,
                    21301,
                    "Brak autoryzacji.",
                    [f"Tokeny dla operacji uwierzytelniania {operation.reference} zostały już pobrane."],
                )
            if operation.code != 200 or operation.pending_polls > 0:
                return bad_request(
                    request,
                    21301,
                    "Brak autoryzacji.",
                    [f"Status uwierzytelniania ({operation.code}) nie pozwala na pobranie tokenów."],
                )
            operation.redeemed = True
            access, access_until = self._jwt("access", operation.nip, operation.reference, self.access_ttl)
            refresh, refresh_until = self._jwt("refresh", operation.nip, operation.reference, self.refresh_ttl)
        return JSONResponse(
            {
                "accessToken": {"token": access, "validUntil": _iso(access_until)},
                "refreshToken": {"token": refresh, "validUntil": _iso(refresh_until)},
            }
        )

    async def refresh(self, request: Request) -> Response:
        with self.lock:
            claims = self.claims(request, "refresh")
            if claims is None:
                return unauthorized(request)
            access, until = self._jwt(
                "access", claims["context-identifier-value"], claims["operation-reference-number"], self.access_ttl
            )
        return JSONResponse({"accessToken": {"token": access, "validUntil": _iso(until)}})

    def _session(self, request: Request, claims: dict[str, Any]) -> Session | Response:
        session = self.sessions.get(request.path_params["reference"])
        if session is None or session.nip != claims["context-identifier-value"]:
            reference = request.path_params["reference"]
            return bad_request(
                request,
                21173,
                "Brak sesji o wskazanym numerze referencyjnym.",
                [f"Sesja o numerze referencyjnym {reference} nie została odnaleziona."],
            )
        return session

    async def open_session(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        body = await request.json()
        form, encryption = body["formCode"], body["encryption"]
        if (form["systemCode"], form["schemaVersion"], form["value"]) != ("FA (3)", "1-0E", "FA"):
            return bad_request(
                request, 21405, "Błąd walidacji danych wejściowych.", ["Wskazany kod formularza nie jest wspierany."]
            )
        private = self._keys[SYMMETRIC_KEY_USAGE]
        key_id = encryption.get("publicKeyId")
        if key_id and key_id != public_key_id(private.public_key()):
            return bad_request(
                request,
                21470,
                "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
                [f"Klucz o identyfikatorze {key_id} nie jest wspierany."],
            )
        try:
            key = private.decrypt(base64.b64decode(encryption["encryptedSymmetricKey"]), oaep())
            iv = base64.b64decode(encryption["initializationVector"])
            symmetric = SymmetricKey(key=key, iv=iv) if len(key) == 32 and len(iv) == 16 else None
        except (ValueError, binascii.Error):
            symmetric = None  # its invoices will not decrypt: status 435, as KSeF
        now = dt.datetime.now(dt.UTC)
        reference = reference_number("SO", now.date())
        with self.lock:
            self.sessions[reference] = Session(
                reference=reference,
                nip=claims["context-identifier-value"],
                opened=now,
                valid_until=now + dt.timedelta(hours=12),
                key=symmetric,
                token_reference=claims["operation-reference-number"],
            )
        return JSONResponse(
            {"referenceNumber": reference, "validUntil": _iso(now + dt.timedelta(hours=12))}, status_code=201
        )

    async def close_session(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        with self.lock:
            session = self._session(request, claims)
            if isinstance(session, Response):
                return session
            if session.closed:
                return bad_request(
                    request,
                    21180,
                    "Status sesji nie pozwala na wykonanie operacji.",
                    ["Status sesji 170 uniemożliwia jej zamknięcie."],
                )
            session.closed = True
        return Response(status_code=204)

    async def send_invoice(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        body = await request.json()
        content = base64.b64decode(body["encryptedInvoiceContent"])
        with self.lock:
            session = self._session(request, claims)
            if isinstance(session, Response):
                return session
            now = dt.datetime.now(dt.UTC)
            if len(session.invoices) >= self.session_invoice_limit:
                limit = self.session_invoice_limit
                return bad_request(
                    request,
                    21155,
                    "Przekroczono dozwoloną liczbę faktur w sesji.",
                    [
                        f"Sesja o numerze referencyjnym {session.reference} osiągnęła dozwolony limit liczby faktur {limit}."
                    ],
                )
            if session.closed or session.valid_until <= now:
                return bad_request(
                    request,
                    21180,
                    "Status sesji nie pozwala na wykonanie operacji.",
                    ["Status sesji 170 uniemożliwia wysyłkę faktur."],
                )
            sealed = FileDigest.of(content)
            if sealed.size != body["encryptedInvoiceSize"]:
                return bad_request(
                    request, 21402, "Nieprawidłowy rozmiar pliku.", ["Długość treści nie zgadza się z rozmiarem pliku."]
                )
            if sealed.sha256 != body["encryptedInvoiceHash"]:
                return bad_request(
                    request, 21403, "Nieprawidłowy skrót pliku.", ["Skrót treści nie zgadza się ze skrótem pliku."]
                )
            xml: bytes | None
            try:
                xml = session.key.decrypt(content) if session.key else None
            except ValueError:
                xml = None
            if xml is not None:
                plain = FileDigest.of(xml)
                if plain.size != body["invoiceSize"]:
                    return bad_request(
                        request,
                        21402,
                        "Nieprawidłowy rozmiar pliku.",
                        ["Długość treści nie zgadza się z rozmiarem pliku."],
                    )
                if plain.sha256 != body["invoiceHash"]:
                    return bad_request(
                        request, 21403, "Nieprawidłowy skrót pliku.", ["Skrót treści nie zgadza się ze skrótem pliku."]
                    )
            invoice = Invoice(
                ordinal=len(session.invoices) + 1,
                reference=reference_number("EE", now.date()),
                session=session.reference,
                nip=session.nip,
                received=now,
                digest=FileDigest(sha256=body["invoiceHash"], size=body["invoiceSize"]),
                code=0,
                description="",
                offline=bool(body.get("offlineMode")),
                pending_polls=self.invoice_pending_polls,
            )
            self._process(invoice, session, xml)
            session.invoices.append(invoice.reference)
            self.invoices[invoice.reference] = invoice
        return JSONResponse({"referenceNumber": invoice.reference}, status_code=202)

    def _decide(self, invoice: Invoice, code: int, description: str, *details: str) -> None:
        invoice.code, invoice.description, invoice.details = code, description, list(details)

    def _process(self, invoice: Invoice, session: Session, xml: bytes | None) -> None:
        """KSeF's verification (weryfikacja-faktury.md), decided at once and told after the polls."""
        if xml is None:
            return self._decide(invoice, 435, "Błąd odszyfrowania pliku")
        if self.faults.refuse_next_invoice:
            return self._decide(
                invoice, 450, "Błąd weryfikacji semantyki dokumentu faktury", self.faults.refuse_next_invoice.pop(0)
            )
        problems, root = self._check_xml(xml)
        if problems or root is None:
            return self._decide(invoice, 430, "Błąd weryfikacji pliku faktury", *problems)
        ns = {"fa": FA3_NS}

        def text(path: str) -> str:
            return str(root.findtext(path, default="", namespaces=ns)).strip()

        seller = text("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP")
        invoice.number, invoice.issue_date = text("fa:Fa/fa:P_2"), text("fa:Fa/fa:P_1")
        invoice.invoice_type = text("fa:Fa/fa:RodzajFaktury")
        invoice.amounts = self._amounts(root, ns)
        if seller != session.nip:
            return self._decide(
                invoice,
                410,
                "Nieprawidłowy zakres uprawnień",
                f"Brak uprawnień do wystawienia faktury w imieniu podmiotu {seller}.",
            )
        today = invoice.received.astimezone(WARSAW).date()
        if invoice.issue_date > today.isoformat():
            return self._decide(
                invoice,
                450,
                "Błąd weryfikacji semantyki dokumentu faktury",
                "Data wystawienia faktury (P_1) jest późniejsza niż data przyjęcia dokumentu do systemu KSeF.",
            )
        key = (seller, invoice.invoice_type, invoice.number)
        original = self._accepted.get(key)
        if original is not None:
            self._decide(
                invoice,
                440,
                "Duplikat faktury",
                f"Duplikat faktury. Faktura o numerze KSeF: {original.ksef_number} została już prawidłowo przesłana do systemu w sesji: {original.session}",
            )
            invoice.extensions = {
                "originalSessionReferenceNumber": original.session,
                "originalKsefNumber": original.ksef_number,
            }
            return None
        invoice.ksef_number = ksef_number(seller, today, secrets.token_hex(6).upper())
        invoice.acquired = dt.datetime.now(dt.UTC)
        self._decide(invoice, 200, "Sukces")
        invoice.upo = self._upo(invoice, session)
        self._accepted[key] = invoice
        return None

    def _check_xml(self, xml: bytes) -> tuple[list[str], Any]:
        if xml.startswith(b"\xef\xbb\xbf"):
            return ["Plik faktury zawiera znak BOM: wymagane jest kodowanie UTF-8 bez BOM."], None
        declared = re.match(rb"<\?xml[^>]*encoding=[\"']([^\"']+)", xml)
        if declared and declared.group(1).decode("ascii", "replace").lower() not in ("utf-8", "utf8"):
            return [
                f"Prolog XML wskazuje kodowanie {declared.group(1).decode('ascii', 'replace')}: dozwolone jest tylko UTF-8."
            ], None
        parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=False)
        try:
            root = etree.fromstring(xml, parser)
        except etree.XMLSyntaxError as error:
            return [f"Dokument nie jest poprawnym XML: {error}"], None
        tree = root.getroottree()
        if any(
            isinstance(node, etree._ProcessingInstruction)
            for node in (*root.itersiblings(preceding=True), *root.iter())
        ):
            return ["Dokument zawiera instrukcje przetwarzania XML."], None
        if etree.QName(root).namespace != FA3_NS or etree.QName(root).localname != "Faktura":
            return [f"Dokument nie jest fakturą FA(3) ({{{FA3_NS}}}Faktura)."], None
        form = root.find(f"{{{FA3_NS}}}Naglowek/{{{FA3_NS}}}KodFormularza")
        if form is None or (form.get("kodSystemowy"), form.get("wersjaSchemy"), form.text) != ("FA (3)", "1-0E", "FA"):
            return [
                "Kod formularza faktury nie odpowiada schematowi zadeklarowanemu przy otwarciu sesji (FA (3), 1-0E)."
            ], None
        schema = fa3_schema(self.artefacts) if self.xsd_checked else None
        if schema is not None and not schema.validate(tree):
            return [f"Linia {error.line}: {error.message}" for error in schema.error_log][:20], root
        return [], root

    @staticmethod
    def _amounts(root: Any, ns: dict[str, str]) -> dict[str, Any]:
        def total(prefix: str) -> float:
            return round(
                sum(
                    float(e.text or 0)
                    for e in root.find("fa:Fa", ns)
                    if etree.QName(e).localname.startswith(prefix) and not etree.QName(e).localname.endswith("W")
                ),
                2,
            )

        buyer_nip = root.findtext("fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NIP", default="", namespaces=ns)
        return {
            "net": total("P_13_"),
            "vat": total("P_14_"),
            "gross": float(root.findtext("fa:Fa/fa:P_15", default="0", namespaces=ns)),
            "currency": root.findtext("fa:Fa/fa:KodWaluty", default="PLN", namespaces=ns),
            "seller_name": root.findtext("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:Nazwa", default="", namespaces=ns),
            "buyer": {"type": "Nip", "value": buyer_nip} if buyer_nip else {"type": "None"},
        }

    def _upo(self, invoice: Invoice, session: Session) -> bytes:
        """The invoice's UPO, shaped as faktury/upo/przyklady (UPO v4-3), unsigned."""
        received = invoice.received.astimezone(WARSAW)
        acquired = (invoice.acquired or invoice.received).astimezone(WARSAW)
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<Potwierdzenie xmlns="{UPO_NS}">\n'
            "\t<NazwaPodmiotuPrzyjmujacego>Ministerstwo Finansów</NazwaPodmiotuPrzyjmujacego>\n"
            f"\t<NumerReferencyjnySesji>{session.reference}</NumerReferencyjnySesji>\n"
            "\t<Uwierzytelnienie>\n"
            f"\t\t<IdKontekstu>\n\t\t\t<Nip>{session.nip}</Nip>\n\t\t</IdKontekstu>\n"
            f"\t\t<NumerReferencyjnyTokenaKSeF>{self._auth[session.token_reference].token_reference}</NumerReferencyjnyTokenaKSeF>\n"
            "\t</Uwierzytelnienie>\n"
            "\t<NazwaStrukturyLogicznej>Schemat_FA(3)_v1-0E.xsd</NazwaStrukturyLogicznej>\n"
            "\t<KodFormularza>FA (3)</KodFormularza>\n"
            "\t<Dokument>\n"
            f"\t\t<NipSprzedawcy>{invoice.nip}</NipSprzedawcy>\n"
            f"\t\t<NumerKSeFDokumentu>{invoice.ksef_number}</NumerKSeFDokumentu>\n"
            f"\t\t<NumerFaktury>{escape(invoice.number)}</NumerFaktury>\n"
            f"\t\t<DataWystawieniaFaktury>{invoice.issue_date}</DataWystawieniaFaktury>\n"
            f"\t\t<DataPrzeslaniaDokumentu>{_iso(received)}</DataPrzeslaniaDokumentu>\n"
            f"\t\t<DataNadaniaNumeruKSeF>{_iso(acquired)}</DataNadaniaNumeruKSeF>\n"
            f"\t\t<SkrotDokumentu>{invoice.digest.sha256}</SkrotDokumentu>\n"
            f"\t\t<TrybWysylki>{'Offline' if invoice.offline else 'Online'}</TrybWysylki>\n"
            "\t</Dokument>\n"
            "</Potwierdzenie>\n"
        ).encode()

    async def invoice_status(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        with self.lock:
            session = self._session(request, claims)
            if isinstance(session, Response):
                return session
            invoice = self.invoices.get(request.path_params["invoice"])
            if invoice is None or invoice.session != session.reference:
                return bad_request(
                    request,
                    21405,
                    "Błąd walidacji danych wejściowych.",
                    [f"Faktura o numerze referencyjnym {request.path_params['invoice']} nie została odnaleziona."],
                )
            answer: dict[str, Any] = {
                "ordinalNumber": invoice.ordinal,
                "referenceNumber": invoice.reference,
                "invoicingDate": _iso(invoice.received),
                "invoiceHash": invoice.digest.sha256,
                "invoicingMode": "Offline" if invoice.offline else "Online",
            }
            if invoice.pending_polls > 0:
                invoice.pending_polls -= 1
                answer["status"] = {"code": 150, "description": "Trwa przetwarzanie"}
                return JSONResponse(answer)
            if invoice.number:
                answer["invoiceNumber"] = invoice.number
            status: dict[str, Any] = {"code": invoice.code, "description": invoice.description}
            if invoice.details:
                status["details"] = invoice.details
            if invoice.extensions:
                status["extensions"] = invoice.extensions
            answer["status"] = status
            if invoice.code == 200 and invoice.acquired:
                answer["ksefNumber"] = invoice.ksef_number
                answer["acquisitionDate"] = _iso(invoice.acquired)
                answer["permanentStorageDate"] = _iso(invoice.acquired + dt.timedelta(milliseconds=1))
                answer["upoDownloadUrl"] = f"http://127.0.0.1:{self.port}/_standin/upo/{invoice.reference}"
                answer["upoDownloadUrlExpirationDate"] = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        return JSONResponse(answer)

    def _upo_response(self, request: Request, invoice: Invoice | None) -> Response:
        if invoice is None or invoice.code != 200:
            return bad_request(
                request, 21405, "Błąd walidacji danych wejściowych.", ["UPO dla wskazanej faktury nie jest dostępne."]
            )
        digest = b64(hashlib.sha256(invoice.upo).digest())
        return Response(invoice.upo, media_type="application/xml", headers={"x-ms-meta-hash": digest})

    async def upo(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        with self.lock:
            session = self._session(request, claims)
            if isinstance(session, Response):
                return session
            invoice = self.invoices.get(request.path_params["invoice"])
            return self._upo_response(request, invoice if invoice and invoice.session == session.reference else None)

    async def upo_by_number(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        with self.lock:
            session = self._session(request, claims)
            if isinstance(session, Response):
                return session
            number = request.path_params["number"]
            found = [i for i in self.invoices.values() if i.session == session.reference and i.ksef_number == number]
            return self._upo_response(request, found[0] if found else None)

    async def query_metadata(self, request: Request) -> Response:
        claims = self.claims(request, "access")
        if claims is None:
            return unauthorized(request)
        body = await request.json()
        nip = claims["context-identifier-value"]
        if body["subjectType"] != "Subject1":
            return JSONResponse({"hasMore": False, "isTruncated": False, "invoices": []})
        wanted_number, wanted_seller = body.get("invoiceNumber"), body.get("sellerNip")
        wanted_ksef = body.get("ksefNumber")
        with self.lock:
            found = [
                invoice
                for invoice in self._accepted.values()
                if invoice.nip == nip
                and (wanted_number is None or invoice.number == wanted_number)
                and (wanted_seller is None or invoice.nip == wanted_seller)
                and (wanted_ksef is None or invoice.ksef_number == wanted_ksef)
            ]
            listing = [self._metadata(invoice) for invoice in found]
        return JSONResponse({"hasMore": False, "isTruncated": False, "invoices": listing})

    def _metadata(self, invoice: Invoice) -> dict[str, Any]:
        acquired = invoice.acquired or invoice.received
        amounts = invoice.amounts
        return {
            "ksefNumber": invoice.ksef_number,
            "invoiceNumber": invoice.number,
            "issueDate": invoice.issue_date,
            "invoicingDate": _iso(invoice.received),
            "acquisitionDate": _iso(acquired),
            "permanentStorageDate": _iso(acquired + dt.timedelta(milliseconds=1)),
            "seller": {"nip": invoice.nip, "name": amounts.get("seller_name") or None},
            "buyer": {"identifier": amounts.get("buyer", {"type": "None"})},
            "netAmount": amounts.get("net", 0.0),
            "grossAmount": amounts.get("gross", 0.0),
            "vatAmount": amounts.get("vat", 0.0),
            "currency": amounts.get("currency", "PLN"),
            "invoicingMode": "Offline" if invoice.offline else "Online",
            "invoiceType": INVOICE_TYPES.get(invoice.invoice_type, "Vat"),
            "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
            "isSelfInvoicing": False,
            "hasAttachment": False,
            "invoiceHash": invoice.digest.sha256,
        }

    async def set_faults(self, request: Request) -> Response:
        """The faults over HTTP, for a stand-in in its own process: the Faults fields,
        ``expire`` ("access" or "refresh") and ``down_seconds`` (down, then up again)."""
        body = await request.json()
        with self.lock:
            for name in ("fail_next", "fail_status", "rate_limit_next", "retry_after", "delay"):
                if name in body:
                    setattr(self.faults, name, body[name])
            if "refuse_next_invoice" in body:
                self.faults.refuse_next_invoice.append(str(body["refuse_next_invoice"]))
            if body.get("expire") in self._epochs:
                self._epochs[body["expire"]] += 1
        if body.get("down_seconds"):
            # stopping waits for this very answer to be sent, so another thread does it
            threading.Thread(target=self._down_for, args=(float(body["down_seconds"]),), daemon=True).start()
        return JSONResponse({"ok": True})

    def _down_for(self, seconds: float) -> None:
        self.down()
        time.sleep(seconds)
        self.up()


def _now_text() -> str:
    return _iso(dt.datetime.now(dt.UTC))


def problems_wanted(request: Request) -> bool:
    return request.headers.get("x-error-format", "").lower() == "problem-details"


def bad_request(request: Request, code: int, description: str, details: list[str] | None = None) -> Response:
    """400 in the shape the caller asked for: problem details, or the older ExceptionResponse."""
    trace = secrets.token_hex(16)
    if problems_wanted(request):
        return JSONResponse(
            {
                "title": "Bad Request",
                "status": 400,
                "instance": request.url.path,
                "detail": "Żądanie jest nieprawidłowe.",
                "errors": [{"code": code, "description": description, "details": details or []}],
                "timestamp": _now_text(),
                "traceId": trace,
            },
            status_code=400,
            media_type="application/problem+json",
        )
    return JSONResponse(
        {
            "exception": {
                "exceptionDetailList": [
                    {"exceptionCode": code, "exceptionDescription": description, "details": details or []}
                ],
                "referenceNumber": reference_number("EX", dt.datetime.now(dt.UTC).date()),
                "serviceCode": trace,
                "serviceCtx": "ksef-standin",
                "serviceName": "ksef-standin",
                "timestamp": _now_text(),
            }
        },
        status_code=400,
    )


def unauthorized(request: Request, detail: str = "Wymagane jest uwierzytelnienie.") -> Response:
    return JSONResponse(
        {
            "title": "Unauthorized",
            "status": 401,
            "detail": detail,
            "instance": request.url.path,
            "traceId": secrets.token_hex(16),
            "timestamp": _now_text(),
        },
        status_code=401,
        media_type="application/problem+json",
    )


def too_many(request: Request, retry_after: int) -> Response:
    detail = f"Przekroczono limit żądań. Spróbuj ponownie po {retry_after} sekundach."
    headers = {"Retry-After": str(retry_after)}
    if problems_wanted(request):
        body: dict[str, Any] = {
            "title": "Too Many Requests",
            "status": 429,
            "instance": request.url.path,
            "detail": detail,
            "timestamp": _now_text(),
            "traceId": secrets.token_hex(16),
        }
        return JSONResponse(body, status_code=429, headers=headers, media_type="application/problem+json")
    return JSONResponse(
        {"status": {"code": 429, "description": "Too Many Requests", "details": [detail]}},
        status_code=429,
        headers=headers,
    )


class _Gate:
    """ASGI middleware: faults first, then the request against the API description, then the
    handler, then its answer against the description (mismatches kept, not hidden)."""

    def __init__(self, app: Callable[..., Any], standin: StandIn) -> None:
        self.app = app
        self.standin = standin

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        standin = self.standin
        with standin.lock:
            faults = standin.faults
            delay = faults.delay
            fault: Response | None = None
            if faults.fail_next > 0:
                faults.fail_next -= 1
                fault = JSONResponse(
                    {"title": "Service Unavailable", "status": faults.fail_status},
                    status_code=faults.fail_status,
                    media_type="application/problem+json",
                )
            elif faults.rate_limit_next > 0:
                faults.rate_limit_next -= 1
                fault = too_many(request, faults.retry_after)
        if delay:
            await asyncio.sleep(delay)
        response = fault or self._check(request, body)
        if response is None:
            response = await self._handle(scope, body)
        elif fault is None:
            self._check_response(request, body, response)
        with standin.lock:
            standin.requests.append((request.method, scope["path"], response.status_code))
        await response(scope, receive, send)

    def _spec_request(self, request: Request, body: bytes) -> MockRequest:
        return MockRequest(
            SPEC_HOST,
            request.method.lower(),
            request.url.path,
            args=dict(request.query_params),
            headers=dict(request.headers),
            data=body or None,
            content_type=request.headers.get("content-type", "application/json").split(";")[0],
        )

    def _check(self, request: Request, body: bytes) -> Response | None:
        try:
            openapi().validate_request(self._spec_request(request, body))
        except SecurityValidationError:
            return unauthorized(request)
        except (PathNotFound, OperationNotFound):
            return JSONResponse(
                {
                    "title": "Not Found",
                    "status": 404,
                    "detail": f"{request.method} {request.url.path} is not in the API description",
                },
                status_code=404,
            )
        except OpenAPIError as error:
            cause = error.__cause__
            errors = getattr(cause, "schema_errors", None) or ()
            details = [str(getattr(e, "message", e)) for e in errors] or [str(error)]
            return bad_request(request, 21405, "Błąd walidacji danych wejściowych.", details)
        return None

    async def _handle(self, scope: dict[str, Any], body: bytes) -> Response:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        captured: dict[str, Any] = {"headers": [], "body": b""}

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, replay, keep)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in captured["headers"]}
        headers.pop("content-length", None)
        response = Response(captured["body"], status_code=captured["status"], headers=headers)
        self._check_response(Request(scope), body, response)
        return response

    def _check_response(self, request: Request, body: bytes, response: Response) -> None:
        content_type = (response.headers.get("content-type") or "application/json").split(";")[0]
        answer = MockResponse(
            bytes(response.body),
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type,
        )
        try:
            openapi().validate_response(self._spec_request(request, body), answer)
        except (PathNotFound, OperationNotFound):
            return  # a request outside the description was answered 404: nothing to hold the answer to
        except OpenAPIError as error:
            errors = getattr(error.__cause__, "schema_errors", None) or ()
            detail = "; ".join(str(getattr(e, "message", e)) for e in errors) or str(error)
            with self.standin.lock:
                self.standin.response_errors.append(
                    f"{request.method} {request.url.path} {response.status_code}: {detail}"
                )


def main() -> None:
    """``python -m tests.ksef_standin.server [--port N]``: the stand-in in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nip", default=TEST_NIP)
    parser.add_argument("--token", default=TEST_TOKEN)
    arguments = parser.parse_args()
    standin = StandIn(tokens={arguments.nip: arguments.token})
    print(standin.start(arguments.port), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    standin.stop()


if __name__ == "__main__":
    main()
