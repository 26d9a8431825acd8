"""The invoice as a PDF: a jinja2 template rendered by xhtml2pdf, in the customer's language.

Everything printed comes from the InvoiceIssued event, so the same event renders the same
document at any later time. Numbers, dates and money are formatted by Babel for the
invoice's language; the embedded DejaVu Sans has the letters Helvetica lacks (ł, ř, ș).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from msgspec import Struct
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, ProformaIssued, VatSubtotal
from invoicer.ksef import qr
from invoicer.ksef.fa3 import Fa3Refused, fa3_invoice, seller_nip
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
        "ksef_verify": "Verify this invoice in KSeF, the Polish national e-invoicing system:",
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
        "ksef_verify": "Sprawdź fakturę w Krajowym Systemie e-Faktur (KSeF):",
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
        "ksef_verify": "Ověřte fakturu v polském systému e-faktur KSeF:",
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
        "ksef_verify": "Rechnung im polnischen E-Rechnungssystem KSeF prüfen:",
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
        "ksef_verify": "Verificați factura în KSeF, sistemul polonez de facturare electronică:",
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
    """The company's look: a logo (a file path or data: URL) and the heading colour; and, for
    a Polish seller, the KSeF environment its QR codes point to (test, demo or production,
    see ``qr.environment_of``) and the offline certificate (PEM: certificate and key) that
    signs KOD II on documents issued offline."""

    def __init__(
        self,
        logo: str = "",
        colour: str = "#0b6b61",
        ksef_environment: str = "test",
        offline_certificate: bytes = b"",
    ) -> None:
        if ksef_environment not in qr.QR_HOSTS:
            raise ValueError(f"KSeF environment {ksef_environment!r}: one of {', '.join(qr.QR_HOSTS)}")
        self.logo = logo
        self.colour = colour
        self.ksef_environment = ksef_environment
        self.offline_certificate = offline_certificate  # bytes, so a render process can take it

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Branding:
        """JOBSTREAM_LOGO, JOBSTREAM_COLOUR; the QR codes' KSeF environment from KSEF_URL's
        host (test unless it is demo's or production's); KSEF_OFFLINE_CERT, the path of the
        offline certificate's PEM (certificate and private key), checked here at start."""
        pem = b""
        if path := env.get("KSEF_OFFLINE_CERT", "").strip():
            try:
                pem = Path(path).read_bytes()
                qr.OfflineCertificate(pem)
            except (OSError, ValueError) as error:
                raise SystemExit(f"KSEF_OFFLINE_CERT={path}: {error}") from None
        return cls(
            logo=env.get("JOBSTREAM_LOGO", ""),
            colour=env.get("JOBSTREAM_COLOUR") or "#0b6b61",
            ksef_environment=qr.environment_of(env.get("KSEF_URL", "")),
            offline_certificate=pem,
        )


class KsefMark(Struct, frozen=True, kw_only=True):
    """What KSeF has said of a Polish document, for its QR codes: the SHA-256 (hex) of the
    FA(3) file sent ("" : the file built from the document's event alone, as it is sent),
    its KSeF number once accepted, and whether it was issued offline (KOD II)."""

    fa3_sha256: str = ""
    ksef_number: str = ""
    offline: bool = False


class QrCode(Struct, frozen=True, kw_only=True):
    image: str  # a data: URL of the PNG
    label: str  # printed below the code
    link: str  # printed beside it ("" : not printed)


def ksef_codes(
    document: InvoiceIssued | CreditNoteIssued | ProformaIssued, branding: Branding, mark: KsefMark | None = None
) -> list[QrCode]:
    """A Polish invoice's or credit note's verification codes (kody-qr.md): KOD I, labelled
    with its KSeF number or OFFLINE while it has none; and KOD II, labelled CERTYFIKAT, when it
    was issued offline and an offline certificate is configured. None for a proforma, a
    seller outside Poland, or a document KSeF would refuse (it is held, never sent)."""
    if isinstance(document, ProformaIssued) or document.seller.address is None:
        return []
    if document.seller.address.country != "PL":
        return []
    mark = mark or KsefMark()
    try:
        nip = seller_nip(document.seller)
        digest = bytes.fromhex(mark.fa3_sha256) if mark.fa3_sha256 else qr.sha256(fa3_invoice(document))
    except Fa3Refused:
        return []
    link = qr.invoice_link(branding.ksef_environment, nip, document.issue_date, digest)
    codes = [QrCode(image=qr.qr_data_url(link), label=mark.ksef_number or qr.OFFLINE, link=link)]
    if mark.offline and not mark.ksef_number and branding.offline_certificate:
        certificate = qr.OfflineCertificate(branding.offline_certificate)
        signed = qr.certificate_link(branding.ksef_environment, certificate, nip, digest)
        codes.append(QrCode(image=qr.qr_data_url(signed), label=qr.CERTIFICATE, link=""))
    return codes


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


def invoice_html(
    invoice: InvoiceIssued | CreditNoteIssued | ProformaIssued,
    branding: Branding | None = None,
    ksef: KsefMark | None = None,
) -> str:
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
        ksef_codes=ksef_codes(invoice, branding, ksef),
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


def invoice_pdf(
    invoice: InvoiceIssued | CreditNoteIssued | ProformaIssued,
    branding: Branding | None = None,
    ksef: KsefMark | None = None,
) -> bytes:
    """The invoice as PDF bytes; a Polish one with its KSeF QR codes, as ``ksef`` says."""
    out = io.BytesIO()
    status = pisa.CreatePDF(
        invoice_html(invoice, branding, ksef),
        dest=out,
        encoding="utf-8",
        resource_policy=_policy(branding or Branding()),
    )
    if status.err:
        raise RenderError(f"invoice {invoice.number}: the PDF could not be rendered ({status.err} errors)")
    return out.getvalue()
