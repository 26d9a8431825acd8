"""Notifications: one aggregate per message, its id derived from what caused it and who
gets it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

from events.contract.base import Command, Event
from events.contract.values import lines


class MessageEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "message"


class MessageQueued(MessageEvent, frozen=True, kw_only=True, tag=True):
    """A message the notifier will deliver: an email to a customer or the office, or a push
    alert to a user's devices (and open clients)."""

    channel: str  # email, push
    purpose: str  # invoice, credit_note, reminder, escalation, job_assigned, ...
    recipient: str  # an email address; for push, a user name
    subject: str
    body: str
    language: str = "en"
    url: str = ""  # where the message leads
    about_kind: str = ""  # invoice, credit_note, job
    about_id: UUID | None = None
    attachments: list[str] = []  # names in the documents object store
    not_before: datetime | None = None  # held over the recipient's quiet hours
    cause_position: int = 0  # the stream position of the event it tells of: read models at it show it


class DeliveryAttempted(MessageEvent, frozen=True, kw_only=True, tag=True):
    """A sender has taken the message: no other sends it while the lease runs."""

    attempt: int
    lease_until: datetime


class MessageDelivered(MessageEvent, frozen=True, kw_only=True, tag=True):
    attempt: int
    detail: str = ""  # the SMTP server's reply; the push services' statuses


class DeliveryFailed(MessageEvent, frozen=True, kw_only=True, tag=True):
    """An attempt failed; tried again at ``retry_at``, or, without one, given up: the office sees it."""

    attempt: int
    error: str
    retry_at: datetime | None = None


class DeliveryUncertain(MessageEvent, frozen=True, kw_only=True, tag=True):
    """The sender stopped during an attempt, so whether it went out is unknown. Not sent
    again on its own (a customer must not get an invoice twice): the office decides."""

    attempt: int


class RedeliveryRequested(MessageEvent, frozen=True, kw_only=True, tag=True):
    """The office asks for a failed or uncertain message to be sent again."""

    reason: str = ""


MessageEvents = (
    MessageQueued | DeliveryAttempted | MessageDelivered | DeliveryFailed | DeliveryUncertain | RedeliveryRequested
)


class RequestRedelivery(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, lines(500)] = ""
