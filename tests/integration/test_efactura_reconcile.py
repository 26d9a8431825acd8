"""`jobstream audit reconcile` lists each Romanian document not yet accepted by e-Factura
while it is within the 5 calendar days after its issue, and fails naming each one past them;
with --efactura (e-Factura configured all along) also one never uploaded. The invoices are
issued by the real invoicer and taken through the real uploader against the stand-in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from events.contract import InvoiceIssued
from projections.audit import efactura_deadline
from services.application import JobstreamApp
from tests.integration.conftest import stored
from tests.integration.test_audit import audit
from tests.integration.test_efactura_upload import Clock, Office, issue, until_answered, upload

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn


def test_the_deadline_is_the_end_of_the_fifth_calendar_day_in_romania() -> None:
    assert efactura_deadline(date(2026, 12, 3)) == datetime(2026, 12, 8, 21, 59, 59, tzinfo=UTC)  # EET
    assert efactura_deadline(date(2026, 7, 29)) == datetime(2026, 8, 3, 20, 59, 59, tzinfo=UTC)  # EEST, a Monday


def test_reconcile_warns_of_romanian_invoices_not_accepted_and_fails_past_five_days(
    jobstream: JobstreamApp, stream_env: dict[str, str], efactura_standin: StandIn
) -> None:
    office = Office(jobstream)
    office.completed_job()
    issue(stream_env)
    clock = Clock()
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)  # the first one accepted
    office.completed_job()
    office.completed_job()
    issue(stream_env)
    efactura_standin.refuse_next("E: [BR-RO-100] strada")
    upload(stream_env, efactura_standin, clock)
    until_answered(stream_env, efactura_standin, clock)  # refused: the office must issue it again
    (invoices,) = stored(jobstream, InvoiceIssued)
    first = invoices[0]
    refused = next(i for i in invoices if efactura_standin.of(i.number)[0].state == "nok")
    uploaded = next(i for i in invoices[1:] if i is not refused)
    deadline = efactura_deadline(first.issue_date)

    done = audit(stream_env, "reconcile", "--now", datetime.now(UTC).isoformat())
    said = done.stdout + done.stderr
    assert "3 Romanian documents for e-Factura: 2 accepted, 1 not yet, still within their 5 days." in said, said
    assert f"e-Factura  invoice {refused.number}: refused by ANAF: E: [BR-RO-100] strada, by " in said
    assert done.returncode == 0, said

    late = datetime.combine(deadline.date() + timedelta(days=1), time(12), ZoneInfo("UTC"))
    done = audit(stream_env, "reconcile", "--now", late.isoformat())
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"invoice {refused.number} ({refused.id}) is not accepted by e-Factura past its deadline" in said
    assert uploaded.number not in said.split("problem(s):")[1]

    office.completed_job()
    issue(stream_env)  # issued while the uploader is not running
    (invoices,) = stored(jobstream, InvoiceIssued)
    never = invoices[-1]
    now = datetime.now(UTC).isoformat()
    assert never.number not in audit(stream_env, "reconcile", "--now", now).stdout  # not known to be for e-Factura
    done = audit(stream_env, "reconcile", "--now", now, "--efactura")
    assert f"e-Factura  invoice {never.number}: never uploaded to e-Factura, by " in done.stdout, done.stdout
