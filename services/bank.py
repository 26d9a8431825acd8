"""Bank statements in, statement lines out: ISO 20022 camt.053 (any version) and MT940.

Only credits matter to receivables, but every line is kept as the bank sent it. camt.053 is
read with the standard library's XML parser by local names, so versions 2, 4 and 8 read
alike; MT940 with the mt-940 package, made lenient where real banks are (a counterparty
IBAN in the 16-character customer reference of :61:).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree as ET

import msgspec
import mt940

from events.contract import Day, StatementLine


class StatementError(ValueError):
    """A file that is not a statement we can read; the message says where and why."""


class Statement:
    def __init__(self, format: str, account: str, reference: str, lines: list[StatementLine], digest: str) -> None:
        self.format, self.account, self.reference, self.lines, self.digest = (format, account, reference, lines, digest)


def parse_statement(data: bytes) -> Statement:
    """A camt.053 or MT940 file's lines (raises StatementError naming what is wrong)."""
    digest = hashlib.sha256(data).hexdigest()
    head = data.lstrip()[:200]
    if head.startswith(b"<"):
        statement = _camt(data, digest)
    elif b":20:" in data[:2000] or b":61:" in data or head.startswith(b"{1:"):
        statement = _mt940(data, digest)
    else:
        raise StatementError("statement: not a camt.053 XML file nor an MT940 file")
    statement.lines = [_readable(line) for line in statement.lines]
    statement.account, statement.reference = _clean(statement.account), _clean(statement.reference)
    return statement


# C0 and C1 control characters (tab and newline among them) and the two non-characters XML
# cannot hold. A bank's file is what the bank sent, so they are not refused: each becomes a
# space, as the texts' line breaks already do, and no statement event carries one.
_UNREADABLE = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]+")
_TEXTS = ("currency", "payer", "payer_iban", "reference", "text", "bank_reference", "account", "entry_key")


def _clean(text: str) -> str:
    return " ".join(_UNREADABLE.sub(" ", text).split()) if _UNREADABLE.search(text) else text


def _readable(line: StatementLine) -> StatementLine:
    changed = {name: _clean(getattr(line, name)) for name in _TEXTS}
    if all(changed[name] == getattr(line, name) for name in _TEXTS):
        return line
    return msgspec.structs.replace(line, **changed)


# --- camt.053 ---------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    """The first descendant along ``path`` (local names, namespaces ignored)."""
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if _local(child.tag) == name), None)
    return element


