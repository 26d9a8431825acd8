"""A Polish invoice as KSeF's FA(3) XML, from the issued document's event alone.

The same event always gives the same bytes: the SHA-256 of the file goes to KSeF with it and
into the verification QR code on the PDF, so nothing here reads a clock or a setting. The
creation time (``DataWytworzeniaFa``) is the event's own ``occurred_at`` (the issue day's
midnight UTC for an event without metadata). UTF-8 without a BOM, as KSeF wants.

The product cannot run the XSD (it lives outside the project), so the builder checks what
the XSD and KSeF would refuse as it writes, and raises ``Fa3Refused`` naming the field: the
seller's NIP and its checksum, the buyer's identifier, text lengths, dates, the rates the
schema knows and the amounts' format. A document that passes them passes the schema (the
tests validate many generated ones against it).

What the event says, and how FA(3) says it:
- VAT per line rate: 23/22 %, 8/7 %, 5 %, 4/3 % (P_13_1..4 and P_14_1..4), 0 % domestic
  (``0 KR``, P_13_6_1), intra-EU supply (``0 WDT``), export (``0 EX``), exempt (``zw``,
  P_13_7, with the legal basis in P_19A), outside Poland (``np I``, P_13_8).
- Reverse charge (EN 16931 category AE): to a business in another EU country it is a service
  taxed where the buyer is (``np II``, P_13_9); to a Polish business, domestic reverse charge
  (``oo``, P_13_10). Both mark P_18 ("odwrotne obciążenie").
- The sale date is P_6; a retainer's monthly invoice gives its month as OkresFa instead.
- Interim invoices (the work to date on an open job) and retainers' monthly invoices are
  ordinary VAT invoices for work done: jobstream takes no advance payments, so there are no
  ZAL or ROZ invoices to make.
- A credit note is a KOR: the credited amounts negative, the original's number and issue
  date, and its KSeF number when it is known (``NrKSeFN`` when the original has none).
- Payment: the due date, a credit transfer (form 6) to the seller's account when there is one.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree as ET

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party

NS = "http://crd.gov.pl/wzor/2025/06/25/13775/"
SYSTEM = "jobstream"


class Fa3Refused(ValueError):
    """The document cannot be an FA(3) that KSeF accepts: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --- what the schema allows ------------------------------------------------------------------

