"""The write side: load an aggregate from its events, decide, and save what was decided.

A save appends the events of every aggregate a command touches (a technician's stopwatch
moving from one job to another touches three) with optimistic concurrency: one conditional
publish, or one atomic batch when there are several. Events carry the id of the command
that made them, so a retried command is recognised from the log itself and answered with
its first result.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import threading
import time
import typing
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence, Set
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, StoredEvent
from eventsourcing.utils import Environment

from events.contract import (
    BankStatementImported,
    ChangeRecurringService,
    DefineRecurringService,
    Event,
    JobCommand,
    PriceListEvents,
    RequestJob,
    RescheduleJob,
    Role,
    ScheduleJob,
    StopwatchStarted,
    StopwatchStopped,
    TakeJob,
    TokenIssued,
    TokenRevoked,
    WorkStarted,
    WorkStopped,
    decode_event,
    event_hash,
    topic_of,
)
from events.jetstream import NatsAggregateRecorder, NatsApplicationRecorder, NatsFactory
from events.revocations import Revocations
from events.wire import TOPIC_AGGREGATES, originator_uuid
from events.writes import Author, write
from services.domain import billing, failures, notices, parties, recurring, slots
from services.domain import job as jobs
from services.domain.common import Actor, Context, DomainError, Forbidden, Invalid, NotFound, check_dates, derived_id

T = TypeVar("T")


class VersionConflict(DomainError):
    def __init__(self, kind: str, id: UUID, current: int, expected: int | None = None) -> None:
        detail = f"expected version {expected}" if expected is not None else "a concurrent change"
        super().__init__(f"{kind} {id} is at version {current} ({detail}); reload and retry")
        self.current_version = current


class Revoked(DomainError):
    """The caller's token was revoked while the command was on its way (401)."""


# Each kind of aggregate in words, for a refusal that names it
NAMES = {
    "job": "job",
    "customer": "customer",
    "technician": "technician",
    "pricelist": "price list",
    "token": "access token",
    "invoice": "invoice",
    "statement": "bank statement",
    "recipient": "user's notification settings",
    "message": "message",
    "recurrence": "recurring service",
    "creditnote": "credit note",
    "proforma": "proforma invoice",
    "series": "invoice series",
    "failure": "processing failure",
    "slot": "booking slot",
}


def a(kind: str) -> str:
    """'a job', 'an invoice': the kind in words, with its article."""
    name = NAMES.get(kind, kind)
    return f"{'an' if name[0] in 'aeio' else 'a'} {name}"  # a user's, an invoice


class WrongKind(NotFound):
    """An id of another kind of aggregate than the one asked for: 404, naming both."""

    def __init__(self, expected: str, id: UUID, actual: str) -> None:
        DomainError.__init__(
            self, f"no {NAMES.get(expected, expected)} {id}: that id is {a(actual)}, not {a(expected)}"
        )
        self.expected, self.actual = expected, actual


Decider = Callable[..., Sequence[Any]]  # (command, state, [what it is given,] ctx) -> events
Touched = dict[UUID, tuple["Loaded", list[Event]]]  # per aggregate: the state decided on, the events


class Kind(msgspec.Struct, frozen=True):
    """One kind of aggregate: how it is rebuilt from its events and, if commands are sent
    to it, the commands it takes (a union of types), its decider and what is checked or
    read before and after deciding (other aggregates, from the stream)."""

    name: str
    state_type: type
    evolve: Callable[[Any, Any], Any]
    commands: Any = None  # the union of its command types; None: written only by the service itself
    decide: Decider | None = None
    # the command's references to other aggregates, checked (422): the command to decide
    # (completed from them, as a job's site from its customer's)
    checks: Callable[[JobstreamApp, Any, Context], Awaitable[Any]] | None = None
    # what else the decider is given, read from the stream (a slot: the job holding it)
    given: Callable[[JobstreamApp, Any], Awaitable[tuple[Any, ...]]] | None = None
    # other aggregates the decided events move (a technician's stopwatch)
    also: Callable[[JobstreamApp, UUID, Loaded, list[Event], Context], Awaitable[Touched]] | None = None

    def initial(self, id: UUID) -> Any:
        return self.state_type(id=id)

    def command_types(self) -> tuple[type, ...]:
        return typing.get_args(self.commands) or ((self.commands,) if self.commands is not None else ())


