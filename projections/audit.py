"""The accountants' tools, straight from the stream: replay, verify, reconcile, checkpoint,
as-of, rebuild, export.

    jobstream audit replay [--job ID] [--customer ID] [--type T] [--from T] [--to T]
                           [--after N] [--until N] [--json]
    jobstream audit verify [--checkpoints FILE]
    jobstream audit reconcile [--held-hours 24] [--now 2026-11-23T10:00:00Z] [--ksef] [--ksef-days 1] [--efactura]
    jobstream audit checkpoint
    jobstream audit as-of --job ID --at 2026-11-23T10:00:00Z [--json]
    jobstream audit rebuild [--into URL]
    jobstream audit export --from 2026-11-01 --to 2026-12-01 [--format csv|jsonl] [--out FILE]

Nothing here reads a read model except ``rebuild``, which builds every projection afresh
and compares it with the live one, and the checkpoints, kept outside the stream (the data
directory's file and the read-model database). Settings come from the environment in ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import hashlib
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import Notification, PersistenceError
from nats.errors import Error as NatsError

from events.contract import (
    CreditNoteIssued,
    EfacturaAccepted,
    EfacturaDocumentPrepared,
    EfacturaRefused,
    EfacturaUploaded,
    Event,
    InvoiceEvent,
    InvoiceIssued,
    InvoiceNumberAllocated,
    InvoicingHeld,
    JobCompleted,
    JobEvent,
    JobInvoiced,
    JobNotBilled,
    JobReopened,
    JobRequested,
    KsefAccepted,
    KsefDocumentPrepared,
    KsefHeld,
    KsefIssuedOffline,
    ProformaIssued,
    decode_event,
    event_hash,
)
from events.jetstream import PAGE, STREAM_VARIABLES, NatsConnection, StreamSettings, notification_of
from events.poland import end_of_business_day_after
from projections.rows import InvoiceRow, JobRow, evolve_invoice, evolve_job, invoice_status, iso, summary
from projections.runner import Runner, build
from projections.store import ReadModelsUnavailable, open_view

log = logging.getLogger("jobstream.audit")

# --- reading the log --------------------------------------------------------------------


class Entry(msgspec.Struct, kw_only=True):
    """One event as the accountant sees it."""

    position: int
    aggregate: str
    aggregate_id: str
    version: int
    type: str
    occurred_at: datetime | None
    actor_id: str
    actor_role: str
    command_id: str
    correlation_id: str
    summary: str
    event: msgspec.Raw  # the event exactly as it is stored: readable JSON


@dataclass
class Criteria:
    job: UUID | None = None
    customer: UUID | None = None
    types: set[str] = field(default_factory=set)
    since: datetime | None = None
    before: datetime | None = None
    after: int = 0
    until: int | None = None


def entry_of(notification: Notification, event: Event) -> Entry:
    meta = event.meta
    return Entry(
        position=notification.id,
        aggregate=event.aggregate,
        aggregate_id=str(notification.originator_id),
        version=notification.originator_version,
        type=notification.topic,
        occurred_at=meta.occurred_at if meta else None,
        actor_id=meta.actor_id if meta else "",
        actor_role=meta.actor_role if meta else "",
        command_id=meta.command_id if meta else "",
        correlation_id=meta.correlation_id if meta else "",
        summary=summary(event),
        event=msgspec.Raw(notification.state),
    )


async def events(
    connection: NatsConnection, after: int = 0, until: int | None = None, progress: Callable[[int], None] | None = None
) -> AsyncIterator[tuple[Notification, Event]]:
    """Every event of the stream after ``after`` (up to ``until``), decoded, in order."""
    pages = connection.stream_events(after, until)
    try:
        async for page in pages:
            for notification in page:
                yield notification, decode_event(notification.state)
            if progress is not None:
                progress(page[-1].id)
    finally:
        await pages.aclose()


async def replay(connection: NatsConnection, criteria: Criteria) -> AsyncIterator[Entry]:
    """The events that match, in stream order; a customer's include the jobs requested for them."""
    customer_jobs: set[UUID] = set()
    async for notification, event in events(connection, criteria.after, criteria.until):
        if criteria.customer is not None:
            if isinstance(event, JobRequested) and event.customer_id == criteria.customer:
                customer_jobs.add(event.id)
            if event.id != criteria.customer and event.id not in customer_jobs:
                continue
        if criteria.job is not None and event.id != criteria.job:
            continue
        if criteria.types and notification.topic not in criteria.types:
            continue
        when = event.meta.occurred_at if event.meta else None
        if criteria.since is not None and (when is None or when < criteria.since):
            continue
        if criteria.before is not None and (when is None or when >= criteria.before):
            continue
        yield entry_of(notification, event)


# --- checkpoints: the stream's head and a digest of all of it, kept outside it ----------

ALGORITHM = "sha256-chain/1"
DIGEST_START = "0" * 64
CHECKPOINT_FILE = "audit-checkpoints.jsonl"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """What the stream held when it was taken: its last sequence and a digest of every message.

    The digest runs over the whole stream in order. It starts as 64 zeros, and each message
    (events, snapshots and tracking records alike) turns digest ``d`` into the SHA-256 (hex)
    of the text ``"<d>\\n<sequence> <subject> <SHA-256 hex of the message's data>"``: a
    ``link``. A later checkpoint extends an earlier one by hashing on from its head, so the
    whole log is read once. The hash chains prove what is in the stream; a checkpoint proves
    what was in it, so a tail cut from the stream (which leaves every chain whole) shows.
    """

    stream: str
    created: datetime | None  # when the stream was made: one deleted and made again is another log
    first: int  # the first sequence the digest covers
    head: int  # the last one
    messages: int
    digest: str
    head_link: str  # the head message's link, to extend from it without reading the log again
    taken_at: datetime
    algorithm: str = ALGORITHM

    def seen(self) -> str:
        return f"the checkpoint of {self.taken_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"

    def line(self) -> str:
        return (
            f"Checkpoint of stream {self.stream} at {iso(self.taken_at)}: head {self.head}, "
            f"{self.messages} messages, digest {self.digest} ({self.algorithm})"
        )


_checkpoint_decoder = msgspec.json.Decoder(Checkpoint)


def link(sequence: int, subject: str, data: bytes) -> str:
    return f"{sequence} {subject} {hashlib.sha256(data).hexdigest()}"


def chained(digest: str, link_text: str) -> str:
    return hashlib.sha256(f"{digest}\n{link_text}".encode()).hexdigest()


class TailMissing(Exception):
    """The stream no longer holds what a checkpoint saw: no new checkpoint is taken over it."""


async def stored_messages(
    connection: NatsConnection, after: int = 0, until: int | None = None, progress: Callable[[int], None] | None = None
) -> AsyncIterator[tuple[int, str, Any]]:
    """Every message of the stream after ``after`` (up to ``until``), in order, as
    (sequence, subject, message): events, snapshots and tracking records."""
    everything = f"{connection.settings.prefix}>"
    position = after
    while until is None or position < until:
        page = await connection.direct_batch({"seq": position + 1, "next_by_subj": everything, "batch": PAGE})
        for msg in page:
            assert msg.headers is not None
            sequence = int(msg.headers["Nats-Sequence"])
            if until is not None and sequence > until:
                return
            yield sequence, msg.headers["Nats-Subject"], msg
        if len(page) < PAGE:
            return
        position = int((page[-1].headers or {})["Nats-Sequence"])  # a direct get's reply always has it
        if progress is not None:
            progress(position)


