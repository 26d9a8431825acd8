"""What the notifier says, to whom: pure decisions from events to messages.

A push alert goes to the users who want it (their preferences, else their role's default
alerts), held over their quiet hours. An email goes to the customer in the customer's
language, from the templates beside this module; escalations go to the office.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import jinja2
import msgspec
from babel.numbers import format_currency

from events.contract import (
    Address,
    CreditNoteIssued,
    Event,
    InvoiceIssued,
    JobCancelled,
    JobCompleted,
    JobRequested,
    JobRescheduled,
    JobScheduled,
    JobTaken,
    JobUnassigned,
    MessageQueued,
    NotificationPreferencesChanged,
    PaymentReminderDue,
    PushSubscriptionRegistered,
    PushSubscriptionRemoved,
    Role,
    SlaAtRisk,
    TokenIssued,
    TokenRevoked,
)

LANGUAGES = ("en", "pl", "cs", "de", "ro")
LOCALES = {"en": "en_IE", "pl": "pl_PL", "cs": "cs_CZ", "de": "de_DE", "ro": "ro_RO"}
DEFAULT_ALERTS = {
    Role.TECHNICIAN: frozenset({"job_assigned", "job_rescheduled", "job_cancelled"}),
    Role.OFFICE: frozenset({"job_completed", "sla_at_risk"}),
}
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,
)


PENDING = UUID(int=0)  # a composed message's id: the notifier derives the real one from its cause


class User(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    technician_id: UUID | None = None


class Directory:
    """Users (from their tokens), their alert preferences and push subscriptions, folded
    from the stream."""

    def __init__(self) -> None:
        self.tokens: dict[UUID, User] = {}
        self.revoked: set[UUID] = set()
        self.preferences: dict[str, NotificationPreferencesChanged] = {}
        self.subscriptions: dict[str, dict[str, tuple[str, str]]] = {}

    def apply(self, event: Event) -> None:
        match event:
            case TokenIssued():
                self.tokens[event.id] = User(name=event.user_name, role=event.role, technician_id=event.technician_id)
            case TokenRevoked():
                self.revoked.add(event.id)
            case NotificationPreferencesChanged():
                self.preferences[event.user_name] = event
            case PushSubscriptionRegistered():
                self.subscriptions.setdefault(event.user_name, {})[event.endpoint] = (event.p256dh, event.auth)
            case PushSubscriptionRemoved():
                for endpoints in self.subscriptions.values():
                    endpoints.pop(event.endpoint, None)

    def users(self) -> dict[str, User]:
        """Users with a token that still works."""
        return {u.name: u for id, u in self.tokens.items() if id not in self.revoked}

    def technicians(self, technician_ids: list[UUID] | tuple[UUID, ...]) -> list[User]:
        return sorted(
            (u for u in self.users().values() if u.role is Role.TECHNICIAN and u.technician_id in technician_ids),
            key=lambda u: u.name,
        )

    def office(self) -> list[User]:
        return sorted((u for u in self.users().values() if u.role is Role.OFFICE), key=lambda u: u.name)

    def wants(self, user: User, alert: str) -> bool:
        chosen = self.preferences.get(user.name)
        if chosen is not None:
            return alert in chosen.alerts
        return alert in DEFAULT_ALERTS.get(user.role, frozenset())

    def timezone(self, user_name: str) -> str:
        chosen = self.preferences.get(user_name)
        return chosen.timezone if chosen else "UTC"

    def quiet_until(self, user_name: str, now: datetime) -> datetime | None:
        """When the user's quiet hours end, if ``now`` is inside them."""
        chosen = self.preferences.get(user_name)
        if chosen is None or not chosen.quiet_from:
            return None
        return quiet_end(now, chosen.quiet_from, chosen.quiet_until, chosen.timezone)


def quiet_end(now: datetime, start: str, end: str, timezone: str) -> datetime | None:
    """The end of the quiet hours ``start``-``end`` (local, may span midnight) if ``now`` is in them."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    begins, ends = time.fromisoformat(start), time.fromisoformat(end)
    at = local.time()
    inside = begins <= at < ends if begins < ends else (at >= begins or at < ends)
    if not inside or begins == ends:
        return None
    day = local.date() if at < ends else local.date() + timedelta(days=1)
    return datetime.combine(day, ends, tzinfo=zone).astimezone(now.tzinfo)


class JobFacts(msgspec.Struct, kw_only=True):
    """What an alert about a job says: folded from the job's events."""

    id: UUID
    description: str = ""
    job_type: str = ""
    address: Address | None = None
    technician_ids: list[UUID] = []
    start: datetime | None = None
    urgent: bool = False


def job_facts(job_id: UUID, events: list[Event]) -> JobFacts:
    facts = JobFacts(id=job_id)
    for event in events:
        match event:
            case JobRequested():
                facts.description, facts.job_type = event.description, event.job_type
                facts.address, facts.urgent = event.site_address, event.priority == "urgent"
            case JobScheduled() | JobRescheduled():
                facts.technician_ids, facts.start = list(event.technician_ids), event.start
            case JobTaken():
                facts.technician_ids, facts.start = [event.technician_id], event.start
            case JobUnassigned():
                facts.technician_ids = []
    return facts


