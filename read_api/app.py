"""The read API: JSON over the read models, the office dashboard, exports and live updates.

Same tokens and roles as the command API (the board projection keeps the users): office
and admin read everything and use the dashboard's forms; technicians see their own jobs
and the open pool; accountants read everything and write nothing. Every JSON read takes
``position`` (a stream position a command returned) and answers no older than it, or 504
after a bounded wait.

The dashboard's forms post here and are forwarded to the command API with the signed-in
user's own token and an idempotency key fixed when the form was drawn, so a double click
or a resubmitted page is applied once; the page that follows waits for the command's
position, so the office always sees its own change.

Each area is a module with its own router, each URL written in its handler's decorator
(docs/architecture.md has the map); what the routes depend on is in ``deps.py``. This module
only opens what the routes use, in the lifespan, and adds each router's routes to the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from events.jetstream import NatsConnection, StreamSettings
from events.revocations import Revocations
from read_api import (
    audit,
    billing,
    board,
    dashboard,
    directory,
    documents,
    failures,
    ledger,
    live,
    messages,
    planning,
    reports,
)
from read_api.errors import HANDLERS
from read_api.fastboard import BoardFromMemory, Filters
from read_api.once import OneValueEach
from read_api.queries import ReadModels
from read_api.settings import Settings, settings_from_environment
from read_api.templating import HERE, templates_for

__all__ = ["Settings", "app_from_environment", "create_app", "settings_from_environment"]
# Each area's routes become the app's own, in this order. Not `include_router`: since FastAPI
# 0.165 that keeps a router as a branch, matched again on every request, and `app.routes`
# (which tests/integration/test_access.py walks) no longer lists its routes. So each router
# declares the shared ERRORS itself (`responses=ERRORS`), as the app's own router would.
ROUTERS = (
    board.router,
    billing.router,
    documents.router,
    ledger.router,
    directory.router,
    planning.router,
    reports.router,
    live.router,
    audit.router,
    messages.router,
    failures.router,
    *dashboard.ROUTERS,
)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.zone = ZoneInfo(settings.timezone)
        app.state.templates = templates_for(app.state.zone)
        app.state.board_filters = Filters()
        app.state.models = await asyncio.to_thread(ReadModels, settings.read_model_url, settings.timezone)
        app.state.commands = httpx.AsyncClient(base_url=settings.command_api_url, timeout=15.0)
        app.state.live = live.Live(app.state.models)
        app.state.live.start()
        app.state.stream = None
        app.state.revocations = Revocations()
        if settings.stream_env.get("NATS_URL"):
            app.state.stream = await NatsConnection.open_on_running_loop(StreamSettings.from_env(settings.stream_env))
            # a revoked token is refused as soon as the stream says so, ahead of the board
            await app.state.revocations.follow(app.state.stream)
            app.state.revocations.listen(lambda _: asyncio.ensure_future(app.state.live.wake()))
            app.state.models.revoked = app.state.revocations
        yield
        await app.state.revocations.stop()
        await app.state.live.stop()
        await app.state.commands.aclose()
        await asyncio.to_thread(app.state.models.close)
        if app.state.stream is not None:
            await app.state.stream.aclose()

    app = FastAPI(
        title="jobstream read API",
        version="0.1.0",
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        description=__doc__.split("\n\n")[0] if __doc__ else "",
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BoardFromMemory)
    app.add_middleware(OneValueEach)  # outermost: in front of the board's fast path too
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    return app


def app_from_environment(env: Mapping[str, str] | None = None) -> FastAPI:
    """For `uvicorn --factory` (several workers) and `jobstream run web`: settings from the
    environment, or from the one given."""
    return create_app(settings_from_environment(env))
