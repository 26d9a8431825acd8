"""The short cuts a rebuild takes read exactly what the long ways read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from events.contract import Address, JobRequested, MaterialUsed, Priority, Source, TimeEntryAdded
from events.jetstream import stream_sequence
from projections.rows import _plain, iso, summary


def test_the_stream_sequence_is_read_from_either_form_of_reply_subject() -> None:
    assert stream_sequence("$JS.ACK.JOBSTREAM.consumer1.1.4711.12.1700000000000000000.3") == 4711
    assert stream_sequence("$JS.ACK.hub.ACCHASH.JOBSTREAM.consumer1.1.4712.12.1700000000000000000.3.tok") == 4712
    with pytest.raises(ValueError, match="not a JetStream delivery"):
        stream_sequence("_INBOX.abc.def")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 8, 1, 7, 0, tzinfo=UTC),
        datetime(2026, 8, 1, 7, 0, 5, 123, tzinfo=timezone(timedelta(hours=2))),
        msgspec.json.decode(b'"2026-12-01T23:59:59.5Z"', type=datetime),
    ],
)
def test_iso_sorts_as_time_and_says_utc(moment: datetime) -> None:
    assert iso(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _summary_of_builtins(event: object) -> str:
    """How the timeline summed an event up before: from the whole event as builtins."""
    fields = msgspec.to_builtins(event)
    for key in ("type", "id", "meta", "signature"):
        fields.pop(key, None)
    shown = ", ".join(
        f"{key.replace('_', ' ')}: {_plain(value)}" for key, value in fields.items() if value not in (None, "", [], {})
    )
    return shown if len(shown) <= 300 else shown[:297] + "..."


@pytest.mark.parametrize(
    "event",
    [
        JobRequested(
            id=uuid.uuid4(),
            source=Source.PHONE,
            customer_id=uuid.uuid4(),
            site_address=Address(street="1 Quay Street", city="Dublin", postal_code="D02", country="IE"),
            job_type="repair",
            description="Leaks " * 80,
            priority=Priority.URGENT,
            sla_deadline=datetime(2026, 12, 1, 12, tzinfo=UTC),
            estimate_minutes=0,
        ),
        MaterialUsed(
            id=uuid.uuid4(),
            code="g-12",
            description="Gasket",
            quantity=Decimal("1.50"),
            unit_price=None,
            billable=False,
        ),
        TimeEntryAdded(
            id=uuid.uuid4(),
            technician_id=uuid.uuid4(),
            entry_id=uuid.uuid4(),
            started_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
            minutes=25,
            activity="travel",
        ),
    ],
)
def test_a_timeline_summary_reads_as_it_did_from_the_whole_event(event: object) -> None:
    assert summary(event) == _summary_of_builtins(event)  # type: ignore[arg-type]
