"""Projections on SQLite and on PostgreSQL, fed by a real nats-server.

Exactly-once effect: rows and tracking position in one transaction, so a redelivered
batch changes nothing; and a rebuild from an empty store equals the live read model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from events.contract import decode_event
from events.jetstream import NatsConnection, StreamSettings
from projections.definitions import Positioned
from projections.runner import Runner, build
from read_api.queries import BoardFilter, ReadModels
from services.demo import load_demo
from tests.conftest import Projectors, new_read_model
from tests.integration.conftest import Api


@pytest.fixture
def models(read_model_url: str) -> Iterator[ReadModels]:
    """The read models of this test's database, for reading; closed after."""
    with ReadModels(read_model_url) as opened:
        yield opened


TABLES = {
    "board": [
        "jobs",
        "job_technicians",
        "customers",
        "technicians",
        "users",
        "job_history",
        "invoices",
        "ksef_documents",
        "efactura_documents",
        "unmatched_lines",
    ],
    "timesheets": ["time_entries"],
    "ledger": ["journal", "ledger_invoices"],
}


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, in a stable order, with each projection's position."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for name, tables in TABLES.items():
        projection = build(name, url)
        view = projection.view
        found[f"tracking:{name}"] = [(view.max_tracking_id(name),)]
        for table in tables:
            rows = view.query(f"SELECT * FROM {{t}}{table}")
            found[table] = sorted(tuple(str(v) for v in row.values()) for row in rows)
        projection.close()
    return found


def catch_up(env: dict[str, str], url: str, until: int | None = None) -> int:
    async def run() -> int:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        projections = [build(name, url) for name in TABLES]
        try:
            return min([await Runner(projection, connection).catch_up(until) for projection in projections])
        finally:
            await connection.aclose()
            for projection in projections:
                projection.close()

    return asyncio.run(run())


def race(env: dict[str, str], url: str, replicas: int) -> None:
    """Several runners of each projection catching up at once on one store."""

    async def run() -> None:
        connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
        runners = [Runner(build(name, url), connection) for name in TABLES for _ in range(replicas)]
        try:
            await asyncio.gather(*(runner.catch_up() for runner in runners))
        finally:
            await connection.aclose()
            for runner in runners:
                runner.projection.close()

    asyncio.run(run())


def work_a_day(api: Api) -> list[int]:
    """The office and a technician at work; the positions the commands returned."""
    tom = api.technician("tom")
    customer = api.customer()
    positions = []
    job = api.ok(
        "/jobs",
        {
            "customer_id": customer,
            "job_type": "repair",
            "description": "Boiler leaks",
            "priority": "urgent",
            "sla_deadline": "2026-11-23T12:00:00Z",
        },
    )
    positions.append(job["position"])
    for path, body, who in [
        ("schedule", {"technician_ids": [str(tom)], "start": "2026-11-23T09:00:00Z"}, "office"),
        ("start", {}, "tom"),
        ("notes", {"text": "Seal worn out"}, "tom"),
        (
            "time-entries",
            {
                "technician_id": str(tom),
                "started_at": "2026-11-23T07:00:00Z",
                "minutes": 25,
                "billable": False,
                "activity": "travel",
            },
            "tom",
        ),
        ("complete", {"summary": "Seal replaced"}, "tom"),
    ]:
        positions.append(api.ok(f"/jobs/{job['id']}/{path}", body, who=who)["position"])
    return positions


def test_the_board_follows_the_office_and_the_technicians(api: Api, projectors: Projectors, models: ReadModels) -> None:
    positions = work_a_day(api)
    projectors.wait(positions[-1])
    page = models.board_page(BoardFilter())
    assert page.total == 1
    item = page.items[0]
    assert (item.status, item.customer, item.technicians, item.priority) == (
        "completed",
        "Novák Stavby",
        ["tom"],
        "urgent",
    )
    assert (item.minutes_logged >= 25, item.billable_minutes == item.minutes_logged - 25) == (True, True)
    history = models.history(item.id)
    assert [h["event_type"] for h in history] == [
        "JobRequested",
        "JobScheduled",
        "WorkStarted",
        "NoteAdded",
        "TimeEntryAdded",
        "WorkStopped",
        "JobCompleted",
    ]
    assert history[2]["actor_role"] == "technician" and history[0]["actor_role"] == "office"
    sheet = models.timesheet(
        "day",
        item.requested_at.date().replace(year=2026, month=11, day=1),
        item.requested_at.date().replace(year=2027, month=1, day=1),
    )
    assert sum(r["non_billable_minutes"] for r in sheet) == 25
    # the travel entry is dated 23 November; the stopwatch's time falls on the day the test runs
    per_job = models.timesheet("month", date(2026, 11, 1), date(2099, 1, 1), by="job")
    assert {(r["id"], r["who"]) for r in per_job} == {(str(item.id), "repair: Boiler leaks")}
    assert [(r["period"], r["non_billable_minutes"]) for r in per_job if r["non_billable_minutes"]] == [("2026-11", 25)]
    assert models.board_page(BoardFilter(q="novák")).total == 1  # customer name
    assert models.board_page(BoardFilter(q="boiler")).total == 1  # description
    assert models.board_page(BoardFilter(q="nothing like it")).total == 0
    assert models.board_page(BoardFilter(status=["new"])).total == 0


