"""What the notifier says, to whom: given the directory of users and an event, then the
messages queued (push alerts held over quiet hours, emails in the customer's language)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from msgspec.structs import replace

from events.contract import (
    Address,
    Event,
    JobCancelled,
    JobCompleted,
    JobRequested,
    JobRescheduled,
    JobScheduled,
    JobSignedOff,
    JobTaken,
    JobUnassigned,
    MessageQueued,
    NotificationPreferencesChanged,
    PaymentReminderDue,
    Priority,
    PushSubscriptionRegistered,
    PushSubscriptionRemoved,
    Role,
    SlaAtRisk,
    Source,
    TokenIssued,
    TokenRevoked,
)
from notifier.compose import (
    PENDING,
    Directory,
    JobFacts,
    credit_note_email,
    invoice_email,
    job_alerts,
    job_facts,
    money,
    quiet_end,
    reminder_email,
    render,
)
from tests.unit.invoices import CREDIT_NOTE, CREDIT_NOTE_ID, INVOICE, INVOICE_ID

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
TOM_TECH, JANA_TECH, NEW_TECH = UUID(int=1), UUID(int=2), UUID(int=3)
SITE = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # Tuesday, 09:00 in Brno
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 13:00 in Brno: nobody's quiet hours
APP, DASHBOARD = "https://app.example/", "https://office.example"


def token(n: int, name: str, role: Role, technician_id: UUID | None = None) -> TokenIssued:
    return TokenIssued(id=UUID(int=100 + n), user_name=name, role=role, technician_id=technician_id, token_hash="x")


TOM_PREFERENCES = NotificationPreferencesChanged(
    id=UUID(int=200),
    user_name="tom",
    alerts=["job_assigned", "job_cancelled"],
    quiet_from="22:00",
    quiet_until="07:00",
    timezone="Europe/Prague",
)


def directory(*more: Event) -> Directory:
    """Tom and Jana are technicians (Tom chose his alerts and quiet hours); Olga is the office;
    Oskar was, until his token was revoked; Anna is the accountant."""
    found = Directory()
    for event in (
        token(1, "tom", Role.TECHNICIAN, TOM_TECH),
        token(2, "jana", Role.TECHNICIAN, JANA_TECH),
        token(3, "olga", Role.OFFICE),
        token(4, "oskar", Role.OFFICE),
        TokenRevoked(id=UUID(int=104)),
        token(5, "anna", Role.ACCOUNTANT),
        TOM_PREFERENCES,
        *more,
    ):
        found.apply(event)
    return found


REQUESTED = JobRequested(
    id=JOB,
    source=Source.PHONE,
    customer_id=UUID(int=9),
    site_address=SITE,
    job_type="repair",
    description="Boiler leaks",
)


def facts(*technicians: UUID, description: str = "Boiler leaks", job_type: str = "repair") -> JobFacts:
    return JobFacts(
        id=JOB, description=description, job_type=job_type, address=SITE, technician_ids=list(technicians), start=START
    )


def push(
    purpose: str, to: str, subject: str, body: str, *, office: bool = False, not_before: datetime | None = None
) -> MessageQueued:
    url = f"https://office.example/jobs/{JOB}" if office else f"https://app.example/tech/#/jobs/{JOB}"
    return MessageQueued(
        id=PENDING,
        channel="push",
        purpose=purpose,
        recipient=to,
        subject=subject,
        body=body,
        url=url,
        about_kind="job",
        about_id=JOB,
        not_before=not_before,
    )


def alerts(
    event: Event, job: JobFacts, before: list[UUID] | None = None, now: datetime = NOW, users: Directory | None = None
) -> list[MessageQueued]:
    return job_alerts(event, job, before or [], users or directory(), now, APP, DASHBOARD)


# --- the directory -------------------------------------------------------------------------


def test_the_directory_knows_the_users_whose_tokens_still_work() -> None:
    users = directory()
    assert sorted(users.users()) == ["anna", "jana", "olga", "tom"]  # not Oskar: revoked
    assert [u.name for u in users.technicians([TOM_TECH, JANA_TECH, NEW_TECH])] == ["jana", "tom"]
    assert [u.name for u in users.technicians([JANA_TECH])] == ["jana"]
    assert [u.name for u in users.office()] == ["olga"]


def test_a_user_gets_their_role_s_alerts_unless_they_chose_their_own() -> None:
    users = directory()
    jana, tom, olga, anna = (users.users()[name] for name in ("jana", "tom", "olga", "anna"))
    assert [
        a
        for a in ("job_assigned", "job_rescheduled", "job_cancelled", "job_completed", "sla_at_risk")
        if users.wants(jana, a)
    ] == ["job_assigned", "job_rescheduled", "job_cancelled"]
    assert [a for a in ("job_assigned", "job_rescheduled", "job_cancelled") if users.wants(tom, a)] == [
        "job_assigned",
        "job_cancelled",
    ]
    assert users.wants(olga, "job_completed") and users.wants(olga, "sla_at_risk")
    assert not users.wants(olga, "job_assigned") and not users.wants(anna, "job_completed")
    assert (users.timezone("tom"), users.timezone("jana")) == ("Europe/Prague", "UTC")


def test_the_directory_keeps_each_user_s_devices() -> None:
    subscribed = PushSubscriptionRegistered(
        id=UUID(int=200), user_name="tom", endpoint="https://push.example/1", p256dh="key", auth="secret"
    )
    assert directory(subscribed).subscriptions == {"tom": {"https://push.example/1": ("key", "secret")}}
    removed = PushSubscriptionRemoved(id=UUID(int=200), endpoint="https://push.example/1")
    assert directory(subscribed, removed).subscriptions == {"tom": {}}


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (datetime(2026, 11, 23, 21, 30, tzinfo=UTC), datetime(2026, 11, 24, 6, 0, tzinfo=UTC)),  # 22:30: 07:00 tomorrow
        (
            datetime(2026, 11, 24, 5, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
        ),  # 06:00 local: today 07:00
        (datetime(2026, 11, 23, 20, 59, tzinfo=UTC), None),  # 21:59 local: not yet
        (datetime(2026, 11, 24, 6, 0, tzinfo=UTC), None),  # 07:00 local: over
    ],
    ids=["evening", "morning", "before", "after"],
)
def test_quiet_hours_over_midnight_end_the_next_morning(now: datetime, until: datetime | None) -> None:
    assert quiet_end(now, "22:00", "07:00", "Europe/Prague") == until


def test_quiet_hours_within_a_day_and_empty_ones() -> None:
    lunch = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)  # 12:30 in Prague, summer time
    assert quiet_end(lunch, "12:00", "13:00", "Europe/Prague") == datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    assert quiet_end(lunch, "13:00", "14:00", "Europe/Prague") is None
    assert quiet_end(lunch, "12:00", "12:00", "Europe/Prague") is None  # from and until the same: never quiet


# --- what an alert about a job says ---------------------------------------------------------


def test_the_facts_of_a_job_follow_its_assignments() -> None:
    scheduled = JobScheduled(id=JOB, technician_ids=[TOM_TECH, JANA_TECH], start=START, duration_minutes=60)
    assert job_facts(JOB, [REQUESTED, scheduled]) == facts(TOM_TECH, JANA_TECH)
    later = START + timedelta(days=1)
    taken = JobTaken(id=JOB, technician_id=NEW_TECH, start=later, duration_minutes=60)
    assert job_facts(JOB, [REQUESTED, scheduled, JobUnassigned(id=JOB), taken]).technician_ids == [NEW_TECH]
    assert job_facts(JOB, [REQUESTED, scheduled, JobUnassigned(id=JOB)]).technician_ids == []
    urgent = JobRequested(
        id=JOB,
        source=Source.PHONE,
        customer_id=UUID(int=9),
        site_address=None,
        job_type="repair",
        description="Flooding",
        priority=Priority.URGENT,
    )
    assert job_facts(JOB, [urgent]).urgent and not job_facts(JOB, [REQUESTED]).urgent


def test_a_scheduled_job_alerts_its_technicians_with_when_and_where_in_their_time_zone() -> None:
    scheduled = JobScheduled(id=JOB, technician_ids=[TOM_TECH, JANA_TECH], start=START, duration_minutes=60)
    assert alerts(scheduled, facts(TOM_TECH, JANA_TECH)) == [
        push("job_assigned", "jana", "New job: Boiler leaks", "Tue 24 Nov 08:00 · Údolní 12, Brno"),
        push("job_assigned", "tom", "New job: Boiler leaks", "Tue 24 Nov 09:00 · Údolní 12, Brno"),
    ]


def test_a_job_moved_to_someone_else_tells_both() -> None:
    moved = JobRescheduled(id=JOB, technician_ids=[JANA_TECH], start=START, duration_minutes=60)
    assert alerts(moved, facts(JANA_TECH), before=[TOM_TECH]) == [
        push("job_cancelled", "tom", "Job taken off your list: Boiler leaks", "The office moved it to someone else."),
        push("job_assigned", "jana", "New job: Boiler leaks", "Tue 24 Nov 08:00 · Údolní 12, Brno"),
    ]


def test_a_job_moved_in_time_tells_those_who_want_to_know() -> None:
    moved = JobRescheduled(id=JOB, technician_ids=[TOM_TECH, JANA_TECH], start=START, duration_minutes=60)
    # Tom chose not to hear of moves
    assert alerts(moved, facts(TOM_TECH, JANA_TECH), before=[TOM_TECH, JANA_TECH]) == [
        push("job_rescheduled", "jana", "Job moved: Boiler leaks", "Tue 24 Nov 08:00 · Údolní 12, Brno")
    ]


def test_a_cancelled_job_or_one_back_in_the_pool_tells_who_had_it_why() -> None:
    assert alerts(JobCancelled(id=JOB, reason="customer sold the house"), facts(), before=[JANA_TECH]) == [
        push("job_cancelled", "jana", "Job cancelled: Boiler leaks", "customer sold the house")
    ]
    assert alerts(JobUnassigned(id=JOB, reason="Jana is ill"), facts(), before=[JANA_TECH]) == [
        push("job_cancelled", "jana", "Job back in the pool: Boiler leaks", "Jana is ill")
    ]


def test_a_completed_job_tells_the_office_on_the_dashboard() -> None:
    done = JobCompleted(id=JOB, summary="Seal replaced")
    assert alerts(done, facts(JANA_TECH)) == [
        push("job_completed", "olga", "Job completed: Boiler leaks", "Seal replaced", office=True)
    ]
    # without a dashboard of its own, the office's link is on the app's address
    [alert] = job_alerts(done, facts(JANA_TECH), [], directory(), NOW, APP)
    assert alert.url == f"https://app.example/jobs/{JOB}"


def test_an_sla_at_risk_says_how_long_is_left_or_how_long_ago_it_passed() -> None:
    deadline = NOW + timedelta(minutes=45)
    assert alerts(SlaAtRisk(id=JOB, deadline=deadline, minutes_left=45), facts()) == [
        push("sla_at_risk", "olga", "SLA at risk: Boiler leaks", "Urgent, 45 min left.", office=True)
    ]
    [late] = alerts(SlaAtRisk(id=JOB, deadline=deadline, minutes_left=-10), facts())
    assert late.body == "Urgent, 10 min past the deadline."


def test_an_alert_in_quiet_hours_waits_until_they_end() -> None:
    scheduled = JobScheduled(id=JOB, technician_ids=[TOM_TECH, JANA_TECH], start=START, duration_minutes=60)
    evening = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 23:00 in Brno
    jana, tom = alerts(scheduled, facts(TOM_TECH, JANA_TECH), now=evening)
    assert (jana.recipient, jana.not_before) == ("jana", None)
    assert (tom.recipient, tom.not_before) == ("tom", datetime(2026, 11, 24, 6, 0, tzinfo=UTC))


def test_a_user_who_wants_no_alerts_gets_none() -> None:
    silent = NotificationPreferencesChanged(id=UUID(int=201), user_name="jana", alerts=[])
    scheduled = JobScheduled(id=JOB, technician_ids=[JANA_TECH], start=START, duration_minutes=60)
    assert alerts(scheduled, facts(JANA_TECH), users=directory(silent)) == []


def test_an_alert_is_titled_by_the_description_else_the_job_type() -> None:
    scheduled = JobScheduled(id=JOB, technician_ids=[JANA_TECH], start=START, duration_minutes=60)
    [long] = alerts(scheduled, facts(JANA_TECH, description="x" * 100))
    assert long.subject == "New job: " + "x" * 80
    [untitled] = alerts(scheduled, facts(JANA_TECH, description=""))
    assert untitled.subject == "New job: repair"
    [bare] = alerts(scheduled, facts(JANA_TECH, description="", job_type=""))
    assert bare.subject == "New job: a job"


def test_other_job_events_alert_nobody() -> None:
    assert alerts(REQUESTED, facts()) == []
    assert alerts(JobSignedOff(id=JOB, signed_by="Pavel"), facts(JANA_TECH), before=[JANA_TECH]) == []


# --- emails --------------------------------------------------------------------------------


def test_money_is_written_as_the_reader_writes_it() -> None:
    assert money(Decimal("449.68"), "PLN", "pl") == "449,68\xa0zł"
    assert money(Decimal("1234.5"), "EUR", "de") == "1.234,50\xa0€"
    assert money(Decimal("1234.5"), "EUR", "xx") == "€1,234.50"  # a language we do not speak: English


def test_an_email_in_a_language_without_templates_is_in_english() -> None:
    subject, body = render(
        "credit_note", "hu", number="FK/1", seller="Nowak", buyer="Kovács", corrects="FV/1", amount="10 €"
    )
    assert subject == "Credit note FK/1 from Nowak"
    assert "FV/1" in body and body.endswith("\n")
    # a language we speak, but a message only the office gets (in English)
    subject, _ = render(
        "escalation",
        "pl",
        number="FV/1",
        buyer="Kowalski",
        days=30,
        due_date="2026-12-07",
        amount="10 zł",
        buyer_email="",
        url="https://office.example/invoices",
    )
    assert subject == "Escalation: invoice FV/1 (Kowalski) is 30 days overdue"


def test_an_invoice_is_emailed_to_the_buyer_in_their_language_with_its_documents() -> None:
    email = invoice_email(INVOICE, ["FV-2026-000042.pdf", "FV-2026-000042.xml"])
    assert email == MessageQueued(
        id=PENDING,
        channel="email",
        purpose="invoice",
        recipient="biuro@kowalski.example",
        subject="Faktura FV/2026/000042 od Instalacje Nowak sp. z o.o.",
        body=email.body,
        language="pl",
        about_kind="invoice",
        about_id=INVOICE_ID,
        attachments=["FV-2026-000042.pdf", "FV-2026-000042.xml"],
    )
    for said in (
        "fakturę FV/2026/000042 za Wymieniono filtr",
        "Kwota do zapłaty: 449,68\xa0zł",
        "Termin płatności: 2026-12-07",
        "Tytuł przelewu: RF43FV2026000042",
        "Numer rachunku: PL61 1090 1014 0000 0712 1981 2874",
    ):
        assert said in email.body


def test_an_invoice_without_a_summary_names_the_job_type_and_without_an_account_none() -> None:
    bare = replace(INVOICE, job_summary="", language="en", seller=replace(INVOICE.seller, bank_account=""))
    email = invoice_email(bare, [])
    assert "invoice FV/2026/000042 for repair." in email.body
    assert "Bank account" not in email.body


def test_a_credit_note_is_emailed_with_the_invoice_it_corrects() -> None:
    email = credit_note_email(CREDIT_NOTE, ["FK-2026-000007.pdf"])
    assert (email.purpose, email.recipient, email.about_kind, email.about_id, email.language, email.attachments) == (
        "credit_note",
        "biuro@kowalski.example",
        "credit_note",
        CREDIT_NOTE_ID,
        "pl",
        ["FK-2026-000007.pdf"],
    )
    assert email.subject == "Faktura korygująca FK/2026/000007 od Instalacje Nowak sp. z o.o."
    assert "do faktury FV/2026/000042: 80,68\xa0zł" in email.body


def reminder(level: str, days: int) -> PaymentReminderDue:
    return PaymentReminderDue(
        id=INVOICE_ID,
        step=1,
        level=level,
        days_overdue=days,
        outstanding=Decimal("249.68"),
        currency="PLN",
        due_date=date(2026, 12, 7),
    )


def test_a_reminder_goes_to_the_buyer_in_their_language() -> None:
    friendly = reminder_email(reminder("friendly", 3), INVOICE, ["FV.pdf"], "office@nowak.example", DASHBOARD)
    assert (friendly.purpose, friendly.recipient, friendly.language, friendly.attachments) == (
        "reminder",
        "biuro@kowalski.example",
        "pl",
        ["FV.pdf"],
    )
    assert friendly.subject == "Przypomnienie: faktura FV/2026/000042"
    assert "249,68\xa0zł" in friendly.body  # what is still owed, not the invoice's total
    firm = reminder_email(reminder("firm", 14), INVOICE, [], "office@nowak.example", DASHBOARD)
    assert firm.subject == "Zaległość: faktura FV/2026/000042, 14 dni po terminie"


def test_an_escalation_goes_to_the_office_in_english_with_the_dashboard_s_link() -> None:
    email = reminder_email(
        reminder("escalation", 30), INVOICE, ["FV.pdf"], "office@nowak.example", "https://office.example/"
    )
    assert (email.purpose, email.recipient, email.language, email.about_id) == (
        "escalation",
        "office@nowak.example",
        "en",
        INVOICE_ID,
    )
    assert email.subject == "Escalation: invoice FV/2026/000042 (Piekarnia Kowalski) is 30 days overdue"
    for said in ("Outstanding: PLN249.68", "Customer email: biuro@kowalski.example", "https://office.example/invoices"):
        assert said in email.body
