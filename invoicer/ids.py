"""The ids of what the invoicer writes, derived from what caused it (uuid5), so that a
redelivery, a restart or another replica lands on the same aggregate: an invoice, a credit
note, a proforma or a payment exists once however often it is decided."""

from __future__ import annotations

import uuid
from uuid import UUID

NAMESPACE = UUID("1d7c1b52-8f0e-4d59-b7a3-5f3f0b6a4c21")


def invoice_id_of(job_id: UUID) -> UUID:
    """A job's (final) invoice."""
    return uuid.uuid5(NAMESPACE, f"invoice:{job_id}")


def interim_invoice_id_of(request_id: UUID) -> UUID:
    """The interim invoice the office requested."""
    return uuid.uuid5(NAMESPACE, f"interim:{request_id}")


def retainer_invoice_id_of(retainer_id: UUID, month: str) -> UUID:
    """A retainer's invoice for one month (YYYY-MM)."""
    return uuid.uuid5(NAMESPACE, f"retainer:{retainer_id}:{month}")


def credit_note_id_of(request_id: UUID) -> UUID:
    return uuid.uuid5(NAMESPACE, f"creditnote:{request_id}")


def proforma_id_of(quote_id: UUID) -> UUID:
    return uuid.uuid5(NAMESPACE, f"proforma:{quote_id}")


def payment_id_of(statement_id: UUID, line: int) -> UUID:
    """The payment a bank statement's line made."""
    return uuid.uuid5(NAMESPACE, f"payment:{statement_id}:{line}")


def series_id_of(series: str, year: int) -> UUID:
    """A numbering series of one year (``FV`` in 2026): its versions are its numbers."""
    return uuid.uuid5(NAMESPACE, f"series:{series}:{year}")
