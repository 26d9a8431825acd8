"""An invoice series: its numbers, without gaps."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from events.contract.base import Event


class SeriesEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "series"


class InvoiceNumberAllocated(SeriesEvent, frozen=True, kw_only=True, tag=True):
    """The series' next number; its version is the sequence, so numbers have no gaps."""

    series: str
    year: int
    sequence: int
    number: str
    invoice_id: UUID  # or the credit note's, in a credit note series


SeriesEvents = InvoiceNumberAllocated
