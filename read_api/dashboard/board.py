"""The board page, and the rows it fetches again as the board moves."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from projections.rows import UserRow
from read_api.dashboard.forms import form_day
from read_api.deps import CurrentUser, board_filter, fresh, models
from read_api.queries import BoardFilter
from read_api.templating import page

router = APIRouter()
SORTS = ("last_change", "requested", "sla", "scheduled", "status", "time")


def page_filter(
    who: UserRow,
    status: list[str],
    job_type: str,
    technician: str,
    customer: str,
    priority: str,
    sla: str,
    q: str,
    sort: str,
    order: str,
    after: str,
    requested_from: str,
    requested_to: str,
) -> BoardFilter:
    """The board page's filter from its form: the dates as days (up to and with the last one),
    a sort it does not know as the default, fifty rows."""
    return board_filter(
        who,
        status,
        job_type,
        technician,
        customer,
        priority,
        sla,
        form_day(requested_from, "requested_from"),
        form_day(requested_to, "requested_to", 1),
        q,
        sort if sort in SORTS else "last_change",
        order,
        after,
        50,
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(
    request: Request,
    who: CurrentUser,
    position: int | None = None,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    job_type: str = "",
    technician: str = "",
    customer: str = "",
    priority: str = "",
    sla: str = "",
    q: str = "",
    sort: str = "last_change",
    order: str = "desc",
    after: str = "",
    requested_from: str = "",
    requested_to: str = "",
) -> Response:
    await fresh(request, position)
    f = page_filter(
        who, status, job_type, technician, customer, priority, sla, q, sort, order, after, requested_from, requested_to
    )
    m = models(request)
    board_page = await asyncio.to_thread(m.board_page, f)
    choices = await asyncio.to_thread(
        lambda: (m.technicians(), m.job_types(), [] if who.role == "technician" else m.customers())
    )
    return page(
        request,
        "board.html",
        who,
        board=board_page,
        f=f,
        technicians=choices[0],
        requested_from=requested_from or "",
        requested_to=requested_to or "",
        job_types=choices[1],
        customers=choices[2],
        query=request.url.query,
        statuses=["new", "scheduled", "in_progress", "on_hold", "completed", "invoiced", "cancelled"],
    )


@router.get("/board/rows", response_class=HTMLResponse, include_in_schema=False)
async def board_rows(
    request: Request,
    who: CurrentUser,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    job_type: str = "",
    technician: str = "",
    customer: str = "",
    priority: str = "",
    sla: str = "",
    q: str = "",
    sort: str = "last_change",
    order: str = "desc",
    after: str = "",
    requested_from: str = "",
    requested_to: str = "",
) -> Response:
    f = page_filter(
        who, status, job_type, technician, customer, priority, sla, q, sort, order, after, requested_from, requested_to
    )
    return page(request, "board_rows.html", who, board=await asyncio.to_thread(models(request).board_page, f))