def _where_when(job: JobFacts, timezone: str) -> str:
    parts = []
    if job.start is not None:
        parts.append(job.start.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M"))
    if job.address is not None:
        parts.append(f"{job.address.street}, {job.address.city}")
    return " · ".join(parts)


def job_alerts(
    event: Event,
    job: JobFacts,
    before: list[UUID],
    directory: Directory,
    now: datetime,
    app_url: str,
    dashboard_url: str = "",
) -> list[MessageQueued]:
    """Push alerts for a job event. ``before`` is who the job was assigned to before it.
    An alert without a body of its own says when and where, in the recipient's time zone."""
    title = job.description[:80] or job.job_type or "a job"
    technicians = directory.technicians
    plan: list[tuple[str, list[User], str, str]] = []  # alert, to whom, subject, body
    match event:
        case JobScheduled():
            plan.append(("job_assigned", technicians(job.technician_ids), f"New job: {title}", ""))
        case JobRescheduled():
            plan += [
                (
                    "job_cancelled",
                    technicians([t for t in before if t not in job.technician_ids]),
                    f"Job taken off your list: {title}",
                    "The office moved it to someone else.",
                ),
                (
                    "job_assigned",
                    technicians([t for t in job.technician_ids if t not in before]),
                    f"New job: {title}",
                    "",
                ),
                (
                    "job_rescheduled",
                    technicians([t for t in job.technician_ids if t in before]),
                    f"Job moved: {title}",
                    "",
                ),
            ]
        case JobCancelled():
            plan.append(("job_cancelled", technicians(before), f"Job cancelled: {title}", event.reason))
        case JobUnassigned():
            plan.append(("job_cancelled", technicians(before), f"Job back in the pool: {title}", event.reason))
        case JobCompleted():
            plan.append(("job_completed", directory.office(), f"Job completed: {title}", event.summary[:200]))
        case SlaAtRisk():
            due = (
                f"{event.minutes_left} min left"
                if event.minutes_left >= 0
                else f"{-event.minutes_left} min past the deadline"
            )
            plan.append(("sla_at_risk", directory.office(), f"SLA at risk: {title}", f"Urgent, {due}."))
    alerts = []
    for alert, targets, subject, body in plan:
        for_office = alert in ("job_completed", "sla_at_risk")  # the dashboard's job page, else the phone app's
        url = (
            f"{(dashboard_url or app_url).rstrip('/')}/jobs/{job.id}"
            if for_office
            else f"{app_url.rstrip('/')}/tech/#/jobs/{job.id}"
        )
        alerts += [
            MessageQueued(
                id=PENDING,
                channel="push",
                purpose=alert,
                recipient=user.name,
                subject=subject,
                body=body or _where_when(job, directory.timezone(user.name)),
                url=url,
                about_kind="job",
                about_id=job.id,
                not_before=directory.quiet_until(user.name, now),
            )
            for user in targets
            if directory.wants(user, alert)
        ]
    return alerts


def money(amount: Decimal, currency: str, language: str) -> str:
    return format_currency(amount, currency, locale=LOCALES.get(language, "en_IE"))


def render(purpose: str, language: str, **values: object) -> tuple[str, str]:
    """The subject (first line) and body of an email template, in the language if we have it."""
    language = language if language in LANGUAGES else "en"
    try:
        template = _templates.get_template(f"{purpose}.{language}.txt")
    except jinja2.TemplateNotFound:
        template = _templates.get_template(f"{purpose}.en.txt")
    subject, _, body = template.render(**values).partition("\n")
    return subject.strip(), body.strip() + "\n"


def invoice_email(issued: InvoiceIssued, attachments: list[str]) -> MessageQueued:
    subject, body = render(
        "invoice",
        issued.language,
        number=issued.number,
        seller=issued.seller.name,
        buyer=issued.buyer.name,
        job=issued.job_summary or issued.job_type or issued.number,
        amount=money(issued.gross_total, issued.currency, issued.language),
        due_date=issued.due_date,
        reference=issued.payment_reference,
        iban=issued.seller.bank_account,
    )
    return MessageQueued(
        id=PENDING,
        channel="email",
        purpose="invoice",
        recipient=issued.buyer.email,
        subject=subject,
        body=body,
        language=issued.language,
        about_kind="invoice",
        about_id=issued.id,
        attachments=attachments,
    )


def credit_note_email(note: CreditNoteIssued, attachments: list[str]) -> MessageQueued:
    subject, body = render(
        "credit_note",
        note.language,
        number=note.number,
        seller=note.seller.name,
        buyer=note.buyer.name,
        corrects=note.invoice_number,
        amount=money(note.gross_total, note.currency, note.language),
    )
    return MessageQueued(
        id=PENDING,
        channel="email",
        purpose="credit_note",
        recipient=note.buyer.email,
        subject=subject,
        body=body,
        language=note.language,
        about_kind="credit_note",
        about_id=note.id,
        attachments=attachments,
    )


def reminder_email(
    due: PaymentReminderDue, issued: InvoiceIssued, attachments: list[str], office_email: str, dashboard_url: str
) -> MessageQueued:
    values: dict[str, object] = {
        "number": issued.number,
        "seller": issued.seller.name,
        "buyer": issued.buyer.name,
        "buyer_email": issued.buyer.email,
        "days": due.days_overdue,
        "level": due.level,
        "due_date": due.due_date,
        "reference": issued.payment_reference,
        "iban": issued.seller.bank_account,
    }
    if due.level == "escalation":
        subject, body = render(
            "escalation",
            "en",
            amount=money(due.outstanding, due.currency, "en"),
            url=dashboard_url.rstrip("/") + "/invoices",
            **values,
        )
        return MessageQueued(
            id=PENDING,
            channel="email",
            purpose="escalation",
            recipient=office_email,
            subject=subject,
            body=body,
            about_kind="invoice",
            about_id=issued.id,
            attachments=attachments,
        )
    subject, body = render(
        "reminder", issued.language, amount=money(due.outstanding, due.currency, issued.language), **values
    )
    return MessageQueued(
        id=PENDING,
        channel="email",
        purpose="reminder",
        recipient=issued.buyer.email,
        subject=subject,
        body=body,
        language=issued.language,
        about_kind="invoice",
        about_id=issued.id,
        attachments=attachments,
    )
