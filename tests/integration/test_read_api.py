"""The read API as the office, technicians and accountants use it (real NATS, real databases)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from events.contract import Role
from read_api.app import Settings, create_app
from tests.conftest import Projectors
from tests.integration.conftest import Api
from tests.integration.test_projections import work_a_day


@pytest.fixture
def reader(api: Api, projectors: Projectors, read_model_url: str, stream_env: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(read_model_url=read_model_url, stream_env=stream_env, wait_seconds=10)
    projectors.wait(api.jobstream.recorder.max_notification_id() or 0)  # the users' tokens are read
    with TestClient(create_app(settings)) as client:
        yield client


def get(client: TestClient, api: Api, path: str, who: str = "office", **params: Any) -> Any:
    return client.get(path, params=params, headers=api.headers(who))


def test_a_reader_passes_the_position_a_command_returned_and_sees_its_effect(api: Api, reader: TestClient) -> None:
    positions = work_a_day(api)
    board = get(reader, api, "/api/board", position=positions[-1])
    assert board.status_code == 200, board.text
    [item] = board.json()["items"]
    assert item["status"] == "completed" and item["position"] == positions[-1]
    job = get(reader, api, f"/api/jobs/{item['id']}", position=positions[-1]).json()
    assert [h["event_type"] for h in job["history"]][-1] == "JobCompleted"
    # a position beyond the stream's head: no wait would end (a 504 after it), so a 422 at once
    later = get(reader, api, "/api/board", position=positions[-1] + 1000, wait=30)
    assert later.status_code == 422 and "beyond the stream's head" in later.json()["detail"], later.text


def test_filters_search_sort_and_paging(api: Api, reader: TestClient) -> None:
    tom = api.technician("tom")
    customer = api.customer()
    ids = [
        api.ok("/jobs", {"customer_id": customer, "job_type": kind, "description": f"{kind} job {n}"})["id"]
        for n, kind in enumerate(["repair", "install", "repair", "repair", "service"])
    ]
    last = api.ok(f"/jobs/{ids[0]}/schedule", {"technician_ids": [str(tom)], "start": "2026-11-24T09:00:00Z"})
    board = lambda **p: get(reader, api, "/api/board", position=last["position"], **p).json()  # noqa: E731
    assert board(job_type="repair")["total"] == 3
    assert [i["id"] for i in board(status="scheduled")["items"]] == [ids[0]]
    assert [i["id"] for i in board(technician=str(tom))["items"]] == [ids[0]]
    assert board(q="INSTALL job")["total"] == 1
    first = board(limit=2, sort="requested", order="asc")
    assert [i["id"] for i in first["items"]] == ids[:2] and first["total"] == 5
    second = board(limit=2, sort="requested", order="asc", after=first["next"])
    third = board(limit=2, sort="requested", order="asc", after=second["next"])
    assert [i["id"] for i in second["items"] + third["items"]] == ids[2:] and third["next"] is None
    assert board(requested_from="2000-01-01")["total"] == 5 and board(requested_from="2999-01-01")["total"] == 0
    # a page kept in memory is never older than the position a reader asks for
    before = get(reader, api, "/api/board", job_type="install").json()
    another = api.ok("/jobs", {"customer_id": customer, "job_type": "install", "description": "second install"})
    after = get(reader, api, "/api/board", job_type="install", position=another["position"]).json()
    assert (before["total"], after["total"]) == (1, 2)


def test_technicians_see_their_own_jobs_and_the_open_pool(api: Api, reader: TestClient) -> None:
    tom, eva = api.technician("tom"), api.technician("eva")
    toms = api.scheduled_job(tom)
    evas = api.scheduled_job(eva)
    pool = api.ok("/jobs", {"customer_id": api.customer(), "job_type": "repair", "description": "Anyone"})
    seen = {i["id"] for i in get(reader, api, "/api/board", who="tom", position=pool["position"]).json()["items"]}
    assert seen == {toms, pool["id"]}
    refused = get(reader, api, f"/api/jobs/{evas}", who="tom")
    assert refused.status_code == 403 and "own jobs" in refused.json()["detail"]
    assert get(reader, api, "/api/reports", who="tom").status_code == 403
    assert get(reader, api, f"/api/jobs/{evas}", who="accountant").status_code == 200


def test_accountants_replay_and_export_but_write_nothing(api: Api, reader: TestClient) -> None:
    positions = work_a_day(api)
    replayed = get(reader, api, "/api/audit/replay", who="accountant", after=positions[0] - 1)
    assert replayed.status_code == 200
    lines = [msgspec.json.decode(line) for line in replayed.text.splitlines()]
    assert lines[0]["type"] == "JobRequested" and len(lines) >= 7
    exported = get(reader, api, "/api/audit/export", who="accountant", format="csv", type="NoteAdded")
    assert exported.text.splitlines()[0].startswith("position,occurred_at") and "Seal worn out" in exported.text
    import csv

    last = list(csv.DictReader(exported.text.splitlines()))[-1]  # the checkpoint taken with it, to file
    assert last["type"] == "Checkpoint" and msgspec.json.decode(last["event"])["head"] == int(last["position"])
    assert get(reader, api, "/api/audit/replay", who="office").status_code == 403
    write = reader.post("/jobs/new", data={"description": "x"}, headers=api.headers("accountant"))
    assert write.status_code == 403 and "cannot change anything" in write.text  # a page, for a browser


def test_a_token_issued_a_moment_ago_works_at_the_position_given(api: Api, reader: TestClient) -> None:
    early = api.jobstream.issue_token("early", Role.OFFICE)
    position = api.jobstream.recorder.max_notification_id()
    answer = reader.get("/api/board", params={"position": position}, headers={"Authorization": f"Bearer {early}"})
    assert answer.status_code == 200, answer.text


def test_a_revoked_token_is_refused_from_the_position_of_its_revocation(api: Api, reader: TestClient) -> None:
    token = api.jobstream.issue_token("leaving", Role.OFFICE)
    headers = {"Authorization": f"Bearer {token}"}
    issued = api.jobstream.recorder.max_notification_id()
    for _ in range(2):  # the route, then the page kept in memory
        assert reader.get("/api/board", params={"position": issued}, headers=headers).status_code == 200
    api.jobstream.revoke_token(token)
    revoked = api.jobstream.recorder.max_notification_id()
    assert reader.get("/api/board", params={"position": revoked}, headers=headers).status_code == 401
    assert reader.get("/api/board", headers=headers).status_code == 401


def test_a_page_kept_in_memory_is_only_for_the_same_reader(api: Api, reader: TestClient) -> None:
    tom, eva = api.technician("tom"), api.technician("eva")
    toms, evas = api.scheduled_job(tom), api.scheduled_job(eva)
    position = api.jobstream.recorder.max_notification_id()
    office = [get(reader, api, "/api/board", position=position) for _ in range(2)]
    assert office[0].content == office[1].content
    assert {i["id"] for i in office[1].json()["items"]} == {toms, evas}
    # the same query string from a technician: their own page, never the office's
    tech = get(reader, api, "/api/board", who="tom", position=position)
    assert {i["id"] for i in tech.json()["items"]} == {toms}


def test_a_page_kept_in_memory_is_not_served_once_it_is_both_out_of_date_and_old(api: Api, reader: TestClient) -> None:
    customer = api.customer()
    first = api.ok("/jobs", {"customer_id": customer, "job_type": "install", "description": "first"})
    assert get(reader, api, "/api/board", job_type="install", position=first["position"]).json()["total"] == 1
    second = api.ok("/jobs", {"customer_id": customer, "job_type": "install", "description": "second"})
    models, live = reader.app.state.models, reader.app.state.live  # type: ignore[attr-defined]
    models.wait_for(second["position"], 10)
    live.board_position = second["position"]  # as the live poller reads it
    f = next(f for f in reader.app.state.board_filters._known.values() if f.job_type == "install")  # type: ignore[attr-defined]
    kept = models.latest_board(f)
    models._pages[next(k for k, v in models._pages.items() if v is kept)] = kept._replace(made_at=kept.made_at - 60)
    # a reader asking without a position, a minute after the page was made: the new page
    assert get(reader, api, "/api/board", job_type="install").json()["total"] == 2


def test_readers_opening_a_new_filter_together_wait_for_one_query(
    api: Api, reader: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from read_api import fastboard

    monkeypatch.setattr(fastboard, "PAGE_TTL", 3600.0)  # no remake for the clock's sake while they read
    api.scheduled_job(api.technician("tom"))
    last = api.jobstream.recorder.max_notification_id()  # the board does not move past it in this test
    models = reader.app.state.models  # type: ignore[attr-defined]
    made, make = [], models.board_json
    models.board_json = lambda f: made.append(f) or make(f)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: get(reader, api, "/api/board", job_type="repair", position=last), range(32)))
    assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
    assert len(made) == 1


def test_errors_name_the_field_and_never_500(api: Api, reader: TestClient) -> None:
    assert reader.get("/api/board").status_code == 401
    assert reader.get("/api/board", headers={"Authorization": "Bearer js_nope"}).status_code == 401
    bad = get(reader, api, "/api/board", limit=0)
    assert bad.status_code == 422 and "limit" in bad.text
    assert get(reader, api, "/api/board", sort="colour").status_code == 422
    cursor = get(reader, api, "/api/board", after="not-a-cursor")
    assert cursor.status_code == 422 and "after" in cursor.json()["detail"]
    assert get(reader, api, "/api/jobs/not-a-uuid").status_code == 422
    assert get(reader, api, "/api/reports/nothing.csv").status_code == 404


def test_reports_and_csv(api: Api, reader: TestClient) -> None:
    position = work_a_day(api)[-1]
    reports = get(reader, api, "/api/reports", position=position).json()
    assert reports["job_types"] == [{"job_type": "repair", "jobs": 1}]
    assert reports["first_visit"][0]["completed"] == 1
    assert reports["technicians"][0]["technician"] == "tom" and reports["technicians"][0]["completed_jobs"] == 1
    csv_text = get(reader, api, "/api/reports/job_types.csv").text
    assert csv_text.splitlines() == ["job_type,jobs", "repair,1"]


def test_a_refused_read_answers_as_its_document_says(api: Api, reader: TestClient) -> None:
    """Every 422 of the read API has the shape its OpenAPI document declares, and a date is a date."""
    declared = reader.app.openapi()["paths"]["/api/messages"]["get"]["responses"]["422"]  # type: ignore[attr-defined]
    assert declared["content"]["application/json"]["schema"]["properties"]["detail"]
    wrong = get(reader, api, "/api/messages", state="AAA")
    assert wrong.status_code == 422 and isinstance(wrong.json()["detail"], list), wrong.text
    assert "state" in str(wrong.json()["detail"][0]["loc"])
    assert get(reader, api, "/api/messages", state="failed").status_code == 200
    assert get(reader, api, "/api/schedule", start="0").status_code == 422  # not 1970-01-01


def test_a_one_value_parameter_given_twice_is_refused_by_name(api: Api, reader: TestClient) -> None:
    """FastAPI would read the last of them; the reader asked two things and is told so."""
    office = api.headers("office")
    assert reader.get("/api/board", headers=office).status_code == 200  # and the page is kept in memory
    for query in ("position=0&position=1", "limit=5&limit=7", "sort=sla&status=new&sort=time"):
        twice = reader.get(f"/api/board?{query}", headers=office)
        assert twice.status_code == 422, (query, twice.text)
        (problem,) = twice.json()["detail"]
        assert problem["loc"] == ["query", query.partition("=")[0]] and "takes one value" in problem["msg"]
    lists = reader.get("/api/board?status=new&status=scheduled", headers=office)  # a list repeats freely
    assert lists.status_code == 200, lists.text
    assert reader.get("/api/invoices?limit=1&limit=2", headers=office).status_code == 422
