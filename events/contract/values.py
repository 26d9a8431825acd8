"""The value types of the contract: text rules, bounded numbers, business days, the
enumerations and the address every aggregate uses."""

from __future__ import annotations

import calendar
import enum
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from msgspec import Meta, Struct

# Characters no text field takes: the C0 and C1 control characters and the noncharacters
# U+FFFE and U+FFFF, which XML cannot hold (a customer's name ends up in invoice XML).
# Multi-line fields (notes, descriptions, scope, summaries, reasons) keep tab, newline and CR.
# Lone surrogates never get this far: the JSON decoder refuses "\\ud800" (422, body).
CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
LINE_CHARACTER = rf"[^\t\n\r{CONTROLS}]"
TEXT_CHARACTER = rf"[^{CONTROLS}]"


def whole(body: str) -> str:
    """A pattern the whole of a single-line value must match. msgspec checks with Python's
    ``re.search``, whose ``$`` also matches before a final newline: the lookahead refuses
    that newline, so the pattern means what it means in JSON Schema (ECMA-262)."""
    return rf"^(?!.*\n)(?:{body})$"


LINE = whole(f"{LINE_CHARACTER}*")  # one line: no control characters at all
LINES = f"^{TEXT_CHARACTER}*$"  # several lines: tab, newline and CR allowed
_UNREADABLE = {False: re.compile(rf"[\t\n\r{CONTROLS}\ud800-\udfff]"), True: re.compile(rf"[{CONTROLS}\ud800-\udfff]")}
LINE_RULE = (
    "one line of text: no tab, newline or other control character (U+0000-U+001F, "
    "U+007F-U+009F), and no U+FFFE or U+FFFF"
)
LINES_RULE = (
    "text without control characters (U+0000-U+001F, U+007F-U+009F; tab and newline are "
    "allowed) and without U+FFFE or U+FFFF"
)


def unreadable(text: str, multiline: bool = False) -> str:
    """Why a text cannot be stored ('' when it can), for the doors that take text without
    decoding a command (the booking form, a photo's caption)."""
    found = _UNREADABLE[multiline].search(text)
    if found is None:
        return ""
    return f"contains U+{ord(found.group()):04X}: {LINES_RULE if multiline else LINE_RULE}"


def line(max_length: int, min_length: int = 0) -> Meta:
    return Meta(min_length=min_length, max_length=max_length, pattern=LINE)


def lines(max_length: int, min_length: int = 0) -> Meta:
    return Meta(min_length=min_length, max_length=max_length, pattern=LINES)


Text = Annotated[str, line(200, 1)]
LongText = Annotated[str, lines(10_000)]
OptionalText = Annotated[str, line(200)]
# A reason someone must give (cancel, hold, reopen, correct): blank or only spaces is no reason.
REASON = rf"^[^\S{CONTROLS}]*[^\s{CONTROLS}]{TEXT_CHARACTER}*$"  # some words, then any lines
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern=REASON)]
EMAIL = whole(rf"[^@\s{CONTROLS}]+@[^@\s{CONTROLS}]+\.[^@\s{CONTROLS}]+")
Email = Annotated[str, Meta(pattern=EMAIL, max_length=254)]
Phone = Annotated[str, line(40)]
Country = Annotated[str, Meta(pattern=whole(r"[A-Z]{2}"))]
Currency = Annotated[str, Meta(pattern=whole(r"EUR|PLN|CZK|RON|USD|GBP|CHF|HUF"))]
Language = Annotated[str, Meta(pattern=whole(r"en|pl|cs|de|ro"))]
Minutes = Annotated[int, Meta(ge=0, le=60 * 24 * 366)]
PositiveMinutes = Annotated[int, Meta(ge=1, le=60 * 24 * 31)]
# msgspec cannot bound a Decimal: commands holding money check it in __post_init__.
Money = Decimal
VatRate = Decimal
Quantity = Decimal
UtcTime = Annotated[datetime, Meta(tz=True)]
TimeEntryMinutes = Annotated[int, Meta(ge=1, le=24 * 60)]  # one entry is at most a day


class Day(date):
    """A business day in an event (a payment's ``received_on``, a statement line's ``booked_on``),
    decoded leniently.

    Commands take a ``date``, so new events hold real days. Before that, a payment's day was
    a string checked only for its shape, and ``2026-02-30`` was stored for ever: such an event
    still decodes, read as the nearest real day (2026-02-28), and ``written`` keeps what was
    stored (an encoding gives it back). msgspec cannot union ``date`` with ``str``: this type
    is decoded by the codec's ``dec_hook`` instead."""

    written: str

    @classmethod
    def of(cls, day: date) -> Day:
        made = cls(day.year, day.month, day.day)
        made.written = day.isoformat()
        return made

    @classmethod
    def read(cls, text: str) -> Day:
        try:
            made = cls.of(date.fromisoformat(text))
        except ValueError:
            parts = text.split("-")
            if len(parts) == 3 and all(p.isdigit() for p in parts):  # the shape, not a real day
                year = min(max(int(parts[0]), 1), 9999)
                month = min(max(int(parts[1]), 1), 12)
                made = cls(year, month, min(max(int(parts[2]), 1), calendar.monthrange(year, month)[1]))
            else:  # not a day at all: the earliest, which nothing real precedes
                made = cls(1, 1, 1)
        made.written = text
        return made

    @staticmethod
    def text(day: date) -> str:
        """The day as stored: what was written, for a day decoded from an event."""
        return getattr(day, "written", None) or day.isoformat()

    @property
    def real(self) -> bool:
        """Whether the stored text was this real day."""
        return self.written == self.isoformat()


Code = Annotated[str, Meta(pattern=whole(r"[A-Za-z0-9_.-]{1,40}"))]


class Role(enum.StrEnum):
    OFFICE = "office"
    TECHNICIAN = "technician"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


class Status(enum.StrEnum):
    NEW = "new"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"


class Source(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    IMPORT = "import"
    RECURRING = "recurring"  # generated from a recurring service


class Priority(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class BillingKind(enum.StrEnum):
    PAID = "paid"
    WARRANTY = "warranty"
    INTERNAL = "internal"


class Location(enum.StrEnum):
    ON_SITE = "on_site"
    IN_SHOP = "in_shop"


class Unit(enum.StrEnum):
    HOUR = "hour"
    STARTED_HOUR = "started_hour"
    QUARTER_HOUR = "quarter_hour"
    PIECE = "piece"
    FLAT = "flat"


class Address(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    street: Text
    city: Text
    postal_code: Annotated[str, line(20, 1)]
    country: Country
    label: OptionalText = ""


TimeZone = Annotated[str, Meta(pattern=whole(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*"), max_length=60)]
