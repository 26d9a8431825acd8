"""An RO e-Factura stand-in: the calls jobstream makes of ANAF's e-Factura REST API.

It is a real HTTP server (starlette on uvicorn, in a thread, on a free 127.0.0.1 port)
serving under ``/FCTEL/rest`` as ANAF does (https://api.anaf.ro/test/FCTEL/rest), built
from ANAF's published descriptions of the web services (see invoicer.efactura.client for
the shapes):

- ``POST /upload`` and ``/uploadb2c`` (``standard`` UBL, CN, CII or RASP; ``cif`` digits;
  the bearer token): the body must be well-formed XML whose root is the standard's (a UBL
  Invoice for UBL, a UBL CreditNote for CN), else ``ExecutionStatus="1"`` with ANAF's
  ``Errors``; taken, it gets the next ``index_incarcare`` and is processed in the background;
- processing, as ANAF's: the specification identifier (BT-24) must be CIUS-RO's, the
  seller's CIF in the XML the upload's ``cif``, and, when ``../shared/tools/einvoice`` is
  there, the whole CIUS-RO 1.0.9 schematron must pass (validate.py --profile cius-ro, run as
  a subprocess over every upload waiting); every fatal finding is one of ANAF's messages;
- ``GET /stareMesaj?id_incarcare=``: ``in prelucrare`` until processed, then ``ok`` or
  ``nok`` with its ``id_descarcare``;
- ``GET /descarcare?id=``: a ZIP with the invoice and a signature over it, or the error list
  and its signature;
- ``GET /listaMesajeFactura?zile=&cif=``: the processed uploads of the last N days, JSON,
  ``FACTURA TRIMISA`` or ``ERORI FACTURA``.

Faults a test sets: the next N requests fail with a status (5xx), every answer late by some
seconds, down (the port closed: connection refused) and up again on the same port, the next
processed upload refused with given messages. ``processed()`` waits until every upload has
been processed (a test waits on that, never on a sleep).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROMANIA = ZoneInfo("Europe/Bucharest")
CIUS_RO = "urn:cen.eu:en16931:2017#compliant#urn:efactura.mfinante.ro:CIUS-RO:1.0.1"
NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_UPLOAD = "mfp:anaf:dgti:spv:respUploadFisier:v1"
NS_STATE = "mfp:anaf:dgti:efactura:stareMesajFactura:v1"
NS_ANSWER = "mfp:anaf:dgti:efactura:raspunsValidareFactura:v1"
BASE = "/FCTEL/rest"
VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
ROOTS = {"UBL": NS_INVOICE, "CN": NS_CREDIT_NOTE}
FIRST_INDEX = 5001120362
FIRST_DOWNLOAD = 3001293434


@dataclass
class Received:
    """One upload as the stand-in took it."""

    index: str
    cif: str
    standard: str
    b2c: bool
    xml: bytes
    at: dt.datetime  # UTC
    state: str = "in prelucrare"  # ok, nok
    download_id: str = ""
    messages: list[str] = field(default_factory=list)
    number: str = ""  # the invoice's cbc:ID
    buyer_cif: str = ""


@dataclass
class Faults:
    fail_next: int = 0
    fail_status: int = 503
    delay: float = 0.0
    refuse_next: list[str] = field(default_factory=list)  # messages for the next processed upload


class StandIn:
    def __init__(self, *, token: str = "standin-token", schematron: bool | None = None) -> None:
        self.token = token
        self.schematron = VALIDATOR.is_file() if schematron is None else schematron
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.uploads: list[Received] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.faults = Faults()
        self.port = 0
        self._queue: list[Received] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._worker: threading.Thread | None = None
        self._closing = False
        self.app = Starlette(
            routes=[
                Route(f"{BASE}/upload", self._upload, methods=["POST"]),
                Route(f"{BASE}/uploadb2c", self._upload, methods=["POST"]),
                Route(f"{BASE}/stareMesaj", self._state, methods=["GET"]),
                Route(f"{BASE}/descarcare", self._download, methods=["GET"]),
                Route(f"{BASE}/listaMesajeFactura", self._messages, methods=["GET"]),
            ]
        )
        self.app.add_middleware(_Gate, standin=self)  # type: ignore[arg-type]  # starlette's middleware factory typing

    # ------------------------------------------------------------------ lifetime
    @property
    def url(self) -> str:
        """The base URL as EFACTURA_URL takes it."""
        return f"http://127.0.0.1:{self.port}{BASE}"

    def env(self) -> dict[str, str]:
        return {"EFACTURA_URL": self.url, "EFACTURA_TOKEN": self.token}

    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (a free port unless given) in a thread; the base URL."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._process_forever, name="efactura-processing", daemon=True)
            self._worker.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port or self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="efactura-standin", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the e-Factura stand-in did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        return self.url

    def stop(self, *, for_good: bool = True) -> None:
        """Stop listening (and, for good, processing); what it took stays."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None
        if for_good and self._worker is not None:
            with self.lock:
                self._closing = True
                self.changed.notify_all()
            self._worker.join(timeout=60)
            self._worker = None

    def down(self) -> None:
        """ANAF unreachable: the port closed, so connecting is refused."""
        self.stop(for_good=False)

    def up(self) -> None:
        """ANAF back, on the same port, with everything it knew."""
        if self._server is None:
            self.start(self.port)

    # ------------------------------------------------------------------ steering
    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.faults.fail_next, self.faults.fail_status = count, status

    def slow(self, seconds: float) -> None:
        with self.lock:
            self.faults.delay = seconds

    def refuse_next(self, *messages: str) -> None:
        with self.lock:
            self.faults.refuse_next = list(messages)

    def processed(self, timeout: float = 120) -> None:
        """Wait until every upload taken so far has been processed."""
        with self.changed:
            if not self.changed.wait_for(lambda: not self._queue, timeout):
                raise TimeoutError("the e-Factura stand-in did not process its uploads")

    def received(self, count: int = 1, timeout: float = 60) -> None:
        """Wait until ``count`` uploads have been taken."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.uploads) >= count, timeout):
                raise TimeoutError(f"the e-Factura stand-in did not receive {count} uploads")

    def accepted(self) -> list[Received]:
        with self.lock:
            return [u for u in self.uploads if u.state == "ok"]

    def of(self, number: str) -> list[Received]:
        """Every upload of the invoice ``number``."""
        with self.lock:
            return [u for u in self.uploads if u.number == number]

    # ------------------------------------------------------------------ processing
    def _process_forever(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self._queue or self._closing)
                if self._closing:
                    return
                batch = list(self._queue)
            findings = self._validate(batch)
            with self.changed:
                for received in batch:
                    messages = findings.get(received.index, [])
                    if not messages and self.faults.refuse_next:
                        messages, self.faults.refuse_next = self.faults.refuse_next, []
                    received.messages = messages
                    received.state = "nok" if messages else "ok"
                    received.download_id = str(FIRST_DOWNLOAD + self.uploads.index(received))
                    self._queue.remove(received)
                self.changed.notify_all()

    def _validate(self, batch: list[Received]) -> dict[str, list[str]]:
        """ANAF's checks of each upload: messages by index (none: accepted)."""
        found: dict[str, list[str]] = {}
        for received in batch:
            root = etree.fromstring(received.xml)
            messages = []
            if (root.findtext(f"{{{CBC}}}CustomizationID") or "").strip() != CIUS_RO:
                messages.append(f"E: [BR-RO-001] Identificatorul specificatiei (BT-24) trebuie sa fie {CIUS_RO}")
            seller = root.find(f"{{{CAC}}}AccountingSupplierParty/{{{CAC}}}Party")
            ids = [] if seller is None else [(e.text or "").strip() for e in seller.iter(f"{{{CBC}}}CompanyID")]
            if not any(i.upper().removeprefix("RO") == received.cif for i in ids):
                messages.append(f"E: CIF introdus={received.cif} nu corespunde cu CIF vanzator din factura")
            found[received.index] = messages
        if self.schematron:
            for index, findings in self._schematron(batch).items():
                found[index] += findings
        return found

    def _schematron(self, batch: list[Received]) -> dict[str, list[str]]:
        with tempfile.TemporaryDirectory(prefix="efactura-standin-") as folder:
            files = {}
            for received in batch:
                path = Path(folder) / f"{received.index}.xml"
                path.write_bytes(received.xml)
                files[str(path)] = received.index
            run = subprocess.run(
                [sys.executable, str(VALIDATOR), "--profile", "cius-ro", "--json", *files],
                capture_output=True,
                text=True,
                timeout=300,
            )
            try:
                reports = json.loads(run.stdout)
            except json.JSONDecodeError:
                return {index: [f"E: validation failed: {run.stderr.strip()[-500:]}"] for index in files.values()}
        found: dict[str, list[str]] = {}
        for report in reports:
            index = files.get(report["file"], Path(report["file"]).stem)
            found[index] = [
                f"E: [{f['id']}] {f['text']}" for f in report.get("findings", []) if f.get("flag") == "fatal"
            ]
        return found

    # ------------------------------------------------------------------ the calls
    async def _upload(self, request: Request) -> Response:
        standard = request.query_params.get("standard", "")
        cif = request.query_params.get("cif", "")
        body = await request.body()
        if standard not in ("UBL", "CN", "CII", "RASP"):
            return _upload_error(
                f"Valorile acceptate pentru parametrul standard sunt UBL, CN, CII sau RASP ({standard})"
            )
        if not cif.isdigit():
            return _upload_error(f"CIF introdus= {cif} nu este un numar")
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as error:
            return _upload_error(f"Fisierul transmis nu este valid. {error}")
        expected = ROOTS.get(standard)
        if expected is None or root.tag != f"{{{expected}}}{'Invoice' if standard == 'UBL' else 'CreditNote'}":
            return _upload_error(f"Fisierul transmis nu corespunde standardului {standard} ({root.tag})")
        buyer = root.find(f"{{{CAC}}}AccountingCustomerParty/{{{CAC}}}Party")
        buyer_ids = [] if buyer is None else [(e.text or "").strip() for e in buyer.iter(f"{{{CBC}}}CompanyID")]
        with self.changed:
            received = Received(
                index=str(FIRST_INDEX + len(self.uploads)),
                cif=cif,
                standard=standard,
                b2c=request.url.path.endswith("b2c"),
                xml=body,
                at=dt.datetime.now(dt.UTC),
                number=(root.findtext(f"{{{CBC}}}ID") or "").strip(),
                buyer_cif=next((i.upper().removeprefix("RO") for i in buyer_ids if i), "0"),
            )
            self.uploads.append(received)
            self._queue.append(received)
            self.changed.notify_all()
        stamp = received.at.astimezone(ROMANIA).strftime("%Y%m%d%H%M")
        return _xml(
            f'<header xmlns="{NS_UPLOAD}" dateResponse="{stamp}" ExecutionStatus="0" index_incarcare="{received.index}"/>'
        )

    async def _state(self, request: Request) -> Response:
        index = request.query_params.get("id_incarcare", "")
        with self.lock:
            received = next((u for u in self.uploads if u.index == index), None)
            if received is None or not index.isdigit():
                message = f"Nu exista factura cu id_incarcare= {index}"
                return _xml(f'<header xmlns="{NS_STATE}"><Errors errorMessage={quoteattr(message)}/></header>')
            if received.state == "in prelucrare":
                return _xml(f'<header xmlns="{NS_STATE}" stare="in prelucrare"/>')
            return _xml(f'<header xmlns="{NS_STATE}" stare="{received.state}" id_descarcare="{received.download_id}"/>')

    async def _download(self, request: Request) -> Response:
        download_id = request.query_params.get("id", "")
        with self.lock:
            received = next((u for u in self.uploads if u.download_id and u.download_id == download_id), None)
        if received is None:
            return JSONResponse(
                {
                    "titlu": "Descarcare mesaj",
                    "eroare": f"Pentru id={download_id} nu exista inregistrata nici o factura",
                }
            )
        if received.state == "ok":
            content = received.xml
        else:
            stamp = received.at.astimezone(ROMANIA).strftime("%Y%m%d%H%M")
            errors = "".join(f"<Error errorMessage={quoteattr(m)}/>" for m in received.messages)
            content = (
                f'<?xml version="1.0" encoding="UTF-8"?><header xmlns="{NS_ANSWER}" dateResponse="{stamp}" '
                f'ExecutionStatus="1" Index_incarcare="{received.index}">{errors}</header>'
            ).encode()
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        signature = (
            '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><Reference URI="">'
            '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
            f"<DigestValue>{digest}</DigestValue></Reference></SignedInfo>"
            "<SignatureValue>stand-in</SignatureValue></Signature>"
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{received.index}.xml", content)
            z.writestr(f"semnatura_{received.index}.xml", signature)
        return Response(archive.getvalue(), media_type="application/zip")

    async def _messages(self, request: Request) -> Response:
        days, cif = request.query_params.get("zile", ""), request.query_params.get("cif", "")
        if not days.isdigit() or not 1 <= int(days) <= 60:
            return JSONResponse(
                {"eroare": f"Numarul de zile trebuie sa fie intre 1 si 60 ({days})", "titlu": "Lista Mesaje"}
            )
        if not cif.isdigit():
            return JSONResponse({"eroare": f"CIF introdus= {cif} nu este un numar", "titlu": "Lista Mesaje"})
        since = dt.datetime.now(ROMANIA).date() - dt.timedelta(days=int(days) - 1)
        with self.lock:
            listed = [
                {
                    "data_creare": u.at.astimezone(ROMANIA).strftime("%Y%m%d%H%M"),
                    "cif": u.cif,
                    "id_solicitare": u.index,
                    "detalii": f"Factura cu id_incarcare={u.index} emisa de cif_emitent={u.cif} pentru cif_beneficiar={u.buyer_cif}",
                    "tip": "FACTURA TRIMISA" if u.state == "ok" else "ERORI FACTURA",
                    "id": u.download_id,
                }
                for u in self.uploads
                if u.cif == cif and u.state != "in prelucrare" and u.at.astimezone(ROMANIA).date() >= since
            ]
        if not listed:
            return JSONResponse({"eroare": f"Nu exista mesaje in ultimele {days} zile", "titlu": "Lista Mesaje"})
        return JSONResponse(
            {
                "mesaje": listed,
                "serial": "1234AA456",
                "cif": cif,
                "titlu": f"Lista Mesaje disponibile din ultimele {days} zile",
            }
        )


def _xml(text: str, status: int = 200) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>\n{text}', status_code=status, media_type="application/xml")


def _upload_error(message: str) -> Response:
    stamp = dt.datetime.now(ROMANIA).strftime("%Y%m%d%H%M")
    return _xml(
        f'<header xmlns="{NS_UPLOAD}" dateResponse="{stamp}" ExecutionStatus="1">'
        f"<Errors errorMessage={quoteattr(message)}/></header>"
    )


class _Gate:
    """ASGI middleware: the bearer token, then faults, then the handler, its answer late when slow."""

    def __init__(self, app: Callable[..., Any], standin: StandIn) -> None:
        self.app = app
        self.standin = standin

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        standin = self.standin
        request = Request(scope, receive)
        with standin.lock:
            delay = standin.faults.delay
            fault: Response | None = None
            if request.headers.get("authorization", "") != f"Bearer {standin.token}":
                fault = JSONResponse({"error": "invalid_token", "error_description": "Access token invalid"}, 401)
            elif standin.faults.fail_next > 0:
                standin.faults.fail_next -= 1
                fault = Response("Service Unavailable", status_code=standin.faults.fail_status)
        status: list[int] = []

        async def sent(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                if delay:  # done, and answered late: a client that gave up never hears of it
                    await asyncio.sleep(delay)
            await send(message)

        if fault is not None:
            await fault(scope, receive, sent)
        else:
            await self.app(scope, receive, sent)
        with standin.lock:
            standin.requests.append((scope["method"], scope["path"].removeprefix(BASE), status[0] if status else 0))


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in as its own process (for trying jobstream by hand)."""
    import argparse

    parser = argparse.ArgumentParser(description="An RO e-Factura stand-in on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="standin-token")
    args = parser.parse_args(argv)
    standin = StandIn(token=args.token)
    print(f"EFACTURA_URL={standin.start(args.port)} EFACTURA_TOKEN={args.token}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
