"""The pro forma invoice for an accepted quote."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from events.contract.base import Event
from events.contract.document import InvoiceLine, Party, VatSubtotal


class ProformaEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "proforma"


class ProformaIssued(ProformaEvent, frozen=True, kw_only=True, tag=True):
    """A proforma invoice for an accepted quote (not a tax document: it asks for payment in
    advance, and is not posted to the ledger)."""

    number: str
    job_id: UUID
    quote_id: UUID
    customer_id: UUID
    issue_date: date
    due_date: date
    currency: str
    language: str
    seller: Party
    buyer: Party
    lines: list[InvoiceLine]
    vat: list[VatSubtotal]
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    payment_reference: str
    reverse_charge: bool = False
    job_type: str = ""


class ProformaDocumentStored(ProformaEvent, frozen=True, kw_only=True, tag=True):
    name: str
    media_type: str
    sha256: str
    size: int


ProformaEvents = ProformaIssued | ProformaDocumentStored
