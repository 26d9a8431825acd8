"""An async client for the parts of the KSeF 2.0 API that jobstream uses.

It follows the Ministry's description (open-api.json) and guide:
- authentication with a KSeF token: ``POST /auth/challenge``, the token and the challenge's
  timestamp encrypted with the ``KsefTokenEncryption`` key (``POST /auth/ksef-token``),
  ``GET /auth/{referenceNumber}`` until it succeeds, ``POST /auth/token/redeem`` for the
  access and refresh tokens; ``POST /auth/token/refresh`` when the access token has expired
  (by its ``validUntil``, or a 401), a whole new authentication when the refresh token has;
- the Ministry's keys from ``GET /security/public-key-certificates`` (or a pinned file);
- an online session: ``POST /sessions/online`` with the AES key wrapped by the
  ``SymmetricKeyEncryption`` key, ``POST /sessions/online/{ref}/invoices`` per invoice,
  ``POST /sessions/online/{ref}/close``;
- ``GET /sessions/{ref}/invoices/{invoiceRef}`` for an invoice's status and
  ``.../upo`` for its UPO; a duplicate's UPO by its KSeF number.

The client does not retry. Each call either returns or raises one of:
- ``Transient``: the network, a 5xx, a 429 (with ``Retry-After``), KSeF's own "try again"
  statuses, a closed session (``SessionClosed``): the caller retries with its backoff;
- ``Refused``: KSeF refused the request or the invoice for what it says (its code, reason
  and details): retrying the same thing cannot help;
- ``Duplicate``: KSeF already holds this seller's invoice of this type and number; the
  original's KSeF number and session come with it;
- ``AuthExpired``: no access could be had with the configured KSeF token (it was refused,
  revoked, or lacks the permissions).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography import x509

from invoicer.ksef.crypto import (
    SYMMETRIC_KEY_USAGE,
    TOKEN_USAGE,
    FileDigest,
    MinistryKey,
    SymmetricKey,
    b64,
    certificate_key,
    encrypt_ksef_token,
    public_key_id,
)

TEST_URL = "https://api-test.ksef.mf.gov.pl/v2"
KSEF_NUMBER = re.compile(r"\b\d{10}-\d{8}-[0-9A-F]{6}-?[0-9A-F]{6}-[0-9A-F]{2}\b")
# invoice statuses (SessionInvoiceStatusResponse.status): in progress, and KSeF's "try again"
PENDING_STATUSES = frozenset({100, 150})
RETRY_STATUSES = frozenset({405, 500, 550})
DUPLICATE_STATUS = 440
# 400 codes that mean another session is needed: not found, its status forbids sending, full
SESSION_GONE_CODES = frozenset({21173, 21180, 21155})
REFRESH_MARGIN = timedelta(seconds=5)
AUTH_PATIENCE = 60.0  # seconds of "authentication in progress" before giving up for now


class KsefError(Exception):
    """Anything KSeF or the way to it answered other than what was asked for."""


class Transient(KsefError):
    """Worth trying again later: ``retry_after`` seconds when KSeF said so."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason if retry_after is None else f"{reason} (retry after {retry_after:g} s)")
        self.reason = reason
        self.retry_after = retry_after


class SessionClosed(Transient):
    """The online session is closed, expired, full or unknown to KSeF: open a new one and send again."""


class Refused(KsefError):
    """KSeF refused the request or the invoice for its content, with its code and reasons."""

    def __init__(self, code: int, reason: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code} {reason}" + (f": {'; '.join(details)}" if details else ""))
        self.code = code
        self.reason = reason
        self.details = details


