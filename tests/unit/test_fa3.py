"""A Polish invoice as KSeF's FA(3), from the issued document's event alone: given an issued
invoice or credit note, when it is built, then it passes the official FA(3) schema and its
fields, read back, are the event's."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from msgspec.structs import replace

from events.contract import (
    Address,
    CreditNoteIssued,
    EventMeta,
    InvoiceIssued,
    InvoiceLine,
    Party,
    ProformaIssued,
    VatSubtotal,
)
from invoicer.ksef.fa3 import NS, Fa3Refused, fa3_invoice, fa3_refusal, nip_valid
from tests.unit.invoices import ABROAD, BUYER, CREDIT_NOTE, INVOICE, INVOICE_ID, JOB_ID, REVERSE_CHARGED, SELLER

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
needs_validator = pytest.mark.skipif(
    not VALIDATOR.exists(), reason="the FA(3) schema (../shared/tools/einvoice) is not here"
)
N = {"fa": NS}
BUYER_NIP = "6808208874"
META = EventMeta(
    event_id=UUID("00000000-0000-0000-0000-0000000000e1"),
    occurred_at=datetime(2026, 11, 23, 9, 30, 5, 123456, tzinfo=UTC),
    actor_id="invoicer",
    actor_role="admin",
    command_id="job:1",
    correlation_id="c",
)

# A plain VAT invoice at 23 % to a Polish company with its NIP
COMPANY = replace(BUYER, name="Piekarnia Kowalski sp. j.", vat_id=f"PL{BUYER_NIP}")
PLAIN = replace(
    INVOICE,
    meta=META,
    buyer=COMPANY,
    lines=INVOICE.lines[:2],
    vat=[VatSubtotal(category="S", rate=Decimal(23), taxable=Decimal("300.00"), vat=Decimal("69.00"))],
    net_total=Decimal("300.00"),
    vat_total=Decimal("69.00"),
    gross_total=Decimal("369.00"),
)


def validate(tmp_path: Path, documents: dict[str, bytes]) -> None:
    """Every document passes `validate.py --profile ksef` with no error."""
    files = []
    for name, data in documents.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(data)
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), "--profile", "ksef", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FATAL" not in result.stdout
    assert sum(line.startswith("VALID ") for line in result.stdout.splitlines()) == len(documents), result.stdout


def read(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def value(root: etree._Element, path: str) -> str:
    found = root.find(path, N)
    assert found is not None, f"no {path}"
    return found.text or ""


def values(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.findall(path, N)]


def test_the_same_event_gives_the_same_bytes_in_utf8_without_a_bom() -> None:
    data = fa3_invoice(PLAIN)
    assert data == fa3_invoice(replace(PLAIN))
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert not data.startswith(b"\xef\xbb\xbf")
    data.decode("utf-8")
    assert hashlib.sha256(data).digest() == hashlib.sha256(fa3_invoice(PLAIN)).digest()


@needs_validator
def test_a_plain_vat_invoice_passes_the_schema(tmp_path: Path) -> None:
    validate(tmp_path, {"plain": fa3_invoice(PLAIN)})


def test_a_plain_vat_invoice_says_what_the_event_says() -> None:
    root = read(fa3_invoice(PLAIN))
    assert root.tag == f"{{{NS}}}Faktura"
    header = root.find("fa:Naglowek", N)
    assert header is not None
    code = header.find("fa:KodFormularza", N)
    assert code is not None and (code.text, code.get("kodSystemowy"), code.get("wersjaSchemy")) == (
        "FA",
        "FA (3)",
        "1-0E",
    )
    assert value(header, "fa:DataWytworzeniaFa") == "2026-11-23T09:30:05Z"  # the event's occurred_at
    assert [value(root, f"fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:{t}") for t in ("NIP", "Nazwa")] == [
        "5261040828",
        "Instalacje Nowak sp. z o.o.",
    ]
    assert [value(root, f"fa:Podmiot1/fa:Adres/fa:{t}") for t in ("KodKraju", "AdresL1", "AdresL2")] == [
        "PL",
        "ul. Długa 1",
        "31-147 Kraków",
    ]
    assert [value(root, f"fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:{t}") for t in ("NIP", "Nazwa")] == [
        BUYER_NIP,
        "Piekarnia Kowalski sp. j.",
    ]
    assert value(root, "fa:Podmiot2/fa:Adres/fa:AdresL1") == "ul. Mariacka 7"
    assert value(root, "fa:Podmiot2/fa:DaneKontaktowe/fa:Email") == "biuro@kowalski.example"
    fa = root.find("fa:Fa", N)
    assert fa is not None
    assert [value(fa, f"fa:{t}") for t in ("KodWaluty", "P_1", "P_2", "P_6", "P_13_1", "P_14_1", "P_15")] == [
        "PLN",
        "2026-11-23",
        "FV/2026/000042",
        "2026-11-20",
        "300.00",
        "69.00",
        "369.00",
    ]
    assert value(fa, "fa:RodzajFaktury") == "VAT"
    assert value(fa, "fa:Adnotacje/fa:P_18") == "2"  # no reverse charge
    lines = [
        [value(line, f"fa:{t}") for t in ("NrWierszaFa", "P_7", "Indeks", "P_8A", "P_8B", "P_9A", "P_11", "P_12")]
        for line in fa.findall("fa:FaWiersz", N)
    ]
    assert lines == [
        ["1", "Naprawa", "repair", "godz.", "2", "120", "240.00", "23"],
        ["2", "Dojazd", "callout", "usł.", "1", "60", "60.00", "23"],
    ]
    assert value(fa, "fa:Platnosc/fa:TerminPlatnosci/fa:Termin") == "2026-12-07"
    assert value(fa, "fa:Platnosc/fa:FormaPlatnosci") == "6"  # a credit transfer
    assert value(fa, "fa:Platnosc/fa:RachunekBankowy/fa:NrRB") == "PL61109010140000071219812874"


def test_an_event_without_metadata_is_made_at_its_issue_day() -> None:
    root = read(fa3_invoice(replace(PLAIN, meta=None)))
    assert value(root, "fa:Naglowek/fa:DataWytworzeniaFa") == "2026-11-23T00:00:00Z"


# --- every case the product issues ------------------------------------------------------------


def line(code: str, net: str, rate: int, category: str = "S", unit: str = "flat") -> InvoiceLine:
    return InvoiceLine(
        kind="fee",
        code=code,
        description=f"Usługa {code}",
        quantity=Decimal(1),
        unit=unit,
        unit_price=Decimal(net),
        net=Decimal(net),
        vat_rate=Decimal(rate),
        vat_category=category,
    )


# One line at each rate FA(3) knows that the product can name
RATES = replace(
    PLAIN,
    number="FV/2026/000050",
    lines=[
        line("a", "100.00", 23),
        line("b", "50.00", 8),
        line("c", "20.00", 5),
        line("d", "10.00", 0, "Z"),
        line("e", "30.00", 0, "E"),
        line("f", "40.00", 0, "O"),
        line("g", "60.00", 0, "AE"),
    ],
    vat=[
        VatSubtotal(category="S", rate=Decimal(23), taxable=Decimal("100.00"), vat=Decimal("23.00")),
        VatSubtotal(category="S", rate=Decimal(8), taxable=Decimal("50.00"), vat=Decimal("4.00")),
        VatSubtotal(category="S", rate=Decimal(5), taxable=Decimal("20.00"), vat=Decimal("1.00")),
        VatSubtotal(category="AE", rate=Decimal(0), taxable=Decimal("60.00"), vat=Decimal("0.00")),
        VatSubtotal(category="E", rate=Decimal(0), taxable=Decimal("30.00"), vat=Decimal("0.00")),
        VatSubtotal(category="O", rate=Decimal(0), taxable=Decimal("40.00"), vat=Decimal("0.00")),
        VatSubtotal(category="Z", rate=Decimal(0), taxable=Decimal("10.00"), vat=Decimal("0.00")),
    ],
    net_total=Decimal("310.00"),
    vat_total=Decimal("28.00"),
    gross_total=Decimal("338.00"),
)
EXEMPTION = "art. 43 ust. 1 pkt 37 ustawy"
# To a consumer: no tax id at all
CONSUMER = replace(PLAIN, number="FV/2026/000051", buyer=replace(BUYER, name="Jan Kowalski"))
# To a Czech company: reverse-charged, in euros
EU_REVERSE = replace(REVERSE_CHARGED, meta=META)
# To a Norwegian company: a tax id that is not an EU VAT number, and no account to pay to
NORWAY = replace(
    PLAIN,
    number="FV/2026/000052",
    seller=replace(SELLER, bank_account=""),
    buyer=Party(
        name="Fjord Rør AS",
        vat_id="NO923609016MVA",
        address=Address(street="Strandgata 5", city="Bergen", postal_code="5013", country="NO"),
    ),
)
# An interim invoice: the work to date on a job still open
INTERIM = replace(PLAIN, number="FV/2026/000053", interim=True, supply_date=date(2026, 11, 18))
# A retainer's monthly invoice, for November
RETAINER = replace(
    PLAIN,
    number="FV/2026/000054",
    retainer_id=UUID("00000000-0000-0000-0000-00000000f0aa"),
    job_id=UUID("00000000-0000-0000-0000-00000000f0aa"),
    period="2026-11",
    supply_date=date(2026, 11, 1),
    lines=[line("retainer", "300.00", 23)],
    job_type="retainer",
)
ORIGINAL_KSEF_NUMBER = "5261040828-20261123-0100A1B2C3D4-7F"
CORRECTION = replace(CREDIT_NOTE, meta=META, buyer=COMPANY)


def cases() -> dict[str, bytes]:
    return {
        "plain": fa3_invoice(PLAIN),
        "rates": fa3_invoice(RATES, exemption_basis=EXEMPTION),
        "consumer": fa3_invoice(CONSUMER),
        "eu-reverse-charge": fa3_invoice(EU_REVERSE),
        "non-eu-buyer": fa3_invoice(NORWAY),
        "interim": fa3_invoice(INTERIM),
        "retainer": fa3_invoice(RETAINER),
        "correction-with-ksef-number": fa3_invoice(CORRECTION, original_ksef_number=ORIGINAL_KSEF_NUMBER),
        "correction-offline": fa3_invoice(CORRECTION),
        "correction-whole": fa3_invoice(
            replace(
                CORRECTION,
                lines=INVOICE.lines,
                vat=INVOICE.vat,
                net_total=INVOICE.net_total,
                vat_total=INVOICE.vat_total,
                gross_total=INVOICE.gross_total,
            )
        ),
    }


@needs_validator
def test_every_case_passes_the_schema(tmp_path: Path) -> None:
    validate(tmp_path, cases())


def test_each_rate_goes_to_its_sum_and_its_line() -> None:
    root = read(fa3_invoice(RATES, exemption_basis=EXEMPTION))
    fa = root.find("fa:Fa", N)
    assert fa is not None
    sums = {
        etree.QName(e).localname: e.text for e in fa if etree.QName(e).localname.startswith(("P_13", "P_14", "P_15"))
    }
    assert sums == {
        "P_13_1": "100.00",
        "P_14_1": "23.00",
        "P_13_2": "50.00",
        "P_14_2": "4.00",
        "P_13_3": "20.00",
        "P_14_3": "1.00",
        "P_13_6_1": "10.00",
        "P_13_7": "30.00",
        "P_13_8": "40.00",
        "P_13_10": "60.00",
        "P_15": "338.00",
    }
    assert values(root, "fa:Fa/fa:FaWiersz/fa:P_12") == ["23", "8", "5", "0 KR", "zw", "np I", "oo"]
    assert value(root, "fa:Fa/fa:Adnotacje/fa:P_18") == "1"  # the oo line: domestic reverse charge
    assert value(root, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19") == "1"
    assert value(root, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19A") == EXEMPTION
    plain = read(fa3_invoice(PLAIN))
    assert value(plain, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19N") == "1"


def test_an_exempt_line_needs_the_legal_basis() -> None:
    with pytest.raises(Fa3Refused) as refused:
        fa3_invoice(RATES)
    assert refused.value.field == "exemption_basis"


def test_reverse_charge_to_an_eu_business_is_np_ii_with_its_eu_vat_number() -> None:
    root = read(fa3_invoice(EU_REVERSE))
    ids = "fa:Podmiot2/fa:DaneIdentyfikacyjne"
    assert [value(root, f"{ids}/fa:{t}") for t in ("KodUE", "NrVatUE", "Nazwa")] == [
        "CZ",
        "12345678",
        "Novák Stavby s.r.o.",
    ]
    assert root.find(f"{ids}/fa:NIP", N) is None
    assert value(root, "fa:Podmiot2/fa:Adres/fa:KodKraju") == "CZ"
    assert [value(root, f"fa:Fa/fa:{t}") for t in ("KodWaluty", "P_13_9", "P_15")] == ["EUR", "60.00", "60.00"]
    assert values(root, "fa:Fa/fa:FaWiersz/fa:P_12") == ["np II"]
    assert value(root, "fa:Fa/fa:Adnotacje/fa:P_18") == "1"


def test_a_consumer_has_no_tax_id() -> None:
    root = read(fa3_invoice(CONSUMER))
    assert value(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:BrakID") == "1"
    assert value(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:Nazwa") == "Jan Kowalski"


def test_a_buyer_outside_the_eu_is_named_by_country_and_tax_id() -> None:
    root = read(fa3_invoice(NORWAY))
    ids = "fa:Podmiot2/fa:DaneIdentyfikacyjne"
    assert [value(root, f"{ids}/fa:{t}") for t in ("KodKraju", "NrID")] == ["NO", "NO923609016MVA"]
    payment = root.find("fa:Fa/fa:Platnosc", N)
    assert payment is not None
    assert value(payment, "fa:TerminPlatnosci/fa:Termin") == "2026-12-07"
    assert payment.find("fa:FormaPlatnosci", N) is None and payment.find("fa:RachunekBankowy", N) is None


def test_an_interim_invoice_is_a_vat_invoice_with_its_sale_date() -> None:
    root = read(fa3_invoice(INTERIM))
    assert [value(root, f"fa:Fa/fa:{t}") for t in ("P_1", "P_6", "RodzajFaktury")] == [
        "2026-11-23",
        "2026-11-18",
        "VAT",
    ]


def test_a_retainer_s_invoice_covers_its_month() -> None:
    root = read(fa3_invoice(RETAINER))
    fa = root.find("fa:Fa", N)
    assert fa is not None and fa.find("fa:P_6", N) is None
    assert [value(fa, f"fa:OkresFa/fa:{t}") for t in ("P_6_Od", "P_6_Do")] == ["2026-11-01", "2026-11-30"]
    assert value(fa, "fa:RodzajFaktury") == "VAT"


def test_a_correction_refers_to_the_original_by_number_and_ksef_number() -> None:
    root = read(fa3_invoice(CORRECTION, original_ksef_number=ORIGINAL_KSEF_NUMBER))
    fa = root.find("fa:Fa", N)
    assert fa is not None
    assert [value(fa, f"fa:{t}") for t in ("P_1", "P_2", "RodzajFaktury", "PrzyczynaKorekty")] == [
        "2026-11-30",
        "FK/2026/000007",
        "KOR",
        "Filtry zwrócone",
    ]
    original = "fa:DaneFaKorygowanej"
    assert [
        value(fa, f"{original}/fa:{t}")
        for t in ("DataWystFaKorygowanej", "NrFaKorygowanej", "NrKSeF", "NrKSeFFaKorygowanej")
    ] == ["2026-11-23", "FV/2026/000042", "1", ORIGINAL_KSEF_NUMBER]
    # the credited amounts are the difference: negative
    assert [value(fa, f"fa:{t}") for t in ("P_13_2", "P_14_2", "P_15")] == ["-74.70", "-5.98", "-80.68"]
    assert [value(fa, f"fa:FaWiersz/fa:{t}") for t in ("P_8B", "P_9A", "P_11", "P_12")] == [
        "-3",
        "24.9",
        "-74.70",
        "8",
    ]
    assert fa.find("fa:P_6", N) is None and fa.find("fa:Platnosc", N) is None  # paid back, not asked for


def test_a_correction_of_an_invoice_without_a_ksef_number_says_so() -> None:
    root = read(fa3_invoice(CORRECTION))
    assert value(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFN") == "1"
    assert root.find("fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej", N) is None


def test_a_proforma_gets_no_fa3() -> None:
    proforma = ProformaIssued(
        id=INVOICE_ID,
        number="PF/2026/000001",
        job_id=JOB_ID,
        quote_id=JOB_ID,
        **{
            f: getattr(PLAIN, f)
            for f in ProformaIssued.__struct_fields__
            if f not in ("id", "number", "job_id", "quote_id")
        },
    )
    with pytest.raises(Fa3Refused) as refused:
        fa3_invoice(proforma)  # type: ignore[arg-type]  # what the type would refuse, refused at run time too
    assert refused.value.field == "document"


# --- what the product checks before it sends: what the XSD and KSeF would refuse --------------


@pytest.mark.parametrize(
    ("nip", "valid"),
    [
        ("5261040828", True),
        (BUYER_NIP, True),
        ("5261040827", False),  # the checksum is 8
        ("0261040828", False),  # no NIP starts with 0
        ("5001040828", False),  # nor has 00 in second and third place
        ("526104082", False),
        ("52610408281", False),
        ("1234563218", True),
        ("1234567890", False),  # the checksum would be 10: no NIP
    ],
)
def test_a_nip_by_its_pattern_and_checksum(nip: str, valid: bool) -> None:
    assert nip_valid(nip) is valid


def refused(document: InvoiceIssued | CreditNoteIssued, **options: str) -> Fa3Refused:
    found = fa3_refusal(document, **options)
    assert found is not None, "the document was let through"
    return found


def test_the_seller_needs_a_valid_nip_an_address_in_poland_and_a_name() -> None:
    assert refused(replace(PLAIN, seller=replace(SELLER, vat_id=""))).field == "seller.vat_id"
    wrong = refused(replace(PLAIN, seller=replace(SELLER, vat_id="PL5261040827")))
    assert (wrong.field, wrong.reason) == (
        "seller.vat_id",
        "'PL5261040827' is not a valid NIP (10 digits with its checksum)",
    )
    assert refused(replace(PLAIN, seller=replace(SELLER, vat_id="CZ12345678"))).field == "seller.vat_id"
    assert refused(replace(PLAIN, seller=replace(SELLER, address=None))).field == "seller.address"
    assert refused(replace(PLAIN, seller=replace(SELLER, address=ABROAD.address))).field == "seller.address.country"
    assert refused(replace(PLAIN, seller=replace(SELLER, name="   "))).field == "seller.name"
    # spaces and a dash in the NIP are only how it was typed
    assert fa3_refusal(replace(PLAIN, seller=replace(SELLER, vat_id="PL 526-104-08-28"))) is None


def test_the_buyer_s_identifier_must_be_one_ksef_knows() -> None:
    assert refused(replace(PLAIN, buyer=replace(COMPANY, vat_id="PL6808208875"))).field == "buyer.vat_id"
    assert refused(replace(PLAIN, buyer=replace(COMPANY, vat_id="6808208875"))).field == "buyer.vat_id"
    too_long = replace(EU_REVERSE, buyer=replace(ABROAD, vat_id="CZ1234567890123"))
    assert refused(too_long).field == "buyer.vat_id"
    assert refused(replace(NORWAY, buyer=replace(NORWAY.buyer, vat_id="N" * 51))).field == "buyer.vat_id"
    assert BUYER.address is not None
    unknown_country = replace(PLAIN, buyer=replace(BUYER, address=replace(BUYER.address, country="QQ")))
    assert refused(unknown_country).field == "buyer.address.country"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"number": ""}, "number"),
        ({"number": "F" * 257}, "number"),
        ({"number": "FV/\x86/1"}, "number"),  # KSeF refuses U+007F-U+009F but for U+0085
        ({"number": "FV/\ufdd0/1"}, "number"),  # a noncharacter
        ({"buyer": replace(COMPANY, name="N" * 513)}, "buyer.name"),
        ({"buyer": replace(COMPANY, email="nobody")}, "buyer.email"),
        ({"lines": [replace(INVOICE.lines[0], description="d" * 513)]}, "lines[0].description"),
        ({"lines": [replace(INVOICE.lines[0], description="", code="")]}, "lines[0].description"),
        ({"lines": [replace(INVOICE.lines[0], code="c" * 51)]}, "lines[0].code"),
        ({"lines": [replace(INVOICE.lines[0], unit="x" * 257)]}, "lines[0].unit"),
        ({"lines": []}, "lines"),
        ({"lines": [replace(INVOICE.lines[0], vat_rate=Decimal(19))]}, "lines[0].vat_rate"),
        ({"lines": [replace(INVOICE.lines[0], vat_category="L")]}, "lines[0].vat_rate"),
        ({"vat": [replace(PLAIN.vat[0], rate=Decimal("23.5"))]}, "vat[0].rate"),
        ({"vat": [VatSubtotal(category="Z", rate=Decimal(0), taxable=Decimal(1), vat=Decimal(1))]}, "vat[0].vat"),
        ({"lines": [replace(INVOICE.lines[0], net=Decimal("240.001"))]}, "lines[0].net"),
        ({"lines": [replace(INVOICE.lines[0], net=Decimal("1e17"))]}, "lines[0].net"),
        ({"lines": [replace(INVOICE.lines[0], quantity=Decimal("0.0000001"))]}, "lines[0].quantity"),
        ({"lines": [replace(INVOICE.lines[0], unit_price=Decimal("0.123456789"))]}, "lines[0].unit_price"),
        ({"lines": [replace(INVOICE.lines[0], unit_price=Decimal("1e15"))]}, "lines[0].unit_price"),
        ({"lines": [replace(INVOICE.lines[0], unit_price=Decimal("NaN"))]}, "lines[0].unit_price"),
        ({"gross_total": Decimal("369.005")}, "gross_total"),
        ({"gross_total": Decimal("Infinity")}, "gross_total"),
        ({"currency": "XXX"}, "currency"),
        ({"issue_date": date(2051, 1, 1)}, "issue_date"),
        ({"supply_date": date(2005, 12, 31)}, "supply_date"),
        ({"due_date": date(2016, 6, 30)}, "due_date"),
        ({"meta": replace(META, occurred_at=datetime(2025, 8, 31, 23, 59, tzinfo=UTC))}, "meta.occurred_at"),
        ({"meta": None, "issue_date": date(2025, 8, 31)}, "issue_date"),
        ({"seller": replace(SELLER, bank_account="PL61 1090")}, "seller.bank_account"),
        ({"seller": replace(SELLER, bank_account="PL" + "1" * 33)}, "seller.bank_account"),
    ],
)
def test_what_the_schema_or_ksef_would_refuse_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    assert refused(replace(PLAIN, **change)).field == field


def test_a_correction_s_reason_and_the_original_s_ksef_number_are_checked() -> None:
    assert refused(replace(CORRECTION, reason="r" * 257)).field == "reason"
    assert refused(CORRECTION, original_ksef_number="FV/2026/000042").field == "original_ksef_number"
    assert refused(replace(CORRECTION, invoice_number="")).field == "invoice_number"


def test_a_document_over_ksef_s_size_limit_is_refused() -> None:
    many = [replace(INVOICE.lines[0], description="D" * 512) for _ in range(2000)]
    assert refused(replace(PLAIN, lines=many)).field == "lines"


def test_whitespace_is_written_as_the_schema_reads_it() -> None:
    root = read(fa3_invoice(replace(PLAIN, buyer=replace(COMPANY, name="  Piekarnia\n\tKowalski\u00a0\x85  "))))
    # XML's own whitespace collapsed; a no-break space and NEL are letters to it
    assert value(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:Nazwa") == "Piekarnia Kowalski\u00a0\x85"


# --- whatever the checks let through, the schema takes ---------------------------------------

SCHEMA_FILE = VALIDATOR.parent / "artefacts" / "ksef" / "schemat_FA(3)_v1-0E.xsd"
BASE_SCHEMAS = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """The official FA(3) XSD, its imports pointed at the local copies (as validate.py does)."""
    tree = etree.parse(str(SCHEMA_FILE), etree.XMLParser(no_network=True, resolve_entities=False))
    for element in tree.getroot().iter("{http://www.w3.org/2001/XMLSchema}import"):
        location = element.get("schemaLocation") or ""
        if location.startswith(BASE_SCHEMAS):
            element.set("schemaLocation", str(SCHEMA_FILE.parent / "bazowe" / location.removeprefix(BASE_SCHEMAS)))
    return etree.XMLSchema(tree)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a value the product issues, one time in forty one that tests the checks."""
    return st.integers(0, 39).flatmap(lambda i: bad if i == 0 else good)


