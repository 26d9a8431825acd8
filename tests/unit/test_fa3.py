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
from uuid import UUID

import pytest
from lxml import etree
from msgspec.structs import replace

from events.contract import Address, EventMeta, InvoiceLine, Party, ProformaIssued, VatSubtotal
from invoicer.ksef.fa3 import NS, Fa3Refused, fa3_invoice
from tests.unit.invoices import BUYER, CREDIT_NOTE, INVOICE, INVOICE_ID, JOB_ID, REVERSE_CHARGED, SELLER

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