EU = frozenset("AT BE BG CY CZ DK EE FI FR DE EL HR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE XI".split())
# etd:TKodKraju, the countries an address may name
COUNTRIES = frozenset(
    """AF AX AL DZ AD AO AI AQ AG AN SA AR AM AW AU AT AZ BS BH BD BB BE BZ BJ BM BT BY BO BQ BA BW
    BR BN IO BG BF BI XC CL CN HR CW CY TD ME DK DM DO DJ EG EC ER EE ET FK FJ PH FI FR TF GA GM GH
    GI GR GD GL GE GU GG GY GF GP GT GN GQ GW HT ES HN HK IN ID IQ IR IE IS IL JM JP YE JE JO KY KH CM
    CA QA KZ KE KG KI CO KM CG CD KP XK CR CU KW LA LS LB LR LY LI LT LV LU MK MG YT MO MW MV MY ML MT
    MP MA MQ MR MU MX XL FM UM MD MC MN MS MZ MM NA NR NP NL DE NE NG NI NU NF NO NC NZ PS OM PK PW PA
    PG PY PE PN PF PL GS PT PR CF CZ KR ZA RE RU RO RW EH BL KN LC MF VC SV WS AS SM SN RS SC SL SG SK
    SI SO LK PM US SZ SD SS SR SJ SH SY CH SE TJ TH TW TZ TG TK TO TT TN TR TM TV UG UA UY UZ VU WF VA
    HU VE GB VN IT TL CI BV CX IM SX CK VI VG HM CC MH FO SB ST TC ZM CV ZW AE XI""".split()
)
# ISO 4217 codes of tns:TKodWaluty that jobstream's customers may be billed in (values.Currency)
CURRENCIES = frozenset("EUR PLN CZK RON USD GBP CHF HUF".split())
NIP = re.compile(r"[1-9]((\d[1-9])|([1-9]\d))\d{7}")
NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
EU_VAT_NUMBER = re.compile(r"(\d|[A-Z]|\+|\*){1,12}")
KSEF_NUMBER = re.compile(
    r"([1-9]((\d[1-9])|([1-9]\d))\d{7}|M\d{9}|[A-Z]{3}\d{7})-(20[2-9][0-9]|2[1-9][0-9]{2}|[3-9][0-9]{3})"
    r"(0[1-9]|1[0-2])(0[1-9]|[1-2][0-9]|3[0-1])-([0-9A-F]{6})-?([0-9A-F]{6})-([0-9A-F]{2})"
)
XML_SPACE = re.compile(r"[ \t\n\r]+")  # what xsd:token collapses (not NEL, not a no-break space)
EMAIL = re.compile(r"(.)+@(.)+", re.DOTALL)
AMOUNT = re.compile(r"-?([1-9]\d{0,15}|0)(\.\d{1,2})?")  # tns:TKwotowy
PRICE = re.compile(r"-?([1-9]\d{0,13}|0)(\.\d{1,8})?")  # tns:TKwotowy2
QUANTITY = re.compile(r"-?([1-9]\d{0,15}|0)(\.\d{1,6})?")  # tns:TIlosci
# Characters KSeF refuses besides XML's own (weryfikacja-faktury.md), and XML's forbidden ones
REFUSED_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufdd0-\ufdef\ufffe\uffff\ud800-\udfff]"
    + "|[\U0001fffe-\U0001ffff\U0002fffe-\U0002ffff\U0003fffe-\U0003ffff\U0004fffe-\U0004ffff"
    + "\U0005fffe-\U0005ffff\U0006fffe-\U0006ffff\U0007fffe-\U0007ffff\U0008fffe-\U0008ffff"
    + "\U0009fffe-\U0009ffff\U000afffe-\U000affff\U000bfffe-\U000bffff\U000cfffe-\U000cffff"
    + "\U000dfffe-\U000dffff\U000efffe-\U000effff\U000ffffe-\U000fffff\U0010fffe-\U0010ffff]"
)
FIRST_DAY = date(2006, 1, 1)  # tns:TDataT
FIRST_DUE_DAY = date(2016, 7, 1)  # tns:TData
LAST_DAY = date(2050, 1, 1)
FIRST_CREATED = datetime(2025, 9, 1, tzinfo=UTC)  # DataWytworzeniaFa
MAX_SIZE = 1_000_000  # bytes, an invoice without attachments

# The rate as FA(3) writes it (P_12) -> the P_13/P_14 pair its sums go to
RATE_FIELDS: dict[str, tuple[str, str | None]] = {
    "23": ("P_13_1", "P_14_1"),
    "22": ("P_13_1", "P_14_1"),
    "8": ("P_13_2", "P_14_2"),
    "7": ("P_13_2", "P_14_2"),
    "5": ("P_13_3", "P_14_3"),
    "4": ("P_13_4", "P_14_4"),
    "3": ("P_13_4", "P_14_4"),
    "0 KR": ("P_13_6_1", None),
    "0 WDT": ("P_13_6_2", None),
    "0 EX": ("P_13_6_3", None),
    "zw": ("P_13_7", None),
    "np I": ("P_13_8", None),
    "np II": ("P_13_9", None),
    "oo": ("P_13_10", None),
}
SUM_ORDER = [
    "P_13_1",
    "P_14_1",
    "P_13_2",
    "P_14_2",
    "P_13_3",
    "P_14_3",
    "P_13_4",
    "P_14_4",
    "P_13_6_1",
    "P_13_6_2",
    "P_13_6_3",
    "P_13_7",
    "P_13_8",
    "P_13_9",
    "P_13_10",
]
# The unit as a Polish invoice names it (P_8A)
UNITS = {
    "hour": "godz.",
    "started_hour": "godz.",
    "quarter_hour": "kwadrans",
    "piece": "szt.",
    "flat": "usł.",
    "visit": "dojazd",
}
TRANSFER = "6"  # TFormaPlatnosci: przelew


# --- checks ----------------------------------------------------------------------------------


