"""Business dates are dates, within sane bounds: an impossible day or one centuries away is a
422 naming the field and the range, and stores nothing; payments stored before with such a
day (as text) still decode, load and project."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from events.contract import Address, Day, InvoiceIssued, Party, PaymentApplied, decode_event, encode_event
from tests.integration.conftest import ADDRESS, Api, read_side
from tests.integration.test_poison import straight


def refused(answer: object, field: str, says: str = "") -> None:
    assert answer.status_code == 422, answer.text  # type: ignore[attr-defined]
    (problem,) = answer.json()["detail"]  # type: ignore[attr-defined]
    assert problem["field"] == field, answer.text  # type: ignore[attr-defined]
    assert says in problem["reason"], problem


def issued(api: Api) -> UUID:
    invoice = uuid.uuid4()
    address = Address(**ADDRESS)
    straight(
        api.jobstream,
        invoice,
        InvoiceIssued(
            id=invoice,
            number="2026-000007",
            series="2026",
            sequence=7,
            job_id=uuid.uuid4(),
            customer_id=uuid.uuid4(),
            issue_date="2026-03-01",
            supply_date="2026-03-01",
            due_date="2026-03-15",
            currency="EUR",
            language="en",
            seller=Party(name="Seller", address=address),
            buyer=Party(name="Novák", address=address),
            lines=[],
            vat=[],
            net_total=Decimal(100),
            vat_total=Decimal(0),
            gross_total=Decimal(100),
            payment_reference="7",
        ),
    )
    return invoice


def test_dates_out_of_bounds_are_refused_naming_the_field_and_the_range(api: Api) -> None:
    tech = api.technician("jana")
    customer = api.customer()
    job = api.scheduled_job(tech, customer)
    api.ok(f"/jobs/{job}/start", {}, who="jana")
    invoice = issued(api)
    before = api.jobstream.recorder.max_notification_id()
    payments = f"/invoices/{invoice}/payments"
    refused(api.post(payments, {"amount": "10", "received_on": "2026-02-30"}), "received_on", "not a real day")
    refused(api.post(payments, {"amount": "10", "received_on": "9999-12-31"}), "received_on", "between 2000-01-01 and")
    refused(api.post(payments, {"amount": "10", "received_on": "1999-12-31"}), "received_on", "between 2000-01-01 and")
    refused(
        api.post(f"/jobs/{job}/reschedule", {"technician_ids": [str(tech)], "start": "9999-12-31T23:30:00Z"}),
        "start",
        "between 2000-01-01T00:00+00:00 and",
    )
    refused(
        api.post(f"/jobs/{job}/time-entries", {"started_at": "2026-11-23T08:00:00Z", "minutes": 44_640}, who="jana"),
        "minutes",
        "<= 1440",
    )
    refused(
        api.post(f"/jobs/{job}/time-entries", {"started_at": "2126-11-23T08:00:00Z", "minutes": 60}, who="jana"),
        "started_at",
    )
    refused(
        api.post(
            "/jobs",
            {
                "customer_id": customer,
                "job_type": "repair",
                "description": "Leak",
                "priority": "urgent",
                "sla_deadline": "9999-12-31T23:59:00Z",
            },
        ),
        "sla_deadline",
    )
    refused(api.post(f"/jobs/{job}/quote", {"amount": "10", "valid_until": "9999-01-01T00:00:00Z"}), "valid_until")
    plan = {
        "customer_id": customer,
        "job_type": "inspection",
        "description": "Monthly check",
        "technician_ids": [str(tech)],
        "rule": "FREQ=MONTHLY",
        "start": "2027-01-04T09:00:00",
    }
    refused(api.post("/recurring-services", {**plan, "start": "9999-12-31T23:30:00"}), "start")
    refused(api.post("/recurring-services", {**plan, "rule": "FREQ=DAILY;UNTIL=100000101T000000Z"}), "rule")
    refused(
        api.post("/recurring-services", {**plan, "rule": "FREQ=DAILY;UNTIL=99991231T000000"}),
        "rule",
        "UNTIL must be at most",
    )
    refused(
        api.post(
            f"/customers/{customer}/retainers",
            {"description": "Care", "amount": "50", "vat_rate": "21", "first_month": "9999-01"},
        ),
        "first_month",
        "2000-01",
    )
    assert api.jobstream.recorder.max_notification_id() == before, "a refused command stored something"
    # what is in bounds is taken, as a real day
    api.ok(payments, {"amount": "10", "received_on": "2026-02-28"})
    (payment,) = [decode_event(e.state) for e in api.jobstream.history(invoice) if e.topic == "PaymentApplied"]
    assert payment.received_on == date(2026, 2, 28) and payment.received_on.real


def test_payments_stored_with_impossible_days_still_load_and_project(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    invoice = issued(api)
    for written, amount in (("2026-02-30", "10.00"), ("9999-12-31", "20.00")):
        # stored as the command API stored them before its days were dates: the text as given
        payment = PaymentApplied(
            id=invoice,
            payment_id=uuid.uuid4(),
            amount=Decimal(amount),
            currency="EUR",
            received_on=Day.of(date(2026, 3, 1)),
            rule="office",
        )
        sealed = encode_event(payment).replace(b'"2026-03-01"', f'"{written}"'.encode())
        assert f'"received_on":"{written}"'.encode() in sealed
        straight_bytes(api, invoice, sealed)
    days = [decode_event(e.state).received_on for e in api.jobstream.history(invoice) if e.topic == "PaymentApplied"]
    assert [d.written for d in days] == ["2026-02-30", "9999-12-31"]
    assert days == [date(2026, 2, 28), date(9999, 12, 31)] and not days[0].real and days[1].real
    state = api.get(f"/invoices/{invoice}").json()
    assert Decimal(state["paid"]) == Decimal("30.00"), state
    assert api.ok(f"/invoices/{invoice}/payments", {"amount": "5", "received_on": "2026-03-02"})  # goes on
    with read_side(api, stream_env, read_model_url) as reader:
        row = reader.get(f"/api/invoices/{invoice}").json()
        assert Decimal(row["paid"]) == Decimal("35.00"), row


def straight_bytes(api: Api, aggregate_id: UUID, state: bytes) -> int:
    """An event's bytes appended as they are, past the codec (how an older version stored it)."""
    from eventsourcing.persistence import StoredEvent

    from events.contract import EventMeta, event_hash

    before = api.jobstream.history(aggregate_id)
    meta = EventMeta(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        actor_id="olga",
        actor_role="office",
        command_id=f"old:{uuid.uuid4()}",
        correlation_id="old",
        previous_hash=event_hash(before[-1].state) if before else "",
    )
    decoded = msgspec.json.decode(state)
    decoded["meta"] = msgspec.to_builtins(meta)
    data = msgspec.json.encode(decoded)
    stored = StoredEvent(aggregate_id, before[-1].originator_version + 1 if before else 1, "PaymentApplied", data)
    return api.jobstream.recorder.insert_events([stored])[-1]  # type: ignore[no-any-return]


