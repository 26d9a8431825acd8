"""The command API as the office and technicians use it, on a real nats-server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from events.contract import Role
from tests.integration.conftest import ADDRESS, Api


def test_a_job_from_request_to_completion(api: Api) -> None:
    tom = api.technician("tom")
    customer = api.customer()
    job = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "Boiler leaks"})
    assert job["version"] == 1 and job["position"] > 0 and job["events"] == ["JobRequested"]
    scheduled = api.ok(
        f"/jobs/{job['id']}/schedule",
        {"technician_ids": [str(tom)], "start": "2026-11-23T09:00:00Z", "duration_minutes": 90},
    )
    assert scheduled["version"] == 2 and scheduled["position"] > job["position"]
    api.ok(f"/jobs/{job['id']}/start", {}, who="tom")
    api.ok(f"/jobs/{job['id']}/notes", {"text": "Seal worn out"}, who="tom")
    api.ok(
        f"/jobs/{job['id']}/materials",
        {"code": "seal-22", "description": "Seal 22 mm", "quantity": "2", "unit_price": "3.40"},
        who="tom",
    )
    done = api.ok(f"/jobs/{job['id']}/complete", {"summary": "Seal replaced"}, who="tom")
    assert done["events"] == ["WorkStopped", "JobCompleted"]
    api.ok(f"/jobs/{job['id']}/sign-off", {"signed_by": "Pavel Novák"}, who="tom")

    state = api.get(f"/jobs/{job['id']}").json()
    assert state["status"] == "completed" and state["signed_off_by"] == "Pavel Novák"
    assert state["site_address"] == {**ADDRESS, "label": ""}  # defaulted from the customer
    history = api.get(f"/jobs/{job['id']}/events").json()
    assert [e["type"] for e in history] == [
        "JobRequested",
        "JobScheduled",
        "WorkStarted",
        "NoteAdded",
        "MaterialUsed",
        "WorkStopped",
        "JobCompleted",
        "JobSignedOff",
    ]
    metas = [e["event"]["meta"] for e in history]
    assert [m["actor_role"] for m in metas][:3] == ["office", "office", "technician"]
    assert metas[0]["previous_hash"] == "" and all(m["previous_hash"] for m in metas[1:])


def test_a_retried_command_is_applied_once(api: Api) -> None:
    customer = api.customer()
    body = {"customer_id": customer, "job_type": "repair", "description": "Leak"}
    first = api.post("/jobs", body, **{"Idempotency-Key": "req-42"})
    assert first.status_code == 201
    position = api.jobstream.recorder.max_notification_id()
    again = api.post("/jobs", body, **{"Idempotency-Key": "req-42"})
    assert again.status_code == 201 and again.json()["replayed"] is True
    assert {k: v for k, v in again.json().items() if k != "replayed"} == {
        k: v for k, v in first.json().items() if k != "replayed"
    }
    assert api.jobstream.recorder.max_notification_id() == position  # nothing appended


def test_concurrent_retries_of_one_command_append_once(api: Api) -> None:
    customer = api.customer()
    body = {"customer_id": customer, "job_type": "repair", "description": "Leak"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: api.post("/jobs", body, **{"Idempotency-Key": "same"}), range(8)))
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1, responses
    assert [r.json()["replayed"] for r in responses].count(False) == 1


def test_concurrent_writers_get_a_conflict_with_the_current_version(api: Api) -> None:
    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    api.ok(f"/jobs/{job}/notes", {"text": "first"}, **{"If-Match": "2"})
    stale = api.post(f"/jobs/{job}/notes", {"text": "second, decided on version 2"}, **{"If-Match": "2"})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 3
    assert [e["type"] for e in api.get(f"/jobs/{job}/events").json()].count("NoteAdded") == 1


def test_racing_writers_lose_no_update(api: Api) -> None:
    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda n: api.post(f"/jobs/{job}/notes", {"text": f"note {n}"}), range(16)))
    accepted = [r for r in responses if r.status_code == 200]
    assert all(r.status_code in (200, 409) for r in responses)
    notes = [e for e in api.get(f"/jobs/{job}/events").json() if e["type"] == "NoteAdded"]
    assert len(notes) == len(accepted)
    assert sorted(r.json()["version"] for r in accepted) == list(range(3, 3 + len(accepted)))


def test_starting_another_job_stops_the_running_stopwatch(api: Api) -> None:
    tom = api.technician("tom")
    first, second = api.scheduled_job(tom), api.scheduled_job(tom)
    api.ok(f"/jobs/{first}/start", {}, who="tom")
    api.ok(f"/jobs/{second}/start", {}, who="tom")
    first_events = [e["type"] for e in api.get(f"/jobs/{first}/events").json()]
    assert first_events[-2:] == ["WorkStarted", "WorkStopped"]
    assert api.get(f"/jobs/{first}").json()["running"] == {}
    assert list(api.get(f"/jobs/{second}").json()["running"]) == [str(tom)]
    assert api.get(f"/technicians/{tom}").json()["running_job_id"] == second


def test_errors_name_the_field_and_the_reason(api: Api) -> None:
    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    missing = api.post("/jobs", {"job_type": "repair", "description": "x"})
    assert missing.status_code == 422
    assert missing.json()["detail"] == [
        {"field": "customer_id", "reason": "Object missing required field `customer_id`"}
    ]
    bad_time = api.post(f"/jobs/{job}/reschedule", {"technician_ids": [str(tom)], "start": "tomorrow"})
    assert bad_time.status_code == 422 and bad_time.json()["detail"][0]["field"] == "start"
    unknown = api.post(f"/jobs/{job}/notes", {"text": "x", "colour": "red"})
    assert unknown.json()["detail"] == [{"field": "colour", "reason": "Object contains unknown field `colour`"}]
    negative = api.post(f"/jobs/{job}/materials", {"code": "x", "description": "x", "quantity": "-1"})
    assert negative.status_code == 422 and negative.json()["detail"][0]["field"] == "quantity"
    not_json = api.client.post(f"/jobs/{job}/notes", content=b"{oops", headers=api.headers("office"))
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["field"] == "body"
    no_customer = api.post(
        "/jobs", {"customer_id": "6b0f3f0e-2b8f-4f3e-9d4a-6a1c3c1d7e55", "job_type": "repair", "description": "x"}
    )
    assert no_customer.status_code == 422 and no_customer.json()["detail"][0]["field"] == "customer_id"


def test_a_commands_headers_path_and_size_are_checked_before_it_runs(api: Api) -> None:
    """What the command routes check before deciding (CommandDoor serves them ahead of
    FastAPI's routing): each problem named, nothing appended."""
    job = api.scheduled_job(api.technician("tom"))
    before = api.jobstream.recorder.max_notification_id()
    bad = api.post(
        f"/jobs/{job}/notes",
        {"text": "x"},
        **{"If-Match": "two", "Idempotency-Key": "k" * 201, "X-Correlation-Id": "c" * 201},
    )
    assert bad.status_code == 422
    assert [problem["field"] for problem in bad.json()["detail"]] == [
        "header.Idempotency-Key",
        "header.If-Match",
        "header.X-Correlation-Id",
    ]
    not_an_id = api.post("/jobs/not-a-uuid/notes", {"text": "x"})
    assert not_an_id.status_code == 422 and not_an_id.json()["detail"][0]["field"] == "path.id"
    huge = api.post(f"/jobs/{job}/notes", {"text": "x" * 1_100_000})
    assert huge.status_code == 422 and huge.json()["detail"] == [
        {"field": "body", "reason": "larger than 1 MB: a command is a few fields"}
    ]
    unauthenticated = api.client.post(f"/jobs/{job}/notes", json={"text": "x"})
    assert unauthenticated.status_code == 401 and unauthenticated.headers["WWW-Authenticate"] == "Bearer"
    assert api.get(f"/jobs/{job}/notes").status_code == 405  # FastAPI still answers other methods
    assert api.post(f"/jobs/{job}/no-such-action", {}).status_code == 404
    assert api.jobstream.recorder.max_notification_id() == before


def test_an_event_store_that_does_not_answer_is_a_503_to_try_again(api: Api) -> None:
    job = api.scheduled_job(api.technician("tom"))
    assert api.post(f"/jobs/{job}/notes", {"text": "before"}).status_code == 200
    served = api.client.app.state.jobstream  # type: ignore[attr-defined]
    api.client.portal.call(served.recorder.connection.nc.close)  # type: ignore[union-attr]
    down = api.post(f"/jobs/{job}/notes", {"text": "while NATS is away"}, **{"Idempotency-Key": "n-1"})
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    assert "same Idempotency-Key is applied once" in down.json()["detail"]
    assert api.get(f"/jobs/{job}").status_code == 503  # a read checks the stream for newer events


def test_unknown_jobs_are_404_and_illegal_transitions_409(api: Api) -> None:
    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    assert api.get("/jobs/6b0f3f0e-2b8f-4f3e-9d4a-6a1c3c1d7e55").status_code == 404
    assert api.get("/jobs/not-a-uuid").status_code == 422
    illegal = api.post(f"/jobs/{job}/complete", {"summary": "done"})
    assert illegal.status_code == 409
    assert illegal.json() == {
        "detail": "cannot complete: the job is scheduled (start work first)",
        "status": "scheduled",
    }


def test_authentication_and_roles(api: Api) -> None:
    tom, eve = api.technician("tom"), api.technician("eve")
    job = api.scheduled_job(tom)
    assert api.client.get(f"/jobs/{job}").status_code == 401
    assert api.client.get(f"/jobs/{job}", headers={"Authorization": "Bearer js_nope"}).status_code == 401
    refused = api.post(f"/jobs/{job}/start", {}, who="eve")
    assert refused.status_code == 403 and refused.json()["detail"] == "this job is not assigned to you"
    assert api.get(f"/jobs/{job}", who="eve").status_code == 403
    assert api.get(f"/jobs/{job}", who="accountant").status_code == 200
    read_only = api.post(f"/jobs/{job}/notes", {"text": "hi"}, who="accountant")
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    assert api.post("/customers", {"name": "x", "billing_address": ADDRESS}, who="tom").status_code == 403
    assert api.post(f"/jobs/{job}/start", {"technician_id": str(eve)}, who="tom").status_code == 403


def test_the_open_pool(api: Api) -> None:
    tom, eve = api.technician("tom"), api.technician("eve")
    job = api.scheduled_job(tom)
    api.ok(f"/jobs/{job}/unassign", {"reason": "Tom is ill"})
    assert api.get(f"/jobs/{job}", who="eve").json()["in_pool"] is True
    taken = api.ok(f"/jobs/{job}/take", {}, who="eve")
    assert taken["events"] == ["JobTaken"]
    assert api.get(f"/jobs/{job}").json()["technician_ids"] == [str(eve)]
    too_late = api.post(f"/jobs/{job}/take", {}, who="tom")
    assert too_late.status_code == 409 and "not in the open pool" in too_late.json()["detail"]
    # a new request nobody has yet is in the pool as the technicians' app shows it
    fresh = api.ok("/jobs", {"customer_id": api.customer(), "job_type": "repair", "description": "Tap drips"})["id"]
    assert api.ok(f"/jobs/{fresh}/take", {}, who="tom")["events"] == ["JobTaken"]


def test_a_deactivated_technician_cannot_be_scheduled(api: Api) -> None:
    tom = api.technician("tom")
    api.ok(f"/technicians/{tom}/deactivate", {"reason": "left the company"})
    customer = api.customer()
    job = api.ok("/jobs", {"customer_id": customer, "job_type": "repair", "description": "x"})["id"]
    refused = api.post(f"/jobs/{job}/schedule", {"technician_ids": [str(tom)], "start": "2026-11-23T09:00:00Z"})
    assert refused.status_code == 422
    assert refused.json()["detail"] == [{"field": "technician_ids", "reason": "technician tom is deactivated"}]


def test_customer_details_change_and_history_is_kept(api: Api) -> None:
    customer = api.customer()
    changed = api.ok(f"/customers/{customer}/details", {"email": "new@novak.example", "currency": "CZK"})
    assert changed["version"] == 2
    state = api.get(f"/customers/{customer}").json()
    assert (state["email"], state["currency"], state["name"]) == ("new@novak.example", "CZK", "Novák Stavby")
    assert [e.topic for e in api.jobstream.history(UUID(customer))] == ["CustomerRegistered", "CustomerDetailsChanged"]
    assert api.get(f"/jobs/{customer}/events").status_code == 404  # a job's events only


def test_price_lists(api: Api) -> None:
    prices = api.ok("/price-lists", {"name": "Standard", "is_default": True})["id"]
    api.ok(
        f"/price-lists/{prices}/activities",
        {
            "code": "labour",
            "name": "Labour",
            "unit": "started_hour",
            "rate": "65.00",
            "minimum_charge": "65",
            "vat_rate": "21",
        },
    )
    state = api.get(f"/price-lists/{prices}").json()
    assert state["activities"]["labour"]["rate"] == "65.00"
    bad_unit = api.post(f"/price-lists/{prices}/activities", {"code": "x", "name": "x", "unit": "day", "rate": "1"})
    assert bad_unit.status_code == 422 and bad_unit.json()["detail"][0]["field"] == "unit"


def test_a_retry_is_recognised_from_the_log_by_a_fresh_process(api: Api, stream_env: dict[str, str]) -> None:
    from events.contract import AddNote
    from services.application import JobstreamApp
    from services.domain.common import Actor

    tom = api.technician("tom")
    job = api.scheduled_job(tom)
    first = api.ok(f"/jobs/{job}/notes", {"text": "Parts ordered"}, **{"Idempotency-Key": "note-7"})
    restarted = JobstreamApp(stream_env)  # another replica, or the API after a restart
    try:
        again = restarted.execute(
            UUID(job), AddNote(text="Parts ordered"), Actor(id="olga", role=Role.OFFICE), command_id="note-7"
        )
    finally:
        restarted.close()
    assert (again.replayed, again.version, again.position) == (True, first["version"], first["position"])
    assert [e["type"] for e in api.get(f"/jobs/{job}/events").json()].count("NoteAdded") == 1