def nip_valid(nip: str) -> bool:
    """A NIP by the schema's pattern and its checksum (weights 6 5 7 2 3 4 5 6 7, mod 11)."""
    if NIP.fullmatch(nip) is None:
        return False
    check = sum(int(d) * w for d, w in zip(nip, NIP_WEIGHTS, strict=False)) % 11
    return check != 10 and check == int(nip[9])


def text(field: str, value: str, max_length: int = 256, min_length: int = 1) -> str:
    """A text as the schema's xsd:token holds it: whitespace collapsed, then its length checked."""
    found = REFUSED_CHARACTERS.search(value)
    if found is not None:
        raise Fa3Refused(field, f"contains U+{ord(found.group()):04X}, which KSeF refuses")
    collapsed = XML_SPACE.sub(" ", value).strip(" ")
    if len(collapsed) < min_length:
        raise Fa3Refused(field, "is empty")
    if len(collapsed) > max_length:
        raise Fa3Refused(field, f"has {len(collapsed)} characters, at most {max_length} are allowed")
    return collapsed


def finite(field: str, value: Decimal) -> Decimal:
    if not value.is_finite():
        raise Fa3Refused(field, f"{value} is not a number")
    return value


def amount(field: str, value: Decimal) -> str:
    """An amount (tns:TKwotowy): at most 16 digits before the point and 2 after."""
    try:
        written = f"{value.quantize(Decimal('0.01')):.2f}"
    except InvalidOperation:
        raise Fa3Refused(field, f"{value} is not an amount") from None
    if not value.is_finite() or value != Decimal(written):
        raise Fa3Refused(field, f"{value} has more than 2 decimal places")
    written = "0.00" if written == "-0.00" else written
    if AMOUNT.fullmatch(written) is None:
        raise Fa3Refused(field, f"{value} has more than 16 digits before the decimal point")
    return written


def plain(field: str, value: Decimal, pattern: re.Pattern[str], places: int, digits: int) -> str:
    """A quantity or price without an exponent or trailing zeros, within the schema's digits."""
    if not value.is_finite():
        raise Fa3Refused(field, f"{value} is not a number")
    written = format(value.normalize(), "f")
    written = "0" if written in ("-0", "") else written
    if pattern.fullmatch(written) is None:
        raise Fa3Refused(field, f"{value} must have at most {digits} digits before the point and {places} after")
    return written


def day(field: str, value: date, first: date = FIRST_DAY) -> str:
    if not first <= value <= LAST_DAY:
        raise Fa3Refused(field, f"{value.isoformat()} is outside {first.isoformat()}..{LAST_DAY.isoformat()}")
    return value.isoformat()


def seller_nip(seller: Party) -> str:
    """The seller's NIP: its VAT id without the PL prefix, valid by its checksum."""
    vat_id = _compact(seller.vat_id)
    if not vat_id:
        raise Fa3Refused("seller.vat_id", "a Polish seller's NIP is required")
    nip = vat_id.removeprefix("PL")
    if not nip_valid(nip):
        raise Fa3Refused("seller.vat_id", f"{seller.vat_id!r} is not a valid NIP (10 digits with its checksum)")
    return nip


def ksef_number(field: str, value: str) -> str:
    if KSEF_NUMBER.fullmatch(value) is None:
        raise Fa3Refused(field, f"{value!r} is not a KSeF number")
    return value


def _compact(vat_id: str) -> str:
    return "".join(c for c in vat_id.upper() if c.isalnum() or c in "+*")


def _country(field: str, address: Address | None) -> str:
    country = address.country if address else ""
    if country not in COUNTRIES:
        raise Fa3Refused(field, f"{country!r} is not a country code the schema knows")
    return country


def buyer_country(buyer: Party) -> str:
    return buyer.address.country if buyer.address else ""


def fa3_rate(field: str, category: str, rate: Decimal, buyer: Party) -> str:
    """How FA(3) writes a line's VAT (P_12), from its EN 16931 category and rate."""
    match category:
        case "S":
            written = format(rate.normalize(), "f") if rate.is_finite() else str(rate)
            if written not in RATE_FIELDS or not written[0].isdigit() or written == "0":
                raise Fa3Refused(field, f"{written} % is not a Polish VAT rate (23, 22, 8, 7, 5, 4 or 3)")
            return written
        case "Z":
            return "0 KR"
        case "K":
            return "0 WDT"
        case "G":
            return "0 EX"
        case "E":
            return "zw"
        case "O":
            return "np I"
        case "AE":
            country = buyer_country(buyer)
            return "oo" if country in ("PL", "") else "np II"
    raise Fa3Refused(field, f"VAT category {category!r} has no FA(3) rate")


