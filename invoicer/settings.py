"""The invoicer's settings: the seller, the numbering series and pattern, and which job types
are invoiced on sign-off. Read from the environment once, when the process starts."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from events.contract import Address, Contact
from invoicer import romania
from invoicer.pricing import Seller, electronic_address, invoice_number

DEFAULT_SERIES = "FV"
DEFAULT_PATTERN = "{series}/{year}/{sequence:06d}"


def contact_from(env: dict[str, str]) -> Contact:
    """The seller's contact point on its e-invoices: JOBSTREAM_COMPANY_CONTACT_NAME,
    JOBSTREAM_COMPANY_PHONE and JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS, the last an email, or
    ``SCHEME:ID`` with an EAS scheme code (``0204:991-12345-67`` a Leitweg-ID, ``9930:DE123456789``
    a German VAT id). Without one, the company's email is its electronic address."""
    get = env.get
    address = (get("JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS") or get("JOBSTREAM_COMPANY_EMAIL") or "").strip()
    scheme, value = electronic_address(address)
    if value and not scheme.isalnum():
        raise SystemExit(
            f"JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS {address!r} is not usable: give an email, "
            "or SCHEME:ID with an EAS scheme code such as 0204 (a Leitweg-ID) or 9930 (a German VAT id)"
        )
    return Contact(
        name=(get("JOBSTREAM_COMPANY_CONTACT_NAME") or "").strip(),
        phone=(get("JOBSTREAM_COMPANY_PHONE") or "").strip(),
        electronic_address=value,
        electronic_address_scheme=scheme if value else "",
    )


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    series: str = DEFAULT_SERIES
    credit_series: str = "KOR"
    proforma_series: str = "PRO"
    pattern: str = DEFAULT_PATTERN
    seller: Seller = Seller()
    sign_off_job_types: frozenset[str] = frozenset()  # invoiced on sign-off, not on completion

    def missing(self) -> list[str]:
        """What the seller's country's e-invoices need and the settings do not give, each
        naming its setting: said at start-up, not found on the first invoice."""
        seller, said = self.seller, []
        if not seller.vat_id:
            said.append(
                "JOBSTREAM_COMPANY_VAT_ID is not set: invoices will lack the seller's VAT id, "
                "and their e-invoices will not pass EN 16931 (BR-S-02, BR-CO-26)"
            )
        if seller.address.country == "DE":
            needs = (
                ("JOBSTREAM_COMPANY_CONTACT_NAME", seller.contact.name, "the seller's contact name (BR-DE-5)"),
                ("JOBSTREAM_COMPANY_PHONE", seller.contact.phone, "the seller's phone (BR-DE-6)"),
                (
                    "JOBSTREAM_COMPANY_ELECTRONIC_ADDRESS",
                    seller.contact.electronic_address,
                    "the seller's electronic address (BT-34; JOBSTREAM_COMPANY_EMAIL would do)",
                ),
            )
            for name, value, what in needs:
                if not value:
                    said.append(f"{name} is not set: a German seller's XRechnung needs {what}")
            digits = sum(c.isdigit() for c in seller.contact.phone)
            if seller.contact.phone and digits < 3:
                said.append(f"JOBSTREAM_COMPANY_PHONE {seller.contact.phone!r} has fewer than three digits (BR-DE-27)")
        if seller.address.country == "RO" and not romania.county(seller.address):
            said.append(
                f"JOBSTREAM_COMPANY_POSTAL_CODE {seller.address.postal_code!r} is no Romanian postal code "
                "(six digits): a Romanian seller's CIUS-RO needs the county it gives (BR-RO-110)"
            )
        return said

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        get = env.get
        address = Address(
            street=get("JOBSTREAM_COMPANY_STREET") or "1 Main Street",
            city=get("JOBSTREAM_COMPANY_CITY") or "Springfield",
            postal_code=get("JOBSTREAM_COMPANY_POSTAL_CODE") or "00-001",
            country=get("JOBSTREAM_COMPANY_COUNTRY") or "PL",
        )
        seller = Seller(
            name=get("JOBSTREAM_COMPANY_NAME") or "jobstream demo services",
            address=address,
            vat_id=get("JOBSTREAM_COMPANY_VAT_ID", ""),
            email=get("JOBSTREAM_COMPANY_EMAIL", ""),
            bank_account=get("JOBSTREAM_COMPANY_IBAN", ""),
            timezone=get("JOBSTREAM_TIMEZONE") or "UTC",
            material_vat_rate=Decimal(get("JOBSTREAM_MATERIAL_VAT_RATE") or "23"),
            contact=contact_from(env),
        )
        sign_off = frozenset(t for t in (get("INVOICE_AFTER_SIGN_OFF") or "").split(",") if t.strip())
        pattern = get("INVOICE_NUMBER_PATTERN") or DEFAULT_PATTERN
        try:
            invoice_number(pattern, DEFAULT_SERIES, 2026, 1)
        except (KeyError, ValueError, IndexError) as error:  # fails at start-up, not on a job
            raise SystemExit(
                f"INVOICE_NUMBER_PATTERN {pattern!r} is not usable ({error}); "
                "use {series}, {year} and {sequence}, e.g. " + DEFAULT_PATTERN
            ) from None
        if "{sequence" not in pattern:
            raise SystemExit(f"INVOICE_NUMBER_PATTERN {pattern!r} lacks {{sequence}}: numbers would repeat")
        return cls(
            series=get("INVOICE_SERIES") or DEFAULT_SERIES,
            credit_series=get("CREDIT_NOTE_SERIES") or "KOR",
            pattern=pattern,
            seller=seller,
            sign_off_job_types=sign_off,
        )
