"""The public booking page on the command service, against a real nats-server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from events.contract import (
    CustomerRegistered,
    JobRequested,
    JobScheduled,
    JobUnassigned,
    Source,
)
from services.api import Settings, create_app
from tests.integration.conftest import Api, stored

SERVICES = "boiler-service:boilers:90:Annual boiler service;deep-clean:cleaning:180:Kitchen deep clean"


@pytest.fixture
def public(stream_env: dict[str, str]) -> Iterator[TestClient]:
    env = {
        **stream_env,
        "JOBSTREAM_BOOKING_SERVICES": SERVICES,
        "JOBSTREAM_BOOKING_HOURS": "Mon-Sun 08:00-17:00",
        "JOBSTREAM_TIMEZONE": "Europe/Prague",
    }
    with TestClient(create_app(Settings(env=env)), follow_redirects=False) as client:
        yield client


def offered(client: TestClient, service: str = "boiler-service") -> list[str]:
    page = client.get("/book", params={"service": service})
    assert page.status_code == 200, page.text
    return re.findall(r'name="slot" value="([^"]+)"', page.text)


def form(at: str, **change: str) -> dict[str, str]:
    return {
        "service": "boiler-service",
        "key": str(uuid.uuid4()),
        "slot": at,
        "name": "Petra Svobodová",
        "email": "petra@example.cz",
        "phone": "+420 602 123 456",
        "street": "Lidická 5",
        "city": "Brno",
        "postal_code": "602 00",
        "country": "CZ",
        "details": "The boiler clicks but does not light.",
        **change,
    }


def boiler_technicians(api: Api) -> tuple[str, str]:
    jana = api.ok("/technicians", {"name": "Jana", "skills": ["boilers"]})["id"]
    lukas = api.ok("/technicians", {"name": "Lukas", "skills": ["boilers", "plumbing"]})["id"]
    api.ok("/technicians", {"name": "Aoife", "skills": ["cleaning"]})
    return jana, lukas


def test_a_customer_books_a_free_slot_and_a_technician_with_the_skill_gets_it(api: Api, public: TestClient) -> None:
    jana, lukas = boiler_technicians(api)
    slots = offered(public)
    assert slots[-1] == "call" and len(slots) > 10
    first = slots[0]
    booked = public.post("/book", data=form(first))
    assert booked.status_code == 303, booked.text
    thanks = public.get(booked.headers["location"])
    assert "Your visit is booked for" in thanks.text
    requested, scheduled, customer = stored(api.jobstream, JobRequested, JobScheduled, CustomerRegistered)
    assert requested[0].source is Source.WEB and requested[0].job_type == "boiler-service"
    assert "does not light" in requested[0].scope and requested[0].site_address.city == "Brno"
    assert customer[0].email == "petra@example.cz"
    assert scheduled[0].start == datetime.fromisoformat(first) and scheduled[0].duration_minutes == 90
    # the same hour again: the other boiler technician; a third time, it is no longer offered
    public.post("/book", data=form(first, email="karel@example.cz", name="Karel Novák"))
    (scheduled,) = stored(api.jobstream, JobScheduled)
    assert {str(s.technician_ids[0]) for s in scheduled} == {jana, lukas}
    assert first not in offered(public)
    late = public.post("/book", data=form(first, email="eva@example.cz", name="Eva Malá"))
    assert late.status_code == 422 and "no longer free" in late.text
    # "please call": the job waits in the open pool for any technician
    called = public.post("/book", data=form("call", email="eva@example.cz", name="Eva Malá"))
    assert "will call you" in public.get(called.headers["location"]).text
    (pooled,) = stored(api.jobstream, JobUnassigned)
    assert len(pooled) == 1 and api.get(f"/jobs/{pooled[0].id}").json()["in_pool"] is True
    # a returning customer (same email) is not registered twice
    (customers,) = stored(api.jobstream, CustomerRegistered)
    assert len(customers) == 3


def test_a_double_submit_books_once(api: Api, public: TestClient) -> None:
    boiler_technicians(api)
    filled = form(offered(public)[0])
    first = public.post("/book", data=filled)
    again = public.post("/book", data=filled)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    requested, scheduled = stored(api.jobstream, JobRequested, JobScheduled)
    assert len(requested) == len(scheduled) == 1


def test_bad_input_is_named_by_field_and_nothing_is_stored(api: Api, public: TestClient) -> None:
    boiler_technicians(api)
    slot = offered(public)[0]
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"email": "not an address"}, "email", "email address"),
        ({"phone": "call me maybe"}, "phone", "phone number"),
        ({"country": "XX"}, "country", "country"),
        ({"name": ""}, "name", "name is needed"),
        ({"street": "x" * 500}, "street", "too long"),
        ({"slot": "tomorrow-ish"}, "slot", "choose a time"),
        ({"slot": "2020-01-01T09:00:00+00:00"}, "slot", "no longer free"),
        ({"service": "teleportation"}, "service", "services offered"),
        ({"details": "x" * 5000}, "details", "2000"),
        ({"key": "<script>"}, "key", "reload"),
        ({"name": "Robert'); DROP TABLE jobs;--\x00"}, "name", "cannot be read"),
    ]
    for change, field, reason in cases:
        answer = public.post("/book", data=form(slot, **change))
        assert answer.status_code == 422, (change, answer.status_code)
        assert f'data-field="{field}"' in answer.text and reason in answer.text, (change, answer.text[-800:])
        assert "<script>" not in answer.text  # what was typed comes back escaped
    junk = public.post(
        "/book", content=b"\xff\xfe\x00garbage" * 100, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert junk.status_code in (400, 422)
    huge = public.post(
        "/book", content=b"a=" + b"x" * 50_000, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert huge.status_code == 413
    honeypot = public.post("/book", data=form(slot, website="http://spam.example"))
    assert honeypot.status_code == 200 and "Thank you" in honeypot.text
    requested, customers = stored(api.jobstream, JobRequested, CustomerRegistered)
    assert requested == [] and customers == []


def test_bookings_are_rate_limited_per_client(api: Api, public: TestClient) -> None:
    boiler_technicians(api)
    mistakes = [public.post("/book", data=form("call", email="oops")).status_code for _ in range(3)]
    assert mistakes == [422] * 3  # mistakes do not use up the bookings
    answers = [public.post("/book", data=form("call", email=f"p{n}@example.cz")).status_code for n in range(7)]
    assert answers[:5] == [303] * 5 and answers[5:] == [429, 429]
    limited = public.post("/book", data=form("call"))
    assert int(limited.headers["Retry-After"]) > 0 and "try again" in limited.text


def test_without_bookable_services_the_page_says_so(api: Api) -> None:
    assert api.client.get("/book").status_code == 404
    assert "not offered" in api.client.get("/book").text


def test_a_customer_no_door_asked_takes_the_sellers_currency_and_the_address_countrys_language(
    api: Api, stream_env: dict[str, str]
) -> None:
    """A Czech seller: a booked customer, and one the office registers without saying, are
    billed in CZK, in the language of their address's country."""
    env = {
        **stream_env,
        "JOBSTREAM_BOOKING_SERVICES": SERVICES,
        "JOBSTREAM_BOOKING_HOURS": "Mon-Sun 08:00-17:00",
        "JOBSTREAM_COMPANY_COUNTRY": "CZ",
    }
    boiler_technicians(api)
    with TestClient(create_app(Settings(env=env)), follow_redirects=False) as czech:
        assert czech.post("/book", data=form(offered(czech)[0])).status_code == 303
        office = api.headers("office")
        for name, country in (("Weber GmbH", "DE"), ("Harbour Café", "IE")):
            address = {"street": "1 Main Street", "city": "Town", "postal_code": "12345", "country": country}
            assert (
                czech.post("/customers", json={"name": name, "billing_address": address}, headers=office).status_code
                == 201
            )
        asked = {"name": "Told", "billing_address": {**address, "country": "CZ"}, "currency": "EUR", "language": "de"}
        assert czech.post("/customers", json=asked, headers=office).status_code == 201
    (customers,) = stored(api.jobstream, CustomerRegistered)
    assert {(c.name, c.currency, c.language) for c in customers} == {
        ("Petra Svobodová", "CZK", "cs"),
        ("Weber GmbH", "CZK", "de"),
        ("Harbour Café", "CZK", "en"),
        ("Told", "EUR", "de"),
    }  # what the office chose stands


