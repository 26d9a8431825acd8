"""The books as JSON and CSV, for the office and the accountants: the trial balance, the journal
and what each customer owes by age."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from read_api.deps import CurrentUser, Day, billing_readers, fresh, models
from read_api.errors import ERRORS
from read_api.responses import json

router = APIRouter(tags=["ledger"], responses=ERRORS)


@router.get(
    "/api/ledger/trial-balance",
    summary="Debits and credits per account and currency; 'unbalanced' is empty when the books balance",
)
async def api_trial_balance(
    request: Request, who: CurrentUser, until: Day | None = None, position: int | None = None, wait: float | None = None
) -> Response:
    billing_readers(who)
    await fresh(request, position, wait)
    limit = (until + timedelta(days=1)).isoformat() if until else "9999"
    result = await asyncio.to_thread(models(request).trial_balance, limit)
    return json(
        {
            "balances": [{**msgspec.to_builtins(b), "balance": str(b.balance)} for b in result["balances"]],
            "unbalanced": result["unbalanced"],
        }
    )


@router.get(
    "/api/ledger/journal.csv",
    summary="Journal lines of a period, for accountants (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def api_journal_csv(
    request: Request,
    who: CurrentUser,
    since: Annotated[Day | None, Query(alias="from")] = None,
    until: Annotated[Day | None, Query(alias="to")] = None,
) -> Response:
    billing_readers(who)
    lines = await asyncio.to_thread(
        models(request).journal, since.isoformat() if since else "", until.isoformat() if until else "9999"
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "date",
            "entry",
            "line",
            "account",
            "debit",
            "credit",
            "currency",
            "document",
            "customer_id",
            "source",
            "position",
        ]
    )
    for j in lines:
        writer.writerow(
            [
                j.day,
                j.entry,
                j.line,
                j.account,
                j.debit,
                j.credit,
                j.currency,
                j.document,
                j.customer_id,
                j.source,
                j.position,
            ]
        )
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="journal.csv"'}
    )


@router.get(
    "/api/receivables/aging",
    summary="What each customer owes, by days past due: current, 1-30, 31-60, 61-90, 90+; "
    "their credit (overpaid), and the total net of it",
)
async def api_aging(
    request: Request, who: CurrentUser, position: int | None = None, wait: float | None = None
) -> Response:
    billing_readers(who)
    await fresh(request, position, wait)
    return json(await asyncio.to_thread(models(request).aging))
