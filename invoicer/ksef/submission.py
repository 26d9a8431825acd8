"""What to do next about one Polish document and KSeF, decided purely.

The KSeF aggregate's events fold into a ``Submission`` (``fold``/``evolve``: only facts). What
just happened arrives as data (``Prepare``, ``Hold``, ``Claim``, ``Taken``, ``Accept``,
``Refuse``, ``Fail``, ``StoreUpo``, ``Tick``), each with the clock passed in when it needs
one, and ``decide`` answers with the events to append; ``next_step`` tells the consumer what
the document waits for (send, poll its status, fetch its UPO, warn, or wait until when).

Exactly once. A send is claimed with ``KsefSendStarted`` appended at the aggregate's next
version: of two processes claiming at once the store takes one and refuses the other. A
claim without an outcome is taken over only when it is older than ``send_lease`` (its
claimant died between the send and the answer); sending again is then safe, because KSeF
refuses a duplicate (same seller, type and number) and the client looks the number up
(``Accept(duplicate=True)``). An outcome for a document already accepted or refused decides
nothing, so the number is recorded once. A refusal for content is final: no retry loop.

Offline. A document KSeF does not answer for (not a rate limit) before it was ever taken is
issued offline, mode ``unavailable`` (tryby-offline.md), due by the end of the next business
day in Poland after the day it was found unavailable; it is sent when KSeF answers again,
and ``KsefDeadlineNear`` is recorded once per deadline when it is within
``deadline_warning`` and the document is still not accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Literal, NamedTuple, assert_never
from uuid import UUID

import msgspec
from msgspec import structs

from events.contract.ksef import (
    KsefAccepted,
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefDocumentKind,
    KsefDocumentPrepared,
    KsefEvent,
    KsefEvents,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
)
from events.poland import end_of_next_business_day


class SubmissionSettings(msgspec.Struct, frozen=True, kw_only=True):
    backoff: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0)  # seconds after attempt 1, 2, ...; last repeats
    deadline_warning: timedelta = timedelta(hours=4)  # KsefDeadlineNear this long before an offline deadline
    send_lease: timedelta = timedelta(seconds=60)  # a claim without an outcome older than this is sent again


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One document's way through KSeF so far."""

    id: UUID
    prepared: KsefDocumentPrepared | None = None
    held: KsefHeld | None = None
    attempt: int = 0  # the last attempt claimed or failed
    claimed_at: datetime | None = None  # the open claim (KsefSendStarted without an outcome)
    session_reference: str = ""  # the open claim's session
    sent: KsefSent | None = None  # taken by KSeF, its status not yet known
    retry_at: datetime | None = None  # after the last failed attempt
    accepted: KsefAccepted | None = None
    upo: KsefUpoStored | None = None
    refused: KsefRefused | None = None
    offline: KsefIssuedOffline | None = None
    warned: datetime | None = None  # the deadline KsefDeadlineNear was recorded for

    @property
    def in_flight(self) -> bool:
        return self.claimed_at is not None

    @property
    def label(self) -> str:
        """The document's number, for what is logged."""
        return self.prepared.number if self.prepared is not None else str(self.id)

    @property
    def final(self) -> bool:
        """Nothing more will ever be done: held, refused, or accepted with its UPO."""
        return self.held is not None or self.refused is not None or self.upo is not None


def evolve(state: Submission, event: KsefEvents) -> Submission:
    match event:
        case KsefDocumentPrepared():
            return structs.replace(state, prepared=event)
        case KsefHeld():
            return structs.replace(state, held=event)
        case KsefSendStarted():
            claimed = event.meta.occurred_at if event.meta is not None else datetime.min.replace(tzinfo=UTC)
            return structs.replace(
                state,
                attempt=max(state.attempt, event.attempt),
                claimed_at=claimed,
                session_reference=event.session_reference,
                retry_at=None,
            )
        case KsefAttemptFailed():
            return structs.replace(
                state, attempt=max(state.attempt, event.attempt), claimed_at=None, retry_at=event.retry_at
            )
        case KsefSent():
            return structs.replace(state, claimed_at=None, sent=event, retry_at=None)
        case KsefAccepted():
            return structs.replace(state, claimed_at=None, accepted=event, retry_at=None)
        case KsefUpoStored():
            return structs.replace(state, upo=event)
        case KsefRefused():
            return structs.replace(state, claimed_at=None, refused=event, retry_at=None)
        case KsefIssuedOffline():
            return structs.replace(state, offline=event)
        case KsefDeadlineNear():
            return structs.replace(state, warned=event.deadline)
        case _:
            assert_never(event)


def fold(id: UUID, events: Iterable[KsefEvents]) -> Submission:
    state = Submission(id=id)
    for event in events:
        state = evolve(state, event)
    return state


# --- what happened ---------------------------------------------------------------------------


