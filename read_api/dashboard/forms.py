"""The dashboard's forms, forwarded to the command API with the signed-in user's own token and
the idempotency key fixed when the form was drawn; the page that follows waits for the
command's position, so the office always sees its own change."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote as url_quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from projections.rows import UserRow
from read_api.deps import token_of, writers_only
from read_api.responses import encode


async def forward(request: Request, path: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    response = await request.app.state.commands.post(
        path,
        content=encode(body),
        headers={
            "Authorization": f"Bearer {token_of(request)}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
        },
    )
    return response.status_code, response.json()


async def submitted(request: Request, path: str, body: dict[str, Any], form: dict[str, Any], back: str) -> Response:
    """A form's command, forwarded; back to the page, which waits until it shows the
    command's effect, or shows why it was refused."""
    status, answer = await forward(request, path, body, str(form.get("key") or uuid.uuid4().hex))
    if status >= 400:
        return RedirectResponse(f"{back}?error={quote(problem(answer))}", status_code=303)
    return RedirectResponse(f"{back}?position={answer['position']}", status_code=303)


async def with_reason(request: Request, who: UserRow, path: str, back: str) -> Response:
    """A form that sends only a reason (redeliver, try again, end): the office's, forwarded."""
    writers_only(who)
    form = dict(await request.form())
    return await submitted(request, path, {"reason": form.get("reason", "")}, form, back)


def local_to_utc(value: str, field: str, zone: ZoneInfo) -> str:
    """A form's date and time, in the office's zone unless it names its own, as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).isoformat()


def form_day(text: str, field: str, plus: int = 0) -> str:
    """A date from a form's date field ('' when left empty), as the board compares it."""
    if not text:
        return ""
    try:
        return (date.fromisoformat(text) + timedelta(days=plus)).isoformat()
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a date (YYYY-MM-DD)") from None


def problem(answer: dict[str, Any]) -> str:
    """What the command API refused, in one line: its detail, or each field and reason."""
    detail = answer.get("detail", answer)
    if isinstance(detail, list):
        return "; ".join(f"{d.get('field', '')}: {d.get('reason', '')}" for d in detail)
    return str(detail)


def quote(text: str) -> str:
    return url_quote(text[:300])