# --- the document ------------------------------------------------------------------------------


def _add(parent: ET.Element, tag: str, value: object = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)  # in the root's default namespace
    if value is not None:
        element.text = str(value)
    return element


def _address(parent: ET.Element, tag: str, field: str, address: Address) -> None:
    element = _add(parent, tag)
    _add(element, "KodKraju", _country(f"{field}.country", address))
    _add(element, "AdresL1", text(f"{field}.street", address.street, 512))
    _add(element, "AdresL2", text(f"{field}.city", f"{address.postal_code} {address.city}", 512))


def _email(parent: ET.Element, field: str, email: str) -> None:
    if email:
        written = text(field, email, 255, 3)
        if EMAIL.fullmatch(written) is None:
            raise Fa3Refused(field, f"{email!r} is not an email address")
        _add(_add(parent, "DaneKontaktowe"), "Email", written)


def _seller(root: ET.Element, seller: Party) -> None:
    element = _add(root, "Podmiot1")
    ids = _add(element, "DaneIdentyfikacyjne")
    _add(ids, "NIP", seller_nip(seller))
    _add(ids, "Nazwa", text("seller.name", seller.name, 512))
    if seller.address is None:
        raise Fa3Refused("seller.address", "the seller's address is required")
    if seller.address.country != "PL":
        raise Fa3Refused("seller.address.country", "FA(3) is for a seller in Poland")
    _address(element, "Adres", "seller.address", seller.address)
    _email(element, "seller.email", seller.email)


def buyer_id(buyer: Party) -> tuple[str, ...]:
    """How the buyer is identified: ("NIP", nip), ("UE", country, number), ("ID", country,
    number) or ("BRAK",) for a consumer without a tax id."""
    vat_id = _compact(buyer.vat_id)
    country = buyer_country(buyer)
    if not vat_id:
        return ("BRAK",)
    prefix = vat_id[:2] if vat_id[:2].isalpha() else ""
    if prefix == "PL" or (not prefix and country in ("PL", "")):
        nip = vat_id.removeprefix("PL")
        if not nip_valid(nip):
            raise Fa3Refused("buyer.vat_id", f"{buyer.vat_id!r} is not a valid NIP (10 digits with its checksum)")
        return ("NIP", nip)
    if prefix in EU:
        number = vat_id[2:]
        if EU_VAT_NUMBER.fullmatch(number) is None:
            raise Fa3Refused("buyer.vat_id", f"{buyer.vat_id!r}: an EU VAT number is 1 to 12 letters and digits")
        return ("UE", prefix, number)
    code = prefix if prefix in COUNTRIES else country if country in COUNTRIES else ""
    return ("ID", code, text("buyer.vat_id", buyer.vat_id, 50))


def _buyer(root: ET.Element, buyer: Party) -> None:
    element = _add(root, "Podmiot2")
    ids = _add(element, "DaneIdentyfikacyjne")
    match buyer_id(buyer):
        case ("NIP", nip):
            _add(ids, "NIP", nip)
        case ("UE", code, number):
            _add(ids, "KodUE", code)
            _add(ids, "NrVatUE", number)
        case ("ID", code, number):
            if code:
                _add(ids, "KodKraju", code)
            _add(ids, "NrID", number)
        case _:
            _add(ids, "BrakID", "1")
    _add(ids, "Nazwa", text("buyer.name", buyer.name, 512))
    if buyer.address is not None:
        _address(element, "Adres", "buyer.address", buyer.address)
    _email(element, "buyer.email", buyer.email)
    _add(element, "JST", "2")
    _add(element, "GV", "2")


