"""Customers, technicians, price lists and access tokens: deciders and their state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, assert_never
from uuid import UUID

import msgspec
from msgspec.structs import replace

from events.contract import (
    ActivityPriced,
    ActivityRemoved,
    Address,
    AgreeRetainer,
    ChangeCustomerDetails,
    ChangeTechnicianDetails,
    CreatePriceList,
    CustomerDetailsChanged,
    CustomerEvent,
    CustomerEvents,
    CustomerRegistered,
    DeactivateTechnician,
    EndRetainer,
    HoursPackageSold,
    PrepaidBalanceLow,
    PrepaidHoursConsumed,
    PriceActivity,
    PriceListCreated,
    PriceListEvent,
    PriceListEvents,
    ReactivateTechnician,
    RegisterCustomer,
    RegisterTechnician,
    RemoveActivity,
    RetainerAgreed,
    RetainerEnded,
    Role,
    SellHoursPackage,
    StopwatchStarted,
    StopwatchStopped,
    TechnicianDeactivated,
    TechnicianDetailsChanged,
    TechnicianEvent,
    TechnicianEvents,
    TechnicianReactivated,
    TechnicianRegistered,
    TokenEvents,
    TokenIssued,
    TokenRevoked,
    Unit,
)
from services.domain.common import Context, Forbidden, Invalid, InvalidTransition, NotFound, derived_id

OfficeRoles = (Role.OFFICE, Role.ADMIN)
# What a country means when nobody says: its currency, and the language its customers read
# (of those the documents speak: en, pl, cs, de, ro)
COUNTRY_CURRENCY = {"CZ": "CZK", "PL": "PLN", "RO": "RON", "HU": "HUF", "GB": "GBP", "CH": "CHF", "LI": "CHF"}
COUNTRY_LANGUAGE = {"CZ": "cs", "PL": "pl", "RO": "ro", "MD": "ro", "DE": "de", "AT": "de", "CH": "de", "LI": "de"}


def currency_of(country: str) -> str:
    """A country's currency: the euro's wherever it is not listed otherwise."""
    return COUNTRY_CURRENCY.get(country.upper(), "EUR")


def language_of(country: str) -> str:
    return COUNTRY_LANGUAGE.get(country.upper(), "en")


def _office_only(ctx: Context, action: str) -> None:
    if ctx.actor.role not in OfficeRoles:
        raise Forbidden(f"only the office may {action}")


# --- customers ---------------------------------------------------------------------------


class Retainer(msgspec.Struct, frozen=True, kw_only=True):
    first_month: str
    ended: bool = False


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    name: str = ""
    billing_address: Address | None = None
    site_addresses: list[Address] = []
    email: str = ""
    phone: str = ""
    vat_id: str = ""
    language: str = "en"
    currency: str = "EUR"
    payment_terms_days: int = 14
    price_list_id: UUID | None = None
    wants_proforma: bool = False
    buyer_reference: str = ""
    electronic_address: str = ""
    retainers: dict[UUID, Retainer] = {}


CustomerCommand = RegisterCustomer | ChangeCustomerDetails | SellHoursPackage | AgreeRetainer | EndRetainer


def decide_customer(command: CustomerCommand, customer: Customer, ctx: Context) -> list[CustomerEvent]:
    _office_only(ctx, "change customers")
    if not customer.version and not isinstance(command, RegisterCustomer):
        raise NotFound("customer", customer.id)
    match command:
        case RegisterCustomer():
            if customer.version:
                raise InvalidTransition("customer", "registered", "register it again")
            return [
                CustomerRegistered(
                    id=customer.id,
                    **_fields(
                        command,
                        email=command.email or "",
                        currency=command.currency or ctx.company_currency,
                        language=command.language or language_of(command.billing_address.country),
                        # an e-invoice routing only when given: registrations without one stay as they were
                        buyer_reference=command.buyer_reference or msgspec.UNSET,
                        electronic_address=command.electronic_address or msgspec.UNSET,
                    ),
                )
            ]
        case ChangeCustomerDetails():
            changes = {k: v for k, v in msgspec.structs.asdict(command).items() if v is not None}
            if not changes:
                raise Invalid("body", "name at least one detail to change")
            return [CustomerDetailsChanged(id=customer.id, **changes)]
        case AgreeRetainer():
            return [
                RetainerAgreed(
                    id=customer.id,
                    retainer_id=derived_id(customer.id, customer.version, "retainer"),
                    description=command.description,
                    amount=command.amount,
                    vat_rate=command.vat_rate,
                    first_month=command.first_month,
                )
            ]
        case EndRetainer():
            retainer = customer.retainers.get(command.retainer_id)
            if retainer is None:
                raise Invalid("retainer_id", f"no retainer {command.retainer_id} for this customer")
            if retainer.ended:
                raise InvalidTransition("retainer", "ended", "end it again")
            if command.last_month < retainer.first_month:
                raise Invalid("last_month", f"the retainer starts in {retainer.first_month}")
            return [RetainerEnded(id=customer.id, retainer_id=command.retainer_id, last_month=command.last_month)]
        case SellHoursPackage():
            return [
                HoursPackageSold(
                    id=customer.id,
                    package_id=derived_id(customer.id, customer.version, "hours"),
                    hours=command.hours,
                    warn_below_hours=command.warn_below_hours,
                    note=command.note,
                )
            ]
        case _:
            assert_never(command)


def evolve_customer(customer: Customer, event: CustomerEvents) -> Customer:
    customer = replace(customer, version=customer.version + 1)
    match event:
        case RetainerAgreed():
            retainer = Retainer(first_month=event.first_month)
            return replace(customer, retainers={**customer.retainers, event.retainer_id: retainer})
        case RetainerEnded():
            ended = replace(customer.retainers[event.retainer_id], ended=True)
            return replace(customer, retainers={**customer.retainers, event.retainer_id: ended})
        case CustomerRegistered() | CustomerDetailsChanged():
            fields = {
                k: v
                for k, v in msgspec.structs.asdict(event).items()
                if k not in ("id", "meta") and v is not None and v is not msgspec.UNSET
            }
            return replace(customer, **fields)
        case HoursPackageSold() | PrepaidHoursConsumed() | PrepaidBalanceLow():  # the invoicer's to count
            return customer
        case _:
            assert_never(event)


def _fields(struct: msgspec.Struct, **overrides: Any) -> dict[str, Any]:
    """A command's fields, some overridden, for the event of the same fields it decides."""
    return {**msgspec.structs.asdict(struct), **overrides}


