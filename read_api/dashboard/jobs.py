"""A job's page and its forms, and the forms for a new job and a new customer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from read_api.billing import invoice_preview
from read_api.dashboard.forms import forward, local_to_utc, problem, submitted
from read_api.deps import CurrentUser, fresh, job_or_404, models, writers_only, zone_of
from read_api.errors import Refused
from read_api.templating import page

router = APIRouter()


@router.get("/jobs/new", response_class=HTMLResponse, include_in_schema=False)
async def new_job_form(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    return page(
        request,
        "job_new.html",
        who,
        customers=await asyncio.to_thread(models(request).customers),
        key=uuid.uuid4().hex,
        error="",
        form={},
    )


@router.get("/customers/new", response_class=HTMLResponse, include_in_schema=False)
async def new_customer_form(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    return page(request, "customer_new.html", who, key=uuid.uuid4().hex, error="", form={})


@router.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
async def job_page(request: Request, who: CurrentUser, job_id: UUID, position: int | None = None) -> Response:
    await fresh(request, position)
    reached = await asyncio.to_thread(models(request).position)
    found = await job_or_404(request, who, job_id)
    m = models(request)
    item, history, techs, customer, invoices = await asyncio.to_thread(
        lambda: (
            m.board_item(found),
            m.history(job_id),
            m.technicians(),
            m.customers_by_id([found.customer_id]),
            m.invoices(job_id=job_id) if who.role != "technician" else [],
        )
    )
    preview: dict[str, Any] | None = None
    if (
        who.role != "technician"
        and found.status.value in ("new", "scheduled", "in_progress", "on_hold", "completed")
        and not invoices
    ):
        try:
            preview = await invoice_preview(request, job_id)
        except Refused as refused:
            preview = {"billable": False, "reason": refused.detail}
    return page(
        request,
        "job.html",
        who,
        job=found,
        item=item,
        history=history,
        invoices=invoices,
        preview=preview,
        technicians=[t for t in techs if t.active],
        customer=customer.get(found.customer_id),
        key=uuid.uuid4().hex,
        error=request.query_params.get("error", ""),
        reached=reached,
    )


@router.post("/jobs/new", include_in_schema=False)
async def new_job(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    form = dict(await request.form())
    body: dict[str, Any] = {
        "customer_id": form.get("customer_id", ""),
        "job_type": form.get("job_type", ""),
        "description": form.get("description", ""),
        "source": form.get("source", "phone"),
        "priority": form.get("priority", "normal"),
        "billing_kind": form.get("billing_kind", "paid"),
    }
    if form.get("street"):
        body["site_address"] = {k: form.get(k, "") for k in ("street", "city", "postal_code", "country")}
    if form.get("sla_deadline"):
        body["sla_deadline"] = local_to_utc(str(form["sla_deadline"]), "sla_deadline", zone_of(request))
    status, answer = await forward(request, "/jobs", body, str(form.get("key") or uuid.uuid4().hex))
    if status >= 400:
        return page(
            request,
            "job_new.html",
            who,
            customers=await asyncio.to_thread(models(request).customers),
            key=form.get("key"),
            error=problem(answer),
            form=form,
        )
    return RedirectResponse(f"/jobs/{answer['id']}?position={answer['position']}", status_code=303)


@router.post("/customers/new", include_in_schema=False)
async def new_customer(request: Request, who: CurrentUser) -> Response:
    writers_only(who)
    form = dict(await request.form())
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "billing_address": {k: form.get(k, "") for k in ("street", "city", "postal_code", "country")},
        "phone": form.get("phone", ""),
    }
    for chosen in ("language", "currency"):  # not chosen: the address's language, the company's currency
        if form.get(chosen):
            body[chosen] = form[chosen]
    if form.get("email"):
        body["email"] = form["email"]
    if form.get("vat_id"):
        body["vat_id"] = form["vat_id"]
    status, answer = await forward(request, "/customers", body, str(form.get("key") or uuid.uuid4().hex))
    if status >= 400:
        return page(request, "customer_new.html", who, key=form.get("key"), error=problem(answer), form=form)
    return RedirectResponse(f"/jobs/new?position={answer['position']}", status_code=303)


@router.post("/jobs/{job_id}/{action}", include_in_schema=False)
async def job_command(request: Request, who: CurrentUser, job_id: UUID, action: str) -> Response:
    writers_only(who)
    form = dict(await request.form())
    if action in ("schedule", "reschedule"):
        body: dict[str, Any] = {
            "technician_ids": [form.get("technician_id", "")],
            "start": local_to_utc(str(form.get("start", "")), "start", zone_of(request)),
            "duration_minutes": int(str(form.get("duration_minutes") or 60)),
        }
        if action == "reschedule" and form.get("reason"):
            body["reason"] = form["reason"]
    elif action in ("cancel", "hold", "reopen"):
        body = {"reason": form.get("reason", "")}
    elif action in ("resume", "release-invoicing"):
        body = {}
    elif action == "notes":
        body = {"text": form.get("text", "")}
    else:
        raise Refused(404, f"the dashboard has no {action!r} form")
    return await submitted(request, f"/jobs/{job_id}/{action}", body, form, f"/jobs/{job_id}")
