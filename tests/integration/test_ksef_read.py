"""The read side of KSeF on real invoices: each document's KSeF state in the read models
(SQLite and PostgreSQL), rebuilt equal from the stream; the invoice's JSON and page, the
list's filter, the UPO's download, and the office's warning of an offline deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from events.contract import (
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
)
from tests.conftest import new_read_model
from tests.integration.conftest import Api, read_side
from tests.integration.ksef_steps import accepted, append, ksef_number, polish_invoices, prepared
from tests.integration.test_projections import catch_up, dump


def test_each_invoices_ksef_state_is_read_filtered_shown_and_rebuilt(
    api: Api, stream_env: dict[str, str], read_model_url: str, tmp_path: Path
) -> None:
    ok, refused, offline, retried, outside = polish_invoices(api, stream_env, 5)
    accepted_at = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
    accepted(api.jobstream, stream_env, ok, at=accepted_at)
    app = api.jobstream
    append(app, stream_env, refused.id, prepared(refused))
    append(app, stream_env, refused.id, KsefSendStarted(id=refused.id, attempt=1))
    append(
        app, stream_env, refused.id, KsefSent(id=refused.id, attempt=1, session_reference="S", invoice_reference="R")
    )
    append(
        app,
        stream_env,
        refused.id,
        KsefRefused(id=refused.id, code=450, reason="Błąd weryfikacji semantyki dokumentu", details=["P_2: zły NIP"]),
    )
    deadline = datetime.now(UTC) + timedelta(hours=3)
    append(app, stream_env, offline.id, prepared(offline))
    append(
        app,
        stream_env,
        offline.id,
        KsefIssuedOffline(id=offline.id, mode="unavailable", reason="503", deadline=deadline),
    )
    append(app, stream_env, offline.id, KsefDeadlineNear(id=offline.id, deadline=deadline))
    append(app, stream_env, retried.id, prepared(retried))
    append(app, stream_env, retried.id, KsefSendStarted(id=retried.id, attempt=1))
    retry_at = datetime.now(UTC) + timedelta(minutes=2)
    append(
        app, stream_env, retried.id, KsefAttemptFailed(id=retried.id, attempt=1, reason="HTTP 503", retry_at=retry_at)
    )

    with read_side(api, stream_env, read_model_url) as reader:
        got = reader.get(f"/api/invoices/{ok.id}").json()
        assert got["number"] == ok.number and got["issued"]["lines"]  # the invoice as issued, and beside it:
        assert got["ksef"] == {
            "state": "accepted",
            "number": ksef_number(ok),
            "accepted_at": "2026-11-23T10:15:30.000000Z",
            "reason": "",
            "deadline": "",
            "upo": f"ksef/{ok.id}-upo.xml",
            "offline": "",
            "attempt": 1,
            "retry_at": "",
            "deadline_near": False,
        }
        said = reader.get(f"/api/invoices/{refused.id}").json()["ksef"]
        assert said["state"] == "refused" and said["reason"] == (
            "KSeF 450: Błąd weryfikacji semantyki dokumentu; P_2: zły NIP"
        )
        late = reader.get(f"/api/invoices/{offline.id}").json()["ksef"]
        assert (late["state"], late["offline"], late["deadline_near"]) == ("deadline_near", "unavailable", True)
        assert reader.get(f"/api/invoices/{outside.id}").json()["ksef"]["state"] == "none"

        def listed(state: str) -> list[str]:
            answer = reader.get(f"/api/invoices?ksef={state}")
            assert answer.status_code == 200, answer.text
            return [i["number"] for i in answer.json()]

        assert listed("accepted") == [ok.number]
        assert listed("refused") == [refused.number]
        assert listed("deadline_near") == [offline.number]
        assert listed("retrying") == [retried.number]
        assert listed("none") == [outside.number]
        assert listed("held") == []
        assert len(listed("")) == 5
        bad = reader.get("/api/invoices?ksef=approved")
        assert bad.status_code == 422 and bad.json()["detail"].startswith("ksef: 'approved' is not a KSeF state")
        assert reader.get("/invoices?ksef=approved").status_code == 422

        upo = reader.get(f"/invoices/{ok.id}/upo.xml")
        assert upo.status_code == 200 and ksef_number(ok).encode() in upo.content
        assert "attachment" in upo.headers["content-disposition"]
        missing = reader.get(f"/invoices/{refused.id}/upo.xml")
        assert missing.status_code == 404 and "no UPO yet" in missing.json()["detail"]
        assert reader.get(f"/invoices/{outside.id}/upo.xml").status_code == 404

        page = reader.get(f"/invoices/{ok.id}").text
        assert ksef_number(ok) in page and f'href="/invoices/{ok.id}/upo.xml"' in page and "23 Nov 2026" in page
        page = reader.get(f"/invoices/{refused.id}").text
        assert 'id="ksef-refused"' in page and "Błąd weryfikacji semantyki dokumentu" in page and "P_2: zły NIP" in page
        assert "credit note" in page  # what the office does about it
        page = reader.get(f"/invoices/{offline.id}").text
        assert "OFFLINE" in page and 'id="ksef-deadline"' in page
        listing = reader.get("/invoices").text
        assert 'id="ksef-warnings"' in listing and offline.number in listing.split('id="ksef-filter"')[0]
        assert refused.number in listing.split('id="ksef-filter"')[0]
        filtered = reader.get("/invoices?ksef=accepted").text
        assert (
            ok.number in filtered.split('id="invoices"')[1] and refused.number not in filtered.split('id="invoices"')[1]
        )
        failures = reader.get("/failures").text
        assert 'id="ksef-warnings"' in failures and offline.number in failures
        as_tech = reader.get(f"/invoices/{ok.id}", headers=api.headers("tom"))
        assert as_tech.status_code == 403

    # a rebuild from the stream gives the same KSeF rows as the live read models
    kind = "sqlite" if read_model_url.startswith("sqlite") else "postgres"
    with new_read_model(kind, tmp_path) as again:
        catch_up(stream_env, again)
        assert dump(again)["ksef_documents"] == dump(read_model_url)["ksef_documents"]
        assert len(dump(again)["ksef_documents"]) == 4


def test_a_held_document_is_read_and_an_offline_one_stays_offline_through_its_retries(
    api: Api, stream_env: dict[str, str], read_model_url: str
) -> None:
    held, offline = polish_invoices(api, stream_env, 2)
    app = api.jobstream
    # a held document's first KSeF event is KsefHeld: its FA(3) was never prepared
    append(app, stream_env, held.id, KsefHeld(id=held.id, field="Podmiot2/NIP", reason="not a valid NIP"))
    deadline = datetime.now(UTC) + timedelta(hours=20)
    append(app, stream_env, offline.id, prepared(offline))
    append(
        app,
        stream_env,
        offline.id,
        KsefIssuedOffline(id=offline.id, mode="unavailable", reason="503", deadline=deadline),
    )
    append(app, stream_env, offline.id, KsefSendStarted(id=offline.id, attempt=1))
    retry_at = datetime.now(UTC) + timedelta(minutes=2)
    append(
        app, stream_env, offline.id, KsefAttemptFailed(id=offline.id, attempt=1, reason="HTTP 503", retry_at=retry_at)
    )

    with read_side(api, stream_env, read_model_url) as reader:
        said = reader.get(f"/api/invoices/{held.id}").json()["ksef"]
        assert (said["state"], said["reason"]) == ("held", "Podmiot2/NIP: not a valid NIP")
        page = reader.get(f"/invoices/{held.id}").text
        assert 'id="ksef-held"' in page and "not a valid NIP" in page and "credit note" in page
        assert "the seller is not Polish" not in page
        late = reader.get(f"/api/invoices/{offline.id}").json()["ksef"]
        assert (late["state"], late["offline"], late["attempt"]) == ("offline", "unavailable", 1)
        assert late["deadline"] and late["retry_at"]

        def listed(state: str) -> list[str]:
            return [i["number"] for i in reader.get(f"/api/invoices?ksef={state}").json()]

        assert listed("held") == [held.number]
        assert listed("offline") == [offline.number]
        assert listed("retrying") == []
        listing = reader.get("/invoices").text
        assert 'id="ksef-warnings"' in listing and held.number in listing.split('id="ksef-filter"')[0]
