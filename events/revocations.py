"""Revoked tokens, as the stream has them, in every process that authenticates.

The command API and the read API each follow the token subjects (``events.token.*``) with
an ordered consumer of their own, headers only, from the first token event. A
``TokenRevoked`` is known to the process as soon as the server delivers it, a few
milliseconds after it is stored: no cache has to expire and no read model has to catch up.
Revocation is final, so what this keeps only grows, by one entry per revoked token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from events.contract import TokenRevoked
from events.jetstream import TOPIC_HEADER, NatsConnection, id_from_token, stream_sequence

REVOKED = TokenRevoked.__name__  # its stored topic


class Revocations:
    """Which tokens are revoked (by token id, the aggregate's), and how far this process has
    read the token events: ``position`` is the stream position of the last one seen."""

    def __init__(self) -> None:
        self.revoked: dict[UUID, int] = {}  # token id -> the position of its TokenRevoked
        self.position = 0
        self._listeners: list[Callable[[UUID], None]] = []
        self._subscription: Any = None

    def __contains__(self, token_id: object) -> bool:
        return token_id in self.revoked

    def listen(self, on_revoked: Callable[[UUID], None]) -> Callable[[], None]:
        """Call ``on_revoked(token_id)`` for each revocation seen from now on; returns the
        function that stops it (an open stream of a revoked token ends with it)."""
        self._listeners.append(on_revoked)
        return lambda: self._listeners.remove(on_revoked) if on_revoked in self._listeners else None

    async def follow(self, connection: NatsConnection) -> None:
        """Start following the token events on the connection's loop (returns at once)."""
        settings = connection.settings

        async def delivered(msg: Msg) -> None:
            position = stream_sequence(msg.reply)
            if (msg.headers or {}).get(TOPIC_HEADER) == REVOKED:
                token_id = id_from_token(msg.subject.rpartition(".")[2])
                if isinstance(token_id, UUID) and token_id not in self.revoked:
                    self.revoked[token_id] = position
                    for listener in list(self._listeners):
                        listener(token_id)
            self.position = max(self.position, position)

        self._subscription = await connection.js.subscribe(
            settings.kind_filter("events", "token"),
            cb=delivered,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, headers_only=True),
            stream=settings.stream,
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):  # the connection may be closing already
                await self._subscription.unsubscribe()
            self._subscription = None
