"""Factur-X (EN 16931 profile): the invoice PDF as PDF/A-3 with its CII XML inside.

The CII XML (UN/CEFACT Cross Industry Invoice D16B) carries the same amounts as the UBL and
the PDF, from the InvoiceIssued event alone. The PDF from xhtml2pdf (fonts embedded, DejaVu
only) gets an sRGB output intent with pikepdf; the factur-x package then writes the XMP
(PDF/A-3 identification and the Factur-X extension schema) and attaches the XML as
``factur-x.xml`` with the Data relationship. A valid German B2B e-invoice, and a PDF any
person can read.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, contact_of
from invoicer.einvoice import (
    CLEARING,
    EN16931,
    PEPPOL_BILLING,
    UNIT_CODES,
    XRECHNUNG,
    buyer_reference,
    electronic_address,
    plain_number,
    specification,
)

if TYPE_CHECKING:
    import pikepdf

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


def _add(parent: ET.Element, tag: str, text: object = None, **attributes: str) -> ET.Element:
    prefix, _, name = tag.partition(":")
    element = ET.SubElement(parent, f"{{{NS[prefix]}}}{name}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _day(parent: ET.Element, tag: str, day: date) -> None:
    _add(_add(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _address(parent: ET.Element, address: Address | None) -> None:
    element = _add(parent, "ram:PostalTradeAddress")
    if address is not None:
        _add(element, "ram:PostcodeCode", address.postal_code)
        _add(element, "ram:LineOne", address.street)
        _add(element, "ram:CityName", address.city)
    _add(element, "ram:CountryID", address.country if address else "")


def _party(parent: ET.Element, tag: str, party: Party) -> None:
    element = _add(parent, tag)
    _add(element, "ram:Name", party.name)
    contact = contact_of(party)
    if contact.name or contact.phone:  # BG-6, the seller's contact (XRechnung's BR-DE-2)
        point = _add(element, "ram:DefinedTradeContact")
        if contact.name:
            _add(point, "ram:PersonName", contact.name)
        if contact.phone:
            _add(_add(point, "ram:TelephoneUniversalCommunication"), "ram:CompleteNumber", contact.phone)
        if party.email:
            _add(_add(point, "ram:EmailURIUniversalCommunication"), "ram:URIID", party.email)
    _address(element, party.address)
    address, scheme = electronic_address(party)
    if address:
        _add(_add(element, "ram:URIUniversalCommunication"), "ram:URIID", address, schemeID=scheme)
    if party.vat_id:
        _add(_add(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def _line(parent: ET.Element, number: int, line: InvoiceLine) -> None:
    item = _add(parent, "ram:IncludedSupplyChainTradeLineItem")
    _add(_add(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", number)
    product = _add(item, "ram:SpecifiedTradeProduct")
    _add(product, "ram:SellerAssignedID", line.code)
    _add(product, "ram:Name", line.description or line.code)
    price = _add(_add(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _add(price, "ram:ChargeAmount", plain_number(line.unit_price))
    _add(
        _add(item, "ram:SpecifiedLineTradeDelivery"),
        "ram:BilledQuantity",
        plain_number(line.quantity),
        unitCode=UNIT_CODES.get(line.unit, "C62"),
    )
    settlement = _add(item, "ram:SpecifiedLineTradeSettlement")
    tax = _add(settlement, "ram:ApplicableTradeTax")
    _add(tax, "ram:TypeCode", "VAT")
    _add(tax, "ram:CategoryCode", line.vat_category)
    _add(tax, "ram:RateApplicablePercent", plain_number(line.vat_rate))
    _add(_add(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount", _money(line.net))


def cii_specification(invoice: InvoiceIssued | CreditNoteIssued) -> str:
    """The CII's BT-24: XRechnung for a German seller, else EN 16931 (CIUS-RO is UBL only)."""
    return XRECHNUNG if specification(invoice) == XRECHNUNG else EN16931


