"""A query parameter that takes one value, given twice, is refused, not read as its last.

FastAPI (as Starlette's query parsing) silently takes the last of ``?position=5&position=9``:
the reader asked two things and was answered one. This middleware answers 422 naming the
parameter, in the shape of FastAPI's own query errors, and stands in front of the board's
fast path too. Parameters declared as lists (``status``, ``technician``, ...) repeat freely.

The cost on the way in is a split of the query string, and only a query string with a name
in it twice looks any further (which route, which of its parameters are lists).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

LISTS = (list, set, frozenset, tuple, Sequence)


class OneValueEach:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"&" in scope["query_string"]:
            names = [pair.partition(b"=")[0] for pair in scope["query_string"].split(b"&")]
            if len(names) != len(set(names)) and (problems := repeated(scope)):
                body = orjson.dumps({"detail": problems})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 422,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def repeated(scope: Scope) -> list[dict[str, Any]]:
    """The route's one-value query parameters given more than once, as FastAPI words a problem."""
    route = next(
        (r for r in scope["app"].router.routes if isinstance(r, APIRoute) and r.matches(scope)[0] is Match.FULL), None
    )
    if route is None:
        return []
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        values.setdefault(name, []).append(value)
    single = {param.alias for param in query_params(route.dependant) if not takes_many(param.field_info.annotation)}
    return [
        {
            "type": "repeated",
            "loc": ["query", name],
            "msg": f"given {len(given)} times: {name} takes one value",
            "input": given,
        }
        for name, given in values.items()
        if len(given) > 1 and name in single
    ]


def query_params(dependant: Dependant) -> list[Any]:
    """The route's query parameters, its dependencies' included (the public Dependant tree)."""
    return [*dependant.query_params, *(p for d in dependant.dependencies for p in query_params(d))]


def takes_many(annotation: Any) -> bool:
    """list[str], Sequence[str], list[str] | None: a parameter that repeats."""
    return typing.get_origin(annotation) in LISTS or any(takes_many(arg) for arg in typing.get_args(annotation))
