"""The command API: FastAPI over JobstreamApp, for the office and the technicians' client.

Request bodies are the command Structs of events.contract, decoded by msgspec (one
definition serves validation and the OpenAPI document). Domain errors map to HTTP here,
once: 404 unknown aggregate, 409 illegal transition or version conflict, 422 invalid input
naming the field, 403 refused with the reason, 401 no valid token, 503 the event store not
answering (try again).
"""

import asyncio
import json as pyjson
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import httpx
import msgspec
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from nats import errors as nats_errors
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from events import contract
from events.contract import (
    EMAIL,
    LINE,
    LINE_CHARACTER,
    LINE_RULE,
    LINES,
    LINES_RULE,
    REASON,
    AcceptQuote,
    AddNote,
    AddTimeEntry,
    AgreeRetainer,
    Bound,
    CancelJob,
    ChangeCustomerDetails,
    ChangeJobDetails,
    ChangeNotificationPreferences,
    ChangeRecurringService,
    ChangeTechnicianDetails,
    CompleteJob,
    CorrectTimeEntry,
    CreatePriceList,
    DeactivateTechnician,
    DefineRecurringService,
    EndRecurringService,
    EndRetainer,
    IssueCreditNote,
    PriceActivity,
    PutJobOnHold,
    QuoteJob,
    ReactivateTechnician,
    RecordPayment,
    RegisterCustomer,
    RegisterPushSubscription,
    RegisterTechnician,
    RejectQuote,
    ReleaseInvoicing,
    RemoveActivity,
    ReopenJob,
    RequestInterimInvoice,
    RequestJob,
    RequestRedelivery,
    RescheduleJob,
    ResumeJob,
    RetryProcessing,
    Role,
    ScheduleJob,
    SellHoursPackage,
    SignOffJob,
    StartWork,
    StopWork,
    TakeJob,
    UnassignJob,
    UseMaterial,
    decode_event,
    recipient_id,
    unreadable,
)
from services import recurring
from services.application import COMMAND_KINDS, JobstreamApp, Kind, Result, Revoked, VersionConflict, WrongKind, a
from services.deps import ERRORS, CurrentActor, Unauthorized, authenticated, jobstream
from services.domain.common import (
    Actor,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
)
from services.domain.job import FOR_TECHNICIANS

# Who may send a command or read an aggregate, checked right after the token (before the
# body is read); the deciders check the rest (a technician's job is theirs). The role matrix
# in docs/architecture.md lists every route; tests/integration/test_access.py walks it.
WRITERS = frozenset({Role.OFFICE, Role.ADMIN})
READERS = frozenset({Role.OFFICE, Role.ACCOUNTANT, Role.ADMIN})
EVERYONE = frozenset(Role)

log = logging.getLogger("jobstream.api")


def own_recipient(who: Actor) -> UUID:
    """The caller's own notification settings: their id derives from their user name."""
    return recipient_id(who.id)


async def generated(app: JobstreamApp, recurrence_id: UUID) -> dict[str, Any]:
    """A recurring service's jobs, scheduled ahead in the same request."""
    done = await recurring.generate(app, recurrence_id)
    return {"generated": done, "position": done.position}


@dataclass(frozen=True)
class CommandRoute:
    """One command of the API: a POST to ``path`` with the command's JSON as the body.

    The aggregate is the path's ``{id}``, a new one (``creates``: 201, its id derived from
    the Idempotency-Key), or the caller's ``own`` (their notification settings); the kind of
    aggregate is the command's (services.application.COMMAND_KINDS). ``then`` is what follows
    in the same request (a recurring service's jobs), added to the answer. Both the handler
    CommandDoor serves and the route /docs shows are built from this row."""

    path: str
    command: type[msgspec.Struct]
    creates: bool = False
    summary: str = ""  # the command's name when blank
    tag: str = ""  # the aggregate's kind when blank
    roles: frozenset[Role] | None = None  # the office, and technicians for FOR_TECHNICIANS
    own: Callable[[Actor], UUID] | None = None
    then: Callable[[JobstreamApp, UUID], Coroutine[Any, Any, dict[str, Any]]] | None = None

    @property
    def kind(self) -> Kind:
        return COMMAND_KINDS[self.command]

    @property
    def allowed(self) -> frozenset[Role]:
        if self.roles is not None:
            return self.roles
        return WRITERS | {Role.TECHNICIAN} if issubclass(self.command, FOR_TECHNICIANS) else WRITERS

    @property
    def segments(self) -> tuple[str, ...]:
        """The path's segments, as CommandDoor finds them (``{id}`` second, if at all)."""
        segments = tuple(self.path.split("/")[1:])
        assert "{id}" not in segments or segments.index("{id}") == 1, f"CommandDoor finds {{id}} second: {self.path}"
        return segments


