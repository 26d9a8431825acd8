"""The public booking page: a customer picks a service and a free slot, leaves contact details
and the address, and the request becomes a job (source web), scheduled for a free technician
with the right skill, or left in the open pool when none is free.

What is bookable is configured (``JOBSTREAM_BOOKING_SERVICES``: ``code:skill:minutes:Name``,
separated by ``;``), and so are the hours (``JOBSTREAM_BOOKING_HOURS``: ``Mon-Fri 08:00-17:00``,
in ``JOBSTREAM_TIMEZONE``). Free slots come from a calendar read straight from the stream
(technicians and their scheduled jobs), refreshed before each answer, and a booking is
decided under a lock after a refresh, so two customers cannot take one technician's hour in
one process; across replicas, each slot the visit covers is claimed on the stream first
(services.domain.slots), so of two replicas booking it at once one gets it and the other
answers 409. Every command a booking runs carries an id derived from the form's key: a
double submit books once. Abuse is kept harmless: per-address rate limits, a honeypot field
bots fill in (answered like a success, nothing stored), at most a few bookings per email
address a day, and every field validated with a message naming it. The per-email count is
read from the stream with the calendar (the web requests of that address's customer that
day), so every replica counts the same bookings; the per-address rate limits are each
replica's own, as a proxy's would be (with N replicas an address gets up to N times the
limit, which keeps it harmless still).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

import jinja2
import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from events.contract import (
    Address,
    ClaimSlot,
    JobCancelled,
    JobCompleted,
    JobRequested,
    JobRescheduled,
    JobScheduled,
    JobTaken,
    JobUnassigned,
    RegisterCustomer,
    RequestJob,
    Role,
    ScheduleJob,
    Source,
    TechnicianDeactivated,
    TechnicianDetailsChanged,
    TechnicianReactivated,
    TechnicianRegistered,
    UnassignJob,
    unreadable,
)
from services.application import VersionConflict
from services.deps import jobstream
from services.domain.common import Actor, DomainError, derived_id
from services.domain.slots import SlotTaken, slot_id

BOOKER = Actor(id="booking-page", role=Role.OFFICE)
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
COUNTRIES = {
    "CZ": "Czechia",
    "PL": "Poland",
    "DE": "Germany",
    "AT": "Austria",
    "SK": "Slovakia",
    "RO": "Romania",
    "IE": "Ireland",
    "GB": "United Kingdom",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9 ()/-]{6,20}$")
_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class Service(msgspec.Struct, frozen=True):
    code: str
    skill: str
    minutes: int
    name: str


class BookingSettings(msgspec.Struct, frozen=True, kw_only=True):
    services: list[Service]
    weekdays: frozenset[int] = frozenset(range(5))
    opening: clock = clock(8)
    closing: clock = clock(17)
    timezone: str = "UTC"
    days_ahead: int = 14
    lead_hours: int = 12  # the earliest slot offered is this far from now
    step_minutes: int = 60
    bookings_per_hour: int = 5  # per client address
    posts_per_hour: int = 40  # forms sent per client address, mistakes included
    views_per_minute: int = 60
    open_per_email: int = 3  # web bookings an email address may have open, per day booked

    @classmethod
    def from_env(cls, env: dict[str, str]) -> BookingSettings | None:
        """The settings, or None when no services are bookable (the page says so)."""
        text = env.get("JOBSTREAM_BOOKING_SERVICES", "").strip()
        if not text:
            return None
        services = []
        for part in filter(None, (p.strip() for p in text.split(";"))):
            code, skill, minutes, name = [*part.split(":", 3), "", "", "", ""][:4]
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", code) or not minutes.isdigit() or not name.strip():
                raise ValueError(f"JOBSTREAM_BOOKING_SERVICES: {part!r} is not code:skill:minutes:Name")
            services.append(Service(code, skill, int(minutes), name.strip()))
        days, hours = cls.hours_of(env.get("JOBSTREAM_BOOKING_HOURS", "Mon-Fri 08:00-17:00"))
        return cls(
            services=services,
            weekdays=days,
            opening=hours[0],
            closing=hours[1],
            timezone=env.get("JOBSTREAM_TIMEZONE") or "UTC",
        )

    @staticmethod
    def hours_of(text: str) -> tuple[frozenset[int], tuple[clock, clock]]:
        found = re.fullmatch(r"\s*(\w{3})-(\w{3})\s+(\d\d):(\d\d)-(\d\d):(\d\d)\s*", text)
        if not found or found[1] not in WEEKDAYS or found[2] not in WEEKDAYS:
            raise ValueError(f"JOBSTREAM_BOOKING_HOURS: {text!r} is not like 'Mon-Fri 08:00-17:00'")
        first, last = WEEKDAYS.index(found[1]), WEEKDAYS.index(found[2])
        opening, closing = clock(int(found[3]), int(found[4])), clock(int(found[5]), int(found[6]))
        if closing <= opening:
            raise ValueError("JOBSTREAM_BOOKING_HOURS: closing comes before opening")
        return frozenset(range(first, last + 1)), (opening, closing)

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)


class Technician(msgspec.Struct):
    name: str
    skills: set[str]
    active: bool = True


class Calendar:
    """Technicians and when they are busy, read from the stream incrementally."""

    TECHNICIAN_TYPES = frozenset(
        {"TechnicianRegistered", "TechnicianDetailsChanged", "TechnicianDeactivated", "TechnicianReactivated"}
    )
    JOB_TYPES = frozenset(
        {"JobRequested", "JobScheduled", "JobRescheduled", "JobTaken", "JobUnassigned", "JobCancelled", "JobCompleted"}
    )

    def __init__(self) -> None:
        self.technicians: dict[UUID, Technician] = {}
        self.busy: dict[UUID, tuple[tuple[UUID, ...], datetime, datetime]] = {}  # job -> (who, from, to)
        self.positions = {"technician": 0, "job": 0}
        # the web bookings of each customer, per day (UTC) they were made: the per-email cap
        self.booked: dict[tuple[UUID, date], set[UUID]] = defaultdict(set)

    def bookings(self, customer_id: UUID, day: date) -> int:
        return len(self.booked.get((customer_id, day), ()))

    async def refresh(self, app: Any) -> None:
        for kind, wanted in (("technician", self.TECHNICIAN_TYPES), ("job", self.JOB_TYPES)):
            self.positions[kind], events = await app.events_since(kind, self.positions[kind], wanted)
            for event in events:
                self.add(event)

    def add(self, event: Any) -> None:
        match event:
            case TechnicianRegistered():
                self.technicians[event.id] = Technician(event.name, set(event.skills))
            case TechnicianDetailsChanged() if event.id in self.technicians and event.skills is not None:
                self.technicians[event.id].skills = set(event.skills)
            case TechnicianDeactivated() if event.id in self.technicians:
                self.technicians[event.id].active = False
            case TechnicianReactivated() if event.id in self.technicians:
                self.technicians[event.id].active = True
            case JobRequested() if event.source is Source.WEB and event.meta is not None:
                day = event.meta.occurred_at.date()
                for old in [k for k in self.booked if k[1] < day - timedelta(days=1)]:  # done with
                    del self.booked[old]
                self.booked[(event.customer_id, day)].add(event.id)
            case JobScheduled() | JobRescheduled():
                end = event.start + timedelta(minutes=event.duration_minutes)
                self.busy[event.id] = (tuple(event.technician_ids), event.start, end)
            case JobTaken():
                end = event.start + timedelta(minutes=event.duration_minutes)
                self.busy[event.id] = ((event.technician_id,), event.start, end)
            case JobUnassigned() | JobCancelled() | JobCompleted():
                self.busy.pop(event.id, None)

    def free(
        self,
        skill: str,
        start: datetime,
        minutes: int,
        busy: Iterable[tuple[tuple[UUID, ...], datetime, datetime]] | None = None,
    ) -> list[UUID]:
        """Active technicians with the skill and nothing else on, least busy that day first;
        ``busy`` narrows what is looked at (a day's visits, for the many slots of that day)."""
        end = start + timedelta(minutes=minutes)
        taken: set[UUID] = set()
        load: dict[UUID, float] = defaultdict(float)
        for who, begins, ends in self.busy.values() if busy is None else busy:
            if begins < end and start < ends:
                taken.update(who)
            if begins.date() == start.date():
                for technician in who:
                    load[technician] += (ends - begins).total_seconds()
        able = [
            t
            for t, tech in self.technicians.items()
            if tech.active and (not skill or skill in tech.skills) and t not in taken
        ]
        return sorted(able, key=lambda t: (load[t], self.technicians[t].name))


def slots(calendar: Calendar, settings: BookingSettings, service: Service, now: datetime) -> dict[date, list[datetime]]:
    """The free start times (UTC) per local day, from ``lead_hours`` ahead for ``days_ahead`` days."""
    zone = ZoneInfo(settings.timezone)
    earliest = now + timedelta(hours=settings.lead_hours)
    today = now.astimezone(zone).date()
    found: dict[date, list[datetime]] = {}
    for offset in range(settings.days_ahead + 1):
        day = today + timedelta(days=offset)
        if day.weekday() not in settings.weekdays:
            continue
        local = datetime.combine(day, settings.opening)
        closing = datetime.combine(day, settings.closing)
        opens, closes = (moment.replace(tzinfo=zone).astimezone(UTC) for moment in (local, closing))
        that_day = [visit for visit in calendar.busy.values() if visit[1] < closes and opens < visit[2]]
        while local + timedelta(minutes=service.minutes) <= closing:
            at = local.replace(tzinfo=zone).astimezone(UTC)
            if at >= earliest and calendar.free(service.skill, at, service.minutes, that_day):
                found.setdefault(day, []).append(at)
            local += timedelta(minutes=settings.step_minutes)
    return found


class RateLimit:
    """At most ``limit`` events per ``window`` seconds per key (a client's address)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[str, deque[float]] = {}

    def retry_after(self, key: str, count: bool = True) -> int:
        """0 when allowed now (and counted, unless not ``count``), else the seconds to wait."""
        now = self.clock()
        times = self.seen.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return int(self.window - (now - times[0])) + 1
        if count:
            times.append(now)
        if len(self.seen) > 10_000:  # forget idle clients
            for idle in [k for k, v in self.seen.items() if not v or now - v[-1] >= self.window]:
                del self.seen[idle]
        return 0


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    """A filled-in form, checked: every problem named by its field."""

    key: str
    service: Service
    slot: datetime | None  # None: "call me to agree a time"
    name: str
    email: str
    phone: str
    address: Address
    details: str


def check(
    form: dict[str, str], settings: BookingSettings, offered: dict[date, list[datetime]]
) -> tuple[Booking | None, dict[str, str]]:
    """The booking, or what is wrong with each field; ``offered`` is the chosen service's free slots."""
    errors: dict[str, str] = {}

    def text(field: str, label: str, low: int, high: int) -> str:
        given = form.get(field, "")
        value = " ".join(given.split())  # one line: a pasted newline or tab becomes a space
        if unreadable(given, multiline=True):
            errors[field] = f"{label} has characters that cannot be read (control characters)"
        elif len(value) < low:
            errors[field] = f"{label} is needed"
        elif len(value) > high:
            errors[field] = f"{label} is too long (at most {high} characters)"
        return value

    service = settings.service(form.get("service", ""))
    if service is None:
        errors["service"] = "choose one of the services offered"
    name = text("name", "Your name", 2, 120)
    email = form.get("email", "").strip()
    if not EMAIL.fullmatch(email) or len(email) > 254 or unreadable(email):
        errors["email"] = "an email address like name@example.com is needed, for the confirmation"
    phone = form.get("phone", "").strip()
    if phone and not PHONE.fullmatch(phone):
        errors["phone"] = "a phone number has digits, spaces and perhaps a leading +"
    street = text("street", "The street and number", 3, 200)
    city = text("city", "The town", 2, 100)
    postal_code = text("postal_code", "The postal code", 3, 12)
    country = form.get("country", "")
    if country not in COUNTRIES:
        errors["country"] = "choose the country"
    details = form.get("details", "").strip()
    if len(details) > 2000:
        errors["details"] = "please keep the description under 2000 characters"
    elif unreadable(details, multiline=True):
        errors["details"] = "the description has characters that cannot be read (control characters)"
    key = form.get("key", "")
    try:
        key = str(UUID(key))
    except ValueError:
        errors["key"] = "the form is out of date: please reload the page"
    slot: datetime | None = None
    choice = form.get("slot", "")
    if service is not None and choice != "call":
        try:
            slot = datetime.fromisoformat(choice)
        except ValueError:
            errors["slot"] = "choose a time, or ask us to call you"
        else:
            if slot.tzinfo is None or slot not in {s for day in offered.values() for s in day}:
                errors["slot"] = "that time is no longer free: please choose another"
    if errors or service is None:
        return None, errors
    address = Address(street=street, city=city, postal_code=postal_code, country=country)
    return Booking(
        key=key,
        service=service,
        slot=slot,
        name=name,
        email=email.lower(),
        phone=phone,
        address=address,
        details=details,
    ), errors


class Desk:
    """The booking page's state in one app: its settings (None: booking is not offered), the
    calendar, the lock a booking is decided under and the rate limits. Made by the app
    factory (``app.state.booking``); the routes below read it from their request."""

    def __init__(self, env: dict[str, str]) -> None:
        settings = self.settings = BookingSettings.from_env(env)
        self.calendar = Calendar()
        self.lock = asyncio.Lock()
        self.views = RateLimit(settings.views_per_minute if settings else 60, 60.0)
        self.bookings = RateLimit(settings.bookings_per_hour if settings else 5, 3600.0)
        self.posts = RateLimit(settings.posts_per_hour if settings else 40, 3600.0)
        self.zone = ZoneInfo(settings.timezone if settings else "UTC")

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = _pages.get_template(name).render(
            settings=self.settings, countries=COUNTRIES, weekdays=WEEKDAYS, zone=self.zone, **values
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def not_offered(self) -> HTMLResponse:
        return self.page(
            "book_done.html",
            404,
            title="Online booking is not offered",
            message="Please call or email us to book a visit.",
        )

    def too_many(self, wait: int) -> HTMLResponse:
        response = self.page(
            "book_done.html",
            429,
            title="Too many requests",
            message=f"Too many requests from your connection. Please try again in {wait // 60 + 1} min.",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    async def refreshed(self, request: Request) -> Calendar:
        app_ = jobstream(request)
        await app_.call(self.calendar.refresh(app_))
        return self.calendar

    def form_page(
        self, form: dict[str, str], errors: dict[str, str], free: dict[date, list[datetime]], status: int = 200
    ) -> HTMLResponse:
        return self.page(
            "book.html", status, form=form, errors=errors, free=free, key=form.get("key") or str(uuid.uuid4())
        )


def desk(request: Request) -> Desk:
    return request.app.state.booking


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


router = APIRouter(include_in_schema=False)


@router.get("/book")
async def book_page(request: Request, service: str = "") -> Response:
    here = desk(request)
    settings = here.settings
    if settings is None:
        return here.not_offered()
    if wait := here.views.retry_after(client(request)):
        return here.too_many(wait)
    chosen = settings.service(service)
    free = slots(await here.refreshed(request), settings, chosen, datetime.now(UTC)) if chosen else {}
    return here.form_page({"service": chosen.code if chosen else ""}, {}, free)


@router.post("/book")
async def book(request: Request) -> Response:
    here = desk(request)
    settings = here.settings
    if settings is None:
        return here.not_offered()
    body = await request.body()
    if len(body) > 20_000:
        return here.page("book_done.html", 413, title="Too much", message="The form is too large.")
    try:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    except Exception:  # noqa: BLE001 - a malformed body is the sender's problem, said plainly
        return here.page("book_done.html", 400, title="Unreadable form", message="Please fill in the form again.")
    if wait := here.posts.retry_after(client(request)) or here.bookings.retry_after(client(request), count=False):
        return here.too_many(wait)
    if form.get("website"):  # the honeypot: people never see it, bots fill it in
        return here.page("book_done.html", 200, title="Thank you", message="We have your request.")
    if done := await _booked_already(jobstream(request), form.get("key", "")):
        return done  # a double submit: the first booking's answer
    now = datetime.now(UTC)
    async with here.lock:  # one booking decided at a time, on a calendar read just now
        current = await here.refreshed(request)
        chosen = settings.service(form.get("service", ""))
        free = slots(current, settings, chosen, now) if chosen else {}
        booking, errors = check(form, settings, free)
        if booking is not None and current.bookings(_web_customer(booking), now.date()) >= settings.open_per_email:
            errors["email"] = "you have booked several visits today already; please call us for more"
        if booking is None or errors:
            return here.form_page(form, errors, free, 422)
        app_ = jobstream(request)
        try:
            job_id, technician = await app_.call(_book(app_, booking, current, settings.step_minutes))
        except SlotTaken:  # another replica booked it a moment ago
            errors["slot"] = "that time is no longer free: please choose another"
            return here.form_page(
                form, errors, slots(await here.refreshed(request), settings, booking.service, now), 409
            )
        if technician is not None and booking.slot is not None:
            end = booking.slot + timedelta(minutes=booking.service.minutes)
            current.busy[job_id] = ((technician,), booking.slot, end)  # before the stream says so
        current.booked[(_web_customer(booking), now.date())].add(job_id)  # before the stream says so
        here.bookings.retry_after(client(request))  # counted
    return _thanks(job_id, booking.slot, technician is not None)


@router.get("/book/thanks")
def thanks(request: Request, job: str = "", slot: str = "", scheduled: str = "") -> Response:
    here = desk(request)
    try:
        when = datetime.fromisoformat(slot) if slot else None
        reference = str(UUID(job))[:8].upper()
    except ValueError:
        return RedirectResponse("/book", status_code=303)
    if when is not None and scheduled == "yes":
        local = when.astimezone(here.zone)
        message = f"Your visit is booked for {local:%A %d %B at %H:%M}. Reference {reference}."
    else:
        message = f"We have your request and will call you to agree a time. Reference {reference}."
    return here.page("book_done.html", 200, title="Thank you", message=message)


def _thanks(job_id: UUID, slot: datetime | None, scheduled: bool) -> RedirectResponse:
    query = urlencode(
        {"job": str(job_id), "slot": slot.isoformat() if slot else "", "scheduled": "yes" if scheduled else "no"}
    )
    return RedirectResponse(f"/book/thanks?{query}", status_code=303)


async def _booked_already(app: Any, key: str) -> RedirectResponse | None:
    try:
        key = str(UUID(key))
    except ValueError:
        return None
    job_id = app.new_id(BOOKER, f"booking:{key}:request")
    job = (await app.call(app.load_async("job", job_id))).state
    if not job.exists:
        return None
    return _thanks(job_id, job.start, bool(job.technician_ids))


def _web_customer(booking: Booking) -> UUID:
    """The customer a booking's email address is (registered by the first booking from it)."""
    return derived_id("web-customer", booking.email)


async def _book(app: Any, booking: Booking, calendar: Calendar, step: int) -> tuple[UUID, UUID | None]:
    """The customer (known by their email address, else registered), the job, and its technician.
    Every command's id derives from the form's key, so a double submit books once."""
    key = f"booking:{booking.key}"
    customer_id = _web_customer(booking)
    known = await app.load_async("customer", customer_id)
    if known.version == 0:
        await app.execute_async(
            customer_id,
            RegisterCustomer(
                name=booking.name, billing_address=booking.address, email=booking.email, phone=booking.phone
            ),
            BOOKER,
            command_id=f"{key}:customer",
        )
    job_id = app.new_id(BOOKER, f"{key}:request")
    contact = f"Booked online by {booking.name}, {booking.email}" + (f", {booking.phone}" if booking.phone else "")

    async def request() -> None:  # once a slot is ours, or for the open pool (again: replayed)
        await app.execute_async(
            job_id,
            RequestJob(
                customer_id=customer_id,
                job_type=booking.service.code,
                description=booking.service.name,
                scope=(booking.details + "\n\n" if booking.details else "") + contact,
                source=Source.WEB,
                site_address=booking.address,
                estimate_minutes=booking.service.minutes,
            ),
            BOOKER,
            command_id=f"{key}:request",
        )

    if booking.slot is not None:
        for technician in calendar.free(booking.service.skill, booking.slot, booking.service.minutes):
            # the slots the visit covers, claimed on the stream: of two replicas booking
            # this technician's hour at once, one gets it (services.domain.slots)
            if not await _claimed(app, technician, booking.slot, booking.service.minutes, step, job_id):
                continue
            await request()
            try:
                await app.execute_async(
                    job_id,
                    ScheduleJob(
                        technician_ids=[technician], start=booking.slot, duration_minutes=booking.service.minutes
                    ),
                    BOOKER,
                    command_id=f"{key}:schedule",
                )
                return job_id, technician
            except DomainError:  # deactivated a moment ago: the next one
                continue
        if not (await app.load_async("job", job_id)).state.exists:
            raise SlotTaken(booking.slot)  # every one able was taken by another booking
    await request()
    await app.execute_async(
        job_id, UnassignJob(reason="booked online: any technician may take it"), BOOKER, command_id=f"{key}:pool"
    )
    return job_id, None


async def _claimed(app: Any, technician: UUID, start: datetime, minutes: int, step: int, job_id: UUID) -> bool:
    """Whether every slot from ``start`` for ``minutes`` (on the page's grid) is now this job's."""
    at = start
    while at < start + timedelta(minutes=minutes):
        try:
            await app.execute_async(
                slot_id(technician, at), ClaimSlot(technician_id=technician, start=at, job_id=job_id), BOOKER
            )
        except (SlotTaken, VersionConflict):
            return False
        at += timedelta(minutes=step)
    return True
