"""A customer books a visit on a phone, in real headless Chromium against `jobstream up --demo`;
the office sees the job on the board, scheduled for a technician with the skill, and then
plans a recurring service on the dashboard and sees its visits scheduled."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Running
from tests.e2e.test_dashboard import PHONE, browser, shot, sign_in

__all__ = ["browser"]


def test_a_customer_books_a_visit_on_a_phone_and_the_office_plans_a_recurring_service(
    jobstream_up: tuple[Running, int], browser: Browser
) -> None:
    expect.set_options(timeout=20_000)
    running, _port = jobstream_up
    office_token = running.wait_for(r"office \(Olga\)\s+(js_\S+)").group(1)
    dashboard = running.wait_for(r"dashboard\s+(http://\S+)").group(1)
    booking = running.wait_for(r"booking\s+(http://\S+/book)").group(1)
    running.wait_for("Press Ctrl-C to stop")

    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto(booking)
    page.select_option("#service-choice", "boiler-service")
    page.click("#choose button")
    first = page.locator("input[name=slot]").first
    chosen = first.get_attribute("value")
    assert chosen and chosen != "call"
    first.check()
    # a mistake first: the page names it and keeps what was typed
    page.fill("#name", "Petra Svobodová")
    page.fill("#email", "petra@")
    page.fill("#street", "Lidická 5")
    page.fill("#postal_code", "602 00")
    page.fill("#city", "Brno")
    page.select_option("#country", "CZ")
    page.fill("#details", "Boiler clicks but does not light")
    page.click("#booking button[type=submit]")
    expect(page.locator("#errors")).to_contain_text("email address")
    expect(page.locator("#street")).to_have_value("Lidická 5")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits the phone
    shot(page, "booking-form-mistake")
    page.fill("#email", "petra@example.cz")
    page.locator(f"input[name=slot][value='{chosen}']").check()
    page.click("#booking button[type=submit]")
    expect(page.locator("#message")).to_contain_text("Your visit is booked for")
    shot(page, "booking-done")

    # the office's board has it, once the read models have read as far as the stream is now
    app_url = booking.removesuffix("/book")
    position = httpx.get(f"{app_url}/health", timeout=30).json()["position"]
    office = httpx.Client(base_url=dashboard, headers={"Authorization": f"Bearer {office_token}"}, timeout=40)
    found = office.get("/api/board", params={"q": "Svobodov", "position": position, "wait": 30}).json()
    [item] = found["items"]
    assert item["status"] == "scheduled" and item["job_type"] == "boiler-service"
    desk = browser.new_page()
    sign_in(desk, dashboard, office_token)
    desk.goto(f"{dashboard}/jobs/{item['id']}")
    expect(desk.locator("main")).to_contain_text("source web")
    expect(desk.locator("main")).to_contain_text("Boiler clicks but does not light")

    # the office plans a monthly inspection for the same customer: its visits are scheduled
    desk.goto(f"{dashboard}/recurring")
    form = desk.locator("#new-recurring")
    form.locator("select[name=customer_id]").select_option(label="Petra Svobodová")
    form.locator("input[name=job_type]").fill("inspection")
    form.locator("input[name=description]").fill("Monthly boiler inspection")
    form.locator("select[name=technician_id]").select_option(label="Jana Dvořák")
    form.locator("input[name=start]").fill("2027-01-04T09:00")
    form.locator("select[name=every]").select_option("monthly")
    form.locator("input[name=horizon_days]").fill("120")
    form.locator("button").click()
    row = desk.locator("#recurring tr", has_text="Monthly boiler inspection")
    expect(row).to_contain_text("Jana Dvořák")
    expect(row.locator(".next a").first).to_contain_text("04 Jan 09:00")
    shot(desk, "recurring")
    # a rule the generator cannot read is refused, named, and the page stays usable
    form.locator("input[name=job_type]").fill("inspection")
    form.locator("input[name=description]").fill("Broken rule")
    form.locator("input[name=start]").fill("2027-01-04T09:00")
    form.locator("input[name=rule]").fill("FREQ=SOMETIMES")
    form.locator("button").click()
    expect(desk.locator(".error")).to_contain_text("rule")
