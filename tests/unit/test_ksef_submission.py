"""The KSeF submission decision, given/when/then: given a document's KSeF events, when
something happens (the FA(3) built, a claim, KSeF's answer, the clock), then the events to
append, and what the document waits for next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from events.contract.base import EventMeta
from events.contract.ksef import (
    KsefAccepted,
    KsefAttemptFailed,
    KsefDeadlineNear,
    KsefDocumentPrepared,
    KsefEvents,
    KsefHeld,
    KsefIssuedOffline,
    KsefRefused,
    KsefSendStarted,
    KsefSent,
    KsefUpoStored,
)
from events.poland import easter, end_of_next_business_day
from invoicer.ksef.submission import (
    Accept,
    Claim,
    Fail,
    Happened,
    Hold,
    Prepare,
    Refuse,
    Step,
    StoreUpo,
    SubmissionSettings,
    Taken,
    Tick,
    backoff,
    decide,
    fold,
    next_step,
)

DOC = UUID("00000000-0000-0000-0000-00000000d0c1")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday
SETTINGS = SubmissionSettings()
PREPARE = Prepare(
    document_kind="invoice",
    number="FV/2026/000123",
    seller_nip="5261040828",
    issue_date=date(2026, 12, 3),
    fa3_name="ksef/fa3.xml",
    fa3_sha256="ab" * 32,
    fa3_size=2048,
)
PREPARED = KsefDocumentPrepared(id=DOC, **{f: getattr(PREPARE, f) for f in PREPARE.__struct_fields__})
NUMBER = "5261040828-20261203-0100A0B1C2D3-4E"


def at(moment: datetime) -> EventMeta:
    return EventMeta(
        event_id=uuid4(),
        occurred_at=moment,
        actor_id="invoicer-ksef",
        actor_role="system",
        command_id="",
        correlation_id="",
    )


def started(attempt: int = 1, moment: datetime = NOW) -> KsefSendStarted:
    return KsefSendStarted(id=DOC, attempt=attempt, session_reference="S1", meta=at(moment))


SENT = KsefSent(id=DOC, attempt=1, session_reference="S1", invoice_reference="I1")
ACCEPTED = KsefAccepted(id=DOC, ksef_number=NUMBER, accepted_at=NOW)


def when(what: Happened, *given: KsefEvents) -> list:
    return decide(what, fold(DOC, given), SETTINGS)


def step(now: datetime, *given: KsefEvents) -> Step:
    return next_step(fold(DOC, given), now, SETTINGS)


# --- preparing --------------------------------------------------------------------------------


def test_a_new_document_is_prepared_once() -> None:
    assert when(PREPARE) == [PREPARED]
    assert when(PREPARE, PREPARED) == []


def test_a_document_that_would_not_pass_is_held_and_never_sent() -> None:
    held = KsefHeld(id=DOC, field="seller.vat_id", reason="not a valid NIP")
    assert when(Hold(field="seller.vat_id", reason="not a valid NIP")) == [held]
    assert when(PREPARE, held) == []
    assert when(Claim(now=NOW), held) == []
    assert step(NOW, held) == Step("wait")


def test_nothing_is_sent_before_it_is_prepared() -> None:
    assert when(Claim(now=NOW)) == []
    assert when(Accept(ksef_number=NUMBER, accepted_at=NOW)) == []


# --- claiming and sending -----------------------------------------------------------------------


def test_a_prepared_document_is_claimed_with_the_next_attempt() -> None:
    assert step(NOW, PREPARED) == Step("send")
    assert when(Claim(now=NOW, session_reference="S1"), PREPARED) == [
        KsefSendStarted(id=DOC, attempt=1, session_reference="S1")
    ]


def test_a_fresh_claim_is_not_claimed_again_but_a_stale_one_is() -> None:
    claim = started(1, NOW)
    assert when(Claim(now=NOW + timedelta(seconds=5)), PREPARED, claim) == []
    assert step(NOW + timedelta(seconds=5), PREPARED, claim) == Step("wait", NOW + SETTINGS.send_lease)
    later = NOW + SETTINGS.send_lease
    assert when(Claim(now=later, session_reference="S2"), PREPARED, claim) == [
        KsefSendStarted(id=DOC, attempt=2, session_reference="S2")
    ]


def test_taken_by_ksef_then_its_status_is_polled() -> None:
    assert when(Taken(session_reference="S1", invoice_reference="I1"), PREPARED, started()) == [SENT]
    assert step(NOW, PREPARED, started(), SENT) == Step("poll")
    assert when(Taken(session_reference="S1", invoice_reference="I1"), PREPARED) == []  # no claim, no send


def test_accepted_with_its_number_then_the_upo_then_nothing() -> None:
    assert when(Accept(ksef_number=NUMBER, accepted_at=NOW), PREPARED, started(), SENT) == [ACCEPTED]
    assert step(NOW, PREPARED, started(), SENT, ACCEPTED) == Step("upo")
    upo = KsefUpoStored(id=DOC, upo_name="ksef/upo.xml", upo_sha256="cd" * 32, upo_size=900)
    assert when(StoreUpo(upo_name="ksef/upo.xml", upo_sha256="cd" * 32, upo_size=900), PREPARED, ACCEPTED) == [upo]
    assert when(StoreUpo(upo_name="x", upo_sha256="y", upo_size=1), PREPARED, ACCEPTED, upo) == []
    assert step(NOW, PREPARED, ACCEPTED, upo) == Step("wait")


# --- exactly once ------------------------------------------------------------------------------


def test_after_a_restart_the_resend_finds_the_duplicate_and_records_its_number_once() -> None:
    claim = started(1, NOW)
    later = NOW + SETTINGS.send_lease + timedelta(seconds=1)
    resend = when(Claim(now=later, session_reference="S2"), PREPARED, claim)
    assert resend == [KsefSendStarted(id=DOC, attempt=2, session_reference="S2")]
    duplicate = Accept(ksef_number=NUMBER, accepted_at=NOW, duplicate=True)
    assert when(duplicate, PREPARED, claim, started(2, later)) == [
        KsefAccepted(id=DOC, ksef_number=NUMBER, accepted_at=NOW, duplicate=True)
    ]


def test_an_answer_for_a_document_already_accepted_or_refused_records_nothing() -> None:
    refused = KsefRefused(id=DOC, code=450, reason="Błąd weryfikacji semantyki")
    for final in (ACCEPTED, refused):
        assert when(Accept(ksef_number=NUMBER, accepted_at=NOW, duplicate=True), PREPARED, final) == []
        assert when(Refuse(code=440, reason="Duplikat faktury"), PREPARED, final) == []
        assert when(Fail(now=NOW, reason="timeout"), PREPARED, final) == []
        assert when(Claim(now=NOW), PREPARED, final) == []


def test_a_refusal_for_content_is_final() -> None:
    refused = KsefRefused(id=DOC, code=450, reason="Błąd weryfikacji semantyki", details=["P_15"])
    assert when(Refuse(code=450, reason="Błąd weryfikacji semantyki", details=["P_15"]), PREPARED, started(), SENT) == [
        refused
    ]
    assert step(NOW + timedelta(days=1), PREPARED, started(), SENT, refused) == Step("wait")


# --- transient failures ------------------------------------------------------------------------


def test_a_transient_failure_is_tried_again_after_the_backoff_each_attempt_an_event() -> None:
    assert when(Fail(now=NOW, reason="429"), PREPARED, started(1)) == [
        KsefAttemptFailed(id=DOC, attempt=1, reason="429", retry_at=NOW + timedelta(seconds=backoff(1)))
    ]
    failed = KsefAttemptFailed(id=DOC, attempt=1, reason="429", retry_at=NOW + timedelta(seconds=5))
    assert step(NOW + timedelta(seconds=4), PREPARED, started(1), failed) == Step("wait", failed.retry_at)
    assert step(failed.retry_at, PREPARED, started(1), failed) == Step("send")
    assert when(Claim(now=failed.retry_at), PREPARED, started(1), failed) == [
        KsefSendStarted(id=DOC, attempt=2, session_reference="")
    ]
    again = when(Fail(now=NOW, reason="429"), PREPARED, started(1), failed, started(2))
    assert again == [KsefAttemptFailed(id=DOC, attempt=2, reason="429", retry_at=NOW + timedelta(seconds=30))]


def test_retry_after_from_ksef_wins_over_the_backoff() -> None:
    assert when(Fail(now=NOW, reason="429 Too Many Requests", retry_after=90), PREPARED, started()) == [
        KsefAttemptFailed(id=DOC, attempt=1, reason="429 Too Many Requests", retry_at=NOW + timedelta(seconds=90))
    ]


def test_the_backoff_grows_and_then_stays() -> None:
    assert [backoff(n) for n in range(1, 8)] == [5, 30, 120, 600, 1800, 1800, 1800]


def test_a_failure_before_any_claim_counts_as_the_next_attempt() -> None:
    failed = when(Fail(now=NOW, reason="could not open a session"), PREPARED)
    assert [type(e) for e in failed] == [KsefAttemptFailed]
    assert failed[0].attempt == 1


def test_a_failed_status_poll_polls_again_and_never_resends() -> None:
    failed = when(Fail(now=NOW, reason="timeout", unavailable=True), PREPARED, started(), SENT)
    assert failed == [KsefAttemptFailed(id=DOC, attempt=1, reason="timeout", retry_at=NOW + timedelta(seconds=5))]
    assert step(NOW + timedelta(seconds=5), PREPARED, started(), SENT, *failed) == Step("poll")


# --- offline -----------------------------------------------------------------------------------


def test_ksef_unavailable_for_a_new_document_issues_it_offline_due_the_next_business_day() -> None:
    events = when(Fail(now=NOW, reason="connection refused", unavailable=True), PREPARED, started())
    deadline = datetime(2026, 12, 4, 22, 59, 59, tzinfo=UTC)  # Friday 23:59:59 in Warsaw (CET)
    assert events == [
        KsefAttemptFailed(id=DOC, attempt=1, reason="connection refused", retry_at=NOW + timedelta(seconds=5)),
        KsefIssuedOffline(id=DOC, mode="unavailable", reason="connection refused", deadline=deadline),
    ]
    # offline once: the next failure is only an attempt
    again = when(Fail(now=NOW, reason="connection refused", unavailable=True), PREPARED, started(), *events, started(2))
    assert [type(e) for e in again] == [KsefAttemptFailed]


def test_a_rate_limit_is_no_unavailability() -> None:
    events = when(Fail(now=NOW, reason="429", retry_after=10), PREPARED, started())
    assert [type(e) for e in events] == [KsefAttemptFailed]


def test_an_offline_document_is_sent_when_ksef_answers_and_accepted() -> None:
    failed, offline = when(Fail(now=NOW, reason="down", unavailable=True), PREPARED, started())
    given = (PREPARED, started(), failed, offline)
    assert step(failed.retry_at, *given) == Step("send")
    assert when(Claim(now=failed.retry_at, session_reference="S2"), *given) == [
        KsefSendStarted(id=DOC, attempt=2, session_reference="S2")
    ]
    assert when(Accept(ksef_number=NUMBER, accepted_at=NOW), *given, started(2)) == [ACCEPTED]


def test_the_office_is_warned_once_as_the_offline_deadline_nears() -> None:
    deadline = datetime(2026, 12, 4, 22, 59, 59, tzinfo=UTC)
    offline = KsefIssuedOffline(id=DOC, mode="unavailable", reason="down", deadline=deadline)
    failed = KsefAttemptFailed(id=DOC, attempt=1, reason="down", retry_at=deadline)  # waiting long
    given = (PREPARED, started(), failed, offline)
    early = deadline - SETTINGS.deadline_warning - timedelta(seconds=1)
    assert when(Tick(now=early), *given) == []
    assert step(early, *given) == Step("wait", deadline - SETTINGS.deadline_warning)
    near = deadline - SETTINGS.deadline_warning
    warning = KsefDeadlineNear(id=DOC, deadline=deadline)
    assert step(near, *given) == Step("warn")
    assert when(Tick(now=near), *given) == [warning]
    assert when(Tick(now=near), *given, warning) == []
    assert step(near, *given, warning) == Step("wait", deadline)
    assert when(Tick(now=near), *given, ACCEPTED) == []  # accepted in time: no warning


def test_the_warning_is_a_setting() -> None:
    deadline = datetime(2026, 12, 4, 22, 59, 59, tzinfo=UTC)
    offline = KsefIssuedOffline(id=DOC, mode="unavailable", reason="down", deadline=deadline)
    one_hour = SubmissionSettings(deadline_warning=timedelta(hours=1))
    state = fold(DOC, [PREPARED, offline])
    assert decide(Tick(now=deadline - timedelta(hours=2)), state, one_hour) == []
    assert decide(Tick(now=deadline - timedelta(hours=1)), state, one_hour) == [
        KsefDeadlineNear(id=DOC, deadline=deadline)
    ]


# --- business days -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "deadline_day"),
    [
        (datetime(2026, 12, 3, 10, tzinfo=UTC), date(2026, 12, 4)),  # Thursday -> Friday
        (datetime(2026, 12, 4, 10, tzinfo=UTC), date(2026, 12, 7)),  # Friday -> Monday
        (datetime(2026, 12, 4, 23, 30, tzinfo=UTC), date(2026, 12, 7)),  # Saturday already in Warsaw -> Monday
        (datetime(2026, 12, 23, 10, tzinfo=UTC), date(2026, 12, 28)),  # Christmas Eve, Christmas, 26th, Sunday
        (datetime(2026, 4, 3, 10, tzinfo=UTC), date(2026, 4, 7)),  # Good Friday -> past Easter Monday
        (datetime(2026, 11, 10, 10, tzinfo=UTC), date(2026, 11, 12)),  # Independence Day
        (datetime(2026, 6, 3, 10, tzinfo=UTC), date(2026, 6, 5)),  # Corpus Christi (Easter + 60)
    ],
)
def test_the_deadline_is_the_end_of_the_next_business_day_in_poland(now: datetime, deadline_day: date) -> None:
    from events.poland import POLAND

    deadline = end_of_next_business_day(now)
    assert deadline.tzinfo is UTC
    local = deadline.astimezone(POLAND)
    assert (local.date(), local.hour, local.minute) == (deadline_day, 23, 59)


def test_easter() -> None:
    assert [easter(y) for y in (2025, 2026, 2027)] == [date(2025, 4, 20), date(2026, 4, 5), date(2027, 3, 28)]
