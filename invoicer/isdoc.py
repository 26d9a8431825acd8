"""The Czech seller's invoice and credit note as ISDOC 6.0.2, the format Czech accounting
software imports, from the InvoiceIssued or CreditNoteIssued event alone.

The amounts are the document's own, not computed again: each VAT rate's taxable amount and
VAT (the recapitulation, TaxTotal/TaxSubTotal) and the totals are the event's to the cent.
A line's VAT is its rate's VAT shared out over the rate's lines, the last one taking what
rounding leaves, so the lines add up to the recapitulation too. A credit note is an
"opravný daňový doklad (dobropis)", DocumentType 2, with positive amounts and a reference to
the invoice it corrects.

Amounts are in the document's currency: the event carries no exchange rate, so a Czech
seller's invoice in euros is written with LocalCurrencyCode EUR and rate 1.
"""

from __future__ import annotations

import re
from decimal import Decimal
from xml.etree import ElementTree as ET

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party
from invoicer.einvoice import REVERSE_CHARGE_NOTE, UNIT_CODES, plain_number
from invoicer.pricing import money, variable_symbol

NS = "http://isdoc.cz/namespace/2013"
VERSION = "6.0.2"
MEDIA_TYPE = "application/x-isdoc+xml"  # no registered type; the .isdoc name is what importers read
ISSUING_SYSTEM = "jobstream"
INVOICE, CREDIT_NOTE = "1", "2"  # DocumentType: faktura - daňový doklad; opravný daňový doklad (dobropis)
BANK_TRANSFER = "42"  # PaymentMeansCode: bezhotovostní převod na účet
FROM_THE_BOTTOM = "0"  # VATCalculationMethod: VAT computed from the net amount
ET.register_namespace("", NS)

_BUILDING = re.compile(r"^(?P<street>.*\S)\s+(?P<number>\d[\w/-]*)$")
_CZ_IBAN = re.compile(r"^CZ\d{2}(?P<bank>\d{4})(?P<prefix>\d{6})(?P<number>\d{10})$")


def _add(parent: ET.Element, tag: str, text: object = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NS}}}{tag}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _amount(parent: ET.Element, tag: str, value: Decimal) -> None:
    _add(parent, tag, f"{value:.2f}")


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def street_and_number(street: str) -> tuple[str, str]:
    """ISDOC keeps the building number apart: "Údolní 12" is ("Údolní", "12"); a street
    without a trailing number keeps it all."""
    found = _BUILDING.match(street.strip())
    return (found["street"], found["number"]) if found else (street.strip(), "")


def company_number(party: Party) -> str:
    """The IČO (PartyIdentification/ID): a Czech company's VAT id is CZ and its eight-digit
    IČO; anyone else's identification is left empty, as ISDOC allows."""
    vat_id = party.vat_id.replace(" ", "").upper()
    digits = vat_id.removeprefix("CZ")
    return digits if vat_id.startswith("CZ") and len(digits) == 8 and digits.isdigit() else ""


def _address(parent: ET.Element, address: Address | None) -> None:
    postal = _add(parent, "PostalAddress")
    street, number = street_and_number(address.street) if address else ("", "")
    _add(postal, "StreetName", street)
    _add(postal, "BuildingNumber", number)
    _add(postal, "CityName", address.city if address else "")
    _add(postal, "PostalZone", address.postal_code if address else "")
    country = _add(postal, "Country")
    _add(country, "IdentificationCode", address.country if address else "")
    _add(country, "Name", "")


def _party(parent: ET.Element, role: str, party: Party) -> None:
    element = _add(_add(parent, role), "Party")
    _add(_add(element, "PartyIdentification"), "ID", company_number(party))
    _add(_add(element, "PartyName"), "Name", party.name)
    _address(element, party.address)
    if party.vat_id:
        tax = _add(element, "PartyTaxScheme")
        _add(tax, "CompanyID", party.vat_id)
        _add(tax, "TaxScheme", "VAT")
    if party.email:
        _add(_add(element, "Contact"), "ElectronicMail", party.email)


def line_vat(lines: list[InvoiceLine], vat: dict[tuple[str, Decimal], Decimal]) -> list[Decimal]:
    """Each line's VAT: its net at its rate, rounded, and the rounding left over given to the
    rate's last line, so that each rate's lines add up to the rate's VAT in the document."""
    shares = [money(line.net * line.vat_rate / 100) for line in lines]
    last: dict[tuple[str, Decimal], int] = {}
    for index, line in enumerate(lines):
        last[(line.vat_category, line.vat_rate)] = index
    for key, index in last.items():
        written = sum(
            (s for s, l in zip(shares, lines, strict=True) if (l.vat_category, l.vat_rate) == key), Decimal(0)
        )
        shares[index] += vat.get(key, written) - written
    return shares


def _line(parent: ET.Element, number: int, line: InvoiceLine, vat: Decimal) -> None:
    element = _add(parent, "InvoiceLine")
    _add(element, "ID", number)
    _add(element, "InvoicedQuantity", plain_number(line.quantity), unitCode=UNIT_CODES.get(line.unit, "C62"))
    _amount(element, "LineExtensionAmount", line.net)
    _amount(element, "LineExtensionAmountTaxInclusive", line.net + vat)
    _amount(element, "LineExtensionTaxAmount", vat)
    _add(element, "UnitPrice", plain_number(line.unit_price))
    _add(element, "UnitPriceTaxInclusive", plain_number(line.unit_price * (1 + line.vat_rate / 100)))
    category = _add(element, "ClassifiedTaxCategory")
    _add(category, "Percent", plain_number(line.vat_rate))
    _add(category, "VATCalculationMethod", FROM_THE_BOTTOM)
    _add(category, "VATApplicable", _boolean(line.vat_category == "S"))
    if line.vat_category == "AE":
        _add(element, "VATNote", REVERSE_CHARGE_NOTE)
    item = _add(element, "Item")
    _add(item, "Description", line.description or line.code)
    _add(_add(item, "SellersItemIdentification"), "ID", line.code)


