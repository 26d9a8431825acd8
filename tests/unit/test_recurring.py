"""The recurring plan's arithmetic: local time across daylight saving, and what to generate."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from events.contract import OccurrenceGenerated, RecurringPlan, RecurringServiceChanged, RecurringServiceDefined
from services.domain.recurring import Recurrence, evolve_recurrence, occurrences, parse_rule, to_generate

PLAN = RecurringPlan(
    customer_id=UUID(int=1),
    site_address=None,
    job_type="inspection",
    description="Boiler check",
    technician_ids=[UUID(int=2)],
    rule="FREQ=MONTHLY;BYDAY=1MO",
    start=datetime(2027, 1, 4, 9, 0),
    timezone="Europe/Prague",
    duration_minutes=60,
    horizon_days=200,
)


def test_the_first_monday_of_each_month_stays_at_nine_local_across_daylight_saving() -> None:
    found = occurrences(PLAN, datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 6, 30, tzinfo=UTC))
    assert [a.date().isoformat() for a in found] == [
        "2027-01-04",
        "2027-02-01",
        "2027-03-01",
        "2027-04-05",
        "2027-05-03",
        "2027-06-07",
    ]
    assert [a.hour for a in found] == [8, 8, 8, 7, 7, 7]  # CET, then CEST after 28 March


def test_rules_the_generator_refuses() -> None:
    for rule, reason in [
        ("FREQ=MINUTELY", "at most daily"),
        ("FREQ=WEEKLY;BYDAY=XX", "RFC 5545"),
        ("DTSTART:20270101", "start"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_rule(rule, datetime(2027, 1, 1))


def test_given_generated_occurrences_when_the_rule_changes_then_the_rest_are_withdrawn_and_new_made() -> None:
    now = datetime(2026, 12, 20, tzinfo=UTC)
    state = evolve_recurrence(Recurrence(id=UUID(int=3)), RecurringServiceDefined(id=UUID(int=3), plan=PLAN))
    first = to_generate(state, now)
    assert [a.month for a in first.create] == [1, 2, 3, 4, 5, 6, 7]  # 200 days ahead
    for n, at in enumerate(first.create):
        state = evolve_recurrence(
            state, OccurrenceGenerated(id=state.id, at=at, job_id=UUID(int=10 + n), plan_version=1)
        )
    assert to_generate(state, now) == type(first)([], [], [])  # nothing more to do: idempotent
    third = RecurringPlan(**{**{f: getattr(PLAN, f) for f in PLAN.__struct_fields__}, "rule": "FREQ=MONTHLY;BYDAY=3MO"})
    state = evolve_recurrence(state, RecurringServiceChanged(id=state.id, plan=third))
    changed = to_generate(state, now)
    assert len(changed.withdraw) == 7 and len(changed.create) == 6 and changed.move == []
    assert {a.day for a in changed.create} == {18, 15, 19, 17, 21}