R = CommandRoute
# Every command of the API. Adding one: a row here and a case in its aggregate's decide.
COMMANDS: tuple[CommandRoute, ...] = (
    R("/customers", RegisterCustomer, creates=True, summary="Register a customer"),
    R("/customers/{id}/details", ChangeCustomerDetails, summary="Change a customer's details (history is kept)"),
    R(
        "/customers/{id}/retainers",
        AgreeRetainer,
        summary="Agree a monthly flat-rate retainer: invoiced on the first of each month",
    ),
    R("/customers/{id}/retainers/end", EndRetainer, summary="End a retainer after a given month"),
    R(
        "/customers/{id}/hours-packages",
        SellHoursPackage,
        summary="Sell prepaid hours: the customer's time is billed from them first",
    ),
    R("/technicians", RegisterTechnician, creates=True, summary="Register a technician"),
    R("/technicians/{id}/details", ChangeTechnicianDetails),
    R("/technicians/{id}/deactivate", DeactivateTechnician),
    R("/technicians/{id}/reactivate", ReactivateTechnician),
    R(
        "/price-lists",
        CreatePriceList,
        creates=True,
        summary="Create a price list (the default one is the service catalogue)",
    ),
    R("/price-lists/{id}/activities", PriceActivity, summary="Add or change an activity's price"),
    R("/price-lists/{id}/activities/remove", RemoveActivity, summary="Remove an activity from a price list"),
    R("/jobs", RequestJob, creates=True, summary="Take a request: a new job"),
    R("/jobs/{id}/details", ChangeJobDetails),
    R("/jobs/{id}/quote", QuoteJob),
    R("/jobs/{id}/quote/accept", AcceptQuote),
    R("/jobs/{id}/quote/reject", RejectQuote),
    R("/jobs/{id}/schedule", ScheduleJob),
    R("/jobs/{id}/reschedule", RescheduleJob),
    R("/jobs/{id}/unassign", UnassignJob),
    R("/jobs/{id}/take", TakeJob),
    R("/jobs/{id}/start", StartWork),
    R("/jobs/{id}/stop", StopWork),
    R("/jobs/{id}/time-entries", AddTimeEntry),
    R("/jobs/{id}/time-entries/correct", CorrectTimeEntry),
    R("/jobs/{id}/notes", AddNote),
    R("/jobs/{id}/materials", UseMaterial),
    R("/jobs/{id}/complete", CompleteJob),
    R("/jobs/{id}/sign-off", SignOffJob),
    R("/jobs/{id}/hold", PutJobOnHold),
    R("/jobs/{id}/resume", ResumeJob),
    R("/jobs/{id}/cancel", CancelJob),
    R("/jobs/{id}/reopen", ReopenJob),
    R("/jobs/{id}/interim-invoice", RequestInterimInvoice),
    R("/jobs/{id}/release-invoicing", ReleaseInvoicing),
    R(
        "/recurring-services",
        DefineRecurringService,
        creates=True,
        then=generated,
        tag="recurring services",
        summary="Plan a visit that repeats (RFC 5545 rule): its jobs are scheduled ahead at once",
    ),
    R(
        "/recurring-services/{id}/change",
        ChangeRecurringService,
        then=generated,
        tag="recurring services",
        summary="Change a recurring service: its future jobs are moved, added or cancelled to match",
    ),
    R(
        "/recurring-services/{id}/end",
        EndRecurringService,
        then=generated,
        tag="recurring services",
        summary="End a recurring service: its jobs after the end are cancelled",
    ),
    R(
        "/me/notifications",
        ChangeNotificationPreferences,
        tag="notifications",
        own=own_recipient,
        roles=EVERYONE,
        summary="Choose which alerts you get, and your quiet hours (push alerts wait them out)",
    ),
    R(
        "/me/push-subscriptions",
        RegisterPushSubscription,
        tag="notifications",
        own=own_recipient,
        roles=EVERYONE,
        summary="Register this device for Web Push: the body is the browser's PushSubscription",
    ),
    R(
        "/messages/{id}/redeliver",
        RequestRedelivery,
        tag="notifications",
        summary="Send a failed or uncertain message again (the office decides)",
    ),
    R(
        "/failures/{id}/retry",
        RetryProcessing,
        tag="failures",
        summary="Have the consumer that could not process an event try it again (once its cause is fixed)",
    ),
    R(
        "/invoices/{id}/credit-notes",
        IssueCreditNote,
        tag="billing",
        summary="Correct an issued invoice with a credit note (the invoicer issues it, numbered)",
    ),
    R(
        "/invoices/{id}/payments",
        RecordPayment,
        tag="billing",
        summary="Record money received for an invoice (cash, card, a transfer seen)",
    ),
)
del R

