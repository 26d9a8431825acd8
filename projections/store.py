"""Where the read models live: SQLite by default, PostgreSQL when configured.

Each projection's view is one of the eventsourcing library's own tracking recorders
(``SQLiteTrackingRecorder``, ``PostgresTrackingRecorder``) with the projection's tables
added, so a batch of rows and the tracking position of its last event are committed in
one transaction: a redelivered or replayed event finds its position already recorded and
changes nothing twice.

The SQL is written once, with ``?`` placeholders, in the subset both databases share
(``ON CONFLICT ... DO UPDATE``, row values, text timestamps that sort as time).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    OperationalError,
    Tracking,
)
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections.ledger import JournalLine
from projections.rows import (
    CustomerRow,
    EfacturaRow,
    HistoryRow,
    InvoiceRow,
    JobRow,
    KsefRow,
    MessageRow,
    RecurrenceRow,
    TechnicianRow,
    TimeRow,
    UnmatchedRow,
    UserRow,
    iso,
)

_encode = msgspec.json.Encoder(decimal_format="string").encode
_job_decoder = msgspec.json.Decoder(JobRow)
_customer_decoder = msgspec.json.Decoder(CustomerRow)
_technician_decoder = msgspec.json.Decoder(TechnicianRow)
_recurrence_decoder = msgspec.json.Decoder(RecurrenceRow)
_invoice_decoder = msgspec.json.Decoder(InvoiceRow)
_ksef_decoder = msgspec.json.Decoder(KsefRow)
_efactura_decoder = msgspec.json.Decoder(EfacturaRow)


def store_env(url: str) -> dict[str, str]:
    """The eventsourcing factory settings for a read-model URL.

    ``sqlite:///path/readmodels.db`` or ``postgresql://user@host:5432/db?schema=name``.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = parsed.path if not parsed.netloc else parsed.netloc + parsed.path
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "CREATE_TABLE": "y",
        }
    if parsed.scheme in ("postgres", "postgresql"):
        schema = parse_qs(parsed.query).get("schema", ["public"])[0]
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parsed.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": parsed.username or os.environ.get("USER", "postgres"),
            "POSTGRES_PASSWORD": parsed.password or "",
            "POSTGRES_SCHEMA": schema,
            "CREATE_TABLE": "y",
            # two connections held open per view, up to ten under load
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "8",
        }
    raise ValueError(f"read model URL: {url!r} is neither sqlite:///path nor postgresql://...")


@dataclass
class Batch:
    """Rows a batch of events produced, written in one transaction with its position."""

    jobs: dict[UUID, JobRow] = field(default_factory=dict)
    customers: dict[UUID, CustomerRow] = field(default_factory=dict)
    technicians: dict[UUID, TechnicianRow] = field(default_factory=dict)
    users: dict[UUID, UserRow] = field(default_factory=dict)
    history: list[HistoryRow] = field(default_factory=list)
    times: dict[UUID, TimeRow] = field(default_factory=dict)
    invoices: dict[UUID, InvoiceRow] = field(default_factory=dict)
    unmatched: list[UnmatchedRow] = field(default_factory=list)
    messages: dict[UUID, MessageRow] = field(default_factory=dict)
    recurrences: dict[UUID, RecurrenceRow] = field(default_factory=dict)
    ksef: dict[UUID, KsefRow] = field(default_factory=dict)
    efactura: dict[UUID, EfacturaRow] = field(default_factory=dict)
    journal: list[JournalLine] = field(default_factory=list)
    ledger_invoices: dict[UUID, tuple[str, UUID, str]] = field(default_factory=dict)  # number, customer, currency


