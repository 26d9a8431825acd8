"""Gapless numbers: a series of one year is an aggregate whose versions are its numbers.

The next number is read from the series' last allocation only, and allocated in the same
atomic batch as the document it numbers, so no number is used twice or skipped."""

from __future__ import annotations

from uuid import UUID

import msgspec

from events.consumer import Consumer, Stored
from events.contract import Event, InvoiceNumberAllocated
from invoicer.ids import series_id_of
from invoicer.pricing import invoice_number


class Numbered(msgspec.Struct, frozen=True, kw_only=True):
    """A number of a series, to be allocated with the document it numbers."""

    series: str
    year: int
    sequence: int
    number: str
    series_id: UUID
    head: Stored

    def allocation(self, document_id: UUID) -> tuple[UUID, Stored, list[Event]]:
        return (
            self.series_id,
            self.head,
            [
                InvoiceNumberAllocated(
                    id=self.series_id,
                    series=self.series,
                    year=self.year,
                    sequence=self.sequence,
                    number=self.number,
                    invoice_id=document_id,
                )
            ],
        )


def numbered(head: Stored, pattern: str, series: str, year: int) -> Numbered:
    """The number after ``head``, the series' last allocation as stored."""
    sequence = head.version + 1
    return Numbered(
        series=series,
        year=year,
        sequence=sequence,
        series_id=series_id_of(series, year),
        head=head,
        number=invoice_number(pattern, series, year, sequence),
    )


async def next_number(consumer: Consumer, pattern: str, series: str, year: int) -> Numbered:
    """The series' next number, as stored now."""
    return numbered(await consumer.head(series_id_of(series, year)), pattern, series, year)
