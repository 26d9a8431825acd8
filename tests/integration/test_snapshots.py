"""Snapshots make a long job load fast; what they give equals a replay of every event."""

from __future__ import annotations

import uuid

from eventsourcing.persistence import StoredEvent

from events.contract import AddNote, Address, RegisterCustomer, RequestJob, Role
from services.application import KINDS, SNAPSHOT_EVERY, JobstreamApp, Loaded, advance
from services.domain.common import Actor

OFFICE = Actor(id="olga", role=Role.OFFICE)


def test_a_fresh_process_loads_from_the_latest_snapshot_and_gets_the_same_state(stream_env: dict[str, str]) -> None:
    writer = JobstreamApp(stream_env)
    customer, job = uuid.uuid4(), uuid.uuid4()
    writer.execute(
        customer,
        RegisterCustomer(
            name="Novák", billing_address=Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
        ),
        OFFICE,
    )
    writer.execute(job, RequestJob(customer_id=customer, job_type="repair", description="x"), OFFICE)
    for n in range(2 * SNAPSHOT_EVERY + 20):
        writer.execute(job, AddNote(text=f"note {n}"), OFFICE, command_id=f"note-{n}")
    writer.close()

    reader = JobstreamApp(stream_env)
    try:
        snapshot = reader.run(reader.snapshots.latest_async(job))
        assert snapshot is not None and snapshot.originator_version == 2 * SNAPSHOT_EVERY
        loaded = reader.load("job", job)
        positioned = reader.recorder.select_positioned(job)
        replayed = advance(KINDS["job"], Loaded(KINDS["job"].initial(job), 0, ""), positioned)
        assert loaded.version == replayed.version == 2 * SNAPSHOT_EVERY + 21
        assert loaded.state == replayed.state
        assert (loaded.last_hash, loaded.position) == (replayed.last_hash, replayed.position)
        # a retry of a command from before the snapshot is still recognised
        again = reader.execute(job, AddNote(text="note 150"), OFFICE, command_id="note-150")
        assert again.replayed and again.version == 152
        assert reader.load("job", job).version == loaded.version
    finally:
        reader.close()


def test_a_snapshot_only_speeds_up_loading_the_events_stay_the_truth(stream_env: dict[str, str]) -> None:
    app = JobstreamApp(stream_env)
    try:
        job = uuid.uuid4()
        assert isinstance(app.recorder.select_events(job), list)
        assert app.snapshots.select_events(job) == []
        assert app.load("job", job).version == 0  # no snapshot, no events: a new job
        assert not any(
            isinstance(n, StoredEvent) and "Snapshot" in n.topic for n in app.recorder.select_notifications(None, 1000)
        )
    finally:
        app.close()