def test_a_rebuild_from_an_empty_store_equals_the_live_read_model(
    api: Api, projectors: Projectors, read_model_url: str, stream_env: dict[str, str], tmp_path: Path
) -> None:
    load_demo(api.jobstream, lambda line: None)
    position = work_a_day(api)[-1]
    projectors.wait(position)
    kind = "sqlite" if read_model_url.startswith("sqlite") else "postgres"
    with new_read_model(kind, tmp_path) as fresh:
        catch_up(stream_env, fresh)
        live, rebuilt = dump(read_model_url), dump(fresh)
    assert len(live["jobs"]) == 10 and len(live["job_history"]) > 30
    assert rebuilt == live


def test_a_redelivered_batch_changes_nothing(api: Api, stream_env: dict[str, str], read_model_url: str) -> None:
    position = work_a_day(api)[-1]
    catch_up(stream_env, read_model_url)
    before = dump(read_model_url)
    board = build("board", read_model_url)
    notifications = api.jobstream.recorder.select_notifications(1, 1000)
    items = [Positioned(n.id, n.originator_version, decode_event(n.state)) for n in notifications]
    assert board.process_batch(items, Tracking("board", position), 0) is False  # already recorded
    assert board.process_batch(items[-2:], Tracking("board", items[-1].position), items[-3].position) is False
    assert board.process_batch(items[-1:], Tracking("board", position + 5), position - 1) is False
    assert dump(read_model_url) == before
    board.close()


def test_replicas_racing_on_one_store_count_each_event_once(
    api: Api, stream_env: dict[str, str], read_model_url: str, tmp_path: Path
) -> None:
    load_demo(api.jobstream, lambda line: None)
    work_a_day(api)

    race(stream_env, read_model_url, replicas=3)
    kind = "sqlite" if read_model_url.startswith("sqlite") else "postgres"
    with new_read_model(kind, tmp_path) as alone:
        catch_up(stream_env, alone)
        assert dump(read_model_url) == dump(alone)


def test_a_rebuild_stops_where_it_is_told(
    api: Api, stream_env: dict[str, str], read_model_url: str, models: ReadModels
) -> None:
    positions = work_a_day(api)
    reached = catch_up(stream_env, read_model_url, until=positions[2])
    assert reached == positions[2]
    assert models.board_page(BoardFilter()).items[0].status == "in_progress"  # as it stood then


def test_a_long_history_is_read_through_the_ordered_consumer_and_counted_once(
    api: Api, stream_env: dict[str, str], read_model_url: str, tmp_path: Path, models: ReadModels
) -> None:
    """Past one page (1,000 events) the runner reads with an ordered consumer: three
    replicas racing through 2,600 events end where one alone does."""
    from eventsourcing.persistence import StoredEvent

    from events.contract import EventMeta, NoteAdded, encode_event

    position = work_a_day(api)[0]
    job = UUID(api.jobstream.recorder.select_notifications(position, 1)[0].originator_id.hex)
    version = api.jobstream.load("job", job).version
    meta = EventMeta(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        actor_id="tom",
        actor_role="technician",
        command_id="bulk",
        correlation_id="bulk",
    )
    for start in range(0, 2600, 1000):
        batch = [
            StoredEvent(job, version + n + 1, "NoteAdded", encode_event(NoteAdded(id=job, text=f"note {n}", meta=meta)))
            for n in range(start, min(start + 1000, 2600))
        ]
        api.jobstream.recorder.insert_events(batch)

    race(stream_env, read_model_url, replicas=3)
    row = models.job(job)
    assert row is not None and row.notes == 2601 and row.version == version + 2600
    assert len(models.history(job)) == version + 2600
    kind = "sqlite" if read_model_url.startswith("sqlite") else "postgres"
    with new_read_model(kind, tmp_path) as alone:
        catch_up(stream_env, alone)
        assert dump(read_model_url) == dump(alone)
