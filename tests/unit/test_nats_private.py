"""The nats-py internals events.nats_private leans on are still there, as it uses them.

When one of these fails after an upgrade of nats-py, read the new nats-py before changing
the test: the faster header reader or raw reading may have stopped taking effect (the
store would still work, only slower) or broken outright."""

import inspect

import pytest
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.protocol.parser import Parser

from events.nats_private import Client


def test_the_header_reader_is_a_static_method_that_process_headers_calls():
    assert isinstance(inspect.getattr_static(NATS, "_parse_header_lines"), staticmethod)
    assert list(inspect.signature(NATS._parse_header_lines).parameters) == ["raw"]
    assert "self._parse_header_lines(" in inspect.getsource(NATS._process_headers)


@pytest.mark.parametrize(
    "block",
    [
        b"NATS/1.0\r\nEs-Topic: JobScheduled\r\nEs-Version: 3\r\n\r\n",
        b"NATS/1.0\r\nNats-Stream: JOBSTREAM\r\nNats-Sequence: 12\r\nNats-Subject: events.job.x\r\n"
        b"Nats-Time-Stamp: 2026-03-01T09:00:00Z\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 11\r\n\r\n",
        b"NATS/1.0\r\n  Spaced :  value with  spaces  \r\nX:\r\n\r\n",
        "NATS/1.0\r\nCaption: café\r\n\r\n".encode(),
    ],
)
def test_the_faster_header_reader_reads_as_nats_py_does(block):
    raw = block[block.index(b"\r\n") + 2 :]  # what _process_headers hands it: the lines after the status line
    assert Client._parse_header_lines(raw) == NATS._parse_header_lines(raw)


def test_the_parser_hands_each_message_to_process_msg_with_its_header_block():
    assert list(inspect.signature(NATS._process_msg).parameters) == [
        "self",
        "sid",
        "subject",
        "reply",
        "data",
        "headers",
    ]
    assert inspect.iscoroutinefunction(NATS._process_msg)
    assert "_process_msg(" in inspect.getsource(Parser)


def test_a_subscription_knows_its_id_as_underscore_id():
    assert "self._id = id" in inspect.getsource(Subscription.__init__)


def test_consumers_are_managed_through_the_public_jetstream_manager():
    assert callable(NATS.jsm)
    manager = NATS().jsm(timeout=1.0)
    assert callable(manager.add_consumer) and callable(manager.delete_consumer)
