"""The customer: registration, details, prepaid hours and retainers."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from events.contract.base import Bound, Command, Event
from events.contract.values import (
    CONTROLS,
    Address,
    Currency,
    Email,
    Language,
    Money,
    OptionalText,
    Phone,
    Quantity,
    Text,
    VatRate,
    line,
    whole,
)


class CustomerEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "customer"


class CustomerRegistered(CustomerEvent, frozen=True, kw_only=True, tag=True):
    name: str
    billing_address: Address
    site_addresses: list[Address] = []
    email: str = ""
    phone: str = ""
    vat_id: str = ""
    language: str = "en"
    currency: str = "EUR"
    payment_terms_days: int = 14
    wants_proforma: bool = False  # a proforma invoice when a quote is accepted
    price_list_id: UUID | None = None
    # Written only when given (UNSET is left out), so earlier registrations keep their bytes:
    buyer_reference: str | UnsetType = UNSET  # BT-10 on their e-invoices: a German public buyer's Leitweg-ID
    electronic_address: str | UnsetType = UNSET  # BT-49: SCHEME:ID (EAS code), or an email


class CustomerDetailsChanged(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Only the fields that changed are set."""

    name: str | None = None
    billing_address: Address | None = None
    site_addresses: list[Address] | None = None
    email: str | None = None
    phone: str | None = None
    vat_id: str | None = None
    language: str | None = None
    currency: str | None = None
    payment_terms_days: int | None = None
    wants_proforma: bool | None = None
    price_list_id: UUID | None = None
    buyer_reference: str | UnsetType = UNSET
    electronic_address: str | UnsetType = UNSET


class HoursPackageSold(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Prepaid hours: the customer's time is billed from these first."""

    package_id: UUID
    hours: Decimal
    warn_below_hours: Decimal = Decimal(2)
    note: str = ""


class PrepaidHoursConsumed(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """Recorded by the invoicer with the invoice that used the hours."""

    minutes: int
    job_id: UUID
    invoice_id: UUID
    balance_minutes: int  # left after this


class RetainerAgreed(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """A monthly flat fee, invoiced on the first of each month from ``first_month`` on."""

    retainer_id: UUID
    description: str
    amount: Decimal  # net, in the customer's currency
    vat_rate: Decimal
    first_month: str  # YYYY-MM


class RetainerEnded(CustomerEvent, frozen=True, kw_only=True, tag=True):
    retainer_id: UUID
    last_month: str  # YYYY-MM, the last month invoiced


class PrepaidBalanceLow(CustomerEvent, frozen=True, kw_only=True, tag=True):
    """The prepaid balance fell below the package's warning level: time to offer another."""

    balance_minutes: int
    warn_below_minutes: int


CustomerEvents = (
    CustomerRegistered
    | CustomerDetailsChanged
    | HoursPackageSold
    | PrepaidHoursConsumed
    | PrepaidBalanceLow
    | RetainerAgreed
    | RetainerEnded
)


# What the customer's e-invoices are routed by: BT-10, a Leitweg-ID such as 991-12345-67 or
# their own reference; BT-49, an email or SCHEME:ID with an EAS code (0204:991-12345-67,
# 0088:4000001000005).
BuyerReference = Annotated[str, line(100)]
ElectronicAddress = Annotated[
    str,
    Meta(
        max_length=200,
        pattern=whole(
            rf"([^@\s{CONTROLS}]+@[^@\s{CONTROLS}]+\.[^@\s{CONTROLS}]+|[0-9A-Z]{{2,4}}:[^\s{CONTROLS}]{{1,100}})?"
        ),
    ),
]


class RegisterCustomer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    billing_address: Address
    site_addresses: Annotated[list[Address], Meta(max_length=50)] = []
    email: Email | None = None
    phone: Phone = ""
    vat_id: Annotated[str, Meta(pattern=whole(r"([A-Z]{2}[A-Za-z0-9]{2,14})?"))] = ""
    # not given: the language of the billing address's country, and the seller's currency
    language: Language | None = None
    currency: Currency | None = None
    payment_terms_days: Annotated[int, Meta(ge=0, le=365)] = 14
    wants_proforma: bool = False
    price_list_id: UUID | None = None
    buyer_reference: BuyerReference = ""
    electronic_address: ElectronicAddress = ""


class ChangeCustomerDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text | None = None
    billing_address: Address | None = None
    site_addresses: Annotated[list[Address], Meta(max_length=50)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    vat_id: Annotated[str, Meta(pattern=whole(r"([A-Z]{2}[A-Za-z0-9]{2,14})?"))] | None = None
    language: Language | None = None
    currency: Currency | None = None
    payment_terms_days: Annotated[int, Meta(ge=0, le=365)] | None = None
    wants_proforma: bool | None = None
    price_list_id: UUID | None = None
    buyer_reference: BuyerReference | None = None
    electronic_address: ElectronicAddress | None = None


class SellHoursPackage(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prepaid hours for a customer: their time is billed from these first."""

    hours: Quantity
    warn_below_hours: Quantity = Decimal(2)
    note: OptionalText = ""

    decimals: ClassVar[dict[str, Bound]] = {
        "hours": Bound(Decimal(0), Decimal(100_000), low_inclusive=False),
        "warn_below_hours": Bound(Decimal(0), Decimal(100_000)),
    }


Month = Annotated[str, Meta(pattern=whole(r"\d{4}-(0[1-9]|1[0-2])"))]


class AgreeRetainer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A monthly flat-rate service agreement, invoiced on schedule."""

    description: Text
    amount: Money
    vat_rate: VatRate
    first_month: Month

    decimals: ClassVar[dict[str, Bound]] = {
        "amount": Bound(Decimal(0), Decimal("1e9"), low_inclusive=False),
        "vat_rate": Bound(Decimal(0), Decimal(100)),
    }


class EndRetainer(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    retainer_id: UUID
    last_month: Month
