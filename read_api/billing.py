"""Invoices and billing as JSON, for the office and the accountants: the invoices, a customer's
signed link, the invoicer's dry run for a job, unmatched bank credits and the reconciliation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import nats.errors
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from projections.rows import KSEF_STATES, EfacturaRow, InvoiceRow, KsefRow, efactura_summary, ksef_summary
from read_api import links
from read_api.deps import (
    CurrentUser,
    billing_readers,
    fresh,
    invoice_or_404,
    job_or_404,
    models,
    settings_of,
    stream_of,
)
from read_api.errors import ERRORS, Refused
from read_api.responses import json

router = APIRouter(tags=["billing"], responses=ERRORS)


def ksef_state(text: str) -> str:
    """A KSeF state asked for in a query (``ksef``), or a 422 naming the parameter."""
    if text and text not in KSEF_STATES:
        raise Refused(422, f"ksef: {text[:40]!r} is not a KSeF state; one of {', '.join(KSEF_STATES)}")
    return text


def with_ksef(
    row: InvoiceRow, ksef: KsefRow | None, whole: bool = True, efactura: EfacturaRow | None = None
) -> dict[str, Any]:
    """The invoice as the read API gives it: its row (without the issued event unless
    ``whole``), its KSeF state and its RO e-Factura state."""
    found = msgspec.to_builtins(row)
    if not whole:
        found.pop("issued", None)
    return {**found, "ksef": ksef_summary(ksef), "efactura": efactura_summary(efactura)}


@router.get(
    "/api/invoices",
    summary="Invoices, the latest first (or one job's, or those in one KSeF state)",
    description="`ksef` filters by KSeF state: " + ", ".join(KSEF_STATES) + " ('none': never sent to KSeF).",
)
async def api_invoices(
    request: Request,
    who: CurrentUser,
    job: UUID | None = None,
    # the door checks it (naming the states); the document says the same, so a client knows
    ksef: Annotated[str, Query(json_schema_extra={"enum": ["", *KSEF_STATES]})] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    position: int | None = None,
    wait: float | None = None,
) -> Response:
    billing_readers(who)
    state = ksef_state(ksef)
    await fresh(request, position, wait)
    m = models(request)
    rows = await asyncio.to_thread(m.invoices, limit, job, state)
    states = await asyncio.to_thread(m.ksef, [r.id for r in rows])
    return json([with_ksef(r, states.get(r.id), whole=False) for r in rows])


@router.get(
    "/api/invoices/{invoice_id}",
    summary="An invoice with every line, exactly as issued, and its KSeF state",
)
async def api_invoice(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    billing_readers(who)
    found = await invoice_or_404(request, invoice_id)
    m = models(request)
    states, uploads = await asyncio.to_thread(lambda: (m.ksef([invoice_id]), m.efactura([invoice_id])))
    return json(with_ksef(found, states.get(invoice_id), efactura=uploads.get(invoice_id)))


@router.get(
    "/api/invoices/{invoice_id}/link",
    summary="A signed link the customer opens the invoice's PDF with, without an account",
)
async def api_invoice_link(
    request: Request, who: CurrentUser, invoice_id: UUID, days: Annotated[int, Query(ge=1, le=365)] = links.DEFAULT_DAYS
) -> Response:
    billing_readers(who)
    found = await invoice_or_404(request, invoice_id)
    settings = settings_of(request)
    if not settings.link_secret:
        raise Refused(404, "no customer links here: they are off until JOBSTREAM_LINK_SECRET is set")
    token, expires = links.sign(found.id, settings.link_secret, days)
    base = settings.public_url or str(request.base_url).rstrip("/")
    return json(
        {
            "invoice": found.number,
            "url": f"{base}/d/{token}",
            "expires": datetime.fromtimestamp(expires, UTC).isoformat(),
        }
    )


async def invoice_preview(request: Request, job_id: UUID) -> dict[str, Any]:
    """The invoicer's dry run for a job, asked over NATS (request-reply)."""
    stream = stream_of(request)
    try:
        reply = await stream.nc.request(
            stream.settings.rpc_subject("invoice-preview"), str(job_id).encode(), timeout=3.0
        )
    except nats.errors.Error:  # no responders, or a timeout: the invoicer is not running
        raise Refused(503, "the invoicer is not answering: is 'jobstream run invoicer' running?") from None
    return msgspec.json.decode(reply.data)


@router.get(
    "/api/jobs/{job_id}/invoice-preview",
    summary="The invoice the job would get if it were completed now (a dry run by the invoicer)",
)
async def api_invoice_preview(request: Request, who: CurrentUser, job_id: UUID) -> Response:
    billing_readers(who)
    await job_or_404(request, who, job_id)
    return json(await invoice_preview(request, job_id))


@router.get("/api/bank/unmatched", summary="Bank credits no rule matched to an invoice: the office's review queue")
async def api_unmatched(
    request: Request, who: CurrentUser, position: int | None = None, wait: float | None = None
) -> Response:
    billing_readers(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).unmatched))


@router.get(
    "/api/billing/reconciliation",
    summary="Completed jobs against billing: invoiced, not billed (why), held (why), still waiting",
)
async def api_reconciliation(
    request: Request, who: CurrentUser, position: int | None = None, wait: float | None = None
) -> Response:
    billing_readers(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).reconciliation))
