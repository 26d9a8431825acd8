"""Sending: email over SMTP (aiosmtplib) and Web Push (RFC 8291 payload encryption by
pywebpush, VAPID by py_vapid, the request by httpx).

Each sender answers what happened in terms the notifier records: delivered (with the
server's reply), or failed, permanently (no point in trying again) or not.
"""

from __future__ import annotations

import base64
import email.utils
import mimetypes
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from urllib.parse import urlsplit
from uuid import UUID

import aiosmtplib
import httpx
import msgspec
import orjson

from events.contract import MessageQueued


class Sent(msgspec.Struct, frozen=True):
    detail: str


class Failed(Exception):
    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


SENDER = "jobstream <noreply@localhost>"


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = ""
    port: int = 25
    user: str = ""
    password: str = ""
    security: str = ""  # "", starttls, tls
    sender: str = SENDER
    timeout: float = 20.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> SmtpSettings:
        get = env.get
        security = (get("SMTP_SECURITY") or "").lower()
        if security not in ("", "starttls", "tls"):
            raise SystemExit(f"SMTP_SECURITY {security!r}: use starttls, tls, or leave it unset")
        return cls(
            host=get("SMTP_HOST", ""),
            port=int(get("SMTP_PORT") or 25),
            user=get("SMTP_USER", ""),
            password=get("SMTP_PASSWORD", ""),
            security=security,
            sender=get("MAIL_FROM") or get("JOBSTREAM_COMPANY_EMAIL") or SENDER,
        )


Fetch = Callable[[str], Awaitable[bytes]]


class Mailer:
    def __init__(self, settings: SmtpSettings, fetch: Fetch) -> None:
        self.settings = settings
        self.fetch = fetch  # a document from the object store, by name

    async def build(self, message_id: UUID, queued: MessageQueued) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = queued.recipient
        mail["Subject"] = queued.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        # The same id on every attempt: a receiving system can tell a repeat if one ever happens.
        mail["Message-ID"] = f"<{message_id}@jobstream>"
        mail["Content-Language"] = queued.language
        mail.set_content(queued.body)
        for name in queued.attachments:
            try:
                data = await self.fetch(name)
            except Exception as error:  # noqa: BLE001 - the store may be briefly unreachable
                raise Failed(f"attachment {name} could not be read: {error}") from None
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            maintype, _, subtype = kind.partition("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name.rpartition("/")[2])
        return mail

    async def send(self, message_id: UUID, queued: MessageQueued) -> Sent:
        if not queued.recipient:
            raise Failed("no email address on file for the customer", permanent=True)
        if not self.settings.host:
            raise Failed("no SMTP server configured (set SMTP_HOST)")
        mail = await self.build(message_id, queued)
        s = self.settings
        try:
            errors, reply = await aiosmtplib.send(
                mail,
                hostname=s.host,
                port=s.port,
                username=s.user or None,
                password=s.password or None,
                start_tls=s.security == "starttls",
                use_tls=s.security == "tls",
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise Failed(f"the server refused {queued.recipient}: {error}", permanent=True) from None
        except aiosmtplib.SMTPResponseException as error:
            raise Failed(f"SMTP {error.code} {error.message}", permanent=500 <= error.code < 600) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise Failed(f"SMTP server {s.host}:{s.port} unreachable: {error}") from None
        if errors:
            raise Failed(f"the server refused: {errors}", permanent=True)
        return Sent(f"accepted by {s.host}: {reply}")


class PushSettings(msgspec.Struct, frozen=True, kw_only=True):
    private_key: str = ""  # VAPID: the PEM, or base64url of the raw key
    subject: str = "mailto:noreply@localhost"
    ttl: int = 86_400
    # How long a VAPID token holds. RFC 8292 allows at most 24 h from the push service's
    # clock; a token signed for exactly 24 h (py_vapid's default) is refused by a service
    # whose clock runs a little behind ours. Half of that leaves hours of room either way.
    token_seconds: int = 12 * 3600

    @classmethod
    def from_env(cls, env: dict[str, str]) -> PushSettings:
        return cls(
            private_key=env.get("VAPID_PRIVATE_KEY", ""),
            subject=env.get("VAPID_SUBJECT") or f"mailto:{env.get('JOBSTREAM_COMPANY_EMAIL') or 'noreply@localhost'}",
        )


class Gone(Exception):
    """The push service says the subscription no longer exists (404, 410)."""


class Pusher:
    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(timeout=10.0)
        self._vapid = None
        if settings.private_key:
            from py_vapid import Vapid

            key = settings.private_key
            self._vapid = Vapid.from_pem(key.encode()) if key.lstrip().startswith("-----") else Vapid.from_string(key)

    async def aclose(self) -> None:
        await self.client.aclose()

    def payload(self, message_id: UUID, queued: MessageQueued) -> bytes:
        return orjson.dumps(
            {
                "id": str(message_id),
                "title": queued.subject,
                "body": queued.body,
                "url": queued.url,
                "tag": f"{queued.about_kind}:{queued.about_id}",
            }
        )

    async def send(self, message_id: UUID, queued: MessageQueued, endpoint: str, p256dh: str, auth: str) -> str:
        """Encrypt for one subscription (RFC 8291, aes128gcm) and post it; the service's status."""
        from pywebpush import WebPusher

        if self._vapid is None:
            raise Failed("no VAPID key configured (set VAPID_PRIVATE_KEY)")
        body = WebPusher({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}).encode(
            self.payload(message_id, queued), "aes128gcm"
        )["body"]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(endpoint))
        expires = int(time.time()) + self.settings.token_seconds
        headers = self._vapid.sign({"aud": origin, "sub": self.settings.subject, "exp": expires})
        headers.update(
            {
                "TTL": str(self.settings.ttl),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Urgency": "high",
                "Topic": base64.urlsafe_b64encode(message_id.bytes[:24]).decode().rstrip("="),
            }
        )
        try:
            response = await self.client.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise Failed(f"push service unreachable: {error}") from None
        if response.status_code in (404, 410):
            raise Gone(f"{response.status_code}")
        if response.status_code >= 400:
            raise Failed(
                f"push service answered {response.status_code}", permanent=response.status_code in (400, 401, 403, 413)
            )
        return str(response.status_code)
