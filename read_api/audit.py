"""The accountants' audit, straight from the stream: a replay as JSON Lines, and an export of a
period (CSV or JSON Lines) that ends with a checkpoint of the whole stream."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from projections.audit import Checkpoints, Criteria, Entry, TailMissing, checkpoint_and_keep, replay, write_entries
from read_api.deps import CurrentUser, auditors_only, settings_of
from read_api.errors import ERRORS

log = logging.getLogger(__name__)

router = APIRouter(tags=["audit"], responses=ERRORS)


def audit_criteria(
    job: UUID | None,
    customer: UUID | None,
    event_type: list[str],
    since: datetime | None,
    before: datetime | None,
    after: int,
    until: int | None,
) -> Criteria:
    return Criteria(
        job=job,
        customer=customer,
        types=set(event_type),
        since=since.replace(tzinfo=since.tzinfo or UTC) if since else None,
        before=before.replace(tzinfo=before.tzinfo or UTC) if before else None,
        after=after,
        until=until,
    )


@router.get("/api/audit/replay", summary="Events straight from the stream, as JSON Lines")
async def audit_replay(
    request: Request,
    who: CurrentUser,
    job: UUID | None = None,
    customer: UUID | None = None,
    event_type: Annotated[list[str], Query(alias="type")] = [],  # noqa: B006
    since: Annotated[datetime | None, Query(alias="from")] = None,
    before: Annotated[datetime | None, Query(alias="to")] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    until: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    stream = auditors_only(request, who)
    criteria = audit_criteria(job, customer, event_type, since, before, after, until)

    async def lines() -> AsyncIterator[bytes]:
        async for entry in replay(stream, criteria):
            yield msgspec.json.encode(entry) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/api/audit/export", summary="Events of a period as CSV or JSON Lines (a download)")
async def audit_export(
    request: Request,
    who: CurrentUser,
    format: Annotated[str, Query(pattern="^(csv|jsonl)$")] = "csv",
    job: UUID | None = None,
    customer: UUID | None = None,
    event_type: Annotated[list[str], Query(alias="type")] = [],  # noqa: B006
    since: Annotated[datetime | None, Query(alias="from")] = None,
    before: Annotated[datetime | None, Query(alias="to")] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    until: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    stream = auditors_only(request, who)
    criteria = audit_criteria(job, customer, event_type, since, before, after, until)
    entries: list[Entry] = [entry async for entry in replay(stream, criteria)]
    # its last record: a checkpoint of the whole stream, kept in the read models too
    headers = {"Content-Disposition": f'attachment; filename="jobstream-events.{format}"'}
    places = Checkpoints(stream.settings.stream, read_model_url=settings_of(request).read_model_url)
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
