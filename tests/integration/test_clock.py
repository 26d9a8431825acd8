"""A command reads the clock once: its events record the time it was decided at."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

from events.contract import Address, RegisterCustomer, RegisterTechnician, RequestJob, Role, ScheduleJob, decode_event
from services.application import JobstreamApp
from services.domain.common import Actor

OFFICE = Actor(id="olga", role=Role.OFFICE)
ADDRESS = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")


class Ticking:
    """A clock that moves on a second each time it is read, and remembers what it said."""

    def __init__(self, start: datetime) -> None:
        self.ticks: Iterator[datetime] = (start + timedelta(seconds=n) for n in count())
        self.said: list[datetime] = []

    def __call__(self) -> datetime:
        self.said.append(next(self.ticks))
        return self.said[-1]


def test_an_event_records_the_time_its_command_was_decided_at(stream_env: dict[str, str]) -> None:
    clock = Ticking(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    app = JobstreamApp(stream_env, clock=clock)
    try:
        customer, technician, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        app.execute(customer, RegisterCustomer(name="Novák", billing_address=ADDRESS), OFFICE)
        app.execute(technician, RegisterTechnician(name="Jana"), OFFICE)
        app.execute(job, RequestJob(customer_id=customer, job_type="repair", description="Leak"), OFFICE)
        decided_at = len(clock.said)
        app.execute(
            job, ScheduleJob(technician_ids=[technician], start=datetime(2026, 11, 24, 9, 0, tzinfo=UTC)), OFFICE
        )
        assert len(clock.said) == decided_at + 1, "the clock is read once per command"
        stamped = [
            decode_event(stored.state).meta
            for aggregate in (customer, technician, job)
            for stored in app.history(aggregate)
        ]
        assert sorted(meta.occurred_at for meta in stamped if meta is not None) == clock.said
    finally:
        app.close()