class Tables:
    """The read models' SQL, shared by the SQLite and PostgreSQL views."""

    qualify = ""  # "schema." on PostgreSQL
    TABLES: tuple[str, ...] = ()
    datastore: Any  # given by the recorder each view is mixed with (SQLite's or PostgreSQL's)
    if TYPE_CHECKING:  # that recorder's too

        def max_tracking_id(self, application_name: str) -> int | None: ...

    def ddl(self) -> list[str]:
        return [statement.format(t=self.qualify) for statement in self.TABLES]

    def sql(self, text: str) -> str:
        return text.format(t=self.qualify)

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def execute(self, cursor: Any, text: str, params: Sequence[Any] = ()) -> Any:
        cursor.execute(self.sql(text), params)
        return cursor

    def many(self, cursor: Any, text: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            cursor.executemany(self.sql(text), rows)

    def query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.reading() as cursor:
            return [dict(row) for row in self.execute(cursor, text, params).fetchall()]

    tracking_table = "tracking"

    def commit(self, batch: Batch, tracking: Tracking, expected: int) -> None:
        """The rows and the new position, in one transaction, if the position is still ``expected``.

        The rows were evolved from what the view held at ``expected``; if another runner
        moved the position meanwhile they are stale, and nothing is written
        (IntegrityError). A compare-and-set, not "is newer": runners reading pages of
        different sizes must not stack one page's effect on another's.
        """
        with self.writing() as cursor:
            self.write(cursor, batch)
            if expected:
                cursor.execute(
                    self.sql(
                        f"UPDATE {{t}}{self.tracking_table} SET notification_id = ? "
                        "WHERE application_name = ? AND notification_id = ? RETURNING notification_id"
                    ),
                    (tracking.notification_id, tracking.application_name, expected),
                )
            else:
                cursor.execute(
                    self.sql(
                        f"INSERT INTO {{t}}{self.tracking_table} (application_name, notification_id) VALUES (?, ?) "
                        "ON CONFLICT (application_name) DO NOTHING RETURNING notification_id"
                    ),
                    (tracking.application_name, tracking.notification_id),
                )
            if cursor.fetchone() is None:
                raise IntegrityError(
                    f"{tracking.application_name}: position moved on from {expected}; "
                    f"not recording {tracking.notification_id}"
                )

    def write(self, cursor: Any, batch: Batch) -> None:
        raise NotImplementedError


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


class BoardTables(Tables):
    """Jobs, their technicians and timelines, customers, technicians and users."""

    TABLES = (
        "CREATE TABLE IF NOT EXISTS {t}jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
        "customer_id TEXT NOT NULL, job_type TEXT NOT NULL, priority TEXT NOT NULL, "
        "sla_deadline TEXT NOT NULL, billing_kind TEXT NOT NULL, requested_at TEXT NOT NULL, "
        "last_change_at TEXT NOT NULL, scheduled_start TEXT NOT NULL, completed_at TEXT NOT NULL, "
        "minutes_logged BIGINT NOT NULL, first_visit INTEGER, search TEXT NOT NULL, "
        "position BIGINT NOT NULL, "
        "doc TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS jobs_last_change ON {t}jobs (last_change_at, id)",
        "CREATE INDEX IF NOT EXISTS jobs_requested ON {t}jobs (requested_at, id)",
        "CREATE INDEX IF NOT EXISTS jobs_sla ON {t}jobs (sla_deadline, id)",
        "CREATE INDEX IF NOT EXISTS jobs_status ON {t}jobs (status, last_change_at, id)",
        "CREATE INDEX IF NOT EXISTS jobs_customer ON {t}jobs (customer_id, last_change_at)",
        "CREATE INDEX IF NOT EXISTS jobs_scheduled ON {t}jobs (scheduled_start)",
        "CREATE TABLE IF NOT EXISTS {t}job_technicians (job_id TEXT NOT NULL, "
        "technician_id TEXT NOT NULL, PRIMARY KEY (job_id, technician_id))",
        "CREATE INDEX IF NOT EXISTS job_technicians_tech ON {t}job_technicians (technician_id)",
        "CREATE TABLE IF NOT EXISTS {t}customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "search TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}technicians (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "active INTEGER NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}users (token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, "
        "user_name TEXT NOT NULL, role TEXT NOT NULL, technician_id TEXT, revoked INTEGER NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS users_hash ON {t}users (token_hash)",
        "CREATE TABLE IF NOT EXISTS {t}job_history (job_id TEXT NOT NULL, position BIGINT NOT NULL, "
        "version BIGINT NOT NULL, occurred_at TEXT NOT NULL, event_type TEXT NOT NULL, "
        "actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, summary TEXT NOT NULL, "
        "PRIMARY KEY (job_id, position))",
        "CREATE TABLE IF NOT EXISTS {t}invoices (id TEXT PRIMARY KEY, number TEXT NOT NULL, "
        "job_id TEXT NOT NULL, customer_id TEXT NOT NULL, issue_date TEXT NOT NULL, "
        "due_date TEXT NOT NULL, status TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS invoices_issued ON {t}invoices (issue_date, number)",
        "CREATE INDEX IF NOT EXISTS invoices_job ON {t}invoices (job_id)",
        "CREATE TABLE IF NOT EXISTS {t}messages (id TEXT PRIMARY KEY, channel TEXT NOT NULL, purpose TEXT NOT NULL, "
        "recipient TEXT NOT NULL, subject TEXT NOT NULL, about_kind TEXT NOT NULL, about_id TEXT NOT NULL, "
        "state TEXT NOT NULL, attempts BIGINT NOT NULL, detail TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS messages_state ON {t}messages (state, updated_at)",
        "CREATE INDEX IF NOT EXISTS messages_about ON {t}messages (about_id, position)",
        "CREATE TABLE IF NOT EXISTS {t}recurrences (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
        "position BIGINT NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}unmatched_lines (statement_id TEXT NOT NULL, line BIGINT NOT NULL, "
        "amount TEXT NOT NULL, currency TEXT NOT NULL, payer TEXT NOT NULL, text TEXT NOT NULL, "
        "reason TEXT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (statement_id, line))",
        # each Polish document's KSeF state (an invoice's or a credit note's, by its id)
        "CREATE TABLE IF NOT EXISTS {t}ksef_documents (id TEXT PRIMARY KEY, document_kind TEXT NOT NULL, "
        "number TEXT NOT NULL, state TEXT NOT NULL, deadline TEXT NOT NULL, position BIGINT NOT NULL, "
        "doc TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ksef_documents_state ON {t}ksef_documents (state, deadline)",
        # each Romanian document's e-Factura state (by the document's id)
        "CREATE TABLE IF NOT EXISTS {t}efactura_documents (id TEXT PRIMARY KEY, number TEXT NOT NULL, "
        "state TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL)",
    )

    def write(self, cursor: Any, batch: Batch) -> None:
        jobs = batch.jobs.values()
        self.many(cursor, JOB_UPSERT, (_job_values(row) for row in jobs))
        self.many(cursor, "DELETE FROM {t}job_technicians WHERE job_id = ?", ((str(row.id),) for row in jobs))
        self.many(
            cursor,
            "INSERT INTO {t}job_technicians VALUES (?, ?)",
            ((str(row.id), str(tech)) for row in jobs for tech in dict.fromkeys(row.technician_ids)),
        )
        self.many(
            cursor,
            CUSTOMER_UPSERT,
            (
                (
                    str(c.id),
                    c.name,
                    f"{c.name} {c.email} {c.billing_address.city}".lower(),
                    c.position,
                    _encode(c).decode(),
                )
                for c in batch.customers.values()
            ),
        )
        self.many(
            cursor,
            TECHNICIAN_UPSERT,
            ((str(t.id), t.name, int(t.active), t.position, _encode(t).decode()) for t in batch.technicians.values()),
        )
        self.many(
            cursor,
            USER_UPSERT,
            (
                (
                    str(u.token_id),
                    u.token_hash,
                    u.user_name,
                    u.role,
                    str(u.technician_id) if u.technician_id else None,
                    int(u.revoked),
                )
                for u in batch.users.values()
            ),
        )
        self.many(
            cursor,
            INVOICE_UPSERT,
            (
                (
                    str(i.id),
                    i.number,
                    str(i.job_id),
                    str(i.customer_id),
                    i.issue_date,
                    i.due_date,
                    i.status,
                    i.position,
                    _encode(i).decode(),
                )
                for i in batch.invoices.values()
            ),
        )
        self.many(
            cursor,
            "INSERT INTO {t}recurrences VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "customer_id = excluded.customer_id, position = excluded.position, doc = excluded.doc",
            ((str(r.id), str(r.plan.customer_id), r.position, _encode(r).decode()) for r in batch.recurrences.values()),
        )
        self.many(
            cursor,
            MESSAGE_UPSERT,
            (
                (
                    str(m.id),
                    m.channel,
                    m.purpose,
                    m.recipient,
                    m.subject,
                    m.about_kind,
                    str(m.about_id or ""),
                    m.state,
                    m.attempts,
                    m.detail,
                    m.updated_at,
                    m.position,
                )
                for m in batch.messages.values()
            ),
        )
        self.many(
            cursor,
            "INSERT INTO {t}unmatched_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (statement_id, line) DO NOTHING",
            (
                (str(u.statement_id), u.line, u.amount, u.currency, u.payer, u.text, u.reason, u.position)
                for u in batch.unmatched
            ),
        )
        self.many(
            cursor,
            KSEF_UPSERT,
            (
                (str(k.id), k.document_kind, k.number, k.state, k.deadline, k.position, _encode(k).decode())
                for k in batch.ksef.values()
            ),
        )
        self.many(
            cursor,
            EFACTURA_UPSERT,
            ((str(e.id), e.number, e.state, e.position, _encode(e).decode()) for e in batch.efactura.values()),
        )
        self.many(
            cursor,
            HISTORY_INSERT,
            (
                (
                    str(h.job_id),
                    h.position,
                    h.version,
                    iso(h.occurred_at),
                    h.event_type,
                    h.actor_id,
                    h.actor_role,
                    h.summary,
                )
                for h in batch.history
            ),
        )

    # --- rows the projector evolves ------------------------------------------------------

    def jobs_by_id(self, ids: Iterable[UUID]) -> dict[UUID, JobRow]:
        return {row.id: row for row in self._docs("jobs", ids, _job_decoder)}

    def customers_by_id(self, ids: Iterable[UUID]) -> dict[UUID, CustomerRow]:
        return {row.id: row for row in self._docs("customers", ids, _customer_decoder)}

    def technicians_by_id(self, ids: Iterable[UUID]) -> dict[UUID, TechnicianRow]:
        return {row.id: row for row in self._docs("technicians", ids, _technician_decoder)}

    def invoices_by_id(self, ids: Iterable[UUID]) -> dict[UUID, InvoiceRow]:
        return {row.id: row for row in self._docs("invoices", ids, _invoice_decoder)}

    def recurrences_by_id(self, ids: Iterable[UUID]) -> dict[UUID, RecurrenceRow]:
        return {row.id: row for row in self._docs("recurrences", ids, _recurrence_decoder)}

    def recurrence_list(self, limit: int = 500) -> list[RecurrenceRow]:
        rows = self.query("SELECT doc FROM {t}recurrences ORDER BY position DESC LIMIT ?", (limit,))
        return [_recurrence_decoder.decode(r["doc"]) for r in rows]

    def messages_by_id(self, ids: Iterable[UUID]) -> dict[UUID, MessageRow]:
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        rows = self.query(f"SELECT * FROM {{t}}messages WHERE id IN ({_marks(wanted)})", wanted)
        return {UUID(r["id"]): message_row(r) for r in rows}

    def messages(self, states: Sequence[str] = (), about: Iterable[UUID] = (), limit: int = 200) -> list[MessageRow]:
        """Messages in these states (all when none), or about these documents; the latest first."""
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({_marks(states)})")
            params.extend(states)
        ids = [str(i) for i in about]
        if ids:
            where.append(f"about_id IN ({_marks(ids)})")
            params.extend(ids)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self.query(f"SELECT * FROM {{t}}messages {clause}ORDER BY position DESC LIMIT ?", [*params, limit])
        return [message_row(r) for r in rows]

    def invoice_list(self, limit: int = 200, job_id: UUID | None = None, ksef: str = "") -> list[InvoiceRow]:
        """The latest invoices first (or one job's), or only those in this KSeF state ("none":
        the invoices KSeF was never asked about)."""
        if job_id is not None:
            rows = self.query("SELECT doc FROM {t}invoices WHERE job_id = ? ORDER BY number", (str(job_id),))
        elif ksef == "none":
            rows = self.query(
                "SELECT i.doc FROM {t}invoices i LEFT JOIN {t}ksef_documents k ON k.id = i.id WHERE k.id IS NULL "
                "ORDER BY i.issue_date DESC, i.number DESC LIMIT ?",
                (limit,),
            )
        elif ksef:
            rows = self.query(
                "SELECT i.doc FROM {t}invoices i JOIN {t}ksef_documents k ON k.id = i.id WHERE k.state = ? "
                "ORDER BY i.issue_date DESC, i.number DESC LIMIT ?",
                (ksef, limit),
            )
        else:
            rows = self.query("SELECT doc FROM {t}invoices ORDER BY issue_date DESC, number DESC LIMIT ?", (limit,))
        return [_invoice_decoder.decode(r["doc"]) for r in rows]

    def ksef_by_id(self, ids: Iterable[UUID]) -> dict[UUID, KsefRow]:
        """The documents' KSeF rows (a document KSeF was never asked about has none)."""
        return {row.id: row for row in self._docs("ksef_documents", ids, _ksef_decoder)}

    def efactura_by_id(self, ids: Iterable[UUID]) -> dict[UUID, EfacturaRow]:
        """The documents' e-Factura rows (a document never prepared for upload has none)."""
        return {row.id: row for row in self._docs("efactura_documents", ids, _efactura_decoder)}

    def ksef_list(self, states: Sequence[str], limit: int = 500) -> list[KsefRow]:
        """Documents in these KSeF states, the nearest deadline first."""
        rows = self.query(
            f"SELECT doc FROM {{t}}ksef_documents WHERE state IN ({_marks(states)}) ORDER BY deadline, number LIMIT ?",
            [*states, limit],
        )
        return [_ksef_decoder.decode(r["doc"]) for r in rows]

    def unmatched_list(self, limit: int = 500) -> list[UnmatchedRow]:
        rows = self.query("SELECT * FROM {t}unmatched_lines ORDER BY position DESC, line LIMIT ?", (limit,))
        return [
            UnmatchedRow(
                statement_id=UUID(r["statement_id"]),
                line=r["line"],
                amount=r["amount"],
                currency=r["currency"],
                payer=r["payer"],
                text=r["text"],
                reason=r["reason"],
                position=r["position"],
            )
            for r in rows
        ]

    def users_by_id(self, ids: Iterable[UUID]) -> dict[UUID, UserRow]:
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        rows = self.query(f"SELECT * FROM {{t}}users WHERE token_id IN ({_marks(wanted)})", wanted)
        return {UUID(r["token_id"]): user_row(r) for r in rows}

    def user_by_hash(self, token_hash: str) -> UserRow | None:
        rows = self.query("SELECT * FROM {t}users WHERE token_hash = ?", (token_hash,))
        return user_row(rows[0]) if rows else None

    def users_by_hash(self, token_hashes: Sequence[str]) -> dict[str, UserRow]:
        return {
            r["token_hash"]: user_row(r) for r in self.query_in("SELECT * FROM {t}users WHERE token_hash", token_hashes)
        }

    def _docs(self, table: str, ids: Iterable[UUID], decoder: msgspec.json.Decoder[Any]) -> list[Any]:
        return [
            decoder.decode(r["doc"])
            for r in self.query_in(f"SELECT doc FROM {{t}}{table} WHERE id", [str(i) for i in ids])
        ]

    def query_in(self, select: str, values: Sequence[str]) -> list[Any]:
        """The rows of ``<select> IN (values)``, asked 500 values at a time."""
        rows: list[Any] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            rows.extend(self.query(f"{select} IN ({_marks(chunk)})", chunk))
        return rows


def user_row(r: Any) -> UserRow:
    return UserRow(
        token_id=UUID(r["token_id"]),
        token_hash=r["token_hash"],
        user_name=r["user_name"],
        role=r["role"],
        revoked=bool(r["revoked"]),
        technician_id=UUID(r["technician_id"]) if r["technician_id"] else None,
    )


def message_row(r: dict[str, Any]) -> MessageRow:
    return MessageRow(
        id=UUID(r["id"]),
        channel=r["channel"],
        purpose=r["purpose"],
        recipient=r["recipient"],
        subject=r["subject"],
        about_kind=r["about_kind"],
        about_id=UUID(r["about_id"]) if r["about_id"] else None,
        state=r["state"],
        attempts=int(r["attempts"]),
        detail=r["detail"],
        updated_at=r["updated_at"],
        position=int(r["position"]),
    )


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


JOB_UPSERT = (
    "INSERT INTO {t}jobs (id, status, customer_id, job_type, priority, sla_deadline, billing_kind, "
    "requested_at, last_change_at, scheduled_start, completed_at, minutes_logged, first_visit, search, "
    "position, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "status = excluded.status, customer_id = excluded.customer_id, job_type = excluded.job_type, "
    "priority = excluded.priority, sla_deadline = excluded.sla_deadline, "
    "billing_kind = excluded.billing_kind, requested_at = excluded.requested_at, "
    "last_change_at = excluded.last_change_at, scheduled_start = excluded.scheduled_start, "
    "completed_at = excluded.completed_at, minutes_logged = excluded.minutes_logged, "
    "first_visit = excluded.first_visit, "
    "search = excluded.search, position = excluded.position, doc = excluded.doc"
)
CUSTOMER_UPSERT = (
    "INSERT INTO {t}customers (id, name, search, position, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, search = excluded.search, "
    "position = excluded.position, doc = excluded.doc"
)
TECHNICIAN_UPSERT = (
    "INSERT INTO {t}technicians (id, name, active, position, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, active = excluded.active, "
    "position = excluded.position, doc = excluded.doc"
)
USER_UPSERT = (
    "INSERT INTO {t}users (token_id, token_hash, user_name, role, technician_id, revoked) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (token_id) DO UPDATE SET revoked = excluded.revoked"
)
MESSAGE_UPSERT = (
    "INSERT INTO {t}messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "state = excluded.state, attempts = excluded.attempts, detail = excluded.detail, "
    "updated_at = excluded.updated_at, position = excluded.position"
)
INVOICE_UPSERT = (
    "INSERT INTO {t}invoices (id, number, job_id, customer_id, issue_date, due_date, status, position, doc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
    "position = excluded.position, doc = excluded.doc"
)
KSEF_UPSERT = (
    "INSERT INTO {t}ksef_documents (id, document_kind, number, state, deadline, position, doc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
    "deadline = excluded.deadline, position = excluded.position, doc = excluded.doc"
)
EFACTURA_UPSERT = (
    "INSERT INTO {t}efactura_documents (id, number, state, position, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, position = excluded.position, doc = excluded.doc"
)
HISTORY_INSERT = (
    "INSERT INTO {t}job_history (job_id, position, version, occurred_at, event_type, actor_id, "
    "actor_role, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, position) DO NOTHING"
)
NO_DEADLINE = "9999-12-31T00:00:00.000000Z"


def _job_values(row: JobRow) -> tuple[Any, ...]:
    search = f"{row.site} {row.description} {row.scope} {row.job_type}".lower()
    return (
        str(row.id),
        row.status.value,
        str(row.customer_id),
        row.job_type,
        row.priority,
        iso(row.sla_deadline) or NO_DEADLINE,
        row.billing_kind,
        iso(row.requested_at),
        iso(row.last_change_at),
        iso(row.scheduled_start),
        iso(row.completed_at),
        row.minutes_logged,
        _bool(row.first_visit),
        search,
        row.position,
        _encode(row).decode(),
    )


class TimesheetTables(Tables):
    TABLES = (
        "CREATE TABLE IF NOT EXISTS {t}time_entries (entry_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
        "technician_id TEXT NOT NULL, started_at TEXT NOT NULL, minutes BIGINT NOT NULL, "
        "billable INTEGER NOT NULL, activity TEXT NOT NULL, manual INTEGER NOT NULL, "
        "corrected INTEGER NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS time_entries_tech ON {t}time_entries (technician_id, started_at)",
        "CREATE INDEX IF NOT EXISTS time_entries_job ON {t}time_entries (job_id)",
    )

    def write(self, cursor: Any, batch: Batch) -> None:
        self.many(
            cursor,
            TIME_UPSERT,
            (
                (
                    str(r.entry_id),
                    str(r.job_id),
                    str(r.technician_id),
                    iso(r.started_at),
                    r.minutes,
                    int(r.billable),
                    r.activity,
                    int(r.manual),
                    int(r.corrected),
                    r.position,
                )
                for r in batch.times.values()
            ),
        )

    def times_by_id(self, ids: Iterable[UUID]) -> dict[UUID, TimeRow]:
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        rows = self.query(f"SELECT * FROM {{t}}time_entries WHERE entry_id IN ({_marks(wanted)})", wanted)
        return {UUID(r["entry_id"]): _time_row(r) for r in rows}


class LedgerTables(Tables):
    TABLES = (
        "CREATE TABLE IF NOT EXISTS {t}journal (entry TEXT NOT NULL, line BIGINT NOT NULL, day TEXT NOT NULL, "
        "account TEXT NOT NULL, debit TEXT NOT NULL, credit TEXT NOT NULL, currency TEXT NOT NULL, "
        "document TEXT NOT NULL, customer_id TEXT NOT NULL, source TEXT NOT NULL, position BIGINT NOT NULL, "
        "PRIMARY KEY (entry, line))",
        "CREATE INDEX IF NOT EXISTS journal_day ON {t}journal (day, position)",
        "CREATE TABLE IF NOT EXISTS {t}ledger_invoices (id TEXT PRIMARY KEY, number TEXT NOT NULL, "
        "customer_id TEXT NOT NULL, currency TEXT NOT NULL)",
    )

    def write(self, cursor: Any, batch: Batch) -> None:
        self.many(
            cursor,
            "INSERT INTO {t}ledger_invoices VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                (str(id), number, str(customer), currency)
                for id, (number, customer, currency) in batch.ledger_invoices.items()
            ),
        )
        self.many(
            cursor,
            "INSERT INTO {t}journal VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entry, line) DO NOTHING",
            (
                (
                    j.entry,
                    j.line,
                    j.day,
                    j.account,
                    str(j.debit),
                    str(j.credit),
                    j.currency,
                    j.document,
                    str(j.customer_id),
                    j.source,
                    j.position,
                )
                for j in batch.journal
            ),
        )

    def invoices_by_id(self, ids: Iterable[UUID]) -> dict[UUID, tuple[str, UUID, str]]:
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        rows = self.query(f"SELECT * FROM {{t}}ledger_invoices WHERE id IN ({_marks(wanted)})", wanted)
        return {UUID(r["id"]): (r["number"], UUID(r["customer_id"]), r["currency"]) for r in rows}

    def journal_lines(self, since: str = "", until: str = "9999") -> list[JournalLine]:
        rows = self.query(
            "SELECT * FROM {t}journal WHERE day >= ? AND day < ? ORDER BY position, entry, line", (since, until)
        )
        return [
            JournalLine(
                entry=r["entry"],
                line=r["line"],
                day=r["day"],
                account=r["account"],
                debit=Decimal(r["debit"]),
                credit=Decimal(r["credit"]),
                currency=r["currency"],
                document=r["document"],
                customer_id=UUID(r["customer_id"]),
                source=r["source"],
                position=r["position"],
            )
            for r in rows
        ]


