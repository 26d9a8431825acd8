"""The generator of recurring services' jobs, and the scheduler that runs it (and the SLA watch)
on the calendar.

Generation is idempotent: every command it runs carries an id derived from the recurring
service, the occurrence and the plan's version, so a retry (after a crash, on another
replica, or the command API's own run racing the scheduler's) finds the first result
instead of doing it again. A job is created and scheduled first and the occurrence recorded
after; a crash in between is mended by the next run, which finds the job by its command id.

A recurring service (or an urgent job) the scheduler cannot work on for a reason trying
again would not cure is recorded as ``ProcessingFailed`` (consumer ``scheduler``, the
stream position of the aggregate's last event) and left out of later runs, so the others
go on; when the office asks for it to be tried again, the next run does and records the
outcome. A transient failure ends the run, and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, StoredEvent

from events.contract import (
    CancelJob,
    Event,
    JobCancelled,
    JobCompleted,
    JobInvoiced,
    JobReopened,
    JobRequested,
    ProcessingFailed,
    ProcessingFailedAgain,
    ProcessingResolved,
    ProcessingRetryRequested,
    RecordOccurrence,
    RequestJob,
    RescheduleJob,
    Role,
    ScheduleJob,
    Source,
    WarnSlaAtRisk,
    WithdrawOccurrence,
    decode_event,
    event_hash,
)
from events.faults import error_text, is_transient, parked, sealed
from services.application import JobstreamApp
from services.domain.common import Actor, DomainError, InvalidTransition
from services.domain.recurring import to_generate

log = logging.getLogger("services.recurring")
SCHEDULER = Actor(id="scheduler", role=Role.ADMIN)
NAME = "scheduler"  # the consumer named in the failures it records


class Generated(msgspec.Struct, kw_only=True):
    created: int = 0
    moved: int = 0
    withdrawn: int = 0
    position: int = 0  # the stream position after the last change (0: nothing changed)

    def __iadd__(self, other: Generated) -> Generated:
        self.created += other.created
        self.moved += other.moved
        self.withdrawn += other.withdrawn
        self.position = max(self.position, other.position)
        return self


async def generate(app: JobstreamApp, recurrence_id: UUID, now: datetime | None = None) -> Generated:
    """Make the recurring service's future jobs match its plan (see ``to_generate``)."""
    now = now or datetime.now(UTC)
    loaded = await app.load_async("recurrence", recurrence_id)
    state = loaded.state
    todo = to_generate(state, now)
    done = Generated()
    if state.plan is None:
        return done
    plan = state.plan
    key = f"recurrence:{recurrence_id}:v{state.plan_version}"

    async def run(id: UUID, command: msgspec.Struct, command_id: str) -> int:
        result = await app.execute_async(id, command, SCHEDULER, command_id=command_id)
        done.position = max(done.position, result.position)
        return result.position

    for at in todo.create:
        occurrence = f"{key}:{at.isoformat()}"
        job_id = app.new_id(SCHEDULER, f"{occurrence}:request")
        await run(
            job_id,
            RequestJob(
                customer_id=plan.customer_id,
                job_type=plan.job_type,
                description=plan.description,
                source=Source.RECURRING,
                site_address=plan.site_address,
                scope=plan.scope,
                billing_kind=plan.billing_kind,
                estimate_minutes=plan.duration_minutes,
            ),
            f"{occurrence}:request",
        )
        try:
            await run(
                job_id,
                ScheduleJob(technician_ids=plan.technician_ids, start=at, duration_minutes=plan.duration_minutes),
                f"{occurrence}:schedule",
            )
        except DomainError as refused:  # a technician left since: the job waits in the open pool
            log.warning("recurring service %s: the job of %s is left unscheduled: %s", recurrence_id, at, refused)
        await run(recurrence_id, RecordOccurrence(at=at, job_id=job_id), f"{occurrence}:record")
        done.created += 1
    for at, job_id in todo.move:
        occurrence = f"{key}:{at.isoformat()}"
        try:
            await run(
                job_id,
                RescheduleJob(
                    technician_ids=plan.technician_ids,
                    start=at,
                    duration_minutes=plan.duration_minutes,
                    reason="the recurring service changed",
                ),
                f"{occurrence}:move",
            )
        except InvalidTransition:  # started, on hold or taken by hand: the office decides
            pass
        await run(recurrence_id, RecordOccurrence(at=at, job_id=job_id), f"{occurrence}:record")
        done.moved += 1
    for at, job_id in todo.withdraw:
        occurrence = f"{key}:{at.isoformat()}"
        try:
            await run(job_id, CancelJob(reason="no longer in the recurring service's plan"), f"{occurrence}:cancel")
        except InvalidTransition:  # already worked on, done or cancelled: it stays as it is
            pass
        await run(
            recurrence_id,
            WithdrawOccurrence(at=at, job_id=job_id, reason="no longer in the plan"),
            f"{occurrence}:withdraw",
        )
        done.withdrawn += 1
    return done


