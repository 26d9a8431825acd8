"""The customers and the technicians as JSON (a technician reads only their own record)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Position, Wait, fresh, models, office_only
from read_api.errors import ERRORS
from read_api.responses import json

router = APIRouter(tags=["read"], responses=ERRORS)


@router.get("/api/customers", summary="Every customer")
async def customers(request: Request, who: CurrentUser, position: Position = None, wait: Wait = None) -> Response:
    office_only(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).customers))


@router.get("/api/technicians", summary="Every technician")
async def technicians(request: Request, who: CurrentUser, position: Position = None, wait: Wait = None) -> Response:
    await fresh(request, position, wait)
    found = await asyncio.to_thread(models(request).technicians)
    if who.role == "technician":  # their own record, not their colleagues' phones and emails
        found = [t for t in found if t.id == who.technician_id]
    return json(found)
