"""The job board and its jobs as JSON: the board itself (its hot path is read_api/fastboard.py),
one job with its timeline, and how far the read models have read."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Position, Wait, board_filter, fresh, job_or_404, models
from read_api.errors import ERRORS
from read_api.fastboard import from_memory
from read_api.responses import json

router = APIRouter(responses=ERRORS)


@router.get("/health", tags=["service"])
async def health(request: Request) -> Response:
    return json({"status": "ok", "position": await asyncio.to_thread(models(request).position)})


@router.get("/api/position", tags=["read"], summary="How far the read models have read the stream")
async def position(request: Request, who: CurrentUser) -> Response:
    return json({"position": await asyncio.to_thread(models(request).position)})


@router.get("/api/board", tags=["read"], summary="The job board: filter, sort, search, page")
async def board(
    request: Request,
    who: CurrentUser,
    position: Position = None,
    wait: Wait = None,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    job_type: str = "",
    technician: str = "",
    customer: str = "",
    priority: Annotated[str, Query(pattern="^(|normal|urgent)$")] = "",
    sla: Annotated[str, Query(pattern="^(|at_risk|breached)$")] = "",
    requested_from: str = "",
    requested_to: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[str, Query(pattern="^(last_change|requested|sla|scheduled|status|time)$")] = "last_change",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    after: str = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    f = board_filter(
        who,
        status,
        job_type,
        technician,
        customer,
        priority,
        sla,
        requested_from,
        requested_to,
        q,
        sort,
        order,
        after,
        limit,
    )
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


@router.get("/api/jobs/{job_id}", tags=["read"], summary="A job as the board has it, with its timeline")
async def job(
    request: Request, who: CurrentUser, job_id: UUID, position: Position = None, wait: Wait = None
) -> Response:
    await fresh(request, position, wait)
    reached = await asyncio.to_thread(models(request).position)
    found = await job_or_404(request, who, job_id)
    history = await asyncio.to_thread(models(request).history, job_id)
    item = await asyncio.to_thread(models(request).board_item, found)
    return json({"job": found, "board": item, "history": history, "position": reached})
