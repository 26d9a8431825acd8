"""The schedule and the timesheets as JSON (a technician reads only their own)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Day, Position, Wait, fresh, models
from read_api.errors import ERRORS
from read_api.responses import json

router = APIRouter(tags=["read"], responses=ERRORS)


@router.get("/api/schedule", summary="Per technician per day: visits, free slots, double bookings")
async def schedule(
    request: Request,
    who: CurrentUser,
    start: Day | None = None,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
    technician: str = "",
    position: Position = None,
    wait: Wait = None,
) -> Response:
    await fresh(request, position, wait)
    if who.role == "technician":
        technician = str(who.technician_id)
    return json(await asyncio.to_thread(models(request).schedule, start or date.today(), days, technician))


@router.get("/api/timesheets", summary="Minutes per technician or job, billable and not")
async def timesheets(
    request: Request,
    who: CurrentUser,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
    start: Day | None = None,
    end: Day | None = None,
    technician: str = "",
    job: str = "",
    by: Annotated[str, Query(pattern="^(technician|job)$")] = "technician",
    position: Position = None,
    wait: Wait = None,
) -> Response:
    await fresh(request, position, wait)
    if who.role == "technician":
        technician = str(who.technician_id)
    begin, finish = date_range(start, end)
    return json(await asyncio.to_thread(models(request).timesheet, period, begin, finish, technician, job, by))


def date_range(start: date | None, end: date | None) -> tuple[date, date]:
    """A period as asked, else the 31 days up to tomorrow (the end is not in it)."""
    finish = end or date.today() + timedelta(days=1)
    return start or finish - timedelta(days=31), finish
