"""Where jobstream leans on nats-py's private internals, all in one place.

nats-py has no public hook for either of the two things the store needs on its hot reading
paths, so ``Client`` overrides two private methods of nats-py's client, and a raw reader
finds a subscription by its private ``_id``. tests/unit/test_nats_private.py fails loudly
when an upgrade of nats-py changes any of them (their names, signatures, or the callers
that make the overrides take effect); everything else uses the public API
(``nc.jsm()`` for consumers, not ``js._jsm``).

- ``_parse_header_lines`` (a static method ``_process_headers`` calls): nats-py 2.16
  checks each header name for whitespace with a generator over its characters; with the
  eight headers of a direct-get reply that check was 40% of the time it took to read the
  stream (cProfile, docs/benchmarks.md). Same rules (a name is ASCII without whitespace,
  values are stripped and decoded with replacement), read with one regex over the
  decoded block.
- ``_process_msg`` (what the protocol parser calls for each message): a subscription
  registered with ``read_raw`` gets each message as the parser found it (subject, reply,
  payload, header block), without nats-py's Msg, header dict, ordered-consumer
  bookkeeping, pending queue and task switch. For reading far (rebuilds, replays): about
  6 of the 16 microseconds a delivery took.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

# A raw reader: (subject, reply, payload, header block) -> a reply to publish (flow control), or None.
RawHandler = Callable[[bytes, bytes, bytes, bytes | None], bytes | None]

_HEADER_LINE = re.compile(r"^[ \t]*([^\s:]+)[ \t]*:(.*)$", re.MULTILINE)


class Client(NATS):
    """nats-py's client with a faster reader of message headers, and raw reading."""

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        text = raw.decode("utf-8", "replace")
        return {name: value.strip() for name, value in _HEADER_LINE.findall(text) if name.isascii()}

    def __init__(self) -> None:
        super().__init__()
        self._raw_handlers: dict[int, RawHandler] = {}

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        handler = self._raw_handlers.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]  # nats-py types it bytes, passes None
            return
        answer = handler(subject, reply, data, headers)
        if answer:  # a flow-control request: the server waits for this empty reply
            await self.publish(answer.decode())

    def read_raw(self, sub: Subscription, handler: RawHandler) -> None:
        """Hand ``sub``'s messages to ``handler`` as the parser finds them."""
        self._raw_handlers[sub._id] = handler

    def stop_reading_raw(self, sub: Subscription) -> None:
        self._raw_handlers.pop(sub._id, None)


async def connect(**options: Any) -> Client:
    client = Client()
    await client.connect(**options)
    return client
