"""Questions the office, the technicians and the accountants ask of the read models.

Everything here reads; the projectors are the only writers. Each answer carries the
position the read models had reached, so a reader knows how fresh it is.
"""

from __future__ import annotations

import base64
import itertools
import statistics
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Container, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import structs

from projections.ledger import JournalLine, trial_balance, unbalanced
from projections.rows import (
    CustomerRow,
    EfacturaRow,
    InvoiceRow,
    JobRow,
    KsefRow,
    MessageRow,
    RecurrenceRow,
    TechnicianRow,
    UnmatchedRow,
    UserRow,
    invoice_status,
    iso,
    outstanding,
)
from projections.store import NO_DEADLINE, BoardTables, LedgerTables, TimesheetTables, open_view

OPEN = ("new", "scheduled", "in_progress", "on_hold")
AT_RISK_WITHIN = timedelta(hours=2)
SORTS = {
    "last_change": "last_change_at",
    "requested": "requested_at",
    "sla": "sla_deadline",
    "scheduled": "scheduled_start",
    "status": "status",
    "time": "minutes_logged",
}
_jobs = msgspec.json.Decoder(JobRow)
_customers = msgspec.json.Decoder(CustomerRow)
_technicians = msgspec.json.Decoder(TechnicianRow)


class Unavailable(Exception):
    """The read models did not reach the asked-for position in time (504)."""


class BoardFilter(msgspec.Struct, kw_only=True):
    status: list[str] = []
    job_type: str = ""
    technician_id: str = ""
    customer_id: str = ""
    priority: str = ""
    sla: str = ""  # at_risk, breached
    requested_from: str = ""
    requested_to: str = ""
    q: str = ""
    sort: str = "last_change"
    descending: bool = True
    after: str = ""
    limit: int = 50
    open_pool_too: bool = False  # technicians: their own jobs and the open pool


class BoardItem(msgspec.Struct, kw_only=True):
    id: UUID
    status: str
    job_type: str
    customer_id: UUID
    customer: str
    site: str
    description: str
    technicians: list[str]
    technician_ids: list[UUID]
    priority: str
    sla_deadline: datetime | None
    sla: str  # ok, at_risk, breached, none
    billing_kind: str
    minutes_logged: int
    billable_minutes: int
    scheduled_start: datetime | None
    requested_at: datetime
    last_change_at: datetime | None
    last_event: str
    version: int
    position: int


class BoardPage(msgspec.Struct, kw_only=True):
    items: list[BoardItem]
    total: int
    next: str | None
    position: int


def sla_state(row: JobRow, now: datetime) -> str:
    if row.sla_deadline is None:
        return "none"
    if row.status.value not in OPEN:
        done = row.completed_at
        return "breached" if done is not None and done > row.sla_deadline else "ok"
    if now > row.sla_deadline:
        return "breached"
    return "at_risk" if row.sla_deadline - now <= AT_RISK_WITHIN else "ok"


class Page(NamedTuple):
    position: int
    made_at: float
    data: bytes


