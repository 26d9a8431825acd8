"""The accountants' tools, straight from the stream: replay, verify, as-of, rebuild, export.

    jobstream audit replay [--job ID] [--customer ID] [--type T] [--from T] [--to T]
                           [--after N] [--until N] [--json]
    jobstream audit verify
    jobstream audit as-of --job ID --at 2026-11-23T10:00:00Z [--json]
    jobstream audit rebuild [--into URL]
    jobstream audit export --from 2026-11-01 --to 2026-12-01 [--format csv|jsonl] [--out FILE]

Nothing here reads a read model except ``rebuild``, which builds every projection afresh
and compares it with the live one. Settings come from the environment in ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from events.contract import (
    Event, InvoiceEvent, InvoiceIssued, InvoiceNumberAllocated, InvoicingHeld, JobCompleted, JobEvent, JobInvoiced, JobNotBilled,
    JobReopened, JobRequested, decode_event, event_hash,
)
from events.jetstream import PAGE, STREAM_VARIABLES, NatsConnection, StreamSettings, notification_of
from projections.rows import InvoiceRow, JobRow, evolve_invoice, evolve_job, invoice_status, iso, summary
from projections.runner import Runner, build

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
        position=notification.id, aggregate=event.aggregate, aggregate_id=str(notification.originator_id),
        version=notification.originator_version, type=notification.topic,
        occurred_at=meta.occurred_at if meta else None, actor_id=meta.actor_id if meta else "",
        actor_role=meta.actor_role if meta else "", command_id=meta.command_id if meta else "",
        correlation_id=meta.correlation_id if meta else "", summary=summary(event),
        event=msgspec.Raw(notification.state),
    )


async def events(connection: NatsConnection, after: int = 0, until: int | None = None,
                 progress: Callable[[int], None] | None = None) -> AsyncIterator[tuple[Notification, Event]]:
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


# --- verify -----------------------------------------------------------------------------


@dataclass
class Verdict:
    messages: int = 0
    events: int = 0
    aggregates: int = 0
    first: int = 0
    last: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.problems


async def verify(connection: NatsConnection, progress: Callable[[int], None] | None = None) -> Verdict:
    """Prove the log whole and untampered, or name what is wrong.

    - every stream sequence from the first to the last is present;
    - every aggregate's versions run 1, 2, 3, ... without a gap or a repeat;
    - every event's ``previous_hash`` is the SHA-256 of the stored bytes of the event before
      it in its aggregate (the first one's is empty), so an altered, removed or inserted
      event breaks the chain at the event after it.
    """
    verdict = Verdict()
    info = await connection.js.stream_info(connection.settings.stream)
    verdict.first, verdict.last = int(info.state.first_seq), int(info.state.last_seq)
    expected = verdict.first
    chains: dict[str, tuple[int, str, int]] = {}  # subject -> (version, hash, position)
    everything = f"{connection.settings.prefix}>"
    position = verdict.first - 1
    while True:
        page = await connection.direct_batch({"seq": position + 1, "next_by_subj": everything, "batch": PAGE})
        for msg in page:
            assert msg.headers is not None
            sequence = int(msg.headers["Nats-Sequence"])
            if sequence != expected:
                verdict.problems.append(f"sequences {expected}..{sequence - 1} are missing from the stream")
            expected = sequence + 1
            verdict.messages += 1
            subject = msg.headers["Nats-Subject"]
            if not subject.startswith(f"{connection.settings.prefix}events."):
                continue
            verdict.events += 1
            _check_event(verdict, chains, sequence, subject, msg)
        if len(page) < PAGE:
            break
        position = int(page[-1].headers["Nats-Sequence"])  # type: ignore[index]
        if progress is not None:
            progress(position)
    if expected <= verdict.last:
        verdict.problems.append(f"sequences {expected}..{verdict.last} are missing from the stream")
    verdict.aggregates = len(chains)
    return verdict


def _check_event(verdict: Verdict, chains: dict[str, tuple[int, str, int]], sequence: int,
                 subject: str, msg: Any) -> None:
    notification = notification_of(msg)
    name = f"event #{sequence} ({notification.topic} v{notification.originator_version} of {subject})"
    try:
        event = decode_event(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        verdict.problems.append(f"{name} cannot be read: {error}")
        chains[subject] = (notification.originator_version, event_hash(msg.data), sequence)
        return
    version, previous_hash, previous_position = chains.get(subject, (0, "", 0))
    after = f" (the last one seen is event #{previous_position})" if previous_position else ""
    claimed = event.meta.previous_hash if event.meta else ""
    if notification.originator_version != version + 1:
        verdict.problems.append(
            f"{name}: versions {version + 1}..{notification.originator_version - 1} of this aggregate are "
            f"missing{after}" if notification.originator_version > version + 1 else
            f"{name}: version {notification.originator_version} repeats or goes back{after}")
    elif claimed != previous_hash:
        culprit = f"event #{previous_position}" if previous_position else "the event before it"
        verdict.problems.append(f"{name}: the hash chain is broken: {culprit} is not the event this one "
                                f"followed (it was altered, or this one was forged)")
    chains[subject] = (notification.originator_version, event_hash(msg.data), sequence)


# --- as-of ------------------------------------------------------------------------------


async def _events_until(connection: NatsConnection, aggregate_id: UUID,
                        moment: datetime) -> list[tuple[Notification, Event]]:
    """An aggregate's events up to ``moment``, from the stream."""
    stored = await connection.direct_batch(
        {"seq": 1, "next_by_subj": connection.settings.aggregate_filter("events", aggregate_id), "batch": PAGE})
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


async def invoice_as_of(connection: NatsConnection, invoice_id: UUID,
                        moment: datetime) -> tuple[InvoiceRow | None, list[Entry]]:
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
    "board": ["jobs", "job_technicians", "customers", "technicians", "users", "job_history", "invoices",
              "unmatched_lines"],
    "timesheets": ["time_entries"],
    "ledger": ["journal", "ledger_invoices"],
}


