"""What to do next about one Romanian document and RO e-Factura, decided purely.

The e-Factura aggregate's events fold into a ``Submission`` (``fold``/``evolve``: only
facts). What just happened arrives as data (``Prepare``, ``Claim``, ``Uploaded``,
``Accept``, ``Refuse``, ``Fail``, ``StoreAnswer``), with the clock passed in when it needs
one, and ``decide`` answers with the events to append; ``next_step`` tells the uploader what
the document waits for: ``upload`` it, ``look`` for it in ANAF's message list first,
``poll`` its state, ``download`` ANAF's answer, or ``wait`` until when.

Exactly once. An upload is claimed with ``EfacturaUploadStarted`` appended at the
aggregate's next version: of two processes claiming at once the store takes one and refuses
the other. ANAF has no duplicate check (the same XML uploaded twice is two invoices in the
system), so a claim whose outcome is unknown (its claimant died, or the upload got no answer
once the XML was sent) is never uploaded again blindly: once it is older than ``lease`` the
uploader looks it up in ANAF's list of recent messages (``look``) and records it as uploaded
when it is there (``Uploaded(found=True)``); only when it is not there is it claimed again
(``Claim(looked=True)``). A refusal is final: no retry loop; the office corrects the data
and issues the document again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Literal, NamedTuple, assert_never
from uuid import UUID

import msgspec
from msgspec import structs

from events.contract.efactura import (
    EfacturaAccepted,
    EfacturaAnswerStored,
    EfacturaAttemptFailed,
    EfacturaDocumentKind,
    EfacturaDocumentPrepared,
    EfacturaEvent,
    EfacturaEvents,
    EfacturaRefused,
    EfacturaUploaded,
    EfacturaUploadStarted,
)

# Law 296/2023 (art. 10): an invoice is uploaded within 5 calendar days of its issue date.
UPLOAD_DAYS = 5


class SubmissionSettings(msgspec.Struct, frozen=True, kw_only=True):
    backoff: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0)  # seconds after attempt 1, 2, ...; last repeats
    # A claim without an outcome older than this is looked up in ANAF's message list (its
    # claimant is taken as dead). ANAF lists an upload once it has processed it, usually
    # within minutes: looking sooner could miss it and upload it twice.
    lease: timedelta = timedelta(minutes=10)
    poll_seconds: float = 60.0  # between two state queries of an upload ANAF is processing


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One document's way through e-Factura so far."""

    id: UUID
    prepared: EfacturaDocumentPrepared | None = None
    attempt: int = 0  # the last attempt claimed or failed
    claimed_at: datetime | None = None  # the open claim (EfacturaUploadStarted without an outcome)
    unsure_since: datetime | None = None  # a claim whose XML may be at ANAF with no index known
    uploaded: EfacturaUploaded | None = None
    retry_at: datetime | None = None
    accepted: EfacturaAccepted | None = None
    refused: EfacturaRefused | None = None
    answer: EfacturaAnswerStored | None = None

    @property
    def label(self) -> str:
        return self.prepared.number if self.prepared is not None else str(self.id)

    @property
    def done(self) -> bool:
        return self.accepted is not None or self.refused is not None

    @property
    def final(self) -> bool:
        """Nothing more will ever be done: the answer is stored, or there is none to fetch."""
        if self.answer is not None:
            return True
        return self.refused is not None and not self.refused.download_id


def evolve(state: Submission, event: EfacturaEvents) -> Submission:
    match event:
        case EfacturaDocumentPrepared():
            return structs.replace(state, prepared=event)
        case EfacturaUploadStarted():
            claimed = event.meta.occurred_at if event.meta is not None else datetime.min.replace(tzinfo=UTC)
            return structs.replace(
                state,
                attempt=max(state.attempt, event.attempt),
                claimed_at=claimed,
                unsure_since=claimed,  # a new claim only after looking: the old one is not at ANAF
                retry_at=None,
            )
        case EfacturaAttemptFailed():
            return structs.replace(
                state,
                attempt=max(state.attempt, event.attempt),
                claimed_at=None,
                unsure_since=state.unsure_since if event.uncertain or state.claimed_at is None else None,
                retry_at=event.retry_at,
            )
        case EfacturaUploaded():
            return structs.replace(state, claimed_at=None, unsure_since=None, uploaded=event, retry_at=None)
        case EfacturaAccepted():
            return structs.replace(state, claimed_at=None, unsure_since=None, accepted=event, retry_at=None)
        case EfacturaRefused():
            return structs.replace(state, claimed_at=None, unsure_since=None, refused=event, retry_at=None)
        case EfacturaAnswerStored():
            return structs.replace(state, answer=event)
        case _:
            assert_never(event)