class CheckpointTables(Tables):
    """The audit's checkpoints of the stream (projections/audit.py), kept beside the read models:
    a second copy outside the stream, besides the data directory's file. Rows are only added."""

    TABLES = (
        "CREATE TABLE IF NOT EXISTS {t}audit_checkpoints (stream TEXT NOT NULL, head BIGINT NOT NULL, "
        "digest TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (stream, head, digest))",
    )

    def add_checkpoint(self, stream: str, head: int, digest: str, doc: str) -> None:
        with self.writing() as cursor:
            self.execute(
                cursor,
                "INSERT INTO {t}audit_checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (stream, head, digest) DO NOTHING",
                (stream, head, digest, doc),
            )

    def checkpoint_docs(self, stream: str) -> list[str]:
        """The stream's checkpoints as they were recorded (JSON), oldest head first."""
        return [
            r["doc"]
            for r in self.query("SELECT doc FROM {t}audit_checkpoints WHERE stream = ? ORDER BY head", (stream,))
        ]


def _time_row(r: Any) -> TimeRow:
    return TimeRow(
        entry_id=UUID(r["entry_id"]),
        job_id=UUID(r["job_id"]),
        technician_id=UUID(r["technician_id"]),
        started_at=datetime.fromisoformat(r["started_at"]),
        minutes=r["minutes"],
        billable=bool(r["billable"]),
        activity=r["activity"],
        manual=bool(r["manual"]),
        corrected=bool(r["corrected"]),
        position=r["position"],
    )


