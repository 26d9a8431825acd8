"""The e-Factura submission decision, given/when/then: given a document's e-Factura events,
when something happens (the XML built, a claim, ANAF's answer, a lookup, the clock), then
the events to append, and what the document waits for next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from events.contract.base import EventMeta
from events.contract.efactura import (
    EfacturaAccepted,
    EfacturaAnswerStored,
    EfacturaAttemptFailed,
    EfacturaDocumentPrepared,
    EfacturaEvent,
    EfacturaEvents,
    EfacturaRefused,
    EfacturaUploaded,
    EfacturaUploadStarted,
    efactura_id,
)
from events.contract.ksef import ksef_id
from invoicer.efactura.submission import (
    Accept,
    Claim,
    Fail,
    Happened,
    Prepare,
    Refuse,
    Step,
    StoreAnswer,
    SubmissionSettings,
    Uploaded,
    backoff,
    decide,
    fold,
    next_step,
    upload_deadline,
)

DOC = UUID("00000000-0000-0000-0000-00000000d0c2")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SETTINGS = SubmissionSettings()
PREPARE = Prepare(
    document_kind="invoice",
    number="FV/2026/000007",
    cif="18547290",
    issue_date=date(2026, 12, 3),
    b2c=False,
    xml_name="efactura/x.xml",
    xml_sha256="ab" * 32,
    xml_size=3000,
)
PREPARED = EfacturaDocumentPrepared(id=DOC, **{f: getattr(PREPARE, f) for f in PREPARE.__struct_fields__})
UPLOADED = EfacturaUploaded(id=DOC, attempt=1, upload_index="5001120362", uploaded_at=NOW)
ACCEPTED = EfacturaAccepted(id=DOC, upload_index="5001120362", download_id="3001293434")


def at(moment: datetime) -> EventMeta:
    return EventMeta(
        event_id=uuid4(),
        occurred_at=moment,
        actor_id="invoicer-efactura",
        actor_role="system",
        command_id="",
        correlation_id="",
    )


def started(attempt: int = 1, moment: datetime = NOW) -> EfacturaUploadStarted:
    return EfacturaUploadStarted(id=DOC, attempt=attempt, meta=at(moment))


def when(what: Happened, *given: EfacturaEvents) -> list[EfacturaEvent]:
    return decide(what, fold(DOC, given), SETTINGS)


def step(now: datetime, *given: EfacturaEvents) -> Step:
    return next_step(fold(DOC, given), now, SETTINGS)


def test_the_aggregate_is_the_documents_own_derived_apart_from_its_ksef_one() -> None:
    assert efactura_id(DOC) == efactura_id(DOC)
    assert efactura_id(DOC) not in (DOC, ksef_id(DOC))


def test_a_new_document_is_prepared_once_and_nothing_happens_before() -> None:
    assert when(PREPARE) == [PREPARED]
    assert when(PREPARE, PREPARED) == []
    assert when(Claim(now=NOW)) == []
    assert step(NOW) == Step("wait")


def test_a_prepared_document_is_claimed_once_then_uploaded_and_polled() -> None:
    assert step(NOW, PREPARED) == Step("upload")
    assert when(Claim(now=NOW), PREPARED) == [EfacturaUploadStarted(id=DOC, attempt=1)]
    assert when(Claim(now=NOW), PREPARED, started()) == []  # the claim is open: nobody else uploads
    assert when(Uploaded(upload_index="5001120362", uploaded_at=NOW), PREPARED, started()) == [UPLOADED]
    assert step(NOW, PREPARED, started(), UPLOADED) == Step("poll")
    assert when(Accept(download_id="3001293434"), PREPARED, started(), UPLOADED) == [ACCEPTED]
    assert step(NOW, PREPARED, started(), UPLOADED, ACCEPTED) == Step("download")
    answer = StoreAnswer(name="efactura/x.zip", media_type="application/zip", sha256="cd" * 32, size=10)
    stored = EfacturaAnswerStored(
        id=DOC, name="efactura/x.zip", media_type="application/zip", sha256="cd" * 32, size=10
    )
    assert when(answer, PREPARED, started(), UPLOADED, ACCEPTED) == [stored]
    assert step(NOW, PREPARED, started(), UPLOADED, ACCEPTED, stored) == Step("wait")
    assert when(answer, PREPARED, started(), UPLOADED, ACCEPTED, stored) == []


def test_an_answer_for_a_document_already_decided_decides_nothing() -> None:
    given = (PREPARED, started(), UPLOADED, ACCEPTED)
    assert when(Accept(download_id="other"), *given) == []
    assert when(Refuse(state="nok"), *given) == []
    assert when(Uploaded(upload_index="5001120399", uploaded_at=NOW), *given) == []
    assert when(Fail(now=NOW, reason="down"), *given) == []


def test_a_claim_left_without_an_answer_is_looked_for_after_its_lease_never_uploaded_blindly() -> None:
    given = (PREPARED, started(moment=NOW))
    assert step(NOW + SETTINGS.lease - timedelta(seconds=1), *given) == Step("wait", NOW + SETTINGS.lease)
    later = NOW + SETTINGS.lease
    assert step(later, *given) == Step("look")
    assert when(Claim(now=later), *given) == []  # not without looking
    found = Uploaded(upload_index="5001120362", uploaded_at=NOW, found=True)
    assert when(found, *given) == [
        EfacturaUploaded(id=DOC, attempt=1, upload_index="5001120362", uploaded_at=NOW, found=True)
    ]
    assert when(Claim(now=later, looked=True), *given) == [EfacturaUploadStarted(id=DOC, attempt=2)]


def test_a_failure_before_anything_left_uploads_again_after_the_backoff() -> None:
    given = (PREPARED, started())
    (failed,) = when(Fail(now=NOW, reason="connection refused"), *given)
    assert failed == EfacturaAttemptFailed(
        id=DOC, attempt=1, reason="connection refused", retry_at=NOW + timedelta(seconds=backoff(1))
    )
    assert step(failed.retry_at - timedelta(seconds=1), *given, failed) == Step("wait", failed.retry_at)
    assert step(failed.retry_at, *given, failed) == Step("upload")
    assert when(Claim(now=failed.retry_at), *given, failed) == [EfacturaUploadStarted(id=DOC, attempt=2)]


def test_a_failure_after_the_xml_was_sent_is_looked_for_before_uploading_again() -> None:
    given = (PREPARED, started())
    (failed,) = when(Fail(now=NOW, reason="timed out", uncertain=True), *given)
    assert isinstance(failed, EfacturaAttemptFailed) and failed.uncertain
    assert step(NOW + SETTINGS.lease, *given, failed) == Step("look")
    assert when(Claim(now=NOW + SETTINGS.lease), *given, failed) == []
    # looked for and not found, claimed again, and refused before it left: uploaded again
    again = EfacturaAttemptFailed(id=DOC, attempt=2, reason="connection refused", retry_at=NOW + SETTINGS.lease)
    assert step(NOW + SETTINGS.lease, *given, failed, started(2), again) == Step("upload")
    # the second one timed out too: looked for again
    unsure = EfacturaAttemptFailed(id=DOC, attempt=2, reason="timed out", retry_at=NOW, uncertain=True)
    assert step(NOW + 2 * SETTINGS.lease, *given, failed, started(2, NOW + SETTINGS.lease), unsure) == Step("look")


def test_a_refusal_is_final_with_anafs_messages_and_its_error_list_fetched() -> None:
    refuse = Refuse(state="nok", messages=["E: BR-RO-010"], download_id="3001293435")
    given = (PREPARED, started(), UPLOADED)
    (refused,) = when(refuse, *given)
    assert refused == EfacturaRefused(
        id=DOC, upload_index="5001120362", download_id="3001293435", state="nok", messages=["E: BR-RO-010"]
    )
    assert step(NOW, *given, refused) == Step("download")
    assert when(Claim(now=NOW + timedelta(days=1)), *given, refused) == []
    at_upload = EfacturaRefused(id=DOC, state="upload", messages=["Fisierul nu este UBL"])
    assert when(Refuse(state="upload", messages=["Fisierul nu este UBL"]), PREPARED, started()) == [at_upload]
    assert step(NOW, PREPARED, started(), at_upload) == Step("wait")  # nothing to fetch


def test_polling_waits_after_a_failure() -> None:
    given = (PREPARED, started(), UPLOADED)
    (failed,) = when(Fail(now=NOW, reason="503", retry_after=7), *given)
    assert isinstance(failed, EfacturaAttemptFailed) and not failed.uncertain
    assert failed.retry_at == NOW + timedelta(seconds=7)
    assert step(NOW, *given, failed) == Step("wait", failed.retry_at)
    assert step(failed.retry_at, *given, failed) == Step("poll")


def test_the_upload_is_due_within_five_calendar_days() -> None:
    assert upload_deadline(date(2026, 12, 29)) == date(2027, 1, 3)
