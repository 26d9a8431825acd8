"""What the issued documents (invoice, pro forma, credit note) print: the parties, the
lines and the VAT subtotals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from msgspec import UNSET, Struct, UnsetType

from events.contract.values import Address


class Contact(Struct, frozen=True, kw_only=True):
    """Where a party's e-invoices go and whom to ask about them: the seller's contact point
    (BG-6, which XRechnung requires with a phone) and its electronic address (BT-34/BT-49)."""

    name: str = ""
    phone: str = ""
    reference: str = ""  # a buyer's BT-10: what they route the invoice by (a Leitweg-ID)
    electronic_address: str = ""
    electronic_address_scheme: str = ""  # EAS code: EM an email, 0204 a Leitweg-ID, 9930 a German VAT id


NO_CONTACT = Contact()


class Party(Struct, frozen=True, kw_only=True):
    name: str
    address: Address | None = None
    vat_id: str = ""
    email: str = ""
    bank_account: str = ""
    # Written only when given (msgspec leaves an UNSET field out), so the documents stored
    # before it existed still encode to the bytes in the stream.
    contact: Contact | UnsetType = UNSET


def contact_of(party: Party) -> Contact:
    """The party's contact, or an empty one."""
    return party.contact if isinstance(party.contact, Contact) else NO_CONTACT


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


class IssuedDocumentBase(Protocol):
    """What the three issued documents (``InvoiceIssued``, ``CreditNoteIssued``,
    ``ProformaIssued``) share, field for field: their common base, for the code that prints
    any of them (the PDF, the e-invoices, the emails) and for the type checker.

    It is a protocol, not a base struct, for two reasons. Each document must stay a
    subclass of its own aggregate's event (``InvoiceEvent``, ``CreditNoteEvent``,
    ``ProformaEvent``: the store and the projections route by them), and msgspec refuses a
    struct with two field-carrying bases ("instance lay-out conflict"). And a base struct's
    fields are encoded first, so every document would be stored in a new field order and no
    longer re-encode to the bytes in the stream. tests/unit/test_wire.py checks that the
    three declare these fields with these types.
    """

    @property
    def number(self) -> str: ...
    @property
    def customer_id(self) -> UUID: ...
    @property
    def issue_date(self) -> date: ...
    @property
    def currency(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def seller(self) -> Party: ...
    @property
    def buyer(self) -> Party: ...
    @property
    def lines(self) -> list[InvoiceLine]: ...
    @property
    def vat(self) -> list[VatSubtotal]: ...
    @property
    def net_total(self) -> Decimal: ...
    @property
    def vat_total(self) -> Decimal: ...
    @property
    def gross_total(self) -> Decimal: ...
    @property
    def reverse_charge(self) -> bool: ...
    @property
    def job_type(self) -> str: ...


# The shared fields' names, in the protocol's order.
DOCUMENT_FIELDS = tuple(name for name, value in vars(IssuedDocumentBase).items() if isinstance(value, property))
