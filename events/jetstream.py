"""An eventsourcing persistence module whose recorders live on NATS JetStream.

Select it the way the library's own modules are selected::

    PERSISTENCE_MODULE=events.jetstream NATS_URL=nats://127.0.0.1:4222

How events sit in the stream (see docs/architecture.md):

- one stream (``NATS_STREAM``, default ``JOBSTREAM``) with the subjects
  ``events.>``, ``snapshots.>`` and ``tracking.>`` (behind ``NATS_SUBJECT_PREFIX`` if set);
- an aggregate's events on ``events.<aggregate>.<id>``, one message per event, the event's
  state (readable JSON for jobstream's own events) as the payload and its topic and version
  in the ``Es-Topic`` and ``Es-Version`` headers;
- the stream sequence is the notification id; tracking records and snapshots share the
  stream, so notification ids may have gaps;
- optimistic concurrency with ``Nats-Expected-Last-Subject-Sequence`` on the first message
  of each aggregate in a save, several messages as one atomic batch (``allow_atomic``);
- an aggregate is loaded with one batch direct get, the notification log is read with
  batch direct gets, and ``subscribe()`` follows the stream with an ordered consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Notification,
    OperationalError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
    Transcoder,
)
from eventsourcing.utils import Environment, resolve_topic, strtobool
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

from events.bridge import LoopThread, RunningLoop
from events.codec import OrjsonTranscoder
from events.nats_private import Client, connect  # noqa: F401  # connect is imported from here by bench/readside.py

TOPIC_HEADER = "Es-Topic"
VERSION_HEADER = "Es-Version"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE_CODES = {10071, 10164}  # single publish, and inside an atomic batch
REFUSED_FOR_GOOD_CODES = {10054}  # the message is over the stream's max_msg_size
MAX_BATCH = 1000  # the server's limit on the messages of one atomic batch
PAGE = 1000  # messages asked for per batch direct get
STARTUP_WAIT = 30.0  # seconds a new connection waits for JetStream to answer (a cluster electing its leader)

log = logging.getLogger("jobstream.events")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")

# Where the store finds which aggregate each of an application's own topics belongs to (the
# token in its subject): a mapping named by topic, as the library names its modules, and
# asked for when the settings are made. jobstream's codec gives it; other topics
# ("module:Dog.Registered") fall back to their class path.
AGGREGATES_TOPIC = "events.wire:TOPIC_AGGREGATES"


def topic_aggregates(topic: str = "") -> Mapping[str, str]:
    """The topic -> aggregate mapping named by ``topic`` (``AGGREGATES_TOPIC`` if empty)."""
    found = resolve_topic(topic or AGGREGATES_TOPIC)
    if not isinstance(found, Mapping):
        raise ProgrammingError(f"{topic or AGGREGATES_TOPIC} is not a mapping of topics to aggregates")
    return found


class StreamMismatchError(ProgrammingError):
    """The stream exists with a configuration other than the one jobstream needs."""


class TurnedAway(OperationalError):
    """The NATS server refused the credentials: trying again would not change its mind."""


def run_plainly(prog: str, main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` for a service's own command: credentials NATS turns away end it with
    one line that says so, not a traceback."""
    try:
        return asyncio.run(main)
    except TurnedAway as error:
        raise SystemExit(f"{prog}: {error}") from None


def id_token(originator_id: UUID | str) -> str:
    text = str(originator_id)
    if _SAFE_TOKEN.fullmatch(text):
        return text
    return "~" + text.encode().hex()


def id_from_token(token: str) -> UUID | str:
    if token.startswith("~"):
        return bytes.fromhex(token[1:]).decode()
    try:
        return UUID(token)
    except ValueError:
        return token


def aggregate_token(topic: str, aggregates: Mapping[str, str]) -> str:
    known = aggregates.get(topic)
    if known:
        return known
    _, _, qualname = topic.rpartition(":")
    head = qualname.split(".")[0] if "." in qualname and ":" in topic else "any"
    return re.sub(r"[^a-z0-9_-]", "_", head.lower()) or "any"


# The environment variables StreamSettings reads: what a service hands on to its stream.
STREAM_VARIABLES = ("NATS_URL", "NATS_STREAM", "NATS_SUBJECT_PREFIX", "NATS_REPLICAS", "NATS_USER", "NATS_PASSWORD")


class StreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the recorders keep their messages, read from the environment once."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = "JOBSTREAM"
    prefix: str = ""
    replicas: int = 1
    create: bool = True
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0
    aggregates: Mapping[str, str] = msgspec.field(default_factory=topic_aggregates)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StreamSettings:
        """From the library's Environment or any mapping of the STREAM_VARIABLES."""
        prefix = env.get("NATS_SUBJECT_PREFIX", "")
        return cls(
            url=env.get("NATS_URL", "") or "nats://127.0.0.1:4222",
            stream=env.get("NATS_STREAM", "") or "JOBSTREAM",
            prefix=f"{prefix}." if prefix and not prefix.endswith(".") else prefix,
            replicas=int(env.get("NATS_REPLICAS") or "1"),
            create=strtobool(env.get("CREATE_TABLE", "yes")),
            user=env.get("NATS_USER") or None,
            password=env.get("NATS_PASSWORD") or None,
            aggregates=topic_aggregates(env.get("AGGREGATES_TOPIC", "")),
        )

    def subject(self, purpose: str, topic: str, originator_id: UUID | str) -> str:
        return f"{self.prefix}{purpose}.{aggregate_token(topic, self.aggregates)}.{id_token(originator_id)}"

    def aggregate_filter(self, purpose: str, originator_id: UUID | str) -> str:
        return f"{self.prefix}{purpose}.*.{id_token(originator_id)}"

    def kind_filter(self, purpose: str, aggregate: str) -> str:
        """Every aggregate of one kind (``pricelist``, say)."""
        return f"{self.prefix}{purpose}.{aggregate}.*"

    def tracking_subject(self, application_name: str) -> str:
        return f"{self.prefix}tracking.{id_token(application_name)}"

    def rpc_subject(self, name: str) -> str:
        """A request-reply subject between services (outside the stream: nothing is stored)."""
        return f"{self.prefix}rpc.{name}"

    @property
    def events_filter(self) -> str:
        return f"{self.prefix}events.>"

    def stream_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}{kind}.>" for kind in ("events", "snapshots", "tracking")],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            num_replicas=self.replicas,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
            allow_atomic=True,
        )


def stream_differences(wanted: StreamConfig, actual: StreamConfig) -> list[str]:
    """What of the existing stream differs from what jobstream needs, in plain words."""
    differences = []
    if set(wanted.subjects or ()) - set(actual.subjects or ()):
        differences.append(f"subjects are {actual.subjects}, expected {wanted.subjects}")
    for field in ("storage", "retention", "num_replicas"):
        have, need = (getattr(c, field) for c in (actual, wanted))
        if have != need:
            differences.append(f"{field} is {getattr(have, 'value', have)}, expected {getattr(need, 'value', need)}")
    for flag in ("deny_delete", "deny_purge", "allow_direct", "allow_atomic"):
        if not getattr(actual, flag):
            differences.append(f"{flag} is off, expected on")
    return differences


class _Replies:
    """The replies to one direct get, gathered until the server says the batch is over.

    One future per request rather than a timed wait per message: a page of 1,000 events
    costs one timer, not a thousand.
    """

    def __init__(self, batch: bool) -> None:
        self.batch = batch
        self.found: list[Msg] = []
        self.done: asyncio.Future[list[Msg]] = asyncio.get_running_loop().create_future()

    def take(self, msg: Msg) -> None:
        if self.done.done():
            return
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self.found.append(msg)
            if not self.batch:
                self.done.set_result(self.found)
        elif status in ("204", "404"):  # end of batch, or nothing there
            self.done.set_result(self.found)
        else:
            description = msg.headers.get("Description", "") if msg.headers else ""
            self.done.set_exception(OperationalError(f"direct get failed: {status} {description}"))