def _text(element: ET.Element | None, *path: str) -> str:
    found = _find(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _all(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element.iter() if _local(child.tag) == name)


def _camt(data: bytes, digest: str) -> Statement:
    if b"<!DOCTYPE" in data[:1000]:
        raise StatementError("statement: XML with a DOCTYPE is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise StatementError(f"statement: not well-formed XML ({error})") from None
    if "camt.053" not in root.tag:
        raise StatementError(
            f"statement: {_local(root.tag)} from {root.tag.partition('}')[0][1:] or 'no namespace'}"
            " is not a camt.053 document"
        )
    lines: list[StatementLine] = []
    accounts, references = [], []
    for statement in _all(root, "Stmt"):
        account = _text(statement, "Acct", "Id", "IBAN") or _text(statement, "Acct", "Id", "Othr", "Id")
        accounts.append(account)
        references.append(_text(statement, "Id"))
        for number, entry in enumerate((c for c in statement if _local(c.tag) == "Ntry"), start=1):
            lines.extend(_camt_entry(entry, account, _text(statement, "Id"), number, len(lines)))
    if not references:
        raise StatementError("statement: the camt.053 document holds no statement (Stmt)")
    return Statement("camt.053", ",".join(dict.fromkeys(accounts)), ",".join(references), lines, digest)


def _camt_entry(entry: ET.Element, account: str, statement: str, number: int, before: int) -> list[StatementLine]:
    amount_element = _find(entry, "Amt")
    entry_amount = _decimal(amount_element.text if amount_element is not None else "", f"entry {number}")
    currency = amount_element.get("Ccy", "") if amount_element is not None else ""
    credit = _text(entry, "CdtDbtInd") == "CRDT"
    booked = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")[:10] or _text(entry, "ValDt", "Dt")
    details = list(_all(entry, "TxDtls")) or [entry]
    lines: list[StatementLine] = []
    for index, tx in enumerate(details):
        amount_element = _find(tx, "Amt") if tx is not entry else None
        # some banks give the amount only at entry level (Ntry/Amt)
        amount = (
            _decimal(amount_element.text, f"entry {number}")
            if amount_element is not None and len(details) > 1
            else entry_amount
        )
        side = "Dbtr" if credit else "Cdtr"
        payer = _text(tx, "RltdPties", side, "Nm") or _text(tx, "RltdPties", side, "Pty", "Nm")
        payer_iban = _text(tx, "RltdPties", f"{side}Acct", "Id", "IBAN")
        structured = _text(tx, "RmtInf", "Strd", "CdtrRefInf", "Ref")
        unstructured = (
            " ".join(u.text.strip() for u in _all(tx, "Ustrd") if u.text)
            if tx is not entry
            else " ".join(u.text.strip() for u in _all(entry, "Ustrd") if u.text)
        )
        own_ref = _text(tx, "Refs", "AcctSvcrRef") if tx is not entry else ""
        entry_ref = _text(entry, "AcctSvcrRef")
        bank_ref = own_ref or entry_ref or _text(tx, "Refs", "EndToEndId")
        # the bank's reference identifies the entry (a transaction of a batch entry by its place in it)
        key = (
            f"camt:{account}:{own_ref}"
            if own_ref
            else f"camt:{account}:{entry_ref}" + (f"#{index + 1}" if len(details) > 1 else "")
            if entry_ref
            else ""
        )
        lines.append(
            StatementLine(
                index=before + len(lines) + 1,
                booked_on=_day(booked[:10], before + len(lines) + 1),
                amount=amount if credit else -amount,
                currency=currency,
                payer=payer,
                payer_iban=payer_iban,
                reference=structured,
                text=unstructured,
                bank_reference=bank_ref,
                account=account,
                entry_key=key,
            )
        )
    return lines


def _day(text: str, line: int) -> Day:
    """A line's booking day, which becomes a payment's ``received_on``: a real day, or the
    statement is refused."""
    try:
        return Day.of(date.fromisoformat(text))
    except ValueError:
        raise StatementError(f"statement: line {line}: the booking date {text[:20]!r} is not a date") from None


def _decimal(text: str | None, where: str) -> Decimal:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        raise StatementError(f"statement: {where}: amount {text!r} is not a number") from None
    if not value.is_finite():
        raise StatementError(f"statement: {where}: amount {text!r} is not a number")
    return value


# --- MT940 ---------------------------------------------------------------------------------


class _LenientStatement(mt940.tags.Statement):
    """:61: as banks write it: some put a whole IBAN (18+ characters) in the 16-character
    customer reference."""

    pattern = mt940.tags.Statement.pattern.replace("{0,16}", "{0,34}")


def _mt940(data: bytes, digest: str) -> Statement:
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    transactions = mt940.models.Transactions(tags={_LenientStatement.id: _LenientStatement()})
    try:
        transactions.parse(text)
    except Exception as error:  # noqa: BLE001 - mt-940 raises plain RuntimeError, ValueError, decimal's and more naming the tag: each is the file's fault
        raise StatementError(f"statement: MT940 could not be read ({str(error).splitlines()[0][:200]})") from None
    account = str(transactions.data.get("account_identification", ""))
    lines = []
    for index, transaction in enumerate(transactions.transactions, start=1):
        values = transaction.data
        amount = values.get("amount")
        if amount is None:
            continue
        details = str(values.get("transaction_details") or "")
        bank_ref = str(values.get("bank_reference") or "").strip()
        key = f"mt940:{account}:{bank_ref}" if bank_ref and bank_ref.upper() != "NONREF" else ""
        lines.append(
            StatementLine(
                index=index,
                booked_on=_day(str(values.get("entry_date") or values.get("date") or ""), index),
                amount=Decimal(str(amount.amount)),
                currency=str(amount.currency or ""),
                payer=str(values.get("applicant_name") or ""),
                payer_iban=str(values.get("applicant_iban") or ""),
                reference=str(values.get("end_to_end_reference") or ""),
                text=re.sub(r"\s+", " ", " ".join(filter(None, [details, str(values.get("purpose") or "")]))).strip(),
                bank_reference=str(values.get("bank_reference") or values.get("customer_reference") or ""),
                account=account,
                entry_key=key,
            )
        )
    if not lines and ":61:" not in text:
        raise StatementError("statement: the MT940 file holds no transactions (:61:)")
    return Statement("MT940", account, str(transactions.data.get("transaction_reference", "")), lines, digest)
