"""What the command service's routers share: the application service of the request's app,
the caller (``CurrentActor``), and the answers every route documents (``ERRORS``).

Declared once, at module level, as in FastAPI's full-stack template; the routers of
services/api.py, services/field.py and services/booking.py depend on them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from services.application import JobstreamApp
from services.domain.common import Actor


class Unauthorized(Exception):
    """No valid access token (401)."""


def jobstream(request: Request) -> JobstreamApp:
    """The application service the app's lifespan opened."""
    return request.app.state.jobstream


async def authenticated(app: JobstreamApp, authorization: str | None) -> Actor:
    """The caller a bearer token names, or 401."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    found = await app.call(app.authenticate_async(authorization.removeprefix("Bearer ").strip()))
    if found is None:
        raise Unauthorized("the token is unknown or revoked")
    return found


async def current_actor(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <token>")] = None,
) -> Actor:
    return await authenticated(jobstream(request), authorization)


CurrentActor = Annotated[Actor, Depends(current_actor)]

PROBLEM = {
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
            ]
        },
        "current_version": {"type": "integer"},
        "status": {"type": "string"},
    },
    "required": ["detail"],
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": PROBLEM}}}
    for code, text in {
        400: "bad request",
        401: "no valid access token",
        403: "refused: the reason says why",
        404: "unknown aggregate",
        409: "illegal in the current status, or a version conflict",
        422: "invalid input: the field and the reason",
        503: "the event store did not answer: try again (a command with the same Idempotency-Key is applied once)",
    }.items()
}
