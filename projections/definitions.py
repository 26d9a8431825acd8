"""The projections: which events each one reads and how a batch of them becomes rows.

Each is an eventsourcing ``Projection`` over one view (a tracking recorder with its
tables). ``process_batch`` evolves the rows a batch of events touches, with the pure
functions of ``projections.rows``, and commits them with the batch's last position in one
transaction. ``process_event`` is the library's one-event form of the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.projection import Projection
from msgspec import structs

from events.contract import (
    EVENT_TYPES,
    CreditNoteIssued,
    CustomerEvent,
    EfacturaEvent,
    Event,
    InvoiceEvent,
    InvoiceIssued,
    JobEvent,
    KsefEvent,
    KsefHeld,
    MessageEvent,
    PaymentApplied,
    ProformaIssued,
    RecurrenceEvent,
    StatementLineUnmatched,
    TechnicianEvent,
    TokenEvent,
)
from projections.ledger import journal
from projections.rows import (
    evolve_customer,
    evolve_efactura,
    evolve_invoice,
    evolve_job,
    evolve_ksef,
    evolve_message,
    evolve_recurrence_row,
    evolve_technician,
    evolve_time,
    evolve_user,
    history_row,
    time_entry_id,
    unmatched_row,
)
from projections.store import Batch, BoardTables, LedgerTables, TimesheetTables


class Positioned(NamedTuple):
    position: int
    version: int
    event: Event


class BatchProjection(Projection[Any]):
    """A projection that commits a whole batch of events with its last position."""

    wanted: ClassVar[tuple[type[Event], ...]] = ()

    @functools.cached_property
    def wanted_topics(self) -> frozenset[str]:
        """The stored topics of the events it reads: the rest need not even be decoded."""
        return frozenset(name for name, cls in EVENT_TYPES.items() if issubclass(cls, self.wanted))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        expected = self.view.max_tracking_id(self.name) or 0
        self.process_batch([Positioned(tracking.notification_id, 0, domain_event)], tracking, expected)

    def process_batch(self, items: Sequence[Positioned], tracking: Tracking, expected: int) -> bool:
        """Commit the batch read after position ``expected``; False, changing nothing, if the
        view is no longer at ``expected`` (a redelivery, or another runner got there first)."""
        batch = self.evolve([item for item in items if isinstance(item.event, self.wanted)])
        try:
            self.view.commit(batch, tracking, expected)
        except IntegrityError:
            return False
        return True

    def evolve(self, items: Sequence[Positioned]) -> Batch:
        raise NotImplementedError

    def close(self) -> None:
        """Close the view's database connections (a PostgreSQL pool holds several)."""
        self.view.datastore.close()


def _kept(known: dict[Any, Any], written: dict[Any, Any], id: Any, row: Any) -> Any:
    """A row an event evolved (None: the event changed nothing), kept for the batch's next
    events and written with the batch."""
    if row is not None:
        known[id] = written[id] = row
    return row