async def take_checkpoint(
    connection: NatsConnection,
    known: Sequence[Checkpoint],
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> Checkpoint:
    """A checkpoint of the stream as it is now, extending the latest of ``known`` that still
    holds (its head message is the one it saw); refused (TailMissing) when the stream no
    longer reaches a checkpoint's head or no longer begins where it did."""
    info = await connection.js.stream_info(connection.settings.stream)
    first, last = int(info.state.first_seq), int(info.state.last_seq)
    mine = sorted((c for c in known if c.stream == connection.settings.stream), key=lambda c: c.head)
    if mine and mine[-1].head > last:
        reach = mine[-1]
        raise TailMissing(
            f"positions {last + 1:,}-{reach.head:,} are missing: the stream ends at {last:,}, "
            f"{reach.seen()} saw {reach.head:,}; run `jobstream audit verify`"
        )
    base: Checkpoint | None = None
    if mine and mine[-1].head:
        latest = mine[-1]
        if latest.first != first:
            raise TailMissing(
                f"the stream begins at {first:,}, {latest.seen()} saw it begin at {latest.first:,}; "
                "run `jobstream audit verify`"
            )
        at = await connection.direct_batch(
            {"seq": latest.head, "next_by_subj": f"{connection.settings.prefix}>", "batch": 1}
        )
        here = [
            (m.headers["Nats-Subject"], m.data)
            for m in at
            if m.headers and int(m.headers["Nats-Sequence"]) == latest.head
        ]
        if not here or link(latest.head, *here[0]) != latest.head_link:
            raise TailMissing(
                f"the message at position {latest.head:,} is not the one {latest.seen()} saw; "
                "run `jobstream audit verify`"
            )
        base = latest
    digest, messages = (base.digest, base.messages) if base else (DIGEST_START, 0)
    head, head_link = (base.head, base.head_link) if base else (0, "")
    async for sequence, subject, msg in stored_messages(connection, head, last, progress):
        head_link = link(sequence, subject, msg.data)
        digest, head, messages = chained(digest, head_link), sequence, messages + 1
    return Checkpoint(
        stream=connection.settings.stream,
        created=info.created,
        first=first if messages else 0,
        head=head,
        messages=messages,
        digest=digest,
        head_link=head_link,
        taken_at=now,
    )


class Checkpoints:
    """Where the checkpoints are kept, outside the stream: a file of JSON lines in the data
    directory (only ever appended to) and a table in the read-model database. Either may be
    absent; what each holds is compared."""

    def __init__(self, stream: str, data_dir: str | Path | None = None, read_model_url: str = "") -> None:
        self.stream = stream
        self.file = Path(data_dir) / CHECKPOINT_FILE if data_dir else None
        self.read_model_url = read_model_url
        self._view: Any = None

    @property
    def places(self) -> list[str]:
        return [*([str(self.file)] if self.file else []), *([self.read_model_url] if self.read_model_url else [])]

    def _table(self) -> Any:
        if self._view is None:
            self._view = open_view("checkpoints", self.read_model_url)
        return self._view

    def known(self) -> tuple[list[Checkpoint], list[str]]:
        """Every checkpoint of this stream kept here, and what could not be read."""
        found: dict[tuple[int, str], Checkpoint] = {}
        problems: list[str] = []
        if self.file is not None and self.file.exists():
            for number, text in enumerate(self.file.read_text(encoding="utf-8").splitlines(), 1):
                if text.strip():
                    try:
                        checkpoint = _checkpoint_decoder.decode(text)
                    except (msgspec.DecodeError, msgspec.ValidationError) as error:
                        problems.append(f"line {number} of {self.file} is not a checkpoint: {error}")
                        continue
                    if checkpoint.stream == self.stream:
                        found.setdefault((checkpoint.head, checkpoint.digest), checkpoint)
        if self.read_model_url:
            try:
                docs = self._table().checkpoint_docs(self.stream)
            except (ReadModelsUnavailable, PersistenceError) as error:
                problems.append(f"the checkpoints in {self.read_model_url} cannot be read: {error}")
                docs = []
            for doc in docs:
                checkpoint = _checkpoint_decoder.decode(doc)
                found.setdefault((checkpoint.head, checkpoint.digest), checkpoint)
        return sorted(found.values(), key=lambda c: (c.head, c.taken_at)), problems

    def record(self, checkpoint: Checkpoint) -> list[str]:
        """Keep it in each place (the table first: a line in the file says both were written);
        where that failed, and why."""
        encoded = msgspec.json.encode(checkpoint)
        problems = []
        if self.read_model_url:
            try:
                self._table().add_checkpoint(checkpoint.stream, checkpoint.head, checkpoint.digest, encoded.decode())
            except (ReadModelsUnavailable, PersistenceError) as error:
                problems.append(f"the checkpoint could not be added to {self.read_model_url}: {error}")
        if self.file is not None:
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                with self.file.open("ab") as out:
                    out.write(encoded + b"\n")
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as error:
                problems.append(f"the checkpoint could not be added to {self.file}: {error}")
        return problems

    def close(self) -> None:
        if self._view is not None:
            self._view.datastore.close()
            self._view = None


async def checkpoint_and_keep(
    connection: NatsConnection,
    places: Checkpoints,
    known: Sequence[Checkpoint] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Checkpoint, list[str]]:
    """A checkpoint of the stream as it is now (TailMissing if it lost what one saw), kept in
    each place; with what could not be kept where."""
    if known is None:
        known = (await asyncio.to_thread(places.known))[0]
    checkpoint = await take_checkpoint(connection, known, datetime.now(UTC), progress)
    return checkpoint, await asyncio.to_thread(places.record, checkpoint)


def checkpoints_in(path: Path) -> list[Checkpoint]:
    """The checkpoints an accountant filed: the data directory's file, or an `audit export`
    (CSV or JSON Lines) whose last record is the checkpoint taken with it."""
    found = []
    text = path.read_text(encoding="utf-8")
    if text.startswith(",".join(COLUMNS)):
        for row in csv.DictReader(text.splitlines()):
            if row.get("type") == CHECKPOINT_TYPE:
                found.append(_checkpoint_decoder.decode(row["event"]))
        return found
    for line in text.splitlines():
        if not line.strip():
            continue
        record = msgspec.json.decode(line)
        if isinstance(record, dict) and record.get("type") == CHECKPOINT_TYPE:
            found.append(msgspec.convert(record["event"], Checkpoint, strict=False))
        elif isinstance(record, dict) and "digest" in record:
            found.append(msgspec.convert(record, Checkpoint, strict=False))
    return found


async def keep_checkpointing(
    connection: NatsConnection, places: Checkpoints, stop: asyncio.Event, every_seconds: float, every_messages: int
) -> None:
    """Take a checkpoint whenever ``every_messages`` messages were added since the last, or
    ``every_seconds`` passed and any were; until ``stop``. A stream that lost what a
    checkpoint saw gets no new checkpoint: it is logged, and the next look tries again."""
    known, problems = await asyncio.to_thread(places.known)
    for problem in problems:
        log.error("audit checkpoints: %s", problem)
    latest = known[-1] if known else None
    clock = asyncio.get_running_loop().time
    taken, refusal = clock(), ""
    while not stop.is_set():
        try:
            moved = await connection.last_position() - (latest.head if latest else 0)
            if moved and (latest is None or abs(moved) >= every_messages or clock() - taken >= every_seconds):
                checkpoint = await take_checkpoint(connection, [latest] if latest else [], datetime.now(UTC))
                for problem in await asyncio.to_thread(places.record, checkpoint):
                    log.error("audit checkpoint: %s", problem)
                latest, taken, refusal = checkpoint, clock(), ""
                log.info("audit %s", checkpoint.line())
        except TailMissing as refused:
            if str(refused) != refusal:  # said once, not every few seconds
                refusal = str(refused)
                log.error("audit checkpoint refused: %s", refused)
        except (NatsError, TimeoutError) as error:  # NATS away for a moment: look again later
            log.warning("audit checkpoint: the stream cannot be read now (%s); trying again", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(every_seconds, 5.0))


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """Checkpoints of the stream at intervals, beside the other services (`jobstream run workers`):
    JOBSTREAM_CHECKPOINT_SECONDS (default 300) or JOBSTREAM_CHECKPOINT_MESSAGES (default 1000),
    whichever comes first, into JOBSTREAM_DATA's audit-checkpoints.jsonl and READ_MODEL_URL."""
    settings = StreamSettings.from_env(env)
    every = checkpoint_intervals(env)
    places = Checkpoints(settings.stream, env.get("JOBSTREAM_DATA") or None, env.get("READ_MODEL_URL", ""))
    connection = await NatsConnection.open_on_running_loop(settings)
    try:
        await connection.ensure_stream_async()
        await keep_checkpointing(connection, places, stop, *every)
    finally:
        await connection.aclose()
        places.close()


def checkpoint_intervals(env: Mapping[str, str]) -> tuple[float, int]:
    """JOBSTREAM_CHECKPOINT_SECONDS (default 300) and JOBSTREAM_CHECKPOINT_MESSAGES (default 1000)."""
    try:
        seconds = float(env.get("JOBSTREAM_CHECKPOINT_SECONDS") or 300)
        messages = int(env.get("JOBSTREAM_CHECKPOINT_MESSAGES") or 1000)
    except ValueError:
        raise SystemExit(
            "JOBSTREAM_CHECKPOINT_SECONDS and JOBSTREAM_CHECKPOINT_MESSAGES are numbers (seconds, messages)"
        ) from None
    if seconds <= 0 or messages <= 0:
        raise SystemExit("JOBSTREAM_CHECKPOINT_SECONDS and JOBSTREAM_CHECKPOINT_MESSAGES must be above 0")
    return seconds, messages


# --- verify -----------------------------------------------------------------------------


@dataclass
class Verdict:
    messages: int = 0
    events: int = 0
    aggregates: int = 0
    first: int = 0
    last: int = 0
    problems: list[str] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)  # the first position each problem makes doubtful
    checkpoints: int = 0  # compared
    proven: Checkpoint | None = None  # the latest checkpoint that matches, below any problem

    @property
    def whole(self) -> bool:
        return not self.problems

    @property
    def last_intact(self) -> int:
        """The last position before which nothing is wrong."""
        return min(self.bad) - 1 if self.bad else self.last

    def flag(self, position: int, problem: str) -> None:
        self.problems.append(problem)
        self.bad.append(position)


