"""The read API: JSON over the read models, the office dashboard, exports and live updates.

Same tokens and roles as the command API (the board projection keeps the users): office
and admin read everything and use the dashboard's forms; technicians see their own jobs
and the open pool; accountants read everything and write nothing. Every JSON read takes
``position`` (a stream position a command returned) and answers no older than it, or 504
after a bounded wait.

The dashboard's forms post here and are forwarded to the command API with the signed-in
user's own token and an idempotency key fixed when the form was drawn, so a double click
or a resubmitted page is applied once; the page that follows waits for the command's
position, so the office always sees its own change.
"""


import asyncio
import contextlib
import csv
import hashlib
import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import msgspec
from pydantic import BeforeValidator
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from events.contract import CreditNoteDocumentStored, ProformaDocumentStored, decode_event
from events.jetstream import STREAM_VARIABLES, NatsConnection, StreamSettings
from events.revocations import Revocations
from projections.audit import Checkpoints, Criteria, Entry, TailMissing, checkpoint_and_keep, replay, write_entries
from projections.failures import FailureRow, FailureState, failures
from projections.rows import InvoiceRow, JobRow, UserRow, iso
from read_api import links
from read_api.fastboard import COOKIE, BoardFromMemory, Filters, digest_of, from_memory
from read_api.fastboard import token_of as token_in
from read_api.queries import BoardFilter, Page, ReadModels, Unavailable

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
MessageState = Literal["queued", "sending", "delivered", "retrying", "failed", "uncertain"]
MESSAGE_STATES = frozenset(MessageState.__args__)  # type: ignore[attr-defined]
MAX_WAIT = 30.0
# A day in a query, YYYY-MM-DD only (pydantic alone also takes "0", as 1970-01-01)
Day = Annotated[date, BeforeValidator(lambda text: date.fromisoformat(text) if isinstance(text, str) else text)]
PROBLEM = {"type": "object", "required": ["detail"], "properties": {"detail": {"anyOf": [
    {"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}
# What every route may answer besides its own: declared once, for the OpenAPI document
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": PROBLEM}}}
    for code, text in {401: "no valid access token", 403: "the role may not read this", 404: "not found",
                       409: "a stored document does not match its hash", 422: "invalid input",
                       503: "not configured here", 504: "the read models did not reach the position in time"}.items()
}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    read_model_url: str
    stream_env: dict[str, str] = {}  # STREAM_VARIABLES (NATS_URL, its user, ...): the audit reads the stream
    command_api_url: str = "http://127.0.0.1:8000"
    timezone: str = "UTC"
    wait_seconds: float = 5.0
    link_secret: str = ""  # signs the links customers open their invoices with (none: no links)
    public_url: str = ""  # where customers reach this read API, for those links


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _encode(value: Any) -> bytes:
    return msgspec.json.encode(value, enc_hook=str)


def json(value: Any, status: int = 200) -> Response:
    return Response(_encode(value), status_code=status, media_type="application/json")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.models = await asyncio.to_thread(ReadModels, settings.read_model_url, settings.timezone)
        app.state.commands = httpx.AsyncClient(base_url=settings.command_api_url, timeout=15.0)
        app.state.live = Live(app.state.models)
        app.state.live.start()
        app.state.stream = None
        app.state.revocations = Revocations()
        if settings.stream_env.get("NATS_URL"):
            app.state.stream = await NatsConnection.open_on_running_loop(StreamSettings.from_env(settings.stream_env))
            # a revoked token is refused as soon as the stream says so, ahead of the board
            await app.state.revocations.follow(app.state.stream)
            app.state.revocations.listen(lambda _: asyncio.ensure_future(app.state.live.wake()))
            app.state.models.revoked = app.state.revocations
        yield
        await app.state.revocations.stop()
        await app.state.live.stop()
        await app.state.commands.aclose()
        await asyncio.to_thread(app.state.models.close)
        if app.state.stream is not None:
            await app.state.stream.aclose()

    app = FastAPI(title="jobstream read API", version="0.1.0", lifespan=lifespan, responses=ERRORS,
                  description=__doc__.split("\n\n")[0] if __doc__ else "")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.board_filters = Filters()
    app.add_middleware(BoardFromMemory)
    templates = Jinja2Templates(directory=HERE / "templates")
    zone = ZoneInfo(settings.timezone)
    templates.env.filters["local"] = lambda moment, fmt="%d %b %H:%M": (
        moment.astimezone(zone).strftime(fmt) if isinstance(moment, datetime) else
        (datetime.fromisoformat(moment).astimezone(zone).strftime(fmt) if moment else ""))
    templates.env.filters["hours"] = lambda minutes: f"{minutes // 60}:{minutes % 60:02d}"
    templates.env.filters["label"] = lambda text: str(text).replace("_", " ")

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Response:
        """A browser finding a page (or a download) refused is shown the sign-in page or why; an
        API client is answered JSON, a 401 with WWW-Authenticate, as the README says."""
        if not request.url.path.startswith("/api/") and browsing(request):
            if error.status == 401:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            if error.status in (403, 404):
                return templates.TemplateResponse(request, "message.html", {
                    "title": "Not available", "message": error.detail, "user": None}, status_code=error.status)
        response = JSONResponse({"detail": error.detail}, status_code=error.status)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, error: Unavailable) -> Response:
        return JSONResponse({"detail": str(error)}, status_code=504)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> Response:
        return JSONResponse({"detail": str(error)}, status_code=422)

    # --- who is asking ----------------------------------------------------------------

    def models(request: Request) -> ReadModels:
        return request.app.state.models  # type: ignore[no-any-return]

    def token_of(request: Request) -> str:
        return token_in(dict(request.scope["headers"]))

    async def user(request: Request) -> UserRow:
        token = token_of(request)
        if not token:
            raise Refused(401, "sign in: send 'Authorization: Bearer <token>'")
        digest = digest_of(token)
        m, waiting_for = models(request), request.query_params.get("position", "")
        if waiting_for.isdigit() and int(waiting_for) > request.app.state.live.users_position:
            # a position the remembered users may not have seen (a token issued or revoked
            # just before it): wait for it, and read the token's user afresh
            await reachable(request, int(waiting_for))
            await asyncio.to_thread(m.wait_for, int(waiting_for), waiting_time(request))
            found = await asyncio.to_thread(m.user, digest)
        else:
            found = m.cached_user(digest) or await asyncio.to_thread(m.user, digest)
        if found is None or found.revoked:
            raise Refused(401, "this token is unknown or revoked")
        return found

    User = Annotated[UserRow, Depends(user)]

    def waiting_time(request: Request, wait: float | None = None) -> float:
        """How long a read may wait for a position: ``wait`` (seconds) if given, at most MAX_WAIT."""
        if wait is None:
            with contextlib.suppress(ValueError):
                wait = float(request.query_params.get("wait", ""))
        return min(wait if wait is not None and wait >= 0 else settings.wait_seconds, MAX_WAIT)

    async def reachable(request: Request, position: int) -> None:
        """A position the read models have not reached must be in the stream, or no wait ends:
        beyond the stream's head is a 422 at once, not a 504 after the wait."""
        stream = request.app.state.stream
        if stream is None or position <= request.app.state.live.position:
            return
        head = await stream.last_position()
        if position > head:
            raise Refused(422, f"position: {position} is beyond the stream's head ({head}); "
                               "send a position a command answered")

    async def fresh(request: Request, position: int | None, wait: float | None = None) -> int:
        if position is None:
            return -1  # nothing to wait for
        await reachable(request, position)
        return await asyncio.to_thread(models(request).wait_for, position, waiting_time(request, wait))

    def board_filter(who: UserRow, status: list[str], job_type: str, technician: str, customer: str,
                     priority: str, sla: str, requested_from: str, requested_to: str, q: str,
                     sort: str, order: str, after: str, limit: int) -> BoardFilter:
        f = BoardFilter(status=[s for s in status if s], job_type=job_type, technician_id=technician,
                        customer_id=customer, priority=priority, sla=sla,
                        requested_from=requested_from, requested_to=requested_to, q=q.strip(),
                        sort=sort, descending=order != "asc", after=after, limit=limit)
        if who.role == "technician":
            f.technician_id = str(who.technician_id)
            f.open_pool_too = True
        return f

    def may_see(who: UserRow, job: JobRow) -> bool:
        if who.role != "technician":
            return True
        return who.technician_id in job.technician_ids or (job.status.value == "new" and not job.technician_ids)

    async def job_or_404(request: Request, who: UserRow, job_id: UUID) -> JobRow:
        job = await asyncio.to_thread(models(request).job, job_id)
        if job is None:
            raise Refused(404, f"job {job_id} not found")
        if not may_see(who, job):
            raise Refused(403, "technicians see only their own jobs and the open pool")
        return job

    # --- JSON ---------------------------------------------------------------------------

    Position = Annotated[int | None, Query(ge=0, description="answer no older than this stream position")]
    Wait = Annotated[float | None, Query(ge=0, le=MAX_WAIT, description="seconds to wait for it")]

    @app.get("/health", tags=["service"])
    async def health(request: Request) -> Response:
        return json({"status": "ok", "position": await asyncio.to_thread(models(request).position)})

    @app.get("/api/position", tags=["read"], summary="How far the read models have read the stream")
    async def position(request: Request, who: User) -> Response:
        return json({"position": await asyncio.to_thread(models(request).position)})

    @app.get("/api/board", tags=["read"], summary="The job board: filter, sort, search, page")
    async def board(request: Request, who: User, position: Position = None, wait: Wait = None,
                    status: Annotated[list[str], Query()] = [],  # noqa: B006
                    job_type: str = "", technician: str = "", customer: str = "",
                    priority: Annotated[str, Query(pattern="^(|normal|urgent)$")] = "",
                    sla: Annotated[str, Query(pattern="^(|at_risk|breached)$")] = "",
                    requested_from: str = "", requested_to: str = "",
                    q: Annotated[str, Query(max_length=200)] = "",
                    sort: Annotated[str, Query(pattern="^(last_change|requested|sla|scheduled|status|time)$")] = "last_change",
                    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
                    after: str = "", limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        f = board_filter(who, status, job_type, technician, customer, priority, sla, requested_from,
                         requested_to, q, sort, order, after, limit)
        m, live = models(request), request.app.state.live
        request.app.state.board_filters.remember(request.scope["query_string"], who, f)  # see fastboard
        kept = from_memory(m.latest_board(f), position, live, f)
        if kept is None:
            await fresh(request, position, wait)
            kept = from_memory(m.latest_board(f), position, live, f)  # made while this reader waited?
        if kept is not None:
            return Response(kept, media_type="application/json")
        made = await asyncio.shield(live.making(f))
        if position is not None and made.position < position:  # begun before the position was reached
            made = await asyncio.to_thread(m.board_json, f)
        return Response(made.data, media_type="application/json")

    @app.get("/api/jobs/{job_id}", tags=["read"], summary="A job as the board has it, with its timeline")
    async def job(request: Request, who: User, job_id: UUID, position: Position = None,
                  wait: Wait = None) -> Response:
        await fresh(request, position, wait)
        reached = await asyncio.to_thread(models(request).position)
        found = await job_or_404(request, who, job_id)
        history = await asyncio.to_thread(models(request).history, job_id)
        item = await asyncio.to_thread(models(request).board_item, found)
        return json({"job": found, "board": item, "history": history, "position": reached})

    # --- invoices ------------------------------------------------------------------------

    def billing_readers(who: UserRow) -> None:
        if who.role not in ("office", "accountant", "admin"):
            raise Refused(403, "invoices are for the office and the accountants")

    async def invoice_or_404(request: Request, invoice_id: UUID) -> InvoiceRow:
        found = await asyncio.to_thread(models(request).invoice, invoice_id)
        if found is None:
            raise Refused(404, f"invoice {invoice_id} not found")
        return found

    @app.get("/api/invoices", tags=["billing"], summary="Invoices, the latest first (or one job's)")
    async def api_invoices(request: Request, who: User, job: UUID | None = None,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                           position: int | None = None, wait: float | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position, wait)
        rows = await asyncio.to_thread(models(request).invoices, limit, job)
        return json([{k: v for k, v in msgspec.to_builtins(r).items() if k != "issued"} for r in rows])

    @app.get("/api/invoices/{invoice_id}", tags=["billing"],
             summary="An invoice with every line, exactly as issued")
    async def api_invoice(request: Request, who: User, invoice_id: UUID) -> Response:
        billing_readers(who)
        return json(await invoice_or_404(request, invoice_id))

    async def stored_document(request: Request, invoice_id: UUID, kind: str) -> Response:
        """The invoice's stored PDF or XML, checked against the hash recorded when it was stored."""
        found = await invoice_or_404(request, invoice_id)
        name, digest = (found.document, found.document_sha256) if kind == "pdf" else (
            found.xml_document, found.xml_sha256)
        if not name:
            stream = request.app.state.stream
            parked = [f for f in await failures(stream, ["open", "retrying"])
                      if f.aggregate_id == str(invoice_id)] if stream is not None else []
            if parked:
                raise Refused(404, f"invoice {found.number} has no {kind.upper()}: {parked[0].error} "
                                   "(the Failures page has it, with Try again)")
            raise Refused(404, f"invoice {found.number} has no {kind.upper()} yet; it is being rendered")
        if request.app.state.stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        store = await request.app.state.stream.documents()
        data = (await store.get(name)).data or b""
        if hashlib.sha256(data).hexdigest() != digest:
            raise Refused(409, f"the stored {kind.upper()} of {found.number} does not match the hash "
                               "recorded when it was issued")
        filename = found.number.replace("/", "-") + "." + kind
        media_type = "application/pdf" if kind == "pdf" else "application/xml"
        return Response(data, media_type=media_type,
                        headers={"Content-Disposition": f'inline; filename="{filename}"'})

    async def issued_document(request: Request, who: UserRow, document_id: UUID, kind: str) -> Response:
        """A credit note's (or a proforma's) stored document, found by its event in the stream."""
        billing_readers(who)
        stream = request.app.state.stream
        if stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        messages = await stream.direct_batch({"seq": 1, "next_by_subj": stream.settings.aggregate_filter(
            "events", document_id), "batch": 50})
        found = [e for e in (decode_event(m.data) for m in messages)
                 if isinstance(e, CreditNoteDocumentStored | ProformaDocumentStored)
                 and e.media_type == ("application/pdf" if kind == "pdf" else "application/xml")]
        if not found:
            raise Refused(404, f"credit note {document_id} has no {kind.upper()} (yet)")
        data = (await (await stream.documents()).get(found[-1].name)).data or b""
        if hashlib.sha256(data).hexdigest() != found[-1].sha256:
            raise Refused(409, "the stored document does not match the hash recorded when it was issued")
        return Response(data, media_type=found[-1].media_type,
                        headers={"Content-Disposition": f'inline; filename="document-{document_id}.{kind}"'})

    @app.get("/jobs/{job_id}/photos/{photo_id}", tags=["read"], summary="A photo a technician took on the job",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def job_photo(request: Request, who: User, job_id: UUID, photo_id: UUID) -> Response:
        job = await job_or_404(request, who, job_id)
        photo = next((p for p in job.photos if p.id == photo_id), None)
        if photo is None:
            raise Refused(404, f"no photo {photo_id} on this job")
        if request.app.state.stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        store = await request.app.state.stream.documents()
        data = (await store.get(photo.name)).data or b""
        return Response(data, media_type=photo.media_type, headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/proformas/{proforma_id}.pdf", tags=["billing"], summary="A proforma invoice's PDF, as stored",
             response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
    async def proforma_pdf(request: Request, who: User, proforma_id: UUID) -> Response:
        return await issued_document(request, who, proforma_id, "pdf")

    @app.get("/credit-notes/{note_id}.pdf", tags=["billing"], summary="A credit note's PDF, as stored",
             response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
    async def credit_note_pdf(request: Request, who: User, note_id: UUID) -> Response:
        return await issued_document(request, who, note_id, "pdf")

    @app.get("/credit-notes/{note_id}.xml", tags=["billing"], summary="A credit note as UBL 2.1 CreditNote XML",
             response_class=Response, responses={200: {"content": {"application/xml": {}}}})
    async def credit_note_xml(request: Request, who: User, note_id: UUID) -> Response:
        return await issued_document(request, who, note_id, "xml")

    @app.get("/api/invoices/{invoice_id}/link", tags=["billing"],
             summary="A signed link the customer opens the invoice's PDF with, without an account")
    async def api_invoice_link(request: Request, who: User, invoice_id: UUID,
                               days: Annotated[int, Query(ge=1, le=365)] = links.DEFAULT_DAYS) -> Response:
        billing_readers(who)
        found = await invoice_or_404(request, invoice_id)
        if not settings.link_secret:
            raise Refused(404, "no customer links here: they are off until JOBSTREAM_LINK_SECRET is set")
        token, expires = links.sign(found.id, settings.link_secret, days)
        base = settings.public_url or str(request.base_url).rstrip("/")
        return json({"invoice": found.number, "url": f"{base}/d/{token}",
                     "expires": datetime.fromtimestamp(expires, UTC).isoformat()})

    @app.get("/d/{token}", tags=["billing"], response_class=Response, openapi_extra={"security": []},
             summary="The invoice's PDF through a signed link (for the customer; no sign-in)",
             responses={200: {"content": {"application/pdf": {}}}, 403: {"description": "altered or expired"}})
    async def customer_document(request: Request, token: str) -> Response:
        try:
            invoice_id = links.verify(token, settings.link_secret)
        except links.BadLink as bad:
            return templates.TemplateResponse(request, "message.html", {
                "title": "Link not valid", "message": str(bad), "user": None}, status_code=403)
        return await stored_document(request, invoice_id, "pdf")

    @app.get("/invoices/{invoice_id}.pdf", tags=["billing"], summary="The invoice's PDF, as stored",
             response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
    async def invoice_pdf(request: Request, who: User, invoice_id: UUID) -> Response:
        billing_readers(who)
        return await stored_document(request, invoice_id, "pdf")

    @app.get("/invoices/{invoice_id}.xml", tags=["billing"],
             summary="The invoice as an EN 16931 e-invoice (UBL 2.1), as stored",
             response_class=Response, responses={200: {"content": {"application/xml": {}}}})
    async def invoice_xml(request: Request, who: User, invoice_id: UUID) -> Response:
        billing_readers(who)
        return await stored_document(request, invoice_id, "xml")

    async def invoice_preview(request: Request, job_id: UUID) -> dict[str, Any]:
        """The invoicer's dry run for a job, asked over NATS (request-reply)."""
        stream = request.app.state.stream
        if stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        try:
            reply = await stream.nc.request(stream.settings.rpc_subject("invoice-preview"), str(job_id).encode(),
                                            timeout=3.0)
        except Exception:  # no responders, or a timeout: the invoicer is not running
            raise Refused(503, "the invoicer is not answering: is 'jobstream run invoicer' running?") from None
        return msgspec.json.decode(reply.data)  # type: ignore[no-any-return]

    @app.get("/api/jobs/{job_id}/invoice-preview", tags=["billing"],
             summary="The invoice the job would get if it were completed now (a dry run by the invoicer)")
    async def api_invoice_preview(request: Request, who: User, job_id: UUID) -> Response:
        billing_readers(who)
        await job_or_404(request, who, job_id)
        return json(await invoice_preview(request, job_id))

    @app.get("/api/bank/unmatched", tags=["billing"],
             summary="Bank credits no rule matched to an invoice: the office's review queue")
    async def api_unmatched(request: Request, who: User, position: int | None = None,
                            wait: float | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).unmatched))

    @app.get("/api/ledger/trial-balance", tags=["ledger"],
             summary="Debits and credits per account and currency; 'unbalanced' is empty when the books balance")
    async def api_trial_balance(request: Request, who: User, until: Day | None = None,
                                position: int | None = None, wait: float | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position, wait)
        limit = (until + timedelta(days=1)).isoformat() if until else "9999"
        result = await asyncio.to_thread(models(request).trial_balance, limit)
        return json({"balances": [{**msgspec.to_builtins(b), "balance": str(b.balance)} for b in result["balances"]],
                     "unbalanced": result["unbalanced"]})

    @app.get("/api/ledger/journal.csv", tags=["ledger"], summary="Journal lines of a period, for accountants (CSV)",
             response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def api_journal_csv(request: Request, who: User, since: Annotated[Day | None, Query(alias="from")] = None,
                              until: Annotated[Day | None, Query(alias="to")] = None) -> Response:
        billing_readers(who)
        lines = await asyncio.to_thread(models(request).journal, since.isoformat() if since else "",
                                        until.isoformat() if until else "9999")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["date", "entry", "line", "account", "debit", "credit", "currency", "document",
                         "customer_id", "source", "position"])
        for j in lines:
            writer.writerow([j.day, j.entry, j.line, j.account, j.debit, j.credit, j.currency, j.document,
                             j.customer_id, j.source, j.position])
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="journal.csv"'})

    @app.get("/api/billing/reconciliation", tags=["billing"],
             summary="Completed jobs against billing: invoiced, not billed (why), held (why), still waiting")
    async def api_reconciliation(request: Request, who: User, position: int | None = None,
                                 wait: float | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).reconciliation))

    @app.get("/api/receivables/aging", tags=["ledger"],
             summary="What each customer owes, by days past due: current, 1-30, 31-60, 61-90, 90+; "
                     "their credit (overpaid), and the total net of it")
    async def api_aging(request: Request, who: User, position: int | None = None,
                        wait: float | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).aging))

    @app.get("/api/customers", tags=["read"], summary="Every customer")
    async def customers(request: Request, who: User, position: Position = None, wait: Wait = None) -> Response:
        office_only(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).customers))

    @app.get("/api/technicians", tags=["read"], summary="Every technician")
    async def technicians(request: Request, who: User, position: Position = None, wait: Wait = None) -> Response:
        await fresh(request, position, wait)
        found = await asyncio.to_thread(models(request).technicians)
        if who.role == "technician":  # their own record, not their colleagues' phones and emails
            found = [t for t in found if t.id == who.technician_id]
        return json(found)

    @app.get("/api/schedule", tags=["read"], summary="Per technician per day: visits, free slots, double bookings")
    async def schedule(request: Request, who: User, start: Day | None = None,
                       days: Annotated[int, Query(ge=1, le=31)] = 7, technician: str = "",
                       position: Position = None, wait: Wait = None) -> Response:
        await fresh(request, position, wait)
        if who.role == "technician":
            technician = str(who.technician_id)
        return json(await asyncio.to_thread(models(request).schedule, start or date.today(), days, technician))

    @app.get("/api/timesheets", tags=["read"], summary="Minutes per technician or job, billable and not")
    async def timesheets(request: Request, who: User,
                         period: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
                         start: Day | None = None, end: Day | None = None, technician: str = "",
                         job: str = "", by: Annotated[str, Query(pattern="^(technician|job)$")] = "technician",
                         position: Position = None, wait: Wait = None) -> Response:
        await fresh(request, position, wait)
        if who.role == "technician":
            technician = str(who.technician_id)
        begin, finish = _range(start, end)
        return json(await asyncio.to_thread(models(request).timesheet, period, begin, finish, technician, job, by))

    @app.get("/api/reports", tags=["read"], summary="Every report")
    async def reports(request: Request, who: User, position: Position = None, wait: Wait = None) -> Response:
        office_only(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).reports))

    @app.get("/api/reports/{name}.csv", tags=["read"], summary="One report as CSV")
    async def report_csv(request: Request, who: User, name: str) -> Response:
        office_only(who)
        everything = await asyncio.to_thread(models(request).reports)
        if name not in everything:
            raise Refused(404, f"no report named {name!r}; one of: {', '.join(everything)}")
        return Response(to_csv(everything[name]), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})

    @app.get("/api/live", tags=["read"], summary="Server-sent events: the read models' position as it moves")
    async def live(request: Request, who: User) -> StreamingResponse:
        revocations = request.app.state.revocations
        return StreamingResponse(request.app.state.live.stream(request, lambda: who.token_id in revocations),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def office_only(who: UserRow) -> None:
        if who.role == "technician":
            raise Refused(403, "technicians see their own jobs, schedule and time only")

    def writers_only(who: UserRow) -> None:
        if who.role not in ("office", "admin"):
            raise Refused(403, f"the {who.role} role cannot change anything; the office can")

    # --- the accountants' audit, straight from the stream ------------------------------

    def audit_criteria(job: UUID | None, customer: UUID | None, event_type: list[str], since: datetime | None,
                       before: datetime | None, after: int, until: int | None) -> Criteria:
        return Criteria(job=job, customer=customer, types=set(event_type),
                        since=since.replace(tzinfo=since.tzinfo or UTC) if since else None,
                        before=before.replace(tzinfo=before.tzinfo or UTC) if before else None,
                        after=after, until=until)

    def auditors_only(request: Request, who: UserRow) -> NatsConnection:
        if who.role not in ("accountant", "admin"):
            raise Refused(403, "the audit is for accountants (and admins)")
        if request.app.state.stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        return request.app.state.stream  # type: ignore[no-any-return]

    @app.get("/api/audit/replay", tags=["audit"], summary="Events straight from the stream, as JSON Lines")
    async def audit_replay(request: Request, who: User, job: UUID | None = None, customer: UUID | None = None,
                           event_type: Annotated[list[str], Query(alias="type")] = [],  # noqa: B006
                           since: Annotated[datetime | None, Query(alias="from")] = None,
                           before: Annotated[datetime | None, Query(alias="to")] = None,
                           after: Annotated[int, Query(ge=0)] = 0,
                           until: Annotated[int | None, Query(ge=0)] = None) -> StreamingResponse:
        stream = auditors_only(request, who)
        criteria = audit_criteria(job, customer, event_type, since, before, after, until)

        async def lines() -> AsyncIterator[bytes]:
            async for entry in replay(stream, criteria):
                yield msgspec.json.encode(entry) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/api/audit/export", tags=["audit"], summary="Events of a period as CSV or JSON Lines (a download)")
    async def audit_export(request: Request, who: User,
                           format: Annotated[str, Query(pattern="^(csv|jsonl)$")] = "csv",
                           job: UUID | None = None, customer: UUID | None = None,
                           event_type: Annotated[list[str], Query(alias="type")] = [],  # noqa: B006
                           since: Annotated[datetime | None, Query(alias="from")] = None,
                           before: Annotated[datetime | None, Query(alias="to")] = None,
                           after: Annotated[int, Query(ge=0)] = 0,
                           until: Annotated[int | None, Query(ge=0)] = None) -> Response:
        stream = auditors_only(request, who)
        criteria = audit_criteria(job, customer, event_type, since, before, after, until)
        entries: list[Entry] = [entry async for entry in replay(stream, criteria)]
        # its last record: a checkpoint of the whole stream, kept in the read models too
        headers = {"Content-Disposition": f'attachment; filename="jobstream-events.{format}"'}
        places = Checkpoints(stream.settings.stream, read_model_url=settings.read_model_url)
        try:
            checkpoint, problems = await checkpoint_and_keep(stream, places)
        except TailMissing as refused:
            checkpoint, problems = None, [f"no checkpoint in this export: {refused}"]
        finally:
            await asyncio.to_thread(places.close)
        for problem in problems:
            log.error("audit export: %s", problem)
        if checkpoint is None:
            headers["X-Jobstream-Checkpoint"] = problems[0]
        out = io.StringIO()
        write_entries(entries, out, format, checkpoint)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return Response(out.getvalue(), media_type=media, headers=headers)

    # --- the dashboard -------------------------------------------------------------------

    def page(request: Request, name: str, who: UserRow | None, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"user": who, **context})

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", None, next=next, error="")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
        found = await asyncio.to_thread(models(request).user, digest_of(token.strip()))
        if found is None or found.revoked:
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "next": next, "error": "That token is unknown or revoked."}, status_code=401)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 86400)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request, who: User, position: int | None = None,
                        status: Annotated[list[str], Query()] = [],  # noqa: B006
                        job_type: str = "", technician: str = "", customer: str = "", priority: str = "",
                        sla: str = "", q: str = "", sort: str = "last_change", order: str = "desc",
                        after: str = "", requested_from: str = "", requested_to: str = "") -> Response:
        await fresh(request, position)
        f = board_filter(who, status, job_type, technician, customer, priority, sla,
                         _day(requested_from, "requested_from"), _day(requested_to, "requested_to", 1), q,
                         sort if sort in ("last_change", "requested", "sla", "scheduled", "status", "time") else "last_change",
                         order, after, 50)
        m = models(request)
        board_page = await asyncio.to_thread(m.board_page, f)
        choices = await asyncio.to_thread(lambda: (m.technicians(), m.job_types(),
                                                    [] if who.role == "technician" else m.customers()))
        return page(request, "board.html", who, board=board_page, f=f, technicians=choices[0],
                    requested_from=requested_from or "", requested_to=requested_to or "",
                    job_types=choices[1], customers=choices[2], query=request.url.query,
                    statuses=["new", "scheduled", "in_progress", "on_hold", "completed", "invoiced", "cancelled"])

    @app.get("/board/rows", response_class=HTMLResponse, include_in_schema=False)
    async def board_rows(request: Request, who: User, status: Annotated[list[str], Query()] = [],  # noqa: B006
                         job_type: str = "", technician: str = "", customer: str = "", priority: str = "",
                         sla: str = "", q: str = "", sort: str = "last_change", order: str = "desc",
                         after: str = "", requested_from: str = "", requested_to: str = "") -> Response:
        f = board_filter(who, status, job_type, technician, customer, priority, sla,
                         _day(requested_from, "requested_from"), _day(requested_to, "requested_to", 1), q,
                         sort if sort in ("last_change", "requested", "sla", "scheduled", "status", "time") else "last_change",
                         order, after, 50)
        return page(request, "board_rows.html", who, board=await asyncio.to_thread(models(request).board_page, f))

    @app.get("/jobs/new", response_class=HTMLResponse, include_in_schema=False)
    async def new_job_form(request: Request, who: User) -> Response:
        writers_only(who)
        return page(request, "job_new.html", who, customers=await asyncio.to_thread(models(request).customers),
                    key=uuid.uuid4().hex, error="", form={})

    @app.get("/customers/new", response_class=HTMLResponse, include_in_schema=False)
    async def new_customer_form(request: Request, who: User) -> Response:
        writers_only(who)
        return page(request, "customer_new.html", who, key=uuid.uuid4().hex, error="", form={})

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    async def job_page(request: Request, who: User, job_id: UUID, position: int | None = None) -> Response:
        await fresh(request, position)
        reached = await asyncio.to_thread(models(request).position)
        found = await job_or_404(request, who, job_id)
        m = models(request)
        item, history, techs, customer, invoices = await asyncio.to_thread(lambda: (
            m.board_item(found), m.history(job_id), m.technicians(), m.customers_by_id([found.customer_id]),
            m.invoices(job_id=job_id) if who.role != "technician" else []))
        preview: dict[str, Any] | None = None
        if who.role != "technician" and found.status.value in ("new", "scheduled", "in_progress", "on_hold",
                                                                 "completed") and not invoices:
            try:
                preview = await invoice_preview(request, job_id)
            except Refused as refused:
                preview = {"billable": False, "reason": refused.detail}
        return page(request, "job.html", who, job=found, item=item, history=history, invoices=invoices,
                    preview=preview,
                    technicians=[t for t in techs if t.active], customer=customer.get(found.customer_id),
                    key=uuid.uuid4().hex, error=request.query_params.get("error", ""), reached=reached)

    @app.get("/schedule", response_class=HTMLResponse, include_in_schema=False)
    async def schedule_page(request: Request, who: User, start: date | None = None,
                            days: Annotated[int, Query(ge=1, le=14)] = 5, technician: str = "") -> Response:
        if who.role == "technician":
            technician = str(who.technician_id)
        first = start or datetime.now(zone).date()
        rows = await asyncio.to_thread(models(request).schedule, first, days, technician)
        return page(request, "schedule.html", who, rows=rows, start=first, days=days,
                    dates=[first + timedelta(days=i) for i in range(days)],
                    previous=first - timedelta(days=days), following=first + timedelta(days=days))

    @app.get("/timesheets", response_class=HTMLResponse, include_in_schema=False)
    async def timesheets_page(request: Request, who: User, period: str = "week", by: str = "technician",
                              start: str = "", end: str = "") -> Response:
        technician = str(who.technician_id) if who.role == "technician" else ""
        begin, finish = _range(date.fromisoformat(_day(start, "start")) if start else None,
                               date.fromisoformat(_day(end, "end")) if end else None)
        by = by if by in ("technician", "job") else "technician"
        rows = await asyncio.to_thread(models(request).timesheet,
                                       period if period in ("day", "week", "month") else "week",
                                       begin, finish, technician, "", by)
        return page(request, "timesheets.html", who, rows=rows, period=period, by=by, start=begin, end=finish)

    @app.get("/invoices", response_class=HTMLResponse, include_in_schema=False)
    async def invoices_page(request: Request, who: User, position: int | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position)
        invoices = await asyncio.to_thread(models(request).invoices)
        emails = await asyncio.to_thread(models(request).invoice_emails, invoices)
        return page(request, "invoices.html", who, invoices=invoices, emails=emails,
                    error=request.query_params.get("error", ""), key=uuid.uuid4().hex,
                    today=datetime.now(zone).date().isoformat())

    @app.get("/api/messages", tags=["billing"], summary="What the notifier sent or tries to send",
             description="Emails and push alerts with their delivery state (queued, sending, delivered, "
             "retrying, failed, uncertain), the latest first. `state` filters; repeat it for several.")
    async def api_messages(request: Request, who: User,
                           state: Annotated[list[MessageState], Query()] = [],  # noqa: B006
                           position: Position = None, wait: Wait = None,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Response:
        office_only(who)
        await fresh(request, position, wait)
        return json(await asyncio.to_thread(models(request).messages, state, (), limit))

    RULES = {"weekly": "FREQ=WEEKLY", "fortnightly": "FREQ=WEEKLY;INTERVAL=2", "monthly": "FREQ=MONTHLY",
             "quarterly": "FREQ=MONTHLY;INTERVAL=3", "yearly": "FREQ=YEARLY"}

    @app.get("/recurring", response_class=HTMLResponse, include_in_schema=False)
    async def recurring_page(request: Request, who: User, position: int | None = None) -> Response:
        office_only(who)
        await fresh(request, position)
        m = models(request)
        services, customers, technicians = await asyncio.to_thread(
            lambda: (m.recurrences(), m.customers(), m.technicians()))
        now = iso(datetime.now(UTC))  # as the occurrences are kept: sorts as text
        return page(request, "recurring.html", who, services=services, customers={c.id: c for c in customers},
                    technicians={t.id: t for t in technicians}, now=now, zone_name=settings.timezone,
                    rules=RULES, key=uuid.uuid4().hex, error=request.query_params.get("error", ""), form={})

    @app.post("/recurring/new", include_in_schema=False)
    async def new_recurring(request: Request, who: User) -> Response:
        writers_only(who)
        form = dict(await request.form())
        rule = str(form.get("rule") or "").strip().upper() or RULES.get(str(form.get("every", "")), "")
        body: dict[str, Any] = {
            "customer_id": form.get("customer_id", ""), "job_type": form.get("job_type", ""),
            "description": form.get("description", ""), "technician_ids": [form.get("technician_id", "")],
            "rule": rule, "start": str(form.get("start", "")), "timezone": settings.timezone,
        }
        for field, default in (("duration_minutes", "60"), ("horizon_days", "60")):
            given = str(form.get(field) or default).strip()
            body[field] = int(given) if given.isdigit() else given  # else the command API names it
        if len(body["start"]) == 16:  # a datetime-local without seconds
            body["start"] += ":00"
        return await submitted(request, "/recurring-services", body, form, "/recurring")

    @app.post("/recurring/{recurrence_id}/end", include_in_schema=False)
    async def end_recurring(request: Request, who: User, recurrence_id: UUID) -> Response:
        writers_only(who)
        form = dict(await request.form())
        return await submitted(request, f"/recurring-services/{recurrence_id}/end",
                               {"reason": form.get("reason", "")}, form, "/recurring")

    @app.get("/messages", response_class=HTMLResponse, include_in_schema=False)
    async def messages_page(request: Request, who: User, position: int | None = None) -> Response:
        office_only(who)
        await fresh(request, position)
        m = models(request)
        stuck, recent = await asyncio.to_thread(lambda: (m.messages(["failed", "uncertain"]), m.messages((), (), 50)))
        return page(request, "messages.html", who, stuck=stuck, recent=recent, key=uuid.uuid4().hex,
                    error=request.query_params.get("error", ""))

    @app.post("/messages/{message_id}/redeliver", include_in_schema=False)
    async def redeliver(request: Request, who: User, message_id: UUID) -> Response:
        writers_only(who)
        form = dict(await request.form())
        return await submitted(request, f"/messages/{message_id}/redeliver", {"reason": form.get("reason", "")},
                               form, "/messages")

    async def failure_rows(request: Request, states: list[str]) -> list[FailureRow]:
        stream = request.app.state.stream
        if stream is None:
            raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
        return await failures(stream, states)

    @app.get("/api/failures", tags=["failures"], summary="Events a consumer could not process",
             description="Each failure as recorded on the stream (read now, not from a read model): which "
             "consumer, the stream position and event, the error, and its state (open, retrying, resolved). "
             "`state` filters; repeat it for several.")
    async def api_failures(request: Request, who: User,
                           state: Annotated[list[FailureState], Query()] = []) -> Response:  # noqa: B006
        office_only(who)
        return json(await failure_rows(request, list(state)))

    @app.get("/failures", response_class=HTMLResponse, include_in_schema=False)
    async def failures_page(request: Request, who: User) -> Response:
        office_only(who)
        rows = await failure_rows(request, [])
        return page(request, "failures.html", who, open=[r for r in rows if r.state != "resolved"],
                    resolved=[r for r in rows if r.state == "resolved"][:20], key=uuid.uuid4().hex,
                    error=request.query_params.get("error", ""))

    @app.post("/failures/{failure_id}/retry", include_in_schema=False)
    async def retry_failure(request: Request, who: User, failure_id: UUID) -> Response:
        writers_only(who)
        form = dict(await request.form())
        return await submitted(request, f"/failures/{failure_id}/retry", {"reason": form.get("reason", "")},
                               form, "/failures")

    @app.get("/payments", response_class=HTMLResponse, include_in_schema=False)
    async def payments_page(request: Request, who: User, position: int | None = None) -> Response:
        billing_readers(who)
        await fresh(request, position)
        return page(request, "payments.html", who, unmatched=await asyncio.to_thread(models(request).unmatched),
                    error=request.query_params.get("error", ""), done=request.query_params.get("done", ""))

    @app.post("/payments/statements", include_in_schema=False)
    async def upload_statement(request: Request, who: User) -> Response:
        writers_only(who)
        form = await request.form()
        upload = form.get("statement")
        if upload is None or isinstance(upload, str):
            return RedirectResponse("/payments?error=" + _quote("statement: choose a file"), status_code=303)
        data = await upload.read()
        response = await request.app.state.commands.post(
            "/bank-statements", content=data,
            headers={"Authorization": f"Bearer {token_of(request)}", "Content-Type": "application/octet-stream"})
        answer = response.json()
        if response.status_code >= 400:
            return RedirectResponse("/payments?error=" + _quote(_problem(answer)), status_code=303)
        done = "already imported: nothing added" if answer.get("replayed") else "imported; matching it now"
        return RedirectResponse(f"/payments?position={answer['position']}&done=" + _quote(done), status_code=303)

    @app.get("/ledger", response_class=HTMLResponse, include_in_schema=False)
    async def ledger_page(request: Request, who: User) -> Response:
        billing_readers(who)
        m = models(request)
        trial, aging = await asyncio.to_thread(lambda: (m.trial_balance(), m.aging()))
        return page(request, "ledger.html", who, trial=trial, aging=aging)

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    async def reports_page(request: Request, who: User) -> Response:
        office_only(who)
        return page(request, "reports.html", who, reports=await asyncio.to_thread(models(request).reports))

    # --- the office's commands, forwarded with the user's own token -------------------------

    async def forward(request: Request, path: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        response = await request.app.state.commands.post(
            path, content=_encode(body),
            headers={"Authorization": f"Bearer {token_of(request)}", "Idempotency-Key": key,
                     "Content-Type": "application/json"})
        return response.status_code, response.json()

    def local_to_utc(value: str, field: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{field}: not a date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC).isoformat()

    @app.post("/jobs/new", include_in_schema=False)
    async def new_job(request: Request, who: User) -> Response:
        writers_only(who)
        form = dict(await request.form())
        body: dict[str, Any] = {
            "customer_id": form.get("customer_id", ""), "job_type": form.get("job_type", ""),
            "description": form.get("description", ""), "source": form.get("source", "phone"),
            "priority": form.get("priority", "normal"), "billing_kind": form.get("billing_kind", "paid"),
        }
        if form.get("street"):
            body["site_address"] = {k: form.get(k, "") for k in ("street", "city", "postal_code", "country")}
        if form.get("sla_deadline"):
            body["sla_deadline"] = local_to_utc(str(form["sla_deadline"]), "sla_deadline")
        status, answer = await forward(request, "/jobs", body, str(form.get("key") or uuid.uuid4().hex))
        if status >= 400:
            return page(request, "job_new.html", who, customers=await asyncio.to_thread(models(request).customers),
                        key=form.get("key"), error=_problem(answer), form=form)
        return RedirectResponse(f"/jobs/{answer['id']}?position={answer['position']}", status_code=303)

    @app.post("/customers/new", include_in_schema=False)
    async def new_customer(request: Request, who: User) -> Response:
        writers_only(who)
        form = dict(await request.form())
        body: dict[str, Any] = {
            "name": form.get("name", ""),
            "billing_address": {k: form.get(k, "") for k in ("street", "city", "postal_code", "country")},
            "phone": form.get("phone", ""),
        }
        for chosen in ("language", "currency"):  # not chosen: the address's language, the company's currency
            if form.get(chosen):
                body[chosen] = form[chosen]
        if form.get("email"):
            body["email"] = form["email"]
        if form.get("vat_id"):
            body["vat_id"] = form["vat_id"]
        status, answer = await forward(request, "/customers", body, str(form.get("key") or uuid.uuid4().hex))
        if status >= 400:
            return page(request, "customer_new.html", who, key=form.get("key"), error=_problem(answer), form=form)
        return RedirectResponse(f"/jobs/new?position={answer['position']}", status_code=303)

    @app.post("/jobs/{job_id}/{action}", include_in_schema=False)
    async def job_command(request: Request, who: User, job_id: UUID, action: str) -> Response:
        writers_only(who)
        form = dict(await request.form())
        if action in ("schedule", "reschedule"):
            body: dict[str, Any] = {
                "technician_ids": [form.get("technician_id", "")],
                "start": local_to_utc(str(form.get("start", "")), "start"),
                "duration_minutes": int(str(form.get("duration_minutes") or 60)),
            }
            if action == "reschedule" and form.get("reason"):
                body["reason"] = form["reason"]
        elif action in ("cancel", "hold", "reopen"):
            body = {"reason": form.get("reason", "")}
        elif action in ("resume", "release-invoicing"):
            body = {}
        elif action == "notes":
            body = {"text": form.get("text", "")}
        else:
            raise Refused(404, f"the dashboard has no {action!r} form")
        return await submitted(request, f"/jobs/{job_id}/{action}", body, form, f"/jobs/{job_id}")

    async def submitted(request: Request, path: str, body: dict[str, Any], form: dict[str, Any],
                        back: str) -> Response:
        """A form's command, forwarded; back to the page, which waits until it shows the
        command's effect, or shows why it was refused."""
        status, answer = await forward(request, path, body, str(form.get("key") or uuid.uuid4().hex))
        if status >= 400:
            return RedirectResponse(f"{back}?error={_quote(_problem(answer))}", status_code=303)
        return RedirectResponse(f"{back}?position={answer['position']}", status_code=303)

    @app.post("/invoices/{invoice_id}/{action}", include_in_schema=False)
    async def invoice_command(request: Request, who: User, invoice_id: UUID, action: str) -> Response:
        """The Invoices page's forms: record a payment, issue a credit note."""
        writers_only(who)
        form = dict(await request.form())
        if action == "payments":
            body: dict[str, Any] = {"amount": str(form.get("amount", "")).strip().replace(",", "."),
                                    "received_on": str(form.get("received_on", "")), "payer": form.get("payer", "")}
        elif action == "credit-notes":
            body = {"reason": form.get("reason", "")}
            if str(form.get("amount", "")).strip():
                body["amount"] = str(form["amount"]).strip().replace(",", ".")
        else:
            raise Refused(404, f"the dashboard has no {action!r} form")
        return await submitted(request, f"/invoices/{invoice_id}/{action}", body, form, "/invoices")

    return app


class Live:
    """One poller of the read models' position, fanned out to every open dashboard."""

    def __init__(self, models: ReadModels, every: float = 0.05) -> None:
        self.models = models
        self.every = every
        self.position = 0
        self.board_position = 0
        self.users_position = 0  # the board position the remembered users were last read at
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._remaking: dict[bytes, asyncio.Task[Any]] = {}

    def making(self, f: BoardFilter) -> asyncio.Task[Page]:
        """This filter's page, being made: one make at a time per filter, shared by every
        reader who asks meanwhile (a hundred dashboards opening the same new filter wait
        for one query, not a hundred in a row)."""
        key = msgspec.json.encode(f)
        task = self._remaking.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.models.board_json, f))
            self._remaking[key] = task
            task.add_done_callback(lambda _: self._remaking.pop(key, None))
        return task

    def remake(self, f: BoardFilter) -> None:
        """Make this filter's page again in the background, once at a time."""
        if not self._stopping.is_set():
            self.making(f)

    def start(self) -> None:
        if self._task is None and not self._stopping.is_set():
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling and wait for every read in flight, so the models can be closed.

        A read is never cancelled half-way: its thread would carry on with a
        connection that is being closed under it, and could wait forever.
        """
        self._stopping.set()
        waiting = [t for t in (self._task, *self._remaking.values()) if t is not None]
        await asyncio.gather(*waiting, return_exceptions=True)

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                reached, self.board_position = await asyncio.to_thread(
                    lambda: (self.models.position(), self.models.board_position()))
                if self.board_position != self.users_position:
                    await asyncio.to_thread(self.models.refresh_users)
                    self.users_position = self.board_position
            except Exception:  # a database hiccup must not end live updates for good
                log.exception("could not read the read models' position; trying again")
                reached = self.position
            if reached != self.position:
                self.position = reached
                async with self.changed:
                    self.changed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)

    async def wake(self) -> None:
        """Every open stream looks again (a token was revoked: its streams end)."""
        async with self.changed:
            self.changed.notify_all()

    async def stream(self, request: Request, revoked: Callable[[], bool]) -> AsyncIterator[bytes]:
        """The position as it moves, until the reader goes or their token is revoked."""
        self.start()
        seen = await asyncio.to_thread(self.models.position)
        yield f"retry: 1000\nevent: position\ndata: {seen}\n\n".encode()
        while not revoked() and not await request.is_disconnected():
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
            if self.position != seen:
                seen = self.position
                yield f"event: position\ndata: {seen}\n\n".encode()


def browsing(request: Request) -> bool:
    """A browser's navigation: it asks for HTML (``Accept: text/html``, as every browser does
    for a page, a link or a form), or says so (``Sec-Fetch-Mode: navigate``). curl, scripts
    and the pages' own fetches ask for anything else, or for anything (``*/*``)."""
    return request.headers.get("sec-fetch-mode") == "navigate" or "text/html" in request.headers.get("accept", "")


