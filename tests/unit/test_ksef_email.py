"""When a document's email is due (notifier.service.document_email, pure): at once outside
KSeF; under KSeF only after KSeF's answer, with the latest rendering, never when refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

from msgspec import structs

from events.contract import (
    Address,
    InvoiceDocumentStored,
    KsefAccepted,
    KsefDocumentPrepared,
    KsefIssuedOffline,
    KsefRefused,
)
from notifier.service import document_email
from tests.unit.invoices import INVOICE, INVOICE_ID

POLISH = structs.replace(
    INVOICE,
    seller=structs.replace(
        INVOICE.seller, address=Address(street="ul. Długa 3", city="Kraków", postal_code="31-147", country="PL")
    ),
)
PREPARED = KsefDocumentPrepared(
    id=INVOICE_ID,
    document_kind="invoice",
    number=INVOICE.number,
    seller_nip="5260250274",
    issue_date=date(2026, 11, 23),
    fa3_name="ksef/x.xml",
    fa3_sha256="0" * 64,
    fa3_size=1,
)
ACCEPTED = KsefAccepted(id=INVOICE_ID, ksef_number="5260250274-20261123-0123456789AB-CD", accepted_at=datetime.now(UTC))
OFFLINE = KsefIssuedOffline(id=INVOICE_ID, mode="unavailable", reason="timeout", deadline=datetime.now(UTC))


def stored(name: str, media_type: str = "application/pdf") -> InvoiceDocumentStored:
    return InvoiceDocumentStored(id=INVOICE_ID, name=name, media_type=media_type, sha256="0" * 64, size=1)


def test_outside_ksef_the_email_goes_with_the_pdf_and_every_rendering() -> None:
    assert document_email([INVOICE, stored("a.pdf")], False, [stored("a.xml", "application/xml")]) == (
        INVOICE,
        ["a.pdf", "a.xml"],
    )
    assert document_email([POLISH, stored("a.pdf")], False) == (POLISH, ["a.pdf"])  # KSeF not configured


def test_under_ksef_nothing_goes_before_ksefs_answer() -> None:
    assert document_email([POLISH, stored("a.pdf")], True) is None  # KSeF configured, not yet prepared
    assert document_email([INVOICE, stored("a.pdf")], False, [PREPARED]) is None  # the aggregate came after
    assert document_email([POLISH, PREPARED, stored("a.pdf")], False) is None
    refused = KsefRefused(id=INVOICE_ID, code=450, reason="semantyka")
    assert document_email([POLISH, PREPARED, stored("a.pdf"), refused], False) is None
    assert document_email([POLISH, PREPARED, stored("a.pdf"), refused, stored("b.pdf")], False) is None


def test_at_ksefs_answer_the_latest_rendering_goes_unless_the_writer_renders_again() -> None:
    history = [POLISH, stored("a.pdf"), stored("a.xml", "application/xml"), PREPARED, ACCEPTED]
    assert document_email(history, False) == (POLISH, ["a.pdf", "a.xml"])
    assert document_email([*history[:-1], OFFLINE], False) == (POLISH, ["a.pdf", "a.xml"])
    assert document_email(history, False, rendered_again=True) is None
    later = [stored("b.pdf"), stored("b.xml", "application/xml")]
    assert document_email([*history, later[0]], False, later[1:], rendered_again=True) == (
        POLISH,
        ["b.pdf", "b.xml"],
    )
    assert document_email([POLISH, PREPARED, ACCEPTED], False) is None  # no PDF yet: the one stored next goes
    assert document_email([POLISH, PREPARED, ACCEPTED, stored("b.pdf")], False) == (POLISH, ["b.pdf"])