async def verify(
    connection: NatsConnection, checkpoints: Sequence[Checkpoint] = (), progress: Callable[[int], None] | None = None
) -> Verdict:
    """Prove the log whole and untampered, or name what is wrong.

    - every stream sequence from the first to the last is present;
    - every aggregate's versions run 1, 2, 3, ... without a gap or a repeat;
    - every event's ``previous_hash`` is the SHA-256 of the stored bytes of the event before
      it in its aggregate (the first one's is empty), so an altered, removed or inserted
      event breaks the chain at the event after it;
    - the digest of the log up to each checkpoint's head is the one the checkpoint saw, and
      the stream still reaches every checkpoint's head: a tail cut off shows as the range of
      positions missing.
    """
    verdict = Verdict(checkpoints=len(checkpoints))
    info = await connection.js.stream_info(connection.settings.stream)
    verdict.first, verdict.last = int(info.state.first_seq), int(info.state.last_seq)
    expected = verdict.first
    chains: dict[str, tuple[int, str, int]] = {}  # subject -> (version, hash, position)
    pending = sorted(checkpoints, key=lambda c: c.head)
    matched: list[Checkpoint] = []
    differing: list[tuple[int, int]] = []  # ranges whose digest differs from a checkpoint's
    for checkpoint in {(c.created, c.first): c for c in pending}.values():
        if checkpoint.created is not None and info.created is not None and checkpoint.created != info.created:
            verdict.flag(
                verdict.first,
                f"the stream was made at {iso(info.created)}; {checkpoint.seen()} saw one "
                f"made at {iso(checkpoint.created)}: it was deleted and made again",
            )
        if checkpoint.messages and checkpoint.first != verdict.first:
            verdict.flag(
                min(checkpoint.first, verdict.first),
                f"the stream begins at {verdict.first:,}; {checkpoint.seen()} saw it begin at {checkpoint.first:,}",
            )
    digest, end = DIGEST_START, verdict.first - 1
    async for sequence, subject, msg in stored_messages(connection, verdict.first - 1, progress=progress):
        if sequence != expected:
            verdict.flag(expected, f"sequences {expected}..{sequence - 1} are missing from the stream")
        expected = end = sequence
        expected += 1
        verdict.messages += 1
        digest = chained(digest, link(sequence, subject, msg.data))
        while pending and pending[0].head <= sequence:
            checkpoint = pending.pop(0)
            if checkpoint.head == sequence and checkpoint.digest == digest:
                matched.append(checkpoint)
                continue
            since = matched[-1].head if matched else verdict.first - 1
            verdict.problems.append(
                f"positions {since + 1:,}-{checkpoint.head:,} are not what {checkpoint.seen()} "
                f"saw (the digest of the log up to {checkpoint.head:,} differs): a message "
                f"among them was altered, removed or replaced"
            )
            differing.append((since + 1, checkpoint.head))
        if subject.startswith(f"{connection.settings.prefix}events."):
            verdict.events += 1
            _check_event(verdict, chains, sequence, subject, msg)
    if expected <= verdict.last:
        verdict.flag(expected, f"sequences {expected}..{verdict.last} are missing from the stream")
    if pending:  # the stream ends before these checkpoints' heads: its tail is gone
        reach = pending[-1]
        verdict.flag(
            end + 1,
            f"positions {end + 1:,}-{reach.head:,} are missing: the stream ends at {end:,}, "
            f"{reach.seen()} saw {reach.head:,}",
        )
    for low, high in differing:  # a range that differs, where nothing above named the culprit
        if not any(low <= position <= high for position in verdict.bad):
            verdict.bad.append(low)
    verdict.aggregates = len(chains)
    intact = [c for c in matched if c.head <= verdict.last_intact]
    verdict.proven = intact[-1] if intact else None
    return verdict


def _check_event(
    verdict: Verdict, chains: dict[str, tuple[int, str, int]], sequence: int, subject: str, msg: Any
) -> None:
    notification = notification_of(msg)
    name = f"event #{sequence} ({notification.topic} v{notification.originator_version} of {subject})"
    try:
        event = decode_event(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        verdict.flag(sequence, f"{name} cannot be read: {error}")
        chains[subject] = (notification.originator_version, event_hash(msg.data), sequence)
        return
    version, previous_hash, previous_position = chains.get(subject, (0, "", 0))
    after = f" (the last one seen is event #{previous_position})" if previous_position else ""
    claimed = event.meta.previous_hash if event.meta else ""
    if notification.originator_version != version + 1:
        verdict.flag(
            previous_position + 1 if notification.originator_version > version + 1 else sequence,
            f"{name}: versions {version + 1}..{notification.originator_version - 1} of this aggregate are "
            f"missing{after}"
            if notification.originator_version > version + 1
            else f"{name}: version {notification.originator_version} repeats or goes back{after}",
        )
    elif claimed != previous_hash:
        culprit = f"event #{previous_position}" if previous_position else "the event before it"
        verdict.flag(
            previous_position or sequence,
            f"{name}: the hash chain is broken: {culprit} is not the event this one "
            f"followed (it was altered, or this one was forged)",
        )
    chains[subject] = (notification.originator_version, event_hash(msg.data), sequence)


# --- as-of ------------------------------------------------------------------------------


async def _events_until(
    connection: NatsConnection, aggregate_id: UUID, moment: datetime
) -> list[tuple[Notification, Event]]:
    """An aggregate's events up to ``moment``, from the stream."""
    stored = await connection.direct_batch(
        {"seq": 1, "next_by_subj": connection.settings.aggregate_filter("events", aggregate_id), "batch": PAGE}
    )
    found = []
    for msg in stored:
        notification = notification_of(msg)
        event = decode_event(notification.state)
        if event.meta is not None and event.meta.occurred_at > moment:
            break
        found.append((notification, event))
    return found


async def job_as_of(connection: NatsConnection, job_id: UUID, moment: datetime) -> tuple[JobRow | None, list[Entry]]:
    """The job as it stood at ``moment``, folded from its own events by the board's code."""
    row: JobRow | None = None
    entries = []
    for notification, event in await _events_until(connection, job_id, moment):
        assert isinstance(event, JobEvent)
        row = evolve_job(row, event, notification.id)
        entries.append(entry_of(notification, event))
    return row, entries


async def invoice_as_of(
    connection: NatsConnection, invoice_id: UUID, moment: datetime
) -> tuple[InvoiceRow | None, list[Entry]]:
    """The invoice as it stood at ``moment`` (issued, paid, credited, reminded), by the board's code."""
    row: InvoiceRow | None = None
    entries = []
    for notification, event in await _events_until(connection, invoice_id, moment):
        if isinstance(event, InvoiceEvent):
            row = evolve_invoice(row, event, notification.id)
        entries.append(entry_of(notification, event))
    return row, entries


# --- rebuild ----------------------------------------------------------------------------


@dataclass
class Comparison:
    projection: str
    position: int
    tables: dict[str, tuple[int, int, int]]  # table -> (live rows, rebuilt rows, rows that differ)

    @property
    def equal(self) -> bool:
        return all(live == rebuilt and differ == 0 for live, rebuilt, differ in self.tables.values())


TABLES = {
    "board": [
        "jobs",
        "job_technicians",
        "customers",
        "technicians",
        "users",
        "job_history",
        "invoices",
        "ksef_documents",
        "efactura_documents",
        "unmatched_lines",
    ],
    "timesheets": ["time_entries"],
    "ledger": ["journal", "ledger_invoices"],
}


async def rebuild(
    connection: NatsConnection, live_url: str, into_url: str, progress: Callable[[str, int], None] | None = None
) -> list[Comparison]:
    """Every projection rebuilt into ``into_url`` from the stream, then compared with the live one."""
    results = []
    for name, tables in TABLES.items():
        live = build(name, live_url)
        fresh = build(name, into_url)
        runner = Runner(fresh, connection)
        for _attempt in range(5):
            target = await asyncio.to_thread(live.view.max_tracking_id, name) or 0
            await runner.catch_up(until=target, progress=functools.partial(progress, name) if progress else None)
            counts = {}
            for table in tables:
                a, b = (
                    await asyncio.to_thread(_rows, live.view, table),
                    await asyncio.to_thread(_rows, fresh.view, table),
                )
                counts[table] = (len(a), len(b), len(a.symmetric_difference(b)))
            if (await asyncio.to_thread(live.view.max_tracking_id, name) or 0) == target:
                break  # the live one did not move while we compared
        results.append(Comparison(name, target, counts))
        live.close()
        fresh.close()
    return results


def _rows(view: Any, table: str) -> set[tuple[str, ...]]:
    return {tuple(str(v) for v in row.values()) for row in view.query(f"SELECT * FROM {{t}}{table}")}


# --- export -----------------------------------------------------------------------------

COLUMNS = [
    "position",
    "occurred_at",
    "aggregate",
    "aggregate_id",
    "version",
    "type",
    "actor_id",
    "actor_role",
    "command_id",
    "correlation_id",
    "summary",
    "event",
]


HELD_HOURS = 24.0  # JOBSTREAM_AUDIT_HELD_HOURS: how long a completed job may wait for the office


KSEF_DAYS = 1  # JOBSTREAM_AUDIT_KSEF_DAYS: business days after issue an online document has to reach KSeF
EFACTURA_DAYS = 5  # Law 296/2023: calendar days after issue a Romanian document has to reach e-Factura
ROMANIA = ZoneInfo("Europe/Bucharest")


class Reconciliation(msgspec.Struct, kw_only=True):
    """Every completed job against its billing: what the accountant signs off."""

    completed: int = 0
    invoiced: int = 0
    not_billed: dict[str, int] = {}  # reason -> jobs
    held: list[str] = []  # job: reason, waiting for the office
    ksef_documents: int = 0  # Polish documents that must reach KSeF
    ksef_accepted: int = 0
    ksef_waiting: list[str] = []  # not yet accepted, still within their deadline
    efactura_documents: int = 0  # Romanian documents that must reach e-Factura
    efactura_accepted: int = 0
    efactura_waiting: list[str] = []  # not yet accepted by ANAF, still within the 5 days
    problems: list[str] = []

    @property
    def whole(self) -> bool:
        return not self.problems


async def reconcile(
    connection: NatsConnection,
    progress: Callable[[int], None] | None = None,
    *,
    now: datetime | None = None,
    held_limit: timedelta = timedelta(hours=HELD_HOURS),
    checkpoints: Sequence[Checkpoint] = (),
    ksef_all_polish: bool = False,
    ksef_days: int = KSEF_DAYS,
    efactura_all_romanian: bool = False,
) -> Reconciliation:
    """From the stream alone: each completed job has exactly one invoice or an explicit reason
    it is not billed; no job has two invoices; each series' numbers run 1, 2, 3 ... without a
    gap, and each number allocated numbers a document that is in the stream; no completed job
    has been held for the office longer than ``held_limit`` (by ``now``); every Polish document
    that must reach KSeF has its KSeF number by its deadline (``_reconcile_ksef``); and the
    stream still reaches the head of every checkpoint (``verify`` compares their digests)."""
    now = now or datetime.now(UTC)
    settled: dict[UUID, str] = {}  # job -> the billing decision since its last completion ("" = none)
    reasons: dict[UUID, str] = {}
    held_since: dict[UUID, datetime | None] = {}
    invoices_per_job: dict[UUID, list[str]] = {}
    sequences: dict[tuple[str, int], list[int]] = {}
    allocated: dict[UUID, tuple[InvoiceNumberAllocated, int]] = {}  # document -> its number, at a position
    documents: set[UUID] = set()
    invoiced_by: dict[UUID, tuple[UUID, JobInvoiced, int]] = {}  # invoice -> the job it bills
    polish: dict[UUID, InvoiceIssued | CreditNoteIssued] = {}  # a Polish seller's invoices and credit notes
    ksef = KsefFacts()
    romanian: dict[UUID, InvoiceIssued | CreditNoteIssued] = {}  # a Romanian seller's invoices and credit notes
    efactura = EfacturaFacts()
    async for notification, event in events(connection, progress=progress):
        if isinstance(event, InvoiceIssued | CreditNoteIssued) and _polish(event):
            polish[event.id] = event
        elif isinstance(event, InvoiceIssued | CreditNoteIssued) and _romanian(event):
            romanian[event.id] = event
        elif isinstance(event, EfacturaDocumentPrepared | EfacturaUploaded | EfacturaAccepted | EfacturaRefused):
            efactura.add(event)
        elif isinstance(event, KsefDocumentPrepared | KsefAccepted | KsefIssuedOffline | KsefHeld):
            ksef.add(event)
        match event:
            case JobCompleted():
                settled[event.id] = ""  # waits for a billing decision
                held_since.pop(event.id, None)
            case JobReopened():
                settled.pop(event.id, None)
                held_since.pop(event.id, None)
            case JobInvoiced():
                settled[event.id] = "invoiced"
                held_since.pop(event.id, None)
                invoiced_by[event.invoice_id] = (event.id, event, notification.id)
            case JobNotBilled():
                settled[event.id], reasons[event.id] = "not billed", event.reason
                held_since.pop(event.id, None)
            case InvoicingHeld():
                settled[event.id], reasons[event.id] = "held", event.reason
                # held again after a second look: it has waited since the first time
                held_since.setdefault(event.id, event.meta.occurred_at if event.meta else None)
            case InvoiceIssued() if not event.interim:  # an interim one: the work to date, not counted
                # once per job, or per month of a retainer
                billed = uuid.uuid5(event.job_id, event.period) if event.retainer_id else event.job_id
                invoices_per_job.setdefault(billed, []).append(event.number)
                documents.add(event.id)
            case InvoiceIssued() | CreditNoteIssued() | ProformaIssued():
                documents.add(event.id)
            case InvoiceNumberAllocated():
                sequences.setdefault((event.series, event.year), []).append(event.sequence)
                allocated[event.invoice_id] = (event, notification.id)
    result = Reconciliation(completed=len(settled))
    not_billed: dict[str, int] = {}
    for job, decision in settled.items():
        if decision == "invoiced":
            result.invoiced += 1
        elif decision == "not billed":
            not_billed[reasons[job]] = not_billed.get(reasons[job], 0) + 1
        elif decision == "held":
            since = held_since.get(job)
            waited = f" (since {iso(since)})" if since else ""
            result.held.append(f"{job}: {reasons[job]}{waited}")
            if since is not None and now - since > held_limit:
                result.problems.append(
                    f"job {job} has been held for the office since {iso(since)}, "
                    f"{_hours(now - since)}, longer than the {_hours(held_limit)} allowed: "
                    f"{reasons[job]}"
                )
        else:
            result.problems.append(f"job {job} is completed but has no invoice and no reason it is not billed")
    result.not_billed = not_billed
    for job, invoice_numbers in invoices_per_job.items():
        if len(invoice_numbers) > 1:
            result.problems.append(f"job {job} has {len(invoice_numbers)} invoices: {', '.join(invoice_numbers)}")
    for (series, year), numbers in sorted(sequences.items()):
        expected = list(range(1, len(numbers) + 1))
        if sorted(numbers) != expected:
            missing = sorted(set(expected) - set(numbers))
            twice = sorted(n for n in set(numbers) if numbers.count(n) > 1)
            result.problems.append(f"series {series} {year}: numbers missing {missing[:10]}, used twice {twice[:10]}")
    for document, (allocation, position) in allocated.items():
        if document not in documents:
            result.problems.append(
                f"number {allocation.number} was allocated at position {position} to document {document}, "
                f"but no invoice, credit note or pro forma {document} is in the stream"
            )
    for invoice, (job, invoiced, position) in invoiced_by.items():
        if invoice not in documents and invoice not in allocated:
            result.problems.append(
                f"job {job} was invoiced at position {position} by invoice {invoiced.number} "
                f"({invoice}), which is not in the stream"
            )
    _reconcile_ksef(result, polish, ksef, now, ksef_all_polish, ksef_days)
    _reconcile_efactura(result, romanian, efactura, now, efactura_all_romanian)
    if checkpoints:
        head = await connection.last_position()
        reach = max(checkpoints, key=lambda c: c.head)
        if reach.head > head:
            result.problems.append(
                f"positions {head + 1:,}-{reach.head:,} are missing: the stream ends at "
                f"{head:,}, {reach.seen()} saw {reach.head:,} (`jobstream audit verify` "
                "names what is gone)"
            )
    return result


@dataclass
class KsefFacts:
    """What the stream says of each document's way through KSeF."""

    prepared: set[UUID] = field(default_factory=set)
    accepted: set[UUID] = field(default_factory=set)
    offline_until: dict[UUID, datetime] = field(default_factory=dict)
    held: dict[UUID, str] = field(default_factory=dict)  # why its FA(3) was never sent

    def add(self, event: KsefDocumentPrepared | KsefAccepted | KsefIssuedOffline | KsefHeld) -> None:
        match event:
            case KsefHeld():
                self.held[event.id] = f"{event.field}: {event.reason}" if event.field else event.reason
            case KsefDocumentPrepared():
                self.prepared.add(event.id)
            case KsefAccepted():
                self.accepted.add(event.id)
            case KsefIssuedOffline():
                self.offline_until[event.id] = event.deadline


def _polish(document: InvoiceIssued | CreditNoteIssued) -> bool:
    address = document.seller.address
    return address is not None and address.country.upper() == "PL"


def _reconcile_ksef(
    result: Reconciliation,
    polish: dict[UUID, InvoiceIssued | CreditNoteIssued],
    ksef: KsefFacts,
    now: datetime,
    all_polish: bool,
    days: int,
) -> None:
    """Each Polish document that must be in KSeF has its KSeF number, or is still within its
    deadline. A document must be in KSeF when its FA(3) was prepared (it has a KSeF aggregate),
    and, with ``all_polish`` (KSeF was configured all along), every Polish invoice and credit
    note, so that one the KSeF consumer never took is reported too. The deadline of a document
    issued offline is the one recorded with it; of any other, the end of the ``days``-th
    business day in Poland after its issue date."""
    for id, document in polish.items():
        if id not in ksef.prepared and id not in ksef.held and not all_polish:
            continue
        result.ksef_documents += 1
        if id in ksef.accepted:
            result.ksef_accepted += 1
            continue
        offline = ksef.offline_until.get(id)
        deadline = offline or ksef_deadline(document.issue_date, days)
        kind = "credit note" if isinstance(document, CreditNoteIssued) else "invoice"
        what = "issued offline" if offline else "prepared for KSeF" if id in ksef.prepared else "never sent to KSeF"
        if id in ksef.held:
            what = f"never sent to KSeF: held, {ksef.held[id]}"
        if now > deadline:
            result.problems.append(
                f"{kind} {document.number} ({id}) has no KSeF number past its deadline {iso(deadline)} ({what})"
            )
        else:
            result.ksef_waiting.append(f"{kind} {document.number}: {what}, by {iso(deadline)}")


@dataclass
class EfacturaFacts:
    """What the stream says of each document's way through RO e-Factura."""

    prepared: set[UUID] = field(default_factory=set)
    uploaded: dict[UUID, str] = field(default_factory=dict)  # the upload index
    accepted: set[UUID] = field(default_factory=set)
    refused: dict[UUID, list[str]] = field(default_factory=dict)  # ANAF's messages

    def add(self, event: EfacturaDocumentPrepared | EfacturaUploaded | EfacturaAccepted | EfacturaRefused) -> None:
        match event:
            case EfacturaDocumentPrepared():
                self.prepared.add(event.id)
            case EfacturaUploaded():
                self.uploaded[event.id] = event.upload_index
            case EfacturaAccepted():
                self.accepted.add(event.id)
            case EfacturaRefused():
                self.refused[event.id] = list(event.messages) or [event.state]


def _romanian(document: InvoiceIssued | CreditNoteIssued) -> bool:
    address = document.seller.address
    return address is not None and address.country.upper() == "RO"


def efactura_deadline(issued_on: date) -> datetime:
    """The end (23:59:59 in Romania) of the 5th calendar day after ``issued_on``, in UTC."""
    day = issued_on + timedelta(days=EFACTURA_DAYS)
    return datetime.combine(day, time(23, 59, 59), ROMANIA).astimezone(UTC)


def _reconcile_efactura(
    result: Reconciliation,
    romanian: dict[UUID, InvoiceIssued | CreditNoteIssued],
    efactura: EfacturaFacts,
    now: datetime,
    all_romanian: bool,
) -> None:
    """Each Romanian document that must be in e-Factura is accepted by ANAF, or is still
    within the 5 calendar days after its issue (then listed, so the office is warned before
    the deadline). A document must be in e-Factura when its UBL was prepared for upload, and,
    with ``all_romanian`` (e-Factura configured all along), every Romanian invoice and credit
    note, so that one the uploader never took is reported too."""
    for id, document in romanian.items():
        if id not in efactura.prepared and not all_romanian:
            continue
        result.efactura_documents += 1
        if id in efactura.accepted:
            result.efactura_accepted += 1
            continue
        deadline = efactura_deadline(document.issue_date)
        kind = "credit note" if isinstance(document, CreditNoteIssued) else "invoice"
        if id in efactura.refused:
            what = f"refused by ANAF: {'; '.join(efactura.refused[id])}"
        elif id in efactura.uploaded:
            what = f"uploaded (index {efactura.uploaded[id]}), not yet accepted"
        else:
            what = "prepared for e-Factura" if id in efactura.prepared else "never uploaded to e-Factura"
        if now > deadline:
            result.problems.append(
                f"{kind} {document.number} ({id}) is not accepted by e-Factura past its deadline {iso(deadline)} "
                f"({what})"
            )
        else:
            result.efactura_waiting.append(f"{kind} {document.number}: {what}, by {iso(deadline)}")


def ksef_deadline(issued_on: date, days: int = KSEF_DAYS) -> datetime:
    """The end (23:59:59 in Poland) of the ``days``-th business day after ``issued_on``, in UTC."""
    return end_of_business_day_after(issued_on, days)


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h"


CHECKPOINT_TYPE = "Checkpoint"


def checkpoint_entry(checkpoint: Checkpoint) -> Entry:
    """The checkpoint as an export's last record, in the same columns as the events: its
    type ``Checkpoint``, its position the stream's head, the checkpoint itself as the event."""
    return Entry(
        position=checkpoint.head,
        aggregate="stream",
        aggregate_id=checkpoint.stream,
        version=0,
        type=CHECKPOINT_TYPE,
        occurred_at=checkpoint.taken_at,
        actor_id="",
        actor_role="",
        command_id="",
        correlation_id="",
        summary=f"head {checkpoint.head}, {checkpoint.messages} messages, "
        f"digest {checkpoint.digest} ({checkpoint.algorithm})",
        event=msgspec.Raw(msgspec.json.encode(checkpoint)),
    )


def export_file(entries: Iterable[Entry], path: str, fmt: str, checkpoint: Checkpoint | None = None) -> int:
    """``write_entries`` into the file at ``path`` (blocking: run it off the event loop)."""
    with open(path, "w", newline="", encoding="utf-8") as target:
        return write_entries(entries, target, fmt, checkpoint)


def write_entries(entries: Iterable[Entry], out: TextIO, fmt: str, checkpoint: Checkpoint | None = None) -> int:
    """The entries as CSV or JSON Lines, then the checkpoint taken with them, if any; how many entries."""
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    for entry in [*entries, *([checkpoint_entry(checkpoint)] if checkpoint is not None else [])]:
        if writer is not None:
            row = {column: getattr(entry, column) for column in COLUMNS}
            row["event"] = bytes(entry.event).decode()
            row["occurred_at"] = iso(entry.occurred_at) if entry.occurred_at else ""
            writer.writerow([row[column] for column in COLUMNS])
        else:
            out.write(msgspec.json.encode(entry).decode() + "\n")
        count += entry.type != CHECKPOINT_TYPE
    return count


def table_line(entry: Entry) -> str:
    when = entry.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if entry.occurred_at else "-"
    who = f"{entry.actor_id} ({entry.actor_role})" if entry.actor_id else "-"
    return (
        f"{entry.position:>8}  {when}  {entry.type:<22} {entry.aggregate:<10} "
        f"{entry.aggregate_id[:8]} v{entry.version:<4} {who:<24} {entry.summary}"
    )


# --- the command line -------------------------------------------------------------------


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(
            f"jobstream audit: {text!r} is not a date or time (use 2026-11-23 or 2026-11-23T10:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _id(text: str, option: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise SystemExit(
            f"jobstream audit: {option} {text!r} is not an id (ids look like 5b1f0c2e-8a7d-4c1e-9f0a-2d3b4c5d6e7f)"
        ) from None


def criteria_from(args: argparse.Namespace) -> Criteria:
    return Criteria(
        job=_id(args.job, "--job") if args.job else None,
        customer=_id(args.customer, "--customer") if args.customer else None,
        types=set(args.type or ()),
        since=_moment(args.since) if args.since else None,
        before=_moment(args.before) if args.before else None,
        after=args.after,
        until=args.until,
    )


class Bar:
    """A progress bar on stderr (tqdm), so stdout stays clean for the data."""

    def __init__(self, total: int, what: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total,
            desc=what,
            unit=" events",
            unit_scale=True,
            file=sys.stderr,
            mininterval=0.5,
            disable=not sys.stderr.isatty() and not os.environ.get("JOBSTREAM_PROGRESS"),
        )
        self._at = 0

    def __call__(self, position: int) -> None:
        self._bar.update(max(0, position - self._at))
        self._at = position

    def close(self) -> None:
        self._bar.close()


async def run(args: argparse.Namespace, env: dict[str, str], read_model_url: str) -> int:
    settings = StreamSettings.from_env(env)
    places = Checkpoints(settings.stream, env.get("JOBSTREAM_DATA") or None, read_model_url)
    connection = await NatsConnection.open_on_running_loop(settings)
    try:
        return await _command(args, connection, read_model_url, places)
    finally:
        await connection.aclose()
        places.close()


async def _checkpoint_now(connection: NatsConnection, places: Checkpoints, known: list[Checkpoint]) -> Checkpoint:
    """A checkpoint of the stream as it is now, recorded wherever checkpoints are kept."""
    bar = Bar(await connection.last_position(), "checkpointing")
    try:
        checkpoint, problems = await checkpoint_and_keep(connection, places, known, bar)
    finally:
        bar.close()
    for problem in problems:
        print(f"jobstream audit: {problem}", file=sys.stderr)
    return checkpoint


async def _known(places: Checkpoints, files: Sequence[str] = ()) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints kept (data directory, read models) and those in files the accountant names."""
    known, problems = await asyncio.to_thread(places.known)
    for name in files:
        try:
            known.extend(c for c in checkpoints_in(Path(name)) if c.stream == places.stream)
        except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError, KeyError) as error:
            problems.append(f"{name} holds no checkpoint that can be read: {error}")
    return known, problems


async def _command(
    args: argparse.Namespace, connection: NatsConnection, read_model_url: str, places: Checkpoints
) -> int:
    out = sys.stdout
    if args.audit_command == "replay":
        count = 0
        async for entry in replay(connection, criteria_from(args)):
            out.write((msgspec.json.encode(entry).decode() if args.json else table_line(entry)) + "\n")
            count += 1
        if not args.json:
            print(f"{count} events.", file=sys.stderr)
        return 0
    if args.audit_command == "checkpoint" and args.keep:
        from events.bridge import stop_on_signals

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        every = checkpoint_intervals(os.environ)
        await keep_checkpointing(connection, places, stop_on_signals(), *every)
        return 0
    if args.audit_command == "checkpoint":
        known, problems = await _known(places)
        for problem in problems:
            print(f"jobstream audit: {problem}", file=sys.stderr)
        if not places.places:
            raise SystemExit("jobstream audit: nowhere to keep a checkpoint: set JOBSTREAM_DATA or READ_MODEL_URL")
        try:
            checkpoint = await _checkpoint_now(connection, places, known)
        except TailMissing as error:
            print(f"No checkpoint taken: {error}.")
            return 1
        print(checkpoint.line())
        print(f"Kept in {' and '.join(places.places)}.")
        return 0
    if args.audit_command == "export":
        criteria = criteria_from(args)
        entries = [entry async for entry in replay(connection, criteria)]
        known, _problems = await _known(places)
        taken: Checkpoint | None = None
        refused = ""
        try:
            taken = await _checkpoint_now(connection, places, known)
        except TailMissing as error:
            refused = str(error)
        if args.out:
            count = await asyncio.to_thread(export_file, entries, args.out, args.format, taken)
        else:
            count = write_entries(entries, out, args.format, taken)
        print(f"Exported {count} events{f' to {args.out}' if args.out else ''}.", file=sys.stderr)
        if taken is None:
            print(f"No checkpoint in this export: {refused}.", file=sys.stderr)
            return 1
        print(f"{taken.line()} (its last record: file it with the export).", file=sys.stderr)
        return 0
    if args.audit_command == "verify":
        known, problems = await _known(places, args.checkpoints or ())
        bar = Bar(await connection.last_position(), "verifying")
        verdict = await verify(connection, known, bar)
        bar.close()
        verdict.problems.extend(problems)
        print(
            f"Read {verdict.messages} messages (sequences {verdict.first}..{verdict.last}): "
            f"{verdict.events} events of {verdict.aggregates} aggregates."
        )
        if known:
            latest = max(known, key=lambda c: c.head)
            print(
                f"Compared with {len(known)} checkpoint(s) kept outside the stream; the furthest, "
                f"{latest.seen()}, saw position {latest.head:,}."
            )
        else:
            print(
                "No checkpoint to compare with: a tail cut from the stream would not show "
                "(take one with `jobstream audit checkpoint`)."
            )
        if verdict.whole:
            print(
                "The log is whole: every sequence present, every aggregate's versions contiguous, "
                "every hash chain intact" + (", every checkpoint matched." if known else ".")
            )
            return 0
        print(f"The log is NOT whole: {len(verdict.problems)} problem(s).")
        for problem in verdict.problems:
            print(f"  - {problem}")
        proven = f"; {verdict.proven.seen()} proves the log up to {verdict.proven.head:,}" if verdict.proven else ""
        print(f"The last intact position is {verdict.last_intact:,}{proven}.")
        return 1
    if args.audit_command == "reconcile":
        known, problems = await _known(places)
        bar = Bar(await connection.last_position(), "reconciling")
        limit = timedelta(hours=args.held_hours)
        found = await reconcile(
            connection,
            bar,
            now=_moment(args.now) if args.now else None,
            held_limit=limit,
            checkpoints=known,
            ksef_all_polish=args.ksef,
            ksef_days=args.ksef_days,
            efactura_all_romanian=args.efactura,
        )
        bar.close()
        found.problems.extend(problems)
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(found.not_billed.items())) or "none"
        print(
            f"{found.completed} completed jobs: {found.invoiced} invoiced, not billed: {reasons}, "
            f"held for the office: {len(found.held)} (allowed {_hours(limit)})."
        )
        for held in found.held:
            print(f"  held  {held}")
        if found.ksef_documents:
            print(
                f"{found.ksef_documents} Polish documents for KSeF: {found.ksef_accepted} with their KSeF number, "
                f"{len(found.ksef_waiting)} still within their deadline."
            )
        for waiting in found.ksef_waiting:
            print(f"  KSeF  {waiting}")
        if found.efactura_documents:
            print(
                f"{found.efactura_documents} Romanian documents for e-Factura: {found.efactura_accepted} accepted, "
                f"{len(found.efactura_waiting)} not yet, still within their 5 days."
            )
        for waiting in found.efactura_waiting:
            print(f"  e-Factura  {waiting}")
        if found.whole:
            print(
                "Every completed job has exactly one invoice, a reason it is not billed, or has been held "
                "less long than allowed; every series' numbers run without a gap, each on its document"
                + (
                    "; every Polish document has its KSeF number or is within its deadline"
                    if found.ksef_documents
                    else ""
                )
                + (
                    "; every Romanian document is accepted by e-Factura or within its 5 days"
                    if found.efactura_documents
                    else ""
                )
                + "."
            )
            return 0
        print(f"{len(found.problems)} problem(s):")
        for problem in found.problems:
            print(f"  - {problem}")
        return 1
    if args.audit_command == "as-of" and args.invoice:
        moment = _moment(args.at)
        invoice, entries = await invoice_as_of(connection, _id(args.invoice, "--invoice"), moment)
        if invoice is None:
            print(f"Invoice {args.invoice} was not issued yet at {moment.isoformat()}.")
            return 1
        if args.json:
            out.write(msgspec.json.encode({"as_of": moment, "invoice": invoice, "events": entries}).decode() + "\n")
            return 0
        print(f"Invoice {invoice.number} as it stood at {moment.isoformat()}:")
        status = invoice_status(invoice, moment.date().isoformat())
        for key, value in [
            ("customer", invoice.customer),
            ("issued", invoice.issue_date),
            ("due", invoice.due_date),
            ("total", f"{invoice.gross_total} {invoice.currency}"),
            ("status", status),
            ("paid", invoice.paid),
            ("credited", invoice.credited),
            ("credit notes", ", ".join(invoice.credit_notes)),
            ("reminded", invoice.reminder),
        ]:
            if value not in ("", "0.00"):
                print(f"  {key:<14} {value}")
        if invoice.issued is not None:
            for line in invoice.issued.lines:
                print(
                    f"  line           {line.description}: {line.quantity} {line.unit} × {line.unit_price}"
                    f" = {line.net} (VAT {line.vat_rate} %)"
                )
        print(f"Its {len(entries)} event(s) up to then:")
        for entry in entries:
            print("  " + table_line(entry))
        return 0
    if args.audit_command == "as-of":
        if not args.job:
            raise SystemExit("jobstream audit as-of: name --job ID or --invoice ID")
        moment = _moment(args.at)
        row, entries = await job_as_of(connection, _id(args.job, "--job"), moment)
        if row is None:
            print(f"Job {args.job} did not exist at {moment.isoformat()}.")
            return 1
        if args.json:
            out.write(msgspec.json.encode({"as_of": moment, "job": row, "events": entries}).decode() + "\n")
            return 0
        print(f"Job {row.id} as it stood at {moment.isoformat()} (after event #{row.position}, version {row.version}):")
        for key in (
            "status",
            "job_type",
            "description",
            "site",
            "priority",
            "sla_deadline",
            "billing_kind",
            "technician_ids",
            "scheduled_start",
            "duration_minutes",
            "completed_at",
            "reason",
        ):
            value = getattr(row, key)
            if value not in (None, "", [], 0):
                shown = ", ".join(map(str, value)) if isinstance(value, list) else getattr(value, "value", value)
                print(f"  {key.replace('_', ' '):<18} {shown}")
        print(f"  {'time logged':<18} {row.minutes_logged} min ({row.billable_minutes} billable)")
        print(f"Its {len(entries)} event(s) up to then:")
        for entry in entries:
            print("  " + table_line(entry))
        return 0
    if args.audit_command == "rebuild":
        into = args.into or f"sqlite:///{Path(tempfile.mkdtemp(prefix='jobstream-rebuild-')) / 'readmodels.sqlite3'}"
        last = await connection.last_position()
        bars: dict[str, Bar] = {}

        def progress(name: str, position: int) -> None:
            bars.setdefault(name, Bar(last, f"rebuilding {name}"))(position)

        results = await rebuild(connection, read_model_url, into, progress)
        for bar in bars.values():
            bar.close()
        print(f"Rebuilt into {into}")
        same = True
        for result in results:
            state = "equals the live one" if result.equal else "DIFFERS from the live one"
            print(f"  {result.projection} (up to position {result.position}) {state}:")
            for table, (live, rebuilt, differ) in result.tables.items():
                print(f"    {table:<16} live {live:>8} rows, rebuilt {rebuilt:>8}, differing {differ}")
            same = same and result.equal
        return 0 if same else 1
    raise SystemExit(f"jobstream audit: unknown command {args.audit_command!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobstream audit", description="The accountants' tools, from the stream.")
    commands = p.add_subparsers(dest="audit_command", required=True)

    def selection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--job", help="one job's events")
        sub.add_argument("--customer", help="a customer's events and those of their jobs")
        sub.add_argument("--type", action="append", help="only this event type (repeatable)")
        sub.add_argument("--from", dest="since", help="from this time (inclusive), e.g. 2026-11-01")
        sub.add_argument("--to", dest="before", help="up to this time (exclusive)")
        sub.add_argument("--after", type=int, default=0, help="after this stream position")
        sub.add_argument("--until", type=int, default=None, help="up to this stream position (inclusive)")

    sub = commands.add_parser("replay", help="events as a table, or JSON Lines")
    selection(sub)
    sub.add_argument("--json", action="store_true", help="JSON Lines")
    sub = commands.add_parser("export", help="events as CSV or JSON Lines, for the accountants' tools")
    selection(sub)
    sub.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    sub.add_argument("--out", help="file to write (default: standard output)")
    sub = commands.add_parser("verify", help="prove the log whole and untampered, and as long as every checkpoint saw")
    sub.add_argument(
        "--checkpoints",
        action="append",
        metavar="FILE",
        help=f"also compare with the checkpoints in this file: an export, or a copy of {CHECKPOINT_FILE} (repeatable)",
    )
    sub = commands.add_parser("reconcile", help="every completed job has one invoice or a reason; numbers have no gaps")
    sub.add_argument(
        "--held-hours",
        type=float,
        default=None,
        help="how long a completed job may be held for the office (default: "
        f"JOBSTREAM_AUDIT_HELD_HOURS, else {HELD_HOURS:g})",
    )
    sub.add_argument("--now", help="judge how long jobs were held as at this moment (default: now)")
    sub.add_argument(
        "--ksef",
        action="store_true",
        default=None,
        help="every Polish invoice and credit note must be in KSeF, also one never sent (default: when KSEF_URL "
        "is set); without it, the documents whose FA(3) was prepared",
    )
    sub.add_argument(
        "--ksef-days",
        type=int,
        default=None,
        help="business days after issue an online document has to reach KSeF (default: "
        f"JOBSTREAM_AUDIT_KSEF_DAYS, else {KSEF_DAYS})",
    )
    sub.add_argument(
        "--efactura",
        action="store_true",
        default=None,
        help="every Romanian invoice and credit note must be in e-Factura, also one never uploaded (default: when "
        "EFACTURA_URL is set); without it, the documents prepared for upload",
    )
    sub = commands.add_parser(
        "checkpoint", help="record the stream's head and the digest of the whole log, outside the stream"
    )
    sub.add_argument(
        "--keep",
        action="store_true",
        help="and go on taking one every JOBSTREAM_CHECKPOINT_SECONDS (300) or "
        "JOBSTREAM_CHECKPOINT_MESSAGES (1000) new messages, until stopped (`jobstream run checkpoints`)",
    )
    sub = commands.add_parser("as-of", help="a job or an invoice as it stood at a moment")
    sub.add_argument("--job", default="")
    sub.add_argument("--invoice", default="", help="an invoice's id (as /api/invoices lists them)")
    sub.add_argument("--at", required=True, help="e.g. 2026-11-23T10:00:00Z")
    sub.add_argument("--json", action="store_true")
    sub = commands.add_parser("rebuild", help="rebuild every projection afresh and compare with the live one")
    sub.add_argument("--into", help="read-model URL to rebuild into (default: a new SQLite file)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = {key: os.environ.get(key, "") for key in (*STREAM_VARIABLES, "JOBSTREAM_DATA")}
    if getattr(args, "held_hours", 0) is None:
        try:
            args.held_hours = float(os.environ.get("JOBSTREAM_AUDIT_HELD_HOURS") or HELD_HOURS)
        except ValueError:
            raise SystemExit("jobstream audit: JOBSTREAM_AUDIT_HELD_HOURS is not a number of hours") from None
    if getattr(args, "audit_command", "") == "reconcile":
        if args.ksef is None:
            args.ksef = bool(os.environ.get("KSEF_URL"))
        if args.efactura is None:
            args.efactura = bool(os.environ.get("EFACTURA_URL"))
        if args.ksef_days is None:
            try:
                args.ksef_days = int(os.environ.get("JOBSTREAM_AUDIT_KSEF_DAYS") or KSEF_DAYS)
            except ValueError:
                raise SystemExit("jobstream audit: JOBSTREAM_AUDIT_KSEF_DAYS is not a number of days") from None
    if not env["NATS_URL"]:
        raise SystemExit("jobstream audit: NATS_URL is not set; is jobstream running?")
    try:
        return asyncio.run(run(args, env, os.environ.get("READ_MODEL_URL", "")))
    except (ValueError, msgspec.ValidationError) as error:
        raise SystemExit(f"jobstream audit: {error}") from None
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