class ReadModels:
    """The board and timesheet views on one database, for reading."""

    def __init__(self, url: str, timezone: str = "UTC") -> None:
        self.board: BoardTables = open_view("board", url)
        self.times: TimesheetTables = open_view("timesheets", url)
        self.ledger: LedgerTables = open_view("ledger", url)
        self.zone = ZoneInfo(timezone)
        self._users: dict[str, UserRow] = {}
        self.revoked: Container[UUID] = frozenset()  # token ids revoked on the stream
        self._pages: OrderedDict[bytes, Page] = OrderedDict()
        self._pages_lock = threading.Lock()
        self._making = threading.Lock()

    def close(self) -> None:
        self.board.datastore.close()
        self.times.datastore.close()
        self.ledger.datastore.close()

    def __enter__(self) -> ReadModels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- freshness -----------------------------------------------------------------------

    def position(self) -> int:
        """The position every projection has reached (the oldest of them)."""
        board = self.board.max_tracking_id("board") or 0
        times = self.times.max_tracking_id("timesheets") or 0
        ledger = self.ledger.max_tracking_id("ledger") or 0
        return min(board, times, ledger)

    def wait_for(self, position: int | None, timeout: float) -> int:
        """Block until the read models have reached ``position``; Unavailable after ``timeout``."""
        reached = self.position()
        if position is None or reached >= position:
            return reached
        deadline = time.monotonic() + timeout
        pause = 0.005
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            reached = self.position()
            if reached >= position:
                return reached
        raise Unavailable(
            f"the read models are at position {reached}; position {position} "
            f"was not reached within {timeout:g} s. Try again shortly."
        )

    # --- who is asking -------------------------------------------------------------------

    def cached_user(self, token_hash: str) -> UserRow | None:
        """The token's user as last read, without touching the database (None: not read yet)."""
        return self._as_revoked(self._users.get(token_hash))

    def user(self, token_hash: str) -> UserRow | None:
        """The token's user, read now. Only known users are remembered, so a token issued a
        moment ago works as soon as the board has read it; ``refresh_users`` reads the
        remembered ones again whenever the board moves."""
        user = self.board.user_by_hash(token_hash)
        if user is not None:
            self._users[token_hash] = user
        return self._as_revoked(user)

    def _as_revoked(self, user: UserRow | None) -> UserRow | None:
        """The user, revoked if the stream says so (``revoked``: the read API's
        ``Revocations``), however far the board projection has got."""
        if user is not None and not user.revoked and user.token_id in self.revoked:
            return structs.replace(user, revoked=True)
        return user

    def refresh_users(self) -> None:
        """Read every remembered token's user again, in one query."""
        remembered = list(self._users)
        if remembered:
            found = self.board.users_by_hash(remembered)
            self._users = {digest: found[digest] for digest in remembered if digest in found}

    # --- the board -----------------------------------------------------------------------

    def board_position(self) -> int:
        return self.board.max_tracking_id("board") or 0

    def latest_board(self, f: BoardFilter) -> Page | None:
        """The last page made for this filter (the position it is at least as new as, when, the JSON)."""
        with self._pages_lock:
            return self._pages.get(_filter_key(f))

    def board_json(self, f: BoardFilter) -> Page:
        """Make the page for this filter now, and keep it for the readers that follow.

        The board only changes when its projection commits a new position, so one page
        serves every reader of the same filter until then (the read API remakes it in the
        background when the position moves, or after a second, since whether an SLA is at
        risk also depends on the clock). One page is made at a time.
        """
        with self._making:
            position = self.board_position()  # read first: the page is at least this new
            made = Page(position, time.monotonic(), _page_encoder.encode(self.board_page(f)))
            with self._pages_lock:
                self._pages[_filter_key(f)] = made
                self._pages.move_to_end(_filter_key(f))
                while len(self._pages) > 512:
                    self._pages.popitem(last=False)
            return made

    def board_page(self, f: BoardFilter, now: datetime | None = None) -> BoardPage:
        now = now or datetime.now(UTC)
        where, params = self._where(f, now)
        column = SORTS.get(f.sort, "last_change_at")
        direction = "DESC" if f.descending else "ASC"
        clause = " AND ".join(where) or "1 = 1"
        total = self.board.query(f"SELECT COUNT(*) AS n FROM {{t}}jobs WHERE {clause}", params)[0]["n"]
        keyset, keyset_params = "", []
        if f.after:
            value, job_id = _cursor_decode(f.after)
            keyset = f" AND ({column}, id) {'<' if f.descending else '>'} (?, ?)"
            keyset_params = [value, job_id]
        rows = self.board.query(
            f"SELECT doc, {column} AS sort_value FROM {{t}}jobs WHERE {clause}{keyset} "
            f"ORDER BY {column} {direction}, id {direction} LIMIT ?",
            [*params, *keyset_params, f.limit + 1],
        )
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        jobs = [_jobs.decode(r["doc"]) for r in rows]
        items = self._items(jobs, now)
        next_cursor = _cursor_encode(rows[-1]["sort_value"], str(jobs[-1].id)) if more else None
        return BoardPage(items=items, total=total, next=next_cursor, position=self.position())

    def _where(self, f: BoardFilter, now: datetime) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if f.status:
            where.append(f"status IN ({', '.join('?' for _ in f.status)})")
            params.extend(f.status)
        for column, value in (("job_type", f.job_type), ("customer_id", f.customer_id), ("priority", f.priority)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if f.technician_id:
            mine = "id IN (SELECT job_id FROM {t}job_technicians WHERE technician_id = ?)"
            if f.open_pool_too:
                mine = f"({mine} OR (status = 'new' AND id NOT IN (SELECT job_id FROM {{t}}job_technicians)))"
            where.append(mine)
            params.append(f.technician_id)
        open_statuses = ", ".join(f"'{s}'" for s in OPEN)
        if f.sla == "breached":
            where.append(f"status IN ({open_statuses}) AND sla_deadline < ?")
            params.append(iso(now))
        elif f.sla == "at_risk":
            where.append(f"status IN ({open_statuses}) AND sla_deadline >= ? AND sla_deadline <= ?")
            params.extend([iso(now), iso(now + AT_RISK_WITHIN)])
        if f.requested_from:
            where.append("requested_at >= ?")
            params.append(f.requested_from)
        if f.requested_to:
            where.append("requested_at < ?")
            params.append(f.requested_to)
        if f.q:
            needle = f"%{f.q.lower()}%"
            where.append("(search LIKE ? OR customer_id IN (SELECT id FROM {t}customers WHERE search LIKE ?))")
            params.extend([needle, needle])
        return where, params

    def _items(self, jobs: list[JobRow], now: datetime) -> list[BoardItem]:
        customers = self.customers_by_id({j.customer_id for j in jobs})
        technicians = self.technicians_by_id({t for j in jobs for t in j.technician_ids})
        return [
            BoardItem(
                id=j.id,
                status=j.status.value,
                job_type=j.job_type,
                customer_id=j.customer_id,
                customer=customers[j.customer_id].name if j.customer_id in customers else "?",
                site=j.site,
                description=j.description,
                technicians=[technicians[t].name if t in technicians else "?" for t in j.technician_ids],
                technician_ids=j.technician_ids,
                priority=j.priority,
                sla_deadline=j.sla_deadline,
                sla=sla_state(j, now),
                billing_kind=j.billing_kind,
                minutes_logged=j.minutes_logged,
                billable_minutes=j.billable_minutes,
                scheduled_start=j.scheduled_start,
                requested_at=j.requested_at,
                last_change_at=j.last_change_at,
                last_event=j.last_event,
                version=j.version,
                position=j.position,
            )
            for j in jobs
        ]

    def job(self, job_id: UUID) -> JobRow | None:
        return self.board.jobs_by_id([job_id]).get(job_id)

    def invoices(self, limit: int = 200, job_id: UUID | None = None, ksef: str = "") -> list[InvoiceRow]:
        """Invoices with their status as of today in the company's time zone (overdue included),
        or only those in one KSeF state."""
        today = datetime.now(self.zone).date().isoformat()
        return [
            structs.replace(row, status=invoice_status(row, today))
            for row in self.board.invoice_list(limit, job_id, ksef)
        ]

    def ksef(self, ids: Iterable[UUID]) -> dict[UUID, KsefRow]:
        """The documents' KSeF rows, by id (a document KSeF was never asked about has none)."""
        return self.board.ksef_by_id(ids)

    def efactura(self, ids: Iterable[UUID]) -> dict[UUID, EfacturaRow]:
        """The documents' e-Factura rows, by id (a document never prepared for upload has none)."""
        return self.board.efactura_by_id(ids)

    def ksef_warnings(self) -> list[KsefRow]:
        """What the office must act on in KSeF: offline documents whose deadline nears, refused
        and held documents; the nearest deadline first."""
        return self.board.ksef_list(("deadline_near", "refused", "held"))

    def messages(self, states: Sequence[str] = (), about: Iterable[UUID] = (), limit: int = 200) -> list[MessageRow]:
        return self.board.messages(states, about, limit)

    def recurrences(self) -> list[RecurrenceRow]:
        return self.board.recurrence_list()

    def invoice_emails(self, invoices: Iterable[InvoiceRow]) -> dict[UUID, MessageRow]:
        """Each invoice's latest email (its delivery state), by invoice id."""
        latest: dict[UUID, MessageRow] = {}
        for message in self.board.messages((), [i.id for i in invoices], limit=10_000):
            if message.channel == "email" and message.about_id is not None and message.about_id not in latest:
                latest[message.about_id] = message
        return latest

    def unmatched(self, limit: int = 500) -> list[UnmatchedRow]:
        return self.board.unmatched_list(limit)

    def reconciliation(self) -> dict[str, Any]:
        """Completed jobs against billing, from the board: invoiced, not billed (why), held
        (why: the office must act), and still waiting for the invoicer."""
        invoiced = self.board.query("SELECT COUNT(*) AS n FROM {t}jobs WHERE status = 'invoiced'")[0]["n"]
        found: dict[str, list[dict[str, str]]] = {"not billed": [], "held": [], "waiting": []}
        for row in self.board.query("SELECT doc FROM {t}jobs WHERE status = 'completed'"):
            job = msgspec.json.decode(row["doc"], type=JobRow)
            note = job.billing_note
            kind = (
                "not billed"
                if note.startswith("not billed")
                else "held"
                if note.startswith("invoice held")
                else "waiting"
            )
            found[kind].append({"job_id": str(job.id), "job_type": job.job_type, "reason": note})
        return {"invoiced": invoiced, **{k.replace(" ", "_"): v for k, v in found.items()}}

    # --- the ledger ------------------------------------------------------------------------

    def journal(self, since: str = "", until: str = "9999") -> list[JournalLine]:
        return self.ledger.journal_lines(since, until)

    def trial_balance(self, until: str = "9999") -> dict[str, Any]:
        balances = trial_balance(self.ledger.journal_lines("", until))
        return {"balances": balances, "unbalanced": unbalanced(balances)}

    def aging(self) -> list[dict[str, Any]]:
        """What each customer owes, by days past due: current, 1-30, 31-60, 61-90, 90+; their
        credit (what they paid beyond their invoices, in that currency); and the total, net of it."""
        today = datetime.now(self.zone).date()
        buckets = ("current", "1-30", "31-60", "61-90", "90+")
        owed: dict[tuple[str, str], dict[str, Decimal]] = {}
        names: dict[str, str] = {}
        for row in self.board.invoice_list(1_000_000):
            left = outstanding(row)
            if left == 0:
                continue
            key = (str(row.customer_id), row.currency)
            names[key[0]] = row.customer
            amounts = owed.setdefault(key, {b: Decimal(0) for b in (*buckets, "credit")})
            if left < 0:  # overpaid: the customer's credit
                amounts["credit"] -= left
                continue
            late = (today - date.fromisoformat(row.due_date)).days
            amounts[buckets[0 if late <= 0 else 1 if late <= 30 else 2 if late <= 60 else 3 if late <= 90 else 4]] += (
                left
            )
        return [
            {
                "customer_id": customer,
                "customer": names[customer],
                "currency": currency,
                **{b: str(v) for b, v in amounts.items()},
                "total": str(sum(amounts[b] for b in buckets) - amounts["credit"]),
            }
            for (customer, currency), amounts in sorted(owed.items(), key=lambda kv: names[kv[0][0]])
        ]

    def invoice(self, invoice_id: UUID) -> InvoiceRow | None:
        return self.board.invoices_by_id([invoice_id]).get(invoice_id)

    def board_item(self, job: JobRow) -> BoardItem:
        return self._items([job], datetime.now(UTC))[0]

    def history(self, job_id: UUID) -> list[dict[str, Any]]:
        return self.board.query(
            "SELECT position, version, occurred_at, event_type, actor_id, actor_role, "
            "summary FROM {t}job_history WHERE job_id = ? ORDER BY position",
            (str(job_id),),
        )

    def customers_by_id(self, ids: Iterable[UUID]) -> dict[UUID, CustomerRow]:
        return self.board.customers_by_id(ids)

    def technicians_by_id(self, ids: Iterable[UUID]) -> dict[UUID, TechnicianRow]:
        return self.board.technicians_by_id(ids)

    def customers(self) -> list[CustomerRow]:
        rows = self.board.query("SELECT doc FROM {t}customers ORDER BY name")
        return [_customers.decode(r["doc"]) for r in rows]

    def technicians(self) -> list[TechnicianRow]:
        rows = self.board.query("SELECT doc FROM {t}technicians ORDER BY name")
        return [_technicians.decode(r["doc"]) for r in rows]

    def job_types(self) -> list[str]:
        return [r["job_type"] for r in self.board.query("SELECT DISTINCT job_type FROM {t}jobs ORDER BY job_type")]

    # --- the schedule ----------------------------------------------------------------------

    def schedule(
        self, start: date, days: int, technician_id: str = "", work_hours: tuple[int, int] = (8, 17)
    ) -> list[dict[str, Any]]:
        """Per technician per day: the visits (busy), the free slots, and double bookings."""
        begin = datetime.combine(start, datetime.min.time(), self.zone)
        end = begin + timedelta(days=days)
        params: list[Any] = [iso(begin - timedelta(days=1)), iso(end)]
        extra = ""
        if technician_id:
            extra = " AND jt.technician_id = ?"
            params.append(technician_id)
        rows = self.board.query(
            "SELECT jt.technician_id, j.doc FROM {t}jobs j JOIN {t}job_technicians jt ON jt.job_id = j.id "
            "WHERE j.scheduled_start >= ? AND j.scheduled_start < ? AND j.status <> 'cancelled'" + extra,
            params,
        )
        technicians = [t for t in self.technicians() if t.active and (not technician_id or str(t.id) == technician_id)]
        visits: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            job = _jobs.decode(r["doc"])
            assert job.scheduled_start is not None
            local_start = job.scheduled_start.astimezone(self.zone)
            local_end = local_start + timedelta(minutes=job.duration_minutes or 60)
            visits[(r["technician_id"], local_start.date())].append(
                {
                    "job_id": str(job.id),
                    "start": local_start,
                    "end": local_end,
                    "status": job.status.value,
                    "job_type": job.job_type,
                    "site": job.site,
                    "description": job.description,
                }
            )
        result = []
        for technician in technicians:
            for offset in range(days):
                day = start + timedelta(days=offset)
                busy = sorted(visits.get((str(technician.id), day), []), key=lambda v: v["start"])
                for earlier, later in itertools.pairwise(busy):
                    if later["start"] < earlier["end"]:
                        earlier["conflict"] = later["conflict"] = True
                result.append(
                    {
                        "technician_id": str(technician.id),
                        "technician": technician.name,
                        "day": day,
                        "busy": busy,
                        "free": _free_slots(day, busy, self.zone, work_hours),
                    }
                )
        return result

    # --- timesheets --------------------------------------------------------------------------

    def timesheet(
        self, period: str, begin: date, end: date, technician_id: str = "", job_id: str = "", by: str = "technician"
    ) -> list[dict[str, Any]]:
        """Minutes per technician or per job, per day, week or month, billable and not."""
        params: list[Any] = [
            iso(datetime.combine(begin, datetime.min.time(), self.zone)),
            iso(datetime.combine(end, datetime.min.time(), self.zone)),
        ]
        extra = ""
        if technician_id:
            extra += " AND technician_id = ?"
            params.append(technician_id)
        if job_id:
            extra += " AND job_id = ?"
            params.append(job_id)
        rows = self.times.query(
            "SELECT technician_id, job_id, started_at, minutes, billable FROM "
            "{t}time_entries WHERE started_at >= ? AND started_at < ?" + extra,
            params,
        )
        per_job = by == "job" or bool(job_id)
        if per_job:
            jobs = self.board.jobs_by_id({UUID(r["job_id"]) for r in rows})
            names = {str(j.id): f"{j.job_type}: {j.description[:50]}" for j in jobs.values()}
        else:
            names = {str(t.id): t.name for t in self.technicians()}
        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            local = datetime.fromisoformat(r["started_at"]).astimezone(self.zone).date()
            key = (r["job_id"] if per_job else r["technician_id"], _period(local, period))
            totals[key][0 if r["billable"] else 1] += r["minutes"]
        return [
            {
                "who": names.get(who, who),
                "id": who,
                "period": label,
                "billable_minutes": b,
                "non_billable_minutes": n,
                "total_minutes": b + n,
            }
            for (who, label), (b, n) in sorted(totals.items(), key=lambda kv: (kv[0][1], names.get(kv[0][0], "")))
        ]

    # --- reports -------------------------------------------------------------------------

    def reports(self, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        now = now or datetime.now(UTC)
        q = self.board.query
        in_progress = q(
            "SELECT id, job_type, requested_at FROM {t}jobs WHERE status = 'in_progress' ORDER BY requested_at"
        )
        open_rows = q("SELECT requested_at FROM {t}jobs WHERE status IN ('new', 'scheduled', 'on_hold')")
        ages = Counter(_age_bucket(now - datetime.fromisoformat(r["requested_at"])) for r in open_rows)
        overdue = q(
            "SELECT id, job_type, sla_deadline, status FROM {t}jobs WHERE status IN "
            "('new', 'scheduled', 'in_progress', 'on_hold') AND sla_deadline < ? ORDER BY sla_deadline",
            (iso(now),),
        )
        done = q("SELECT requested_at, completed_at, first_visit FROM {t}jobs WHERE completed_at <> ''")
        hours = [
            (datetime.fromisoformat(r["completed_at"]) - datetime.fromisoformat(r["requested_at"])).total_seconds()
            / 3600
            for r in done
        ]
        completion = Counter(_duration_bucket(h) for h in hours)
        types = q("SELECT job_type, COUNT(*) AS jobs FROM {t}jobs GROUP BY job_type ORDER BY COUNT(*) DESC, job_type")
        first = [r["first_visit"] for r in done if r["first_visit"] is not None]
        per_tech = q(
            "SELECT jt.technician_id, COUNT(*) AS completed FROM {t}jobs j JOIN {t}job_technicians jt "
            "ON jt.job_id = j.id WHERE j.completed_at <> '' GROUP BY jt.technician_id"
        )
        minutes = {
            r["technician_id"]: r["minutes"]
            for r in self.times.query(
                "SELECT technician_id, SUM(minutes) AS minutes FROM {t}time_entries GROUP BY technician_id"
            )
        }
        names = {str(t.id): t.name for t in self.technicians()}
        completed = {r["technician_id"]: r["completed"] for r in per_tech}
        return {
            "in_progress": [
                {"job_id": r["id"], "job_type": r["job_type"], "requested_at": r["requested_at"]} for r in in_progress
            ],
            "backlog_by_age": [{"age": bucket, "jobs": ages.get(bucket, 0)} for bucket in AGE_BUCKETS],
            "overdue": [
                {"job_id": r["id"], "job_type": r["job_type"], "sla_deadline": r["sla_deadline"], "status": r["status"]}
                for r in overdue
                if r["sla_deadline"] != NO_DEADLINE
            ],
            "completion_time": [{"took": bucket, "jobs": completion.get(bucket, 0)} for bucket in DURATION_BUCKETS]
            + ([{"took": "median hours", "jobs": round(statistics.median(hours), 1)}] if hours else []),
            "job_types": [{"job_type": r["job_type"], "jobs": r["jobs"]} for r in types],
            "first_visit": [
                {
                    "completed": len(first),
                    "first_visit": sum(1 for f in first if f),
                    "rate_percent": round(100 * sum(1 for f in first if f) / len(first), 1) if first else 0.0,
                }
            ],
            "technicians": [
                {
                    "technician": names.get(t, t),
                    "completed_jobs": completed.get(t, 0),
                    "hours": round(minutes.get(t, 0) / 60, 2),
                }
                for t in sorted(set(completed) | set(minutes), key=lambda t: names.get(t, t))
            ],
        }


PAGE_TTL = 1.0
_page_encoder = msgspec.json.Encoder()
_filter_encoder = msgspec.json.Encoder()


def _filter_key(f: BoardFilter) -> bytes:
    return _filter_encoder.encode(f)


AGE_BUCKETS = ("under 1 day", "1-3 days", "3-7 days", "7-30 days", "over 30 days")
DURATION_BUCKETS = ("under 4 hours", "4-24 hours", "1-3 days", "3-7 days", "over 7 days")


def _age_bucket(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    for limit, bucket in zip((1, 3, 7, 30), AGE_BUCKETS, strict=False):
        if days < limit:
            return bucket
    return AGE_BUCKETS[-1]


def _duration_bucket(hours: float) -> str:
    for limit, bucket in zip((4, 24, 72, 168), DURATION_BUCKETS, strict=False):
        if hours < limit:
            return bucket
    return DURATION_BUCKETS[-1]


def _period(day: date, period: str) -> str:
    if period == "month":
        return day.strftime("%Y-%m")
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


def _free_slots(
    day: date, busy: list[dict[str, Any]], zone: ZoneInfo, work_hours: tuple[int, int]
) -> list[dict[str, datetime]]:
    cursor = datetime.combine(day, datetime.min.time(), zone).replace(hour=work_hours[0])
    close = cursor.replace(hour=work_hours[1])
    free = []
    for visit in busy:
        if visit["start"] > cursor:
            free.append({"start": cursor, "end": min(visit["start"], close)})
        cursor = max(cursor, visit["end"])
    if cursor < close:
        free.append({"start": cursor, "end": close})
    return [slot for slot in free if slot["end"] > slot["start"]]


def _cursor_encode(value: Any, job_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([value, job_id])).decode()


def _cursor_decode(cursor: str) -> tuple[Any, str]:
    try:
        value, job_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as error:
        raise ValueError("after: not a cursor this board gave out") from error
    return value, str(job_id)
