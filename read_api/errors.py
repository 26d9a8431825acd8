"""Refusals, mapped to HTTP in one place: the problems every route may answer (for the OpenAPI
document) and the handlers that answer them, JSON to an API client, a page to a browser."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from read_api.queries import Unavailable
from read_api.templating import page

PROBLEM = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}},
}
# What every route may answer besides its own: declared once, for the OpenAPI document
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": PROBLEM}}}
    for code, text in {
        401: "no valid access token",
        403: "the role may not read this",
        404: "not found",
        409: "a stored document does not match its hash",
        422: "invalid input",
        503: "not configured here",
        504: "the read models did not reach the position in time",
    }.items()
}


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def browsing(request: Request) -> bool:
    """A browser's navigation: it asks for HTML (``Accept: text/html``, as every browser does
    for a page, a link or a form), or says so (``Sec-Fetch-Mode: navigate``). curl, scripts
    and the pages' own fetches ask for anything else, or for anything (``*/*``)."""
    return request.headers.get("sec-fetch-mode") == "navigate" or "text/html" in request.headers.get("accept", "")


async def refused(request: Request, error: Refused) -> Response:
    """A browser finding a page (or a download) refused is shown the sign-in page or why; an
    API client is answered JSON, a 401 with WWW-Authenticate, as the README says."""
    if not request.url.path.startswith("/api/") and browsing(request):
        if error.status == 401:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if error.status in (403, 404):
            return page(
                request, "message.html", None, status_code=error.status, title="Not available", message=error.detail
            )
    response = JSONResponse({"detail": error.detail}, status_code=error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def unavailable(request: Request, error: Unavailable) -> Response:
    return JSONResponse({"detail": str(error)}, status_code=504)


async def bad_value(request: Request, error: ValueError) -> Response:
    return JSONResponse({"detail": str(error)}, status_code=422)


# for FastAPI(exception_handlers=...): each refusal's answer
HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    Refused: refused,
    Unavailable: unavailable,
    ValueError: bad_value,
}
