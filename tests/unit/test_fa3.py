"""A Polish invoice as KSeF's FA(3), from the issued document's event alone: given an issued
invoice or credit note, when it is built, then it passes the official FA(3) schema and its
fields, read back, are the event's."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from lxml import etree
from msgspec.structs import replace

from events.contract import EventMeta, VatSubtotal
from invoicer.ksef.fa3 import NS, fa3_invoice
from tests.unit.invoices import BUYER, INVOICE

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
