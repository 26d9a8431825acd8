"""Recurring services: the page, a new one, and ending one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from projections.rows import iso
from read_api.dashboard.forms import submitted, with_reason
from read_api.deps import CurrentUser, fresh, models, office_only, settings_of, writers_only
from read_api.templating import page

router = APIRouter()
RULES = {
    "weekly": "FREQ=WEEKLY",
    "fortnightly": "FREQ=WEEKLY;INTERVAL=2",
    "monthly": "FREQ=MONTHLY",
    "quarterly": "FREQ=MONTHLY;INTERVAL=3",
    "yearly": "FREQ=YEARLY",
}


@router.get("/recurring", response_class=HTMLResponse, include_in_schema=False)
async def recurring_page(request: Request, who: CurrentUser, position: int | None = None) -> Response:
    office_only(who)
    await fresh(request, position)
    m = models(request)
    services, customers, technicians = await asyncio.to_thread(
        lambda: (m.recurrences(), m.customers(), m.technicians())
    )
    now = iso(datetime.now(UTC))  # as the occurrences are kept: sorts as text
    return page(
        request,
        "recurring.html",
        who,
        services=services,
        customers={c.id: c for c in customers},
        technicians={t.id: t for t in technicians},
        now=now,
        zone_name=settings_of(request).timezone,
        rules=RULES,
        key=uuid.uuid4().hex,
        error=request.query_params.get("error", ""),
        form={},
    )


@router.post("/recurring/new", include_in_schema=False)
async def new_recurring(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    form = dict(await request.form())
    rule = str(form.get("rule") or "").strip().upper() or RULES.get(str(form.get("every", "")), "")
    body: dict[str, Any] = {
        "customer_id": form.get("customer_id", ""),
        "job_type": form.get("job_type", ""),
        "description": form.get("description", ""),
        "technician_ids": [form.get("technician_id", "")],
        "rule": rule,
        "start": str(form.get("start", "")),
        "timezone": settings_of(request).timezone,
    }
    for field, default in (("duration_minutes", "60"), ("horizon_days", "60")):
        given = str(form.get(field) or default).strip()
        body[field] = int(given) if given.isdigit() else given  # else the command API names it
    if len(body["start"]) == 16:  # a datetime-local without seconds
        body["start"] += ":00"
    return await submitted(request, "/recurring-services", body, form, "/recurring")


@router.post("/recurring/{recurrence_id}/end", include_in_schema=False)
async def end_recurring(request: Request, who: CurrentUser, recurrence_id: UUID) -> Response:
    return await with_reason(request, who, f"/recurring-services/{recurrence_id}/end", "/recurring")
