"""When a consumer cannot process an event: which failures trying again can cure (the one
place that says so), how long to wait before trying again, and the failure recorded for
the office when trying again would not help.

Transient: NATS not answering (disconnected, timing out, no stream leader), a mail server
or another outside service not reachable, a database locked or not reachable. These are
tried again with backoff, for as long as they last; nothing is parked. A write JetStream
refuses for good (a message over the size limit) is not transient. Anything else (an
event that does not decode, data a document cannot hold, a bug) is permanent for that
event: it is recorded as ``ProcessingFailed`` and the consumer goes on with the next one.
"""

from __future__ import annotations

import asyncio
import decimal
import socket
import sqlite3
import uuid
from datetime import UTC, datetime
from uuid import UUID

import msgspec
import nats.errors
import nats.js.errors
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent

from events.contract import Event, EventMeta, ProcessingFailed, failure_id, seal
from events.jetstream import TurnedAway, WriteRefused


class Transient(Exception):
    """Raised where an outside service did not answer, or answered "later": tried again."""


TRANSIENT: tuple[type[BaseException], ...] = (
    Transient,
    ConnectionError,  # refused, reset, aborted; aiosmtplib's connect and disconnect errors too
    TimeoutError,  # asyncio's, and aiosmtplib's SMTPTimeoutError
    socket.gaierror,  # a name that did not resolve (DNS down)
    nats.errors.TimeoutError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.FlushTimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    sqlite3.OperationalError,  # "database is locked"
    OperationalError,  # eventsourcing's: a database (or JetStream) not reachable or refusing for now
    InterfaceError,  # eventsourcing's: a database connection lost
)
PERMANENT: tuple[type[BaseException], ...] = (
    TurnedAway,  # credentials the server refuses: waiting will not change its mind
    WriteRefused,  # JetStream refuses the message itself (over the stream's size limit)
    nats.errors.MaxPayloadError,  # a message over the server's max_payload, refused before it is sent
)

BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each further try; then every 30 s


def is_transient(error: BaseException) -> bool:
    """Whether trying the same thing again later may succeed."""
    if isinstance(error, PERMANENT):
        return False
    return isinstance(error, TRANSIENT)


def backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (counting from 1)."""
    return BACKOFF[min(max(failures, 1), len(BACKOFF)) - 1]


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


class _Stamped(msgspec.Struct):
    meta: EventMeta | None = None


def error_text(error: BaseException) -> tuple[str, str]:
    """The error's type and a readable message (some errors say nothing by themselves)."""
    if isinstance(error, decimal.DecimalException):  # its message is a list of signal classes
        message = "a calculation met an amount that is not a finite number (check prices, quantities and rates)"
    else:
        message = " ".join(str(error).split()) or repr(error)
    return type(error).__name__, message[:2000]


def parked(
    consumer: str, position: int, topic: str, aggregate_id: UUID | str, state: bytes, error: BaseException
) -> ProcessingFailed:
    """The failure to record for a stored event that could not be processed."""
    try:
        meta = msgspec.json.decode(state, type=_Stamped).meta
    except msgspec.MsgspecError:
        meta = None  # not even its metadata reads
    error_type, message = error_text(error)
    return ProcessingFailed(
        id=failure_id(consumer, position),
        consumer=consumer,
        position=position,
        event_id=meta.event_id if meta else None,
        topic=topic,
        aggregate_id=str(aggregate_id),
        error_type=error_type,
        error=message,
    )


def sealed(
    consumer: str, failure: uuid.UUID, version: int, last_hash: str, event: Event, command_id: str
) -> list[StoredEvent]:
    """A failure's next event as stored, written by ``consumer``."""
    return seal(
        failure,
        version,
        last_hash,
        [event],
        now=datetime.now(UTC),
        actor_id=consumer,
        actor_role="system",
        command_id=command_id,
        correlation_id=command_id,
    )