def _bank_account(parent: ET.Element, iban: str) -> None:
    """The BankAccount group: a Czech IBAN is also written as the account number and bank code
    Czech payers type; any other as the IBAN alone."""
    iban = iban.replace(" ", "").upper()
    found = _CZ_IBAN.match(iban)
    if found:
        prefix, number = found["prefix"].lstrip("0"), found["number"].lstrip("0") or "0"
        _add(parent, "ID", f"{prefix}-{number}" if prefix else number)
        _add(parent, "BankCode", found["bank"])
    else:
        _add(parent, "ID", iban)
        _add(parent, "BankCode", "")
    _add(parent, "Name", "")
    _add(parent, "IBAN", iban)
    _add(parent, "BIC", "")


def isdoc_invoice(document: InvoiceIssued | CreditNoteIssued) -> bytes:
    """The invoice, or the credit note, as an ISDOC 6.0.2 Invoice document (UTF-8 XML)."""
    credit = isinstance(document, CreditNoteIssued)
    root = ET.Element(f"{{{NS}}}Invoice", {"version": VERSION})
    _add(root, "DocumentType", CREDIT_NOTE if credit else INVOICE)
    _add(root, "ID", document.number)
    _add(root, "UUID", str(document.id).upper())
    _add(root, "IssuingSystem", ISSUING_SYSTEM)
    _add(root, "IssueDate", document.issue_date.isoformat())
    taxed = document.issue_date if isinstance(document, CreditNoteIssued) else document.supply_date
    _add(root, "TaxPointDate", taxed.isoformat())
    _add(root, "VATApplicable", _boolean(bool(document.seller.vat_id)))
    _add(root, "ElectronicPossibilityAgreementReference", "")
    notes = [f"{document.invoice_number}: {document.reason}"] if isinstance(document, CreditNoteIssued) else []
    if document.reverse_charge:
        notes.append(REVERSE_CHARGE_NOTE)
    if notes:
        _add(root, "Note", " ".join(notes))
    _add(root, "LocalCurrencyCode", document.currency)
    _add(root, "CurrRate", "1")
    _add(root, "RefCurrRate", "1")
    _party(root, "AccountingSupplierParty", document.seller)
    _party(root, "AccountingCustomerParty", document.buyer)
    if isinstance(document, CreditNoteIssued):
        original = _add(_add(root, "OriginalDocumentReferences"), "OriginalDocumentReference")
        _add(original, "ID", document.invoice_number)
        _add(original, "IssueDate", document.invoice_issue_date.isoformat())
        _add(original, "UUID", str(document.invoice_id).upper())
    lines = _add(root, "InvoiceLines")
    by_rate = {(v.category, v.rate): v.vat for v in document.vat}
    for number, (line, vat) in enumerate(zip(document.lines, line_vat(document.lines, by_rate), strict=True), 1):
        _line(lines, number, line, vat)
    tax_total = _add(root, "TaxTotal")
    for subtotal in document.vat:
        element = _add(tax_total, "TaxSubTotal")
        gross = subtotal.taxable + subtotal.vat
        _amount(element, "TaxableAmount", subtotal.taxable)
        _amount(element, "TaxAmount", subtotal.vat)
        _amount(element, "TaxInclusiveAmount", gross)
        for claimed in ("AlreadyClaimedTaxableAmount", "AlreadyClaimedTaxAmount", "AlreadyClaimedTaxInclusiveAmount"):
            _amount(element, claimed, Decimal(0))
        _amount(element, "DifferenceTaxableAmount", subtotal.taxable)
        _amount(element, "DifferenceTaxAmount", subtotal.vat)
        _amount(element, "DifferenceTaxInclusiveAmount", gross)
        category = _add(element, "TaxCategory")
        _add(category, "Percent", plain_number(subtotal.rate))
        _add(category, "VATApplicable", _boolean(subtotal.category == "S"))
        _add(category, "LocalReverseChargeFlag", "false")  # cross-border reverse charge, not §92a
    _amount(tax_total, "TaxAmount", document.vat_total)
    totals = _add(root, "LegalMonetaryTotal")
    _amount(totals, "TaxExclusiveAmount", document.net_total)
    _amount(totals, "TaxInclusiveAmount", document.gross_total)
    _amount(totals, "AlreadyClaimedTaxExclusiveAmount", Decimal(0))
    _amount(totals, "AlreadyClaimedTaxInclusiveAmount", Decimal(0))
    _amount(totals, "DifferenceTaxExclusiveAmount", document.net_total)
    _amount(totals, "DifferenceTaxInclusiveAmount", document.gross_total)
    _amount(totals, "PaidDepositsAmount", Decimal(0))
    _amount(totals, "PayableAmount", document.gross_total)
    if isinstance(document, InvoiceIssued) and document.seller.bank_account:
        payment = _add(_add(root, "PaymentMeans"), "Payment")
        _amount(payment, "PaidAmount", document.gross_total)
        _add(payment, "PaymentMeansCode", BANK_TRANSFER)
        details = _add(payment, "Details")
        _add(details, "PaymentDueDate", document.due_date.isoformat())
        _bank_account(details, document.seller.bank_account)
        _add(details, "VariableSymbol", variable_symbol(document.number))
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def has_isdoc(document: InvoiceIssued | CreditNoteIssued) -> bool:
    """A Czech seller's invoices and credit notes get an ISDOC beside the PDF."""
    return document.seller.address is not None and document.seller.address.country == "CZ"
