"""What the notifier sent or tries to send, as JSON, for the office."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Position, Wait, fresh, models, office_only
from read_api.errors import ERRORS
from read_api.responses import json

MessageState = Literal["queued", "sending", "delivered", "retrying", "failed", "uncertain"]

router = APIRouter(tags=["billing"], responses=ERRORS)


@router.get(
    "/api/messages",
    summary="What the notifier sent or tries to send",
    description="Emails and push alerts with their delivery state (queued, sending, delivered, "
    "retrying, failed, uncertain), the latest first. `state` filters; repeat it for several.",
)
async def api_messages(
    request: Request,
    who: CurrentUser,
    state: Annotated[list[MessageState], Query()] = [],  # noqa: B006
    position: Position = None,
    wait: Wait = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    office_only(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).messages, state, (), limit))