# Kinds the consumers append to as well: a command on one decides on what is stored now,
# not on this process's cached state (a failure the invoicer resolved a moment ago)
CONSUMERS_WRITE = frozenset({"failure"})
STATEMENT_PART = 500  # lines per BankStatementImported event (a NATS message stays well under 1 MB)
SNAPSHOT_EVERY = 100  # events between snapshots of an aggregate
KEPT_COMMANDS = 256  # keyed commands remembered per aggregate for recognising retries


class Outcome(msgspec.Struct, frozen=True):
    """What one command did to one aggregate: its last version, position and event types."""

    version: int
    position: int
    events: tuple[str, ...]


class Loaded(msgspec.Struct, frozen=True):
    state: Any
    version: int
    last_hash: str
    # (actor id, command id) -> outcome, for the latest commands that carried an Idempotency-Key
    commands: dict[tuple[str, str], Outcome] = {}
    position: int = 0


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An aggregate's state at a version, derived from its events, to load it faster."""

    kind: str
    version: int
    position: int
    last_hash: str
    state: msgspec.Raw
    commands: list[tuple[str, str, Outcome]]

    @classmethod
    def of(cls, kind: str, loaded: Loaded) -> Snapshot:
        return cls(
            kind=kind,
            version=loaded.version,
            position=loaded.position,
            last_hash=loaded.last_hash,
            state=msgspec.Raw(encode_state(loaded.state)),
            commands=[(a, c, o) for (a, c), o in loaded.commands.items()],
        )

    def loaded(self) -> Loaded:
        state: Any = msgspec.json.decode(self.state, type=KINDS[self.kind].state_type)
        commands = {(a, c): o for a, c, o in self.commands}
        return Loaded(state, self.version, self.last_hash, commands, self.position)


_state_encoder = msgspec.json.Encoder(decimal_format="string")


def encode_state(state: Any) -> bytes:
    return _state_encoder.encode(state)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """What an accepted command answers: the aggregate's new version and the stream position."""

    id: UUID
    version: int
    position: int
    events: list[str]
    replayed: bool = False


def utc_now() -> datetime:
    """The service's clock, unless one is given (a test's)."""
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


AUTO = "auto-"  # prefix of the command ids made up for commands sent without a key


def advance(spec: Kind, loaded: Loaded, positioned: Sequence[tuple[int, StoredEvent]]) -> Loaded:
    """The aggregate after these stored events, remembering which keyed commands made them."""
    if not positioned:
        return loaded
    first = positioned[0][1]
    actual = TOPIC_AGGREGATES.get(first.topic, spec.name)
    if actual != spec.name:  # a job's id sent where a customer's belongs, say
        raise WrongKind(spec.name, originator_uuid(first), actual)
    state, commands = loaded.state, dict(loaded.commands)
    for position, stored in positioned:
        event = decode_event(stored.state)
        state = spec.evolve(state, event)
        meta = event.meta
        if meta is not None and not meta.command_id.startswith(AUTO):
            key = (meta.actor_id, meta.command_id)
            before = commands.get(key)
            names = (before.events if before else ()) + (stored.topic,)
            commands.pop(key, None)
            commands[key] = Outcome(stored.originator_version, position, names)
            if len(commands) > KEPT_COMMANDS:
                del commands[next(iter(commands))]
    last_position, last = positioned[-1]
    return Loaded(state, last.originator_version, event_hash(last.state), commands, last_position)


