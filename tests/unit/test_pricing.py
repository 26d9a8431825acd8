"""Pricing, given a job's events and a price list: the lines, the VAT breakdown and the totals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given as hypothesis_given
from hypothesis import strategies as st

from events.contract import (
    Address,
    BillingKind,
    JobCompleted,
    JobEvent,
    JobRequested,
    MaterialUsed,
    Priority,
    Source,
    TimeEntryAdded,
    TimeEntryCorrected,
    Unit,
    WorkStarted,
)
from invoicer.pricing import (
    Activity,
    Buyer,
    Seller,
    Unbillable,
    Unpriced,
    bill,
    creditor_reference,
    invoice_number,
    quantity,
    variable_symbol,
    work_of,
)

JOB = UUID("00000000-0000-0000-0000-0000000000aa")
TECH = uuid4()
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SITE = Address(street="Údolní 12", city="Brno", postal_code="602 00", country="CZ")
SELLER = Seller(address=Address(street="Długa 1", city="Kraków", postal_code="31-147", country="PL"))
BUYER = Buyer(id=uuid4(), name="Novák Stavby", billing_address=SITE, currency="CZK")
PRICES = {
    "repair": Activity(
        code="repair", name="Repair work", unit=Unit.STARTED_HOUR, rate=Decimal("50.00"), vat_rate=Decimal(23)
    ),
    "seal-22": Activity(code="seal-22", name="Seal 22 mm", unit=Unit.PIECE, rate=Decimal("3.40"), vat_rate=Decimal(8)),
}


def requested(**fields: object) -> JobRequested:
    values = {
        "id": JOB,
        "source": Source.PHONE,
        "customer_id": BUYER.id,
        "site_address": SITE,
        "job_type": "repair",
        "description": "Boiler leaks",
        **fields,
    }
    return JobRequested(**values)  # type: ignore[arg-type]


def worked(minutes: int, activity: str = "", billable: bool = True, entry: UUID | None = None) -> TimeEntryAdded:
    return TimeEntryAdded(
        id=JOB,
        technician_id=TECH,
        entry_id=entry or uuid4(),
        started_at=NOW,
        minutes=minutes,
        billable=billable,
        activity=activity,
    )


def completed_job(*events: JobEvent, **fields: object) -> object:
    return work_of(
        JOB,
        [
            requested(**fields),
            WorkStarted(id=JOB, technician_id=TECH, entry_id=uuid4(), started_at=NOW),
            *events,
            JobCompleted(id=JOB, summary="Seal replaced"),
        ],
    )


def test_two_hours_ten_at_started_hour_bills_three_hours_and_keeps_the_minutes() -> None:
    result = bill(completed_job(worked(130)), BUYER, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    (line,) = result.lines
    assert (line.quantity, line.unit_price, line.net, line.logged_minutes) == (
        Decimal(3),
        Decimal("50.00"),
        Decimal("150.00"),
        130,
    )


@pytest.mark.parametrize(
    ("unit", "minutes", "expected"),
    [
        (Unit.HOUR, 130, Decimal("2.17")),
        (Unit.STARTED_HOUR, 121, Decimal(3)),
        (Unit.STARTED_HOUR, 120, Decimal(2)),
        (Unit.QUARTER_HOUR, 130, Decimal(9)),
        (Unit.FLAT, 600, Decimal(1)),
    ],
)
def test_quantities_per_unit(unit: Unit, minutes: int, expected: Decimal) -> None:
    assert quantity(unit, minutes, entries=2) == expected


def test_several_vat_rates_are_broken_down_and_rounded_once_per_rate() -> None:
    seals = MaterialUsed(id=JOB, code="seal-22", description="Seal 22 mm", quantity=Decimal(3))
    result = bill(completed_job(worked(130), seals), BUYER, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    assert [(v.rate, v.taxable, v.vat) for v in result.vat] == [
        (Decimal(23), Decimal("150.00"), Decimal("34.50")),
        (Decimal(8), Decimal("10.20"), Decimal("0.82")),
    ]
    assert (result.net_total, result.vat_total, result.gross_total) == (
        Decimal("160.20"),
        Decimal("35.32"),
        Decimal("195.52"),
    )


def test_a_correction_and_non_billable_time_change_what_is_billed_not_what_was_logged() -> None:
    entry = uuid4()
    work = completed_job(
        worked(50, entry=entry),
        worked(45, billable=False),
        TimeEntryCorrected(id=JOB, entry_id=entry, minutes=70, billable=True, reason="forgot"),
    )
    result = bill(work, BUYER, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    assert [(l.quantity, l.logged_minutes) for l in result.lines] == [(Decimal(2), 70)]


def test_minimum_charge_replaces_a_small_line() -> None:
    prices = {
        **PRICES,
        "repair": Activity(
            code="repair",
            name="Repair work",
            unit=Unit.HOUR,
            rate=Decimal(60),
            minimum_charge=Decimal(80),
            vat_rate=Decimal(23),
        ),
    }
    result = bill(completed_job(worked(30)), BUYER, prices, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    (line,) = result.lines
    assert (line.quantity, line.unit_price, line.net) == (Decimal(1), Decimal(80), Decimal("80.00"))
    assert "minimum charge" in line.description and line.logged_minutes == 30


def test_call_out_per_visit_and_urgent_surcharge() -> None:
    prices = {
        **PRICES,
        "callout": Activity(code="callout", name="Call-out", unit=Unit.FLAT, rate=Decimal(25), vat_rate=Decimal(23)),
        "urgent": Activity(
            code="urgent", name="Urgent surcharge", unit=Unit.FLAT, rate=Decimal(40), vat_rate=Decimal(23)
        ),
    }
    result = bill(completed_job(worked(60), priority=Priority.URGENT), BUYER, prices, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    assert [(l.code, l.net) for l in result.lines] == [
        ("repair", Decimal("50.00")),
        ("callout", Decimal("25.00")),
        ("urgent", Decimal("40.00")),
    ]


def test_eu_business_across_a_border_is_reverse_charged() -> None:
    business = Buyer(id=BUYER.id, name="Novák Stavby s.r.o.", billing_address=SITE, vat_id="CZ12345678")
    result = bill(completed_job(worked(60)), business, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    assert result.reverse_charge and result.vat_total == 0
    assert [(v.category, v.rate) for v in result.vat] == [("AE", Decimal(0))]


def test_warranty_work_is_not_billed_but_its_cost_is_kept() -> None:
    result = bill(completed_job(worked(130), billing_kind=BillingKind.WARRANTY), BUYER, PRICES, SELLER, NOW)
    assert result == Unbillable(reason="warranty", cost=Decimal("150.00"), currency="CZK")


def test_an_activity_without_a_price_is_named() -> None:
    with pytest.raises(Unpriced, match="'commissioning'"):
        bill(completed_job(worked(60, activity="commissioning")), BUYER, PRICES, SELLER, NOW)


def test_numbers_and_creditor_references() -> None:
    assert invoice_number("{series}/{year}/{sequence:06d}", "FV", 2026, 123) == "FV/2026/000123"
    assert variable_symbol("FV/2026/000123") == "2026000123"
    assert creditor_reference("539007547034") == "RF18539007547034"  # ISO 11649's own example
    reference = creditor_reference("FV/2026/000123")
    assert reference.startswith("RF") and reference.endswith("FV2026000123")
    rearranged = reference[4:] + reference[:4]  # how a bank checks it: mod 97 of the digits is 1
    assert int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@hypothesis_given(
    st.lists(
        st.tuples(st.integers(1, 600), st.sampled_from(["repair", "seal-22"]), st.integers(1, 20)),
        min_size=1,
        max_size=12,
    )
)
def test_totals_are_the_sums_of_rounded_amounts(items: list[tuple[int, str, int]]) -> None:
    events: list[JobEvent] = []
    for minutes, code, pieces in items:
        events.append(
            worked(minutes)
            if code == "repair"
            else MaterialUsed(id=JOB, code=code, description="part", quantity=Decimal(pieces))
        )
    result = bill(completed_job(*events), BUYER, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    assert result.net_total == sum(l.net for l in result.lines) == sum(v.taxable for v in result.vat)
    assert result.gross_total == result.net_total + sum(v.vat for v in result.vat)
    assert all(l.net == l.net.quantize(Decimal("0.01")) for l in result.lines)


def test_prepaid_hours_are_used_first_and_only_the_rest_is_billed() -> None:
    with_package = Buyer(id=BUYER.id, name="Novák Stavby", billing_address=SITE, currency="CZK", prepaid_minutes=180)
    first = bill(completed_job(worked(130)), with_package, PRICES, SELLER, NOW)
    assert not isinstance(first, Unbillable)
    assert [(l.kind, l.quantity, l.net, l.logged_minutes) for l in first.lines] == [
        ("prepaid", Decimal("2.17"), Decimal("0.00"), 130)
    ]
    assert (first.prepaid_minutes_used, first.gross_total) == (130, Decimal("0.00"))
    rest = Buyer(id=BUYER.id, name="Novák Stavby", billing_address=SITE, currency="CZK", prepaid_minutes=50)
    second = bill(completed_job(worked(130)), rest, PRICES, SELLER, NOW)
    assert not isinstance(second, Unbillable)
    assert [(l.kind, l.quantity, l.logged_minutes) for l in second.lines] == [
        ("prepaid", Decimal("0.83"), 50),
        ("time", Decimal(2), 80),
    ]  # 80 minutes bill 2 started hours
    warranty = bill(completed_job(worked(130), billing_kind=BillingKind.WARRANTY), with_package, PRICES, SELLER, NOW)
    assert isinstance(warranty, Unbillable) and warranty.cost == Decimal("150.00")  # no prepaid hours spent


def test_a_material_discount_lowers_the_net_price_and_says_so() -> None:
    discounted = MaterialUsed(
        id=JOB, code="seal-22", description="Seal 22 mm", quantity=Decimal(3), discount_percent=Decimal("12.5")
    )
    result = bill(completed_job(discounted), BUYER, PRICES, SELLER, NOW)
    assert not isinstance(result, Unbillable)
    (line,) = result.lines
    assert (line.unit_price, line.net, line.description) == (Decimal("2.975"), Decimal("8.93"), "Seal 22 mm (−12.5 %)")
