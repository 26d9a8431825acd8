"""The recipient decider, given/when/then: a user's alert preferences and the push
subscriptions of their devices, changed only by that user."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.contract import (
    Alert,
    ChangeNotificationPreferences,
    NotificationPreferencesChanged,
    PushKeys,
    PushSubscriptionRegistered,
    PushSubscriptionRemoved,
    RecipientEvent,
    RegisterPushSubscription,
    Role,
    recipient_id,
)
from services.domain.common import Actor, Context, Forbidden, Invalid
from services.domain.notices import MAX_SUBSCRIPTIONS, Recipient, decide_recipient, evolve_recipient

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TOM = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN))
OLGA = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
KEYS = PushKeys(p256dh="B" + "x" * 86, auth="a" * 22)


def given(*events: RecipientEvent, user: str = "tom") -> Recipient:
    recipient = Recipient(id=recipient_id(user))
    for event in events:
        recipient = evolve_recipient(recipient, event)
    return recipient


def device(n: int) -> str:
    return f"https://push.example/device/{n}"


def registered(n: int) -> PushSubscriptionRegistered:
    return PushSubscriptionRegistered(
        id=recipient_id("tom"), user_name="tom", endpoint=device(n), p256dh=KEYS.p256dh, auth=KEYS.auth
    )


def test_a_user_chooses_their_alerts_and_quiet_hours() -> None:
    command = ChangeNotificationPreferences(
        alerts=[Alert.JOB_CANCELLED, Alert.JOB_ASSIGNED, Alert.JOB_ASSIGNED],
        quiet_from="22:00",
        quiet_until="07:00",
        timezone="Europe/Prague",
    )
    assert decide_recipient(command, given(), TOM) == [
        NotificationPreferencesChanged(
            id=recipient_id("tom"),
            user_name="tom",
            alerts=["job_assigned", "job_cancelled"],  # once each, sorted
            quiet_from="22:00",
            quiet_until="07:00",
            timezone="Europe/Prague",
        )
    ]


def test_no_alerts_at_all_is_a_choice_too() -> None:
    [event] = decide_recipient(ChangeNotificationPreferences(alerts=[]), given(user="olga"), OLGA)
    assert event == NotificationPreferencesChanged(id=recipient_id("olga"), user_name="olga", alerts=[], timezone="UTC")


def test_a_time_zone_must_exist() -> None:
    with pytest.raises(Invalid) as refused:
        decide_recipient(ChangeNotificationPreferences(alerts=[], timezone="Mars/Olympus_Mons"), given(), TOM)
    assert (refused.value.field, refused.value.reason) == ("timezone", "unknown time zone 'Mars/Olympus_Mons'")


def test_users_change_only_their_own_notifications() -> None:
    with pytest.raises(Forbidden, match="only your own notifications"):
        decide_recipient(ChangeNotificationPreferences(alerts=[Alert.JOB_COMPLETED]), given(user="tom"), OLGA)
    with pytest.raises(Forbidden, match="only your own notifications"):
        decide_recipient(RegisterPushSubscription(endpoint=device(1), keys=KEYS), given(user="olga"), TOM)


def test_a_device_subscribes_to_push() -> None:
    assert decide_recipient(RegisterPushSubscription(endpoint=device(1), keys=KEYS), given(), TOM) == [registered(1)]
    assert given(registered(1), registered(2)).endpoints == (device(1), device(2))


def test_a_device_subscribing_again_is_kept_once_as_the_newest() -> None:
    assert decide_recipient(
        RegisterPushSubscription(endpoint=device(1), keys=KEYS), given(registered(1), registered(2)), TOM
    ) == [registered(1)]
    assert given(registered(1), registered(2), registered(1)).endpoints == (device(2), device(1))


def test_beyond_the_limit_the_oldest_device_is_dropped() -> None:
    full = given(*(registered(n) for n in range(MAX_SUBSCRIPTIONS)))
    assert len(full.endpoints) == MAX_SUBSCRIPTIONS
    events = decide_recipient(RegisterPushSubscription(endpoint=device(99), keys=KEYS), full, TOM)
    assert events == [
        PushSubscriptionRemoved(
            id=recipient_id("tom"), endpoint=device(0), reason=f"more than {MAX_SUBSCRIPTIONS} devices"
        ),
        registered(99),
    ]
    after = full
    for event in events:
        after = evolve_recipient(after, event)
    assert after.endpoints == (*(device(n) for n in range(1, MAX_SUBSCRIPTIONS)), device(99))
    # one of the ten subscribing again drops nobody
    assert decide_recipient(RegisterPushSubscription(endpoint=device(5), keys=KEYS), full, TOM) == [registered(5)]