class BoardProjection(BatchProjection):
    """The job board, each job's timeline, customers, technicians, users, invoices, their
    KSeF states and the notifier's messages."""

    name = "board"
    wanted = (
        JobEvent,
        CustomerEvent,
        TechnicianEvent,
        TokenEvent,
        InvoiceEvent,
        StatementLineUnmatched,
        ProformaIssued,
        MessageEvent,
        RecurrenceEvent,
        KsefEvent,
        EfacturaEvent,
    )
    view: BoardTables

    def evolve(self, items: Sequence[Positioned]) -> Batch:
        batch = Batch()
        jobs = {item.event.id for item in items if isinstance(item.event, JobEvent)} | {
            item.event.job_id for item in items if isinstance(item.event, ProformaIssued)
        }
        customers = {item.event.id for item in items if isinstance(item.event, CustomerEvent)}
        technicians = {item.event.id for item in items if isinstance(item.event, TechnicianEvent)}
        users = {item.event.id for item in items if isinstance(item.event, TokenEvent)}
        known_jobs = self.view.jobs_by_id(jobs)
        known_customers = self.view.customers_by_id(customers)
        known_technicians = self.view.technicians_by_id(technicians)
        known_users = self.view.users_by_id(users)
        known_invoices = self.view.invoices_by_id(
            {item.event.id for item in items if isinstance(item.event, InvoiceEvent | KsefHeld)}
        )
        known_recurrences = self.view.recurrences_by_id(
            {item.event.id for item in items if isinstance(item.event, RecurrenceEvent)}
        )
        known_ksef = self.view.ksef_by_id({item.event.id for item in items if isinstance(item.event, KsefEvent)})
        known_efactura = self.view.efactura_by_id(
            {item.event.id for item in items if isinstance(item.event, EfacturaEvent)}
        )
        known_messages = self.view.messages_by_id(
            {item.event.id for item in items if isinstance(item.event, MessageEvent)}
        )
        for position, version, event in items:
            if isinstance(event, JobEvent):
                row = _kept(known_jobs, batch.jobs, event.id, evolve_job(known_jobs.get(event.id), event, position))
                batch.history.append(history_row(event, position, version or (row.version if row else 0)))
            elif isinstance(event, CustomerEvent):
                _kept(
                    known_customers,
                    batch.customers,
                    event.id,
                    evolve_customer(known_customers.get(event.id), event, position),
                )
            elif isinstance(event, TechnicianEvent):
                _kept(
                    known_technicians,
                    batch.technicians,
                    event.id,
                    evolve_technician(known_technicians.get(event.id), event, position),
                )
            elif isinstance(event, TokenEvent):
                _kept(known_users, batch.users, event.id, evolve_user(known_users.get(event.id), event))
            elif isinstance(event, ProformaIssued) and event.job_id in known_jobs:
                job = structs.replace(known_jobs[event.job_id], proforma_id=event.id, proforma_number=event.number)
                known_jobs[event.job_id] = batch.jobs[event.job_id] = job
            elif isinstance(event, StatementLineUnmatched):
                batch.unmatched.append(unmatched_row(event, position))
            elif isinstance(event, RecurrenceEvent):
                _kept(
                    known_recurrences,
                    batch.recurrences,
                    event.id,
                    evolve_recurrence_row(known_recurrences.get(event.id), event, position),
                )
            elif isinstance(event, MessageEvent):
                _kept(
                    known_messages,
                    batch.messages,
                    event.id,
                    evolve_message(known_messages.get(event.id), event, position),
                )
            elif isinstance(event, KsefEvent):
                ksef = evolve_ksef(known_ksef.get(event.id), event, position)
                if ksef is not None and not ksef.number and event.id in known_invoices:
                    # held before its FA(3) was prepared: the invoice's own number and kind
                    ksef = structs.replace(ksef, document_kind="invoice", number=known_invoices[event.id].number)
                _kept(known_ksef, batch.ksef, event.id, ksef)
            elif isinstance(event, EfacturaEvent):
                _kept(
                    known_efactura,
                    batch.efactura,
                    event.id,
                    evolve_efactura(known_efactura.get(event.id), event, position),
                )
            elif isinstance(event, InvoiceEvent):
                _kept(
                    known_invoices,
                    batch.invoices,
                    event.id,
                    evolve_invoice(known_invoices.get(event.id), event, position),
                )
        return batch


class TimesheetProjection(BatchProjection):
    """Every time entry, for timesheets per technician and per job."""

    name = "timesheets"
    wanted = (JobEvent,)
    view: TimesheetTables

    def evolve(self, items: Sequence[Positioned]) -> Batch:
        batch = Batch()
        jobs = [(item.position, item.event) for item in items if isinstance(item.event, JobEvent)]  # all: wanted
        ids = {entry for _, event in jobs if (entry := time_entry_id(event)) is not None}
        known = self.view.times_by_id(ids)
        for position, event in jobs:
            entry = time_entry_id(event)
            if entry is None:
                continue
            row = evolve_time(known.get(entry), event, position)
            if row is not None:
                known[entry] = batch.times[entry] = row
        return batch


class LedgerProjection(BatchProjection):
    """Every invoice and payment as balanced journal lines (projections.ledger)."""

    name = "ledger"
    wanted = (InvoiceIssued, PaymentApplied, CreditNoteIssued)
    view: LedgerTables

    def evolve(self, items: Sequence[Positioned]) -> Batch:
        batch = Batch()
        paid_invoices = {item.event.id for item in items if isinstance(item.event, PaymentApplied)}
        known = self.view.invoices_by_id(paid_invoices)
        for position, _version, event in items:
            if isinstance(event, InvoiceIssued):
                known[event.id] = batch.ledger_invoices[event.id] = (event.number, event.customer_id, event.currency)
                batch.journal.extend(journal(event, position))
            elif isinstance(event, CreditNoteIssued):
                batch.journal.extend(journal(event, position))
            elif isinstance(event, PaymentApplied) and event.id in known:
                number, customer, _currency = known[event.id]
                batch.journal.extend(journal(event, position, number, customer))
        return batch


PROJECTIONS: dict[str, type[BatchProjection]] = {
    BoardProjection.name: BoardProjection,
    TimesheetProjection.name: TimesheetProjection,
    LedgerProjection.name: LedgerProjection,
}