class NatsConnection:
    """The NATS connection and event loop shared by one factory's recorders.

    By default the loop is a thread of its own (the synchronous library calls into it);
    `open_on_running_loop` uses the caller's loop instead, for an asyncio web server.
    """

    def __init__(self, settings: StreamSettings, loop: LoopThread | RunningLoop) -> None:
        self.settings = settings
        self.loop = loop
        self._replies: dict[str, _Replies] = {}
        self._counter = itertools.count()
        self._stream_checked = False
        self._lock = threading.Lock()
        self._documents: Any = None

    @classmethod
    def open_in_thread(cls, settings: StreamSettings) -> NatsConnection:
        connection = cls(settings, LoopThread())
        try:
            connection.loop.run(connection._open())
        except BaseException:
            connection.loop.stop()
            raise
        return connection

    @classmethod
    async def open_on_running_loop(cls, settings: StreamSettings) -> NatsConnection:
        connection = cls(settings, RunningLoop())
        await connection._open()
        return connection

    async def _open(self) -> None:
        self.nc = await self._connect()
        self.js = self.nc.jetstream(timeout=self.settings.timeout)
        self.jsm = self.nc.jsm(timeout=self.settings.timeout)
        self._reply_prefix = self.nc.new_inbox()
        await self.nc.subscribe(f"{self._reply_prefix}.*", cb=self._on_reply)

    async def _connect(self) -> Client:
        """Connect, trying again for as long as the server is not there (it may be starting),
        but not once it turns these credentials away: waiting would not change its mind."""
        client = Client()
        turned_away: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        async def on_error(error: Exception) -> None:
            if "authorization violation" in str(error).lower() and not connecting.done():
                if not turned_away.done():  # said once, by the TurnedAway below
                    turned_away.set_result(error)
                return
            await self._on_error(error)

        connecting = asyncio.ensure_future(
            client.connect(
                servers=[url.strip() for url in self.settings.url.split(",")],
                user=self.settings.user,
                password=self.settings.password,
                max_reconnect_attempts=-1,
                name="jobstream-recorder",
                error_cb=on_error,
            )
        )
        either: list[asyncio.Future[Any]] = [connecting, turned_away]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()
            return client
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        with contextlib.suppress(Exception):
            await client.close()
        who = f"user {self.settings.user!r}" if self.settings.user else "a client without a user (NATS_USER)"
        where = re.sub(r"//[^@/]*@", "//", self.settings.url)  # not the password
        raise TurnedAway(
            f"the NATS server at {where} turned away {who}: "
            "check NATS_USER and NATS_PASSWORD (`jobstream up` keeps its users' passwords "
            "in its data directory, nats.passwords)"
        )

    async def _on_error(self, error: Exception) -> None:
        """What the server refused, said plainly: a subject this service's NATS user may not
        publish to (nats.conf) leaves the request waiting until its timeout."""
        if "permissions violation" in str(error).lower():
            log.error(
                "NATS refused user %r: %s (nats.conf lists what each user may publish)", self.settings.user, error
            )
        else:
            log.warning("NATS: %s", error)

    def close(self) -> None:
        if self.loop.owned and not self.loop.loop.is_closed():
            with contextlib.suppress(Exception):
                self.loop.run(self.nc.drain(), timeout=5)
            self.loop.stop()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.drain()

    async def ensure_stream_async(self) -> None:
        if not self._stream_checked:
            await self._ensure_stream()
            self._stream_checked = True

    def ensure_stream(self) -> None:
        """Create the stream, or verify an existing one; never change it."""
        with self._lock:
            if self._stream_checked:
                return
            self.loop.run(self._ensure_stream())
            self._stream_checked = True

    async def _ensure_stream(self) -> None:
        wanted = self.settings.stream_config()
        info = await self._stream_info_once_ready(wanted)
        if info is None:
            return
        differences = stream_differences(wanted, info.config)
        if differences:
            raise StreamMismatchError(
                f"stream {wanted.name!r} exists but does not match: "
                + "; ".join(differences)
                + ". jobstream does not change an existing stream; fix it by hand or use "
                "another NATS_STREAM."
            )

    async def _stream_info_once_ready(self, wanted: StreamConfig) -> Any:
        """The stream's info, or None once this call has created it. A cluster's JetStream
        answers only once its nodes have elected a leader (a few seconds after they start
        together, as compose starts them): until then, and for STARTUP_WAIT at most, ask again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_WAIT
        while True:
            try:
                try:
                    return await self.js.stream_info(self.settings.stream)  # the name stream_config gives it
                except NotFoundError:
                    await self.js.add_stream(wanted)  # timing out here, it may still be made: asked again
                    return None
            except (TimeoutError, ServiceUnavailableError, NoRespondersError) as error:
                if loop.time() >= deadline:
                    raise ConnectionError(
                        f"JetStream at {self.settings.url} did not answer within "
                        f"{STARTUP_WAIT:g} s ({error or type(error).__name__})"
                    ) from error
                log.info("JetStream is not answering yet (%s); asking again", error or type(error).__name__)
                await asyncio.sleep(0.5)

    # --- reading -----------------------------------------------------------------------

    async def _on_reply(self, msg: Msg) -> None:
        pending = self._replies.get(msg.subject.rpartition(".")[2])
        if pending is not None:
            pending.take(msg)

    async def direct_batch(self, request: dict[str, Any]) -> list[Msg]:
        """Batch direct get: the stored messages the request matches, in stream order."""
        token = str(next(self._counter))
        replies = _Replies(batch="batch" in request)
        self._replies[token] = replies
        try:
            await self.nc.publish(
                f"$JS.API.DIRECT.GET.{self.settings.stream}",
                msgspec.json.encode(request),
                reply=f"{self._reply_prefix}.{token}",
            )
            return await asyncio.wait_for(replies.done, self.settings.timeout)
        finally:
            del self._replies[token]

    async def last_message(self, subject_filter: str) -> Msg | None:
        found = await self.direct_batch({"last_by_subj": subject_filter})
        return found[0] if found else None

    async def notifications(self, after: int, limit: int = PAGE) -> list[Notification]:
        """Up to ``limit`` events stored after stream position ``after``, in order (one batch get)."""
        page = await self.direct_batch(
            {"seq": after + 1, "next_by_subj": self.settings.events_filter, "batch": min(limit, PAGE)}
        )
        return [notification_of(msg) for msg in page]

    async def stream_events(
        self, after: int, until: int | None = None, chunk: int = 20 * PAGE, page: int = PAGE
    ) -> AsyncGenerator[list[Notification], None]:
        """The events after ``after``, as stored now (up to ``until``), in pages as they arrive.

        For reading far. A push consumer sends the events, so nats-server sends while this
        process works; it reads ``chunk`` stream positions at a time and then starts a new
        consumer where it stopped, so at most one chunk waits in memory however slowly the
        pages are used. Pages hold what has arrived, at most ``page`` events. The deliveries
        are read raw (``Client.read_raw``): nats-py's messages, header dictionaries, ordered
        consumer bookkeeping and queue cost about 6 of the 16 microseconds an event took to
        read (docs/benchmarks.md).
        """
        last = await self.last_message(self.settings.events_filter)
        end = int(_header(last, "Nats-Sequence")) if last is not None else 0
        if until is not None:
            end = min(end, until)
        position = after
        while position < end:
            stop_at = min(end, position + chunk)
            gap: list[int] = []
            async for arrived in self._read_chunk(position, stop_at, page, gap):
                yield arrived
            if gap:
                log.warning(
                    "reading the stream: deliveries after position %s went missing; reading on from there", gap[0]
                )
            position = gap[0] if gap else stop_at

    async def _read_chunk(
        self, after: int, stop_at: int, size: int, gap: list[int]
    ) -> AsyncIterator[list[Notification]]:
        """One chunk through a push consumer of our own (flow control, no acks), its deliveries
        read raw (``Client.read_raw``), in order: at a gap in the delivery sequence (a message
        the server dropped) the chunk ends, and ``gap`` says after which position to read on."""
        assert isinstance(self.nc, Client)
        arrived: list[Notification] = []
        more = asyncio.Event()
        state: dict[str, Any] = {"complete": False, "next": 1}
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)

        def read_on() -> None:  # end this chunk; the next reads on after what arrived
            gap.append(arrived[-1].id if arrived else after)
            state["complete"] = True

        def delivered(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bytes | None:
            if state["complete"]:
                return None
            if headers is not None and headers[8:9] == b" ":  # a status, not an event
                if headers.startswith(b"NATS/1.0 100"):
                    return reply or None  # flow control wants an answer; a heartbeat does not
                read_on()  # the consumer went away
                more.set()
                return None
            try:
                position, delivery = _sequences(reply.split(b"."))
                if delivery != state["next"]:
                    read_on()
                elif position <= stop_at:
                    arrived.append(
                        Notification(
                            id=position,
                            originator_id=id_from_token(subject.rpartition(b".")[2].decode()),
                            originator_version=int(_raw_header(headers, _VERSION_KEY)),
                            topic=_raw_header(headers, _TOPIC_KEY).decode(),
                            state=data,
                        )
                    )
                state["next"] = delivery + 1
                if position >= stop_at:
                    state["complete"] = True
            except Exception as error:  # noqa: BLE001 - raised to the reader, not into nats-py's parser
                state["error"], state["complete"] = error, True
            more.set()
            return None

        self.nc.read_raw(sub, delivered)
        consumer = None
        try:
            consumer = await self.jsm.add_consumer(
                self.settings.stream,
                config=ConsumerConfig(
                    deliver_subject=inbox,
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=after + 1,
                    ack_policy=AckPolicy.NONE,
                    filter_subject=self.settings.events_filter,
                    flow_control=True,
                    idle_heartbeat=5.0,
                    mem_storage=True,
                    inactive_threshold=60.0,
                ),
            )
            taken = 0
            while True:
                if taken < len(arrived):
                    page = arrived[taken : taken + size]
                    taken += len(page)
                    yield page
                    continue
                if state.get("error") is not None:
                    raise state["error"]
                if state["complete"]:
                    return
                more.clear()
                await asyncio.wait_for(more.wait(), self.settings.timeout)
        finally:
            self.nc.stop_reading_raw(sub)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await self.jsm.delete_consumer(self.settings.stream, consumer.name)

    async def documents(self) -> Any:
        """The object store for rendered documents (invoices' PDFs), created on first use."""
        if self._documents is None:
            bucket = f"{self.settings.stream}-documents"
            try:
                self._documents = await self.js.object_store(bucket)
            except NotFoundError:
                from nats.js.api import ObjectStoreConfig

                self._documents = await self.js.create_object_store(
                    bucket,
                    config=ObjectStoreConfig(
                        bucket=bucket,
                        storage=StorageType.FILE,
                        replicas=self.settings.replicas,
                        description="jobstream documents",
                    ),
                )
        return self._documents

    async def last_position(self) -> int:
        """The stream's last sequence (events, snapshots and tracking alike)."""
        info = await self.js.stream_info(self.settings.stream)
        return int(info.state.last_seq)

    async def watch(self, on_stored: Any) -> Any:
        """Call ``on_stored(position)`` for each event stored from now on (headers only).

        A wake-up for readers that then fetch with `notifications`: an ordered consumer
        delivers only what the stream has stored, so the fetch that follows finds it.
        """

        async def delivered(msg: Msg) -> None:
            on_stored(stream_sequence(msg.reply))

        return await self.js.subscribe(
            self.settings.events_filter,
            cb=delivered,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, headers_only=True),
            stream=self.settings.stream,
        )

    # --- writing -----------------------------------------------------------------------

    async def publish(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> tuple[int, int]:
        """Store the messages all or none; return (last stream sequence, count).

        "No responders" means no stream leader took the messages (a cluster electing a new
        one while a node is down): nothing was stored, so they are sent again, for as long
        as one request may take."""
        if len(messages) > MAX_BATCH:
            raise ProgrammingError(f"a save may hold at most {MAX_BATCH} messages")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        while True:
            try:
                return await self._publish_once(messages)
            except NoRespondersError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _publish_once(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> tuple[int, int]:
        if len(messages) == 1:
            subject, payload, headers = messages[0]
            reply = await self.nc.request(subject, payload, self.settings.timeout, headers=headers)
            return _parse_ack(reply.data), 1
        batch_id = uuid.uuid4().hex
        for number, (subject, payload, headers) in enumerate(messages[:-1], start=1):
            await self.nc.publish(
                subject,
                payload,
                headers={**headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(number)},
            )
        subject, payload, headers = messages[-1]
        commit = {
            **headers,
            "Nats-Batch-Id": batch_id,
            "Nats-Batch-Sequence": str(len(messages)),
            "Nats-Batch-Commit": "1",
        }
        reply = await self.nc.request(subject, payload, self.settings.timeout, headers=commit)
        return _parse_ack(reply.data), len(messages)


class WriteRefused(OperationalError):
    """JetStream refuses this write for good (a message over the stream's size limit): trying
    the same write again cannot succeed."""


def _parse_ack(data: bytes) -> int:
    ack = msgspec.json.decode(data)
    error = ack.get("error")
    if error:
        if error.get("err_code") in WRONG_LAST_SEQUENCE_CODES:
            raise IntegrityError(f"conflict: {error.get('description')}")
        if error.get("err_code") in REFUSED_FOR_GOOD_CODES or "exceeds maximum" in str(error.get("description")):
            raise WriteRefused(f"JetStream refused the write for good: {error.get('description')}")
        raise OperationalError(f"JetStream refused the write: {error.get('description')}")
    return int(ack["seq"])


_TOPIC_KEY = b"\r\n" + TOPIC_HEADER.encode() + b":"
_VERSION_KEY = b"\r\n" + VERSION_HEADER.encode() + b":"


def _raw_header(block: bytes | None, key: bytes) -> bytes:
    """One header's value from a message's raw header block (``NATS/1.0\r\nName: value\r\n...``)."""
    if not block or (start := block.find(key)) < 0:
        raise OperationalError(f"a stored event without its {key[2:-1].decode()} header")
    start += len(key)
    return block[start : block.index(b"\r\n", start)].strip()


def _header(msg: Msg, name: str) -> str:
    assert msg.headers is not None
    return msg.headers[name]


def _stored_event(msg: Msg) -> StoredEvent:
    subject = _header(msg, "Nats-Subject")
    return StoredEvent(
        originator_id=id_from_token(subject.rpartition(".")[2]),
        originator_version=int(_header(msg, VERSION_HEADER)),
        topic=_header(msg, TOPIC_HEADER),
        state=msg.data,
    )


def notification_of(msg: Msg) -> Notification:
    """The notification a stored message (from a direct get) stands for."""
    event = _stored_event(msg)
    return Notification(
        id=int(_header(msg, "Nats-Sequence")),
        originator_id=event.originator_id,
        originator_version=event.originator_version,
        topic=event.topic,
        state=event.state,
    )


class NatsRecorder:
    def __init__(self, connection: NatsConnection) -> None:
        self.connection = connection
        self.settings = connection.settings

    def _run(self, coroutine: Any) -> Any:
        return self.connection.loop.run(coroutine)


class NatsAggregateRecorder(NatsRecorder, AggregateRecorder):
    """Events of aggregates, one subject per aggregate, with optimistic concurrency."""

    CACHE_SIZE = 100_000

    def __init__(self, connection: NatsConnection, purpose: str = "events") -> None:
        super().__init__(connection)
        self.purpose = purpose
        # originator id -> (version, stream sequence) of a stored event: immutable facts,
        # so a cached entry is never wrong, only perhaps not the latest.
        self._known: OrderedDict[UUID | str, tuple[int, int]] = OrderedDict()
        self._known_lock = threading.Lock()

    def _remember(self, originator_id: UUID | str, version: int, sequence: int) -> None:
        with self._known_lock:
            current = self._known.get(originator_id)
            if current is None or current[0] < version:
                self._known[originator_id] = (version, sequence)
            self._known.move_to_end(originator_id)
            if len(self._known) > self.CACHE_SIZE:
                self._known.popitem(last=False)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._insert(stored_events, kwargs.get("tracking"))
        return None

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        if not stored_events and tracking is None:
            return []
        return self._run(self._insert_async(stored_events, tracking))

    async def _insert_async(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        messages: list[tuple[str, bytes, dict[str, str]]] = []
        last_version: dict[UUID | str, int] = {}
        for event in stored_events:
            headers = {TOPIC_HEADER: event.topic, VERSION_HEADER: str(event.originator_version)}
            previous = last_version.get(event.originator_id)
            if previous is None:
                expected = await self._expected_sequence(event)
                headers[EXPECTED_LAST_SUBJECT_SEQUENCE] = str(expected)
            elif event.originator_version <= previous:
                raise IntegrityError(
                    f"stored events are not unique or not in order: {event.originator_id} "
                    f"version {event.originator_version} follows version {previous}"
                )
            last_version[event.originator_id] = event.originator_version
            subject = self.settings.subject(self.purpose, event.topic, event.originator_id)
            messages.append((subject, event.state, headers))
        if tracking is not None:
            messages.append(await self._tracking_message(tracking))
        last_sequence, count = await self.connection.publish(messages)
        first_sequence = last_sequence - count + 1
        sequences = [first_sequence + i for i in range(len(stored_events))]
        for event, sequence in zip(stored_events, sequences, strict=True):
            self._remember(event.originator_id, event.originator_version, sequence)
        return sequences

    async def _expected_sequence(self, event: StoredEvent) -> int:
        known = self._known.get(event.originator_id)
        if known is not None and known[0] == event.originator_version - 1:
            return known[1]
        last = await self.connection.last_message(self.settings.aggregate_filter(self.purpose, event.originator_id))
        if last is None:
            return 0
        version = int(_header(last, VERSION_HEADER))
        sequence = int(_header(last, "Nats-Sequence"))
        self._remember(event.originator_id, version, sequence)
        if version >= event.originator_version:
            raise IntegrityError(
                f"conflict: {event.originator_id} is at version {version}, "
                f"cannot record version {event.originator_version}"
            )
        return sequence

    async def _tracking_message(self, tracking: Tracking) -> tuple[str, bytes, dict[str, str]]:
        raise ProgrammingError("this recorder does not record tracking")

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        if desc and lte is None and limit == 1:  # the latest one: a snapshot, say
            last = self._run(self.connection.last_message(self.settings.aggregate_filter(self.purpose, originator_id)))
            events = [_stored_event(last)] if last is not None else []
            return [e for e in events if gt is None or e.originator_version > gt]
        events = [event for _, event in self.select_positioned(originator_id, gt=gt, lte=lte)]
        if desc:
            events.reverse()
        return events[:limit] if limit is not None else events

    def select_positioned(
        self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None
    ) -> list[tuple[int, StoredEvent]]:
        """The aggregate's events with their stream positions, oldest first."""
        return self._run(self._select_async(originator_id, gt, lte))

    async def select_positioned_async(
        self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None
    ) -> list[tuple[int, StoredEvent]]:
        """select_positioned, for code already on this recorder's event loop."""
        return await self._select_async(originator_id, gt, lte)

    def remember(self, originator_id: UUID | str, version: int, sequence: int) -> None:
        """Tell the recorder where a version of the aggregate is (from a snapshot, say)."""
        self._remember(originator_id, version, sequence)

    async def latest_async(self, originator_id: UUID | str) -> StoredEvent | None:
        """The aggregate's latest message (its latest snapshot, on a snapshot recorder)."""
        last = await self.connection.last_message(self.settings.aggregate_filter(self.purpose, originator_id))
        if last is None:
            return None
        event = _stored_event(last)
        self._remember(originator_id, event.originator_version, int(_header(last, "Nats-Sequence")))
        return event

    async def insert_events_async(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """insert_events, for code already on this recorder's event loop: the positions."""
        return await self._insert_async(stored_events, None) if stored_events else []

    async def _select_async(
        self, originator_id: UUID | str, gt: int | None, lte: int | None
    ) -> list[tuple[int, StoredEvent]]:
        subject_filter = self.settings.aggregate_filter(self.purpose, originator_id)
        start = 1
        known = self._known.get(originator_id)
        if gt is not None and known is not None and known[0] == gt:
            start = known[1] + 1  # only what came after the version the caller has
        found: list[tuple[int, StoredEvent]] = []
        while True:
            page = await self.connection.direct_batch({"seq": start, "next_by_subj": subject_filter, "batch": PAGE})
            for msg in page:
                event, sequence = _stored_event(msg), int(_header(msg, "Nats-Sequence"))
                self._remember(originator_id, event.originator_version, sequence)
                if gt is not None and event.originator_version <= gt:
                    continue
                if lte is not None and event.originator_version > lte:
                    continue
                found.append((sequence, event))
            if len(page) < PAGE:
                break
            start = int(_header(page[-1], "Nats-Sequence")) + 1
        if not found and gt is None and lte is None and known is None:
            self._remember(originator_id, 0, 0)  # a new aggregate: its first save expects 0
        return found


class NatsApplicationRecorder(NatsAggregateRecorder, ApplicationRecorder):
    """Also the application sequence: the stream sequence is the notification id."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        sequences = self._insert(stored_events, kwargs.get("tracking"))
        return sequences or None

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        return self._run(self._select_notifications(start, limit, stop, topics, inclusive_of_start))

    async def _select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None,
        topics: Sequence[str],
        inclusive_of_start: bool,
    ) -> list[Notification]:
        sequence = 1 if start is None else (start if inclusive_of_start else start + 1)
        sequence = max(sequence, 1)
        wanted = set(topics)
        found: list[Notification] = []
        while len(found) < limit:
            page_size = PAGE if wanted else min(PAGE, limit - len(found))
            page = await self.connection.direct_batch(
                {"seq": sequence, "next_by_subj": self.settings.events_filter, "batch": page_size}
            )
            for msg in page:
                notification = notification_of(msg)
                if stop is not None and notification.id > stop:
                    return found
                if wanted and notification.topic not in wanted:
                    continue
                found.append(notification)
                if len(found) == limit:
                    return found
            if len(page) < page_size:
                break
            sequence = int(_header(page[-1], "Nats-Sequence")) + 1
        return found

    def max_notification_id(self) -> int | None:
        last = self._run(self.connection.last_message(self.settings.events_filter))
        return int(_header(last, "Nats-Sequence")) if last is not None else None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return NatsSubscription(self, gt=gt, topics=topics)

    async def kind_events_async(self, aggregate: str, after: int = 0) -> list[tuple[int, StoredEvent]]:
        """Every event of every aggregate of one kind after a position, oldest first."""
        subject_filter = self.settings.kind_filter(self.purpose, aggregate)
        found: list[tuple[int, StoredEvent]] = []
        while True:
            page = await self.connection.direct_batch({"seq": after + 1, "next_by_subj": subject_filter, "batch": PAGE})
            found.extend((int(_header(m, "Nats-Sequence")), _stored_event(m)) for m in page)
            if len(page) < PAGE:
                return found
            after = found[-1][0]


class NatsSubscription(Subscription[NatsApplicationRecorder]):
    """Follows the application sequence with an ordered consumer."""

    def __init__(self, recorder: NatsApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._queue: queue.Queue[Notification | BaseException] = queue.Queue(maxsize=10_000)
        self._wanted = set(topics)
        self._connection = recorder.connection
        self._sub = self._connection.loop.run(self._start())

    async def _start(self) -> Any:
        start = (self._last_notification_id or 0) + 1
        return await self._connection.js.subscribe(
            self._connection.settings.events_filter,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start),
            stream=self._connection.settings.stream,
        )

    async def _on_message(self, msg: Msg) -> None:
        try:
            item: Notification | BaseException = _notification_from_delivery(msg)
        except Exception as error:  # noqa: BLE001 - any decoding error goes to the reader, which raises it (nats-py would only log it)
            item = error
        if isinstance(item, Notification) and self._wanted and item.topic not in self._wanted:
            return
        await self._put(item)

    async def _put(self, item: Notification | BaseException) -> None:
        """Waits on the loop while the reader is behind (the consumer's flow control
        then holds the server back); gives up once the subscription is stopped.
        Never parks a thread on the full queue, where it could wait forever."""
        while not self._has_been_stopped:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                self.stop()
                raise item
            if self._has_been_stopped:
                break
            self._last_notification_id = item.id
            return item
        raise StopIteration

    def stop(self) -> None:
        if not self._has_been_stopped:
            super().stop()
            with contextlib.suppress(Exception):
                self._connection.loop.run(self._sub.unsubscribe(), timeout=5)


def stream_sequence(reply: str) -> int:
    """The stream sequence of a consumer delivery, from its reply subject:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (9 tokens), or with the
    domain and account hash after ``$JS.ACK`` (12). nats-py's ``msg.metadata`` reads the
    same, with every other field and a datetime too: a tenth of a rebuild's reading time."""
    tokens = reply.split(".")
    if tokens[0] != "$JS" or tokens[1] != "ACK" or len(tokens) < 9:
        raise ValueError(f"not a JetStream delivery: {reply!r}")
    return _sequences(tokens)[0]


def _sequences(tokens: Sequence[str] | Sequence[bytes]) -> tuple[int, int]:
    """(stream sequence, consumer sequence) from a delivery's reply subject split at its dots."""
    at = 5 if len(tokens) == 9 else 7
    return int(tokens[at]), int(tokens[at + 1])


def _notification_from_delivery(msg: Msg) -> Notification:
    """A notification from a consumer delivery (its stream sequence is in the reply subject)."""
    return Notification(
        id=stream_sequence(msg.reply),
        originator_id=id_from_token(msg.subject.rpartition(".")[2]),
        originator_version=int(_header(msg, VERSION_HEADER)),
        topic=_header(msg, TOPIC_HEADER),
        state=msg.data,
    )


class NatsTrackingRecorder(NatsRecorder, TrackingRecorder):
    """Tracking records on ``tracking.<application>``, one message per position."""

    async def _last_tracking(self, application_name: str) -> tuple[int, int] | None:
        last = await self.connection.last_message(self.settings.tracking_subject(application_name))
        if last is None:
            return None
        return int(msgspec.json.decode(last.data)["notification_id"]), int(_header(last, "Nats-Sequence"))

    async def _tracking_message(self, tracking: Tracking) -> tuple[str, bytes, dict[str, str]]:
        last = await self._last_tracking(tracking.application_name)
        if last is not None and last[0] >= tracking.notification_id:
            raise IntegrityError(
                f"tracking notification id {tracking.notification_id} is not greater than "
                f"{last[0]}, already recorded for {tracking.application_name!r}"
            )
        payload = msgspec.json.encode(
            {"application_name": tracking.application_name, "notification_id": tracking.notification_id}
        )
        headers = {EXPECTED_LAST_SUBJECT_SEQUENCE: str(last[1] if last else 0)}
        return self.settings.tracking_subject(tracking.application_name), payload, headers

    def insert_tracking(self, tracking: Tracking) -> None:
        self._run(self._insert_tracking(tracking))

    async def max_tracking_id_async(self, application_name: str) -> int | None:
        last = await self._last_tracking(application_name)
        return last[0] if last is not None else None

    async def _insert_tracking(self, tracking: Tracking) -> None:
        await self.connection.publish([await self._tracking_message(tracking)])

    def max_tracking_id(self, application_name: str) -> int | None:
        last = self._run(self._last_tracking(application_name))
        return last[0] if last is not None else None


class NatsProcessRecorder(NatsTrackingRecorder, NatsApplicationRecorder, ProcessRecorder):
    """Events and the tracking record of what caused them, in one atomic batch."""

    def __init__(self, connection: NatsConnection, purpose: str = "events") -> None:
        NatsApplicationRecorder.__init__(self, connection, purpose)

    async def insert_tracked_async(self, stored_events: Sequence[StoredEvent], tracking: Tracking) -> list[int]:
        """The events and the tracking record, all or nothing; IntegrityError if any aggregate
        moved, or the tracking is already at or past this position."""
        return await self._insert_async(stored_events, tracking)


class NatsFactory(InfrastructureFactory[NatsTrackingRecorder]):
    """Builds JetStream recorders from the environment (NATS_URL, NATS_STREAM, ...)."""

    def __init__(self, env: Environment | dict[str, str] | None) -> None:
        super().__init__(env)
        self.settings = StreamSettings.from_env(self.env)
        self._connection: NatsConnection | None = None
        self._connection_lock = threading.Lock()

    @property
    def connection(self) -> NatsConnection:
        with self._connection_lock:
            if self._connection is None:
                self._connection = NatsConnection.open_in_thread(self.settings)
            return self._connection

    async def open_on_running_loop(self) -> None:
        """Connect on the caller's event loop (and check the stream) before making recorders."""
        self._connection = await NatsConnection.open_on_running_loop(self.settings)
        if strtobool(self.env.get("CREATE_TABLE", "yes")):
            await self._connection.ensure_stream_async()

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()
            self._connection = None

    def _ready(self) -> NatsConnection:
        connection = self.connection
        if strtobool(self.env.get("CREATE_TABLE", "yes")):
            connection.ensure_stream()
        return connection

    def transcoder(self) -> Transcoder:
        """orjson (events.codec) unless TRANSCODER_TOPIC names another."""
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return OrjsonTranscoder()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose not in ("events", "snapshots"):
            raise ProgrammingError(f"unknown purpose {purpose!r}: use 'events' or 'snapshots'")
        return NatsAggregateRecorder(self._ready(), purpose)

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else NatsApplicationRecorder
        return cls(self._ready())

    def tracking_recorder(
        self, tracking_recorder_class: type[NatsTrackingRecorder] | None = None
    ) -> NatsTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else NatsTrackingRecorder
        assert tracking_recorder_class is not None
        return tracking_recorder_class(self._ready())

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else NatsProcessRecorder
        return cls(self._ready())

    def close(self) -> None:
        with self._connection_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


Factory = NatsFactory
