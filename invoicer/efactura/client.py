"""A client of ANAF's RO e-Factura REST API, the calls the uploader makes.

It follows ANAF's published API descriptions for the e-Factura web services
("Servicii web e-Factura", anaf.ro, servicii_web_anaf; the OpenAPI pages of
``upload``, ``stareMesaj``, ``descarcare`` and ``listaMesajeFactura`` under
https://mfinante.gov.ro/web/efactura/informatii-tehnice), OAuth2 bearer token:

- ``POST {base}/upload?standard=UBL|CN&cif=<seller CIF digits>`` (``/uploadb2c`` for a
  consumer), body the XML as text/plain: answers ``<header
  xmlns="mfp:anaf:dgti:spv:respUploadFisier:v1" ExecutionStatus="0" index_incarcare="..."
  dateResponse="YYYYMMDDHHMM"/>``, or ``ExecutionStatus="1"`` with ``<Errors
  errorMessage="..."/>`` children (document refused as sent: wrong standard, not XML, ...);
- ``GET {base}/stareMesaj?id_incarcare=<index>``: ``<header
  xmlns="mfp:anaf:dgti:efactura:stareMesajFactura:v1" stare="ok|nok|in prelucrare|XML cu
  erori nepreluat de sistem" id_descarcare="..."/>``, or ``<Errors errorMessage=.../>``;
- ``GET {base}/descarcare?id=<id_descarcare>``: a ZIP with the invoice and ANAF's signature,
  or for ``nok`` the error list (``mfp:anaf:dgti:efactura:raspunsValidareFactura:v1``,
  ``<Error errorMessage=.../>``) and its signature;
- ``GET {base}/listaMesajeFactura?zile=N&cif=<cif>`` (N from 1 to 60): JSON ``{"mesaje":
  [{"data_creare", "cif", "id_solicitare", "detalii", "tip", "id"}], ...}`` or ``{"eroare":
  "..."}``; ``id_solicitare`` is the upload index, ``id`` the download id, ``tip`` ``FACTURA
  TRIMISA`` for an accepted upload of the seller's, ``ERORI FACTURA`` for a refused one.

Test environment: https://api.anaf.ro/test/FCTEL/rest; production:
https://api.anaf.ro/prod/FCTEL/rest. The access token comes from ANAF's OAuth2 server
(logincert.anaf.ro, with the company's qualified certificate) and is given as a setting;
this client does not refresh it.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import httpx
import msgspec
from lxml import etree

ROMANIA = ZoneInfo("Europe/Bucharest")
TEST_URL = "https://api.anaf.ro/test/FCTEL/rest"
PRODUCTION_URL = "https://api.anaf.ro/prod/FCTEL/rest"
NS_UPLOAD = "mfp:anaf:dgti:spv:respUploadFisier:v1"
NS_STATE = "mfp:anaf:dgti:efactura:stareMesajFactura:v1"
NS_ANSWER = "mfp:anaf:dgti:efactura:raspunsValidareFactura:v1"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
LIST_DAYS = 60  # listaMesajeFactura looks back at most this many days


class EfacturaError(Exception):
    pass


class Transient(EfacturaError):
    """Not done now, tried again later. ``uncertain``: the request was sent and no answer
    came (a timeout after sending, a 5xx), so an upload may have reached ANAF."""

    def __init__(self, reason: str, retry_after: float | None = None, uncertain: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retry_after, self.uncertain = reason, retry_after, uncertain


class Refused(EfacturaError):
    """ANAF refused the request for what it carries (ExecutionStatus 1, or errors)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class Upload(msgspec.Struct, frozen=True):
    index: str
    at: datetime  # UTC


class State(msgspec.Struct, frozen=True):
    state: Literal["ok", "nok", "in prelucrare", "XML cu erori nepreluat de sistem"]
    download_id: str = ""


class Message(msgspec.Struct, frozen=True):
    """One of listaMesajeFactura's messages."""

    id: str  # the download id
    id_solicitare: str  # the upload index
    tip: str
    detalii: str
    data_creare: str  # YYYYMMDDHHMM, Romanian time
    cif: str = ""


class MessageList(msgspec.Struct, frozen=True):
    mesaje: list[Message] = []
    eroare: str = ""