TIME_UPSERT = (
    "INSERT INTO {t}time_entries (entry_id, job_id, technician_id, started_at, minutes, billable, "
    "activity, manual, corrected, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (entry_id) DO UPDATE SET minutes = excluded.minutes, billable = excluded.billable, "
    "corrected = excluded.corrected, position = excluded.position"
)


# --- the two databases ----------------------------------------------------------------------


class SQLiteView(SQLiteTrackingRecorder):
    # A page of events touches rows all over tables of up to millions of rows: a 64 MB
    # page cache (SQLite's default is 2 MB) keeps their indexes' inner pages in memory.
    CACHE = "PRAGMA cache_size = -65536"

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.ddl()]

    def ddl(self) -> list[str]:
        # SQLite only: tables keyed by their primary key, one B-tree instead of two
        assert isinstance(self, Tables)  # each view is one of the tables' classes too (SQLiteBoard, ...)
        return [
            f"{s} WITHOUT ROWID" if s.startswith("CREATE TABLE") and "PRIMARY KEY (" in s else s
            for s in Tables.ddl(self)
        ]

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.CACHE)
            yield cursor


class SQLiteBoard(BoardTables, SQLiteView):
    ddl = SQLiteView.ddl  # the tables' own methods come first in the MRO: take SQLite's here
    writing = SQLiteView.writing


