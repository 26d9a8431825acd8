"""What did not go through, for the office: messages the notifier could not deliver (and the
form that redelivers one), and events a consumer could not process (and the form that tries
one again). Both pages are drawn by ``office_list``, both forms sent by ``with_reason``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from projections.rows import UserRow
from read_api.dashboard.forms import with_reason
from read_api.deps import CurrentUser, fresh, models, office_only
from read_api.failures import failure_rows
from read_api.templating import page

router = APIRouter()


async def office_list(
    request: Request, who: UserRow, template: str, lists: Callable[[], Awaitable[dict[str, Any]]]
) -> Response:
    """An office page of lists whose rows each carry a form: the role is checked before the
    lists are read, and the forms' idempotency key is fixed as the page is drawn."""
    office_only(who)
    return page(
        request, template, who, **await lists(), key=uuid.uuid4().hex, error=request.query_params.get("error", "")
    )


@router.get("/messages", response_class=HTMLResponse, include_in_schema=False)
async def messages_page(request: Request, who: CurrentUser, position: int | None = None) -> Response:
    async def lists() -> dict[str, Any]:
        await fresh(request, position)
        m = models(request)
        stuck, recent = await asyncio.to_thread(lambda: (m.messages(["failed", "uncertain"]), m.messages((), (), 50)))
        return {"stuck": stuck, "recent": recent}

    return await office_list(request, who, "messages.html", lists)


@router.post("/messages/{message_id}/redeliver", include_in_schema=False)
async def redeliver(request: Request, who: CurrentUser, message_id: UUID) -> Response:
    return await with_reason(request, who, f"/messages/{message_id}/redeliver", "/messages")


@router.get("/failures", response_class=HTMLResponse, include_in_schema=False)
async def failures_page(request: Request, who: CurrentUser) -> Response:
    async def lists() -> dict[str, Any]:
        rows = await failure_rows(request, [])
        return {
            "open": [r for r in rows if r.state != "resolved"],
            "resolved": [r for r in rows if r.state == "resolved"][:20],
            "ksef": await asyncio.to_thread(models(request).ksef_warnings),
        }

    return await office_list(request, who, "failures.html", lists)


@router.post("/failures/{failure_id}/retry", include_in_schema=False)
async def retry_failure(request: Request, who: CurrentUser, failure_id: UUID) -> Response:
    return await with_reason(request, who, f"/failures/{failure_id}/retry", "/failures")
