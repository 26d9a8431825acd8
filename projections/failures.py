"""The events consumers could not process, as the office reads them: folded on demand from
the failures' own events (``events.failure.<id>``), straight from the stream.

Not a projection with tables: failures are few, and the list must show even when a
projection is the consumer that failed. ``evolve_failure`` is pure; ``failures`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from uuid import UUID

import msgspec

from events.contract import (
    EVENT_TYPES,
    Event,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    decode_event,
)
from events.jetstream import PAGE, NatsConnection
from projections.rows import iso

# What each consumer does, in the office's words
CONSUMERS = {
    "invoicer": "Invoicing",
    "invoicer-documents": "Invoice documents (PDF and e-invoice)",
    "payments": "Matching bank payments",
    "notifier": "Emails and alerts",
    "scheduler": "Recurring services and SLA alerts",
    "board": "The board and the office's lists",
    "timesheets": "Timesheets",
    "ledger": "The ledger",
}
FailureState = Literal["open", "retrying", "resolved"]


class FailureRow(msgspec.Struct, kw_only=True):
    id: UUID
    consumer: str
    doing: str  # the consumer, in words
    position: int
    topic: str
    what: str  # the event's type, in words ("invoice issued")
    aggregate: str  # the kind of what it is about (job, invoice, ...)
    aggregate_id: str
    event_id: UUID | None
    error_type: str
    error: str
    state: FailureState
    attempts: int = 1
    failed_at: str = ""
    updated_at: str = ""
    reason: str = ""  # what the office said when it asked for a retry


def words(topic: str) -> str:
    """``InvoiceIssued`` as "invoice issued"."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", topic).lower()


def evolve_failure(row: FailureRow | None, event: Event) -> FailureRow | None:
    at = iso(event.meta.occurred_at) if event.meta else ""
    match event:
        case ProcessingFailed():
            kind = EVENT_TYPES[event.topic].aggregate if event.topic in EVENT_TYPES else ""
            return FailureRow(
                id=event.id,
                consumer=event.consumer,
                doing=CONSUMERS.get(event.consumer, event.consumer),
                position=event.position,
                topic=event.topic,
                what=words(event.topic),
                aggregate=kind,
                aggregate_id=event.aggregate_id,
                event_id=event.event_id,
                error_type=event.error_type,
                error=event.error,
                state="open",
                failed_at=at,
                updated_at=at,
            )
        case ProcessingRetryRequested() if row is not None:
            return msgspec.structs.replace(row, state="retrying", updated_at=at, reason=event.reason)
        case ProcessingFailedAgain() if row is not None:
            return msgspec.structs.replace(
                row,
                state="open",
                attempts=row.attempts + 1,
                error_type=event.error_type,
                error=event.error,
                updated_at=at,
            )
        case ProcessingResolved() if row is not None:
            return msgspec.structs.replace(row, state="resolved", attempts=row.attempts + 1, updated_at=at)
    return row


def folded(events: Iterable[Event]) -> list[FailureRow]:
    """Each failure as its events leave it, the latest change first."""
    rows: dict[UUID, FailureRow] = {}
    for event in events:
        row = evolve_failure(rows.get(event.id), event)
        if row is not None:
            rows[event.id] = row
    return sorted(rows.values(), key=lambda r: r.updated_at, reverse=True)


async def failures(connection: NatsConnection, states: Iterable[str] = ()) -> list[FailureRow]:
    """Every failure recorded on the stream (those in ``states``, if given), read now."""
    subject = connection.settings.kind_filter("events", "failure")
    events: list[Event] = []
    after = 0
    while True:
        page = await connection.direct_batch({"seq": after + 1, "next_by_subj": subject, "batch": PAGE})
        events.extend(decode_event(m.data) for m in page)
        if len(page) < PAGE:
            break
        after = int((page[-1].headers or {})["Nats-Sequence"])  # a direct get's reply always has it
    wanted = set(states)
    return [row for row in folded(events) if not wanted or row.state in wanted]
