"""The invoice as a PDF: a jinja2 template rendered by xhtml2pdf, in the customer's language.

Everything printed comes from the InvoiceIssued event, so the same event renders the same
document at any later time. Numbers, dates and money are formatted by Babel for the
invoice's language; the embedded DejaVu Sans has the letters Helvetica lacks (ł, ř, ș).
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, ProformaIssued, VatSubtotal
from invoicer.pricing import variable_symbol

HERE = Path(__file__).parent
LOCALES = {"en": "en_IE", "pl": "pl_PL", "cs": "cs_CZ", "de": "de_DE", "ro": "ro_RO"}

LABELS: dict[str, dict[str, object]] = {
    "en": {
        "invoice": "Invoice",
        "job": "Job",
        "issue_date": "Issued",
        "supply_date": "Supplied",
        "due_date": "Due",
        "seller": "Seller",
        "buyer": "Buyer",
        "vat_id": "VAT ID",
        "item": "Item",
        "quantity": "Qty",
        "unit": "Unit",
        "unit_price": "Unit price",
        "vat": "VAT",
        "net": "Net",
        "vat_rate": "VAT rate",
        "taxable": "Taxable",
        "net_total": "Total without VAT",
        "vat_total": "VAT",
        "total": "Total due",
        "logged": "time logged:",
        "reverse_charge": "Reverse charge: VAT to be accounted for by the recipient "
        "(Article 196, Council Directive 2006/112/EC).",
        "credit_note": "Credit note",
        "proforma": "Proforma invoice",
        "proforma_note": "Not a tax document: please pay in advance of the work.",
        "refers_to": "Corrects invoice",
        "pay_to": "Pay to",
        "reference": "Payment reference",
        "variable_symbol": "Variable symbol",
        "generated": "issued by jobstream",
        "units": {
            "hour": "h",
            "started_hour": "started h",
            "quarter_hour": "¼ h",
            "piece": "pcs",
            "flat": "flat",
            "visit": "visits",
        },
    },
    "pl": {
        "invoice": "Faktura",
        "job": "Zlecenie",
        "issue_date": "Data wystawienia",
        "supply_date": "Data wykonania usługi",
        "due_date": "Termin płatności",
        "seller": "Sprzedawca",
        "buyer": "Nabywca",
        "vat_id": "NIP",
        "item": "Pozycja",
        "quantity": "Ilość",
        "unit": "J.m.",
        "unit_price": "Cena jedn. netto",
        "vat": "VAT",
        "net": "Wartość netto",
        "vat_rate": "Stawka VAT",
        "taxable": "Netto",
        "net_total": "Razem netto",
        "vat_total": "VAT",
        "total": "Do zapłaty",
        "logged": "czas pracy:",
        "reverse_charge": "Odwrotne obciążenie: podatek rozlicza nabywca (art. 196 dyrektywy 2006/112/WE).",
        "credit_note": "Faktura korygująca",
        "proforma": "Faktura proforma",
        "proforma_note": "Nie jest dokumentem księgowym: prosimy o przedpłatę.",
        "refers_to": "Koryguje fakturę",
        "pay_to": "Numer konta",
        "reference": "Tytuł przelewu",
        "variable_symbol": "Symbol zmienny",
        "generated": "wystawiono w jobstream",
        "units": {
            "hour": "godz.",
            "started_hour": "rozp. godz.",
            "quarter_hour": "¼ godz.",
            "piece": "szt.",
            "flat": "ryczałt",
            "visit": "dojazd",
        },
    },
    "cs": {
        "invoice": "Faktura",
        "job": "Zakázka",
        "issue_date": "Datum vystavení",
        "supply_date": "Datum zdanitelného plnění",
        "due_date": "Datum splatnosti",
        "seller": "Dodavatel",
        "buyer": "Odběratel",
        "vat_id": "DIČ",
        "item": "Položka",
        "quantity": "Množství",
        "unit": "MJ",
        "unit_price": "Cena za MJ",
        "vat": "DPH",
        "net": "Základ",
        "vat_rate": "Sazba DPH",
        "taxable": "Základ",
        "net_total": "Celkem bez DPH",
        "vat_total": "DPH",
        "total": "Celkem k úhradě",
        "logged": "odpracováno:",
        "reverse_charge": "Daň odvede zákazník (přenesení daňové povinnosti, čl. 196 směrnice 2006/112/ES).",
        "credit_note": "Opravný daňový doklad",
        "proforma": "Zálohová faktura (proforma)",
        "proforma_note": "Není daňový doklad: prosíme o úhradu předem.",
        "refers_to": "Opravuje fakturu",
        "pay_to": "Číslo účtu",
        "reference": "Reference platby",
        "variable_symbol": "Variabilní symbol",
        "generated": "vystaveno v jobstream",
        "units": {
            "hour": "hod",
            "started_hour": "započ. hod",
            "quarter_hour": "¼ hod",
            "piece": "ks",
            "flat": "paušál",
            "visit": "výjezd",
        },
    },
    "de": {
        "invoice": "Rechnung",
        "job": "Auftrag",
        "issue_date": "Rechnungsdatum",
        "supply_date": "Leistungsdatum",
        "due_date": "Fällig am",
        "seller": "Leistender",
        "buyer": "Rechnungsempfänger",
        "vat_id": "USt-IdNr.",
        "item": "Position",
        "quantity": "Menge",
        "unit": "Einheit",
        "unit_price": "Einzelpreis",
        "vat": "USt.",
        "net": "Netto",
        "vat_rate": "USt.-Satz",
        "taxable": "Netto",
        "net_total": "Summe netto",
        "vat_total": "USt.",
        "total": "Rechnungsbetrag",
        "logged": "erfasste Zeit:",
        "reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers (Art. 196 MwStSystRL).",
        "credit_note": "Gutschrift (Rechnungskorrektur)",
        "proforma": "Proformarechnung",
        "proforma_note": "Keine Rechnung im Sinne des UStG: bitte im Voraus zahlen.",
        "refers_to": "Korrigiert Rechnung",
        "pay_to": "Bankverbindung",
        "reference": "Verwendungszweck",
        "variable_symbol": "Variabler Symbol (CZ)",
        "generated": "erstellt mit jobstream",
        "units": {
            "hour": "Std.",
            "started_hour": "angef. Std.",
            "quarter_hour": "¼ Std.",
            "piece": "Stk.",
            "flat": "pauschal",
            "visit": "Anfahrt",
        },
    },
    "ro": {
        "invoice": "Factură",
        "job": "Lucrare",
        "issue_date": "Data emiterii",
        "supply_date": "Data prestării",
        "due_date": "Data scadenței",
        "seller": "Furnizor",
        "buyer": "Cumpărător",
        "vat_id": "CIF",
        "item": "Denumire",
        "quantity": "Cant.",
        "unit": "U.M.",
        "unit_price": "Preț unitar",
        "vat": "TVA",
        "net": "Valoare",
        "vat_rate": "Cota TVA",
        "taxable": "Bază",
        "net_total": "Total fără TVA",
        "vat_total": "TVA",
        "total": "Total de plată",
        "logged": "timp lucrat:",
        "reverse_charge": "Taxare inversă (art. 196 din Directiva 2006/112/CE).",
        "credit_note": "Factură de stornare",
        "proforma": "Factură proformă",
        "proforma_note": "Nu este document fiscal: vă rugăm să plătiți în avans.",
        "refers_to": "Corectează factura",
        "pay_to": "Cont bancar",
        "reference": "Referință plată",
        "variable_symbol": "Simbol variabil",
        "generated": "emisă cu jobstream",
        "units": {
            "hour": "oră",
            "started_hour": "oră începută",
            "quarter_hour": "¼ oră",
            "piece": "buc.",
            "flat": "forfetar",
            "visit": "deplasare",
        },
    },
}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape(["html"])
)


class Branding:
    """The company's look: a logo (a file path or data: URL) and the heading colour."""

    def __init__(self, logo: str = "", colour: str = "#0b6b61") -> None:
        self.logo = logo
        self.colour = colour