def fold(id: UUID, events: Iterable[EfacturaEvents]) -> Submission:
    state = Submission(id=id)
    for event in events:
        state = evolve(state, event)
    return state


# --- what happened ---------------------------------------------------------------------------


class Prepare(msgspec.Struct, frozen=True, kw_only=True):
    document_kind: EfacturaDocumentKind
    number: str
    cif: str
    issue_date: date
    b2c: bool
    xml_name: str
    xml_sha256: str
    xml_size: int


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The uploader wants to upload now; ``looked``: it looked in ANAF's message list for the
    upload left without an answer, and it is not there."""

    now: datetime
    looked: bool = False


class Uploaded(msgspec.Struct, frozen=True, kw_only=True):
    upload_index: str
    uploaded_at: datetime
    found: bool = False


class Accept(msgspec.Struct, frozen=True, kw_only=True):
    download_id: str


class Refuse(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    messages: list[str] = []
    download_id: str = ""


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    """A transient failure; ``uncertain``: the XML may have reached ANAF."""

    now: datetime
    reason: str
    retry_after: float | None = None
    uncertain: bool = False


class StoreAnswer(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    media_type: str
    sha256: str
    size: int


Happened = Prepare | Claim | Uploaded | Accept | Refuse | Fail | StoreAnswer


def decide(what: Happened, state: Submission, settings: SubmissionSettings | None = None) -> list[EfacturaEvent]:
    settings = settings or SubmissionSettings()
    id = state.id
    match what:
        case Prepare():
            if state.prepared is not None:
                return []
            return [EfacturaDocumentPrepared(id=id, **structs.asdict(what))]
        case Claim():
            step = next_step(state, what.now, settings).action
            if step == "upload" or (step == "look" and what.looked):
                return [EfacturaUploadStarted(id=id, attempt=state.attempt + 1)]
            return []
        case Uploaded():
            if state.done or state.uploaded is not None or state.unsure_since is None:
                return []
            return [
                EfacturaUploaded(
                    id=id,
                    attempt=state.attempt,
                    upload_index=what.upload_index,
                    uploaded_at=what.uploaded_at,
                    found=what.found,
                )
            ]
        case Accept():
            if state.done or state.uploaded is None:
                return []
            return [EfacturaAccepted(id=id, upload_index=state.uploaded.upload_index, download_id=what.download_id)]
        case Refuse():
            if state.done or state.prepared is None:
                return []
            return [
                EfacturaRefused(
                    id=id,
                    upload_index=state.uploaded.upload_index if state.uploaded is not None else "",
                    download_id=what.download_id,
                    state=what.state,
                    messages=list(what.messages),
                )
            ]
        case Fail():
            if state.done or state.prepared is None:
                return []
            attempt = max(state.attempt, 1)
            wait = what.retry_after if what.retry_after is not None else backoff(attempt, settings)
            return [
                EfacturaAttemptFailed(
                    id=id,
                    attempt=attempt,
                    reason=what.reason,
                    retry_at=what.now + timedelta(seconds=wait),
                    uncertain=what.uncertain and state.uploaded is None,
                )
            ]
        case StoreAnswer():
            if not state.done or state.answer is not None:
                return []
            return [EfacturaAnswerStored(id=id, **structs.asdict(what))]
        case _:
            assert_never(what)


# --- what the document waits for -------------------------------------------------------------


class Step(NamedTuple):
    """``action`` now, or ``wait`` until ``at`` (None: nothing will ever be due)."""

    action: Literal["upload", "look", "poll", "download", "wait"]
    at: datetime | None = None


def next_step(state: Submission, now: datetime, settings: SubmissionSettings | None = None) -> Step:
    settings = settings or SubmissionSettings()
    if state.final or state.prepared is None:
        return Step("wait")
    action: Literal["upload", "look", "poll", "download"]
    if state.done:
        due, action = state.retry_at or now, "download"
    elif state.uploaded is not None:
        due, action = state.retry_at or now, "poll"
    elif state.claimed_at is not None:  # claimed, no outcome: its claimant may still be uploading
        due, action = state.claimed_at + settings.lease, "look"
    elif state.unsure_since is not None:  # the XML may be at ANAF: look before uploading again
        due, action = max(state.retry_at or now, state.unsure_since + settings.lease), "look"
    else:
        due, action = state.retry_at or now, "upload"
    if due <= now:
        return Step(action)
    return Step("wait", due)


def backoff(attempt: int, settings: SubmissionSettings | None = None) -> float:
    """Seconds to wait after the failed ``attempt`` (1, 2, ...)."""
    steps = (settings or SubmissionSettings()).backoff
    return steps[min(max(attempt, 1), len(steps)) - 1]


def upload_deadline(issue_date: date) -> date:
    """The last calendar day the document may be uploaded on."""
    return issue_date + timedelta(days=UPLOAD_DAYS)
