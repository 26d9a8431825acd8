"""Bank statements (the id is derived from the file's SHA-256: a second import is
refused)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import ClassVar

from msgspec import Struct

from events.contract.base import Event
from events.contract.values import Day


class StatementLine(Struct, frozen=True, kw_only=True):
    index: int
    booked_on: Day  # from a bank's file: an old stored line may not hold a real day
    amount: Decimal  # negative for a debit
    currency: str
    payer: str = ""
    payer_iban: str = ""
    reference: str = ""  # structured (an RF reference, say)
    text: str = ""  # unstructured remittance information
    bank_reference: str = ""
    account: str = ""
    # the bank's own reference for the entry (camt.053 AcctSvcrRef, MT940 bank reference), with
    # the account: the same entry in two files, or twice in one, has the same key
    entry_key: str = ""

    def key(self) -> str:
        """What identifies the entry across statements: the bank's reference, else its content."""
        if self.entry_key:
            return self.entry_key
        content = "|".join(
            [
                self.account,
                Day.text(self.booked_on),
                format(self.amount.normalize(), "f"),
                self.currency,
                self.payer_iban,
                self.payer,
                self.reference,
                self.text,
            ]
        )
        return "content:" + hashlib.sha256(content.encode()).hexdigest()


class StatementEvent(Event, frozen=True, kw_only=True, tag=True):
    aggregate: ClassVar[str] = "statement"


class BankStatementImported(StatementEvent, frozen=True, kw_only=True, tag=True):
    """One part of a statement's lines (a statement of thousands of lines is several parts,
    saved together in one atomic batch)."""

    format: str
    account: str
    reference: str
    sha256: str
    part: int
    parts: int
    lines: list[StatementLine]


class StatementLineUnmatched(StatementEvent, frozen=True, kw_only=True, tag=True):
    """A credit no rule matched to an invoice: it waits in the office's review queue."""

    line: int
    amount: Decimal
    currency: str
    payer: str = ""
    text: str = ""
    reason: str = ""


StatementEvents = BankStatementImported | StatementLineUnmatched
