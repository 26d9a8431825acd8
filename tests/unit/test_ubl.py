"""The invoice as UBL 2.1 (EN 16931), from the InvoiceIssued event alone: given an issued
invoice or credit note, then the XML's key elements say what the document says."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from msgspec.structs import replace

from events.contract import CreditNoteIssued, InvoiceIssued
from invoicer.einvoice import plain_number, ubl_invoice
from tests.unit.invoices import CREDIT_NOTE, INVOICE, INVOICE_ID, JOB_ID, REVERSE_CHARGED

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def xml(document: InvoiceIssued | CreditNoteIssued) -> ET.Element:
    data = ubl_invoice(document)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return ET.fromstring(data)


def text(element: ET.Element, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"no {path}"
    return found.text or ""


def texts(element: ET.Element, path: str) -> list[str]:
    return [e.text or "" for e in element.findall(path, NS)]


def attribute(element: ET.Element, path: str, name: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"no {path}"
    return found.get(name, "")


def amount(element: ET.Element, path: str) -> tuple[str, str]:
    """An amount and its currency."""
    found = element.find(path, NS)
    assert found is not None, f"no {path}"
    return found.text or "", found.get("currencyID", "")


def test_the_invoice_s_header() -> None:
    root = xml(INVOICE)
    assert root.tag == f"{{{INVOICE_NS}}}Invoice"
    assert [
        text(root, f"cbc:{tag}")
        for tag in (
            "CustomizationID",
            "ID",
            "IssueDate",
            "DueDate",
            "InvoiceTypeCode",
            "DocumentCurrencyCode",
            "BuyerReference",
        )
    ] == ["urn:cen.eu:en16931:2017", "FV/2026/000042", "2026-11-23", "2026-12-07", "380", "PLN", str(JOB_ID)]
    assert text(root, "cac:Delivery/cbc:ActualDeliveryDate") == "2026-11-20"
    assert root.find("cbc:Note", NS) is None  # nothing reverse-charged


def test_the_seller_and_the_buyer() -> None:
    root = xml(INVOICE)
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller is not None
    assert [
        text(seller, p)
        for p in (
            "cac:PostalAddress/cbc:StreetName",
            "cac:PostalAddress/cbc:CityName",
            "cac:PostalAddress/cbc:PostalZone",
            "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
            "cac:PartyTaxScheme/cbc:CompanyID",
            "cac:PartyTaxScheme/cac:TaxScheme/cbc:ID",
            "cac:PartyLegalEntity/cbc:RegistrationName",
            "cac:Contact/cbc:ElectronicMail",
        )
    ] == [
        "ul. Długa 1",
        "Kraków",
        "31-147",
        "PL",
        "PL5261040828",
        "VAT",
        "Instalacje Nowak sp. z o.o.",
        "faktury@nowak.example",
    ]
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert buyer is not None
    assert text(buyer, "cac:PartyLegalEntity/cbc:RegistrationName") == "Piekarnia Kowalski"
    assert text(buyer, "cac:PostalAddress/cbc:StreetName") == "ul. Mariacka 7"
    assert buyer.find("cac:PartyTaxScheme", NS) is None  # a buyer without a VAT id


def test_a_credit_transfer_names_the_account_and_the_reference() -> None:
    means = xml(INVOICE).find("cac:PaymentMeans", NS)
    assert means is not None
    assert [text(means, p) for p in ("cbc:PaymentMeansCode", "cbc:PaymentID", "cac:PayeeFinancialAccount/cbc:ID")] == [
        "30",
        "RF43FV2026000042",
        "PL61109010140000071219812874",
    ]  # the IBAN without its spaces
    without_account = replace(INVOICE, seller=replace(INVOICE.seller, bank_account=""))
    assert xml(without_account).find("cac:PaymentMeans", NS) is None


def test_the_vat_breakdown_and_the_totals() -> None:
    root = xml(INVOICE)
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == ("74.98", "PLN")
    subtotals = [
        (
            amount(s, "cbc:TaxableAmount")[0],
            amount(s, "cbc:TaxAmount")[0],
            text(s, "cac:TaxCategory/cbc:ID"),
            text(s, "cac:TaxCategory/cbc:Percent"),
        )
        for s in root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    ]
    assert subtotals == [("300.00", "69.00", "S", "23"), ("74.70", "5.98", "S", "8")]
    totals = root.find("cac:LegalMonetaryTotal", NS)
    assert totals is not None
    assert [
        amount(totals, f"cbc:{tag}")
        for tag in (
            "LineExtensionAmount",
            "TaxExclusiveAmount",
            "TaxInclusiveAmount",
            "PayableAmount",
        )
    ] == [("374.70", "PLN"), ("374.70", "PLN"), ("449.68", "PLN"), ("449.68", "PLN")]


def test_the_totals_are_the_sums_of_what_is_written() -> None:
    """BR-CO-10, BR-CO-14 and BR-CO-15, checked on the XML itself."""
    root = xml(INVOICE)
    lines = sum(Decimal(t) for t in texts(root, "cac:InvoiceLine/cbc:LineExtensionAmount"))
    vat = sum(Decimal(t) for t in texts(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount"))
    net = Decimal(text(root, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount"))
    assert lines == net
    assert vat == Decimal(text(root, "cac:TaxTotal/cbc:TaxAmount"))
    assert net + vat == Decimal(text(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"))


def test_each_line_with_its_quantity_unit_price_and_rate() -> None:
    def written(line: ET.Element) -> tuple[object, ...]:
        return (
            text(line, "cbc:ID"),
            text(line, "cbc:InvoicedQuantity"),
            attribute(line, "cbc:InvoicedQuantity", "unitCode"),
            amount(line, "cbc:LineExtensionAmount"),
            text(line, "cac:Item/cbc:Name"),
            text(line, "cac:Item/cac:SellersItemIdentification/cbc:ID"),
            text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID"),
            text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent"),
            amount(line, "cac:Price/cbc:PriceAmount"),
        )

    assert [written(line) for line in xml(INVOICE).findall("cac:InvoiceLine", NS)] == [
        ("1", "2", "HUR", ("240.00", "PLN"), "Naprawa", "repair", "S", "23", ("120", "PLN")),
        ("2", "1", "LS", ("60.00", "PLN"), "Dojazd", "callout", "S", "23", ("60", "PLN")),
        ("3", "3", "H87", ("74.70", "PLN"), "Filtr F7", "filter", "S", "8", ("24.9", "PLN")),
    ]


def test_a_reverse_charged_invoice_says_so_and_gives_the_exemption_reason() -> None:
    root = xml(REVERSE_CHARGED)
    assert texts(root, "cbc:Note") == [
        "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
    ]
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category is not None
    assert [
        text(category, p) for p in ("cbc:ID", "cbc:Percent", "cbc:TaxExemptionReasonCode", "cbc:TaxExemptionReason")
    ] == ["AE", "0", "VATEX-EU-AE", "Reverse charge"]
    assert text(root, "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID") == "CZ12345678"
    line_category = root.find("cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory", NS)
    assert line_category is not None and line_category.find("cbc:TaxExemptionReasonCode", NS) is None
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == ("0.00", "EUR")


def test_a_credit_note_refers_to_the_invoice_it_corrects() -> None:
    root = xml(CREDIT_NOTE)
    assert root.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    assert [text(root, f"cbc:{tag}") for tag in ("ID", "IssueDate", "CreditNoteTypeCode", "BuyerReference")] == [
        "FK/2026/000007",
        "2026-11-30",
        "381",
        str(INVOICE_ID),
    ]
    assert texts(root, "cbc:Note") == ["Credit note for FV/2026/000042: Filtry zwrócone"]
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert reference is not None
    assert (text(reference, "cbc:ID"), text(reference, "cbc:IssueDate")) == ("FV/2026/000042", "2026-11-23")
    # no due date, delivery or payment: it is paid back, not asked for
    for absent in ("cbc:DueDate", "cac:Delivery", "cac:PaymentMeans", "cac:InvoiceLine"):
        assert root.find(absent, NS) is None
    [line] = root.findall("cac:CreditNoteLine", NS)
    assert (text(line, "cbc:CreditedQuantity"), amount(line, "cbc:LineExtensionAmount")) == ("3", ("74.70", "PLN"))
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ("80.68", "PLN")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("24.90"), "24.9"),
        (Decimal("2.000"), "2"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.00"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("0.25"), "0.25"),
    ],
)
def test_numbers_are_written_plainly(value: Decimal, written: str) -> None:
    assert plain_number(value) == written


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the EN 16931 validator (../shared/tools/einvoice) is not here")
def test_the_documents_pass_the_official_en16931_rules(tmp_path: Path) -> None:
    files = []
    for name, document in (("invoice", INVOICE), ("reverse-charge", REVERSE_CHARGED), ("credit-note", CREDIT_NOTE)):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(ubl_invoice(document))
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), "--strict", "--quiet", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("VALID") == 3
