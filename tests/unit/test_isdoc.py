"""A Czech seller's invoice and credit note as ISDOC 6.0.2, from the event alone: given an
issued document, then the ISDOC passes the ISDOC schema and, read back, says the document's
amounts and VAT recapitulation to the cent."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID
from xml.etree import ElementTree as ET

import pytest
from msgspec.structs import replace

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, VatSubtotal
from invoicer.isdoc import company_number, has_isdoc, isdoc_invoice, line_vat, street_and_number
from tests.unit.invoices import CUSTOMER_ID, INVOICE

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
NS = {"i": "http://isdoc.cz/namespace/2013"}
INVOICE_ID = UUID("00000000-0000-0000-0000-00000000c001")
JOB_ID = UUID("00000000-0000-0000-0000-00000000c002")
CREDIT_NOTE_ID = UUID("00000000-0000-0000-0000-00000000c004")

SELLER = Party(
    name="Instalace Dvořák s.r.o.",
    vat_id="CZ27082440",
    address=Address(street="Vinohradská 1511/230", city="Praha", postal_code="100 00", country="CZ"),
    email="fakturace@dvorak.example",
    bank_account="CZ65 0800 0000 1920 0014 5399",
)
CONSUMER = Party(  # a household: no IČO, no DIČ
    name="Jana Svobodová",
    email="jana@svobodova.example",
    address=Address(street="Lidická 8", city="Brno", postal_code="602 00", country="CZ"),
)
GERMAN_BUSINESS = Party(
    name="Müller Haustechnik GmbH",
    vat_id="DE136695976",
    address=Address(street="Hauptstraße 5", city="Dresden", postal_code="01067", country="DE"),
)


def line(
    kind: str, code: str, quantity: str, unit: str, price: str, net: str, rate: int, **more: object
) -> InvoiceLine:
    return InvoiceLine(
        kind=kind,
        code=code,
        description=code.capitalize(),
        quantity=Decimal(quantity),
        unit=unit,
        unit_price=Decimal(price),
        net=Decimal(net),
        vat_rate=Decimal(rate),
        **more,  # type: ignore[arg-type]  # vat_category, logged_minutes
    )


# Work at 21 %, two filters at 12 %, a prepaid hour at no charge: VAT per rate rounds once,
# 3 × 33.33 at 21 % is 20.9979 -> 21.00, line by line it would be 3 × 7.00.
LINES = [
    line("prepaid", "repair", "1", "hour", "0", "0.00", 21, logged_minutes=60),
    line("time", "repair", "1", "started_hour", "33.33", "33.33", 21, logged_minutes=50),
    line("time", "diagnosis", "1", "started_hour", "33.33", "33.33", 21, logged_minutes=40),
    line("fee", "callout", "1", "visit", "33.33", "33.33", 21),
    line("material", "filter", "2", "piece", "24.95", "49.90", 12),
]
CZECH = InvoiceIssued(
    id=INVOICE_ID,
    number="FV/2026/000101",
    series="FV",
    sequence=101,
    job_id=JOB_ID,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 23),
    supply_date=date(2026, 11, 20),
    due_date=date(2026, 12, 7),
    currency="CZK",
    language="cs",
    seller=SELLER,
    buyer=CONSUMER,
    lines=LINES,
    vat=[
        VatSubtotal(category="S", rate=Decimal(21), taxable=Decimal("99.99"), vat=Decimal("21.00")),
        VatSubtotal(category="S", rate=Decimal(12), taxable=Decimal("49.90"), vat=Decimal("5.99")),
    ],
    net_total=Decimal("149.89"),
    vat_total=Decimal("26.99"),
    gross_total=Decimal("176.88"),
    payment_reference="RF00FV2026000101",
    job_type="repair",
)
REVERSE_CHARGED = replace(
    CZECH,
    number="FV/2026/000102",
    sequence=102,
    currency="EUR",
    buyer=GERMAN_BUSINESS,
    lines=[line("time", "repair", "2", "hour", "45.00", "90.00", 0, vat_category="AE", logged_minutes=120)],
    vat=[VatSubtotal(category="AE", rate=Decimal(0), taxable=Decimal("90.00"), vat=Decimal("0.00"))],
    net_total=Decimal("90.00"),
    vat_total=Decimal("0.00"),
    gross_total=Decimal("90.00"),
    reverse_charge=True,
)
CREDIT_NOTE = CreditNoteIssued(
    id=CREDIT_NOTE_ID,
    number="DB/2026/000003",
    series="DB",
    sequence=3,
    invoice_id=INVOICE_ID,
    invoice_number=CZECH.number,
    invoice_issue_date=CZECH.issue_date,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 30),
    currency="CZK",
    language="cs",
    reason="Filtry vráceny",
    seller=SELLER,
    buyer=CONSUMER,
    lines=[LINES[4]],
    vat=[CZECH.vat[1]],
    net_total=Decimal("49.90"),
    vat_total=Decimal("5.99"),
    gross_total=Decimal("55.89"),
    job_type="repair",
)
CASES = {"invoice": CZECH, "reverse-charge": REVERSE_CHARGED, "credit-note": CREDIT_NOTE}


def read(document: InvoiceIssued | CreditNoteIssued) -> ET.Element:
    data = isdoc_invoice(document)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return ET.fromstring(data)


def text(element: ET.Element, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"no {path}"
    return found.text or ""


def amounts(element: ET.Element, path: str) -> Decimal:
    return sum((Decimal(e.text or "") for e in element.findall(path, NS)), Decimal(0))


def test_the_header_names_the_document_and_its_dates() -> None:
    root = read(CZECH)
    assert root.tag == "{http://isdoc.cz/namespace/2013}Invoice" and root.get("version") == "6.0.2"
    assert [
        text(root, f"i:{tag}")
        for tag in ("DocumentType", "ID", "UUID", "IssueDate", "TaxPointDate", "VATApplicable", "LocalCurrencyCode")
    ] == ["1", "FV/2026/000101", str(INVOICE_ID).upper(), "2026-11-23", "2026-11-20", "true", "CZK"]
    assert root.find("i:Note", NS) is None


def test_the_seller_with_its_ico_dic_and_address() -> None:
    seller = read(CZECH).find("i:AccountingSupplierParty/i:Party", NS)
    assert seller is not None
    assert [
        text(seller, p)
        for p in (
            "i:PartyIdentification/i:ID",
            "i:PartyName/i:Name",
            "i:PostalAddress/i:StreetName",
            "i:PostalAddress/i:BuildingNumber",
            "i:PostalAddress/i:CityName",
            "i:PostalAddress/i:PostalZone",
            "i:PostalAddress/i:Country/i:IdentificationCode",
            "i:PartyTaxScheme/i:CompanyID",
            "i:PartyTaxScheme/i:TaxScheme",
            "i:Contact/i:ElectronicMail",
        )
    ] == [
        "27082440",
        "Instalace Dvořák s.r.o.",
        "Vinohradská",
        "1511/230",
        "Praha",
        "100 00",
        "CZ",
        "CZ27082440",
        "VAT",
        "fakturace@dvorak.example",
    ]


def test_a_consumer_has_no_ico_and_no_dic() -> None:
    buyer = read(CZECH).find("i:AccountingCustomerParty/i:Party", NS)
    assert buyer is not None
    assert text(buyer, "i:PartyIdentification/i:ID") == ""
    assert buyer.find("i:PartyTaxScheme", NS) is None
    assert text(buyer, "i:PartyName/i:Name") == "Jana Svobodová"


def test_the_vat_recapitulation_and_the_totals_are_the_invoice_s_to_the_cent() -> None:
    for document in CASES.values():
        root = read(document)
        recap = [
            (
                Decimal(text(s, "i:TaxCategory/i:Percent")),
                Decimal(text(s, "i:TaxableAmount")),
                Decimal(text(s, "i:TaxAmount")),
                Decimal(text(s, "i:TaxInclusiveAmount")),
            )
            for s in root.findall("i:TaxTotal/i:TaxSubTotal", NS)
        ]
        assert recap == [(v.rate, v.taxable, v.vat, v.taxable + v.vat) for v in document.vat]
        assert Decimal(text(root, "i:TaxTotal/i:TaxAmount")) == document.vat_total
        totals = root.find("i:LegalMonetaryTotal", NS)
        assert totals is not None
        assert [Decimal(text(totals, f"i:{tag}")) for tag in ("TaxExclusiveAmount", "TaxInclusiveAmount")] == [
            document.net_total,
            document.gross_total,
        ]
        assert Decimal(text(totals, "i:PayableAmount")) == document.gross_total
        # and the lines add up to them: net, VAT and gross
        lines = "i:InvoiceLines/i:InvoiceLine/i:"
        assert amounts(root, lines + "LineExtensionAmount") == document.net_total
        assert amounts(root, lines + "LineExtensionTaxAmount") == document.vat_total
        assert amounts(root, lines + "LineExtensionAmountTaxInclusive") == document.gross_total


def test_each_rate_s_lines_add_up_to_the_rate_s_vat() -> None:
    """Rounded line by line, 3 × 33.33 at 21 % is 3 × 7.00 = 21.00 here but need not be: the
    last line takes what rounding leaves, so each rate's lines give the recapitulation."""
    shares = line_vat(LINES, {("S", Decimal(21)): Decimal("21.00"), ("S", Decimal(12)): Decimal("5.99")})
    assert shares == [Decimal("0.00"), Decimal("7.00"), Decimal("7.00"), Decimal("7.00"), Decimal("5.99")]
    odd = [line("time", "a", "1", "hour", "0.05", "0.05", 21), line("time", "b", "1", "hour", "0.05", "0.05", 21)]
    assert line_vat(odd, {("S", Decimal(21)): Decimal("0.02")}) == [Decimal("0.01"), Decimal("0.01")]
    assert line_vat(odd, {("S", Decimal(21)): Decimal("0.03")}) == [Decimal("0.01"), Decimal("0.02")]


