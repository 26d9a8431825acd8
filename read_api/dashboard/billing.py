"""The invoices page and its forms (a payment, a credit note), payments and bank statements,
the ledger and the reports."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from projections.rows import KSEF_STATES
from read_api.billing import ksef_state
from read_api.dashboard.forms import problem, quote, submitted
from read_api.deps import (
    CurrentUser,
    billing_readers,
    fresh,
    invoice_or_404,
    models,
    office_only,
    token_of,
    writers_only,
    zone_of,
)
from read_api.templating import page

router = APIRouter()


@router.get("/invoices", response_class=HTMLResponse, include_in_schema=False)
async def invoices_page(request: Request, who: CurrentUser, position: int | None = None, ksef: str = "") -> Response:
    billing_readers(who)
    state = ksef_state(ksef)
    await fresh(request, position)
    m = models(request)
    invoices = await asyncio.to_thread(m.invoices, 200, None, state)
    emails, ksef_rows, warnings = await asyncio.to_thread(
        lambda: (m.invoice_emails(invoices), m.ksef([i.id for i in invoices]), m.ksef_warnings())
    )
    return page(
        request,
        "invoices.html",
        who,
        invoices=invoices,
        emails=emails,
        ksef=ksef_rows,
        ksef_filter=state,
        ksef_states=KSEF_STATES,
        warnings=warnings,
        error=request.query_params.get("error", ""),
        key=uuid.uuid4().hex,
        today=datetime.now(zone_of(request)).date().isoformat(),
    )


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse, include_in_schema=False)
async def invoice_page(request: Request, who: CurrentUser, invoice_id: UUID, position: int | None = None) -> Response:
    """One invoice: what was issued, its documents, its email and its way through KSeF."""
    billing_readers(who)
    await fresh(request, position)
    found = await invoice_or_404(request, invoice_id)
    m = models(request)
    emails, ksef_rows, uploads = await asyncio.to_thread(
        lambda: (m.invoice_emails([found]), m.ksef([invoice_id]), m.efactura([invoice_id]))
    )
    notes = await asyncio.to_thread(m.ksef, found.credit_note_ids)
    return page(
        request,
        "invoice.html",
        who,
        inv=found,
        mail=emails.get(invoice_id),
        k=ksef_rows.get(invoice_id),
        ef=uploads.get(invoice_id),
        notes=notes,
    )


@router.post("/invoices/{invoice_id}/payments", include_in_schema=False)
@router.post("/invoices/{invoice_id}/credit-notes", include_in_schema=False)
async def invoice_command(request: Request, who: CurrentUser, invoice_id: UUID) -> Response:
    """The Invoices page's forms: record a payment, issue a credit note. Each form has its own
    URL, so another path under an invoice (its UPO, say) answers for itself."""
    writers_only(who)
    action = request.url.path.rsplit("/", 1)[-1]
    form = dict(await request.form())
    if action == "credit-notes":
        body: dict[str, Any] = {"reason": form.get("reason", "")}
        if str(form.get("amount", "")).strip():
            body["amount"] = str(form["amount"]).strip().replace(",", ".")
    else:  # payments
        body = {
            "amount": str(form.get("amount", "")).strip().replace(",", "."),
            "received_on": str(form.get("received_on", "")),
            "payer": form.get("payer", ""),
        }
    return await submitted(request, f"/invoices/{invoice_id}/{action}", body, form, "/invoices")


@router.get("/payments", response_class=HTMLResponse, include_in_schema=False)
async def payments_page(request: Request, who: CurrentUser, position: int | None = None) -> Response:
    billing_readers(who)
    await fresh(request, position)
    return page(
        request,
        "payments.html",
        who,
        unmatched=await asyncio.to_thread(models(request).unmatched),
        error=request.query_params.get("error", ""),
        done=request.query_params.get("done", ""),
    )


@router.post("/payments/statements", include_in_schema=False)
async def upload_statement(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    form = await request.form()
    upload = form.get("statement")
    if upload is None or isinstance(upload, str):
        return RedirectResponse("/payments?error=" + quote("statement: choose a file"), status_code=303)
    data = await upload.read()
    response = await request.app.state.commands.post(
        "/bank-statements",
        content=data,
        headers={"Authorization": f"Bearer {token_of(request)}", "Content-Type": "application/octet-stream"},
    )
    answer = response.json()
    if response.status_code >= 400:
        return RedirectResponse("/payments?error=" + quote(problem(answer)), status_code=303)
    done = "already imported: nothing added" if answer.get("replayed") else "imported; matching it now"
    return RedirectResponse(f"/payments?position={answer['position']}&done=" + quote(done), status_code=303)


@router.get("/ledger", response_class=HTMLResponse, include_in_schema=False)
async def ledger_page(request: Request, who: CurrentUser) -> Response:
    billing_readers(who)
    m = models(request)
    trial, aging = await asyncio.to_thread(lambda: (m.trial_balance(), m.aging()))
    return page(request, "ledger.html", who, trial=trial, aging=aging)


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
async def reports_page(request: Request, who: CurrentUser) -> Response:
    office_only(who)
    return page(request, "reports.html", who, reports=await asyncio.to_thread(models(request).reports))
