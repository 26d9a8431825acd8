"""The credit note: a correction of an issued invoice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from events.contract.base import Event
from events.contract.document import InvoiceLine, Party, VatSubtotal


class CreditNoteEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "creditnote"


class CreditNoteIssued(CreditNoteEvent, frozen=True, kw_only=True, tag=True):
    """A correction of an issued invoice, by reference; amounts are positive and credited.
    Everything printed on it is here, as on an invoice."""

    number: str
    series: str
    sequence: int
    invoice_id: UUID
    invoice_number: str
    invoice_issue_date: date
    customer_id: UUID
    issue_date: date
    currency: str
    language: str
    reason: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    reverse_charge: bool = False
    job_type: str = ""


class CreditNoteDocumentStored(CreditNoteEvent, frozen=True, kw_only=True, tag=True):
    """A rendering of the credit note, put in the documents object store."""

    name: str
    media_type: str
    sha256: str
    size: int


CreditNoteEvents = CreditNoteIssued | CreditNoteDocumentStored
