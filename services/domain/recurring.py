"""Recurring services: monthly inspections, weekly cleaning.

A recurring service is a plan (customer, job, technicians, an RFC 5545 rule read in the
customer's local time) and the occurrences generated from it: each occurrence is a job,
requested and scheduled ahead for the plan's horizon. ``to_generate`` is the pure part of the
generator: given the state and the time, what to create, move and withdraw so that the
future matches the plan. Running it again once that is done finds nothing to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import assert_never
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr
from msgspec.structs import replace

from events.contract import (
    ChangeRecurringService,
    DefineRecurringService,
    EndRecurringService,
    OccurrenceGenerated,
    OccurrenceWithdrawn,
    RecordOccurrence,
    RecurrenceEvents,
    RecurringPlan,
    RecurringServiceChanged,
    RecurringServiceDefined,
    RecurringServiceEnded,
    Role,
    WithdrawOccurrence,
)
from services.domain.common import Context, Forbidden, Invalid, InvalidTransition, NotFound

MAX_OCCURRENCES = 400  # generated at once for one plan: a daily visit for a year fits
FREQUENCIES = {DAILY, WEEKLY, MONTHLY, YEARLY}


class Occurrence(msgspec.Struct, frozen=True):
    job_id: UUID
    plan_version: int
    withdrawn: bool = False


class Recurrence(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int = 0
    plan: RecurringPlan | None = None
    plan_version: int = 0
    ended_after: datetime | None = None
    occurrences: dict[datetime, Occurrence] = {}


def evolve_recurrence(state: Recurrence, event: RecurrenceEvents) -> Recurrence:
    state = replace(state, version=state.version + 1)
    match event:
        case RecurringServiceDefined() | RecurringServiceChanged():
            return replace(state, plan=event.plan, plan_version=state.plan_version + 1)
        case RecurringServiceEnded():
            return replace(state, ended_after=event.after)
        case OccurrenceGenerated():
            return replace(
                state, occurrences={**state.occurrences, event.at: Occurrence(event.job_id, event.plan_version)}
            )
        case OccurrenceWithdrawn():
            return replace(
                state, occurrences={**state.occurrences, event.at: Occurrence(event.job_id, 0, withdrawn=True)}
            )
        case _:
            assert_never(event)


def occurrences(plan: RecurringPlan, after: datetime, until: datetime) -> list[datetime]:
    """The plan's visits (UTC) after ``after`` and up to ``until``, read in its local time."""
    zone = ZoneInfo(plan.timezone)
    rule = parse_rule(plan.rule, plan.start)
    local_after = after.astimezone(zone).replace(tzinfo=None)
    local_until = until.astimezone(zone).replace(tzinfo=None)
    found = []
    for local in rule.between(local_after - timedelta(days=1), local_until + timedelta(days=1), inc=True):
        at = local.replace(tzinfo=zone).astimezone(UTC)
        if after < at <= until:
            found.append(at)
            if len(found) >= MAX_OCCURRENCES:
                break
    return found


def parse_rule(text: str, start: datetime) -> rrule:
    """An RRULE read with python-dateutil; ValueError naming what is wrong."""
    if "DTSTART" in text:
        raise ValueError("give the first visit as `start`, not in the rule")
    try:
        rule = rrulestr(text, dtstart=start)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not an RFC 5545 recurrence rule ({error})") from None
    if not isinstance(rule, rrule):
        raise ValueError("one RRULE only")
    if rule._freq not in FREQUENCIES:  # type: ignore[attr-defined]  # dateutil keeps FREQ private; its stubs leave it out
        raise ValueError("a visit repeats at most daily: FREQ is DAILY, WEEKLY, MONTHLY or YEARLY")
    return rule


RULE_AHEAD = timedelta(days=10 * 366)  # a rule's UNTIL at most ten years from now