# --- technicians ------------------------------------------------------------------------


class Technician(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    name: str = ""
    skills: list[str] = []
    email: str = ""
    phone: str = ""
    active: bool = True
    running_job_id: UUID | None = None


TechnicianCommand = RegisterTechnician | ChangeTechnicianDetails | DeactivateTechnician | ReactivateTechnician


def decide_technician(command: TechnicianCommand, tech: Technician, ctx: Context) -> list[TechnicianEvent]:
    _office_only(ctx, "change technicians")
    if not tech.version and not isinstance(command, RegisterTechnician):
        raise NotFound("technician", tech.id)
    match command:
        case RegisterTechnician():
            if tech.version:
                raise InvalidTransition("technician", "registered", "register it again")
            return [TechnicianRegistered(id=tech.id, **_fields(command, email=command.email or ""))]
        case ChangeTechnicianDetails():
            changes = {k: v for k, v in msgspec.structs.asdict(command).items() if v is not None}
            if not changes:
                raise Invalid("body", "name at least one detail to change")
            return [TechnicianDetailsChanged(id=tech.id, **changes)]
        case DeactivateTechnician():
            if not tech.active:
                raise InvalidTransition("technician", "inactive", "deactivate")
            return [TechnicianDeactivated(id=tech.id, reason=command.reason)]
        case ReactivateTechnician():
            if tech.active:
                raise InvalidTransition("technician", "active", "reactivate")
            return [TechnicianReactivated(id=tech.id)]
        case _:
            assert_never(command)


def evolve_technician(tech: Technician, event: TechnicianEvents) -> Technician:
    tech = replace(tech, version=tech.version + 1)
    match event:
        case TechnicianRegistered() | TechnicianDetailsChanged():
            fields = {
                k: v
                for k, v in msgspec.structs.asdict(event).items()
                if k not in ("id", "meta") and v is not None and v is not msgspec.UNSET
            }
            return replace(tech, **fields)
        case TechnicianDeactivated():
            return replace(tech, active=False)
        case TechnicianReactivated():
            return replace(tech, active=True)
        case StopwatchStarted():
            return replace(tech, running_job_id=event.job_id)
        case StopwatchStopped():
            return replace(tech, running_job_id=None if tech.running_job_id == event.job_id else tech.running_job_id)
        case _:
            assert_never(event)


# --- price lists (the default list is the service catalogue) ---------------------------


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    unit: Unit
    rate: Decimal
    minimum_charge: Decimal
    vat_rate: Decimal


class PriceList(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    name: str = ""
    currency: str = "EUR"
    is_default: bool = False
    customer_id: UUID | None = None
    activities: dict[str, Activity] = {}


PriceListCommand = CreatePriceList | PriceActivity | RemoveActivity


def decide_price_list(command: PriceListCommand, prices: PriceList, ctx: Context) -> list[PriceListEvent]:
    _office_only(ctx, "change price lists")
    if not prices.version and not isinstance(command, CreatePriceList):
        raise NotFound("price list", prices.id)
    match command:
        case CreatePriceList():
            if prices.version:
                raise InvalidTransition("price list", "created", "create it again")
            return [PriceListCreated(id=prices.id, **_fields(command))]
        case PriceActivity():
            return [ActivityPriced(id=prices.id, **_fields(command))]
        case RemoveActivity():
            if command.code not in prices.activities:
                raise Invalid("code", f"no activity {command.code!r} on this price list")
            return [ActivityRemoved(id=prices.id, code=command.code)]
        case _:
            assert_never(command)


def evolve_price_list(prices: PriceList, event: PriceListEvents) -> PriceList:
    prices = replace(prices, version=prices.version + 1)
    match event:
        case PriceListCreated():
            return replace(
                prices,
                name=event.name,
                currency=event.currency,
                is_default=event.is_default,
                customer_id=event.customer_id,
            )
        case ActivityPriced():
            activity = Activity(
                code=event.code,
                name=event.name,
                unit=event.unit,
                rate=event.rate,
                minimum_charge=event.minimum_charge,
                vat_rate=event.vat_rate,
            )
            return replace(prices, activities={**prices.activities, event.code: activity})
        case ActivityRemoved():
            return replace(prices, activities={k: v for k, v in prices.activities.items() if k != event.code})
        case _:
            assert_never(event)


# --- access tokens -------------------------------------------------------------------------


class Token(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    user_name: str = ""
    role: Role | None = None
    technician_id: UUID | None = None
    revoked: bool = False


def evolve_token(token: Token, event: TokenEvents) -> Token:
    token = replace(token, version=token.version + 1)
    match event:
        case TokenIssued():
            return replace(token, user_name=event.user_name, role=event.role, technician_id=event.technician_id)
        case TokenRevoked():
            return replace(token, revoked=True)
        case _:
            assert_never(event)
