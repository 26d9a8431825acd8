"""Who gets which alerts, and messages the office asks to send again.

A recipient is a user (by user name): the alerts they want, their quiet hours and the push
subscriptions of their devices. Messages are queued and delivered by the notifier; the
office can only ask for a failed or uncertain one to be sent again.
"""

from __future__ import annotations

from typing import assert_never
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec.structs import replace

from events.contract import (
    ChangeNotificationPreferences,
    DeliveryAttempted,
    DeliveryFailed,
    DeliveryUncertain,
    MessageDelivered,
    MessageEvents,
    MessageQueued,
    NotificationPreferencesChanged,
    PushSubscriptionRegistered,
    PushSubscriptionRemoved,
    RecipientEvents,
    RedeliveryRequested,
    RegisterPushSubscription,
    RequestRedelivery,
    Role,
    recipient_id,
)
from services.domain.common import (
    Context,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
)

MAX_SUBSCRIPTIONS = 10  # devices per user; the oldest is dropped beyond this


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    endpoints: tuple[str, ...] = ()


def evolve_recipient(recipient: Recipient, event: RecipientEvents) -> Recipient:
    recipient = replace(recipient, version=recipient.version + 1)
    match event:
        case PushSubscriptionRegistered():
            kept = tuple(e for e in recipient.endpoints if e != event.endpoint)
            return replace(recipient, endpoints=(*kept, event.endpoint))
        case PushSubscriptionRemoved():
            return replace(recipient, endpoints=tuple(e for e in recipient.endpoints if e != event.endpoint))
        case NotificationPreferencesChanged():  # the notifier's to read
            return recipient
        case _:
            assert_never(event)


RecipientCommand = ChangeNotificationPreferences | RegisterPushSubscription


def decide_recipient(command: RecipientCommand, recipient: Recipient, ctx: Context) -> list[object]:
    """A user changes only their own preferences (the id is theirs, derived from their name)."""
    if recipient.id != recipient_id(ctx.actor.id):
        raise Forbidden("you may change only your own notifications")
    match command:
        case ChangeNotificationPreferences():
            try:
                ZoneInfo(command.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise Invalid("timezone", f"unknown time zone {command.timezone!r}") from None
            return [
                NotificationPreferencesChanged(
                    id=recipient.id,
                    user_name=ctx.actor.id,
                    alerts=sorted({a.value for a in command.alerts}),
                    quiet_from=command.quiet_from,
                    quiet_until=command.quiet_until,
                    timezone=command.timezone,
                )
            ]
        case RegisterPushSubscription():
            events: list[object] = []
            others = [e for e in recipient.endpoints if e != command.endpoint]
            if len(others) >= MAX_SUBSCRIPTIONS:
                events.append(
                    PushSubscriptionRemoved(
                        id=recipient.id, endpoint=others[0], reason=f"more than {MAX_SUBSCRIPTIONS} devices"
                    )
                )
            events.append(
                PushSubscriptionRegistered(
                    id=recipient.id,
                    user_name=ctx.actor.id,
                    endpoint=command.endpoint,
                    p256dh=command.keys.p256dh,
                    auth=command.keys.auth,
                )
            )
            return events
    raise ValueError(f"no decision for {type(command).__name__}")


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    state: str = ""  # queued, attempting, delivered, retrying, failed, uncertain


def evolve_message(message: Message, event: MessageEvents) -> Message:
    message = replace(message, version=message.version + 1)
    match event:
        case MessageQueued() | RedeliveryRequested():
            return replace(message, state="queued")
        case DeliveryAttempted():
            return replace(message, state="attempting")
        case MessageDelivered():
            return replace(message, state="delivered")
        case DeliveryFailed():
            return replace(message, state="retrying" if event.retry_at else "failed")
        case DeliveryUncertain():
            return replace(message, state="uncertain")
        case _:
            assert_never(event)


MessageCommand = RequestRedelivery


def decide_message(command: MessageCommand, message: Message, ctx: Context) -> list[object]:
    if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
        raise Forbidden("only the office may send a message again")
    if message.version == 0:
        raise NotFound("message", message.id)
    if message.state not in ("failed", "uncertain"):
        raise InvalidTransition(
            "message", message.state, "send it again", "only a failed or uncertain message is sent again"
        )
    return [RedeliveryRequested(id=message.id, reason=command.reason)]