_encoder = msgspec.json.Encoder(decimal_format="string")
_AT_FIELD = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_BACKTICK_FIELD = re.compile(r"`(?P<field>[a-z_]+)`")

# The command headers, as CommandDoor reads them and FastAPI documents them
COMMAND_HEADERS = ("idempotency-key", "if-match", "x-correlation-id")
MAX_HEADER = 200
HEADER_TEXT = f"^{LINE_CHARACTER}*$"  # for pydantic's regex, which has no lookahead (and needs none)
VERSION = re.compile(r"^\d{1,10}$")
MAX_COMMAND_BODY = 1_000_000

# The event store not answering (NATS down, restarting, or slower than the request's
# timeout): a 503 to try again, never a 500. A command that timed out may have been stored;
# sent again with the same Idempotency-Key, it is applied once.
UNAVAILABLE = (
    TimeoutError,
    ConnectionError,
    nats_errors.ConnectionClosedError,
    nats_errors.ConnectionReconnectingError,
    nats_errors.ConnectionDrainingError,
    nats_errors.StaleConnectionError,
    nats_errors.OutboundBufferLimitError,
    nats_errors.NoRespondersError,
)


def json(content: Any, status_code: int = 200) -> Response:
    return Response(_encoder.encode(content), status_code=status_code, media_type="application/json")


def problem(status_code: int, detail: Any, **extra: Any) -> Response:
    return json({"detail": detail, **extra}, status_code)


# msgspec names the pattern a value missed: the text patterns, said in words
READABLE = {
    EMAIL: "an email address like name@example.com, without spaces or control characters",
    LINE: LINE_RULE,
    LINES: LINES_RULE,
    REASON: "a reason in words, not blank; " + LINES_RULE,
}
LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SURROGATE_CHARACTER = re.compile("[\ud800-\udfff]")