def test_each_line_with_its_quantity_prices_and_rate() -> None:
    def written(element: ET.Element) -> tuple[str, ...]:
        return tuple(
            text(element, f"i:{p}")
            for p in (
                "ID",
                "InvoicedQuantity",
                "LineExtensionAmount",
                "LineExtensionTaxAmount",
                "UnitPrice",
                "UnitPriceTaxInclusive",
                "ClassifiedTaxCategory/i:Percent",
                "ClassifiedTaxCategory/i:VATCalculationMethod",
                "Item/i:Description",
                "Item/i:SellersItemIdentification/i:ID",
            )
        )

    rows = [written(e) for e in read(CZECH).findall("i:InvoiceLines/i:InvoiceLine", NS)]
    assert rows[0] == ("1", "1", "0.00", "0.00", "0", "0", "21", "0", "Repair", "repair")  # the prepaid hour
    assert rows[4] == ("5", "2", "49.90", "5.99", "24.95", "27.944", "12", "0", "Filter", "filter")


def test_the_payment_is_a_transfer_with_the_czech_account_and_variable_symbol() -> None:
    details = read(CZECH).find("i:PaymentMeans/i:Payment/i:Details", NS)
    assert details is not None
    assert [text(details, f"i:{tag}") for tag in ("PaymentDueDate", "ID", "BankCode", "IBAN", "VariableSymbol")] == [
        "2026-12-07",
        "19-2000145399",
        "0800",
        "CZ6508000000192000145399",
        "2026000101",
    ]
    assert text(read(CZECH), "i:PaymentMeans/i:Payment/i:PaymentMeansCode") == "42"
    without_account = replace(CZECH, seller=replace(SELLER, bank_account=""))
    assert read(without_account).find("i:PaymentMeans", NS) is None


