"""The invoice as an EN 16931 e-invoice: UBL 2.1, from the InvoiceIssued event alone.

The same amounts as the PDF, rounded once by the pricing (line nets, VAT per category and
rate), so BR-CO-10 (sum of lines), BR-S-08/09 (VAT per rate) and BR-CO-15 (total with VAT)
hold by construction. Reverse-charged lines are category AE with the exemption code
VATEX-EU-AE (BR-AE-10); zero-rated ones are Z.

The seller's country picks the specification (BT-24): a German seller's is XRechnung 3.0
(KoSIT's rules: business process BT-23, both electronic addresses, the seller's contact
with a phone), a Romanian seller's CIUS-RO, anyone else's plain EN 16931.
"""

from __future__ import annotations

from decimal import Decimal
from xml.etree import ElementTree as ET

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, contact_of
from invoicer import romania

CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS = {
    "": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
ET.register_namespace("cn", CREDIT_NOTE_NS)

# UN/ECE Recommendation 20 unit codes (BT-130)
UNIT_CODES = {"hour": "HUR", "started_hour": "HUR", "quarter_hour": "C62", "piece": "H87", "flat": "LS", "visit": "C62"}
EN16931 = "urn:cen.eu:en16931:2017"
XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
CIUS_RO = "urn:cen.eu:en16931:2017#compliant#urn:efactura.mfinante.ro:CIUS-RO:1.0.1"
SPECIFICATIONS = {"DE": XRECHNUNG, "RO": CIUS_RO}  # by the seller's country; EN 16931 elsewhere
CLEARING = "97"  # UNTDID 4461: a credit note is set off between the parties, not paid to an account
PEPPOL_BILLING = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"  # BT-23, the business process
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"


def _q(tag: str) -> str:
    prefix, _, name = tag.rpartition(":")
    return f"{{{NS[prefix]}}}{name}"


def _add(parent: ET.Element, tag: str, text: object = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag), attributes)
    if text is not None:
        element.text = str(text)
    return element


def _amount(parent: ET.Element, tag: str, value: Decimal, currency: str) -> None:
    _add(parent, tag, f"{value:.2f}", currencyID=currency)


def _address(parent: ET.Element, address: Address | None, cius_ro: bool = False) -> None:
    postal = _add(parent, "cac:PostalAddress")
    if address is not None:
        _add(postal, "cbc:StreetName", address.street)
        _add(postal, "cbc:CityName", romania.city(address) if cius_ro else address.city)
        _add(postal, "cbc:PostalZone", address.postal_code)
        if cius_ro and romania.county(address):  # BR-RO-110/111: a Romanian address's county
            _add(postal, "cbc:CountrySubentity", romania.county(address))
    _add(_add(postal, "cac:Country"), "cbc:IdentificationCode", address.country if address else "")


def specification(document: InvoiceIssued | CreditNoteIssued) -> str:
    """BT-24: the rules the document follows, by the seller's country."""
    country = document.seller.address.country if document.seller.address else ""
    return SPECIFICATIONS.get(country, EN16931)


def buyer_reference(document: InvoiceIssued | CreditNoteIssued) -> str:
    """BT-10: what the buyer routes the invoice by (a German public buyer's Leitweg-ID), kept
    on the customer; else the job's id (the invoice's, on a credit note)."""
    reference = contact_of(document.buyer).reference
    if reference:
        return reference
    return str(document.invoice_id if isinstance(document, CreditNoteIssued) else document.job_id)


def electronic_address(party: Party) -> tuple[str, str]:
    """BT-34/BT-49 and its EAS scheme: the party's own, or else its email (EM); ("", "") if neither."""
    contact = contact_of(party)
    if contact.electronic_address:
        return contact.electronic_address, contact.electronic_address_scheme or "EM"
    return (party.email, "EM") if party.email else ("", "")


def _party(parent: ET.Element, role: str, party: Party, cius_ro: bool = False) -> None:
    element = _add(_add(parent, role), "cac:Party")
    address, scheme = electronic_address(party)
    if address:
        _add(element, "cbc:EndpointID", address, schemeID=scheme)
    _address(element, party.address, cius_ro)
    if party.vat_id:
        tax = _add(element, "cac:PartyTaxScheme")
        _add(tax, "cbc:CompanyID", party.vat_id)
        _add(_add(tax, "cac:TaxScheme"), "cbc:ID", "VAT")
    legal = _add(element, "cac:PartyLegalEntity")
    _add(legal, "cbc:RegistrationName", party.name)
    if cius_ro and role == "cac:AccountingCustomerParty" and not party.vat_id:
        _add(legal, "cbc:CompanyID", romania.CONSUMER_WITHOUT_CNP)  # BR-RO-120: a consumer without a CNP
    contact = contact_of(party)
    if party.email or contact.name or contact.phone:
        point = _add(element, "cac:Contact")
        if contact.name:
            _add(point, "cbc:Name", contact.name)
        if contact.phone:
            _add(point, "cbc:Telephone", contact.phone)
        if party.email:
            _add(point, "cbc:ElectronicMail", party.email)


def _category(parent: ET.Element, tag: str, category: str, rate: Decimal, with_reason: bool = False) -> None:
    element = _add(parent, tag)
    _add(element, "cbc:ID", category)
    _add(element, "cbc:Percent", plain_number(rate))
    if with_reason and category == "AE":
        _add(element, "cbc:TaxExemptionReasonCode", "VATEX-EU-AE")
        _add(element, "cbc:TaxExemptionReason", "Reverse charge")
    _add(_add(element, "cac:TaxScheme"), "cbc:ID", "VAT")