letters = st.characters(codec="utf-8", categories=["L", "N", "P", "Zs", "S"])
wild = st.text(st.characters(codec="utf-8"), max_size=600) | st.sampled_from(["", " \n ", "a\x85b", "x" * 257])
texts = mostly(st.text(letters, min_size=1, max_size=80).filter(lambda t: t.strip(" ")), wild)
amounts = mostly(st.decimals(min_value=-(10**6), max_value=10**6, places=2), st.decimals(places=None))
rates = mostly(
    st.sampled_from(
        [
            ("S", 23),
            ("S", 22),
            ("S", 8),
            ("S", 7),
            ("S", 5),
            ("S", 4),
            ("S", 3),
            ("Z", 0),
            ("E", 0),
            ("O", 0),
            ("AE", 0),
            ("K", 0),
            ("G", 0),
        ]
    ),
    st.sampled_from([("S", 19), ("S", 0), ("L", 0)]),
)
valid_nips = (
    st.integers(10**8, 10**9 - 1)
    .map(str)
    .map(lambda n: n + str(sum(int(d) * w for d, w in zip(n, (6, 5, 7, 2, 3, 4, 5, 6, 7), strict=True)) % 11))
    .filter(nip_valid)
)
vat_ids = mostly(
    st.one_of(
        st.just(""),
        valid_nips,
        valid_nips.map(lambda n: "PL" + n),
        st.sampled_from(["CZ12345678", "DE123456789", "EL094259216", "ATU12345678", "NO923609016MVA", "US 12-3456789"]),
    ),
    st.integers(10**9, 10**10 - 1).map(str) | st.sampled_from(["CZ" + "1" * 13, "DEabc", "XY1"]) | wild,
)
countries = mostly(st.sampled_from(["PL", "CZ", "DE", "NO", "US", "GR"]), st.sampled_from(["QQ", "EL"]))
addresses = st.builds(Address, street=texts, city=texts, postal_code=texts, country=countries) | st.none()
parties = st.builds(
    Party,
    name=texts,
    address=addresses,
    vat_id=vat_ids,
    email=mostly(st.sampled_from(["", "a@b.pl", "biuro@kowalski.example"]), wild),
    bank_account=mostly(st.sampled_from(["", "PL61 1090 1014 0000 0712 1981 2874", "CZ6508000000192000145399"]), wild),
)
sellers = mostly(st.just(SELLER), parties)
quantities = mostly(st.decimals(min_value=-1000, max_value=1000, places=3), st.decimals(places=None))
prices = mostly(st.decimals(min_value=0, max_value=10**6, places=4), st.decimals(places=None))


