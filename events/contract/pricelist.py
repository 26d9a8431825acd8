"""Price lists and the service catalogue."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from events.contract.base import Bound, Command, Event
from events.contract.values import Code, Currency, Money, Text, Unit, VatRate


class PriceListEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "pricelist"


class PriceListCreated(PriceListEvent, frozen=True, kw_only=True, tag=True):
    name: str
    currency: str
    is_default: bool = False
    customer_id: UUID | None = None


class ActivityPriced(PriceListEvent, frozen=True, kw_only=True, tag=True):
    code: str
    name: str
    unit: Unit
    rate: Decimal
    minimum_charge: Decimal = Decimal(0)
    vat_rate: Decimal = Decimal(0)


class ActivityRemoved(PriceListEvent, frozen=True, kw_only=True, tag=True):
    code: str


PriceListEvents = PriceListCreated | ActivityPriced | ActivityRemoved


class CreatePriceList(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    currency: Currency = "EUR"
    is_default: bool = False
    customer_id: UUID | None = None


class PriceActivity(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: Text
    unit: Unit
    rate: Money
    minimum_charge: Money = Decimal(0)
    vat_rate: VatRate = Decimal(0)

    decimals: ClassVar[dict[str, Bound]] = {
        "rate": Bound(Decimal(0), Decimal("1e9")),
        "minimum_charge": Bound(Decimal(0), Decimal("1e9")),
        "vat_rate": Bound(Decimal(0), Decimal(100)),
    }


class RemoveActivity(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