class _Printed:
    """A proforma or a credit note with the fields the invoice template prints."""

    def __init__(self, document: CreditNoteIssued | ProformaIssued, **printed: object) -> None:
        self.__dict__.update({f: getattr(document, f) for f in document.__struct_fields__}, **printed)


def _printed(document: InvoiceIssued | CreditNoteIssued | ProformaIssued, t: dict[str, object]) -> object:
    match document:
        case CreditNoteIssued():
            return _Printed(
                document,
                supply_date=document.invoice_issue_date,
                due_date=document.issue_date,
                payment_reference="",
                job_summary=f"{t['refers_to']} {document.invoice_number}: {document.reason}",
            )
        case ProformaIssued():
            return _Printed(document, supply_date=document.issue_date, job_summary=str(t["proforma_note"]))
    return document


def invoice_html(invoice: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding | None = None) -> str:
    branding = branding or Branding()
    lang = invoice.language if invoice.language in LABELS else "en"
    locale = LOCALES[lang]

    def number(value: Decimal, places: int | None = None) -> str:
        pattern = None if places is None else "#,##0." + "0" * places
        return format_decimal(value, format=pattern, locale=locale)

    def rate(line: InvoiceLine) -> str:
        return "AE" if line.vat_category == "AE" else f"{number(line.vat_rate)} %"

    def category(v: VatSubtotal) -> str:
        return "AE 0 %" if v.category == "AE" else f"{number(v.rate)} %"

    def address(a: Address | None) -> str:
        return "" if a is None else f"{a.street}, {a.postal_code} {a.city}, {a.country}"

    kind = (
        "credit_note"
        if isinstance(invoice, CreditNoteIssued)
        else "proforma"
        if isinstance(invoice, ProformaIssued)
        else "invoice"
    )
    return _templates.get_template("invoice.html").render(
        i=_printed(invoice, LABELS[lang]),
        t=LABELS[lang],
        title=LABELS[lang][kind],
        lang=lang,
        fonts=(HERE / "fonts").as_posix(),
        logo=branding.logo,
        colour=branding.colour,
        number=number,
        rate=rate,
        category=category,
        address=address,
        variable_symbol=variable_symbol(invoice.number),
        money=lambda value: format_currency(value, invoice.currency, locale=locale),
        date=lambda day: format_date(day, format="medium", locale=locale),
        hours=lambda minutes: f"{minutes // 60}:{minutes % 60:02d} h",
    )


class RenderError(Exception):
    pass


def _policy(branding: Branding) -> ResourceAccessPolicy:
    """What a render may read: our fonts and the company's logo file, nothing from the network.
    (xhtml2pdf's default confines reads to the working directory: run from anywhere but the
    project, the invoices lost their fonts, and with them the letters Helvetica lacks.)"""
    logo = Path(branding.logo) if branding.logo and not branding.logo.startswith("data:") else None
    return ResourceAccessPolicy.server(
        base_dir=HERE / "fonts", allow_remote=False, extra_roots=(logo.parent,) if logo else ()
    )


def invoice_pdf(invoice: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding | None = None) -> bytes:
    """The invoice as PDF bytes."""
    out = io.BytesIO()
    status = pisa.CreatePDF(
        invoice_html(invoice, branding), dest=out, encoding="utf-8", resource_policy=_policy(branding or Branding())
    )
    if status.err:
        raise RenderError(f"invoice {invoice.number}: the PDF could not be rendered ({status.err} errors)")
    return out.getvalue()