class Duplicate(KsefError):
    """KSeF holds this invoice already (same seller NIP, invoice type and number).

    ``ksef_number`` is the original's number when KSeF gave it (it does, in the status's
    ``extensions``), else empty: ``KsefClient.find_ksef_number`` looks it up.
    """

    def __init__(self, ksef_number: str, original_session: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(f"duplicate of {ksef_number or 'an invoice already in KSeF'}")
        self.ksef_number = ksef_number
        self.original_session = original_session
        self.details = details


class AuthExpired(KsefError):
    """No access token could be had: the KSeF token was refused, revoked or lacks permissions."""


@dataclass(frozen=True)
class KsefConfig:
    """Where KSeF is and who we are there (KSEF_URL, KSEF_NIP, KSEF_TOKEN, KSEF_PUBLIC_KEY_FILE)."""

    url: str
    nip: str
    token: str = field(repr=False)
    public_key_file: str = ""
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KsefConfig | None:
        """The configuration, None when KSEF_URL is not set; SystemExit naming what is missing."""
        url = env.get("KSEF_URL", "").strip()
        if not url:
            return None
        nip, token = env.get("KSEF_NIP", "").strip(), env.get("KSEF_TOKEN", "").strip()
        missing = [name for name, value in (("KSEF_NIP", nip), ("KSEF_TOKEN", token)) if not value]
        if missing:
            raise SystemExit(f"KSEF_URL is set but {' and '.join(missing)} not: KSeF needs both")
        if not re.fullmatch(r"\d{10}", nip):
            raise SystemExit(f"KSEF_NIP {nip!r} is not a NIP: ten digits")
        key_file = env.get("KSEF_PUBLIC_KEY_FILE", "").strip()
        if key_file and not Path(key_file).is_file():
            raise SystemExit(f"KSEF_PUBLIC_KEY_FILE {key_file!r} is not a file")
        return cls(url=url.rstrip("/"), nip=nip, token=token, public_key_file=key_file)


@dataclass(frozen=True)
class Tokens:
    """The access token and the refresh token, each with KSeF's ``validUntil``."""

    access: str = field(repr=False)
    access_valid_until: datetime
    refresh: str = field(repr=False)
    refresh_valid_until: datetime


@dataclass(frozen=True)
class FormCode:
    """The schema of a session's invoices (OpenOnlineSessionRequest.formCode)."""

    system_code: str
    schema_version: str
    value: str


FA3 = FormCode(system_code="FA (3)", schema_version="1-0E", value="FA")


@dataclass(frozen=True)
class OnlineSession:
    """An open online session and the AES key its invoices are encrypted with."""

    reference_number: str
    valid_until: datetime
    key: SymmetricKey = field(repr=False)
    form: FormCode = FA3


@dataclass(frozen=True)
class SentInvoice:
    """An invoice KSeF took for processing: its reference in the session, and its digest."""

    session_reference_number: str
    reference_number: str
    invoice: FileDigest


@dataclass(frozen=True)
class Pending:
    """Still being processed (status 100 or 150)."""

    code: int
    description: str


@dataclass(frozen=True)
class Accepted:
    """Accepted: the KSeF number and when it was given (``acquisitionDate``)."""

    ksef_number: str
    acquired_at: datetime
    session_reference_number: str
    reference_number: str


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _errors(response: httpx.Response) -> list[tuple[int, str, tuple[str, ...]]]:
    """(code, description, details) from either of KSeF's error shapes, or the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    found: list[tuple[int, str, tuple[str, ...]]] = []
    if isinstance(body, dict):
        # application/problem+json (BadRequestProblemDetails), asked for with X-Error-Format
        for error in body.get("errors") or ():
            found.append(
                (int(error.get("code", 0)), str(error.get("description", "")), tuple(error.get("details") or ()))
            )
        # application/json (ExceptionResponse), the older shape
        for error in (body.get("exception") or {}).get("exceptionDetailList") or ():
            found.append(
                (
                    int(error.get("exceptionCode", 0)),
                    str(error.get("exceptionDescription", "")),
                    tuple(error.get("details") or ()),
                )
            )
        if not found and ("detail" in body or "title" in body):
            detail = str(body.get("detail") or "")
            reason = str(body.get("reasonCode") or body.get("title") or response.reason_phrase)
            found.append((response.status_code, reason, (detail,) if detail else ()))
    if not found:
        found.append((response.status_code, response.reason_phrase or "HTTP error", (response.text[:500],)))
    return found


def _json(response: httpx.Response) -> Any:
    """The answer's JSON; ``Transient`` when it is none (a proxy's page, a cut-off answer)."""
    try:
        return response.json()
    except ValueError as error:
        raise Transient(
            f"KSeF's answer to {response.request.method} {response.request.url.path} is not JSON"
        ) from error


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


Auth = Literal["access", "none"]


class KsefClient:
    """One seller's connection to KSeF. Use ``async with KsefClient(config) as ksef: ...``.

    Authentication happens on the first call that needs it, and again whenever the tokens
    expire; ``authenticate()`` does it at once. Calls may run concurrently.
    """

    def __init__(
        self,
        config: KsefConfig,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_interval: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self._now = now
        self._poll = poll_interval
        self._http = httpx.AsyncClient(
            base_url=config.url,
            timeout=config.timeout,
            transport=transport,
            headers={"Accept": "application/json", "X-Error-Format": "problem-details"},
        )
        self._tokens: Tokens | None = None
        self._auth_lock = asyncio.Lock()
        self._keys: list[MinistryKey] | None = None
        self._pinned = Path(config.public_key_file).read_bytes() if config.public_key_file else b""

    async def __aenter__(self) -> KsefClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ HTTP
    async def _send(self, method: str, path: str, *, bearer: str | None = None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            return await self._http.request(method, path, json=body, headers=headers)
        except httpx.TimeoutException as error:
            raise Transient(f"KSeF did not answer {method} {path} in time ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise Transient(
                f"KSeF could not be reached for {method} {path}: {error or type(error).__name__}"
            ) from error

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        """Map a non-2xx answer to the client's exceptions (401 is the caller's to handle)."""
        status = response.status_code
        if status < 300:
            return
        if status == 429:
            raise Transient(f"KSeF's rate limit for {what}", _retry_after(response))
        if status >= 500:
            raise Transient(f"KSeF answered {status} to {what}", _retry_after(response))
        code, reason, details = _errors(response)[0]
        if status == 401:
            raise AuthExpired(f"KSeF refused the access token for {what}: {'; '.join(details) or reason}")
        if code in SESSION_GONE_CODES:
            raise SessionClosed(f"{what}: {code} {reason} {'; '.join(details)}".strip())
        if status in (400, 403, 410, 413, 415, 422):
            raise Refused(code, reason, details)
        raise Transient(f"KSeF answered {status} to {what}: {reason} {'; '.join(details)}".strip())

    async def _call(
        self, method: str, path: str, what: str, *, body: Any = None, auth: Auth = "access"
    ) -> httpx.Response:
        """One request; with the access token, a 401 refreshes it (or authenticates anew) once."""
        if auth == "none":
            response = await self._send(method, path, body=body)
            self._raise_for(response, what)
            return response
        tokens = await self._access()
        response = await self._send(method, path, bearer=tokens.access, body=body)
        if response.status_code == 401:
            tokens = await self._renew(tokens)
            response = await self._send(method, path, bearer=tokens.access, body=body)
        self._raise_for(response, what)
        return response

    # ------------------------------------------------------------------ keys
    async def public_keys(self) -> list[MinistryKey]:
        """The Ministry's public keys: from KSEF_PUBLIC_KEY_FILE when it is the endpoint's JSON,
        else from ``GET /security/public-key-certificates``, kept to the pinned PEM certificates'
        keys when KSEF_PUBLIC_KEY_FILE holds those."""
        if self._keys is None:
            pinned = self._pinned
            if pinned.lstrip().startswith(b"["):
                keys = parse_certificates(json.loads(pinned))
            else:
                response = await self._call("GET", "/security/public-key-certificates", "the public keys", auth="none")
                keys = parse_certificates(_json(response))
                if pinned:
                    allowed = {public_key_id(certificate_key(c)) for c in x509.load_pem_x509_certificates(pinned)}
                    keys = [
                        key for key in keys if public_key_id(key.key) in allowed
                    ]  # the key itself, not its claimed id
            self._keys = keys
        return self._keys

    async def _key(self, usage: str) -> MinistryKey:
        now = self._now()
        usable = [key for key in await self.public_keys() if usage in key.usage and key.valid_at(now)]
        if not usable:
            self._keys = None  # fetched again next time: KSeF may publish a new one
            raise Transient(f"no Ministry public key for {usage} valid now (KSEF_PUBLIC_KEY_FILE pins others?)")
        return max(usable, key=lambda key: key.valid_from)

    # ------------------------------------------------------------------ auth
    async def authenticate(self) -> Tokens:
        """Authenticate anew with the KSeF token: challenge, encrypted token, status, redeem."""
        challenge = _json(await self._call("POST", "/auth/challenge", "the auth challenge", auth="none"))
        key = await self._key(TOKEN_USAGE)
        request = {
            "challenge": challenge["challenge"],
            "contextIdentifier": {"type": "Nip", "value": self.config.nip},
            "encryptedToken": encrypt_ksef_token(key.key, self.config.token, int(challenge["timestampMs"])),
            "publicKeyId": key.public_key_id,
        }
        response = await self._send("POST", "/auth/ksef-token", body=request)
        if response.status_code == 400:
            code, reason, details = _errors(response)[0]
            raise AuthExpired(f"KSeF refused the KSeF token: {code} {reason} {'; '.join(details)}".strip())
        self._raise_for(response, "the KSeF token")
        started = _json(response)
        operation, reference = started["authenticationToken"]["token"], started["referenceNumber"]
        delay, waited = self._poll, 0.0
        while True:
            response = await self._send("GET", f"/auth/{reference}", bearer=operation)
            self._raise_for(response, "the authentication's status")
            status = _json(response)["status"]
            code = int(status["code"])
            if code == 200:
                break
            if code in RETRY_STATUSES:
                raise Transient(f"KSeF's authentication ended {code} {status.get('description', '')}")
            if code != 100:
                said = "; ".join(status.get("details") or ())
                raise AuthExpired(f"KSeF refused the authentication: {code} {status.get('description', '')} {said}")
            if waited >= AUTH_PATIENCE:
                raise Transient(f"KSeF's authentication is still in progress after {AUTH_PATIENCE:g} s")
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
        response = await self._send("POST", "/auth/token/redeem", bearer=operation)
        self._raise_for(response, "the tokens")
        pair = _json(response)
        self._tokens = Tokens(
            access=pair["accessToken"]["token"],
            access_valid_until=_when(pair["accessToken"]["validUntil"]),
            refresh=pair["refreshToken"]["token"],
            refresh_valid_until=_when(pair["refreshToken"]["validUntil"]),
        )
        return self._tokens

    async def _refresh(self, tokens: Tokens) -> Tokens:
        response = await self._send("POST", "/auth/token/refresh", bearer=tokens.refresh)
        if response.status_code in (400, 401):
            return await self.authenticate()
        self._raise_for(response, "the token's refresh")
        access = _json(response)["accessToken"]
        self._tokens = Tokens(
            access=access["token"],
            access_valid_until=_when(access["validUntil"]),
            refresh=tokens.refresh,
            refresh_valid_until=tokens.refresh_valid_until,
        )
        return self._tokens

    async def _access(self) -> Tokens:
        """Valid tokens: the ones held, refreshed or authenticated anew as their expiry says."""
        async with self._auth_lock:
            tokens, now = self._tokens, self._now()
            if tokens is None or tokens.refresh_valid_until - REFRESH_MARGIN <= now:
                return await self.authenticate()
            if tokens.access_valid_until - REFRESH_MARGIN <= now:
                return await self._refresh(tokens)
            return tokens

    async def _renew(self, rejected: Tokens) -> Tokens:
        """After a 401: refresh (once per rejected token, however many calls saw it)."""
        async with self._auth_lock:
            if self._tokens is not None and self._tokens.access != rejected.access:
                return self._tokens  # another call renewed them meanwhile
            return await self._refresh(rejected)

    # ------------------------------------------------------------------ sessions
    async def open_online_session(self, form: FormCode = FA3) -> OnlineSession:
        """Open an online session for invoices of ``form`` with a fresh AES key."""
        key = await self._key(SYMMETRIC_KEY_USAGE)
        symmetric = SymmetricKey.new()
        body = {
            "formCode": {"systemCode": form.system_code, "schemaVersion": form.schema_version, "value": form.value},
            "encryption": {
                "encryptedSymmetricKey": symmetric.wrapped(key.key),
                "initializationVector": b64(symmetric.iv),
                "publicKeyId": key.public_key_id,
            },
        }
        opened = _json(await self._call("POST", "/sessions/online", "the online session", body=body))
        return OnlineSession(
            reference_number=opened["referenceNumber"],
            valid_until=_when(opened["validUntil"]),
            key=symmetric,
            form=form,
        )

    async def send_invoice(self, session: OnlineSession, xml: bytes, *, offline: bool = False) -> SentInvoice:
        """Send one invoice's XML, encrypted with the session's key, with both files' digests."""
        encrypted = session.key.encrypt(xml)
        plain, sealed = FileDigest.of(xml), FileDigest.of(encrypted)
        body = {
            "invoiceHash": plain.sha256,
            "invoiceSize": plain.size,
            "encryptedInvoiceHash": sealed.sha256,
            "encryptedInvoiceSize": sealed.size,
            "encryptedInvoiceContent": b64(encrypted),
            "offlineMode": offline,
        }
        path = f"/sessions/online/{session.reference_number}/invoices"
        sent = _json(await self._call("POST", path, "the invoice", body=body))
        return SentInvoice(
            session_reference_number=session.reference_number, reference_number=sent["referenceNumber"], invoice=plain
        )

    async def close_session(self, session: OnlineSession | str) -> None:
        """Close the session (KSeF then makes the session's collective UPO)."""
        reference = session if isinstance(session, str) else session.reference_number
        await self._call("POST", f"/sessions/online/{reference}/close", "closing the session")

    # ------------------------------------------------------------------ status and UPO
    async def invoice_status(self, session_reference_number: str, reference_number: str) -> Pending | Accepted:
        """The invoice's status: ``Pending`` or ``Accepted``; raises ``Duplicate``, ``Refused``
        (KSeF's code, description and details) or ``Transient`` for the statuses that say so."""
        path = f"/sessions/{session_reference_number}/invoices/{reference_number}"
        answer = _json(await self._call("GET", path, "the invoice's status"))
        status = answer["status"]
        code, description = int(status["code"]), str(status.get("description", ""))
        details = tuple(status.get("details") or ())
        if code in PENDING_STATUSES:
            return Pending(code=code, description=description)
        if code == 200:
            acquired = answer.get("acquisitionDate") or answer["invoicingDate"]
            return Accepted(
                ksef_number=answer["ksefNumber"],
                acquired_at=_when(acquired),
                session_reference_number=session_reference_number,
                reference_number=reference_number,
            )
        if code == DUPLICATE_STATUS:
            extensions = status.get("extensions") or {}
            number = extensions.get("originalKsefNumber") or ""
            if not number:
                found = KSEF_NUMBER.search(" ".join(details))
                number = found.group(0) if found else ""
            return_session = extensions.get("originalSessionReferenceNumber") or ""
            raise Duplicate(number, return_session, details)
        if code in RETRY_STATUSES:
            raise Transient(f"KSeF's processing ended {code} {description} {'; '.join(details)}".strip())
        raise Refused(code, description, details)

    async def wait_for_invoice(self, sent: SentInvoice, *, give_up_after: float = 60.0) -> Accepted:
        """Poll the invoice's status until it is decided; ``Transient`` when KSeF still
        processes it after ``give_up_after`` seconds of polling."""
        delay, waited = self._poll, 0.0
        while True:
            status = await self.invoice_status(sent.session_reference_number, sent.reference_number)
            if isinstance(status, Accepted):
                return status
            if waited >= give_up_after:
                raise Transient(f"KSeF still processes the invoice after {give_up_after:g} s: {status.description}")
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)

    async def upo(self, session_reference_number: str, reference_number: str) -> bytes:
        """The accepted invoice's UPO (urzędowe poświadczenie odbioru), XML as KSeF signed it."""
        path = f"/sessions/{session_reference_number}/invoices/{reference_number}/upo"
        return await self._upo(path)

    async def upo_by_ksef_number(self, session_reference_number: str, ksef_number: str) -> bytes:
        """An invoice's UPO by its KSeF number, in the session it was accepted in (a duplicate's original)."""
        return await self._upo(f"/sessions/{session_reference_number}/invoices/ksef/{ksef_number}/upo")

    async def _upo(self, path: str) -> bytes:
        response = await self._call("GET", path, "the UPO")
        expected = response.headers.get("x-ms-meta-hash")
        if expected and b64(hashlib.sha256(response.content).digest()) != expected:
            raise Transient("the UPO arrived damaged: its SHA-256 differs from x-ms-meta-hash")
        return response.content

    async def find_ksef_number(self, invoice_number: str, issue_date: date) -> Accepted | None:
        """The KSeF number of this seller's invoice ``invoice_number`` issued on ``issue_date``,
        from ``POST /invoices/query/metadata``; None when KSeF knows no such invoice."""
        start = datetime(issue_date.year, issue_date.month, issue_date.day, tzinfo=UTC) - timedelta(days=1)
        body = {
            "subjectType": "Subject1",
            "dateRange": {
                "dateType": "Issue",
                "from": start.isoformat(),
                "to": (start + timedelta(days=3)).isoformat(),
            },
            "invoiceNumber": invoice_number,
            "sellerNip": self.config.nip,
        }
        found = _json(await self._call("POST", "/invoices/query/metadata", "the invoice's metadata", body=body))
        for invoice in found.get("invoices") or ():
            if invoice.get("invoiceNumber") == invoice_number and invoice.get("issueDate") == issue_date.isoformat():
                return Accepted(
                    ksef_number=invoice["ksefNumber"],
                    acquired_at=_when(invoice["acquisitionDate"]),
                    session_reference_number="",
                    reference_number="",
                )
        return None


def parse_certificates(listing: Any) -> list[MinistryKey]:
    """``GET /security/public-key-certificates``'s answer as keys (certificates that fail to parse are skipped)."""
    keys = []
    for entry in listing if isinstance(listing, list) else ():
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(entry["certificate"]))
            key = certificate_key(certificate)
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue
        keys.append(
            MinistryKey(
                public_key_id=entry.get("publicKeyId") or public_key_id(key),
                key=key,
                usage=frozenset(entry.get("usage") or ()),
                valid_from=_when(entry["validFrom"]),
                valid_to=_when(entry["validTo"]),
            )
        )
    return keys