def cii_invoice(invoice: InvoiceIssued | CreditNoteIssued) -> bytes:
    """The invoice (or credit note) as CII XML, EN 16931 profile (the XML of a Factur-X)."""
    root = ET.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice")
    context = _add(root, "rsm:ExchangedDocumentContext")
    _add(_add(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID", PEPPOL_BILLING)
    _add(_add(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", cii_specification(invoice))
    document = _add(root, "rsm:ExchangedDocument")
    _add(document, "ram:ID", invoice.number)
    _add(document, "ram:TypeCode", "381" if isinstance(invoice, CreditNoteIssued) else "380")
    _day(document, "ram:IssueDateTime", invoice.issue_date)
    if isinstance(invoice, CreditNoteIssued):
        _add(
            _add(document, "ram:IncludedNote"),
            "ram:Content",
            f"Credit note for {invoice.invoice_number}: {invoice.reason}",
        )
    if invoice.reverse_charge:
        _add(_add(document, "ram:IncludedNote"), "ram:Content", "Reverse charge (Art. 196 Directive 2006/112/EC)")
    transaction = _add(root, "rsm:SupplyChainTradeTransaction")
    for number, line in enumerate(invoice.lines, start=1):
        _line(transaction, number, line)
    agreement = _add(transaction, "ram:ApplicableHeaderTradeAgreement")
    _add(agreement, "ram:BuyerReference", buyer_reference(invoice))  # BT-10
    _party(agreement, "ram:SellerTradeParty", invoice.seller)
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer)
    delivery = _add(transaction, "ram:ApplicableHeaderTradeDelivery")
    _day(
        _add(delivery, "ram:ActualDeliverySupplyChainEvent"),
        "ram:OccurrenceDateTime",
        invoice.invoice_issue_date if isinstance(invoice, CreditNoteIssued) else invoice.supply_date,
    )
    settlement = _add(transaction, "ram:ApplicableHeaderTradeSettlement")
    if isinstance(invoice, InvoiceIssued):
        _add(settlement, "ram:PaymentReference", invoice.payment_reference)
    _add(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    if invoice.seller.bank_account:  # a credit transfer needs the account it goes to (BR-61, CII-SR-470)
        means = _add(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _add(means, "ram:TypeCode", "30")
        _add(
            _add(means, "ram:PayeePartyCreditorFinancialAccount"),
            "ram:IBANID",
            invoice.seller.bank_account.replace(" ", ""),
        )
    elif isinstance(invoice, CreditNoteIssued) and specification(invoice) == XRECHNUNG:
        # BR-DE-1: payment instructions, even on a credit note
        _add(_add(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"), "ram:TypeCode", CLEARING)
    for subtotal in invoice.vat:
        tax = _add(settlement, "ram:ApplicableTradeTax")
        _add(tax, "ram:CalculatedAmount", _money(subtotal.vat))
        _add(tax, "ram:TypeCode", "VAT")
        if subtotal.category == "AE":
            _add(tax, "ram:ExemptionReason", "Reverse charge")
        _add(tax, "ram:BasisAmount", _money(subtotal.taxable))
        _add(tax, "ram:CategoryCode", subtotal.category)
        if subtotal.category == "AE":
            _add(tax, "ram:ExemptionReasonCode", "VATEX-EU-AE")
        _add(tax, "ram:RateApplicablePercent", plain_number(subtotal.rate))
    terms = _add(settlement, "ram:SpecifiedTradePaymentTerms")
    if isinstance(invoice, CreditNoteIssued):
        _add(terms, "ram:Description", f"Credited against invoice {invoice.invoice_number}")
    else:
        _day(terms, "ram:DueDateDateTime", invoice.due_date)
    totals = _add(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _add(totals, "ram:LineTotalAmount", _money(invoice.net_total))
    _add(totals, "ram:TaxBasisTotalAmount", _money(invoice.net_total))
    _add(totals, "ram:TaxTotalAmount", _money(invoice.vat_total), currencyID=invoice.currency)
    _add(totals, "ram:GrandTotalAmount", _money(invoice.gross_total))
    _add(totals, "ram:DuePayableAmount", _money(invoice.gross_total))
    if isinstance(invoice, CreditNoteIssued):
        reference = _add(settlement, "ram:InvoiceReferencedDocument")
        _add(reference, "ram:IssuerAssignedID", invoice.invoice_number)
        _add(
            _add(reference, "ram:FormattedIssueDateTime"),
            "qdt:DateTimeString",
            invoice.invoice_issue_date.strftime("%Y%m%d"),
            format="102",
        )
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _only_embedded_fonts(document: pikepdf.Pdf) -> None:
    """reportlab opens every page with its base font, Helvetica, which is never embedded (PDF/A
    forbids that) though the invoice draws no glyph in it: point that resource at the page's
    embedded DejaVu instead."""
    for page in document.pages:
        resources = page.obj.get("/Resources")
        fonts = resources.get("/Font") if resources is not None else None
        if fonts is None:
            continue
        embedded = [f for f in fonts.values() if "/FontDescriptor" in f or "/DescendantFonts" in f]
        for name, font in list(fonts.items()):
            if "/FontDescriptor" not in font and "/DescendantFonts" not in font and embedded:
                fonts[name] = embedded[0]


def facturx_pdf(pdf: bytes, invoice: InvoiceIssued | CreditNoteIssued) -> bytes:
    """The PDF as a Factur-X: PDF/A-3 with an sRGB output intent and the CII XML attached."""
    import facturx
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as document:
        _only_embedded_fonts(document)
        icc = document.make_stream(_srgb_profile())
        icc["/N"] = 3
        document.Root.OutputIntents = pikepdf.Array(
            [
                pikepdf.Dictionary(
                    Type=pikepdf.Name.OutputIntent,
                    S=pikepdf.Name.GTS_PDFA1,
                    OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
                    DestOutputProfile=icc,
                )
            ]
        )
        prepared = io.BytesIO()
        document.save(prepared)
    what = "credit note" if isinstance(invoice, CreditNoteIssued) else "invoice"
    metadata = {
        "author": invoice.seller.name,
        "keywords": f"Factur-X, {what}",
        "title": f"{invoice.seller.name}: {what} {invoice.number}",
        "subject": f"{what.capitalize()} {invoice.number} dated {invoice.issue_date} issued by {invoice.seller.name}",
    }
    made = facturx.generate_from_binary(
        prepared.getvalue(),
        cii_invoice(invoice),
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata=metadata,
        lang=invoice.language,
    )
    return agreeing_metadata(made, metadata["keywords"], CONFORMANCE_LEVELS[cii_specification(invoice)])


PRODUCER = "jobstream (xhtml2pdf, pikepdf, factur-x)"
CONFORMANCE_LEVELS = {EN16931: "EN 16931", XRECHNUNG: "XRECHNUNG"}  # BT-24 -> fx:ConformanceLevel
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PDF_NS = "http://ns.adobe.com/pdf/1.3/"
FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"


def agreeing_metadata(pdf: bytes, keywords: str, level: str) -> bytes:
    """The document information dictionary and the XMP saying the same, as PDF/A-3 wants:
    one Producer in both (the factur-x package leaves xhtml2pdf's in the dictionary and its
    own in the XMP), the Keywords in both, ``rdf:about`` on every ``rdf:Description``, and
    fx:ConformanceLevel the embedded XML's profile (XRECHNUNG for XRechnung's BT-24)."""
    import pikepdf
    from lxml import etree

    with pikepdf.open(io.BytesIO(pdf)) as document:
        xmp = etree.fromstring(document.Root.Metadata.read_bytes())
        descriptions = xmp.findall(f".//{{{RDF}}}Description")
        for description in descriptions:
            description.set(f"{{{RDF}}}about", "")
        producer = xmp.find(f".//{{{PDF_NS}}}Producer")
        if producer is None:
            producer = etree.SubElement(descriptions[0], f"{{{PDF_NS}}}Producer")
        producer.text = PRODUCER
        written = producer.getparent()
        assert written is not None
        etree.SubElement(written, f"{{{PDF_NS}}}Keywords").text = keywords
        conformance = xmp.find(f".//{{{FX_NS}}}ConformanceLevel")
        if conformance is not None:
            conformance.text = level
        packet = (
            b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            + etree.tostring(xmp, encoding="UTF-8")
            + b'\n<?xpacket end="w"?>'
        )
        stream = document.make_stream(packet)
        stream.Type, stream.Subtype = pikepdf.Name.Metadata, pikepdf.Name.XML
        document.Root.Metadata = stream
        document.docinfo[pikepdf.Name.Producer] = PRODUCER
        document.docinfo[pikepdf.Name.Keywords] = keywords
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
