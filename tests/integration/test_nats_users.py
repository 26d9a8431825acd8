"""nats.conf's users, on a server of their own with the production stream: each service may
publish the subjects it owns and is refused the rest (the whole product running under these
users is tested end to end in tests/e2e, which fails on any refusal in the server's log)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import NoServersError

from services.application import JobstreamApp
from services.natsd import USERS, EmbeddedNats, kept_passwords

# (user, subjects it owns, subjects it must not publish to)
OWNERSHIP = [
    (
        "command",
        ["events.customer.c1", "events.token.t1", "snapshots.job.j1"],
        ["tracking.invoicer", "$JS.API.STREAM.DELETE.JOBSTREAM", "$JS.API.STREAM.PURGE.JOBSTREAM"],
    ),
    ("read", [], ["events.job.j1", "events.token.t1", "events.failure.f1", "$JS.API.STREAM.UPDATE.JOBSTREAM"]),
    (
        "projector",
        ["events.failure.f1"],
        ["events.job.j1", "snapshots.job.j1", "tracking.board", "rpc.invoice-preview", "events.message.m1"],
    ),
    (
        "invoicer",
        [
            "events.invoice.i1",
            "events.series.s1",
            "events.job.j1",
            "events.customer.c1",
            "events.statement.s1",
            "events.message.m1",
            "events.failure.f1",
            "tracking.invoicer",
            "tracking.payments",
            "tracking.invoicer-documents",
            "events.ksef.k1",
            "tracking.invoicer-ksef",
            "events.efactura.e1",
            "tracking.invoicer-efactura",
        ],
        ["events.technician.t1", "events.token.t1", "events.pricelist.p1", "tracking.notifier", "snapshots.job.j1"],
    ),
    (
        "notifier",
        ["events.message.m1", "events.recipient.r1", "events.failure.f1", "tracking.notifier"],
        [
            "events.job.j1",
            "events.invoice.i1",
            "events.ksef.k1",
            "tracking.invoicer-ksef",
            "events.efactura.e1",
            "tracking.invoicer-efactura",
            "$O.JOBSTREAM-documents.C.x",
            "tracking.invoicer",
        ],
    ),
    (
        "scheduler",
        ["events.job.j1", "events.recurrence.r1", "events.failure.f1", "snapshots.recurrence.r1"],
        ["events.invoice.i1", "events.customer.c1", "events.message.m1", "tracking.notifier"],
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path_factory.mktemp("users")) as running:
        app = JobstreamApp({"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": running.admin_url})
        app.close()  # the stream as `jobstream stream` creates it, as admin
        yield running


async def publishes(url: str, owned: list[str], refused: list[str]) -> list[str]:
    """Publish to each owned subject through JetStream (stored: acknowledged) and to each
    refused one; the server's refusals, as the client was told of them."""
    errors: asyncio.Queue[str] = asyncio.Queue()

    async def told(error: Exception) -> None:
        await errors.put(str(error))

    connection = await nats.connect(url, error_cb=told, allow_reconnect=False)
    try:
        for subject in owned:
            ack = await connection.jetstream().publish(subject, b"{}")
            assert ack.stream == "JOBSTREAM"
        for subject in refused:
            await connection.publish(subject, b"{}")
        await connection.flush()
        return [await asyncio.wait_for(errors.get(), 10) for _ in refused]
    finally:
        await connection.close()


@pytest.mark.parametrize(("user", "owned", "refused"), OWNERSHIP, ids=[row[0] for row in OWNERSHIP])
def test_each_service_publishes_only_what_it_owns(
    server: EmbeddedNats, user: str, owned: list[str], refused: list[str]
) -> None:
    told = asyncio.run(publishes(server.url_as(user), owned, refused))
    assert told == [f'nats: permissions violation for publish to "{subject.lower()}"' for subject in refused]


def test_every_user_nats_conf_names_is_tested() -> None:
    assert {user for user, _, _ in OWNERSHIP} == set(USERS) - {"admin"}


def test_a_wrong_password_is_turned_away(server: EmbeddedNats) -> None:
    async def connect() -> None:
        await nats.connect(
            f"nats://invoicer:wrong@127.0.0.1:{server.port}",
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
        )

    with pytest.raises((NoServersError, nats.errors.Error)):
        asyncio.run(connect())


def test_the_server_will_not_start_without_its_passwords(tmp_path: Path) -> None:
    node = EmbeddedNats(tmp_path / "nats", passwords={"admin": "jsadmin"})  # the services' are missing
    with pytest.raises(RuntimeError, match="exited"):
        node.start()
    assert "JOBSTREAM_NATS_COMMAND_PASSWORD" in (tmp_path / "nats" / "nats-server.log").read_text()