@st.composite
def lines_of(draw: st.DrawFn) -> InvoiceLine:
    category, rate = draw(rates)
    return InvoiceLine(
        kind="fee",
        code=draw(mostly(st.sampled_from(["", "repair", "c" * 50]), st.just("c" * 51) | wild)),
        description=draw(texts),
        quantity=draw(quantities),
        unit=draw(mostly(st.sampled_from(["hour", "piece", "flat", "visit", "quarter_hour"]), texts)),
        unit_price=draw(prices),
        net=draw(amounts),
        vat_rate=Decimal(rate),
        vat_category=category,
    )


@st.composite
def subtotals(draw: st.DrawFn) -> VatSubtotal:
    category, rate = draw(rates)
    vat = draw(amounts) if category == "S" else draw(mostly(st.just(Decimal("0.00")), amounts))
    return VatSubtotal(category=category, rate=Decimal(rate), taxable=draw(amounts), vat=vat)


days = mostly(st.dates(date(2025, 9, 1), date(2049, 12, 31)), st.dates(date(2004, 1, 1), date(2052, 1, 1)))
moments = mostly(
    st.datetimes(datetime(2025, 9, 1), datetime(2049, 12, 31), timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
)
invoices = st.builds(
    replace,
    st.just(PLAIN),
    number=texts,
    issue_date=days,
    supply_date=days,
    due_date=days,
    currency=mostly(st.sampled_from(["PLN", "EUR", "CZK"]), st.just("XXX")),
    seller=sellers,
    buyer=parties,
    lines=mostly(st.lists(lines_of(), min_size=1, max_size=4), st.just([])),
    vat=st.lists(subtotals(), max_size=3),
    gross_total=amounts,
    reverse_charge=st.booleans(),
    retainer_id=st.none() | st.just(INVOICE_ID),
    period=st.sampled_from(["", "2026-02", "2026-13", "x"]),
    meta=st.none() | st.builds(replace, st.just(META), occurred_at=moments),
)
credit_notes = st.builds(
    replace,
    st.just(CORRECTION),
    reason=texts,
    invoice_number=texts,
    invoice_issue_date=days,
    buyer=parties,
    lines=st.lists(lines_of(), min_size=1, max_size=4),
    vat=st.lists(subtotals(), max_size=3),
)


@needs_validator
def test_whatever_the_checks_let_through_the_schema_takes(schema: etree.XMLSchema) -> None:
    outcomes: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(
        document=invoices | credit_notes,
        ksef_number=st.sampled_from(["", ORIGINAL_KSEF_NUMBER, "nope"]),
        basis=st.sampled_from(["", EXEMPTION]),
    )
    def built_documents_validate(document: InvoiceIssued | CreditNoteIssued, ksef_number: str, basis: str) -> None:
        try:
            data = fa3_invoice(document, original_ksef_number=ksef_number, exemption_basis=basis)
        except Fa3Refused as refused:
            assert refused.field and refused.reason
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        assert not data.startswith(b"\xef\xbb\xbf")
        assert schema.validate(etree.fromstring(data)), f"{schema.error_log}\n{data.decode()}"
        outcomes["built"] = outcomes.get("built", 0) + 1

    built_documents_validate()
    # the checks were put to work both ways: many documents built (and valid), many refused
    assert outcomes.get("built", 0) >= 90 and outcomes.get("refused", 0) >= 50, outcomes