def _created(document: InvoiceIssued | CreditNoteIssued) -> str:
    if document.meta is not None:
        field, moment = "meta.occurred_at", document.meta.occurred_at.astimezone(UTC)
    else:
        field, moment = "issue_date", datetime.combine(document.issue_date, time(), UTC)
    if not FIRST_CREATED <= moment <= datetime(2050, 1, 1, 23, 59, 59, tzinfo=UTC):
        raise Fa3Refused(field, f"{moment.isoformat()}: FA(3) documents are made from 2025-09-01 to 2050-01-01")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _header(root: ET.Element, document: InvoiceIssued | CreditNoteIssued) -> None:
    header = _add(root, "Naglowek")
    _add(header, "KodFormularza", "FA", kodSystemowy="FA (3)", wersjaSchemy="1-0E")
    _add(header, "WariantFormularza", "3")
    _add(header, "DataWytworzeniaFa", _created(document))
    _add(header, "SystemInfo", SYSTEM)


def _sums(document: InvoiceIssued | CreditNoteIssued, sign: Decimal) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for index, subtotal in enumerate(document.vat):
        rate = fa3_rate(f"vat[{index}].rate", subtotal.category, subtotal.rate, document.buyer)
        net_field, vat_field = RATE_FIELDS[rate]
        amount(f"vat[{index}].taxable", finite(f"vat[{index}].taxable", subtotal.taxable))
        amount(f"vat[{index}].vat", finite(f"vat[{index}].vat", subtotal.vat))
        sums[net_field] = sums.get(net_field, Decimal(0)) + sign * subtotal.taxable
        if vat_field is not None:
            sums[vat_field] = sums.get(vat_field, Decimal(0)) + sign * subtotal.vat
        elif subtotal.vat:
            raise Fa3Refused(f"vat[{index}].vat", f"{rate} carries no VAT, yet {subtotal.vat} is charged")
    return sums


def _annotations(fa: ET.Element, document: InvoiceIssued | CreditNoteIssued, rates: set[str], exemption: str) -> None:
    notes = _add(fa, "Adnotacje")
    _add(notes, "P_16", "2")  # no cash accounting
    _add(notes, "P_17", "2")  # not self-billed
    _add(notes, "P_18", "1" if document.reverse_charge or rates & {"oo", "np II"} else "2")
    _add(notes, "P_18A", "2")  # no split payment
    exempt = _add(notes, "Zwolnienie")
    if "zw" in rates:
        if not exemption:
            raise Fa3Refused("exemption_basis", "an exempt (zw) line needs the legal basis of the exemption")
        _add(exempt, "P_19", "1")
        _add(exempt, "P_19A", text("exemption_basis", exemption))
    else:
        _add(exempt, "P_19N", "1")
    _add(_add(notes, "NoweSrodkiTransportu"), "P_22N", "1")
    _add(notes, "P_23", "2")
    _add(_add(notes, "PMarzy"), "P_PMarzyN", "1")


def _line(fa: ET.Element, index: int, line: InvoiceLine, buyer: Party, sign: Decimal) -> None:
    field = f"lines[{index}]"
    element = _add(fa, "FaWiersz")
    _add(element, "NrWierszaFa", index + 1)
    _add(element, "P_7", text(f"{field}.description", line.description or line.code, 512))
    if line.code:
        _add(element, "Indeks", text(f"{field}.code", line.code, 50))
    _add(element, "P_8A", UNITS.get(line.unit) or text(f"{field}.unit", line.unit))
    _add(
        element, "P_8B", plain(f"{field}.quantity", sign * finite(f"{field}.quantity", line.quantity), QUANTITY, 6, 16)
    )
    _add(element, "P_9A", plain(f"{field}.unit_price", line.unit_price, PRICE, 8, 14))
    _add(element, "P_11", amount(f"{field}.net", sign * finite(f"{field}.net", line.net)))
    _add(element, "P_12", fa3_rate(f"{field}.vat_rate", line.vat_category, line.vat_rate, buyer))


