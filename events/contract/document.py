"""What the issued documents (invoice, pro forma, credit note) print: the parties, the
lines and the VAT subtotals."""

from __future__ import annotations

from decimal import Decimal

from msgspec import Struct

from events.contract.values import Address


class Party(Struct, frozen=True, kw_only=True):
    name: str
    address: Address | None = None
    vat_id: str = ""
    email: str = ""
    bank_account: str = ""


class InvoiceLine(Struct, frozen=True, kw_only=True):
    """One billed line. Time lines keep the minutes logged; the quantity is derived from them."""

    kind: str  # time, material, fee
    code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    vat_rate: Decimal
    vat_category: str = "S"  # EN 16931: S standard, Z zero, AE reverse charge
    logged_minutes: int = 0


class VatSubtotal(Struct, frozen=True, kw_only=True):
    category: str
    rate: Decimal
    taxable: Decimal
    vat: Decimal
