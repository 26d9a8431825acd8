"""Recurring services and the scheduler, through the command API on a real nats-server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from events.contract import (
    JobCancelled,
    JobRequested,
    JobRescheduled,
    JobScheduled,
    OccurrenceGenerated,
    RequestJob,
    SlaAtRisk,
    Source,
)
from services.domain.recurring import to_generate
from services.recurring import SCHEDULER, Scheduler, generate
from tests.integration.conftest import Api, stored

PRAGUE = ZoneInfo("Europe/Prague")


def next_weekday(weekday: int, days_ahead: int = 2) -> datetime:
    """A local 09:00 on the given weekday at least ``days_ahead`` days from now (Prague)."""
    day = datetime.now(PRAGUE).date() + timedelta(days=days_ahead)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0)


def visits(weekday: int, days: int, now: datetime | None = None) -> int:
    """How many local 09:00s on ``weekday`` from the service's start to ``days`` ahead of now,
    counted by hand (not with dateutil) to check the generator against."""
    now = now or datetime.now(UTC)
    start = next_weekday(0).replace(tzinfo=PRAGUE)
    day, count = start.date(), 0
    while True:
        at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=PRAGUE)
        if at > now + timedelta(days=days):
            return count
        count += at.weekday() == weekday and at >= start and at > now
        day += timedelta(days=1)


def define(api: Api, tech: UUID, customer: str, **extra: Any) -> dict[str, Any]:
    body = {
        "customer_id": customer,
        "job_type": "cleaning",
        "description": "Weekly office cleaning",
        "technician_ids": [str(tech)],
        "rule": "FREQ=WEEKLY;BYDAY=MO",
        "start": next_weekday(0).isoformat(),
        "timezone": "Europe/Prague",
        "duration_minutes": 90,
        "horizon_days": 28,
        **extra,
    }
    return api.ok("/recurring-services", body)


def live_jobs(api: Api, recurrence: str) -> dict[datetime, str]:
    """Occurrence -> job id, for the occurrences not withdrawn."""
    state = api.get(f"/recurring-services/{recurrence}").json()
    return {datetime.fromisoformat(at): o["job_id"] for at, o in state["occurrences"].items() if not o["withdrawn"]}


def test_a_weekly_service_schedules_its_jobs_ahead_at_local_time(api: Api) -> None:
    tom = api.technician("tom")
    answer = define(api, tom, api.customer())
    assert answer["generated"]["created"] == visits(0, 28) >= 3, answer  # the Mondays within 28 days
    jobs = live_jobs(api, answer["id"])
    assert len(jobs) == visits(0, 28)
    for at, job_id in jobs.items():
        job = api.get(f"/jobs/{job_id}").json()
        start = datetime.fromisoformat(job["start"])
        assert job["status"] == "scheduled" and job["technician_ids"] == [str(tom)]
        assert start == at and job["duration_minutes"] == 90
        local = start.astimezone(PRAGUE)
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    [requested] = stored(api.jobstream, JobRequested)
    assert {r.source for r in requested} == {Source.RECURRING}


def test_generation_is_idempotent_even_after_a_crash_between_its_steps(api: Api) -> None:
    tom = api.technician("tom")
    answer = define(api, tom, api.customer(), horizon_days=14)
    recurrence = UUID(answer["id"])
    app = api.jobstream
    again = app.run(generate(app, recurrence))
    assert (again.created, again.moved, again.withdrawn) == (0, 0, 0)
    # a week on, one more Monday is in reach: the generator requests its job and stops (a crash)
    later = datetime.now(UTC) + timedelta(days=7)
    state = app.get("recurrence", recurrence)
    [pending] = to_generate(state, later).create
    key = f"recurrence:{recurrence}:v{state.plan_version}:{pending.isoformat()}:request"
    plan = state.plan
    early = app.execute(
        app.new_id(SCHEDULER, key),
        RequestJob(
            customer_id=plan.customer_id,
            job_type=plan.job_type,
            description=plan.description,
            source=Source.RECURRING,
            site_address=plan.site_address,
            estimate_minutes=plan.duration_minutes,
            billing_kind=plan.billing_kind,
            scope=plan.scope,
        ),
        SCHEDULER,
        command_id=key,
    )
    mended = app.run(generate(app, recurrence, later))
    assert mended.created == 1
    assert live_jobs(api, str(recurrence))[pending] == str(early.id)  # the same job, not a second
    assert app.run(generate(app, recurrence, later)).created == 0
    requested, scheduled, recorded = stored(app, JobRequested, JobScheduled, OccurrenceGenerated)
    assert len(requested) == len(scheduled) == len(recorded) == 3


def test_changing_the_rule_moves_adds_and_withdraws_future_jobs(api: Api) -> None:
    tom, eva = api.technician("tom"), api.technician("eva")
    answer = define(api, tom, api.customer())
    recurrence = answer["id"]
    mondays = live_jobs(api, recurrence)
    monday_count, tuesday_count = len(mondays), visits(1, 28)
    # another technician and a longer visit: the same jobs, moved
    moved = api.ok(
        f"/recurring-services/{recurrence}/change",
        {"technician_ids": [str(eva)], "duration_minutes": 120, "reason": "Eva takes over"},
    )
    assert moved["generated"] == {"created": 0, "moved": monday_count, "withdrawn": 0, "position": moved["position"]}
    assert live_jobs(api, recurrence) == mondays
    job = api.get(f"/jobs/{next(iter(mondays.values()))}").json()
    assert job["technician_ids"] == [str(eva)] and job["duration_minutes"] == 120
    # Tuesdays instead of Mondays: the Monday jobs are cancelled, Tuesday jobs made
    tuesdays = api.ok(f"/recurring-services/{recurrence}/change", {"rule": "FREQ=WEEKLY;BYDAY=TU"})
    assert (tuesdays["generated"]["created"], tuesdays["generated"]["withdrawn"]) == (tuesday_count, monday_count)
    for job_id in mondays.values():
        assert api.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert {at.astimezone(PRAGUE).weekday() for at in live_jobs(api, recurrence)} == {1}
    # ended after the second Tuesday: the later ones are cancelled, nothing more is made
    second = sorted(live_jobs(api, recurrence))[1]
    ended = api.ok(f"/recurring-services/{recurrence}/end", {"after": second.isoformat(), "reason": "contract ends"})
    assert ended["generated"]["withdrawn"] == tuesday_count - 2
    assert max(live_jobs(api, recurrence)) == second and len(live_jobs(api, recurrence)) == 2
    # ended now: the rest is cancelled, and an ended service no longer changes
    assert api.ok(f"/recurring-services/{recurrence}/end", {"reason": "customer left"})["generated"]["withdrawn"] == 2
    refused = api.post(f"/recurring-services/{recurrence}/change", {"duration_minutes": 30})
    assert refused.status_code == 409 and "ended" in refused.text
    cancelled, rescheduled = stored(api.jobstream, JobCancelled, JobRescheduled)
    assert len(cancelled) == monday_count + tuesday_count and len(rescheduled) == monday_count


def test_the_scheduler_moves_the_horizon_and_alerts_on_slas_at_risk(api: Api) -> None:
    tom = api.technician("tom")
    customer = api.customer()
    answer = define(api, tom, customer, horizon_days=14)
    now = datetime.now(UTC)
    later = Scheduler(api.jobstream, sla_warn_minutes=60, clock=lambda: now + timedelta(days=7))
    first = len(live_jobs(api, answer["id"]))
    assert first == visits(0, 14)
    assert api.jobstream.run(later.run_once()).created == 1  # a week on, one more Monday is in reach
    assert api.jobstream.run(later.run_once()).created == 0
    assert len(live_jobs(api, answer["id"])) == first + 1
    # an urgent job due in 30 minutes: the office is alerted once; one due tomorrow is not at risk
    soon = api.ok(
        "/jobs",
        {
            "customer_id": customer,
            "job_type": "repair",
            "description": "Server down",
            "priority": "urgent",
            "sla_deadline": (now + timedelta(minutes=30)).isoformat(),
        },
    )
    api.ok(
        "/jobs",
        {
            "customer_id": customer,
            "job_type": "repair",
            "description": "Printer",
            "priority": "urgent",
            "sla_deadline": (now + timedelta(days=1)).isoformat(),
        },
    )
    watch = Scheduler(api.jobstream, sla_warn_minutes=60)
    api.jobstream.run(watch.run_once())
    api.jobstream.run(Scheduler(api.jobstream, sla_warn_minutes=60).run_once())  # a restarted scheduler
    [warned] = stored(api.jobstream, SlaAtRisk)
    assert [w.id for w in warned] == [UUID(soon["id"])] and 25 <= warned[0].minutes_left <= 30


def test_bad_plans_are_refused_naming_the_field(api: Api) -> None:
    tom = api.technician("tom")
    customer = api.customer()
    body = {
        "customer_id": customer,
        "job_type": "cleaning",
        "description": "x",
        "technician_ids": [str(tom)],
        "rule": "FREQ=WEEKLY",
        "start": "2027-01-04T09:00:00",
        "timezone": "Europe/Prague",
    }
    cases = [
        ({"rule": "FREQ=SOMETIMES"}, "rule"),
        ({"rule": "FREQ=HOURLY"}, "at most daily"),
        ({"rule": "DTSTART=20270101;FREQ=DAILY"}, "rule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start": "2027-01-04T09:00:00Z"}, "start"),
        ({"technician_ids": []}, "technician_ids"),
        ({"technician_ids": [str(UUID(int=7))]}, "technician_ids"),
        ({"customer_id": str(UUID(int=8))}, "customer_id"),
        ({"horizon_days": 0}, "horizon_days"),
    ]
    for change, named in cases:
        refused = api.post("/recurring-services", {**body, **change})
        assert refused.status_code == 422 and named in refused.text, (change, refused.text)
    assert api.post("/recurring-services", body, who="tom").status_code == 403
    assert api.get(f"/recurring-services/{UUID(int=9)}").status_code == 404


def test_the_dashboard_lists_recurring_services_with_their_next_visits(
    api: Api, projectors: Any, read_model_url: str, stream_env: dict[str, str]
) -> None:
    from fastapi.testclient import TestClient

    from read_api.app import Settings, create_app

    tom = api.technician("tom")
    answer = define(api, tom, api.customer())
    visits_before = sorted(live_jobs(api, answer["id"]))
    ended = api.ok(
        f"/recurring-services/{answer['id']}/end", {"after": visits_before[1].isoformat(), "reason": "contract ends"}
    )
    settings = Settings(read_model_url=read_model_url, stream_env=stream_env, wait_seconds=10, timezone="Europe/Prague")
    with TestClient(create_app(settings)) as reader:
        page = reader.get("/recurring", params={"position": ended["position"]}, headers=api.headers("office"))
        assert page.status_code == 200, page.text
        assert f'data-recurrence="{answer["id"]}"' in page.text and "Weekly office cleaning" in page.text
        shown = [at.astimezone(PRAGUE).strftime("%a %d %b 09:00") for at in visits_before[:2]]
        assert all(s in page.text for s in shown) and "FREQ=WEEKLY;BYDAY=MO" in page.text
        third = visits_before[2].astimezone(PRAGUE).strftime("%a %d %b 09:00")
        assert third not in page.text  # cancelled with the end
        assert reader.get("/recurring", headers=api.headers("tom")).status_code == 403
