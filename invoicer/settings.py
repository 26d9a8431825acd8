"""The invoicer's settings: the seller, the numbering series and pattern, and which job types
are invoiced on sign-off. Read from the environment once, when the process starts."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from events.contract import Address
from invoicer.pricing import Seller, invoice_number

DEFAULT_SERIES = "FV"
DEFAULT_PATTERN = "{series}/{year}/{sequence:06d}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    series: str = DEFAULT_SERIES
    credit_series: str = "KOR"
    proforma_series: str = "PRO"
    pattern: str = DEFAULT_PATTERN
    seller: Seller = Seller()
    sign_off_job_types: frozenset[str] = frozenset()  # invoiced on sign-off, not on completion

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
