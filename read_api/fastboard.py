"""The board's hot path: a page already in memory, answered without FastAPI.

Every dashboard polls the board, and most of those reads find the page they want already
made (``ReadModels.board_json`` keeps one per filter until the projection moves on).
Through FastAPI such an answer costs about 0.3 ms of routing, query validation and
dependency injection for a few microseconds of work, and at 100 concurrent readers that
queueing made the board's p99 half a second (docs/benchmarks.md).

``BoardFromMemory`` sits in front of the routes. The board route validates a query once
and remembers the filter it made under the raw query string and who asked (role and
technician, since a technician's filter is narrowed to their own jobs). A later request
with the same query, a token the read API already knows and a page at least as new as
the ``position`` it names is answered here. Anything else (a query never seen, an unknown
or revoked token, a page older than the position asked for) goes on to the route, which
answers, refuses or waits exactly as before.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser

from projections.rows import UserRow
from read_api.queries import PAGE_TTL, BoardFilter, Page

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "jobstream_token"
PATH = "/api/board"
NOT_PART_OF_THE_FILTER = ("position", "wait")


def digest_of(token: str) -> str:
    """What the board projection keeps of a token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_of(headers: dict[bytes, bytes]) -> str:
    """The bearer token, else the dashboard's cookie (as the routes read it)."""
    header = headers.get(b"authorization", b"").decode("latin-1")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(COOKIE, "")


class Filters:
    """The filters the board route has validated, by raw query and who asked."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._known: OrderedDict[tuple[Any, ...], BoardFilter] = OrderedDict()

    @staticmethod
    def key(query: bytes, who: UserRow) -> tuple[tuple[Any, ...], int | None] | None:
        """(the filter's key, the position asked for); None if ``position`` is not a number, or
        a ``wait`` is given: the route reads those."""
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        position = next((value for name, value in pairs if name == "position"), None)
        if position is not None and not position.isdigit():
            return None
        if any(name == "wait" for name, _ in pairs):  # the route checks it (at most MAX_WAIT seconds)
            return None
        kept = tuple(pair for pair in pairs if pair[0] not in NOT_PART_OF_THE_FILTER)
        return (who.role, who.technician_id, kept), int(position) if position is not None else None

    def remember(self, query: bytes, who: UserRow, f: BoardFilter) -> None:
        found = self.key(query, who)
        if found is None:
            return
        self._known[found[0]] = f
        self._known.move_to_end(found[0])
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def get(self, key: tuple[Any, ...]) -> BoardFilter | None:
        return self._known.get(key)


class BoardFromMemory:
    """ASGI middleware answering GET /api/board from a page in memory when it can."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            data = self.page(scope)
            if data is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": data})
                return
        await self.app(scope, receive, send)

    def page(self, scope: Scope) -> bytes | None:
        state = scope["app"].state
        models, live, filters = state.models, state.live, state.board_filters
        token = token_of(dict(scope["headers"]))
        if not token:
            return None
        who = models.cached_user(digest_of(token))
        if who is None or who.revoked:
            return None
        found = Filters.key(scope["query_string"], who)
        if found is None:
            return None
        key, position = found
        if position is not None and position > live.users_position:
            return None  # the route reads the user afresh at that position
        f = filters.get(key)
        return from_memory(models.latest_board(f), position, live, f) if f is not None else None


def from_memory(page: Page | None, position: int | None, live: Any, f: BoardFilter) -> bytes | None:
    """The page kept for this filter, if a reader may have it now: at least as new as the
    position asked for, and either up to date with the board or made less than PAGE_TTL ago
    (so a page left stale by a quiet hour is never served). A page out of date or past its
    time is made again in the background, once."""
    if page is None or (position is not None and page.position < position):
        return None
    stale, old = page.position < live.board_position, time.monotonic() - page.made_at > PAGE_TTL
    if stale and old:
        return None  # the route waits for the page being made
    if stale or old:
        live.remake(f)
    return page.data
