"""A German seller's e-invoices are XRechnung 3.0: given its invoices and credit notes (two
rates, prepaid hours, reverse charge, a household), then the UBL, the CII and the Factur-X
PDF pass KoSIT's rules with no fatal and no warning finding, while a Polish seller's stay
plain EN 16931; and the settings that the XRechnung needs are named at start-up when
missing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.etree import ElementTree as ET

import pytest
from msgspec.structs import replace

from events.contract import Address, Contact, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, VatSubtotal
from invoicer.documents import Branding
from invoicer.einvoice import EN16931, PEPPOL_BILLING, XRECHNUNG, ubl_invoice
from invoicer.facturx import PRODUCER, cii_invoice
from invoicer.settings import Settings
from invoicer.writer import render_pdf
from tests.unit.invoices import CREDIT_NOTE, CUSTOMER_ID, INVOICE

VALIDATOR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "einvoice" / "validate.py"
UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}

SELLER = Party(
    name="Müller Haustechnik GmbH",
    vat_id="DE136695976",
    address=Address(street="Hauptstraße 5", city="Dresden", postal_code="01067", country="DE"),
    email="rechnung@mueller.example",
    bank_account="DE89 3704 0044 0532 0130 00",
    contact=Contact(
        name="Anna Müller",
        phone="+49 351 1234567",
        electronic_address="rechnung@mueller.example",
        electronic_address_scheme="EM",
    ),
)
HOUSEHOLD = Party(
    name="Familie Schmidt",
    email="schmidt@familie.example",
    address=Address(street="Marktplatz 1", city="Leipzig", postal_code="04109", country="DE"),
)
AUSTRIAN_BUSINESS = Party(
    name="Gruber Bau GmbH",
    vat_id="ATU13585627",
    email="buchhaltung@gruber.example",
    address=Address(street="Ringstraße 3", city="Wien", postal_code="1010", country="AT"),
)


def line(kind: str, code: str, quantity: str, unit: str, price: str, net: str, rate: int, **more: Any) -> InvoiceLine:
    return InvoiceLine(
        kind=kind,
        code=code,
        description=code.capitalize(),
        quantity=Decimal(quantity),
        unit=unit,
        unit_price=Decimal(price),
        net=Decimal(net),
        vat_rate=Decimal(rate),
        **more,
    )


GERMAN = InvoiceIssued(
    id=UUID(int=0xD001),
    number="RE/2026/000017",
    series="RE",
    sequence=17,
    job_id=UUID(int=0xD002),
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 23),
    supply_date=date(2026, 11, 20),
    due_date=date(2026, 12, 7),
    currency="EUR",
    language="de",
    seller=SELLER,
    buyer=HOUSEHOLD,
    lines=[
        line("prepaid", "wartung", "1", "hour", "0", "0.00", 19, logged_minutes=60),
        line("time", "wartung", "2", "started_hour", "85.00", "170.00", 19, logged_minutes=95),
        line("fee", "anfahrt", "1", "visit", "35.00", "35.00", 19),
        line("material", "filter", "3", "piece", "12.90", "38.70", 7),
    ],
    vat=[
        VatSubtotal(category="S", rate=Decimal(19), taxable=Decimal("205.00"), vat=Decimal("38.95")),
        VatSubtotal(category="S", rate=Decimal(7), taxable=Decimal("38.70"), vat=Decimal("2.71")),
    ],
    net_total=Decimal("243.70"),
    vat_total=Decimal("41.66"),
    gross_total=Decimal("285.36"),
    payment_reference="RF97RE2026000017",
    job_type="maintenance",
)
REVERSE_CHARGED = replace(
    GERMAN,
    number="RE/2026/000018",
    sequence=18,
    buyer=AUSTRIAN_BUSINESS,
    lines=[line("time", "wartung", "2", "hour", "85.00", "170.00", 0, vat_category="AE", logged_minutes=120)],
    vat=[VatSubtotal(category="AE", rate=Decimal(0), taxable=Decimal("170.00"), vat=Decimal("0.00"))],
    net_total=Decimal("170.00"),
    vat_total=Decimal("0.00"),
    gross_total=Decimal("170.00"),
    reverse_charge=True,
)
CREDITED = CreditNoteIssued(
    id=UUID(int=0xD004),
    number="GS/2026/000002",
    series="GS",
    sequence=2,
    invoice_id=GERMAN.id,
    invoice_number=GERMAN.number,
    invoice_issue_date=GERMAN.issue_date,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 30),
    currency="EUR",
    language="de",
    reason="Filter zurückgegeben",
    seller=SELLER,
    buyer=HOUSEHOLD,
    lines=[GERMAN.lines[3]],
    vat=[GERMAN.vat[1]],
    net_total=Decimal("38.70"),
    vat_total=Decimal("2.71"),
    gross_total=Decimal("41.41"),
    job_type="maintenance",
)
CASES: dict[str, InvoiceIssued | CreditNoteIssued] = {
    "invoice": GERMAN,
    "reverse-charge": REVERSE_CHARGED,
    "credit-note": CREDITED,
}


def validate(paths: list[Path], *profile: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), *profile, "--json", "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports: list[dict[str, Any]] = json.loads(result.stdout)
    return reports


def serious(report: dict[str, Any]) -> list[str]:
    """The fatal and warning findings of a file (information ones are advice)."""
    return [f"{f['flag']} {f['id']}" for f in report["findings"] if f["flag"] in ("fatal", "warning")]


def test_a_german_seller_s_ubl_names_xrechnung_the_process_both_addresses_and_the_contact() -> None:
    root = ET.fromstring(ubl_invoice(GERMAN))
    assert root.findtext("cbc:CustomizationID", namespaces=UBL) == XRECHNUNG
    assert root.findtext("cbc:ProfileID", namespaces=UBL) == PEPPOL_BILLING
    seller = root.find("cac:AccountingSupplierParty/cac:Party", UBL)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", UBL)
    assert seller is not None and buyer is not None
    endpoint = seller.find("cbc:EndpointID", UBL)
    assert endpoint is not None and (endpoint.text, endpoint.get("schemeID")) == ("rechnung@mueller.example", "EM")
    assert [seller.findtext(f"cac:Contact/cbc:{tag}", namespaces=UBL) for tag in ("Name", "Telephone")] == [
        "Anna Müller",
        "+49 351 1234567",
    ]
    assert buyer.findtext("cbc:EndpointID", namespaces=UBL) == "schmidt@familie.example"  # the buyer's email


def test_a_german_seller_s_cii_has_the_seller_contact_group() -> None:
    root = ET.fromstring(cii_invoice(GERMAN))
    context = "rsm:ExchangedDocumentContext/ram:"
    assert root.findtext(context + "GuidelineSpecifiedDocumentContextParameter/ram:ID", namespaces=CII) == XRECHNUNG
    assert root.findtext(context + "BusinessProcessSpecifiedDocumentContextParameter/ram:ID", namespaces=CII) == (
        PEPPOL_BILLING
    )
    seller = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty", CII)
    assert seller is not None
    assert seller.findtext("ram:DefinedTradeContact/ram:PersonName", namespaces=CII) == "Anna Müller"
    phone = "ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber"
    assert seller.findtext(phone, namespaces=CII) == "+49 351 1234567"


def test_another_seller_s_documents_stay_plain_en16931() -> None:
    assert ET.fromstring(ubl_invoice(INVOICE)).findtext("cbc:CustomizationID", namespaces=UBL) == EN16931
    guideline = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    assert ET.fromstring(cii_invoice(INVOICE)).findtext(guideline, namespaces=CII) == EN16931


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_the_german_ubl_and_cii_pass_xrechnung_and_the_others_en16931(tmp_path: Path) -> None:
    german = []
    for name, document in CASES.items():
        for syntax, write in (("ubl", ubl_invoice), ("cii", cii_invoice)):
            path = tmp_path / f"de-{name}-{syntax}.xml"
            path.write_bytes(write(document))
            german.append(path)
    reports = validate(german, "--profile", "xrechnung")
    assert {Path(r["file"]).name: serious(r) for r in reports} == {p.name: [] for p in german}
    assert all(r["valid"] for r in reports)
    others = []
    for name, document in (("invoice", INVOICE), ("credit-note", CREDIT_NOTE)):
        for syntax, write in (("ubl", ubl_invoice), ("cii", cii_invoice)):
            path = tmp_path / f"pl-{name}-{syntax}.xml"
            path.write_bytes(write(document))
            others.append(path)
    reports = validate(others)
    assert {Path(r["file"]).name: serious(r) for r in reports} == {p.name: [] for p in others}


@pytest.fixture(scope="module")
def pdfs() -> dict[str, bytes]:
    return {
        "de": render_pdf(GERMAN, Branding()),
        "de-credit": render_pdf(CREDITED, Branding()),
        "pl": render_pdf(INVOICE, Branding()),
    }


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_the_factur_x_pdf_carries_the_profile_of_its_xml(pdfs: dict[str, bytes], tmp_path: Path) -> None:
    paths = []
    for name, pdf in pdfs.items():
        (tmp_path / f"{name}.pdf").write_bytes(pdf)
        paths.append(tmp_path / f"{name}.pdf")
    german, other = validate(paths[:2], "--profile", "xrechnung"), validate(paths[2:])
    assert [(serious(r), r["info"]["fx"]["ConformanceLevel"]) for r in german] == [([], "XRECHNUNG")] * 2
    assert [(serious(r), r["info"]["fx"]["ConformanceLevel"]) for r in other] == [([], "EN 16931")]
    assert not any(r["info"].get("xmp_rdf_about_missing") for r in german + other)


def test_the_pdf_s_information_dictionary_and_xmp_agree(pdfs: dict[str, bytes]) -> None:
    """PDF/A-3: the same Producer and Keywords in the information dictionary and the XMP,
    and every rdf:Description names what it is about."""
    from pypdf import PdfReader

    for pdf in pdfs.values():
        reader = PdfReader(io.BytesIO(pdf))
        info, xmp = reader.metadata, reader.xmp_metadata
        assert info is not None and xmp is not None
        assert info["/Producer"] == xmp.pdf_producer == PRODUCER
        assert info["/Keywords"] == xmp.pdf_keywords and "Factur-X" in info["/Keywords"]
        assert info["/Title"] == xmp.dc_title["x-default"]
        descriptions = xmp.rdf_root.getElementsByTagNameNS("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "Description")
        assert descriptions and all(
            d.hasAttributeNS("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "about") for d in descriptions
        )


def test_the_seller_s_contact_and_electronic_address_are_company_settings() -> None:
    env = {
        "JOBSTREAM_COMPANY_COUNTRY": "DE",
        "JOBSTREAM_COMPANY_VAT_ID": "DE136695976",
        "JOBSTREAM_COMPANY_EMAIL": "rechnung@mueller.example",
        "JOBSTREAM_COMPANY_CONTACT_NAME": "Anna Müller",
        "JOBSTREAM_COMPANY_PHONE": "+49 351 1234567",
    }
    settings = Settings.from_env(env)
    assert settings.seller.contact == Contact(
        name="Anna Müller",
        phone="+49 351 1234567",
        electronic_address="rechnung@mueller.example",
        electronic_address_scheme="EM",
    )  # no electronic address of its own: the company's email
    assert settings.missing() == []
    assert settings.seller.party().contact == settings.seller.contact
    leitweg = Settings.from_env({**env, "JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS": "0204:991-12345-67"}).seller.contact
    assert (leitweg.electronic_address_scheme, leitweg.electronic_address) == ("0204", "991-12345-67")
    with pytest.raises(SystemExit, match="JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS"):
        Settings.from_env({**env, "JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS": "99 30:DE1"})


def test_start_up_names_each_setting_a_german_seller_s_xrechnung_lacks() -> None:
    said = Settings.from_env({"JOBSTREAM_COMPANY_COUNTRY": "DE", "JOBSTREAM_COMPANY_PHONE": "12"}).missing()
    assert [s.split(" ", 1)[0] for s in said] == [
        "JOBSTREAM_COMPANY_VAT_ID",
        "JOBSTREAM_COMPANY_CONTACT_NAME",
        "JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS",
        "JOBSTREAM_COMPANY_PHONE",
    ]
    assert "BR-DE-27" in said[-1] and "BR-DE-5" in said[1]
    polish = Settings.from_env({"JOBSTREAM_COMPANY_COUNTRY": "PL", "JOBSTREAM_COMPANY_VAT_ID": "PL5261040828"})
    assert polish.missing() == []  # EN 16931 needs no contact point
    assert polish.seller.party().contact == Settings.from_env({}).seller.party().contact  # none given: left out


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_the_pdfs_pass_pikepdf_s_pdfa_3b_rules_but_those_it_cannot_read(pdfs: dict[str, bytes], tmp_path: Path) -> None:
    """pikepdf.pdfa, an allowlist PDF/A validator built from veraPDF's rule catalogue, reads
    no XMP extension schema and no embedded file: the validator sets aside what it reports
    on those, the fx: properties and factur-x.xml, and nothing else may be found."""
    pytest.importorskip("pikepdf.pdfa")
    paths = []
    for name, pdf in pdfs.items():
        (tmp_path / f"{name}.pdf").write_bytes(pdf)
        paths.append(tmp_path / f"{name}.pdf")
    reports = validate(paths, "--pdfa-allowlist")
    assert [r["info"]["pdfa_allowlist"].rsplit(", ", 1)[1] for r in reports] == ["0 other"] * len(paths)
    assert [[f["id"] for f in r["findings"] if f["source"] == "pdfa"] for r in reports] == [[]] * len(paths)


LEITWEG = "991-12345-67"


def test_a_public_buyer_s_leitweg_id_and_electronic_address_are_kept_on_the_customer() -> None:
    """Given a German authority registered with its Leitweg-ID, when the office changes its
    electronic address, then its invoices carry both: BT-10 and BT-49 with its scheme."""
    import msgspec

    from events.contract import ChangeCustomerDetails, CustomerRegistered, RegisterCustomer
    from invoicer.pricing import buyer_of
    from tests.unit.test_customer_decider import OFFICE, given

    authority = Address(street="Rathausplatz 1", city="Dresden", postal_code="01067", country="DE")
    (registered,) = decide_customer_of(
        RegisterCustomer(name="Stadt Dresden", billing_address=authority, buyer_reference=LEITWEG), given(), OFFICE
    )
    assert isinstance(registered, CustomerRegistered) and registered.buyer_reference == LEITWEG
    (changed,) = decide_customer_of(
        ChangeCustomerDetails(electronic_address=f"0204:{LEITWEG}"), given(registered), OFFICE
    )
    buyer = buyer_of(registered.id, [registered, changed])
    assert (buyer.buyer_reference, buyer.electronic_address) == (LEITWEG, f"0204:{LEITWEG}")
    root = ET.fromstring(ubl_invoice(replace(GERMAN, buyer=buyer.party())))
    assert root.findtext("cbc:BuyerReference", namespaces=UBL) == LEITWEG
    endpoint = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", UBL)
    assert endpoint is not None and (endpoint.text, endpoint.get("schemeID")) == (LEITWEG, "0204")
    cii = ET.fromstring(cii_invoice(replace(GERMAN, buyer=buyer.party())))
    assert cii.findtext(".//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference", namespaces=CII) == LEITWEG
    # a registration without them is stored as before: the fields are left out
    (plain,) = decide_customer_of(RegisterCustomer(name="Familie Schmidt", billing_address=authority), given(), OFFICE)
    assert b"buyer_reference" not in msgspec.json.encode(plain)
    assert buyer_of(plain.id, [plain]).party().contact == msgspec.UNSET


def decide_customer_of(command: Any, customer: Any, ctx: Any) -> list[Any]:
    from services.domain.parties import decide_customer

    return list(decide_customer(command, customer, ctx))


@pytest.mark.parametrize("address", ["0204 991", "not an address", "@x.de", "0204:", "a@b"])
def test_an_electronic_address_that_is_neither_an_email_nor_scheme_and_id_is_refused(address: str) -> None:
    import msgspec

    from events.contract import ChangeCustomerDetails

    with pytest.raises(msgspec.ValidationError, match="electronic_address"):
        msgspec.json.decode(json.dumps({"electronic_address": address}), type=ChangeCustomerDetails)


@pytest.mark.skipif(not VALIDATOR.exists(), reason="the e-invoice validator (../shared/tools/einvoice) is not here")
def test_an_invoice_to_a_public_buyer_passes_xrechnung(tmp_path: Path) -> None:
    buyer = replace(
        HOUSEHOLD,
        name="Stadt Dresden",
        contact=Contact(reference=LEITWEG, electronic_address=LEITWEG, electronic_address_scheme="0204"),
    )
    paths = []
    for syntax, write in (("ubl", ubl_invoice), ("cii", cii_invoice)):
        for name, document in (("invoice", replace(GERMAN, buyer=buyer)), ("credit", replace(CREDITED, buyer=buyer))):
            path = tmp_path / f"{name}-{syntax}.xml"
            path.write_bytes(write(document))
            paths.append(path)
    assert [serious(r) for r in validate(paths, "--profile", "xrechnung")] == [[]] * 4
