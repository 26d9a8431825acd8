"""A technician's day on a phone, in real headless Chromium against `jobstream up --demo`.

Jana signs in to the thin client, a new job arrives as a live alert, she works it (part of
it with no connection, while the office puts the job on hold), settles what the server
refused, completes it with the customer's drawn signature; the office sees it on the
dashboard, and the customer's invoice arrives in the mail outbox, once.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Running, wait_for_events
from tests.e2e.test_dashboard import PHONE, browser, shot, sign_in

__all__ = ["browser"]


def a_photo(path: Path) -> Path:
    from PIL import Image

    image = Image.new("RGB", (640, 480), (30, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def mails(outbox: Path) -> list[Any]:
    found = []
    for folder in ("new", "cur"):
        for path in sorted((outbox / folder).glob("*")) if (outbox / folder).exists() else []:
            found.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return found


def settled(page: Page) -> None:
    """Wait until the page has drawn its latest read (it marks the view busy until then), as
    a person waits to see the screen update before typing into it."""
    expect(page.locator("#view")).not_to_have_attribute("aria-busy", "true")


def test_a_technicians_day_on_a_phone(
    jobstream_up: tuple[Running, int], browser: Browser, clean_env: dict[str, str], tmp_path: Path
) -> None:
    # the whole product runs on two shared cores beside the rest of the suite: be patient
    expect.set_options(timeout=20_000)
    running, _port = jobstream_up
    office_token = running.wait_for(r"office \(Olga\)\s+(js_\S+)").group(1)
    jana = running.wait_for(r"technician \(jana, id (\S+)\)\s+(js_\S+)")
    jana_id, jana_token = jana.group(1), jana.group(2)
    dashboard = running.wait_for(r"dashboard\s+(http://\S+)").group(1)
    app_url = running.wait_for(r"technicians\s+(http://\S+)/tech").group(1)
    nats_url = running.as_admin(running.wait_for(r"NATS\s+(nats://\S+)").group(1))
    running.wait_for("Press Ctrl-C to stop")
    office = httpx.Client(base_url=app_url, headers={"Authorization": f"Bearer {office_token}"}, timeout=30)
    # the read models have read the demo (waited on the stream position, as the API offers)
    loaded = office.get("/health").json()["position"]
    assert (
        httpx.get(
            f"{dashboard}/api/board",
            params={"position": loaded, "wait": 30},
            timeout=40,
            headers={"Authorization": f"Bearer {office_token}"},
        ).status_code
        == 200
    )

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{app_url}/tech/")
    page.fill("#token", "js_not-a-token")
    page.click("#signin button")
    expect(page.locator(".conflict")).to_contain_text("unknown or revoked")
    page.fill("#token", jana_token)
    page.click("#signin button")
    expect(page.locator("#upcoming")).to_contain_text("Quarterly HVAC check")  # the demo's job for her
    expect(page.locator("#pool")).to_contain_text("Annual boiler service")
    shot(page, "tech-jobs")

    # the office takes a request and gives it to Jana: it arrives live on her phone
    customers = httpx.get(f"{dashboard}/api/customers", headers={"Authorization": f"Bearer {office_token}"}).json()
    novak = next(c for c in customers if c["name"].startswith("Novák"))
    job = office.post(
        "/jobs",
        json={
            "customer_id": novak["id"],
            "job_type": "boiler-service",
            "description": "Boiler pressure drops overnight",
        },
    ).json()["id"]
    start = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    assert office.post(f"/jobs/{job}/schedule", json={"technician_ids": [jana_id], "start": start}).status_code == 200
    expect(page.locator(".toast")).to_contain_text("New job: Boiler pressure drops overnight", timeout=20_000)
    page.click(f"#today [data-job='{job}']")
    expect(page.locator("#map")).to_contain_text("Brno")
    expect(page.locator("a[href^='tel:']")).to_contain_text("+420")

    # work: start the stopwatch, record a material while online
    page.click("#start")
    expect(page.locator("#status")).to_have_text("All changes sent.")
    page.fill("#material-code", "boiler-service")
    page.fill("#material-quantity", "1")
    page.click("#material button")
    expect(page.locator("#status")).to_have_text("All changes sent.")
    settled(page)  # the page has shown what was sent; what is typed next is typed into what stays

    # no signal in the basement: a note, a photo, a pause, all kept on the phone
    phone.set_offline(True)
    expect(page.locator("#status")).to_have_class(re.compile("offline"))  # the phone knows it has no signal
    page.fill("#note-text", "Expansion vessel lost its charge; recharged to 1.2 bar.")
    page.click("#note button")
    # the page redraws with the note waiting; a file picked into the form it replaces would be lost
    settled(page)
    page.set_input_files("#photo-file", str(a_photo(tmp_path / "vessel.png")))
    page.fill("#photo-caption", "Expansion vessel, after")
    page.click("#photo button")
    page.click("#pause")
    expect(page.locator("#status")).to_contain_text("Offline: 3 changes waiting")
    shot(page, "tech-offline")

    # meanwhile the office puts the job on hold (which stops her stopwatch on the server)
    held = office.post(f"/jobs/{job}/hold", json={"reason": "Customer asks to wait for the landlord"})
    assert held.status_code == 200, held.text

    phone.set_offline(False)
    expect(page.locator("#status")).to_have_text("All changes sent.", timeout=20_000)
    # the note and the photo went in; the pause could not: said plainly, nothing lost
    conflict = page.locator(".conflict")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("Pause work")
    expect(conflict).to_contain_text("no stopwatch is running")
    conflict.locator("[data-discard]").click()
    expect(page.locator(".conflict")).to_have_count(0)

    # the office resumes; she finishes and the customer signs on the screen
    assert office.post(f"/jobs/{job}/resume", json={}).status_code == 200
    page.reload()
    page.click("#start")
    expect(page.locator("#status")).to_have_text("All changes sent.")
    settled(page)
    page.fill("#summary", "Vessel recharged, pressure stable for 30 minutes.")
    page.click("#complete button")
    expect(page.locator("#status")).to_have_text("All changes sent.")
    settled(page)
    page.fill("#signed-by", "Pavel Novák")
    box = page.locator("#signature").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + 100)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 20 + step * 25, box["y"] + 100 - (step % 3) * 25)
    page.mouse.up()
    page.click("#signoff button[type=submit], #signoff button:not([type])")
    expect(page.locator("#status")).to_have_text("All changes sent.")
    # the page reads the job again at the position of what it sent (the read models may lag a busy machine)
    expect(page.locator("#job-status")).to_have_text(re.compile("completed|invoiced"), timeout=30_000)
    expect(page.locator(".conflict")).to_have_count(0)
    # done and signed: the page offers only what may still be added, and fits the phone
    expect(page.locator("#closed")).to_contain_text("signed off by Pavel Novák")
    for gone in ("#start", "#complete", "#signoff"):
        expect(page.locator(gone)).to_have_count(0)
    expect(page.locator("#note")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "tech-job")

    _, (signed,) = wait_for_events(nats_url, f"events.job.{job}", "JobSignedOff", 1)
    assert signed["signed_by"] == "Pavel Novák" and signed["signature"].startswith("data:image/png;base64,")
    _, notes = wait_for_events(nats_url, f"events.job.{job}", "NoteAdded", 1)
    assert notes[0]["text"].startswith("Expansion vessel lost its charge")
    position, (photo,) = wait_for_events(nats_url, f"events.job.{job}", "PhotoAttached", 1)
    assert photo["caption"] == "Expansion vessel, after" and photo["media_type"] == "image/jpeg"
    _, (stopped, *_) = wait_for_events(nats_url, f"events.job.{job}", "WorkStopped", 1)
    assert stopped["meta"]["actor_id"] == "olga"  # the hold stopped her first stopwatch

    # the office sees it: the photo and the signature on the job's page
    desk = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(desk, dashboard, office_token)
    desk.goto(f"{dashboard}/jobs/{job}?position={position}")
    expect(desk.locator("#signed-off")).to_contain_text("Pavel Novák")
    expect(desk.locator("#photos img")).to_have_count(1)
    assert desk.locator("#photos img").evaluate("img => img.complete && img.naturalWidth") > 0

    # the customer's invoice arrives in the mail outbox, with its PDF, once
    _, (invoiced,) = wait_for_events(nats_url, f"events.job.{job}", "JobInvoiced", 1, timeout=60)
    wait_for_events(
        nats_url,
        "events.message.*",
        "MessageDelivered",
        1,
        timeout=60,
        where=lambda e: e["id"] == _invoice_message(nats_url, invoiced["invoice_id"]),
    )
    outbox = Path(clean_env["JOBSTREAM_DATA"]) / "outbox"
    sent = [m for m in mails(outbox) if invoiced["number"] in m["Subject"]]
    assert len(sent) == 1 and sent[0]["To"] == "ucetni@novak-stavby.example"
    assert any(p.get_filename().endswith(".pdf") for p in sent[0].iter_attachments())


def _invoice_message(nats_url: str, invoice_id: str) -> str:
    _, (queued,) = wait_for_events(
        nats_url,
        "events.message.*",
        "MessageQueued",
        1,
        timeout=60,
        where=lambda e: e.get("about_id") == invoice_id and e["channel"] == "email",
    )
    return str(queued["id"])