class EfacturaConfig(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # e.g. https://api.anaf.ro/test/FCTEL/rest
    token: str
    timeout: float = 30.0


def anaf_time(text: str) -> datetime:
    """ANAF's YYYYMMDDHHMM (Romanian time) in UTC."""
    return datetime.strptime(text, "%Y%m%d%H%M").replace(tzinfo=ROMANIA).astimezone(UTC)


def _xml(response: httpx.Response, what: str) -> etree._Element:
    try:
        return etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise Transient(f"ANAF's answer to {what} is not XML: {error}") from error


def _errors(root: etree._Element) -> list[str]:
    return [e.get("errorMessage", "") for e in root.iter() if etree.QName(e).localname in ("Errors", "Error")]


def answer_messages(answer: bytes) -> list[str]:
    """ANAF's error messages in a downloaded answer (the ZIP of a refused upload)."""
    try:
        with zipfile.ZipFile(io.BytesIO(answer)) as archive:
            messages: list[str] = []
            for name in archive.namelist():
                if name.startswith("semnatura"):
                    continue
                root = etree.fromstring(archive.read(name), etree.XMLParser(resolve_entities=False, no_network=True))
                messages += _errors(root)
            return messages
    except (zipfile.BadZipFile, etree.XMLSyntaxError) as error:
        return [f"ANAF's answer could not be read: {error}"]


def invoice_number(answer: bytes) -> str:
    """The invoice's number (cbc:ID) in a downloaded answer of an accepted upload, or ""."""
    try:
        with zipfile.ZipFile(io.BytesIO(answer)) as archive:
            for name in archive.namelist():
                if name.startswith("semnatura"):
                    continue
                root = etree.fromstring(archive.read(name), etree.XMLParser(resolve_entities=False, no_network=True))
                found = root.find(f"{{{CBC}}}ID")
                if found is not None and found.text:
                    return found.text.strip()
    except (zipfile.BadZipFile, etree.XMLSyntaxError):
        return ""
    return ""


class EfacturaClient:
    """One company's connection to e-Factura. ``async with EfacturaClient(config) as c: ...``."""

    def __init__(self, config: EfacturaConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            timeout=config.timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {config.token}"},
        )

    async def __aenter__(self) -> EfacturaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, what: str, params: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "text/plain"} if body is not None else {}
        try:
            try:
                response = await self._http.request(method, path, params=params, content=body, headers=headers)
            except httpx.RemoteProtocolError:
                if method != "GET":
                    raise
                # a kept-alive connection the server had closed: a query is asked again at once
                response = await self._http.request(method, path, params=params, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # nothing left this machine
            raise Transient(f"ANAF could not be reached for {what}: {error or type(error).__name__}") from error
        except httpx.TimeoutException as error:
            raise Transient(f"ANAF did not answer {what} in time", uncertain=True) from error
        except httpx.TransportError as error:
            raise Transient(
                f"ANAF's answer to {what} was lost: {error or type(error).__name__}", uncertain=True
            ) from error
        status = response.status_code
        if status == 429:
            raise Transient(f"ANAF's rate limit for {what}", _retry_after(response))
        if status >= 500:
            raise Transient(f"ANAF answered {status} to {what}", _retry_after(response), uncertain=True)
        if status in (401, 403):
            raise Transient(f"ANAF refused the access token for {what} ({status}): EFACTURA_TOKEN needs renewing")
        if status >= 400:
            root = _xml(response, what) if response.content.lstrip().startswith(b"<") else None
            messages = _errors(root) if root is not None else [response.text.strip() or f"HTTP {status}"]
            raise Refused(messages or [f"HTTP {status}"])
        return response

    async def upload(self, xml: bytes, *, cif: str, credit_note: bool = False, b2c: bool = False) -> Upload:
        what = "the upload"
        path = "/uploadb2c" if b2c else "/upload"
        response = await self._request(
            "POST", path, what, {"standard": "CN" if credit_note else "UBL", "cif": cif}, xml
        )
        root = _xml(response, what)
        if root.get("ExecutionStatus") != "0" or not root.get("index_incarcare"):
            raise Refused(_errors(root) or ["ANAF did not take the upload (no index)"])
        stamp = root.get("dateResponse", "")
        return Upload(root.get("index_incarcare", ""), anaf_time(stamp) if stamp else datetime.now(UTC))

    async def state(self, index: str) -> State:
        what = f"the state of upload {index}"
        root = _xml(await self._request("GET", "/stareMesaj", what, {"id_incarcare": index}), what)
        stare = root.get("stare")
        if stare not in ("ok", "nok", "in prelucrare", "XML cu erori nepreluat de sistem"):
            raise Transient(f"ANAF did not give the state of upload {index}: {'; '.join(_errors(root)) or stare}")
        return State(stare, root.get("id_descarcare", ""))  # type: ignore[arg-type]  # checked just above

    async def download(self, download_id: str) -> bytes:
        response = await self._request("GET", "/descarcare", f"the answer {download_id}", {"id": download_id})
        if not response.content.startswith(b"PK"):
            raise Transient(f"ANAF's answer {download_id} is not a ZIP: {response.text[:200]}")
        return response.content

    async def messages(self, cif: str, days: int) -> list[Message]:
        what = "the list of messages"
        params = {"zile": str(min(max(days, 1), LIST_DAYS)), "cif": cif}
        response = await self._request("GET", "/listaMesajeFactura", what, params)
        try:
            listed = msgspec.json.decode(response.content, type=MessageList)
        except msgspec.DecodeError as error:
            raise Transient(f"ANAF's {what} could not be read: {error}") from error
        return list(listed.mesaje)

    async def find_upload(self, *, cif: str, number: str, since: datetime, now: datetime) -> Upload | None:
        """The accepted upload of invoice ``number`` of the seller ``cif`` since ``since``, as
        ANAF lists it, or None.

        ANAF's messages name the upload index and the parties' CIFs (``detalii``: "Factura cu
        id_incarcare=... emisa de cif_emitent=... pentru cif_beneficiar=..."), not the
        invoice's number, so each accepted upload of the seller's since the claim is
        downloaded and its invoice's own number (cbc:ID) compared. A refused upload is not
        looked at: it is no invoice in the system, and uploading again is what the office
        would do. ANAF lists an upload once it has processed it, which is why a claim is
        looked up only after its lease."""
        days = (now.astimezone(ROMANIA).date() - since.astimezone(ROMANIA).date()).days + 1
        floor = since.astimezone(ROMANIA).strftime("%Y%m%d%H%M")
        for message in await self.messages(cif, days):
            if message.tip != "FACTURA TRIMISA" or message.data_creare < floor[: len(message.data_creare)]:
                continue
            if f"cif_emitent={cif}" not in message.detalii and message.cif not in ("", cif):
                continue
            if invoice_number(await self.download(message.id)) == number:
                return Upload(message.id_solicitare, anaf_time(message.data_creare))
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None