def test_two_command_api_replicas_booking_one_slot_at_once_give_it_to_one_customer(
    api: Api, stream_env: dict[str, str]
) -> None:
    """Each replica has its own calendar and lock; the slot claim on the stream decides."""
    import threading

    jana = api.ok("/technicians", {"name": "Jana", "skills": ["boilers"]})["id"]  # the only one able
    env = {
        **stream_env,
        "JOBSTREAM_BOOKING_SERVICES": SERVICES,
        "JOBSTREAM_BOOKING_HOURS": "Mon-Sun 08:00-17:00",
        "JOBSTREAM_TIMEZONE": "Europe/Prague",
    }
    with (
        TestClient(create_app(Settings(env=env)), follow_redirects=False) as one,
        TestClient(create_app(Settings(env=env)), follow_redirects=False) as two,
    ):
        contested = [at for at in offered(one) if at != "call"][:8:2]  # four slots, none overlapping
        assert set(contested) <= set(offered(two))
        answers: dict[tuple[str, str], Any] = {}
        start = threading.Barrier(2 * len(contested))

        def book(replica: str, client: TestClient, at: str) -> None:
            start.wait()
            answers[(at, replica)] = client.post("/book", data=form(at, email=f"{replica}-{at[11:13]}@example.cz"))

        racers = [
            threading.Thread(target=book, args=(name, client, at))
            for at in contested
            for name, client in (("one", one), ("two", two))
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()

    for at in contested:
        codes = sorted(answers[(at, replica)].status_code for replica in ("one", "two"))
        assert codes[0] == 303 and codes[1] in (409, 422), (at, codes)  # one booked, one refused
        refused = next(answers[(at, r)] for r in ("one", "two") if answers[(at, r)].status_code != 303)
        assert "no longer free" in refused.text
    (scheduled,) = stored(api.jobstream, JobScheduled)
    assert sorted(s.start for s in scheduled) == sorted(datetime.fromisoformat(at) for at in contested)
    assert {str(s.technician_ids[0]) for s in scheduled} == {jana}  # once each: nothing double-booked


def test_the_per_email_cap_counts_the_bookings_every_replica_made(api: Api, stream_env: dict[str, str]) -> None:
    """Three bookings a day per email address (the default), wherever they were made: each
    replica reads them from the stream with its calendar, not from its own memory."""
    boiler_technicians(api)
    env = {**stream_env, "JOBSTREAM_BOOKING_SERVICES": SERVICES, "JOBSTREAM_BOOKING_HOURS": "Mon-Sun 08:00-17:00"}
    with (
        TestClient(create_app(Settings(env=env)), follow_redirects=False) as one,
        TestClient(create_app(Settings(env=env)), follow_redirects=False) as two,
    ):
        made = [
            one.post("/book", data=form("call")),
            two.post("/book", data=form("call")),
            one.post("/book", data=form("call", email="Petra@Example.cz")),
        ]  # the same address
        assert [answer.status_code for answer in made] == [303] * 3, [a.text for a in made]
        for replica in (two, one):
            fourth = replica.post("/book", data=form("call"))
            assert fourth.status_code == 422, fourth.text
            assert "booked several visits today already" in fourth.text
        other = two.post("/book", data=form("call", email="jiri@example.cz"))
        assert other.status_code == 303, other.text
    (requested,) = stored(api.jobstream, JobRequested)
    assert len(requested) == 4