async def rebuild(connection: NatsConnection, live_url: str, into_url: str,
                  progress: Callable[[str, int], None] | None = None) -> list[Comparison]:
    """Every projection rebuilt into ``into_url`` from the stream, then compared with the live one."""
    results = []
    for name, tables in TABLES.items():
        live = build(name, live_url)
        fresh = build(name, into_url)
        runner = Runner(fresh, connection)
        for _attempt in range(5):
            target = await asyncio.to_thread(live.view.max_tracking_id, name) or 0
            await runner.catch_up(until=target, progress=(lambda p, n=name: progress(n, p)) if progress else None)
            counts = {}
            for table in tables:
                a, b = await asyncio.to_thread(_rows, live.view, table), await asyncio.to_thread(_rows, fresh.view, table)
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

COLUMNS = ["position", "occurred_at", "aggregate", "aggregate_id", "version", "type", "actor_id",
           "actor_role", "command_id", "correlation_id", "summary", "event"]


class Reconciliation(msgspec.Struct, kw_only=True):
    """Every completed job against its billing: what the accountant signs off."""

    completed: int = 0
    invoiced: int = 0
    not_billed: dict[str, int] = {}  # reason -> jobs
    held: list[str] = []  # job: reason, waiting for the office
    problems: list[str] = []

    @property
    def whole(self) -> bool:
        return not self.problems


async def reconcile(connection: NatsConnection, progress: Callable[[int], None] | None = None) -> Reconciliation:
    """From the stream alone: each completed job has exactly one invoice or an explicit reason
    it is not billed; no job has two invoices; each series' numbers run 1, 2, 3 ... without a gap."""
    settled: dict[UUID, str] = {}  # job -> the billing decision since its last completion ("" = none)
    reasons: dict[UUID, str] = {}
    invoices_per_job: dict[UUID, list[str]] = {}
    sequences: dict[tuple[str, int], list[int]] = {}
    async for _notification, event in events(connection, progress=progress):
        match event:
            case JobCompleted():
                settled[event.id] = ""  # waits for a billing decision
            case JobReopened():
                settled.pop(event.id, None)
            case JobInvoiced():
                settled[event.id] = "invoiced"
            case JobNotBilled():
                settled[event.id], reasons[event.id] = "not billed", event.reason
            case InvoicingHeld():
                settled[event.id], reasons[event.id] = "held", event.reason
            case InvoiceIssued() if not event.interim:  # an interim one: the work to date, not counted
                # once per job, or per month of a retainer
                billed = uuid.uuid5(event.job_id, event.period) if event.retainer_id else event.job_id
                invoices_per_job.setdefault(billed, []).append(event.number)
            case InvoiceNumberAllocated():
                sequences.setdefault((event.series, event.year), []).append(event.sequence)
    result = Reconciliation(completed=len(settled))
    not_billed: dict[str, int] = {}
    for job, decision in settled.items():
        if decision == "invoiced":
            result.invoiced += 1
        elif decision == "not billed":
            not_billed[reasons[job]] = not_billed.get(reasons[job], 0) + 1
        elif decision == "held":
            result.held.append(f"{job}: {reasons[job]}")
        else:
            result.problems.append(f"job {job} is completed but has no invoice and no reason it is not billed")
    result.not_billed = not_billed
    for job, numbers in invoices_per_job.items():
        if len(numbers) > 1:
            result.problems.append(f"job {job} has {len(numbers)} invoices: {', '.join(numbers)}")
    for (series, year), numbers in sorted(sequences.items()):
        expected = list(range(1, len(numbers) + 1))
        if sorted(numbers) != expected:
            missing = sorted(set(expected) - set(numbers))
            twice = sorted(n for n in set(numbers) if numbers.count(n) > 1)
            result.problems.append(f"series {series} {year}: numbers missing {missing[:10]}, used twice {twice[:10]}")
    return result


