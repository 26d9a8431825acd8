"""The dashboard's templates, made once per app (in its lifespan) for the office's time zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from projections.rows import UserRow

HERE = Path(__file__).parent


def templates_for(zone: ZoneInfo) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["local"] = lambda moment, fmt="%d %b %H:%M": (
        moment.astimezone(zone).strftime(fmt)
        if isinstance(moment, datetime)
        else (datetime.fromisoformat(moment).astimezone(zone).strftime(fmt) if moment else "")
    )
    templates.env.filters["hours"] = lambda minutes: f"{minutes // 60}:{minutes % 60:02d}"
    templates.env.filters["label"] = lambda text: str(text).replace("_", " ")
    return templates


def page(request: Request, name: str, who: UserRow | None, status_code: int = 200, **context: Any) -> Response:
    """A template drawn for the signed-in user (``who``; None on the sign-in and message pages)."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, {"user": who, **context}, status_code=status_code)