def _month(period: str) -> tuple[date, date] | None:
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period) is None:
        return None
    year, month = map(int, period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def fa3_invoice(
    document: InvoiceIssued | CreditNoteIssued, *, original_ksef_number: str = "", exemption_basis: str = ""
) -> bytes:
    """The invoice (VAT) or the credit note (KOR) as FA(3) XML bytes; raises Fa3Refused naming
    the field that KSeF would refuse. ``original_ksef_number`` is the corrected invoice's KSeF
    number, when it has one; ``exemption_basis`` the legal basis of exempt (zw) lines."""
    if not isinstance(document, InvoiceIssued | CreditNoteIssued):  # a proforma is no invoice in law
        raise Fa3Refused("document", f"a {type(document).__name__} is not an invoice and gets no FA(3)")
    credit = isinstance(document, CreditNoteIssued)
    sign = Decimal(-1) if credit else Decimal(1)
    if document.currency not in CURRENCIES:
        raise Fa3Refused("currency", f"{document.currency!r} is not a currency jobstream invoices in")
    root = ET.Element("Faktura", xmlns=NS)
    _header(root, document)
    _seller(root, document.seller)
    _buyer(root, document.buyer)
    fa = _add(root, "Fa")
    _add(fa, "KodWaluty", document.currency)
    _add(fa, "P_1", day("issue_date", document.issue_date))
    _add(fa, "P_2", text("number", document.number))
    if isinstance(document, InvoiceIssued):
        month = _month(document.period) if document.retainer_id is not None else None
        if month is not None:
            period = _add(fa, "OkresFa")
            _add(period, "P_6_Od", day("period", month[0]))
            _add(period, "P_6_Do", day("period", month[1]))
        else:
            _add(fa, "P_6", day("supply_date", document.supply_date))
    sums = _sums(document, sign)
    for name in SUM_ORDER:
        if name in sums:
            _add(fa, name, amount(name, sums[name]))
    _add(fa, "P_15", amount("gross_total", sign * finite("gross_total", document.gross_total)))
    if not document.lines:
        raise Fa3Refused("lines", "an invoice needs at least one line")
    if len(document.lines) > 10_000:
        raise Fa3Refused("lines", "FA(3) holds at most 10000 lines")
    rates = {
        fa3_rate(f"lines[{index}].vat_rate", line.vat_category, line.vat_rate, document.buyer)
        for index, line in enumerate(document.lines)
    }
    _annotations(fa, document, rates, exemption_basis)
    _add(fa, "RodzajFaktury", "KOR" if credit else "VAT")
    if isinstance(document, CreditNoteIssued):
        _add(fa, "PrzyczynaKorekty", text("reason", document.reason))
        corrected = _add(fa, "DaneFaKorygowanej")
        _add(corrected, "DataWystFaKorygowanej", day("invoice_issue_date", document.invoice_issue_date))
        _add(corrected, "NrFaKorygowanej", text("invoice_number", document.invoice_number))
        if original_ksef_number:
            _add(corrected, "NrKSeF", "1")
            _add(corrected, "NrKSeFFaKorygowanej", ksef_number("original_ksef_number", original_ksef_number))
        else:
            _add(corrected, "NrKSeFN", "1")
    for index, line in enumerate(document.lines):
        _line(fa, index, line, document.buyer, sign)
    if isinstance(document, InvoiceIssued):
        payment = _add(fa, "Platnosc")
        _add(_add(payment, "TerminPlatnosci"), "Termin", day("due_date", document.due_date, FIRST_DUE_DAY))
        account = "".join(document.seller.bank_account.split())
        if account:
            _add(payment, "FormaPlatnosci", TRANSFER)
            if not 10 <= len(account) <= 34:
                raise Fa3Refused("seller.bank_account", "an account number has 10 to 34 characters")
            _add(_add(payment, "RachunekBankowy"), "NrRB", text("seller.bank_account", account, 34, 10))
    data = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    if len(data) > MAX_SIZE:
        raise Fa3Refused("lines", f"the document has {len(data)} bytes, KSeF takes at most {MAX_SIZE}")
    return data


def fa3_refusal(
    document: InvoiceIssued | CreditNoteIssued, *, original_ksef_number: str = "", exemption_basis: str = ""
) -> Fa3Refused | None:
    """Why KSeF would refuse the document's FA(3), or None when it would pass its checks."""
    try:
        fa3_invoice(document, original_ksef_number=original_ksef_number, exemption_basis=exemption_basis)
    except Fa3Refused as refused:
        return refused
    return None
