"""A Romanian seller's UBL is CIUS-RO, as RO e-Factura takes it: given its invoices and credit
notes (a consumer without a CNP, a Bucharest company, two rates, prepaid hours, reverse
charge), then each passes ANAF's CIUS-RO 1.0.9 rules with no fatal and no warning finding."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.etree import ElementTree as ET

import pytest
from msgspec.structs import replace

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, VatSubtotal
from invoicer import romania
from invoicer.einvoice import CIUS_RO, ubl_invoice
from invoicer.facturx import cii_invoice
from tests.unit.invoices import CUSTOMER_ID

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}

SELLER = Party(
    name="Instalații Popescu SRL",
    vat_id="RO18547290",
    address=Address(street="Strada Lipscani 10", city="București", postal_code="030031", country="RO"),
    email="facturi@popescu.example",
    bank_account="RO49 AAAA 1B31 0075 9384 0000",
)
CONSUMER = Party(  # a household: no CNP given
    name="Ion Ionescu",
    email="ion@ionescu.example",
    address=Address(street="Strada Memorandumului 3", city="Cluj-Napoca", postal_code="400114", country="RO"),
)
BUCHAREST_COMPANY = Party(
    name="Brutăria Dulce SRL",
    vat_id="RO14399840",
    email="contabil@dulce.example",
    address=Address(street="Bulevardul Unirii 20", city="București", postal_code="040104", country="RO"),
)
HUNGARIAN_BUSINESS = Party(
    name="Kovács Épület Kft.",
    vat_id="HU12892312",
    email="konyveles@kovacs.example",
    address=Address(street="Andrássy út 12", city="Budapest", postal_code="1061", country="HU"),
)


def line(kind: str, code: str, quantity: str, unit: str, price: str, net: str, rate: int, **more: Any) -> InvoiceLine:
    return InvoiceLine(
        kind=kind,
        code=code,
        description=code.capitalize(),
        quantity=Decimal(quantity),
        unit=unit,
        unit_price=Decimal(price),
        net=Decimal(net),
        vat_rate=Decimal(rate),
        **more,
    )


ROMANIAN = InvoiceIssued(
    id=UUID(int=0xE001),
    number="FV/2026/000031",
    series="FV",
    sequence=31,
    job_id=UUID(int=0xE002),
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 23),
    supply_date=date(2026, 11, 20),
    due_date=date(2026, 12, 7),
    currency="RON",
    language="ro",
    seller=SELLER,
    buyer=CONSUMER,
    lines=[
        line("prepaid", "reparatie", "1", "hour", "0", "0.00", 21, logged_minutes=60),
        line("time", "reparatie", "2", "started_hour", "150.00", "300.00", 21, logged_minutes=100),
        line("material", "filtru", "2", "piece", "45.50", "91.00", 11),
    ],
    vat=[
        VatSubtotal(category="S", rate=Decimal(21), taxable=Decimal("300.00"), vat=Decimal("63.00")),
        VatSubtotal(category="S", rate=Decimal(11), taxable=Decimal("91.00"), vat=Decimal("10.01")),
    ],
    net_total=Decimal("391.00"),
    vat_total=Decimal("73.01"),
    gross_total=Decimal("464.01"),
    payment_reference="RF18FV2026000031",
    job_type="repair",
)
TO_A_COMPANY = replace(ROMANIAN, number="FV/2026/000032", sequence=32, buyer=BUCHAREST_COMPANY)
REVERSE_CHARGED = replace(
    ROMANIAN,
    number="FV/2026/000033",
    sequence=33,
    currency="EUR",
    buyer=HUNGARIAN_BUSINESS,
    lines=[line("time", "reparatie", "2", "hour", "30.00", "60.00", 0, vat_category="AE", logged_minutes=120)],
    vat=[VatSubtotal(category="AE", rate=Decimal(0), taxable=Decimal("60.00"), vat=Decimal("0.00"))],
    net_total=Decimal("60.00"),
    vat_total=Decimal("0.00"),
    gross_total=Decimal("60.00"),
    reverse_charge=True,
)
CREDITED = CreditNoteIssued(
    id=UUID(int=0xE004),
    number="KOR/2026/000004",
    series="KOR",
    sequence=4,
    invoice_id=ROMANIAN.id,
    invoice_number=ROMANIAN.number,
    invoice_issue_date=ROMANIAN.issue_date,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 30),
    currency="RON",
    language="ro",
    reason="Filtre returnate",
    seller=SELLER,
    buyer=CONSUMER,
    lines=[ROMANIAN.lines[2]],
    vat=[ROMANIAN.vat[1]],
    net_total=Decimal("91.00"),
    vat_total=Decimal("10.01"),
    gross_total=Decimal("101.01"),
    job_type="repair",
)
CASES: dict[str, InvoiceIssued | CreditNoteIssued] = {
    "consumer": ROMANIAN,
    "company": TO_A_COMPANY,
    "reverse-charge": REVERSE_CHARGED,
    "credit-note": CREDITED,
    "company-credit-note": replace(CREDITED, number="KOR/2026/000005", buyer=BUCHAREST_COMPANY),
}


def party(document: InvoiceIssued | CreditNoteIssued, role: str) -> ET.Element:
    found = ET.fromstring(ubl_invoice(document)).find(f"cac:{role}/cac:Party", NS)
    assert found is not None
    return found


def test_a_romanian_seller_s_ubl_names_cius_ro() -> None:
    for document in CASES.values():
        assert ET.fromstring(ubl_invoice(document)).findtext("cbc:CustomizationID", namespaces=NS) == CIUS_RO


def test_a_consumer_without_a_cnp_is_thirteen_zeros() -> None:
    buyer = party(ROMANIAN, "AccountingCustomerParty")
    assert buyer.findtext("cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS) == "0000000000000"
    company = party(TO_A_COMPANY, "AccountingCustomerParty")
    assert company.find("cac:PartyLegalEntity/cbc:CompanyID", NS) is None  # its VAT id identifies it
    assert company.findtext("cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS) == "RO14399840"


def test_romanian_addresses_carry_their_county_and_bucharest_its_sector() -> None:
    def where(p: ET.Element) -> tuple[str | None, str | None]:
        return (
            p.findtext("cac:PostalAddress/cbc:CityName", namespaces=NS),
            p.findtext("cac:PostalAddress/cbc:CountrySubentity", namespaces=NS),
        )

    assert where(party(ROMANIAN, "AccountingSupplierParty")) == ("SECTOR3", "RO-B")
    assert where(party(ROMANIAN, "AccountingCustomerParty")) == ("Cluj-Napoca", "RO-CJ")
    assert where(party(TO_A_COMPANY, "AccountingCustomerParty")) == ("SECTOR4", "RO-B")
    assert where(party(REVERSE_CHARGED, "AccountingCustomerParty")) == ("Budapest", None)  # not Romanian


@pytest.mark.parametrize(
    ("postal_code", "county", "city"),
    [
        ("010011", "RO-B", "SECTOR1"),
        ("061344", "RO-B", "SECTOR6"),
        ("077190", "RO-IF", "Voluntari"),
        ("700259", "RO-IS", "Voluntari"),
        ("900178", "RO-CT", "Voluntari"),
        ("99999", "", "Voluntari"),  # not six digits: no county
    ],
)
def test_the_county_is_read_from_the_postal_code(postal_code: str, county: str, city: str) -> None:
    address = Address(street="Strada 1", city="Voluntari", postal_code=postal_code, country="RO")
    assert (romania.county(address), romania.city(address)) == (county, city)


def test_the_cii_of_a_romanian_seller_stays_en16931() -> None:
    """CIUS-RO is a UBL specification: the Factur-X PDF's CII keeps plain EN 16931."""
    guideline = ET.fromstring(cii_invoice(ROMANIAN)).findtext(
        "{*}ExchangedDocumentContext/{*}GuidelineSpecifiedDocumentContextParameter/{*}ID"
    )
    assert guideline == "urn:cen.eu:en16931:2017"


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_each_passes_cius_ro_with_no_fatal_and_no_warning(tmp_path: Path) -> None:
    paths = []
    for name, document in CASES.items():
        path = tmp_path / f"ro-{name}.xml"
        path.write_bytes(ubl_invoice(document))
        paths.append(path)
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), "--profile", "cius-ro", "--json", "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = json.loads(result.stdout)
    serious = {
        Path(r["file"]).name: [f"{f['flag']} {f['id']}" for f in r["findings"] if f["flag"] in ("fatal", "warning")]
        for r in reports
    }
    assert serious == {p.name: [] for p in paths}
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    # ANAF's rules ran on each, not only EN 16931's
    assert all(any(k.startswith("ROeFactura") and n > 0 for k, n in r["info"]["fired_rules"].items()) for r in reports)


def test_start_up_says_when_the_seller_s_postal_code_gives_no_county() -> None:
    from invoicer.settings import Settings

    env = {"JOBSTREAM_COMPANY_COUNTRY": "RO", "JOBSTREAM_COMPANY_VAT_ID": "RO18547290"}
    (said,) = Settings.from_env({**env, "JOBSTREAM_COMPANY_POSTAL_CODE": "00-001"}).missing()
    assert said.startswith("JOBSTREAM_COMPANY_POSTAL_CODE") and "BR-RO-110" in said
    assert Settings.from_env({**env, "JOBSTREAM_COMPANY_POSTAL_CODE": "030031"}).missing() == []