class Watch:
    """Every recurring service, and the open urgent jobs with an SLA deadline, read from the
    stream incrementally (only the job events that matter are decoded)."""

    JOB_TYPES = frozenset({"JobRequested", "JobCompleted", "JobCancelled", "JobInvoiced", "JobReopened"})

    def __init__(self) -> None:
        self.recurrences: set[UUID] = set()
        self.deadlines: dict[UUID, datetime] = {}  # open urgent job -> its SLA deadline
        self._known: dict[UUID, datetime] = {}  # every urgent job's deadline, for a reopened one
        self.recurrence_position = 0
        self.job_position = 0

    async def refresh(self, app: JobstreamApp) -> None:
        self.recurrence_position, defined = await app.events_since(
            "recurrence", self.recurrence_position, {"RecurringServiceDefined"}
        )
        self.recurrences.update(event.id for event in defined)
        self.job_position, events = await app.events_since("job", self.job_position, self.JOB_TYPES)
        for event in events:
            match event:
                case JobRequested() if event.sla_deadline is not None and event.priority == "urgent":
                    self._known[event.id] = self.deadlines[event.id] = event.sla_deadline
                case JobCompleted() | JobCancelled() | JobInvoiced():
                    self.deadlines.pop(event.id, None)
                case JobReopened() if event.id in self._known:
                    self.deadlines[event.id] = self._known[event.id]