class JobstreamApp:
    """Loads, decides and saves. Thread-safe; plain `def` FastAPI routes call it."""

    CACHE_SIZE = 20_000
    RETRIES = 3
    AUTH_TTL = 5.0

    def __init__(
        self, env: dict[str, str], factory: NatsFactory | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.clock = clock  # read once per command: its events record the time it was decided at
        if factory is None:
            constructed = InfrastructureFactory.construct(Environment(env=env))
            assert isinstance(constructed, NatsFactory), "jobstream runs on events.jetstream"
            factory = constructed
        self.factory = factory
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, NatsApplicationRecorder), "jobstream runs on events.jetstream"
        self.recorder = recorder
        snapshots = self.factory.aggregate_recorder("snapshots")
        assert isinstance(snapshots, NatsAggregateRecorder)
        self.snapshots = snapshots
        self._cache: OrderedDict[UUID, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._tokens: dict[UUID, tuple[float, Actor | None]] = {}  # token id -> (when read, its user)
        # revoked tokens as the stream has them, followed by an app opened on a server's loop
        self.revocations = Revocations()
        self.revocations.listen(self._forget_token)
        self._turns: dict[UUID, list[Any]] = {}  # id -> [lock, users]
        # the seller's currency: set, else its country's (EUR when the company's country is not set)
        self.company_currency = env.get("JOBSTREAM_COMPANY_CURRENCY") or parties.currency_of(
            env.get("JOBSTREAM_COMPANY_COUNTRY") or ""
        )

    def _forget_token(self, token_id: UUID) -> None:
        self._tokens.pop(token_id, None)

    @classmethod
    async def open(cls, env: dict[str, str], clock: Callable[[], datetime] = utc_now) -> JobstreamApp:
        """The app on the caller's event loop (a web server's): commands awaited, no hops."""
        factory = InfrastructureFactory.construct(Environment(env=env))
        assert isinstance(factory, NatsFactory), "jobstream runs on events.jetstream"
        await factory.open_on_running_loop()
        app = cls(env, factory, clock)
        await app.revocations.follow(factory.connection)
        return app

    def close(self) -> None:
        self.factory.close()

    async def aclose(self) -> None:
        await self.revocations.stop()
        await self.factory.aclose()

    # --- loading -------------------------------------------------------------------------

    async def load_async(self, kind: str, id: UUID, fresh: bool = True) -> Loaded:
        """The aggregate's state: the cached state, plus (when fresh) any newer events."""
        spec = KINDS[kind]
        with self._lock:
            cached = self._cache.get(id)
        if cached is not None and not isinstance(cached.state, spec.state_type):
            actual = next(k.name for k in KINDS.values() if isinstance(cached.state, k.state_type))
            raise WrongKind(spec.name, id, actual)
        if cached is not None and not fresh:
            return cached
        loaded = cached if cached is not None else await self._from_snapshot(spec, id)
        newer = await self.recorder.select_positioned_async(id, gt=loaded.version or None)
        if newer or cached is None:
            loaded = advance(spec, loaded, newer)
            self._remember(id, loaded)
        return loaded

    async def _from_snapshot(self, spec: Kind, id: UUID) -> Loaded:
        """The latest snapshot of the aggregate, or its initial state."""
        found = await self.snapshots.latest_async(id)
        if found is None:
            return Loaded(spec.initial(id), 0, "")
        snapshot = msgspec.json.decode(found.state, type=Snapshot)
        if snapshot.kind != spec.name:
            raise WrongKind(spec.name, id, snapshot.kind)
        loaded = snapshot.loaded()
        self.recorder.remember(id, loaded.version, loaded.position)
        return loaded

    async def _snapshot(self, kind: str, id: UUID, loaded: Loaded) -> None:
        """Best effort: a snapshot only makes loading faster, the events stay the truth."""
        snapshot = msgspec.json.encode(Snapshot.of(kind, loaded))
        with contextlib.suppress(IntegrityError):  # another process took this one
            await self.snapshots.insert_events_async(
                [StoredEvent(id, loaded.version, f"jobstream:{kind}.Snapshot", snapshot)]
            )

    def _remember(self, id: UUID, loaded: Loaded) -> None:
        """Cache an aggregate as loaded or saved; never an id with no events, which is of no
        kind yet (asking for it as a customer must not make it one for the next request)."""
        if loaded.version == 0:
            return
        with self._lock:
            current = self._cache.get(id)
            if current is None or current.version <= loaded.version:
                self._cache[id] = loaded
            self._cache.move_to_end(id)
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)

    async def catalogue_async(self) -> list[dict[str, Any]]:
        """What the default price lists offer, for a technician recording what was used."""
        lists: dict[UUID, parties.PriceList] = {}
        for _, stored in await self.recorder.kind_events_async("pricelist"):
            id, event = originator_uuid(stored), decode_event(stored.state)
            assert isinstance(event, PriceListEvents)  # a price list's, by its subject
            lists[id] = parties.evolve_price_list(lists.get(id) or parties.PriceList(id=id), event)
        return [
            {
                "code": a.code,
                "name": a.name,
                "unit": a.unit.value,
                "rate": str(a.rate),
                "currency": p.currency,
                "price_list": p.name,
            }
            for p in lists.values()
            if p.is_default
            for a in sorted(p.activities.values(), key=lambda a: a.code)
        ]

    async def events_since(self, kind: str, after: int, topics: Set[str]) -> tuple[int, list[Event]]:
        """Every event of one kind stored after a position, decoding only the wanted types;
        and the position read to (``after`` when there is nothing new): an incremental reader's
        next step."""
        stored = await self.recorder.kind_events_async(kind, after)
        wanted = [decode_event(s.state) for _, s in stored if s.topic in topics]
        return (stored[-1][0] if stored else after), wanted

    async def get_async(self, kind: str, id: UUID) -> Any:
        loaded = await self.load_async(kind, id)
        if loaded.version == 0:
            raise NotFound(kind, id)
        return loaded.state

    # --- the synchronous face: each call runs on the recorder's event-loop thread ---------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.recorder.connection.loop.run(coroutine)

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await a core coroutine from async code, on whichever loop the recorder uses."""
        loop = self.recorder.connection.loop.loop
        if asyncio.get_running_loop() is loop:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))

    def load(self, kind: str, id: UUID, fresh: bool = True) -> Loaded:
        return self.run(self.load_async(kind, id, fresh))

    def get(self, kind: str, id: UUID) -> Any:
        return self.run(self.get_async(kind, id))

    def execute(
        self,
        id: UUID,
        command: msgspec.Struct,
        actor: Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
        expected_version: int | None = None,
    ) -> Result:
        return self.run(self.execute_async(id, command, actor, command_id, correlation_id, expected_version))

    def authenticate(self, token: str) -> Actor | None:
        return self.run(self.authenticate_async(token))

    # --- executing -----------------------------------------------------------------------

    def new_id(self, actor: Actor, command_id: str | None) -> UUID:
        """The id of an aggregate a command creates: derived from its key, so a retry finds it."""
        return derived_id("created", actor.id, command_id) if command_id else uuid.uuid4()

    async def execute_async(
        self,
        id: UUID,
        command: msgspec.Struct,
        actor: Actor,
        command_id: str | None = None,
        correlation_id: str | None = None,
        expected_version: int | None = None,
    ) -> Result:
        """Decide on the cached state first; on a conflict, reload and decide again. The
        aggregate's kind is the command's (COMMAND_KINDS).

        A command that carries an id is applied once: its events record the id, so a retry
        (here or on another replica) finds them and answers the first result.
        """
        kind = COMMAND_KINDS[type(command)]
        async with self._turn(id):  # one command at a time per aggregate in this process
            return await self._execute(kind, id, command, actor, command_id, correlation_id, expected_version)

    @contextlib.asynccontextmanager
    async def _turn(self, id: UUID) -> AsyncIterator[None]:
        turn = self._turns.setdefault(id, [asyncio.Lock(), 0])
        turn[1] += 1  # commands holding or waiting for this aggregate's lock
        try:
            async with turn[0]:
                yield
        finally:
            turn[1] -= 1
            if turn[1] == 0:
                del self._turns[id]

    async def _execute(
        self,
        kind: Kind,
        id: UUID,
        command: msgspec.Struct,
        actor: Actor,
        command_id: str | None,
        correlation_id: str | None,
        expected_version: int | None,
    ) -> Result:
        key = (actor.id, command_id) if command_id else None
        for attempt in range(self.RETRIES):
            fresh = attempt > 0 or expected_version is not None or kind.name in CONSUMERS_WRITE
            loaded = await self.load_async(kind.name, id, fresh=fresh)
            if key is not None and key in loaded.commands:
                outcome = loaded.commands[key]
                return Result(
                    id=id,
                    version=outcome.version,
                    position=outcome.position,
                    events=list(outcome.events),
                    replayed=True,
                )
            if expected_version is not None and loaded.version != expected_version:
                raise VersionConflict(kind.name, id, loaded.version, expected_version)
            ctx = Context(now=self.clock(), actor=actor, company_currency=self.company_currency)
            check_dates(command, ctx.now)
            try:
                touched = await self._decide(kind, id, command, loaded, ctx)
            except DomainError:
                if fresh:
                    raise
                continue  # refused on the cached state, which a consumer may have moved on (the
                # invoicer holding a job, say): decided again on the stored one
            try:
                return await self._save(id, touched, actor, command_id, correlation_id, ctx.now)
            except IntegrityError:
                if expected_version is not None:
                    raise VersionConflict(
                        kind.name, id, (await self.load_async(kind.name, id)).version, expected_version
                    ) from None
        raise VersionConflict(kind.name, id, (await self.load_async(kind.name, id)).version)

    async def _decide(self, kind: Kind, id: UUID, command: msgspec.Struct, loaded: Loaded, ctx: Context) -> Touched:
        """The events to save, per aggregate, with the state each was decided on."""
        assert kind.decide is not None, f"no commands for {kind.name}"
        if kind.checks is not None:
            command = await kind.checks(self, command, ctx)
        given = await kind.given(self, loaded.state) if kind.given is not None else ()
        decided = list(kind.decide(command, loaded.state, *given, ctx))
        if kind.also is not None:
            return await kind.also(self, id, loaded, decided, ctx)
        return {id: (loaded, decided)}

    async def _referenced(self, kind: str, id: UUID, field: str) -> Loaded:
        """An aggregate a command's field names: it must exist, and be of that kind (422)."""
        try:
            loaded = await self.load_async(kind, id)
        except WrongKind as wrong:
            raise Invalid(field, str(wrong)) from None
        if loaded.version == 0:
            raise Invalid(field, f"no {NAMES[kind]} {id}")
        return loaded

    async def _active_technician(self, technician_id: UUID, field: str) -> None:
        tech = await self._referenced("technician", technician_id, field)
        if not tech.state.active:
            raise Invalid(field, f"technician {tech.state.name} is deactivated")

    async def _save(
        self,
        id: UUID,
        touched: dict[UUID, tuple[Loaded, list[Event]]],
        actor: Actor,
        command_id: str | None,
        correlation_id: str | None,
        now: datetime,
    ) -> Result:
        """One save: every touched aggregate's events, the command's own aggregate last,
        stamped with ``now``: the time they were decided at."""
        if actor.token_id is not None and actor.token_id in self.revocations:
            raise Revoked("the token was revoked")  # seen since the request was authenticated
        command_id = command_id or f"{AUTO}{uuid.uuid4().hex}"
        order = [other for other in touched if other != id] + [id]
        author = Author(
            actor_id=actor.id,
            actor_role=actor.role.value,
            command_id=command_id,
            correlation_id=correlation_id or command_id,
        )
        stored, positions = await write(
            self.recorder,
            [
                (
                    aggregate_id,
                    touched[aggregate_id][0].version,
                    touched[aggregate_id][0].last_hash,
                    touched[aggregate_id][1],
                )
                for aggregate_id in order
            ],
            author,
            now,
        )
        if not stored:  # nothing to change (a change to what already is): nothing appended
            loaded = touched[id][0]
            return Result(id=id, version=loaded.version, position=loaded.position, events=[])
        offset = 0
        for aggregate_id in order:
            loaded, events = touched[aggregate_id]
            count = len(events)
            mine = list(zip(positions[offset : offset + count], stored[offset : offset + count], strict=True))
            offset += count
            if events:
                kind = events[0].aggregate
                after = advance(KINDS[kind], loaded, mine)
                self._remember(aggregate_id, after)
                if after.version // SNAPSHOT_EVERY > loaded.version // SNAPSHOT_EVERY:
                    await self._snapshot(kind, aggregate_id, after)
        own = touched[id][1]
        return Result(
            id=id, version=touched[id][0].version + len(own), position=positions[-1], events=[topic_of(e) for e in own]
        )

    # --- bank statements -----------------------------------------------------------------

    async def import_statement_async(self, data: bytes, actor: Actor) -> Result:
        """Store a statement's lines as events, once: its id is derived from the file's hash,
        so the same file again appends nothing and answers the first result."""
        from services.bank import parse_statement

        if actor.role not in (Role.OFFICE, Role.ADMIN):
            raise Forbidden(f"the {actor.role.value} role may not import statements; the office can")
        statement = parse_statement(data)
        statement_id = derived_id("statement", statement.digest)
        async with self._turn(statement_id):
            loaded = await self.load_async("statement", statement_id)
            if loaded.version:
                return await self._first_import(statement_id)
            lines = statement.lines
            parts = max(1, -(-len(lines) // STATEMENT_PART))
            events: list[Event] = [
                BankStatementImported(
                    id=statement_id,
                    format=statement.format,
                    account=statement.account,
                    reference=statement.reference,
                    sha256=statement.digest,
                    part=n + 1,
                    parts=parts,
                    lines=lines[n * STATEMENT_PART : (n + 1) * STATEMENT_PART],
                )
                for n in range(parts)
            ]
            try:
                return await self._save(
                    statement_id,
                    {statement_id: (loaded, events)},
                    actor,
                    f"statement-{statement.digest}",
                    None,
                    self.clock(),
                )
            except IntegrityError:  # imported meanwhile, by another request or replica
                return await self._first_import(statement_id)

    async def _first_import(self, statement_id: UUID) -> Result:
        """The first import's answer, again: its parts' version and position, whatever the
        matcher has appended to the statement since (the lines it left for review)."""
        parts = [
            (position, stored)
            for position, stored in await self.recorder.select_positioned_async(statement_id)
            if stored.topic == "BankStatementImported"
        ]
        position, last = parts[-1]
        return Result(
            id=statement_id,
            version=last.originator_version,
            position=position,
            events=["BankStatementImported"] * len(parts),
            replayed=True,
        )

    # --- access tokens -------------------------------------------------------------------

    def issue_token(self, user_name: str, role: Role, technician_id: UUID | None = None) -> str:
        return self.run(self._issue_token(user_name, role, technician_id))

    def revoke_token(self, token: str, reason: str = "") -> None:
        self.run(self._revoke_token(token, reason))

    async def _issue_token(self, user_name: str, role: Role, technician_id: UUID | None) -> str:
        """Create an access token; only its hash is stored. The token is shown once.

        A user name is one person: their alerts, quiet hours and phones are kept under it
        (the recipient aggregate), so a name is never given to another role or technician,
        even after its tokens are revoked; the same user may have several tokens (phones)."""
        for _, stored in await self.recorder.kind_events_async("token"):
            held = decode_event(stored.state)
            if (
                isinstance(held, TokenIssued)
                and held.user_name == user_name
                and (held.role, held.technician_id) != (role, technician_id)
            ):
                whose = f" (technician {held.technician_id})" if held.technician_id else ""
                raise Invalid(
                    "name",
                    f"{user_name!r} is already the name of a {held.role.value} user{whose}: "
                    "their alerts and phones are kept under it; choose another name",
                )
        token = "js_" + secrets.token_urlsafe(32)
        digest = token_hash(token)
        token_id = derived_id("token", digest)
        issued = TokenIssued(
            id=token_id, user_name=user_name, role=role, technician_id=technician_id, token_hash=digest
        )
        admin = Actor(id="admin-cli", role=Role.ADMIN)
        loaded = await self.load_async("token", token_id)
        await self._save(token_id, {token_id: (loaded, [issued])}, admin, None, None, self.clock())
        return token

    async def _revoke_token(self, token: str, reason: str) -> None:
        token_id = derived_id("token", token_hash(token))
        loaded = await self.load_async("token", token_id)
        if loaded.version == 0:
            raise NotFound("token", "given")
        admin = Actor(id="admin-cli", role=Role.ADMIN)
        revoked = TokenRevoked(id=token_id, reason=reason)
        await self._save(token_id, {token_id: (loaded, [revoked])}, admin, None, None, self.clock())
        self._tokens.pop(token_id, None)

    async def authenticate_async(self, token: str) -> Actor | None:
        """The token's user: remembered for AUTH_TTL, except that a revocation seen on the
        stream (``revocations``) refuses the token at once, remembered or not."""
        token_id = derived_id("token", token_hash(token))
        if token_id in self.revocations:
            return None
        cached = self._tokens.get(token_id)
        if cached is not None and time.monotonic() - cached[0] < self.AUTH_TTL:
            return cached[1]
        state = (await self.load_async("token", token_id)).state
        actor = None
        if state.version and not state.revoked and state.role is not None:
            actor = Actor(id=state.user_name, role=state.role, technician_id=state.technician_id, token_id=token_id)
        self._tokens[token_id] = (time.monotonic(), actor)
        return actor

    # --- reading the stream --------------------------------------------------------------

    def history(self, id: UUID) -> Sequence[StoredEvent]:
        return self.recorder.select_events(id)


# --- the kinds of aggregate, and what each is checked on, given and moves -----------------


async def job_references(app: JobstreamApp, command: JobCommand, ctx: Context) -> JobCommand:
    """Customers and technicians a job command names must exist (and be active)."""
    match command:
        case RequestJob():
            customer = await app._referenced("customer", command.customer_id, "customer_id")
            if command.site_address is None:  # the customer's site, else their billing address
                sites = customer.state.site_addresses
                return msgspec.structs.replace(
                    command, site_address=sites[0] if sites else customer.state.billing_address
                )
        case ScheduleJob() | RescheduleJob():
            for technician_id in command.technician_ids:
                await app._active_technician(technician_id, "technician_ids")
        case TakeJob() if ctx.actor.technician_id is not None:
            await app._active_technician(ctx.actor.technician_id, "technician")
    return command


async def stopwatches(app: JobstreamApp, job_id: UUID, loaded: Loaded, decided: list[Event], ctx: Context) -> Touched:
    """A technician has one running stopwatch: starting work on another job stops it."""
    touched: Touched = {job_id: (loaded, decided)}

    async def technician_events(technician_id: UUID) -> list[Event]:
        if technician_id not in touched:
            touched[technician_id] = (await app.load_async("technician", technician_id), [])
        return touched[technician_id][1]

    for event in decided:
        if isinstance(event, WorkStarted):
            tech = (await app.load_async("technician", event.technician_id)).state
            running = tech.running_job_id
            if running is not None and running != job_id:
                other = await app.load_async("job", running)
                stopped = jobs.stop_running(other.state, event.technician_id, ctx, at=event.started_at)
                if stopped:
                    touched[running] = (other, list(stopped))
                (await technician_events(event.technician_id)).append(
                    StopwatchStopped(id=event.technician_id, job_id=running, at=event.started_at)
                )
            (await technician_events(event.technician_id)).append(
                StopwatchStarted(id=event.technician_id, job_id=job_id, at=event.started_at)
            )
        elif isinstance(event, WorkStopped):
            (await technician_events(event.technician_id)).append(
                StopwatchStopped(id=event.technician_id, job_id=job_id, at=event.stopped_at)
            )
    return touched


async def plan_references(
    app: JobstreamApp, command: recurring.RecurrenceCommand, ctx: Context
) -> recurring.RecurrenceCommand:
    """A recurring service's customer must exist, and its technicians be active."""
    if isinstance(command, DefineRecurringService):
        await app._referenced("customer", command.customer_id, "customer_id")
    if isinstance(command, DefineRecurringService | ChangeRecurringService):
        for technician_id in command.technician_ids or []:
            await app._active_technician(technician_id, "technician_ids")
    return command


async def slot_holder(app: JobstreamApp, slot: slots.Slot) -> tuple[jobs.Job | None]:
    """The job holding the slot now, read fresh from the stream."""
    held = slot.job_id
    return ((await app.load_async("job", held)).state if held is not None else None,)


KINDS = {
    kind.name: kind
    for kind in [
        Kind("job", jobs.Job, jobs.evolve, JobCommand, jobs.decide, checks=job_references, also=stopwatches),
        Kind("customer", parties.Customer, parties.evolve_customer, parties.CustomerCommand, parties.decide_customer),
        Kind(
            "technician",
            parties.Technician,
            parties.evolve_technician,
            parties.TechnicianCommand,
            parties.decide_technician,
        ),
        Kind(
            "pricelist",
            parties.PriceList,
            parties.evolve_price_list,
            parties.PriceListCommand,
            parties.decide_price_list,
        ),
        Kind("token", parties.Token, parties.evolve_token),
        Kind("invoice", billing.Invoice, billing.evolve_invoice, billing.InvoiceCommand, billing.decide_invoice),
        Kind("statement", billing.Statement, billing.evolve_statement),
        Kind(
            "recipient", notices.Recipient, notices.evolve_recipient, notices.RecipientCommand, notices.decide_recipient
        ),
        Kind("message", notices.Message, notices.evolve_message, notices.MessageCommand, notices.decide_message),
        Kind(
            "recurrence",
            recurring.Recurrence,
            recurring.evolve_recurrence,
            recurring.RecurrenceCommand,
            recurring.decide_recurrence,
            checks=plan_references,
        ),
        Kind("failure", failures.Failure, failures.evolve_failure, failures.FailureCommand, failures.decide_failure),
        Kind("slot", slots.Slot, slots.evolve_slot, slots.SlotCommand, slots.decide_slot, given=slot_holder),
    ]
}
# Which kind of aggregate a command is for, from the kinds' command unions (Cosmic Python's
# COMMAND_HANDLERS): `execute(id, command, ...)` needs no kind
COMMAND_KINDS: dict[type, Kind] = {command: kind for kind in KINDS.values() for command in kind.command_types()}
assert len(COMMAND_KINDS) == sum(len(kind.command_types()) for kind in KINDS.values()), "a command of two kinds"
