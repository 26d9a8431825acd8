"""The tech client: the technicians' PWA, served by the command service under /tech, with
photo uploads to the NATS object store, the catalogue of materials, a live stream of the
user's alerts (server-sent events), and the read API's answers forwarded under /tech/api
so the phone talks to one origin."""

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
import msgspec
import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from events.contract import AttachPhoto, MessageQueued, Role, decode_event, unreadable
from services.deps import ERRORS, CurrentActor, jobstream
from services.domain.common import Forbidden, Invalid, NotFound

STATIC = Path(__file__).parent / "tech"
MAX_PHOTO = 8_000_000  # bytes; the tech client scales photos down to about 200 kB before sending
PHOTO_TYPES = {
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"RIFF": ("image/webp", "webp"),
}
NAMESPACE = UUID("a4a3f0c1-1d0b-4f7e-9a53-3c0d8e2b7f19")
KEEPALIVE = 15.0  # seconds between comments on an idle alert stream (proxies close silent ones)


# What the tech client reads through /tech/api: these read-API routes and no other.
# The path is matched as the server decoded it, so '..%2F', '%2e%2e', '..%5C' and their
# double encodings (a '%' left after one decoding) match nothing and are answered 404 here.
FORWARDED = re.compile(r"(board|position|schedule|timesheets|jobs/[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")
FORWARDED_NAMES = "board, position, schedule, timesheets and jobs/{id}"


def photo_name(job_id: UUID, photo_id: UUID, extension: str) -> str:
    return f"photos/{job_id}/{photo_id}.{extension}"


router = APIRouter()


def read_api(request: Request) -> httpx.AsyncClient | None:
    """The client of the read API the app factory made (None: READ_API_URL is not set)."""
    return request.app.state.read_api


# --- the tech client (the PWA) --------------------------------------------------------------------------


@router.get("/tech", include_in_schema=False)
@router.get("/tech/", include_in_schema=False)
def tech_index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/tech/{name}", include_in_schema=False)
def tech_file(name: str) -> FileResponse:
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise NotFound("file", name)
    headers = {"Cache-Control": "no-cache"}
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/tech/"
    return FileResponse(path, headers=headers)


@router.get("/me", tags=["notifications"], summary="Who this token belongs to", responses={**ERRORS})
def me(who: CurrentActor) -> Response:
    return Response(
        orjson.dumps(
            {
                "user": who.id,
                "role": who.role.value,
                "technician_id": str(who.technician_id) if who.technician_id else None,
            }
        ),
        media_type="application/json",
    )


# --- photos ---------------------------------------------------------------------------


@router.post(
    "/jobs/{id}/photos",
    tags=["job"],
    status_code=201,
    responses={**ERRORS},
    summary="Attach a photo to a job: the body is the image (JPEG, PNG or WebP, up to 8 MB)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def attach_photo(
    request: Request,
    id: UUID,
    who: CurrentActor,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    caption: Annotated[str, Header(alias="X-Caption", max_length=400)] = "",
) -> Response:
    if who.role is Role.ACCOUNTANT:  # before the photo is read or stored
        raise Forbidden("accountants have read-only access")
    data = await request.body()
    if not data:
        raise Invalid("photo", "the request body is empty: send the image")
    if len(data) > MAX_PHOTO:
        raise Invalid("photo", f"larger than {MAX_PHOTO // 1_000_000} MB: send a smaller image")
    kind = next((v for magic, v in PHOTO_TYPES.items() if data.startswith(magic)), None)
    if kind is None or (kind[0] == "image/webp" and data[8:12] != b"WEBP"):
        raise Invalid("photo", "not a JPEG, PNG or WebP image")
    media_type, extension = kind
    caption = _header_text(caption)
    if len(caption) > 200:
        raise Invalid("caption", "longer than 200 characters")
    if problem := unreadable(caption):
        raise Invalid("caption", problem)
    app_ = jobstream(request)
    digest = hashlib.sha256(data).hexdigest()
    photo_id = uuid.uuid5(NAMESPACE, f"{id}:{idempotency_key or digest}")
    name = photo_name(id, photo_id, extension)
    job = await app_.call(app_.get_async("job", id))
    if who.role is Role.TECHNICIAN and who.technician_id not in job.technician_ids:
        raise Forbidden("this job is not assigned to you")
    # the same name on a retry: replaced, not doubled
    await app_.call(_put(app_.recorder.connection, name, data))
    result = await app_.call(
        app_.execute_async(
            id,
            AttachPhoto(
                photo_id=photo_id, name=name, media_type=media_type, size=len(data), sha256=digest, caption=caption
            ),
            who,
            command_id=idempotency_key,
        )
    )
    body = orjson.dumps({**msgspec.to_builtins(result), "photo_id": str(photo_id), "name": name})
    return Response(body, 201, media_type="application/json")  # a retry gets the first answer