def test_an_invoice_stored_with_text_dates_still_decodes_renders_and_projects(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    from invoicer.documents import invoice_html
    from invoicer.einvoice import ubl_invoice

    invoice = issued(api)  # written as the old code wrote it: the dates as text
    (stored,) = [e for e in api.jobstream.history(invoice) if e.topic == "InvoiceIssued"]
    assert b'"issue_date":"2026-03-01","supply_date":"2026-03-01","due_date":"2026-03-15"' in stored.state
    old = decode_event(stored.state)
    assert isinstance(old, InvoiceIssued)
    assert (old.issue_date, old.supply_date, old.due_date) == (date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 15))
    assert encode_event(old) == stored.state  # the same bytes: the hash chain holds
    assert "Due: <b>15 Mar 2026</b>" in invoice_html(old)
    xml = ubl_invoice(old)
    assert b"<cbc:IssueDate>2026-03-01</cbc:IssueDate>" in xml and b"<cbc:DueDate>2026-03-15</cbc:DueDate>" in xml
    with read_side(api, stream_env, read_model_url) as reader:
        row = reader.get(f"/api/invoices/{invoice}").json()
        assert (row["issue_date"], row["due_date"]) == ("2026-03-01", "2026-03-15"), row
    # an invoice issued now holds dates, stored in the same form
    api.ok(f"/invoices/{invoice}/payments", {"amount": "100", "received_on": "2026-03-02"})
    new = msgspec.structs.replace(old, issue_date=date(2026, 3, 1))
    assert type(decode_event(encode_event(new)).issue_date) is date  # type: ignore[attr-defined]