def _check(plan: RecurringPlan, now: datetime) -> RecurringPlan:
    try:
        ZoneInfo(plan.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("timezone", f"unknown time zone {plan.timezone!r}") from None
    try:
        rule = parse_rule(plan.rule, plan.start)
    except ValueError as error:
        raise Invalid("rule", str(error)) from None
    until = rule._until  # type: ignore[attr-defined]  # dateutil keeps UNTIL private; its stubs leave it out
    latest = now + RULE_AHEAD
    if until is not None and (until if until.tzinfo else until.replace(tzinfo=UTC)) > latest:
        raise Invalid("rule", f"UNTIL must be at most {latest.date().isoformat()} (ten years ahead)")
    return plan


RecurrenceCommand = (
    DefineRecurringService | ChangeRecurringService | EndRecurringService | RecordOccurrence | WithdrawOccurrence
)


def decide_recurrence(command: RecurrenceCommand, state: Recurrence, ctx: Context) -> list[object]:
    if ctx.actor.role not in (Role.OFFICE, Role.ADMIN):
        raise Forbidden("only the office plans recurring services")
    match command:
        case DefineRecurringService():
            if state.version:
                raise InvalidTransition("recurring service", "defined", "define it again")
            plan = RecurringPlan(
                customer_id=command.customer_id,
                site_address=command.site_address,
                job_type=command.job_type,
                description=command.description,
                scope=command.scope,
                technician_ids=list(command.technician_ids),
                rule=command.rule,
                start=command.start,
                timezone=command.timezone,
                duration_minutes=command.duration_minutes,
                horizon_days=command.horizon_days,
                billing_kind=command.billing_kind,
            )
            return [RecurringServiceDefined(id=state.id, plan=_check(plan, ctx.now))]
    if state.plan is None:
        raise NotFound("recurring service", state.id)
    match command:
        case ChangeRecurringService():
            _still_running(state, ctx, "change it")
            given = {
                f: getattr(command, f)
                for f in command.__struct_fields__
                if f != "reason" and getattr(command, f) is not None
            }
            plan = _check(replace(state.plan, **given), ctx.now)
            if plan == state.plan:
                return []
            return [RecurringServiceChanged(id=state.id, plan=plan, reason=command.reason)]
        case EndRecurringService():
            _still_running(state, ctx, "end it")
            return [RecurringServiceEnded(id=state.id, after=command.after or ctx.now, reason=command.reason)]
        case RecordOccurrence():
            known = state.occurrences.get(command.at)
            if known is not None and known.job_id == command.job_id and known.plan_version == state.plan_version:
                return []  # recorded already: a retried generation
            return [
                OccurrenceGenerated(id=state.id, at=command.at, job_id=command.job_id, plan_version=state.plan_version)
            ]
        case WithdrawOccurrence():
            known = state.occurrences.get(command.at)
            if known is None or known.withdrawn:
                return []
            return [OccurrenceWithdrawn(id=state.id, at=command.at, job_id=command.job_id, reason=command.reason)]
    raise ValueError(f"no decision for {type(command).__name__}")


def _still_running(state: Recurrence, ctx: Context, action: str) -> None:
    if state.ended_after is not None and state.ended_after <= ctx.now:
        raise InvalidTransition("recurring service", "ended", action)


class Plan(msgspec.Struct, frozen=True):
    """What the generator does next for one recurring service."""

    create: list[datetime]  # new occurrences: request and schedule a job, then record it
    move: list[tuple[datetime, UUID]]  # generated to an older plan: reschedule, then record
    withdraw: list[tuple[datetime, UUID]]  # no longer in the plan: cancel, then withdraw


def to_generate(state: Recurrence, now: datetime) -> Plan:
    """The future made to match the plan: occurrences within the horizon are created, those
    made to an older plan moved to the current one, those the plan no longer has withdrawn.
    The past is left as it happened."""
    if state.plan is None:
        return Plan([], [], [])
    until = now + timedelta(days=state.plan.horizon_days)
    if state.ended_after is not None:
        until = min(until, state.ended_after)
    live = {at: o for at, o in state.occurrences.items() if not o.withdrawn and at > now}
    # the plan's visits to the horizon, and on to the last one generated (a shortened horizon
    # keeps those beyond it that the plan still has)
    last = max([until, *live])
    planned = set(occurrences(state.plan, now, last)) if last > now else set()
    wanted = {at for at in planned if at <= until}
    create = sorted(at for at in wanted if at not in live)
    move = sorted((at, o.job_id) for at, o in live.items() if at in wanted and o.plan_version < state.plan_version)
    withdraw = sorted(
        (at, o.job_id)
        for at, o in live.items()
        if at not in planned or (state.ended_after is not None and at > state.ended_after)
    )
    return Plan(create, move, withdraw)