def write_entries(entries: Iterable[Entry], out: TextIO, fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for entry in entries:
            row = {column: getattr(entry, column) for column in COLUMNS}
            row["event"] = bytes(entry.event).decode()
            row["occurred_at"] = iso(entry.occurred_at) if entry.occurred_at else ""
            writer.writerow([row[column] for column in COLUMNS])
            count += 1
    else:
        for entry in entries:
            out.write(msgspec.json.encode(entry).decode() + "\n")
            count += 1
    return count


def table_line(entry: Entry) -> str:
    when = entry.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if entry.occurred_at else "-"
    who = f"{entry.actor_id} ({entry.actor_role})" if entry.actor_id else "-"
    return (f"{entry.position:>8}  {when}  {entry.type:<22} {entry.aggregate:<10} "
            f"{entry.aggregate_id[:8]} v{entry.version:<4} {who:<24} {entry.summary}")


# --- the command line -------------------------------------------------------------------


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"jobstream audit: {text!r} is not a date or time (use 2026-11-23 or "
                         "2026-11-23T10:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _id(text: str, option: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise SystemExit(f"jobstream audit: {option} {text!r} is not an id (ids look like "
                         "5b1f0c2e-8a7d-4c1e-9f0a-2d3b4c5d6e7f)") from None


def criteria_from(args: argparse.Namespace) -> Criteria:
    return Criteria(
        job=_id(args.job, "--job") if args.job else None,
        customer=_id(args.customer, "--customer") if args.customer else None,
        types=set(args.type or ()), since=_moment(args.since) if args.since else None,
        before=_moment(args.before) if args.before else None, after=args.after, until=args.until)


class Bar:
    """A progress bar on stderr (tqdm), so stdout stays clean for the data."""

    def __init__(self, total: int, what: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=what, unit=" events", unit_scale=True, file=sys.stderr,
                         mininterval=0.5, disable=not sys.stderr.isatty() and not os.environ.get("JOBSTREAM_PROGRESS"))
        self._at = 0

    def __call__(self, position: int) -> None:
        self._bar.update(max(0, position - self._at))
        self._at = position

    def close(self) -> None:
        self._bar.close()


async def run(args: argparse.Namespace, env: dict[str, str], read_model_url: str) -> int:
    connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
    try:
        return await _command(args, connection, read_model_url)
    finally:
        await connection.aclose()


async def _command(args: argparse.Namespace, connection: NatsConnection, read_model_url: str) -> int:
    out = sys.stdout
    if args.audit_command == "replay":
        count = 0
        async for entry in replay(connection, criteria_from(args)):
            out.write((msgspec.json.encode(entry).decode() if args.json else table_line(entry)) + "\n")
            count += 1
        if not args.json:
            print(f"{count} events.", file=sys.stderr)
        return 0
    if args.audit_command == "export":
        criteria = criteria_from(args)
        entries = [entry async for entry in replay(connection, criteria)]
        target = open(args.out, "w", newline="", encoding="utf-8") if args.out else out  # noqa: SIM115
        try:
            count = write_entries(entries, target, args.format)
        finally:
            if args.out:
                target.close()
        print(f"Exported {count} events{f' to {args.out}' if args.out else ''}.", file=sys.stderr)
        return 0
    if args.audit_command == "verify":
        bar = Bar(await connection.last_position(), "verifying")
        verdict = await verify(connection, bar)
        bar.close()
        print(f"Read {verdict.messages} messages (sequences {verdict.first}..{verdict.last}): "
              f"{verdict.events} events of {verdict.aggregates} aggregates.")
        if verdict.whole:
            print("The log is whole: every sequence present, every aggregate's versions contiguous, "
                  "every hash chain intact.")
            return 0
        print(f"The log is NOT whole: {len(verdict.problems)} problem(s).")
        for problem in verdict.problems:
            print(f"  - {problem}")
        return 1
    if args.audit_command == "reconcile":
        bar = Bar(await connection.last_position(), "reconciling")
        found = await reconcile(connection, bar)
        bar.close()
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(found.not_billed.items())) or "none"
        print(f"{found.completed} completed jobs: {found.invoiced} invoiced, not billed: {reasons}, "
              f"held for the office: {len(found.held)}.")
        for held in found.held:
            print(f"  held  {held}")
        if found.whole:
            print("Every completed job has exactly one invoice or a reason it is not billed; "
                  "every series' numbers run without a gap.")
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
        for key, value in [("customer", invoice.customer), ("issued", invoice.issue_date), ("due", invoice.due_date),
                           ("total", f"{invoice.gross_total} {invoice.currency}"), ("status", status),
                           ("paid", invoice.paid), ("credited", invoice.credited),
                           ("credit notes", ", ".join(invoice.credit_notes)), ("reminded", invoice.reminder)]:
            if value not in ("", "0.00"):
                print(f"  {key:<14} {value}")
        if invoice.issued is not None:
            for line in invoice.issued.lines:
                print(f"  line           {line.description}: {line.quantity} {line.unit} × {line.unit_price}"
                      f" = {line.net} (VAT {line.vat_rate} %)")
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
        for key in ("status", "job_type", "description", "site", "priority", "sla_deadline", "billing_kind",
                    "technician_ids", "scheduled_start", "duration_minutes", "completed_at", "reason"):
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
    commands.add_parser("verify", help="prove the log whole and untampered")
    commands.add_parser("reconcile", help="every completed job has one invoice or a reason; numbers have no gaps")
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
    env = {key: os.environ.get(key, "") for key in STREAM_VARIABLES}
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

