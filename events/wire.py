"""jobstream's own events as the stream stores them: the codec, the hash chain and ``seal``.

An event is stored as readable JSON (msgspec, decimals as strings, business days as ISO
dates) under its topic, the bare class name. ``TOPIC_AGGREGATES`` says which aggregate
each topic belongs to: the store (events.jetstream) asks for it by name when it is set up
(``AGGREGATES_TOPIC``), so the store does not import the contract and the contract does
not import the store.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from events.contract import EVENT_TYPES, AnyEvent
from events.contract.base import Event, EventMeta
from events.contract.values import Day

# The topic of each of jobstream's events -> the aggregate token of its subject.
TOPIC_AGGREGATES: Mapping[str, str] = MappingProxyType({name: cls.aggregate for name, cls in EVENT_TYPES.items()})


def _encode_day(value: object) -> object:
    if isinstance(value, Day):
        return value.written
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def _decode_day(kind: type, value: object) -> object:
    if kind is Day and isinstance(value, str):
        return Day.read(value)
    raise NotImplementedError(f"cannot decode {kind.__name__}")


_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=_encode_day)
_decoder = msgspec.json.Decoder(AnyEvent, dec_hook=_decode_day)


def encode_event(event: Event) -> bytes:
    """The event as readable JSON, as it is stored in the stream."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    return _decoder.decode(data)


def originator_uuid(stored: StoredEvent) -> UUID:
    """The id of the aggregate a stored event (or a notification) is of. The library allows
    string ids too; every one of jobstream's aggregates is named by a UUID."""
    originator_id = stored.originator_id
    if not isinstance(originator_id, UUID):
        raise TypeError(f"not one of jobstream's aggregates: {originator_id!r}")
    return originator_id


def topic_of(event: Event) -> str:
    return type(event).__name__


def event_hash(state: bytes) -> str:
    """The SHA-256 of a stored event's bytes: the next event of its aggregate carries it as
    ``previous_hash``, so ``jobstream audit verify`` can prove the chain unbroken."""
    return hashlib.sha256(state).hexdigest()


def seal(
    aggregate_id: UUID,
    version: int,
    previous_hash: str,
    events: Sequence[Event],
    *,
    now: datetime,
    actor_id: str,
    actor_role: str,
    command_id: str,
    correlation_id: str,
) -> list[StoredEvent]:
    """Events of one aggregate, as stored: stamped with their metadata, numbered from the
    aggregate's ``version`` and chained to its last event's hash."""
    stored = []
    for event in events:
        version += 1
        meta = EventMeta(
            event_id=uuid.uuid4(),
            occurred_at=now,
            actor_id=actor_id,
            actor_role=actor_role,
            command_id=command_id,
            correlation_id=correlation_id,
            previous_hash=previous_hash,
        )
        state = encode_event(msgspec.structs.replace(event, meta=meta))
        stored.append(StoredEvent(aggregate_id, version, topic_of(event), state))
        previous_hash = event_hash(state)
    return stored
