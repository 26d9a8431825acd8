"""A small, realistic business to explore: customers, technicians, price lists, and jobs
in every status, each made through the same commands the office and technicians use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from events.contract import (
    AddNote,
    Address,
    AddTimeEntry,
    CancelJob,
    CompleteJob,
    CreatePriceList,
    PriceActivity,
    Priority,
    PutJobOnHold,
    RegisterCustomer,
    RegisterTechnician,
    RequestJob,
    Role,
    ScheduleJob,
    SignOffJob,
    Source,
    StartWork,
    UnassignJob,
    Unit,
    UseMaterial,
)
from services.application import COMMAND_KINDS, JobstreamApp
from services.domain.common import Actor, derived_id

OFFICE = Actor(id="demo-office", role=Role.OFFICE)


def _id(*parts: object) -> UUID:
    return derived_id("demo", *parts)


def load_demo(app: JobstreamApp, say: Callable[[str], None]) -> dict[str, str]:
    """Load the demo once (ids are fixed, commands idempotent); print the users' tokens."""
    if app.load("pricelist", _id("prices", "default")).version:
        say("Demo data is already loaded.")
        return {}
    say("Loading the demo business ...")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    def do(id: UUID, command: msgspec.Struct, actor: Actor = OFFICE) -> None:
        kind = COMMAND_KINDS[type(command)].name
        app.execute(id, command, actor, command_id=f"demo-{kind}-{id}-{type(command).__name__}-{_counter()}")

    default = _id("prices", "default")
    do(default, CreatePriceList(name="Standard rates 2026", currency="EUR", is_default=True))
    for code, name, unit, rate, minimum, vat in [
        ("labour", "Technician labour", Unit.STARTED_HOUR, "65.00", "65.00", "21"),
        ("labour-q", "Labour (quarter hours)", Unit.QUARTER_HOUR, "17.50", "35.00", "21"),
        ("callout", "Call-out fee", Unit.FLAT, "39.00", "0", "21"),
        ("boiler-service", "Annual boiler service", Unit.FLAT, "129.00", "0", "21"),
        ("filter", "Air filter F7", Unit.PIECE, "24.90", "0", "21"),
    ]:
        do(
            default,
            PriceActivity(
                code=code,
                name=name,
                unit=unit,
                rate=Decimal(rate),
                minimum_charge=Decimal(minimum),
                vat_rate=Decimal(vat),
            ),
        )

    contract = _id("prices", "novak")  # a customer's own rates, in the customer's currency
    do(
        contract,
        CreatePriceList(name="Novák Stavby contract rates", currency="CZK", customer_id=_id("customer", "novak")),
    )
    for code, name, unit, rate, vat in [
        ("labour", "Práce technika", Unit.STARTED_HOUR, "1550.00", "21"),
        ("callout", "Výjezd", Unit.FLAT, "900.00", "21"),
        ("boiler-service", "Roční servis kotle", Unit.FLAT, "3100.00", "21"),
    ]:
        do(contract, PriceActivity(code=code, name=name, unit=unit, rate=Decimal(rate), vat_rate=Decimal(vat)))

    def address(street: str, city: str, postal: str, country: str) -> Address:
        return Address(street=street, city=city, postal_code=postal, country=country)

    customers = {
        "novak": RegisterCustomer(
            name="Novák Stavby s.r.o.",
            billing_address=address("Údolní 12", "Brno", "602 00", "CZ"),
            site_addresses=[address("Křenová 5", "Brno", "602 00", "CZ")],
            email="ucetni@novak-stavby.example",
            phone="+420 541 000 111",
            vat_id="CZ12345678",
            language="cs",
            currency="CZK",
            payment_terms_days=14,
            price_list_id=contract,
        ),
        "kowalski": RegisterCustomer(
            name="Piekarnia Kowalski",
            billing_address=address("ul. Długa 3", "Kraków", "31-147", "PL"),
            email="biuro@kowalski.example",
            phone="+48 12 000 22 33",
            vat_id="PL5260250995",
            language="pl",
            currency="PLN",
            payment_terms_days=21,
        ),
        "weber": RegisterCustomer(
            name="Weber Hausverwaltung GmbH",
            billing_address=address("Lindenstraße 40", "Leipzig", "04109", "DE"),
            site_addresses=[address("Karl-Liebknecht-Str. 9", "Leipzig", "04107", "DE")],
            email="technik@weber-hv.example",
            vat_id="DE811569869",
            language="de",
            currency="EUR",
            payment_terms_days=30,
        ),
        "ionescu": RegisterCustomer(
            name="Cabinet Dr. Ionescu",
            billing_address=address("Str. Mihai Eminescu 21", "Cluj-Napoca", "400000", "RO"),
            email="office@ionescu.example",
            language="ro",
            currency="RON",
        ),
        "harbour": RegisterCustomer(
            name="Harbour Café",
            billing_address=address("1 Quay Street", "Dublin", "D02 X285", "IE"),
            email="hello@harbourcafe.example",
            phone="+353 1 555 0101",
            language="en",
            currency="EUR",
        ),
    }
    for key, command in customers.items():
        do(_id("customer", key), command)

    technicians = {
        "jana": RegisterTechnician(name="Jana Dvořák", skills=["hvac", "boilers"], phone="+420 777 000 001"),
        "piotr": RegisterTechnician(name="Piotr Zieliński", skills=["electrical", "it"], phone="+48 600 000 002"),
        "lukas": RegisterTechnician(name="Lukas Becker", skills=["plumbing", "boilers"], phone="+49 170 000 003"),
        "aoife": RegisterTechnician(name="Aoife Byrne", skills=["cleaning"], phone="+353 87 000 0004"),
    }
    for key, registered in technicians.items():
        do(_id("tech", key), registered)
    tech = {key: _id("tech", key) for key in technicians}

    def job(key: str, customer: str, job_type: str, description: str, **extra: Any) -> UUID:
        job_id = _id("job", key)
        do(
            job_id,
            RequestJob(customer_id=_id("customer", customer), job_type=job_type, description=description, **extra),
        )
        return job_id

    def as_tech(key: str) -> Actor:
        return Actor(id=f"demo-{key}", role=Role.TECHNICIAN, technician_id=tech[key])

    site = address("Mariacka 7", "Kraków", "31-042", "PL")
    job(
        "new-1",
        "kowalski",
        "oven-repair",
        "Oven 2 does not reach temperature",
        source=Source.PHONE,
        site_address=site,
        priority=Priority.URGENT,
        sla_deadline=now + timedelta(hours=8),
    )
    job(
        "new-2",
        "harbour",
        "deep-clean",
        "Kitchen deep clean before inspection",
        source=Source.EMAIL,
        site_address=address("1 Quay Street", "Dublin", "D02 X285", "IE"),
    )
    pooled = job("pool-1", "weber", "boiler-service", "Annual boiler service, flat 4B", source=Source.WEB)
    do(pooled, ScheduleJob(technician_ids=[tech["lukas"]], start=now + timedelta(days=2)))
    do(pooled, UnassignJob(reason="Lukas on leave; anyone with boilers may take it"))
    scheduled = job("scheduled-1", "novak", "hvac-maintenance", "Quarterly HVAC check, 3rd floor")
    do(scheduled, ScheduleJob(technician_ids=[tech["jana"]], start=now + timedelta(days=1), duration_minutes=120))
    running = job("running-1", "weber", "leak", "Water leak under the kitchen sink")
    do(running, ScheduleJob(technician_ids=[tech["lukas"]], start=now - timedelta(hours=1)))
    do(running, StartWork(), as_tech("lukas"))
    do(
        running,
        UseMaterial(code="siphon-40", description="Siphon 40 mm", quantity=Decimal(1), unit_price=Decimal("12.40")),
        as_tech("lukas"),
    )
    held = job("hold-1", "ionescu", "network", "Replace the practice's router; parts on order")
    do(held, ScheduleJob(technician_ids=[tech["piotr"]], start=now - timedelta(days=1)))
    do(held, PutJobOnHold(reason="Waiting for the router to be delivered"))
    done = job("done-1", "novak", "boiler-service", "Boiler service, Křenová 5")
    do(done, ScheduleJob(technician_ids=[tech["jana"]], start=now - timedelta(days=2)))
    do(done, StartWork(), as_tech("jana"))
    do(done, AddTimeEntry(started_at=now - timedelta(days=2), minutes=130, activity="labour"), as_tech("jana"))
    do(done, AddNote(text="Burner cleaned, seals replaced."), as_tech("jana"))
    do(done, CompleteJob(summary="Serviced; flue gas values in range."), as_tech("jana"))
    do(done, SignOffJob(signed_by="Pavel Novák"), as_tech("jana"))
    done2 = job("done-2", "harbour", "deep-clean", "Weekly clean")
    do(done2, ScheduleJob(technician_ids=[tech["aoife"]], start=now - timedelta(days=1)))
    do(done2, StartWork(), as_tech("aoife"))
    do(done2, CompleteJob(summary="Kitchen and dining area cleaned."), as_tech("aoife"))
    cancelled = job("cancelled-1", "kowalski", "electrical", "Socket sparks in the back room")
    do(cancelled, CancelJob(reason="Customer's own electrician fixed it"))

    tokens = {
        "office (Olga)": app.issue_token("olga", Role.OFFICE),
        "accountant (Anna)": app.issue_token("anna", Role.ACCOUNTANT),
    }
    for key in technicians:
        tokens[f"technician ({key}, id {tech[key]})"] = app.issue_token(key, Role.TECHNICIAN, tech[key])
    say(
        f"Loaded {len(customers)} customers, {len(technicians)} technicians, "
        "two price lists (the default in EUR, one customer's own in CZK) and 9 jobs in every status."
    )
    say("Demo users and their tokens (shown only this once):")
    for who, token in tokens.items():
        say(f"  {who:<60} {token}")
    return tokens


_count = 0


def _counter() -> int:
    global _count
    _count += 1
    return _count
