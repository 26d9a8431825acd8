"""The customer decider, given/when/then: given past events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from events.contract import (
    Address,
    AgreeRetainer,
    ChangeCustomerDetails,
    CustomerDetailsChanged,
    CustomerEvent,
    CustomerRegistered,
    EndRetainer,
    HoursPackageSold,
    RegisterCustomer,
    RetainerAgreed,
    RetainerEnded,
    Role,
    SellHoursPackage,
)
from services.domain.common import Actor, Context, Forbidden, Invalid, InvalidTransition, NotFound
from services.domain.parties import Customer, decide_customer, evolve_customer

CUSTOMER = UUID("00000000-0000-0000-0000-0000000000c1")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BRNO = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
DUBLIN = Address(street="1 Main Street", city="Dublin", postal_code="D01", country="IE")

OFFICE = Context(now=NOW, actor=Actor(id="olga", role=Role.OFFICE), company_currency="PLN")
ADMIN = Context(now=NOW, actor=Actor(id="root", role=Role.ADMIN))
TECHNICIAN = Context(now=NOW, actor=Actor(id="tom", role=Role.TECHNICIAN, technician_id=UUID(int=7)))
ACCOUNTANT = Context(now=NOW, actor=Actor(id="anna", role=Role.ACCOUNTANT))


def given(*events: CustomerEvent) -> Customer:
    customer = Customer(id=CUSTOMER)
    for event in events:
        customer = evolve_customer(customer, event)
    return customer


REGISTERED = CustomerRegistered(
    id=CUSTOMER, name="Pavel Novák", billing_address=BRNO, email="pavel@example.cz", language="cs", currency="CZK"
)


def test_a_registered_customer_keeps_what_the_office_gave() -> None:
    command = RegisterCustomer(
        name="Pavel Novák",
        billing_address=BRNO,
        email="pavel@example.cz",
        phone="+420 1",
        vat_id="CZ12345678",
        language="de",
        currency="EUR",
        payment_terms_days=30,
        wants_proforma=True,
    )
    assert decide_customer(command, given(), OFFICE) == [
        CustomerRegistered(
            id=CUSTOMER,
            name="Pavel Novák",
            billing_address=BRNO,
            email="pavel@example.cz",
            phone="+420 1",
            vat_id="CZ12345678",
            language="de",
            currency="EUR",
            payment_terms_days=30,
            wants_proforma=True,
        )
    ]


def test_a_customer_registered_without_language_or_currency_gets_the_country_s_and_the_seller_s() -> None:
    [event] = decide_customer(RegisterCustomer(name="Pavel Novák", billing_address=BRNO), given(), OFFICE)
    assert isinstance(event, CustomerRegistered)
    assert (event.language, event.currency, event.email) == ("cs", "PLN", "")  # Czech; the company's zloty
    [abroad] = decide_customer(RegisterCustomer(name="Aoife", billing_address=DUBLIN), given(), ADMIN)
    assert isinstance(abroad, CustomerRegistered)
    assert (abroad.language, abroad.currency) == ("en", "EUR")  # a language the documents do not speak: English


def test_registering_folds_into_the_customer() -> None:
    customer = given(REGISTERED)
    assert (customer.version, customer.name, customer.billing_address, customer.currency) == (
        1,
        "Pavel Novák",
        BRNO,
        "CZK",
    )


def test_a_customer_is_registered_only_once() -> None:
    with pytest.raises(InvalidTransition, match="cannot register it again: the customer is registered"):
        decide_customer(RegisterCustomer(name="Pavel Novák", billing_address=BRNO), given(REGISTERED), OFFICE)


@pytest.mark.parametrize("ctx", [TECHNICIAN, ACCOUNTANT], ids=["technician", "accountant"])
def test_only_the_office_changes_customers(ctx: Context) -> None:
    with pytest.raises(Forbidden, match="only the office may change customers"):
        decide_customer(RegisterCustomer(name="Pavel Novák", billing_address=BRNO), given(), ctx)
    with pytest.raises(Forbidden, match="only the office may change customers"):
        decide_customer(ChangeCustomerDetails(phone="+420 2"), given(REGISTERED), ctx)


@pytest.mark.parametrize(
    "command",
    [
        ChangeCustomerDetails(phone="+420 2"),
        SellHoursPackage(hours=Decimal(10)),
        AgreeRetainer(description="Maintenance", amount=Decimal(100), vat_rate=Decimal(21), first_month="2027-01"),
        EndRetainer(retainer_id=UUID(int=1), last_month="2027-06"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_nothing_happens_to_a_customer_never_registered(
    command: ChangeCustomerDetails | SellHoursPackage | AgreeRetainer | EndRetainer,
) -> None:
    with pytest.raises(NotFound, match=f"customer {CUSTOMER} not found"):
        decide_customer(command, given(), OFFICE)


def test_changing_details_records_only_what_changed() -> None:
    command = ChangeCustomerDetails(email="novak@example.cz", payment_terms_days=30)
    assert decide_customer(command, given(REGISTERED), OFFICE) == [
        CustomerDetailsChanged(id=CUSTOMER, email="novak@example.cz", payment_terms_days=30)
    ]
    changed = given(REGISTERED, CustomerDetailsChanged(id=CUSTOMER, email="novak@example.cz", payment_terms_days=30))
    assert (changed.email, changed.payment_terms_days, changed.name, changed.currency) == (
        "novak@example.cz",
        30,
        "Pavel Novák",
        "CZK",
    )


def test_a_change_must_name_a_detail() -> None:
    with pytest.raises(Invalid) as refused:
        decide_customer(ChangeCustomerDetails(), given(REGISTERED), OFFICE)
    assert (refused.value.field, refused.value.reason) == ("body", "name at least one detail to change")


def test_selling_hours_records_the_package() -> None:
    command = SellHoursPackage(hours=Decimal(10), warn_below_hours=Decimal(3), note="winter")
    [sold] = decide_customer(command, given(REGISTERED), OFFICE)
    assert isinstance(sold, HoursPackageSold)
    assert sold == HoursPackageSold(
        id=CUSTOMER, package_id=sold.package_id, hours=Decimal(10), warn_below_hours=Decimal(3), note="winter"
    )
    # the package's id is derived from the customer's state: the same decision, the same id; a later one, another
    assert decide_customer(command, given(REGISTERED), OFFICE) == [sold]
    [later] = decide_customer(command, given(REGISTERED, sold), OFFICE)
    assert isinstance(later, HoursPackageSold) and later.package_id != sold.package_id


MAINTENANCE = AgreeRetainer(
    description="Maintenance", amount=Decimal("100.00"), vat_rate=Decimal(21), first_month="2027-01"
)


def agreed() -> RetainerAgreed:
    [event] = decide_customer(MAINTENANCE, given(REGISTERED), OFFICE)
    assert isinstance(event, RetainerAgreed)
    return event


def test_agreeing_a_retainer_records_its_terms() -> None:
    event = agreed()
    assert event == RetainerAgreed(
        id=CUSTOMER,
        retainer_id=event.retainer_id,
        description="Maintenance",
        amount=Decimal("100.00"),
        vat_rate=Decimal(21),
        first_month="2027-01",
    )
    assert agreed().retainer_id == event.retainer_id  # derived, not random
    assert given(REGISTERED, event).retainers[event.retainer_id].first_month == "2027-01"


def test_ending_a_retainer_names_its_last_month() -> None:
    retainer = agreed()
    command = EndRetainer(retainer_id=retainer.retainer_id, last_month="2027-06")
    assert decide_customer(command, given(REGISTERED, retainer), OFFICE) == [
        RetainerEnded(id=CUSTOMER, retainer_id=retainer.retainer_id, last_month="2027-06")
    ]
    # ending in the month it starts is one month of service
    assert decide_customer(
        EndRetainer(retainer_id=retainer.retainer_id, last_month="2027-01"), given(REGISTERED, retainer), OFFICE
    )


def test_a_retainer_the_customer_does_not_have_cannot_be_ended() -> None:
    with pytest.raises(Invalid) as refused:
        decide_customer(EndRetainer(retainer_id=UUID(int=99), last_month="2027-06"), given(REGISTERED), OFFICE)
    assert refused.value.field == "retainer_id"
    assert "no retainer" in refused.value.reason


def test_a_retainer_ends_once() -> None:
    retainer = agreed()
    ended = RetainerEnded(id=CUSTOMER, retainer_id=retainer.retainer_id, last_month="2027-06")
    assert given(REGISTERED, retainer, ended).retainers[retainer.retainer_id].ended
    with pytest.raises(InvalidTransition, match="cannot end it again: the retainer is ended"):
        decide_customer(
            EndRetainer(retainer_id=retainer.retainer_id, last_month="2027-08"),
            given(REGISTERED, retainer, ended),
            OFFICE,
        )


def test_a_retainer_cannot_end_before_it_starts() -> None:
    retainer = agreed()
    with pytest.raises(Invalid) as refused:
        decide_customer(
            EndRetainer(retainer_id=retainer.retainer_id, last_month="2026-12"), given(REGISTERED, retainer), OFFICE
        )
    assert (refused.value.field, refused.value.reason) == ("last_month", "the retainer starts in 2027-01")
