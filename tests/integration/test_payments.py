"""Payments: bank statements imported once, credits matched to invoices by the rule that
finds them, the rest in the office's review queue; payments the office records by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from events.contract import BankStatementImported, PaymentApplied, StatementLineUnmatched, decode_event
from events.jetstream import NatsConnection, StreamSettings
from invoicer.payments import PaymentMatcher
from invoicer.pricing import creditor_reference, variable_symbol
from invoicer.settings import Settings
from services.application import JobstreamApp
from tests.integration.conftest import Api, read_side, stored
from tests.integration.test_invoicer import YEAR, Office, invoice_all, invoices, price_list

settings_of = StreamSettings.from_env  # a service's stream settings from its environment


def camt(
    entries: list[tuple[str, str, str, str, str]], statement: str = "STMT-1", refs: list[str | None] | None = None
) -> bytes:
    """A camt.053.001.02 statement of credits: (amount, currency, payer, payer IBAN, text), each
    with the bank's reference ``refs[n]`` (None: no AcctSvcrRef), else ``<statement>-<n>``."""
    refs = refs or [f"{statement}-{n}" for n in range(1, len(entries) + 1)]
    body = "".join(
        f"""
      <Ntry><Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-11-23</Dt></BookgDt><ValDt><Dt>2026-11-23</Dt></ValDt>
        <NtryDtls><TxDtls>{f"<Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>" if ref else ""}
          <RltdPties><Dbtr><Nm>{payer}</Nm></Dbtr><DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""
        for (amount, currency, payer, iban, text), ref in zip(entries, refs, strict=True)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
  <GrpHdr><MsgId>{statement}</MsgId><CreDtTm>2026-11-23T18:00:00+01:00</CreDtTm></GrpHdr>
  <Stmt><Id>{statement}</Id><CreDtTm>2026-11-23T18:00:00+01:00</CreDtTm>
    <Acct><Id><IBAN>PL61109010140000071219812874</IBAN></Id><Ccy>CZK</Ccy></Acct>{body}
  </Stmt></BkToCstmrStmt></Document>""".encode()


def catch_up(env: dict[str, str], consumer: Callable[[NatsConnection], Any]) -> None:
    """One consumer of the invoicer's, on its own connection, through what is stored now."""

    async def run() -> None:
        connection = await NatsConnection.open_on_running_loop(settings_of(env))
        try:
            await consumer(connection).catch_up()
        finally:
            await connection.aclose()

    asyncio.run(run())


def match_all(env: dict[str, str]) -> None:
    catch_up(env, PaymentMatcher)


def payments(app: JobstreamApp) -> tuple[list[PaymentApplied], list[StatementLineUnmatched]]:
    applied, unmatched = stored(app, PaymentApplied, StatementLineUnmatched)
    return applied, unmatched


def test_a_statement_pays_invoices_by_the_rule_that_finds_them(api: Api, stream_env: dict[str, str]) -> None:
    price_list(api.jobstream)
    office = Office(api.jobstream)
    for _ in range(4):
        office.completed_job()
    asyncio.run(invoice_all(stream_env))
    issued = sorted(invoices(api.jobstream)[0], key=lambda i: i.number)
    first, second, third, fourth = issued
    assert first.gross_total == Decimal("181.50")  # 3 started hours at 50.00, plus 21 %

    statement = camt(
        [
            ("181.50", "CZK", "Novák Stavby", "CZ6508000000192000145399", f"Faktura {first.number} dekujeme"),
            ("100.00", "CZK", "Novák Stavby", "CZ6508000000192000145399", creditor_reference(second.number)),
            ("200.00", "CZK", "Jan Dvořák", "CZ2806000000000168540115", f"VS {variable_symbol(third.number)}"),
            ("181.50", "EUR", "Someone", "DE89370400440532013000", f"{fourth.number}"),
            ("55.00", "CZK", "Unknown", "CZ5855000000001265098001", "za opravu"),
        ]
    )
    imported = api.client.post("/bank-statements", content=statement, headers=api.headers("office"))
    assert imported.status_code == 201, imported.text
    match_all(stream_env)
    match_all(stream_env)  # delivered again: nothing twice

    again = api.client.post("/bank-statements", content=statement, headers=api.headers("office"))
    assert again.status_code == 201 and again.json()["replayed"] is True
    assert (
        sum(
            isinstance(decode_event(n.state), BankStatementImported)
            for n in api.jobstream.recorder.select_notifications(1, 1_000_000)
        )
        == 1
    )

    applied, unmatched = payments(api.jobstream)
    assert {(p.id, p.amount, p.rule) for p in applied} == {
        (first.id, Decimal("181.50"), "invoice number"),
        (second.id, Decimal("100.00"), "RF reference"),
        (third.id, Decimal("200.00"), "variable symbol"),
    }  # 200 of 181.50: 18.50 is the customer's credit
    assert sorted((u.amount, u.reason.split(",")[0]) for u in unmatched) == [
        (Decimal("55.00"), "no invoice number"),
        (Decimal("181.50"), f"names {fourth.number}"),
    ]
    assert all(p.payer_iban for p in applied) and applied[0].statement_id == UUID(imported.json()["id"])

    # the payer's IBAN is known now: a plain transfer of the amount due matches by amount and payer
    later = camt([("81.50", "CZK", "Novák Stavby", "CZ6508000000192000145399", "doplatek")], "STMT-2")
    assert api.client.post("/bank-statements", content=later, headers=api.headers("office")).status_code == 201
    match_all(stream_env)
    assert [(p.id, p.rule) for p in payments(api.jobstream)[0]][-1] == (second.id, "amount and payer")


def invoiced_twice(api: Api, stream_env: dict[str, str]) -> list[Any]:
    """Two completed jobs of one customer, invoiced (181.50 CZK each), in number order."""
    price_list(api.jobstream)
    office = Office(api.jobstream)
    office.completed_job()
    office.completed_job()
    asyncio.run(invoice_all(stream_env))
    return sorted(invoices(api.jobstream)[0], key=lambda i: i.number)


def test_an_entry_listed_twice_is_applied_once_and_the_copy_waits_for_review(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    first, second = invoiced_twice(api, stream_env)
    paying_first = ("181.50", "CZK", "Novák Stavby", "CZ6508000000192000145399", f"Faktura {first.number}")
    paying_second = ("181.50", "CZK", "Novák Stavby", "CZ6508000000192000145399", f"Faktura {second.number}")

    # the bank lists one entry twice (the same AcctSvcrRef) in one file
    twice = camt([paying_first, paying_first], "STMT-A", refs=["BANK-0001", "BANK-0001"])
    assert api.client.post("/bank-statements", content=twice, headers=api.headers("office")).status_code == 201
    match_all(stream_env)
    # a later file lists it again, and an entry without a bank reference twice (known by its content)
    later = camt([paying_first, paying_second, paying_second], "STMT-B", refs=["BANK-0001", None, None])
    assert api.client.post("/bank-statements", content=later, headers=api.headers("office")).status_code == 201
    match_all(stream_env)

    applied, unmatched = payments(api.jobstream)
    assert sorted((p.id, p.amount) for p in applied) == sorted(
        [(first.id, Decimal("181.50")), (second.id, Decimal("181.50"))]
    )  # each once
    assert api.get(f"/invoices/{first.id}").json()["paid"] == "181.50"
    assert len(unmatched) == 3 and all(u.reason.startswith("likely a duplicate") for u in unmatched)
    reasons = sorted(u.reason for u in unmatched)
    assert any(
        "bank reference BANK-0001" in r and "line 1 of this statement" in r and first.number in r for r in reasons
    ), reasons
    assert any("bank reference BANK-0001" in r and "statement STMT-A, imported earlier" in r for r in reasons)
    assert any("the same date, amount, payer and text" in r and second.number in r for r in reasons)

    with read_side(api, stream_env, read_model_url) as reader:
        queue = reader.get("/api/bank/unmatched").json()
        assert sorted(u["reason"] for u in queue) == reasons
        assert "likely a duplicate" in reader.get("/payments").text


def test_the_same_statement_again_answers_as_the_first_import(api: Api, stream_env: dict[str, str]) -> None:
    statement = camt(
        [
            ("55.00", "CZK", "Unknown", "CZ5855000000001265098001", "za opravu"),
            ("12.00", "CZK", "Unknown", "CZ5855000000001265098001", "zaloha"),
        ],
        "STMT-R",
    )
    first = api.client.post("/bank-statements", content=statement, headers=api.headers("office"))
    assert first.status_code == 201, first.text
    match_all(stream_env)  # two lines for review: the matcher appends them to the statement
    again = api.client.post("/bank-statements", content=statement, headers=api.headers("office"))
    assert again.status_code == first.status_code
    answer, before = again.json(), first.json()
    assert {k: answer[k] for k in ("id", "version", "position", "events")} == {
        k: before[k] for k in ("id", "version", "position", "events")
    }
    assert (before["replayed"], answer["replayed"]) == (False, True)  # the first result, again


def test_the_office_records_a_payment_and_bad_input_is_named(api: Api, stream_env: dict[str, str]) -> None:
    price_list(api.jobstream)
    Office(api.jobstream).completed_job()
    asyncio.run(invoice_all(stream_env))
    (invoice,), _ = invoices(api.jobstream)
    body = {"amount": "50.00", "received_on": "2026-11-23", "payer": "cash at the counter"}
    assert api.post(f"/invoices/{invoice.id}/payments", body, who="accountant").status_code == 403
    bad = api.post(f"/invoices/{invoice.id}/payments", {**body, "amount": "-5"})
    assert bad.status_code == 422 and "amount" in bad.text
    paid = api.post(f"/invoices/{invoice.id}/payments", body, **{"Idempotency-Key": "till-7"})
    assert paid.status_code == 200, paid.text
    assert api.post(f"/invoices/{invoice.id}/payments", body, **{"Idempotency-Key": "till-7"}).json()["replayed"]
    state = api.get(f"/invoices/{invoice.id}").json()
    assert state["paid"] == "50.00" and state["number"] == invoice.number
    garbage = api.client.post("/bank-statements", content=b"hello", headers=api.headers("office"))
    assert garbage.status_code == 422 and "statement" in garbage.text


BANK = Path(__file__).resolve().parents[3] / "shared" / "data" / "bank"


def test_real_banks_statements_are_read(tmp_path: Path) -> None:
    import pytest

    from services.bank import parse_statement

    if not BANK.exists():
        pytest.skip("../shared/data/bank is not here")
    counts = {
        path.name: len(parse_statement(path.read_bytes()).lines)
        for path in sorted(BANK.glob("*/*"))
        if "LICENSE" not in path.name
    }
    assert counts["camt053.v2.multi.statement.xml"] == 2 and counts["camt053.v8.xml"] == 1
    assert counts["ASNB_0708271685_09022020_164516.940.txt"] == 8  # wraps its :61: lines
    assert counts["betterplace_sepa_mt9401.sta"] == 97
    assert all(count > 0 for count in counts.values()), counts


def test_the_ledger_balances_and_shows_what_is_owed(api: Api, stream_env: dict[str, str], read_model_url: str) -> None:

    price_list(api.jobstream)
    office = Office(api.jobstream)
    office.completed_job()
    office.completed_job(minutes=30)
    asyncio.run(invoice_all(stream_env))
    big, small = sorted(invoices(api.jobstream)[0], key=lambda i: -i.gross_total)
    assert (big.gross_total, small.gross_total) == (Decimal("181.50"), Decimal("60.50"))
    api.ok(f"/invoices/{small.id}/payments", {"amount": "60.50", "received_on": "2026-11-23"})
    api.ok(f"/invoices/{big.id}/payments", {"amount": "100.00", "received_on": "2026-11-23"})

    with read_side(api, stream_env, read_model_url, who="accountant") as reader:
        trial = reader.get("/api/ledger/trial-balance").json()
        assert trial["unbalanced"] == {}
        balance = {b["account"]: b["balance"] for b in trial["balances"]}
        assert balance == {
            "bank": "160.50",
            "receivables": "81.50",
            "revenue:repair": "-200.00",
            "vat payable:21%": "-42.00",
        }
        (owed,) = reader.get("/api/receivables/aging").json()
        assert (owed["customer"], owed["currency"], owed["current"], owed["total"]) == (
            "Novák Stavby",
            "CZK",
            "81.50",
            "81.50",
        )
        statuses = {i["number"]: i["status"] for i in reader.get("/api/invoices").json()}
        assert statuses == {big.number: "partially paid", small.number: "paid"}
        journal = reader.get("/api/ledger/journal.csv").text.splitlines()
        assert journal[0].startswith("date,entry,line,account") and len(journal) == 1 + 2 * 3 + 2 * 2
        assert reader.get("/ledger").status_code == 200
        reconciled = reader.get("/api/billing/reconciliation").json()
        assert (reconciled["invoiced"], reconciled["waiting"], reconciled["held"]) == (2, [], [])


def test_aging_shows_a_customers_overpayment_and_nets_it(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    paid, unpaid = invoiced_twice(api, stream_env)
    assert paid.customer_id == unpaid.customer_id and paid.gross_total == Decimal("181.50")
    api.ok(f"/invoices/{paid.id}/payments", {"amount": "200.00", "received_on": "2026-11-23"})  # 18.50 too much

    with read_side(api, stream_env, read_model_url, who="accountant") as reader:
        (owed,) = reader.get("/api/receivables/aging").json()
        assert (owed["current"], owed["credit"], owed["total"]) == ("181.50", "18.50", "163.00")
        balance = {b["account"]: b["balance"] for b in reader.get("/api/ledger/trial-balance").json()["balances"]}
        assert balance["receivables"] == owed["total"]  # the aging agrees with the books
        page = reader.get("/ledger").text
        assert "Credit" in page and "18.50" in page and "163.00" in page


def test_dunning_reminds_on_schedule_and_never_reminds_a_paid_invoice(api: Api, stream_env: dict[str, str]) -> None:
    from datetime import date, timedelta

    from events.contract import PaymentReminderDue
    from invoicer.dunning import Dunning, Open, schedule_of

    price_list(api.jobstream)
    office = Office(api.jobstream)
    for _ in range(3):
        office.completed_job()
    asyncio.run(invoice_all(stream_env))
    paid_early, paid_on_the_day, unpaid = sorted(invoices(api.jobstream)[0], key=lambda i: i.number)
    due = unpaid.due_date
    api.ok(f"/invoices/{paid_early.id}/payments", {"amount": str(paid_early.gross_total), "received_on": str(due)})

    class PaymentArrivesMidRun(Dunning):
        """The payment of one invoice is recorded after the policy read it, before it reminds."""

        def due_step(self, invoice: Open, today: date):  # type: ignore[no-untyped-def]
            found = super().due_step(invoice, today)
            if found and invoice.id == paid_on_the_day.id and not getattr(self, "paid", False):
                self.paid = True
                api.ok(
                    f"/invoices/{invoice.id}/payments",
                    {"amount": str(paid_on_the_day.gross_total), "received_on": str(today)},
                )
            return found

    async def run(days_late: list[int]) -> list[int]:
        connection = await NatsConnection.open_on_running_loop(settings_of(stream_env))
        try:
            dunning = PaymentArrivesMidRun(connection, schedule_of("3:friendly,14:firm,30:escalation:olga"))
            return [await dunning.run_once(due + timedelta(days=late)) for late in days_late]
        finally:
            await connection.aclose()

    assert asyncio.run(run([1, 3, 3, 20, 45])) == [0, 1, 0, 1, 1]
    (reminders,) = stored(api.jobstream, PaymentReminderDue)
    assert [(r.id, r.step, r.level, r.days_overdue, r.escalate_to) for r in reminders] == [
        (unpaid.id, 1, "friendly", 3, ""),
        (unpaid.id, 2, "firm", 20, ""),
        (unpaid.id, 3, "escalation", 45, "olga"),
    ]
    assert all(r.outstanding == unpaid.gross_total for r in reminders)


def render_documents(env: dict[str, str]) -> None:
    from invoicer.writer import DocumentWriter

    catch_up(env, DocumentWriter)


def test_credit_notes_correct_an_invoice_by_reference(
    api: Api, stream_env: dict[str, str], read_model_url: str, tmp_path: Path
) -> None:
    import io
    import subprocess
    import sys

    from pypdf import PdfReader

    from events.contract import CreditNoteIssued, InvoiceCredited
    from invoicer.pricing import Seller
    from tests.integration.test_einvoice import VALIDATOR

    seller = Settings(seller=Seller(vat_id="PL5261040828"))  # an e-invoice names the seller's VAT id
    price_list(api.jobstream)
    office = Office(api.jobstream)
    office.completed_job()
    office.completed_job(minutes=30)
    asyncio.run(invoice_all(stream_env, settings=seller))
    wrong, partly = sorted(invoices(api.jobstream)[0], key=lambda i: -i.gross_total)  # 181.50 and 60.50

    assert api.post(f"/invoices/{wrong.id}/credit-notes", {"reason": "x"}, who="accountant").status_code == 403
    assert api.post(f"/invoices/{wrong.id}/credit-notes", {"reason": "  "}).status_code == 422
    too_much = api.post(f"/invoices/{partly.id}/credit-notes", {"reason": "discount", "amount": "70.00"})
    assert too_much.status_code == 422 and "at most 60.50 CZK" in too_much.text
    api.ok(f"/invoices/{wrong.id}/credit-notes", {"reason": "invoiced to the wrong customer"})
    api.ok(f"/invoices/{partly.id}/credit-notes", {"reason": "goodwill discount", "amount": "12.10"})
    again = api.post(f"/invoices/{wrong.id}/credit-notes", {"reason": "again"})
    assert again.status_code == 409 and "credited in full" in again.text
    asyncio.run(invoice_all(stream_env, settings=seller))
    asyncio.run(invoice_all(stream_env, settings=seller))  # redelivered: no second credit note
    render_documents(stream_env)

    notes, credited = stored(api.jobstream, CreditNoteIssued, InvoiceCredited)
    assert [(n.number, n.invoice_number, n.gross_total) for n in notes] == [
        (f"KOR/{YEAR}/000001", wrong.number, Decimal("181.50")),
        (f"KOR/{YEAR}/000002", partly.number, Decimal("12.10")),
    ]
    assert notes[0].lines == wrong.lines and notes[0].vat == wrong.vat  # the whole invoice, line by line
    (line,) = notes[1].lines
    assert (line.net, notes[1].vat_total) == (Decimal("10.00"), Decimal("2.10"))  # 12.10 gross at 21 %
    assert [c.amount for c in credited] == [Decimal("181.50"), Decimal("12.10")]

    with read_side(api, stream_env, read_model_url, who="accountant") as reader:
        rows = {i["number"]: i for i in reader.get("/api/invoices").json()}
        assert (rows[wrong.number]["status"], rows[wrong.number]["credit_notes"]) == (
            "credited",
            [f"KOR/{YEAR}/000001"],
        )
        assert (rows[partly.number]["status"], rows[partly.number]["credited"]) == ("issued", "12.10")
        trial = reader.get("/api/ledger/trial-balance").json()
        assert trial["unbalanced"] == {}
        balance = {b["account"]: b["balance"] for b in trial["balances"]}
        assert balance["receivables"] == "48.40"  # 60.50 - 12.10; the wrong invoice nets to nothing
        (owed,) = reader.get("/api/receivables/aging").json()
        assert owed["total"] == "48.40"
        pdf = reader.get(f"/credit-notes/{notes[0].id}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        assert "Credit note" in text and f"KOR/{YEAR}/000001" in text
        assert f"Corrects invoice {wrong.number}" in text
        xml = reader.get(f"/credit-notes/{notes[1].id}.xml")
        assert xml.status_code == 200 and b"<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>" in xml.content
        if VALIDATOR.exists():  # the UBL CreditNote, and the PDF as a Factur-X credit note
            (tmp_path / "note.xml").write_bytes(xml.content)
            (tmp_path / "note.pdf").write_bytes(pdf.content)
            checked = subprocess.run(
                [sys.executable, str(VALIDATOR), str(tmp_path / "note.xml"), str(tmp_path / "note.pdf")],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert checked.returncode == 0, checked.stdout