# --- the catalogue --------------------------------------------------------------------


@router.get(
    "/catalogue",
    tags=["job"],
    responses={**ERRORS},
    summary="What a technician can record as used: the default price lists' items",
)
async def catalogue(request: Request, who: CurrentActor) -> Response:
    app_ = jobstream(request)
    items = await app_.call(app_.catalogue_async())
    return Response(orjson.dumps(items), media_type="application/json")


# --- alerts, live ----------------------------------------------------------------------


@router.get(
    "/me/alerts",
    tags=["notifications"],
    responses={**ERRORS},
    summary="Server-sent events: each push alert for you, as it is queued (for open clients)",
)
async def alerts(request: Request, who: CurrentActor) -> StreamingResponse:
    app_ = jobstream(request)
    connection = app_.recorder.connection
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)

    async def on_message(msg: Any) -> None:
        event = decode_event(msg.data)
        if not (isinstance(event, MessageQueued) and event.channel == "push" and event.recipient == who.id):
            return
        if event.not_before is not None and event.not_before > datetime.now(UTC):
            return  # quiet hours: it comes later, as a push
        alert = {
            "id": str(event.id),
            "title": event.subject,
            "body": event.body,
            "url": event.url,
            "position": event.cause_position,
            "purpose": event.purpose,
            "about_id": str(event.about_id) if event.about_id else None,
        }
        if not queue.full():
            queue.put_nowait(orjson.dumps(alert))

    def on_revoked(token_id: UUID) -> None:  # the stream ends with the token
        if token_id == who.token_id:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(b"")

    subject = connection.settings.kind_filter("events", "message")
    subscription = await app_.call(_subscribe(connection, subject, on_message))
    stop_listening = app_.revocations.listen(on_revoked)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while who.token_id not in app_.revocations and not await request.is_disconnected():
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if data:
                    yield b"event: alert\ndata: " + data + b"\n\n"
        finally:
            stop_listening()
            await app_.call(subscription.unsubscribe())

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


# --- the read side, through this origin ----------------------------------------------


@router.get("/tech/api/{path:path}", include_in_schema=False)
async def read_side(request: Request, path: str, authorization: Annotated[str | None, Header()] = None) -> Response:
    if not FORWARDED.fullmatch(path):  # never a path of its own making: '..', encoded or not
        raise NotFound("read-API route", f"{path[:80]!r} through /tech/api (it forwards {FORWARDED_NAMES})")
    client = read_api(request)
    if client is None:
        return Response(
            b'{"detail": "the read API is not configured (READ_API_URL)"}', 503, media_type="application/json"
        )
    try:
        answer = await client.get(
            f"/api/{path}",
            params=tuple(request.query_params.multi_items()),
            headers={"Authorization": authorization or ""},
        )
    except httpx.HTTPError as error:
        return Response(
            orjson.dumps({"detail": f"the read API is unreachable: {error}"}), 503, media_type="application/json"
        )
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


async def _put(connection: Any, name: str, data: bytes) -> None:
    store = await connection.documents()
    await store.put(name, data)


async def _subscribe(connection: Any, subject: str, callback: Any) -> Any:
    return await connection.nc.subscribe(subject, cb=callback)


def _header_text(value: str) -> str:
    """A header carries Latin-1: the tech client sends the caption percent-encoded (UTF-8)."""
    from urllib.parse import unquote

    return unquote(value).strip()