class SQLiteTimesheets(TimesheetTables, SQLiteView):
    ddl = SQLiteView.ddl
    writing = SQLiteView.writing


class SQLiteLedger(LedgerTables, SQLiteView):
    ddl = SQLiteView.ddl
    writing = SQLiteView.writing


class SQLiteCheckpoints(CheckpointTables, SQLiteView):
    ddl = SQLiteView.ddl
    writing = SQLiteView.writing


@functools.cache
def _postgres_classes() -> tuple[type, type, type, type]:
    """Defined on first use, so SQLite users need no PostgreSQL driver installed."""
    from eventsourcing.postgres import PostgresTrackingRecorder
    from psycopg.sql import SQL, Composed

    class PostgresView(PostgresTrackingRecorder):
        def __init__(self, datastore: Any, **kwargs: Any) -> None:
            super().__init__(datastore, **kwargs)
            self.qualify = f'"{datastore.schema}".'
            self.tracking_table = self.tracking_table_name
            assert isinstance(self, Tables)  # each view is one of the tables' classes too (PostgresBoard, ...)
            self.sql_create_statements.extend(Composed([SQL(s)]) for s in self.ddl())

        def sql(self, text: str) -> str:
            return text.format(t=self.qualify).replace("?", "%s")

    class PostgresBoard(BoardTables, PostgresView):
        sql = PostgresView.sql

    class PostgresTimesheets(TimesheetTables, PostgresView):
        sql = PostgresView.sql

    class PostgresLedger(LedgerTables, PostgresView):
        sql = PostgresView.sql

    class PostgresCheckpoints(CheckpointTables, PostgresView):
        sql = PostgresView.sql

    return PostgresBoard, PostgresTimesheets, PostgresLedger, PostgresCheckpoints


