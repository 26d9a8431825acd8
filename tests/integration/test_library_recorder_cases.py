"""The eventsourcing library's own recorder test cases, unmodified, on a real nats-server.

Each subclass only says how to create the recorder: a factory on a stream of its own.
"""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from events.jetstream import (
    NatsAggregateRecorder,
    NatsApplicationRecorder,
    NatsFactory,
    NatsProcessRecorder,
    NatsTrackingRecorder,
)


@pytest.fixture(autouse=True)
def _nats(request: pytest.FixtureRequest, nats_server) -> None:  # type: ignore[no-untyped-def]
    request.instance.nats_url = nats_server.admin_url


class OnOwnStream:
    """Creates recorders on a fresh stream, so stream sequences start at 1."""

    nats_url: str

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.factories: list[NatsFactory] = []

    def tearDown(self) -> None:
        for factory in self.factories:
            factory.close()
        super().tearDown()  # type: ignore[misc]

    def new_factory(self) -> NatsFactory:
        token = uuid.uuid4().hex[:12]
        factory = NatsFactory(
            {"NATS_URL": self.nats_url, "NATS_STREAM": f"T{token}", "NATS_SUBJECT_PREFIX": f"t{token}"}
        )
        self.factories.append(factory)
        return factory


class TestAggregateRecorder(OnOwnStream, AggregateRecorderTestCase):
    def create_recorder(self) -> NatsAggregateRecorder:
        return self.new_factory().aggregate_recorder()  # type: ignore[return-value]


class TestSnapshotRecorder(OnOwnStream, AggregateRecorderTestCase):
    def create_recorder(self) -> NatsAggregateRecorder:
        return self.new_factory().aggregate_recorder("snapshots")  # type: ignore[return-value]


class TestApplicationRecorder(OnOwnStream, ApplicationRecorderTestCase[NatsApplicationRecorder]):
    def create_recorder(self) -> NatsApplicationRecorder:
        return self.new_factory().application_recorder()  # type: ignore[return-value]

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(OnOwnStream, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> NatsApplicationRecorder:
        return self.new_factory().application_recorder()  # type: ignore[return-value]


class TestTrackingRecorder(OnOwnStream, TrackingRecorderTestCase):
    def create_recorder(self) -> NatsTrackingRecorder:
        return self.new_factory().tracking_recorder()


class TestProcessRecorder(OnOwnStream, ProcessRecorderTestCase):
    def create_recorder(self) -> NatsProcessRecorder:
        return self.new_factory().process_recorder()  # type: ignore[return-value]


class CustomTrackingRecorder(NatsTrackingRecorder):
    pass


class TestInfrastructureFactory(InfrastructureFactoryTestCase[NatsFactory]):
    nats_url: str

    def setUp(self) -> None:
        token = uuid.uuid4().hex[:12]
        self.env = Environment(
            "TestCase",
            {
                InfrastructureFactory.PERSISTENCE_MODULE: "events.jetstream",
                "NATS_URL": self.nats_url,
                "NATS_STREAM": f"T{token}",
                "NATS_SUBJECT_PREFIX": f"t{token}",
            },
        )
        super().setUp()

    def expected_factory_class(self) -> type[NatsFactory]:
        return NatsFactory

    def expected_aggregate_recorder_class(self) -> type[NatsAggregateRecorder]:
        return NatsAggregateRecorder

    def expected_application_recorder_class(self) -> type[NatsApplicationRecorder]:
        return NatsApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[NatsTrackingRecorder]:
        return NatsTrackingRecorder

    def tracking_recorder_subclass(self) -> type[NatsTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[NatsProcessRecorder]:
        return NatsProcessRecorder


del AggregateRecorderTestCase, ApplicationRecorderTestCase, InfrastructureFactoryTestCase
del NonInterleavingNotificationIDsBaseCase, ProcessRecorderTestCase, TrackingRecorderTestCase
