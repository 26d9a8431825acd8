"""The message decider, given/when/then: the office asks for a failed or uncertain message
to be sent again; a message still on its way, or delivered, is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from events.contract import (
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    MessageDelivered,
    MessageEvent,
    MessageQueued,
    RedeliveryRequested,
    RequestRedelivery,
    Role,
)
from services.domain.common import Actor, Context, Forbidden, InvalidTransition, NotFound
from services.domain.notices import Message, decide_message, evolve_message

MESSAGE = UUID("00000000-0000-0000-0000-00000000a001")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))

QUEUED = MessageQueued(
    id=MESSAGE,
    channel="email",
    purpose="invoice",
    recipient="biuro@kowalski.example",
    subject="Faktura FV/2026/000042",
    body="...",
)
ATTEMPTED = DeliveryAttempted(id=MESSAGE, attempt=1, lease_until=NOW + timedelta(minutes=1))
RETRYING = DeliveryFailed(id=MESSAGE, attempt=1, error="421 try later", retry_at=NOW + timedelta(minutes=5))
FAILED = DeliveryFailed(id=MESSAGE, attempt=5, error="550 no such user")
UNCERTAIN = DeliveryUncertain(id=MESSAGE, attempt=1)
DELIVERED = MessageDelivered(id=MESSAGE, attempt=1, detail="250 OK")


def given(*events: MessageEvent) -> Message:
    message = Message(id=MESSAGE)
    for event in events:
        message = evolve_message(message, event)
    return message


@pytest.mark.parametrize(
    ("history", "state"),
    [
        ((QUEUED,), "queued"),
        ((QUEUED, ATTEMPTED), "attempting"),
        ((QUEUED, ATTEMPTED, RETRYING), "retrying"),
        ((QUEUED, ATTEMPTED, FAILED), "failed"),
        ((QUEUED, ATTEMPTED, UNCERTAIN), "uncertain"),
        ((QUEUED, ATTEMPTED, DELIVERED), "delivered"),
        ((QUEUED, ATTEMPTED, FAILED, RedeliveryRequested(id=MESSAGE)), "queued"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_message_s_state_follows_its_deliveries(history: tuple[MessageEvent, ...], state: str) -> None:
    assert given(*history).state == state


@pytest.mark.parametrize("last", [FAILED, UNCERTAIN], ids=["failed", "uncertain"])
def test_the_office_has_a_failed_or_uncertain_message_sent_again(last: MessageEvent) -> None:
    assert decide_message(RequestRedelivery(reason="the address is fixed"), given(QUEUED, ATTEMPTED, last), OFFICE) == [
        RedeliveryRequested(id=MESSAGE, reason="the address is fixed")
    ]
    assert decide_message(RequestRedelivery(), given(QUEUED, ATTEMPTED, last), ADMIN) == [
        RedeliveryRequested(id=MESSAGE)
    ]


@pytest.mark.parametrize(
    ("history", "state"),
    [
        ((QUEUED,), "queued"),
        ((QUEUED, ATTEMPTED), "attempting"),
        ((QUEUED, ATTEMPTED, RETRYING), "retrying"),
        ((QUEUED, ATTEMPTED, DELIVERED), "delivered"),
    ],
    ids=["queued", "attempting", "retrying", "delivered"],
)
def test_a_message_on_its_way_or_delivered_is_not_sent_again(history: tuple[MessageEvent, ...], state: str) -> None:
    with pytest.raises(
        InvalidTransition,
        match=f"cannot send it again: the message is {state} "
        r"\(only a failed or uncertain message is sent again\)",
    ) as refused:
        decide_message(RequestRedelivery(), given(*history), OFFICE)
    assert refused.value.status == state


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
def test_only_the_office_sends_a_message_again(ctx: Context) -> None:
    with pytest.raises(Forbidden, match="only the office may send a message again"):
        decide_message(RequestRedelivery(), given(QUEUED, ATTEMPTED, FAILED), ctx)


def test_a_message_never_queued_is_not_found() -> None:
    with pytest.raises(NotFound, match=f"message {MESSAGE} not found"):
        decide_message(RequestRedelivery(), given(), OFFICE)