def test_a_reverse_charged_invoice_says_so() -> None:
    root = read(REVERSE_CHARGED)
    assert "Reverse charge" in text(root, "i:Note")
    assert text(root, "i:InvoiceLines/i:InvoiceLine/i:ClassifiedTaxCategory/i:VATApplicable") == "false"
    assert "Reverse charge" in text(root, "i:InvoiceLines/i:InvoiceLine/i:VATNote")
    assert text(root, "i:TaxTotal/i:TaxSubTotal/i:TaxCategory/i:VATApplicable") == "false"
    assert text(root, "i:AccountingCustomerParty/i:Party/i:PartyTaxScheme/i:CompanyID") == "DE136695976"
    assert text(root, "i:AccountingCustomerParty/i:Party/i:PartyIdentification/i:ID") == ""  # no IČO abroad
    assert text(root, "i:LocalCurrencyCode") == "EUR"


def test_a_credit_note_is_a_dobropis_referring_to_its_invoice() -> None:
    root = read(CREDIT_NOTE)
    assert [text(root, f"i:{tag}") for tag in ("DocumentType", "ID", "TaxPointDate")] == [
        "2",
        "DB/2026/000003",
        "2026-11-30",
    ]
    assert text(root, "i:Note") == "FV/2026/000101: Filtry vráceny"
    original = root.find("i:OriginalDocumentReferences/i:OriginalDocumentReference", NS)
    assert original is not None
    assert [text(original, f"i:{tag}") for tag in ("ID", "IssueDate", "UUID")] == [
        "FV/2026/000101",
        "2026-11-23",
        str(INVOICE_ID).upper(),
    ]
    assert root.find("i:PaymentMeans", NS) is None
    assert Decimal(text(root, "i:LegalMonetaryTotal/i:PayableAmount")) == Decimal("55.89")  # positive: a credit


def test_the_same_event_gives_the_same_bytes() -> None:
    assert isdoc_invoice(CZECH) == isdoc_invoice(replace(CZECH))


def test_only_a_czech_seller_s_documents_get_one() -> None:
    assert has_isdoc(CZECH) and has_isdoc(CREDIT_NOTE)
    assert not has_isdoc(INVOICE)  # a Polish seller


@pytest.mark.parametrize(
    ("street", "split"),
    [
        ("Vinohradská 1511/230", ("Vinohradská", "1511/230")),
        ("Údolní 12", ("Údolní", "12")),
        ("Na Příkopě 3a", ("Na Příkopě", "3a")),
        ("Karlovo náměstí", ("Karlovo náměstí", "")),
    ],
)
def test_the_building_number_is_kept_apart(street: str, split: tuple[str, str]) -> None:
    assert street_and_number(street) == split


def test_the_ico_is_the_czech_company_s_vat_id_without_cz() -> None:
    assert company_number(SELLER) == "27082440"
    assert company_number(replace(SELLER, vat_id="CZ7103192745")) == ""  # a person's DIČ is no IČO
    assert company_number(GERMAN_BUSINESS) == ""


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_the_documents_pass_the_isdoc_schema(tmp_path: Path) -> None:
    files = []
    for name, document in CASES.items():
        path = tmp_path / f"{name}.isdoc"
        path.write_bytes(isdoc_invoice(document))
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), "--profile", "isdoc", "--json", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(result.stdout)
    assert [(r["syntax"], r["valid"], r["findings"]) for r in reports] == [("ISDOC-6.0.2", True, [])] * 3
