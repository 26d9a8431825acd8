"""Events a consumer could not process, read now from the stream (not from a read model)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from projections.failures import FailureRow, FailureState, failures
from read_api.deps import CurrentUser, office_only, stream_of
from read_api.errors import ERRORS
from read_api.responses import json

router = APIRouter(tags=["failures"], responses=ERRORS)


async def failure_rows(request: Request, states: list[str]) -> list[FailureRow]:
    return await failures(stream_of(request), states)


@router.get(
    "/api/failures",
    summary="Events a consumer could not process",
    description="Each failure as recorded on the stream (read now, not from a read model): which "
    "consumer, the stream position and event, the error, and its state (open, retrying, resolved). "
    "`state` filters; repeat it for several.",
)
async def api_failures(
    request: Request,
    who: CurrentUser,
    state: Annotated[list[FailureState], Query()] = [],  # noqa: B006 - FastAPI's way to say "none given"; never mutated
) -> Response:
    office_only(who)
    return json(await failure_rows(request, list(state)))