class Prepare(msgspec.Struct, frozen=True, kw_only=True):
    """The FA(3) file was built and stored."""

    document_kind: KsefDocumentKind
    number: str
    seller_nip: str
    issue_date: date
    fa3_name: str
    fa3_sha256: str
    fa3_size: int
    invoice_type: str = "VAT"


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """The FA(3) file could not be built: the field KSeF would refuse, and why."""

    field: str
    reason: str


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The consumer wants to send now, in this session."""

    now: datetime
    session_reference: str = ""


class Taken(msgspec.Struct, frozen=True, kw_only=True):
    """KSeF took the file for processing."""

    session_reference: str
    invoice_reference: str


class Accept(msgspec.Struct, frozen=True, kw_only=True):
    ksef_number: str
    accepted_at: datetime
    duplicate: bool = False


class Refuse(msgspec.Struct, frozen=True, kw_only=True):
    code: int
    reason: str
    details: list[str] = []


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    """A transient failure. ``unavailable``: KSeF did not answer, or answered that it cannot
    (network, 5xx), as opposed to a rate limit."""

    now: datetime
    reason: str
    retry_after: float | None = None  # seconds, from KSeF's Retry-After
    unavailable: bool = False


class StoreUpo(msgspec.Struct, frozen=True, kw_only=True):
    upo_name: str
    upo_sha256: str
    upo_size: int


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    now: datetime


Happened = Prepare | Hold | Claim | Taken | Accept | Refuse | Fail | StoreUpo | Tick


def decide(what: Happened, state: Submission, settings: SubmissionSettings | None = None) -> list[KsefEvent]:
    settings = settings or SubmissionSettings()
    id = state.id
    done = state.accepted is not None or state.refused is not None
    match what:
        case Prepare():
            if state.prepared is not None or state.held is not None:
                return []
            return [KsefDocumentPrepared(id=id, **structs.asdict(what))]
        case Hold():
            if state.prepared is not None or state.held is not None:
                return []
            return [KsefHeld(id=id, field=what.field, reason=what.reason)]
        case Claim():
            if next_step(state, what.now, settings).action != "send":
                return []
            return [KsefSendStarted(id=id, attempt=state.attempt + 1, session_reference=what.session_reference)]
        case Taken():
            if done or not state.in_flight:
                return []
            return [
                KsefSent(
                    id=id,
                    attempt=state.attempt,
                    session_reference=what.session_reference,
                    invoice_reference=what.invoice_reference,
                )
            ]
        case Accept():
            if done or state.prepared is None:
                return []
            return [
                KsefAccepted(
                    id=id, ksef_number=what.ksef_number, accepted_at=what.accepted_at, duplicate=what.duplicate
                )
            ]
        case Refuse():
            if done or state.prepared is None:
                return []
            return [KsefRefused(id=id, code=what.code, reason=what.reason, details=list(what.details))]
        case Fail():
            if done or state.prepared is None:
                return []
            attempt = state.attempt if state.in_flight or state.sent is not None else state.attempt + 1
            attempt = max(attempt, 1)
            wait = what.retry_after if what.retry_after is not None else backoff(attempt, settings)
            failed: list[KsefEvent] = [
                KsefAttemptFailed(
                    id=id, attempt=attempt, reason=what.reason, retry_at=what.now + timedelta(seconds=wait)
                )
            ]
            if what.unavailable and state.offline is None and state.sent is None:
                failed.append(
                    KsefIssuedOffline(
                        id=id, mode="unavailable", reason=what.reason, deadline=end_of_next_business_day(what.now)
                    )
                )
            return failed
        case StoreUpo():
            if state.accepted is None or state.upo is not None:
                return []
            return [KsefUpoStored(id=id, upo_name=what.upo_name, upo_sha256=what.upo_sha256, upo_size=what.upo_size)]
        case Tick():
            if not _warn_due(state, what.now, settings):
                return []
            assert state.offline is not None
            return [KsefDeadlineNear(id=id, deadline=state.offline.deadline)]
        case _:
            assert_never(what)


# --- what the document waits for -------------------------------------------------------------


class Step(NamedTuple):
    """``action`` now, or ``wait`` until ``at`` (None: nothing will ever be due)."""

    action: Literal["send", "poll", "upo", "warn", "wait"]
    at: datetime | None = None


def next_step(state: Submission, now: datetime, settings: SubmissionSettings | None = None) -> Step:
    settings = settings or SubmissionSettings()
    if state.final or state.prepared is None:
        return Step("wait")
    if state.accepted is not None:
        return Step("upo")
    if _warn_due(state, now, settings):
        return Step("warn")
    warn_at = _warn_at(state, settings)
    if state.claimed_at is not None:  # claimed, no outcome yet: its claimant may have died
        due = state.claimed_at + settings.send_lease
        action: Literal["send", "poll"] = "send"
    elif state.sent is not None:
        due, action = state.retry_at or now, "poll"
    else:
        due, action = state.retry_at or now, "send"
    if due <= now:
        return Step(action)
    return Step("wait", min(due, warn_at) if warn_at is not None else due)


def _warn_at(state: Submission, settings: SubmissionSettings) -> datetime | None:
    if state.offline is None or state.accepted is not None or state.refused is not None:
        return None
    if state.warned == state.offline.deadline:
        return None
    return state.offline.deadline - settings.deadline_warning


def _warn_due(state: Submission, now: datetime, settings: SubmissionSettings) -> bool:
    at = _warn_at(state, settings)
    return at is not None and now >= at


def backoff(attempt: int, settings: SubmissionSettings | None = None) -> float:
    """Seconds to wait after the failed ``attempt`` (1, 2, ...)."""
    steps = (settings or SubmissionSettings()).backoff
    return steps[min(max(attempt, 1), len(steps)) - 1]
