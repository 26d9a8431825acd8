"""The office's reports, as JSON or one of them as CSV."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Position, Wait, fresh, models, office_only
from read_api.errors import ERRORS, Refused
from read_api.responses import json, to_csv

router = APIRouter(tags=["read"], responses=ERRORS)


@router.get("/api/reports", summary="Every report")
async def reports(request: Request, who: CurrentUser, position: Position = None, wait: Wait = None) -> Response:
    office_only(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).reports))


@router.get("/api/reports/{name}.csv", summary="One report as CSV")
async def report_csv(request: Request, who: CurrentUser, name: str) -> Response:
    office_only(who)
    everything = await asyncio.to_thread(models(request).reports)
    if name not in everything:
        raise Refused(404, f"no report named {name!r}; one of: {', '.join(everything)}")
    return Response(
        to_csv(everything[name]),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
