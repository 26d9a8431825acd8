"""The office finds an event a service could not process on the dashboard's Failures page,
fixes its cause and has it tried again, in real headless Chromium on a phone's screen,
against `jobstream up` as it ships (each service signed in as its own NATS user)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import httpx
from playwright.sync_api import Browser, expect

from events.contract import ActivityPriced, Unit
from services.application import JobstreamApp
from tests.e2e.conftest import Running, wait_for_events
from tests.e2e.test_dashboard import PHONE, browser, shot, sign_in  # noqa: F401 - browser is a fixture
from tests.integration.test_poison import straight

ADDRESS = {"street": "1 Quay Street", "city": "Dublin", "postal_code": "D02 X285", "country": "IE"}


def test_a_parked_event_is_shown_and_tried_again_once_its_cause_is_fixed(
    jobstream_up: tuple[Running, int],
    browser: Browser,  # noqa: F811 - the fixture imported above
) -> None:
    running, _port = jobstream_up
    office_token = running.wait_for(r"office \(Olga\)\s+(js_\S+)").group(1)
    jana = running.wait_for(r"technician \(jana, id (\S+)\)\s+(js_\S+)")
    jana_id, jana_token = jana.group(1), jana.group(2)
    dashboard = running.wait_for(r"dashboard\s+(http://\S+)").group(1)
    command_api = running.wait_for(r"command API\s+(http://\S+)").group(1)
    nats_url = running.as_admin(running.wait_for(r"NATS\s+(nats://\S+)").group(1))
    running.wait_for("Press Ctrl-C to stop")
    office = httpx.Client(base_url=command_api, headers={"Authorization": f"Bearer {office_token}"}, timeout=30)
    tech = httpx.Client(base_url=command_api, headers={"Authorization": f"Bearer {jana_token}"}, timeout=30)

    def ok(client: httpx.Client, path: str, body: dict[str, object]) -> dict[str, object]:
        answer = client.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()  # type: ignore[no-any-return]

    prices = str(ok(office, "/price-lists", {"name": "Harbour rates", "currency": "EUR"})["id"])
    repair = {"code": "repair", "name": "Repair work", "unit": "started_hour", "vat_rate": "23"}
    ok(office, f"/price-lists/{prices}/activities", {**repair, "rate": "50.00"})
    customer = ok(
        office,
        "/customers",
        {
            "name": "Harbour Café",
            "email": "hello@harbourcafe.example",
            "billing_address": ADDRESS,
            "price_list_id": prices,
        },
    )["id"]
    # an old import stored a rate the door refuses today
    app = JobstreamApp({"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": nats_url})
    try:
        straight(
            app,
            UUID(prices),
            ActivityPriced(
                id=UUID(prices),
                code="repair",
                name="Repair work",
                unit=Unit.STARTED_HOUR,
                rate=Decimal("Infinity"),
                vat_rate=Decimal(23),
            ),
        )
    finally:
        app.close()
    job = ok(office, "/jobs", {"customer_id": customer, "job_type": "repair", "description": "Coffee machine leaks"})[
        "id"
    ]
    ok(office, f"/jobs/{job}/schedule", {"technician_ids": [jana_id], "start": "2026-11-24T09:00:00Z"})
    ok(tech, f"/jobs/{job}/start", {})
    ok(tech, f"/jobs/{job}/time-entries", {"started_at": "2026-11-24T09:00:00Z", "minutes": 60})
    ok(tech, f"/jobs/{job}/complete", {"summary": "Gasket replaced"})
    _, (failed,) = wait_for_events(
        nats_url, "events.failure.*", "ProcessingFailed", 1, where=lambda e: e["consumer"] == "invoicer"
    )
    assert failed["aggregate_id"] == job and failed["error_type"] == "InvalidOperation"

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, dashboard, office_token)
    page.click("nav a[href='/failures']")
    row = page.locator(f"#open-failures tr[data-failure='{failed['id']}']")
    expect(row).to_contain_text("Invoicing")
    expect(row).to_contain_text("job completed")
    expect(row).to_contain_text("not a finite number")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "failures-phone")

    ok(office, f"/price-lists/{prices}/activities", {**repair, "rate": "80.00"})  # the cause, fixed
    row.get_by_role("button", name="Try again").click()
    expect(page).to_have_url(f"{dashboard}/failures?position=" + page.url.rsplit("=", 1)[-1])
    wait_for_events(nats_url, "events.failure.*", "ProcessingResolved", 1, where=lambda e: e["id"] == failed["id"])
    _, (invoice,) = wait_for_events(
        nats_url, "events.invoice.*", "InvoiceIssued", 1, where=lambda e: e["job_id"] == job
    )
    assert [(line["quantity"], line["unit_price"]) for line in invoice["lines"] if line["code"] == "repair"] == [
        ("1", "80.00")
    ]  # the hour at the rate as the office fixed it
    page.reload()
    expect(page.locator("#open-failures")).to_contain_text("Nothing is set aside")
    expect(page.locator(f"#resolved-failures tr[data-failure='{failed['id']}']")).to_contain_text("Invoicing")
    context.close()
