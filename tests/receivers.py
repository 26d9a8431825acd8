"""Real peers for the notifier, on localhost: an SMTP server's mailbox (for aiosmtpd) and a
Web Push receiver that checks the VAPID signature and decrypts each payload (RFC 8291).
Shared by the notifier's tests and its bench."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """What a real SMTP server on localhost accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived_at: list[float] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append(message)  # type: ignore[arg-type]
            self.arrived_at.append(time.time())
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class PushReceiver:
    """A push service on localhost, as a browser's would be: checks the VAPID signature and
    decrypts each payload with the subscription's private key (RFC 8291, aes128gcm)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = base64.urlsafe_b64encode(b"0123456789abcdef").decode().rstrip("=")
        self.received: list[dict[str, Any]] = []
        self.claims: list[dict[str, Any]] = []  # each request's VAPID token's claims (signature checked)
        self.arrived_at: list[float] = []
        self.status = 201
        self.port = free_port()
        self.arrived = threading.Condition()

    def subscription(self, path: str = "/push/device-1") -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"http://127.0.0.1:{self.port}{path}",
            "keys": {"p256dh": base64.urlsafe_b64encode(raw).decode().rstrip("="), "auth": self.auth},
        }

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import orjson
        from py_vapid import Vapid02

        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        assert Vapid02.verify(headers["authorization"]), "the VAPID signature does not verify"
        token = headers["authorization"].removeprefix("vapid ").split(",")[0].removeprefix("t=")
        claims = orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=base64.urlsafe_b64decode(self.auth + "=="), version="aes128gcm"
        )
        with self.arrived:
            self.received.append({"path": scope["path"], **orjson.loads(plain)})
            self.claims.append(claims)
            self.arrived_at.append(time.time())
            self.arrived.notify_all()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """The receiver listening on its port (uvicorn, in a thread of its own) until the block ends."""
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", interface="asgi3"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            threading.Event().wait(0.01)
        try:
            yield
        finally:
            server.should_exit = True
            thread.join(timeout=10)