class Scheduler:
    """The calendar's work in the command service's domain: recurring services' jobs generated
    ahead as the horizon moves, and the office alerted to urgent jobs close to their SLA."""

    def __init__(
        self, app: JobstreamApp, sla_warn_minutes: int = 60, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.app = app
        self.sla_warn_minutes = sla_warn_minutes
        self.clock = clock
        self.watch = Watch()
        self.parked: set[UUID] = set()  # recorded as failed, left out until the office asks again
        self.failure_position = 0
        self.retrying: dict[UUID, tuple[ProcessingRetryRequested, StoredEvent]] = {}  # asked, not yet settled

    async def run_once(self) -> Generated:
        now = self.clock()
        await self.watch.refresh(self.app)
        total = Generated()
        retried = await self._retries()
        for recurrence_id in sorted(self.watch.recurrences):
            if recurrence_id in self.parked and recurrence_id not in retried:
                continue  # recorded as failed: left out until the office asks for it again
            try:
                total += await generate(self.app, recurrence_id, now)
            except DomainError as refused:
                log.warning("recurring service %s: %s", recurrence_id, refused)
            except Exception as error:
                if is_transient(error):
                    raise
                if recurrence_id in retried:
                    await self._settle(recurrence_id, error)
                    continue
                await self._park(recurrence_id, error)
                continue
            if recurrence_id in retried:
                await self._settle(recurrence_id, None)
        for job_id in [k for k in retried if k in self.watch._known]:  # an urgent job's alert, again
            self.watch.deadlines.setdefault(job_id, self.watch._known[job_id])
        warned = 0
        for job_id, deadline in sorted(self.watch.deadlines.items(), key=lambda item: item[1]):
            if (deadline - now).total_seconds() > self.sla_warn_minutes * 60:
                break
            if job_id in self.parked and job_id not in retried:
                continue
            self.watch.deadlines.pop(job_id, None)  # warned once per deadline
            try:
                result = await self.app.execute_async(
                    job_id,
                    WarnSlaAtRisk(within_minutes=self.sla_warn_minutes),
                    SCHEDULER,
                    command_id=f"sla:{job_id}:{deadline.isoformat()}",
                )
            except DomainError as refused:
                log.warning("job %s: no SLA alert: %s", job_id, refused)
            except Exception as error:
                if is_transient(error):
                    self.watch.deadlines[job_id] = deadline  # the next run tries again
                    raise
                if job_id in retried:
                    await self._settle(job_id, error)
                else:
                    await self._park(job_id, error)
                continue
            else:
                warned += bool(result.events)
                total.position = max(total.position, result.position)
            if job_id in retried:
                await self._settle(job_id, None)
        for aggregate_id in list(retried):  # nothing of it is due now: done as far as the scheduler goes
            await self._settle(aggregate_id, None, "nothing due now")
        if total.created or total.moved or total.withdrawn or warned:
            log.info(
                "recurring services: %s created, %s moved, %s withdrawn; %s SLA alerts",
                total.created,
                total.moved,
                total.withdrawn,
                warned,
            )
        return total

    async def _park(self, aggregate_id: UUID, error: BaseException) -> None:
        """Record the failure once (its id derives from the aggregate's last event) and leave
        the aggregate out of later runs."""
        recorder = self.app.recorder
        positioned = await recorder.select_positioned_async(aggregate_id)
        position, last = positioned[-1]
        failed = parked(NAME, position, last.topic, aggregate_id, last.state, error)
        log.error(
            "scheduler: cannot work on %s (its last event at stream position %s): %s: %s; recorded as "
            "failure %s, going on with the others",
            aggregate_id,
            position,
            failed.error_type,
            failed.error,
            failed.id,
            exc_info=error,
        )
        with contextlib.suppress(IntegrityError):  # recorded by an earlier run, or another replica
            await recorder.insert_events_async(sealed(NAME, failed.id, 0, "", failed, f"{NAME}:failed:{position}"))
        self.parked.add(aggregate_id)

    async def _retries(self) -> dict[UUID, tuple[ProcessingRetryRequested, StoredEvent]]:
        """The office's requests to try one of the scheduler's failures again, by aggregate."""
        recorder = self.app.recorder
        for position, stored in await recorder.kind_events_async("failure", self.failure_position):
            self.failure_position = position
            if stored.topic != "ProcessingRetryRequested":
                continue
            request = decode_event(stored.state)
            if not isinstance(request, ProcessingRetryRequested) or request.consumer != NAME:
                continue
            first = (await recorder.select_positioned_async(request.id))[0][1]
            failed = decode_event(first.state)
            if isinstance(failed, ProcessingFailed):
                self.retrying[UUID(failed.aggregate_id)] = (request, stored)
        return self.retrying

    async def _settle(self, aggregate_id: UUID, error: BaseException | None, done: str = "processed") -> None:
        """The outcome of trying it again, recorded once; kept until it is recorded (a
        transient failure meanwhile: the next run tries again)."""
        request, stored = self.retrying[aggregate_id]
        self.parked.discard(aggregate_id)
        outcome: Event = ProcessingResolved(id=request.id, outcome=done)
        if error is not None:
            error_type, message = error_text(error)
            outcome = ProcessingFailedAgain(id=request.id, error_type=error_type, error=message)
            self.parked.add(aggregate_id)
        with contextlib.suppress(IntegrityError):
            await self.app.recorder.insert_events_async(
                sealed(
                    NAME,
                    request.id,
                    stored.originator_version,
                    event_hash(stored.state),
                    outcome,
                    f"{NAME}:retried:{request.id}:{stored.originator_version}",
                )
            )
        del self.retrying[aggregate_id]


def serve(env: dict[str, str], every_seconds: float, sla_warn_minutes: int) -> int:
    """`jobstream run scheduler`: the scheduler's runs until SIGTERM or Ctrl-C."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _schedule(env, every_seconds, sla_warn_minutes, stop)
    return 0


async def run_service(env: dict[str, str], stop: asyncio.Event) -> None:
    """The scheduler until ``stop``, beside the other services (`jobstream run workers`): its
    runs are synchronous (the application's), so they go on a thread of their own."""
    stopped = threading.Event()
    schedule = asyncio.create_task(
        asyncio.to_thread(
            _schedule,
            env,
            float(env.get("JOBSTREAM_SCHEDULER_SECONDS") or 60),
            int(env.get("JOBSTREAM_SLA_WARN_MINUTES") or 60),
            stopped,
        )
    )
    asked = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([schedule, asked], return_when=asyncio.FIRST_COMPLETED)
    finally:
        asked.cancel()
        stopped.set()
        await schedule


def _schedule(env: dict[str, str], every_seconds: float, sla_warn_minutes: int, stop: threading.Event) -> None:
    app = JobstreamApp(env)
    scheduler = Scheduler(app, sla_warn_minutes=sla_warn_minutes)
    log.info(
        "scheduling recurring services' jobs and watching SLAs (within %s min) every %s s",
        sla_warn_minutes,
        every_seconds,
    )
    try:
        while not stop.is_set():
            try:
                app.run(scheduler.run_once())
            except Exception:
                log.exception("a scheduler run failed; trying again in %s s", every_seconds)
            stop.wait(every_seconds)
    finally:
        app.close()
