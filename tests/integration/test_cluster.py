"""The production layout of compose.yaml, run here without containers: three nats-server
nodes with the project's nats.conf and compose's command-line options (server name,
cluster name, routes), a stream of three replicas, and the application on all three URLs.
A job goes on being worked while one node is down, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import yaml
from nats.js.errors import BadRequestError

from events.contract import AddNote, Address, RegisterCustomer, RequestJob, Role
from services.application import JobstreamApp
from services.domain.common import Actor
from services.natsd import EmbeddedNats, free_port, new_passwords

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
OFFICE = Actor(id="olga", role=Role.OFFICE)


def compose_cluster_options() -> dict[str, str]:
    """The options compose.yaml starts nats-1 with, by name."""
    node = yaml.safe_load(COMPOSE.read_text())["services"]["nats-1"]
    command = node["command"]
    return {option: value for option, value in itertools.pairwise(command) if option.startswith("-")}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[EmbeddedNats]]:
    compose = compose_cluster_options()  # the layout below is compose's, on loopback ports
    assert (compose["--server_name"], compose["--cluster_name"]) == ("nats-1", "jobstream")
    assert compose["-c"] == "/etc/nats/nats.conf" and compose["--routes"].count("nats://") == 2
    routes = [free_port() for _ in range(3)]
    passwords = new_passwords()  # every node of the cluster knows the same users
    nodes = []
    for n in range(3):
        others = ",".join(f"nats://127.0.0.1:{routes[m]}" for m in range(3) if m != n)
        nodes.append(
            EmbeddedNats(
                tmp_path / f"nats-{n + 1}",
                extra=[
                    "--server_name",
                    f"nats-{n + 1}",
                    "--cluster_name",
                    "jobstream",
                    "--cluster",
                    f"nats://127.0.0.1:{routes[n]}",
                    "--routes",
                    others,
                ],
                passwords=passwords,
            )
        )
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def _stream_replicas(url: str, stream: str) -> tuple[int, int]:
    """(replicas configured, replicas current) as the cluster reports the stream."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        cluster = info.cluster
        current = 1 + sum(1 for r in (cluster.replicas or []) if r.current) if cluster else 1
        return info.config.num_replicas, current
    finally:
        await nc.close()


async def _replicas_current(url: str, stream: str, within: float = 60.0) -> tuple[int, int]:
    """The stream's replicas once every one is current, or as they stand at the deadline: a
    follower on a busy machine reports itself current a moment after the leader acknowledged."""
    deadline = time.monotonic() + within
    while (replicas := await _stream_replicas(url, stream)) != (3, 3) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls the cluster's report: no event to wait on
        await asyncio.sleep(0.1)
    return replicas


def _create_stream(env: dict[str, str], within: float = 60.0) -> None:
    """Create the R3 stream, once the cluster's JetStream has met all three peers: on a busy
    machine the meta group can elect a leader before the third node has joined it."""
    deadline = time.monotonic() + within
    while True:
        try:
            JobstreamApp(env).close()
            return
        except BadRequestError as error:
            if error.err_code != 10005 or time.monotonic() > deadline:  # 10005: no suitable peers yet
                raise
            time.sleep(0.2)


def test_the_compose_cluster_keeps_a_job_going_with_a_node_down(cluster: list[EmbeddedNats]) -> None:
    urls = ",".join(node.admin_url for node in cluster)
    stream = f"C{uuid.uuid4().hex[:8]}"
    env = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": urls, "NATS_STREAM": stream, "NATS_REPLICAS": "3"}
    _create_stream(env)  # admin creates the stream, once the cluster's JetStream has elected a leader
    # the work is done as the command API does it: signed in as its own NATS user on every node
    app = JobstreamApp(
        {
            **env,
            "NATS_URL": ",".join(node.url for node in cluster),
            "NATS_USER": "command",
            "NATS_PASSWORD": cluster[0].passwords["command"],
        }
    )
    try:
        customer, job = uuid.uuid4(), uuid.uuid4()
        address = Address(street="1 Quay Street", city="Dublin", postal_code="D02", country="IE")
        app.execute(customer, RegisterCustomer(name="Harbour Café", billing_address=address), OFFICE)
        app.execute(
            job, RequestJob(customer_id=customer, job_type="repair", description="Leak", site_address=address), OFFICE
        )
        assert asyncio.run(_replicas_current(cluster[0].admin_url, stream)) == (3, 3)

        cluster[2].stop()  # one node of three gone: the other two still make a quorum
        for n in range(5):
            app.execute(job, AddNote(text=f"note {n}"), OFFICE)
        cluster[2].start()
    finally:
        app.close()

    again = JobstreamApp({**env, "NATS_URL": cluster[2].admin_url})  # read back through the node that was down
    try:
        assert again.load("job", job).version == 6
    finally:
        again.close()
