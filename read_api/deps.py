"""What the routes depend on, declared once: who is asking (``CurrentUser``), the role each
area asks for, the read models and the stream this app opened in its lifespan
(``request.app.state``), and waiting for a stream position.

The role guards are called at the start of a route's body, after FastAPI has validated the
query: an invalid query is a 422 whoever asks, and a role that may not read is a 403.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from events.jetstream import NatsConnection
from projections.rows import InvoiceRow, JobRow, UserRow
from read_api.errors import Refused
from read_api.fastboard import digest_of
from read_api.fastboard import token_of as token_in
from read_api.queries import BoardFilter, ReadModels
from read_api.settings import Settings

MAX_WAIT = 30.0
# A day in a query, YYYY-MM-DD only (pydantic alone also takes "0", as 1970-01-01)
Day = Annotated[date, BeforeValidator(lambda text: date.fromisoformat(text) if isinstance(text, str) else text)]
Position = Annotated[int | None, Query(ge=0, description="answer no older than this stream position")]
Wait = Annotated[float | None, Query(ge=0, le=MAX_WAIT, description="seconds to wait for it")]


# --- what the lifespan opened ------------------------------------------------------------


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def zone_of(request: Request) -> ZoneInfo:
    return request.app.state.zone


def models(request: Request) -> ReadModels:
    return request.app.state.models


def stream_of(request: Request) -> NatsConnection:
    """The stream, for what only it has (documents, failures, the audit), or 503."""
    stream = request.app.state.stream
    if stream is None:
        raise Refused(503, "this read API has no NATS connection configured (NATS_URL)")
    return stream


# --- who is asking -----------------------------------------------------------------------


def token_of(request: Request) -> str:
    return token_in(dict(request.scope["headers"]))


async def current_user(request: Request) -> UserRow:
    token = token_of(request)
    if not token:
        raise Refused(401, "sign in: send 'Authorization: Bearer <token>'")
    digest = digest_of(token)
    m, waiting_for = models(request), request.query_params.get("position", "")
    if waiting_for.isdigit() and int(waiting_for) > request.app.state.live.users_position:
        # a position the remembered users may not have seen (a token issued or revoked
        # just before it): wait for it, and read the token's user afresh
        await reachable(request, int(waiting_for))
        await asyncio.to_thread(m.wait_for, int(waiting_for), waiting_time(request))
        found = await asyncio.to_thread(m.user, digest)
    else:
        found = m.cached_user(digest) or await asyncio.to_thread(m.user, digest)
    if found is None or found.revoked:
        raise Refused(401, "this token is unknown or revoked")
    return found


CurrentUser = Annotated[UserRow, Depends(current_user)]


# --- what each role may read -------------------------------------------------------------


def billing_readers(who: UserRow) -> None:
    if who.role not in ("office", "accountant", "admin"):
        raise Refused(403, "invoices are for the office and the accountants")


def office_only(who: UserRow) -> None:
    if who.role == "technician":
        raise Refused(403, "technicians see their own jobs, schedule and time only")


def writers_only(who: UserRow) -> None:
    if who.role not in ("office", "admin"):
        raise Refused(403, f"the {who.role} role cannot change anything; the office can")


def auditors_only(request: Request, who: UserRow) -> NatsConnection:
    if who.role not in ("accountant", "admin"):
        raise Refused(403, "the audit is for accountants (and admins)")
    return stream_of(request)


def may_see(who: UserRow, job: JobRow) -> bool:
    if who.role != "technician":
        return True
    return who.technician_id in job.technician_ids or (job.status.value == "new" and not job.technician_ids)


async def job_or_404(request: Request, who: UserRow, job_id: UUID) -> JobRow:
    job = await asyncio.to_thread(models(request).job, job_id)
    if job is None:
        raise Refused(404, f"job {job_id} not found")
    if not may_see(who, job):
        raise Refused(403, "technicians see only their own jobs and the open pool")
    return job


async def invoice_or_404(request: Request, invoice_id: UUID) -> InvoiceRow:
    found = await asyncio.to_thread(models(request).invoice, invoice_id)
    if found is None:
        raise Refused(404, f"invoice {invoice_id} not found")
    return found


def board_filter(
    who: UserRow,
    status: list[str],
    job_type: str,
    technician: str,
    customer: str,
    priority: str,
    sla: str,
    requested_from: str,
    requested_to: str,
    q: str,
    sort: str,
    order: str,
    after: str,
    limit: int,
) -> BoardFilter:
    """The board's filter as asked, narrowed for a technician to their own jobs and the pool."""
    f = BoardFilter(
        status=[s for s in status if s],
        job_type=job_type,
        technician_id=technician,
        customer_id=customer,
        priority=priority,
        sla=sla,
        requested_from=requested_from,
        requested_to=requested_to,
        q=q.strip(),
        sort=sort,
        descending=order != "asc",
        after=after,
        limit=limit,
    )
    if who.role == "technician":
        f.technician_id = str(who.technician_id)
        f.open_pool_too = True
    return f


# --- reading your own writes -------------------------------------------------------------


def waiting_time(request: Request, wait: float | None = None) -> float:
    """How long a read may wait for a position: ``wait`` (seconds) if given, at most MAX_WAIT."""
    if wait is None:
        with contextlib.suppress(ValueError):
            wait = float(request.query_params.get("wait", ""))
    return min(wait if wait is not None and wait >= 0 else settings_of(request).wait_seconds, MAX_WAIT)


async def reachable(request: Request, position: int) -> None:
    """A position the read models have not reached must be in the stream, or no wait ends:
    beyond the stream's head is a 422 at once, not a 504 after the wait."""
    stream = request.app.state.stream
    if stream is None or position <= request.app.state.live.position:
        return
    head = await stream.last_position()
    if position > head:
        raise Refused(
            422, f"position: {position} is beyond the stream's head ({head}); send a position a command answered"
        )


async def fresh(request: Request, position: int | None, wait: float | None = None) -> int:
    if position is None:
        return -1  # nothing to wait for
    await reachable(request, position)
    return await asyncio.to_thread(models(request).wait_for, position, waiting_time(request, wait))