def field_error(message: str) -> dict[str, str]:
    """msgspec's message as {field, reason}: 'Expected `int`, got `str` - at `$.minutes`'."""
    match = _AT_FIELD.match(message)
    assert match is not None
    path = (match.group("path") or "").lstrip(".")
    reason = match.group("reason")
    reason = {
        "Invalid RFC3339 encoded date": "not a real day (YYYY-MM-DD)",
        "Invalid RFC3339 encoded datetime": "not a date and time (RFC 3339, like 2026-11-23T09:00:00Z)",
    }.get(reason, reason)
    for pattern, readable in READABLE.items():
        if f"matching regex {pattern!r}" in reason:
            reason = readable
    if not path:
        named = _BACKTICK_FIELD.search(reason)
        if named and "unknown field" not in reason:
            path = named.group("field")
    if "unknown field" in reason:
        path = reason.split("`")[1] if "`" in reason else path
    return {"field": path or "body", "reason": reason}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: dict[str, str]
    title: str = "jobstream command API"

    @property
    def vapid_public_key(self) -> str:
        return self.env.get("VAPID_PUBLIC_KEY", "")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # NATS on the server's own loop: a command is awaited, never handed between threads
        app.state.jobstream = await JobstreamApp.open(settings.env)
        try:
            yield
        finally:
            await app.state.jobstream.aclose()

    app = FastAPI(
        title=settings.title,
        version="0.1.0",
        description="Commands for the office and the technicians. Every accepted command "
        "answers with the aggregate's new version and the stream position of its last event.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    # every command of the table, by its path's segments: served by CommandDoor ahead of FastAPI
    app.add_middleware(CommandDoor, routes={route.segments: door_handler(route) for route in COMMANDS})
    app.state.command_routes = {route.path: (route.kind.name, route.command) for route in COMMANDS}
    include(app, command_router)

    async def visible_job(request: Request, id: UUID, who: Actor) -> Any:
        """The job, if the caller may see it: technicians their own jobs and the open pool."""
        app = jobstream(request)
        state = await app.call(app.get_async("job", id))
        if who.role is Role.TECHNICIAN and who.technician_id not in state.technician_ids and not state.in_open_pool:
            raise Forbidden("this job is not assigned to you")
        return state

    def read_route(path: str, kind: str, summary: str, roles: frozenset[Role] = READERS) -> None:
        async def read(request: Request, id: UUID, who: CurrentActor) -> Response:
            if kind == "job":
                return json(await visible_job(request, id, who))
            if not (kind == "technician" and who.technician_id == id):  # a technician reads their own
                permitted(who, roles, f"read this {kind}")
            app = jobstream(request)
            return json(await app.call(app.get_async(kind, id)))

        app.add_api_route(
            path,
            read,
            methods=["GET"],
            summary=summary,
            responses={**ERRORS, 200: {"description": "the current state"}},
            tags=[kind],
            operation_id=f"get_{kind}",
        )

    read_route("/jobs/{id}", "job", "A job's current state, from its events (technicians: their own and the pool)")
    read_route("/customers/{id}", "customer", "A customer's current details")
    read_route("/technicians/{id}", "technician", "A technician (a technician reads only their own)")
    read_route("/price-lists/{id}", "pricelist", "A price list with its activities")
    read_route("/invoices/{id}", "invoice", "An invoice: its number, total and what has been paid")

    @app.get(
        "/jobs/{id}/customer",
        tags=["job"],
        responses={**ERRORS},
        summary="How to reach the job's customer: name, phone, email, address (for whoever sees the job)",
    )
    async def job_customer(request: Request, id: UUID, who: CurrentActor) -> Response:
        job = await visible_job(request, id, who)
        app_ = jobstream(request)
        customer = await app_.call(app_.get_async("customer", job.customer_id))
        return json(
            {
                "id": customer.id,
                "name": customer.name,
                "phone": customer.phone,
                "email": customer.email,
                "language": customer.language,
                "site_address": job.site_address,
            }
        )

    read_route("/recurring-services/{id}", "recurrence", "A recurring service: its plan and occurrences")

    from services import booking, field

    read_api_url = settings.env.get("READ_API_URL", "")
    app.state.read_api = httpx.AsyncClient(base_url=read_api_url, timeout=15.0) if read_api_url else None
    include(app, field.router)
    app.state.booking = booking.Desk(settings.env)
    include(app, booking.router)

    @app.get(
        "/push/public-key",
        tags=["notifications"],
        openapi_extra={"security": []},
        responses={**ERRORS},
        summary="The VAPID public key a browser subscribes with (applicationServerKey)",
    )
    def push_public_key() -> dict[str, str]:
        if not settings.vapid_public_key:
            raise NotFound("push key", "configured (set VAPID_PRIVATE_KEY)")
        return {"public_key": settings.vapid_public_key}

    @app.post(
        "/bank-statements",
        tags=["billing"],
        status_code=201,
        responses={**ERRORS, 201: ACCEPTED},
        summary="Import a bank statement (camt.053 XML or MT940): its credits are matched to invoices",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/xml": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def import_statement(request: Request, who: CurrentActor) -> Response:
        from services.bank import StatementError

        permitted(who, WRITERS, "import bank statements")  # before the file is read
        data = await request.body()
        if not data.strip():
            raise Invalid("statement", "the request body is empty: send the statement file")
        if len(data) > 50_000_000:
            raise Invalid("statement", "larger than 50 MB: split the statement")
        app_ = jobstream(request)
        try:
            result = await app_.call(app_.import_statement_async(data, who))
        except StatementError as error:
            raise Invalid("statement", str(error).removeprefix("statement: ")) from None
        return json(result, 201)  # again: the first import's answer, as a command's retry gets

    @app.get(
        "/jobs/{id}/events",
        tags=["job"],
        responses={**ERRORS},
        summary="Every event of a job, in order, straight from the stream",
    )
    async def job_events(request: Request, id: UUID, who: CurrentActor) -> Response:
        await visible_job(request, id, who)
        app_ = jobstream(request)
        history = await asyncio.to_thread(app_.history, id)
        return json(
            [
                {
                    "version": s.originator_version,
                    "type": s.topic,
                    "event": msgspec.to_builtins(decode_event(s.state), enc_hook=str),
                }
                for s in history
            ]
        )

    @app.get(
        "/health",
        tags=["service"],
        openapi_extra={"security": []},
        summary="Liveness, for load balancers and `jobstream up`: the only public route",
    )
    def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "position": jobstream(request).recorder.max_notification_id() or 0}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(COMMAND_SCHEMAS)
            spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            spec["security"] = [{"bearer": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
    return app


DECIMAL = {
    "anyOf": [{"type": "string", "pattern": r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$"}, {"type": "number"}],
    "description": "a decimal number; as a string it keeps every digit",
}


# A wall-clock time without an offset, as msgspec decodes one (its schema says only "string")
LOCAL_TIME = {
    "type": "string",
    "pattern": r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
    "description": "a local date and time, without an offset: 2027-01-04T09:00:00",
}


def decimal_schema(bound: Bound) -> dict[str, Any]:
    """What a bounded decimal field takes, as a JSON number or a string of digits."""
    digits = len(str(int(bound.high))) - 1 or 1  # integer digits below the top (1e9: nine)
    low = "minimum" if bound.low_inclusive else "exclusiveMinimum"
    if bound.low == 0 and not bound.low_inclusive:
        text = rf"^([1-9][0-9]{{0,{digits - 1}}}(\.[0-9]{{1,6}})?|0\.[0-9]{{0,5}}[1-9])$"
    else:
        text = rf"^[0-9]{{1,{digits}}}(\.[0-9]{{1,6}})?$"
    return {
        "anyOf": [
            {"type": "number", low: float(bound.low), "maximum": float(bound.high)},
            {"type": "string", "pattern": text},
        ],
        "description": f"a decimal number {'from' if bound.low_inclusive else 'above'} {bound.low} "
        f"to {bound.high}, at most 6 decimal places; as a string it keeps every digit",
    }


def _as_accepted(components: dict[str, Any]) -> dict[str, Any]:
    """The command schemas narrowed to what the door accepts: bounded decimals, local times."""
    for name, schema in components.items():
        command_type = getattr(contract, name, None)
        if not isinstance(command_type, type) or not issubclass(command_type, msgspec.Struct):
            continue
        properties = schema.get("properties", {})
        for field, bound in getattr(command_type, "decimals", {}).items():
            nullable = any(option.get("type") == "null" for option in properties[field].get("anyOf", []))
            properties[field] = (
                {"anyOf": [decimal_schema(bound), {"type": "null"}]} if nullable else decimal_schema(bound)
            )
        for field in msgspec.structs.fields(command_type):
            kind = field.type
            options = getattr(kind, "__args__", (kind,)) if not hasattr(kind, "__metadata__") else (kind,)
            if any(
                getattr(o, "__metadata__", [None])[0] is not None
                and getattr(o, "__origin__", None) is datetime
                and o.__metadata__[0].tz is False
                for o in options
            ):
                nullable = type(None) in options
                properties[field.encode_name] = {"anyOf": [LOCAL_TIME, {"type": "null"}]} if nullable else LOCAL_TIME
    return components


def _decimals_as_numbers(node: Any) -> Any:
    """msgspec decodes a Decimal from a JSON string or number: say so in the document."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "decimal":
            return DECIMAL
        return {key: _decimals_as_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_decimals_as_numbers(value) for value in node]
    return node


def include(app: FastAPI, router: APIRouter) -> None:
    """A module's router, its routes the app's own: FastAPI (0.165) would include it as one
    lazy route, hiding its routes from ``app.routes`` (which the role matrix's test walks)."""
    app.router.routes.extend(router.routes)


def app_from_environment(env: Mapping[str, str] | None = None) -> FastAPI:
    """The app for `uvicorn --factory` (several worker processes) and for `jobstream run web`:
    every setting from the environment (or the one given), as `jobstream run command-api`
    gives them (the stream, the read API's URL, the VAPID key, the booking page's services)."""
    import os

    return create_app(Settings(env=dict(os.environ if env is None else env)))


CommandHandler = Callable[[Scope, Receive, Send, "str | None"], Awaitable[None]]


class CommandDoor:
    """Commands, the hot path, served before FastAPI's routing and dependency solving,
    which took about a third of a command's time (docs/benchmarks.md): a POST whose path
    is a command route's goes to that route's handler, found by its segments (the second
    one standing for ``{id}``); anything else goes on to FastAPI."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, ...], CommandHandler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = tuple(scope["path"].split("/")[1:])
            handler = self.routes.get(parts)
            if handler is not None:
                return await handler(scope, receive, send, None)
            if len(parts) > 1:
                handler = self.routes.get((parts[0], "{id}", *parts[2:]))
                if handler is not None:
                    return await handler(scope, receive, send, parts[1])
        await self.app(scope, receive, send)


def permitted(who: Actor, roles: frozenset[Role], what: str) -> None:
    """403 unless the caller's role is one of these."""
    if who.role is Role.ACCOUNTANT and who.role not in roles:
        raise Forbidden("accountants have read-only access")
    if who.role not in roles:
        raise Forbidden(f"the {who.role.value} role may not {what[:1].lower()}{what[1:]}; ask the office")


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_COMMAND_BODY:
            raise Invalid("body", f"larger than {MAX_COMMAND_BODY // 1_000_000} MB: a command is a few fields")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _decoded(decoder: msgspec.json.Decoder[Any], raw: bytes) -> msgspec.Struct:
    try:
        return decoder.decode(raw or b"{}")
    except msgspec.ValidationError as error:
        if "got `float`" in str(error):  # JSON has one kind of number: 208.0 is the integer 208
            try:
                return msgspec.convert(_integral(msgspec.json.decode(raw)), type=decoder.type)
            except msgspec.ValidationError as again:
                error = again
        raise Invalid(**field_error(str(error))) from None
    except msgspec.DecodeError as error:
        if LONE_SURROGATE.search(raw):  # a pair decodes; one alone is no character
            raise Invalid(
                _surrogate_field(raw), "a lone surrogate (\\ud800-\\udfff without its pair) is not a character"
            ) from None
        raise Invalid("body", f"not valid JSON: {error}") from None


def _surrogate_field(raw: bytes) -> str:
    """Where a lone surrogate sits in a JSON body, as msgspec names fields ('lines[0].code').

    msgspec refuses the whole document; Python's json module decodes the surrogate into the
    string, so the field holding it can be named. 'body' when the document is broken anyway.
    """
    try:
        document = pyjson.loads(raw)
    except ValueError:
        return "body"

    def holding(value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return path if SURROGATE_CHARACTER.search(value) else None
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            if isinstance(key, str) and SURROGATE_CHARACTER.search(key):
                return f"{path}.{key}".lstrip(".") if path else key
            found = holding(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
            if found is not None:
                return found
        return None

    return holding(document, "") or "body"


def _integral(value: Any) -> Any:
    """A decoded JSON value with its whole floats as integers (208.0 as 208)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _header_problems(key: str | None, if_match: str | None, correlation_id: str | None) -> list[dict[str, str]]:
    problems = []
    if key is not None and len(key) > MAX_HEADER:
        problems.append({"field": "header.Idempotency-Key", "reason": f"at most {MAX_HEADER} characters"})
    elif key is not None and unreadable(key):  # it is stored with the events (their command id)
        problems.append({"field": "header.Idempotency-Key", "reason": LINE_RULE})
    if if_match is not None and not VERSION.fullmatch(if_match):
        problems.append({"field": "header.If-Match", "reason": "a version: up to 10 digits"})
    if correlation_id is not None and len(correlation_id) > MAX_HEADER:
        problems.append({"field": "header.X-Correlation-Id", "reason": f"at most {MAX_HEADER} characters"})
    elif correlation_id is not None and unreadable(correlation_id):
        problems.append({"field": "header.X-Correlation-Id", "reason": LINE_RULE})
    return problems


# What error_response answers: from CommandDoor and from FastAPI's exception handlers alike
ANSWERED = (Unauthorized, Revoked, Forbidden, NotFound, InvalidTransition, VersionConflict, Invalid, *UNAVAILABLE)


def error_response(error: Exception) -> Response:
    """A refused command as HTTP, the same from CommandDoor and from FastAPI's handlers."""
    if isinstance(error, Unauthorized | Revoked):
        response = problem(401, str(error))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(error, Forbidden):
        return problem(403, str(error))
    if isinstance(error, NotFound):
        return problem(404, str(error))
    if isinstance(error, InvalidTransition):
        return problem(409, str(error), status=error.status)
    if isinstance(error, VersionConflict):
        return problem(409, str(error), current_version=error.current_version)
    if isinstance(error, Invalid):
        return problem(422, [{"field": error.field, "reason": error.reason}])
    if isinstance(error, UNAVAILABLE):
        log.warning("the event store did not answer: %s", error or type(error).__name__)
        response = problem(
            503,
            "the event store did not answer; try again (a command sent again with the "
            "same Idempotency-Key is applied once)",
        )
        response.headers["Retry-After"] = "1"
        return response
    raise TypeError(f"no HTTP answer for {type(error).__name__}")


def _install_error_handlers(app: FastAPI) -> None:
    async def refused(request: Request, error: Exception) -> Response:
        return error_response(error)

    for kind in ANSWERED:
        app.add_exception_handler(kind, refused)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        details = [
            {"field": ".".join(str(p) for p in e["loc"] if p not in ("body",)) or "body", "reason": e["msg"]}
            for e in error.errors()
        ]
        return problem(422, details)


# --- the command table, served: CommandDoor's handlers and the routes /docs shows -----------


def door_handler(route: CommandRoute) -> CommandHandler:
    """What FastAPI's dependencies would do for the row, in their order: the caller, the
    body, then the headers and the path's id, every problem with them named at once; then
    the command, executed. No routing or dependency solving: this is the hot path."""
    decoder = msgspec.json.Decoder(route.command)
    status = 201 if route.creates else 200
    roles, what = route.allowed, route.summary or route.command.__name__
    own, then = route.own, route.then

    async def run(
        app: JobstreamApp,
        who: Actor,
        command: msgspec.Struct,
        key: str | None,
        if_match: str | None,
        correlation_id: str | None,
        id: UUID | None,
    ) -> Response:
        target = id if id is not None else own(who) if own is not None else app.new_id(who, key)
        try:
            result = await app.call(
                app.execute_async(
                    target,
                    command,
                    who,
                    command_id=key,
                    correlation_id=correlation_id,
                    expected_version=int(if_match) if if_match else None,
                )
            )
        except WrongKind as wrong:
            if id is not None:
                raise
            # the id a creation derives from its key is taken by another kind of aggregate
            raise Invalid("header.Idempotency-Key", f"already used to create {a(wrong.actual)}") from None
        if then is None:
            return json(result, status)
        added = await app.call(then(app, target))
        answer = {**msgspec.structs.asdict(result), **added}
        answer["position"] = max(result.position, added.get("position", 0))  # the later of the two
        return json(answer, status)

    async def answer(scope: Scope, receive: Receive, id_text: str | None) -> Response:
        headers = Headers(scope=scope)
        app: JobstreamApp = scope["app"].state.jobstream
        who = await authenticated(app, headers.get("authorization"))
        permitted(who, roles, what)
        command = _decoded(decoder, await _body(receive))
        key, if_match, correlation_id = (headers.get(name) for name in COMMAND_HEADERS)
        problems = _header_problems(key, if_match, correlation_id)
        id = None
        if id_text is not None:
            try:
                id = UUID(id_text)
            except ValueError:
                problems.append({"field": "path.id", "reason": f"not a UUID: {id_text[:40]!r}"})
        if problems:
            return problem(422, problems)
        return await run(app, who, command, key, if_match, correlation_id, id)

    async def serve(scope: Scope, receive: Receive, send: Send, id_text: str | None) -> None:
        try:
            response = await answer(scope, receive, id_text)
        except ANSWERED as error:
            response = error_response(error)
        await response(scope, receive, send)

    return serve


# The command headers as FastAPI documents them; as strings, not nullable: a header is there or not
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_HEADER,
        pattern=HEADER_TEXT,
        description="the command's id: a retry with the same key returns the first result and appends nothing",
    ),
]
IfMatch = Annotated[
    str,
    Header(
        alias="If-Match",
        max_length=20,
        pattern=VERSION.pattern,
        description="the version the command was decided on; 409 if it moved on",
    ),
]
CorrelationId = Annotated[str, Header(alias="X-Correlation-Id", max_length=MAX_HEADER, pattern=HEADER_TEXT)]

_result = msgspec.json.schema_components([Result], ref_template="#/components/schemas/{name}")
ACCEPTED = {
    "description": "accepted: the new version and the stream position",
    "content": {"application/json": {"schema": _result[0][0]}},
}
# The schemas the command routes' bodies and answers refer to, for the OpenAPI document
COMMAND_SCHEMAS: dict[str, Any] = dict(_result[1])


def request_body(command_type: type[msgspec.Struct]) -> dict[str, Any]:
    (schema,), components = msgspec.json.schema_components([command_type], ref_template="#/components/schemas/{name}")
    COMMAND_SCHEMAS.update(_as_accepted(_decimals_as_numbers(components)))
    required = bool(components[command_type.__name__].get("required"))
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def declare(router: APIRouter, route: CommandRoute) -> None:
    """The row as FastAPI sees it: for the OpenAPI document (the caller, the headers, the
    body, the answers) and for its 405 on other methods. CommandDoor serves every POST first."""
    served_elsewhere = f"POST {route.path} is served by CommandDoor, before FastAPI's routing"
    if "{id}" in route.path:

        async def declared_on_one(
            id: UUID,
            who: CurrentActor,
            idempotency_key: IdempotencyKey = "",
            if_match: IfMatch = "",
            correlation_id: CorrelationId = "",
        ) -> Response:
            raise RuntimeError(served_elsewhere)

        endpoint: Callable[..., Awaitable[Response]] = declared_on_one
    else:

        async def declared_new(
            who: CurrentActor, idempotency_key: IdempotencyKey = "", correlation_id: CorrelationId = ""
        ) -> Response:
            raise RuntimeError(served_elsewhere)

        endpoint = declared_new
    status = 201 if route.creates else 200
    router.add_api_route(
        route.path,
        endpoint,
        methods=["POST"],
        summary=route.summary or route.command.__name__,
        responses={**ERRORS, status: ACCEPTED},
        openapi_extra=request_body(route.command),
        tags=[route.tag or route.kind.name],
        operation_id=route.command.__name__,
        status_code=status,
    )


command_router = APIRouter()
for _route in COMMANDS:
    declare(command_router, _route)
del _route


__all__ = ["JSONResponse", "Settings", "create_app"]
