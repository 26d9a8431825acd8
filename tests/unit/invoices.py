"""Documents as the invoicer issues them, for the unit tests of what is derived from them.

A Polish plumber's invoice to a Kraków bakery: two hours' work and a call-out at 23 %, three
filters at 8 %. The amounts are rounded as the pricing rounds them (line nets, then VAT per
rate), so the sums hold as EN 16931 wants them to (BR-CO-10, BR-S-08/09, BR-CO-15).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from events.contract import Address, CreditNoteIssued, InvoiceIssued, InvoiceLine, Party, VatSubtotal

INVOICE_ID = UUID("00000000-0000-0000-0000-00000000f001")
JOB_ID = UUID("00000000-0000-0000-0000-00000000f002")
CUSTOMER_ID = UUID("00000000-0000-0000-0000-00000000f003")
CREDIT_NOTE_ID = UUID("00000000-0000-0000-0000-00000000f004")

SELLER = Party(
    name="Instalacje Nowak sp. z o.o.",
    vat_id="PL5261040828",
    address=Address(street="ul. Długa 1", city="Kraków", postal_code="31-147", country="PL"),
    email="faktury@nowak.example",
    bank_account="PL61 1090 1014 0000 0712 1981 2874",
)
BUYER = Party(
    name="Piekarnia Kowalski",
    email="biuro@kowalski.example",
    address=Address(street="ul. Mariacka 7", city="Kraków", postal_code="31-042", country="PL"),
)

LINES = [
    InvoiceLine(
        kind="time",
        code="repair",
        description="Naprawa",
        quantity=Decimal(2),
        unit="started_hour",
        unit_price=Decimal("120.00"),
        net=Decimal("240.00"),
        vat_rate=Decimal(23),
        logged_minutes=110,
    ),
    InvoiceLine(
        kind="fee",
        code="callout",
        description="Dojazd",
        quantity=Decimal(1),
        unit="flat",
        unit_price=Decimal("60.00"),
        net=Decimal("60.00"),
        vat_rate=Decimal(23),
    ),
    InvoiceLine(
        kind="material",
        code="filter",
        description="Filtr F7",
        quantity=Decimal(3),
        unit="piece",
        unit_price=Decimal("24.90"),
        net=Decimal("74.70"),
        vat_rate=Decimal(8),
    ),
]
VAT = [
    VatSubtotal(category="S", rate=Decimal(23), taxable=Decimal("300.00"), vat=Decimal("69.00")),
    VatSubtotal(category="S", rate=Decimal(8), taxable=Decimal("74.70"), vat=Decimal("5.98")),
]

INVOICE = InvoiceIssued(
    id=INVOICE_ID,
    number="FV/2026/000042",
    series="FV",
    sequence=42,
    job_id=JOB_ID,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 23),
    supply_date=date(2026, 11, 20),
    due_date=date(2026, 12, 7),
    currency="PLN",
    language="pl",
    seller=SELLER,
    buyer=BUYER,
    lines=LINES,
    vat=VAT,
    net_total=Decimal("374.70"),
    vat_total=Decimal("74.98"),
    gross_total=Decimal("449.68"),
    payment_reference="RF43FV2026000042",
    job_type="repair",
    job_summary="Wymieniono filtr",
)

# the same work for a Czech company: reverse-charged, one rate, in euros
ABROAD = Party(
    name="Novák Stavby s.r.o.",
    vat_id="CZ12345678",
    email="ucetni@novak.example",
    address=Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ"),
)
REVERSE_CHARGED = InvoiceIssued(
    id=INVOICE_ID,
    number="FV/2026/000043",
    series="FV",
    sequence=43,
    job_id=JOB_ID,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 23),
    supply_date=date(2026, 11, 20),
    due_date=date(2026, 12, 7),
    currency="EUR",
    language="cs",
    seller=SELLER,
    buyer=ABROAD,
    lines=[
        InvoiceLine(
            kind="time",
            code="repair",
            description="Naprawa",
            quantity=Decimal(2),
            unit="started_hour",
            unit_price=Decimal("30.00"),
            net=Decimal("60.00"),
            vat_rate=Decimal(0),
            vat_category="AE",
            logged_minutes=95,
        )
    ],
    vat=[VatSubtotal(category="AE", rate=Decimal(0), taxable=Decimal("60.00"), vat=Decimal("0.00"))],
    net_total=Decimal("60.00"),
    vat_total=Decimal("0.00"),
    gross_total=Decimal("60.00"),
    payment_reference="RF16FV2026000043",
    reverse_charge=True,
    job_type="repair",
)

# the filters, returned: credited at their price
CREDIT_NOTE = CreditNoteIssued(
    id=CREDIT_NOTE_ID,
    number="FK/2026/000007",
    series="FK",
    sequence=7,
    invoice_id=INVOICE_ID,
    invoice_number=INVOICE.number,
    invoice_issue_date=INVOICE.issue_date,
    customer_id=CUSTOMER_ID,
    issue_date=date(2026, 11, 30),
    currency="PLN",
    language="pl",
    reason="Filtry zwrócone",
    seller=SELLER,
    buyer=BUYER,
    lines=[LINES[2]],
    vat=[VAT[1]],
    net_total=Decimal("74.70"),
    vat_total=Decimal("5.98"),
    gross_total=Decimal("80.68"),
    job_type="repair",
)
