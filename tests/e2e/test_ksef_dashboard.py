"""KSeF on the office dashboard in real headless Chromium, on a phone: the demo's invoices,
one accepted by KSeF (its number, acceptance time and UPO) and one refused (KSeF's reason and
what the office does), and the invoice list filtered by KSeF state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Browser, expect

from events.contract import InvoiceIssued, KsefRefused, KsefSendStarted, KsefSent
from services.application import JobstreamApp
from tests.e2e.conftest import Running, wait_for_events
from tests.e2e.test_dashboard import PHONE, browser, shot, sign_in  # noqa: F401 - browser is a fixture
from tests.integration.conftest import stored
from tests.integration.ksef_steps import accepted, append, ksef_number, prepared


def through_ksef(nats_url: str) -> tuple[InvoiceIssued, InvoiceIssued]:
    """The demo's two invoices: the first accepted by KSeF with its UPO, the second refused."""
    env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": nats_url}
    app = JobstreamApp(env)
    try:
        (issued,) = stored(app, InvoiceIssued)
        ok, refused = sorted(issued, key=lambda i: i.number)
        accepted(app, env, ok)
        append(app, env, refused.id, prepared(refused))
        append(app, env, refused.id, KsefSendStarted(id=refused.id, attempt=1))
        append(app, env, refused.id, KsefSent(id=refused.id, attempt=1, session_reference="S", invoice_reference="R"))
        append(
            app,
            env,
            refused.id,
            KsefRefused(id=refused.id, code=450, reason="Błąd weryfikacji semantyki dokumentu faktury"),
        )
        return ok, refused
    finally:
        app.close()


def test_the_office_sees_and_filters_invoices_by_ksef_state_on_a_phone(
    jobstream_up: tuple[Running, int],
    browser: Browser,  # noqa: F811 - the fixture imported above
) -> None:
    running, _port = jobstream_up
    nats_url = running.as_admin(running.wait_for(r"Started nats-server with JetStream at (nats://\S+)").group(1))
    office = running.wait_for(r"office \(Olga\)\s+(js_\S+)").group(1)
    dashboard = running.wait_for(r"dashboard\s+(http://\S+)").group(1)
    running.wait_for("Press Ctrl-C to stop")
    wait_for_events(nats_url, "events.invoice.*", "InvoiceDocumentStored", 4)
    with ThreadPoolExecutor(1) as pool:  # asyncio of its own: Playwright's sync API runs a loop on this thread
        ok, refused = pool.submit(through_ksef, nats_url).result()
    position, _ = wait_for_events(nats_url, "events.ksef.*", "KsefRefused", 1)

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, dashboard, office)
    page.goto(f"{dashboard}/invoices?position={position}")
    expect(page.locator(f"tr[data-number='{ok.number}'] td[data-label=KSeF]")).to_contain_text("accepted")
    expect(page.locator(f"tr[data-number='{refused.number}'] td[data-label=KSeF]")).to_contain_text("refused")
    expect(page.locator("#ksef-warnings")).to_contain_text(refused.number)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "invoices-ksef-phone")

    page.select_option("#ksef-filter select[name=ksef]", "refused")
    page.click("#ksef-filter button")
    expect(page.locator("#invoices tbody tr")).to_have_count(1)
    expect(page.locator("#invoices tbody tr")).to_have_attribute("data-number", refused.number)
    page.select_option("#ksef-filter select[name=ksef]", "accepted")
    page.click("#ksef-filter button")
    expect(page.locator("#invoices tbody tr")).to_have_count(1)
    expect(page.locator("#invoices tbody tr")).to_have_attribute("data-number", ok.number)

    page.click(f"tr[data-number='{ok.number}'] td[data-label=Number] a >> nth=0")
    expect(page.locator("#ksef-number")).to_have_text(ksef_number(ok))
    expect(page.locator("#ksef-accepted")).to_be_visible()
    upo = page.locator("#ksef-upo a")
    expect(upo).to_have_attribute("href", f"/invoices/{ok.id}/upo.xml")
    receipt = page.request.get(f"{dashboard}/invoices/{ok.id}/upo.xml")
    assert receipt.ok and ksef_number(ok).encode() in receipt.body()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "invoice-ksef-accepted-phone")

    page.goto(f"{dashboard}/invoices/{refused.id}")
    expect(page.locator("#ksef-refused")).to_contain_text("Błąd weryfikacji semantyki dokumentu faktury")
    expect(page.locator("#ksef-refused")).to_contain_text("credit note")
    expect(page.locator("#ksef-upo")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "invoice-ksef-refused-phone")
    context.close()