def _day(text: str, field: str, plus: int = 0) -> str:
    """A date from a form's date field ('' when left empty), as the board compares it."""
    if not text:
        return ""
    try:
        return (date.fromisoformat(text) + timedelta(days=plus)).isoformat()
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


def _problem(answer: dict[str, Any]) -> str:
    detail = answer.get("detail", answer)
    if isinstance(detail, list):
        return "; ".join(f"{d.get('field', '')}: {d.get('reason', '')}" for d in detail)
    return str(detail)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    finish = end or date.today() + timedelta(days=1)
    return start or finish - timedelta(days=31), finish


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def settings_from_environment(env: Mapping[str, str] | None = None) -> Settings:
    import os

    env = os.environ if env is None else env
    return Settings(
        read_model_url=env["READ_MODEL_URL"],
        command_api_url=env.get("COMMAND_API_URL", "http://127.0.0.1:8000"),
        timezone=env.get("JOBSTREAM_TIMEZONE", "UTC"),
        stream_env={key: env.get(key, "") for key in STREAM_VARIABLES},
        link_secret=env.get("JOBSTREAM_LINK_SECRET", ""),
        public_url=env.get("JOBSTREAM_PUBLIC_URL", ""),
    )


def app_from_environment(env: Mapping[str, str] | None = None) -> FastAPI:
    """For `uvicorn --factory` (several workers) and `jobstream run web`: settings from the
    environment, or from the one given."""
    return create_app(settings_from_environment(env))
