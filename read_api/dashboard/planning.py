"""The schedule and the timesheets pages (a technician sees only their own)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from read_api.dashboard.forms import form_day
from read_api.deps import CurrentUser, models, zone_of
from read_api.planning import date_range
from read_api.templating import page

router = APIRouter()


@router.get("/schedule", response_class=HTMLResponse, include_in_schema=False)
async def schedule_page(
    request: Request,
    who: CurrentUser,
    start: date | None = None,
    days: Annotated[int, Query(ge=1, le=14)] = 5,
    technician: str = "",
) -> Response:
    if who.role == "technician":
        technician = str(who.technician_id)
    first = start or datetime.now(zone_of(request)).date()
    rows = await asyncio.to_thread(models(request).schedule, first, days, technician)
    return page(
        request,
        "schedule.html",
        who,
        rows=rows,
        start=first,
        days=days,
        dates=[first + timedelta(days=i) for i in range(days)],
        previous=first - timedelta(days=days),
        following=first + timedelta(days=days),
    )


@router.get("/timesheets", response_class=HTMLResponse, include_in_schema=False)
async def timesheets_page(
    request: Request, who: CurrentUser, period: str = "week", by: str = "technician", start: str = "", end: str = ""
) -> Response:
    technician = str(who.technician_id) if who.role == "technician" else ""
    begin, finish = date_range(
        date.fromisoformat(form_day(start, "start")) if start else None,
        date.fromisoformat(form_day(end, "end")) if end else None,
    )
    by = by if by in ("technician", "job") else "technician"
    rows = await asyncio.to_thread(
        models(request).timesheet,
        period if period in ("day", "week", "month") else "week",
        begin,
        finish,
        technician,
        "",
        by,
    )
    return page(request, "timesheets.html", who, rows=rows, period=period, by=by, start=begin, end=finish)
