"""Recipients: a user's alert preferences and push subscriptions (the id is derived from
the user name)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import Meta, Struct

from events.contract.base import Command, Event
from events.contract.values import CONTROLS, TimeZone, whole

RECIPIENTS = UUID("3f3a9a0e-6a43-4f0e-8f57-0b8c4f3f2d11")


def recipient_id(user_name: str) -> UUID:
    """A user's notification settings live in an aggregate whose id derives from their name."""
    return uuid.uuid5(RECIPIENTS, user_name)


class RecipientEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "recipient"


class NotificationPreferencesChanged(RecipientEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    alerts: list[str]
    quiet_from: str = ""  # HH:MM local time; push alerts wait until quiet_until
    quiet_until: str = ""
    timezone: str = "UTC"


class PushSubscriptionRegistered(RecipientEvent, frozen=True, kw_only=True, tag=True):
    user_name: str
    endpoint: str
    p256dh: str
    auth: str


class PushSubscriptionRemoved(RecipientEvent, frozen=True, kw_only=True, tag=True):
    endpoint: str
    reason: str = ""


RecipientEvents = NotificationPreferencesChanged | PushSubscriptionRegistered | PushSubscriptionRemoved


class Alert(enum.StrEnum):
    """The push alerts a user can have. By default a technician gets the first three, the
    office the last two."""

    JOB_ASSIGNED = "job_assigned"
    JOB_RESCHEDULED = "job_rescheduled"
    JOB_CANCELLED = "job_cancelled"
    JOB_COMPLETED = "job_completed"
    SLA_AT_RISK = "sla_at_risk"


ClockTime = Annotated[str, Meta(pattern=whole(r"(([01][0-9]|2[0-3]):[0-5][0-9])?"))]  # HH:MM, or none


class ChangeNotificationPreferences(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    alerts: list[Alert]
    quiet_from: ClockTime = ""
    quiet_until: ClockTime = ""
    timezone: TimeZone = "UTC"

    def __post_init__(self) -> None:
        if bool(self.quiet_from) != bool(self.quiet_until):
            raise ValueError("quiet hours need both `quiet_from` and `quiet_until`")


class PushKeys(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    p256dh: Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_-]{80,100}={0,2}"))]
    auth: Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_-]{16,24}={0,2}"))]


class RegisterPushSubscription(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the browser's ``PushSubscription.toJSON()`` gives."""

    endpoint: Annotated[
        str,
        Meta(
            max_length=1000,
            pattern=whole(rf"https://[^\s{CONTROLS}]+|http://(127\.0\.0\.1|localhost)(:[0-9]+)?/[^\s{CONTROLS}]*"),
        ),
    ]
    keys: PushKeys
    expirationTime: int | None = None
