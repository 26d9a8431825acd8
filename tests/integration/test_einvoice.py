"""The invoices the pricing makes, as UBL 2.1, through the official EN 16931 validation rules
(../shared/tools/einvoice: the XML schema, then the CEN/TC 434 schematron)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from events.contract import (
    Address,
    BillingKind,
    InvoiceIssued,
    JobCompleted,
    JobEvent,
    JobRequested,
    MaterialUsed,
    Party,
    Priority,
    Source,
    TimeEntryAdded,
    Unit,
    WorkStarted,
)
from invoicer.einvoice import ubl_invoice
from invoicer.pricing import Activity, Bill, Buyer, Seller, bill, creditor_reference, work_of

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SELLER = Seller(
    name="Instalacje Nowak sp. z o.o.",
    vat_id="PL5261040828",
    address=Address(street="ul. Długa 1", city="Kraków", postal_code="31-147", country="PL"),
    bank_account="PL61 1090 1014 0000 0712 1981 2874",
    email="faktury@nowak.example",
)
PRICES = {
    "repair": Activity(
        code="repair", name="Naprawa", unit=Unit.STARTED_HOUR, rate=Decimal("120.00"), vat_rate=Decimal(23)
    ),
    "filter": Activity(code="filter", name="Filtr F7", unit=Unit.PIECE, rate=Decimal("24.90"), vat_rate=Decimal(8)),
    "callout": Activity(code="callout", name="Dojazd", unit=Unit.FLAT, rate=Decimal("60.00"), vat_rate=Decimal(23)),
    "urgent": Activity(
        code="urgent", name="Dopłata za pilne", unit=Unit.FLAT, rate=Decimal("80.00"), vat_rate=Decimal(23)
    ),
    "quarter": Activity(
        code="quarter",
        name="Konsultacja",
        unit=Unit.QUARTER_HOUR,
        rate=Decimal("35.00"),
        minimum_charge=Decimal("70.00"),
        vat_rate=Decimal(0),
    ),
}


def issued(buyer: Buyer, *events: JobEvent, priority: Priority = Priority.NORMAL) -> InvoiceIssued:
    job, tech = uuid.uuid4(), uuid.uuid4()
    history = [
        JobRequested(
            id=job,
            source=Source.PHONE,
            customer_id=buyer.id,
            site_address=buyer.billing_address,
            job_type="repair",
            description="Kocioł",
            priority=priority,
            billing_kind=BillingKind.PAID,
        ),
        WorkStarted(id=job, technician_id=tech, entry_id=uuid.uuid4(), started_at=NOW),
        *[msgspec.structs.replace(e, id=job) for e in events],
        JobCompleted(id=job, summary="Wymieniono filtr"),
    ]
    result = bill(work_of(job, history), buyer, PRICES, SELLER, NOW)  # type: ignore[arg-type]
    assert isinstance(result, Bill)
    number = "FV/2026/000042"
    return InvoiceIssued(
        id=uuid.uuid4(),
        number=number,
        series="FV",
        sequence=42,
        job_id=job,
        customer_id=buyer.id,
        issue_date=result.issue_date,
        supply_date=result.supply_date,
        due_date=result.due_date,
        currency=result.currency,
        language=buyer.language,
        seller=SELLER.party(),
        buyer=Party(name=buyer.name, address=buyer.billing_address, vat_id=buyer.vat_id, email=buyer.email),
        lines=result.lines,
        vat=result.vat,
        net_total=result.net_total,
        vat_total=result.vat_total,
        gross_total=result.gross_total,
        payment_reference=creditor_reference(number),
        reverse_charge=result.reverse_charge,
        job_type="repair",
        job_summary="Wymieniono filtr",
    )


def time_entry(minutes: int, activity: str = "") -> TimeEntryAdded:
    return TimeEntryAdded(
        id=uuid.uuid4(),
        technician_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        started_at=NOW,
        minutes=minutes,
        activity=activity,
    )


def material(code: str, quantity: str) -> MaterialUsed:
    return MaterialUsed(id=uuid.uuid4(), code=code, description=code, quantity=Decimal(quantity))


def validate(tmp_path: Path, documents: dict[str, bytes]) -> subprocess.CompletedProcess[str]:
    files = []
    for name, data in documents.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(data)
        files.append(str(path))
    return subprocess.run([sys.executable, str(VALIDATOR), *files], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the EN 16931 validator (../shared/tools/einvoice) is not here")
def test_invoices_pass_the_official_en16931_rules(tmp_path: Path) -> None:
    home = Address(street="ul. Mariacka 7", city="Kraków", postal_code="31-042", country="PL")
    abroad = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
    documents = {
        "several-rates-pln": issued(
            Buyer(id=uuid.uuid4(), name="Piekarnia Kowalski", billing_address=home, currency="PLN", language="pl"),
            time_entry(130),
            material("filter", "3"),
        ),
        "reverse-charge-eur": issued(
            Buyer(
                id=uuid.uuid4(),
                name="Novák Stavby s.r.o.",
                billing_address=abroad,
                vat_id="CZ12345678",
                currency="EUR",
                language="cs",
            ),
            time_entry(75),
            material("filter", "1"),
        ),
        "minimum-fees-zero-rate-czk": issued(
            Buyer(id=uuid.uuid4(), name="Dvořák", billing_address=abroad, currency="CZK", language="cs"),
            time_entry(10, "quarter"),
            priority=Priority.URGENT,
        ),
    }
    assert [l.code for l in documents["minimum-fees-zero-rate-czk"].lines] == ["quarter", "callout", "urgent"]
    assert documents["reverse-charge-eur"].reverse_charge
    result = validate(tmp_path, {name: ubl_invoice(invoice) for name, invoice in documents.items()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("VALID") == 3


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the EN 16931 validator (../shared/tools/einvoice) is not here")
def test_the_stored_pdf_is_a_valid_factur_x(tmp_path: Path) -> None:
    from invoicer.documents import Branding
    from invoicer.writer import render_pdf

    abroad = Address(street="Lindenstraße 40", city="Leipzig", postal_code="04109", country="DE")
    documents = {
        "reverse-charge-de": issued(
            Buyer(
                id=uuid.uuid4(),
                name="Weber Hausverwaltung GmbH",
                billing_address=abroad,
                vat_id="DE811569869",
                currency="EUR",
                language="de",
            ),
            time_entry(130),
            material("filter", "2"),
        ),
        "several-rates-pl": issued(
            Buyer(
                id=uuid.uuid4(),
                name="Piekarnia Kowalski",
                currency="PLN",
                language="pl",
                billing_address=Address(street="ul. Mariacka 7", city="Kraków", postal_code="31-042", country="PL"),
            ),
            time_entry(45),
            material("filter", "1"),
        ),
    }
    files = []
    for name, invoice in documents.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(render_pdf(invoice, Branding()))
        files.append(str(path))
    result = subprocess.run([sys.executable, str(VALIDATOR), *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("VALID") == 2 and '"pdfa": "3B"' in result.stdout


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the EN 16931 validator (../shared/tools/einvoice) is not here")
def test_the_validator_would_catch_a_wrong_total(tmp_path: Path) -> None:
    home = Address(street="ul. Mariacka 7", city="Kraków", postal_code="31-042", country="PL")
    invoice = issued(
        Buyer(id=uuid.uuid4(), name="Piekarnia Kowalski", billing_address=home, currency="PLN"), time_entry(130)
    )
    wrong = msgspec.structs.replace(invoice, gross_total=invoice.gross_total + Decimal("0.01"))
    result = validate(tmp_path, {"wrong": ubl_invoice(wrong)})
    assert result.returncode == 1 and "BR-CO-15" in result.stdout


def test_the_pdf_embeds_its_fonts_wherever_the_invoicer_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from invoicer.documents import invoice_pdf

    monkeypatch.chdir(tmp_path)  # not the project: the fonts lie outside the working directory
    home = Address(street="ul. Mariacka 7", city="Kraków", postal_code="31-042", country="PL")
    pdf = invoice_pdf(
        issued(
            Buyer(id=uuid.uuid4(), name="Dvořák", billing_address=home, currency="PLN", language="pl"), time_entry(90)
        )
    )
    assert b"DejaVuSans" in pdf  # embedded, so "ř" and "ł" print as themselves