def plain_number(value: Decimal) -> str:
    """A quantity, rate or price as XML wants it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def _line(parent: ET.Element, number: int, line: InvoiceLine, currency: str, credit: bool = False) -> None:
    element = _add(parent, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
    _add(element, "cbc:ID", number)
    _add(
        element,
        "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
        plain_number(line.quantity),
        unitCode=UNIT_CODES.get(line.unit, "C62"),
    )
    _amount(element, "cbc:LineExtensionAmount", line.net, currency)
    item = _add(element, "cac:Item")
    _add(item, "cbc:Name", line.description or line.code)
    _add(_add(item, "cac:SellersItemIdentification"), "cbc:ID", line.code)
    _category(item, "cac:ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    _add(_add(element, "cac:Price"), "cbc:PriceAmount", plain_number(line.unit_price), currencyID=currency)


def ubl_invoice(invoice: InvoiceIssued | CreditNoteIssued) -> bytes:
    """The invoice, or the credit note, as UBL 2.1 XML (EN 16931 core)."""
    credit = isinstance(invoice, CreditNoteIssued)
    currency = invoice.currency
    root = ET.Element(f"{{{CREDIT_NOTE_NS}}}CreditNote" if credit else _q(":Invoice"))
    _add(root, "cbc:CustomizationID", specification(invoice))
    _add(root, "cbc:ProfileID", PEPPOL_BILLING)
    _add(root, "cbc:ID", invoice.number)
    _add(root, "cbc:IssueDate", invoice.issue_date.isoformat())
    if isinstance(invoice, InvoiceIssued):
        _add(root, "cbc:DueDate", invoice.due_date.isoformat())
    _add(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", "381" if credit else "380")
    if isinstance(invoice, CreditNoteIssued):
        _add(root, "cbc:Note", f"Credit note for {invoice.invoice_number}: {invoice.reason}")
    if invoice.reverse_charge:
        _add(root, "cbc:Note", REVERSE_CHARGE_NOTE)
    _add(root, "cbc:DocumentCurrencyCode", currency)
    # CIUS-RO accounts VAT in lei (BR-RO-030, BT-6), its total in lei too (BR-53, BT-111). The
    # event holds no exchange rate, so only a total of nothing (reverse charge, zero rate) can
    # be written for an invoice in another currency: a rate would have to be on the event.
    lei_vat = specification(invoice) == CIUS_RO and currency != "RON" and invoice.vat_total == 0
    if lei_vat:
        _add(root, "cbc:TaxCurrencyCode", "RON")
    _add(root, "cbc:BuyerReference", buyer_reference(invoice))  # BT-10
    if isinstance(invoice, CreditNoteIssued):
        reference = _add(_add(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _add(reference, "cbc:ID", invoice.invoice_number)
        _add(reference, "cbc:IssueDate", invoice.invoice_issue_date.isoformat())
    cius_ro = specification(invoice) == CIUS_RO
    _party(root, "cac:AccountingSupplierParty", invoice.seller, cius_ro)
    _party(root, "cac:AccountingCustomerParty", invoice.buyer, cius_ro)
    if isinstance(invoice, InvoiceIssued):
        delivery = _add(root, "cac:Delivery")
        _add(delivery, "cbc:ActualDeliveryDate", invoice.supply_date.isoformat())
        if invoice.seller.bank_account:  # a credit transfer needs the account it goes to (BR-61)
            means = _add(root, "cac:PaymentMeans")
            _add(means, "cbc:PaymentMeansCode", "30")
            _add(means, "cbc:PaymentID", invoice.payment_reference)
            _add(_add(means, "cac:PayeeFinancialAccount"), "cbc:ID", invoice.seller.bank_account.replace(" ", ""))
    elif specification(invoice) == XRECHNUNG:  # BR-DE-1 wants payment instructions on a credit note too
        means = _add(root, "cac:PaymentMeans")
        _add(means, "cbc:PaymentMeansCode", CLEARING, name="Clearing between partners")
    tax_total = _add(root, "cac:TaxTotal")
    _amount(tax_total, "cbc:TaxAmount", invoice.vat_total, currency)
    for subtotal in invoice.vat:
        element = _add(tax_total, "cac:TaxSubtotal")
        _amount(element, "cbc:TaxableAmount", subtotal.taxable, currency)
        _amount(element, "cbc:TaxAmount", subtotal.vat, currency)
        _category(element, "cac:TaxCategory", subtotal.category, subtotal.rate, with_reason=True)
    if lei_vat:
        _amount(_add(root, "cac:TaxTotal"), "cbc:TaxAmount", invoice.vat_total, "RON")
    totals = _add(root, "cac:LegalMonetaryTotal")
    _amount(totals, "cbc:LineExtensionAmount", invoice.net_total, currency)
    _amount(totals, "cbc:TaxExclusiveAmount", invoice.net_total, currency)
    _amount(totals, "cbc:TaxInclusiveAmount", invoice.gross_total, currency)
    _amount(totals, "cbc:PayableAmount", invoice.gross_total, currency)
    for number, line in enumerate(invoice.lines, start=1):
        _line(root, number, line, currency, credit)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