def test_compose_signs_each_service_in_as_its_own_user() -> None:
    """compose.yaml gives each container the NATS user `jobstream up` gives its service."""
    import yaml

    from services.cli import NATS_USERS

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
    signed = {}
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:2] == ["jobstream", "run"]:
            env = service["environment"]
            user = env["NATS_USER"]
            assert env["NATS_PASSWORD"].startswith(f"${{JOBSTREAM_NATS_{user.upper()}_PASSWORD:?"), name
            signed[command[2]] = user
    assert signed == NATS_USERS
    nats_env = compose["services"]["nats-1"]["environment"]
    assert set(nats_env) == {f"JOBSTREAM_NATS_{user.upper()}_PASSWORD" for user in USERS}
    assert compose["services"]["stream"]["environment"]["NATS_USER"] == "admin"


def test_up_keeps_its_passwords_for_its_owner_and_says_when_it_cannot_read_them(tmp_path: Path) -> None:
    kept = tmp_path / "nats.passwords"
    first = kept_passwords(kept)
    assert set(first) == set(USERS) and kept.stat().st_mode & 0o777 == 0o600
    assert kept_passwords(kept) == first  # a restart signs in with the same ones
    kept.write_text("{oops")
    with pytest.raises(SystemExit, match="remove it, and the next `jobstream up` makes new NATS passwords"):
        kept_passwords(kept)


def test_up_on_the_embedded_server_refuses_another_stream_name(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NATS_")},
        "JOBSTREAM_DATA": str(tmp_path),
        "NATS_STREAM": "OTHER",
    }
    refused = subprocess.run(
        [sys.executable, "-m", "services.cli", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "need a NATS server of your own (NATS_URL)" in refused.stderr
    assert not (tmp_path / "nats").exists()  # nothing was started


def test_the_read_api_asks_the_invoicer_for_a_preview_and_gets_its_answer(server: EmbeddedNats) -> None:
    """Request and reply between two users: the read API may ask; the invoicer, allowed
    only its own subjects, may still answer the asker's inbox (allow_responses)."""

    async def ask() -> bytes:
        invoicer = await nats.connect(server.url_as("invoicer"), allow_reconnect=False)
        read = await nats.connect(server.url_as("read"), allow_reconnect=False)
        try:

            async def answer(msg: Any) -> None:
                await msg.respond(b"preview of " + msg.data)

            await invoicer.subscribe("rpc.invoice-preview", cb=answer)
            await invoicer.flush()
            return (await read.request("rpc.invoice-preview", b"job-1", timeout=10)).data
        finally:
            await read.close()
            await invoicer.close()

    assert asyncio.run(ask()) == b"preview of job-1"


def test_a_client_the_server_turns_away_is_told_so_at_once(server: EmbeddedNats) -> None:
    """Wrong or missing credentials end the command with the reason; they are not tried
    again and again as a server that is not up yet would be."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NATS_")}, "NATS_URL": server.url}
    for user in ({}, {"NATS_USER": "invoicer", "NATS_PASSWORD": "wrong"}):
        listed = subprocess.run(
            [sys.executable, "-m", "services.cli", "events"],
            env={**env, **user},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 1 and "Traceback" not in listed.stderr
        who = "user 'invoicer'" if user else "a client without a user (NATS_USER)"
        # the last word (before it, a connection the server reset while refusing may be logged)
        assert listed.stderr.strip().splitlines()[-1] == (
            f"jobstream: the NATS server at {server.url} turned away {who}: check NATS_USER and NATS_PASSWORD "
            "(`jobstream up` keeps its users' passwords in its data directory, nats.passwords)"
        )


def test_a_service_run_alone_signs_in_as_its_own_user(tmp_path: Path) -> None:
    """`jobstream run projector` given only the projector's password (as `up` hands it on)
    signs in as `projector`; given none, as nobody, it is turned away."""
    with EmbeddedNats(tmp_path / "nats") as alone:
        JobstreamApp({"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": alone.admin_url}).close()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "JOBSTREAM_NATS_"))},
            "NATS_URL": alone.url,
            "READ_MODEL_URL": f"sqlite:///{tmp_path / 'board.sqlite3'}",
        }
        run = [sys.executable, "-m", "services.cli", "run", "projector", "board", "--once"]
        caught_up = subprocess.run(
            run,
            env={**env, "JOBSTREAM_NATS_PROJECTOR_PASSWORD": alone.passwords["projector"]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert caught_up.returncode == 0, caught_up.stderr
        assert "projector board: caught up from position 0" in caught_up.stdout + caught_up.stderr
        nobody = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
        assert nobody.returncode == 1 and "Traceback" not in nobody.stderr
        assert (
            nobody.stderr.strip()
            .splitlines()[-1]
            .startswith(f"jobstream run projector: the NATS server at {alone.url} turned away a client without a user")
        )
