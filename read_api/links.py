"""Signed links: a customer opens their invoice's PDF without an account.

A link names the invoice and when it expires, signed with HMAC-SHA256 under the company's
link secret; nothing is stored, and a link cannot be altered to show another invoice or to
last longer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from uuid import UUID

DEFAULT_DAYS = 30


class BadLink(Exception):
    pass


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]


def sign(invoice_id: UUID, secret: str, days: int = DEFAULT_DAYS, now: float | None = None) -> tuple[str, int]:
    """(token, expiry as a Unix time)."""
    expires = int((now or time.time()) + days * 86400)
    body = base64.urlsafe_b64encode(f"{invoice_id}.{expires}".encode()).decode().rstrip("=")
    return f"{body}.{_mac(secret, body)}", expires


def verify(token: str, secret: str, now: float | None = None) -> UUID:
    """The invoice a link names; BadLink when it was altered or has expired."""
    body, _, mac = token.partition(".")
    if not secret or not hmac.compare_digest(mac, _mac(secret, body)):
        raise BadLink("this link is not valid: ask the sender for a new one")
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        invoice, _, expires = text.partition(".")
        invoice_id, expiry = UUID(invoice), int(expires)
    except ValueError:
        raise BadLink("this link is not valid: ask the sender for a new one") from None
    if (now or time.time()) > expiry:
        raise BadLink("this link has expired: ask the sender for a new one")
    return invoice_id
