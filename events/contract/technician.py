"""The technician: registration, details, (de)activation and the stopwatch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

from msgspec import Meta

from events.contract.base import Command, Event
from events.contract.values import Code, Email, OptionalText, Phone, Text


class TechnicianEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "technician"


class TechnicianRegistered(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    name: str
    skills: list[str] = []
    email: str = ""
    phone: str = ""


class TechnicianDetailsChanged(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    name: str | None = None
    skills: list[str] | None = None
    email: str | None = None
    phone: str | None = None


class TechnicianDeactivated(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    reason: str = ""


class TechnicianReactivated(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    pass


class StopwatchStarted(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    """The technician's one running stopwatch now times this job."""

    job_id: UUID
    at: datetime


class StopwatchStopped(TechnicianEvent, frozen=True, kw_only=True, tag=True):
    job_id: UUID
    at: datetime


TechnicianEvents = (
    TechnicianRegistered
    | TechnicianDetailsChanged
    | TechnicianDeactivated
    | TechnicianReactivated
    | StopwatchStarted
    | StopwatchStopped
)


class RegisterTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    skills: Annotated[list[Code], Meta(max_length=50)] = []
    email: Email | None = None
    phone: Phone = ""


class ChangeTechnicianDetails(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text | None = None
    skills: Annotated[list[Code], Meta(max_length=50)] | None = None
    email: Email | None = None
    phone: Phone | None = None


class DeactivateTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: OptionalText = ""


class ReactivateTechnician(Command, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass
