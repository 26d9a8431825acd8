"""The price-list decider, given/when/then: the office creates a list and prices its activities."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from events.contract import (
    ActivityPriced,
    ActivityRemoved,
    CreatePriceList,
    PriceActivity,
    PriceListCreated,
    PriceListEvent,
    RemoveActivity,
    Role,
    Unit,
)
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from services.domain.parties import Activity, PriceList, decide_price_list, evolve_price_list

PRICES = UUID("00000000-0000-0000-0000-00000000d001")
CUSTOMER = UUID(int=1)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))

CREATED = PriceListCreated(id=PRICES, name="Kowalski", currency="PLN", customer_id=CUSTOMER)
REPAIR = ActivityPriced(
    id=PRICES,
    code="repair",
    name="Naprawa",
    unit=Unit.STARTED_HOUR,
    rate=Decimal("120.00"),
    minimum_charge=Decimal("60.00"),
    vat_rate=Decimal(23),
)


def given(*events: PriceListEvent) -> PriceList:
    prices = PriceList(id=PRICES)
    for event in events:
        prices = evolve_price_list(prices, event)
    return prices


def test_a_price_list_is_created_for_a_customer_or_as_the_catalogue() -> None:
    assert decide_price_list(
        CreatePriceList(name="Kowalski", currency="PLN", customer_id=CUSTOMER), given(), OFFICE
    ) == [CREATED]
    assert decide_price_list(CreatePriceList(name="Services", is_default=True), given(), OFFICE) == [
        PriceListCreated(id=PRICES, name="Services", currency="EUR", is_default=True)
    ]
    prices = given(CREATED)
    assert (prices.version, prices.name, prices.currency, prices.customer_id, prices.is_default) == (
        1,
        "Kowalski",
        "PLN",
        CUSTOMER,
        False,
    )


def test_a_price_list_is_created_once() -> None:
    with pytest.raises(InvalidTransition, match="cannot create it again: the price list is created"):
        decide_price_list(CreatePriceList(name="Again"), given(CREATED), OFFICE)


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
def test_only_the_office_changes_price_lists(ctx: Context) -> None:
    with pytest.raises(Forbidden, match="only the office may change price lists"):
        decide_price_list(CreatePriceList(name="Mine"), given(), ctx)


@pytest.mark.parametrize(
    "command",
    [
        PriceActivity(code="repair", name="Naprawa", unit=Unit.HOUR, rate=Decimal(100)),
        RemoveActivity(code="repair"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_nothing_happens_to_a_price_list_never_created(command: PriceActivity | RemoveActivity) -> None:
    with pytest.raises(NotFound, match=f"price list {PRICES} not found"):
        decide_price_list(command, given(), OFFICE)


def test_pricing_an_activity_adds_or_replaces_it() -> None:
    command = PriceActivity(
        code="repair",
        name="Naprawa",
        unit=Unit.STARTED_HOUR,
        rate=Decimal("120.00"),
        minimum_charge=Decimal("60.00"),
        vat_rate=Decimal(23),
    )
    assert decide_price_list(command, given(CREATED), OFFICE) == [REPAIR]
    assert given(CREATED, REPAIR).activities == {
        "repair": Activity(
            code="repair",
            name="Naprawa",
            unit=Unit.STARTED_HOUR,
            rate=Decimal("120.00"),
            minimum_charge=Decimal("60.00"),
            vat_rate=Decimal(23),
        )
    }
    dearer = ActivityPriced(
        id=PRICES, code="repair", name="Naprawa", unit=Unit.STARTED_HOUR, rate=Decimal("130.00"), vat_rate=Decimal(23)
    )
    assert given(CREATED, REPAIR, dearer).activities["repair"].rate == Decimal("130.00")


def test_an_activity_is_removed_only_if_the_list_has_it() -> None:
    assert decide_price_list(RemoveActivity(code="repair"), given(CREATED, REPAIR), OFFICE) == [
        ActivityRemoved(id=PRICES, code="repair")
    ]
    assert given(CREATED, REPAIR, ActivityRemoved(id=PRICES, code="repair")).activities == {}
    with pytest.raises(Invalid) as refused:
        decide_price_list(RemoveActivity(code="filter"), given(CREATED, REPAIR), OFFICE)
    assert (refused.value.field, refused.value.reason) == ("code", "no activity 'filter' on this price list")