VIEWS = {
    "board": (SQLiteBoard, 0),
    "timesheets": (SQLiteTimesheets, 1),
    "ledger": (SQLiteLedger, 2),
    "checkpoints": (SQLiteCheckpoints, 3),
}


def open_view(name: str, url: str) -> Any:
    """The named projection's view on the read-model database at ``url``, tables created."""
    env = store_env(url)
    sqlite_class, index = VIEWS[name]
    view_class = sqlite_class if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite" else _postgres_classes()[index]
    factory = InfrastructureFactory.construct(env=_environment(name, env))
    for attempt in range(10):
        try:
            return factory.tracking_recorder(view_class)
        except (IntegrityError, OperationalError):
            # Several processes creating the same tables at once (`jobstream up` starts the
            # projectors and the read API together): the first wins, the others find them.
            if attempt == 9:
                raise
            time.sleep(0.1 * (attempt + 1))
        except InterfaceError as error:  # no such directory, no permission: say where
            raise ReadModelsUnavailable(
                f"the {name} projection cannot open its read models at {url}: {error}"
            ) from None
    raise AssertionError("unreachable")


class ReadModelsUnavailable(Exception):
    pass


def _environment(name: str, env: dict[str, str]) -> Any:
    from eventsourcing.utils import Environment

    return Environment(name, env)
