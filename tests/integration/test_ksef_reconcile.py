"""`jobstream audit reconcile` names each Polish document without a KSeF number past its
deadline: an offline one's recorded deadline, or the end of the next business day in Poland
after its issue; with --ksef (KSeF configured all along) also one never sent to KSeF."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from events.contract import KsefHeld, KsefIssuedOffline
from projections.audit import ksef_deadline
from tests.integration.conftest import Api
from tests.integration.ksef_steps import accepted, append, polish_invoices, prepared
from tests.integration.test_audit import audit


def test_the_business_day_deadline_skips_weekends_and_polish_holidays() -> None:
    assert ksef_deadline(date(2026, 11, 23)) == datetime(2026, 11, 24, 22, 59, 59, tzinfo=UTC)  # Mon -> Tue, CET
    assert ksef_deadline(date(2026, 11, 27)) == datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC)  # Fri -> Mon
    assert ksef_deadline(date(2026, 11, 10)) == datetime(2026, 11, 12, 22, 59, 59, tzinfo=UTC)  # 11 Nov is a holiday
    assert ksef_deadline(date(2026, 4, 3)) == datetime(2026, 4, 7, 21, 59, 59, tzinfo=UTC)  # Easter Monday, CEST
    assert ksef_deadline(date(2026, 11, 23), 3) == datetime(2026, 11, 26, 22, 59, 59, tzinfo=UTC)


def test_reconcile_names_each_polish_document_without_a_ksef_number_past_its_deadline(
    api: Api, stream_env: dict[str, str]
) -> None:
    ok, pending, offline, never = polish_invoices(api, stream_env, 4)
    app = api.jobstream
    accepted(app, stream_env, ok)
    append(app, stream_env, pending.id, prepared(pending))
    now = datetime.now(UTC)

    def reconcile(at: datetime, *args: str) -> tuple[int, str]:
        done = audit(stream_env, "reconcile", "--now", at.isoformat(), *args)
        return done.returncode, done.stdout + done.stderr

    code, said = reconcile(now)
    assert code == 0, said
    assert "2 Polish documents for KSeF: 1 with their KSeF number, 1 still within their deadline." in said
    assert f"KSeF  invoice {pending.number}: prepared for KSeF, by " in said

    append(app, stream_env, offline.id, prepared(offline))
    late = now - timedelta(hours=1)
    append(app, stream_env, offline.id, KsefIssuedOffline(id=offline.id, mode="offline24", reason="", deadline=late))
    code, said = reconcile(now)
    assert code == 1, said
    assert f"invoice {offline.number} ({offline.id}) has no KSeF number past its deadline " in said
    assert "(issued offline)" in said and pending.number not in said.split("problem(s):")[1]

    code, said = reconcile(now + timedelta(days=10))  # the online one's deadline has passed too
    problems = said.split("problem(s):")[1]
    assert code == 1 and pending.number in problems and offline.number in problems
    assert never.number not in said and ok.number not in problems  # never prepared: not for KSeF here

    code, said = reconcile(now + timedelta(days=10), "--ksef")  # KSeF was configured all along
    assert code == 1 and f"invoice {never.number} ({never.id}) has no KSeF number past its deadline" in said
    assert "(never sent to KSeF)" in said and "4 Polish documents for KSeF" in said
    assert ok.number not in said.split("problem(s):")[1]


def test_reconcile_gives_a_held_documents_reason_where_it_was_never_sent(api: Api, stream_env: dict[str, str]) -> None:
    (held,) = polish_invoices(api, stream_env, 1)
    append(api.jobstream, stream_env, held.id, KsefHeld(id=held.id, field="Podmiot2/NIP", reason="not a valid NIP"))
    done = audit(stream_env, "reconcile", "--now", (datetime.now(UTC) + timedelta(days=10)).isoformat())
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"invoice {held.number} ({held.id}) has no KSeF number past its deadline" in said
    assert "(never sent to KSeF: held, Podmiot2/NIP: not a valid NIP)" in said
