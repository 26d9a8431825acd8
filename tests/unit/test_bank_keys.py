"""Which statement lines are the same bank entry: the bank's reference, else the content."""

from __future__ import annotations

from services.bank import parse_statement

MT940 = b""":20:STMT-1
:25:CZ6508000000192000145399
:28C:1/1
:60F:C261201CZK0,00
:61:2612011201CR181,50NTRFNONREF//BANK-0001
:86:Faktura FV/2026/000001
:61:2612011201CR181,50NTRFNONREF//BANK-0001
:86:Faktura FV/2026/000001
:61:2612011201CR181,50NTRFNONREF//BANK-0002
:86:Faktura FV/2026/000001
:61:2612011201CR20,00NTRFNONREF
:86:zaloha
:62F:C261201CZK564,50
"""


def camt(entries: str) -> bytes:
    return f"""<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
<BkToCstmrStmt><Stmt><Id>S-1</Id><Acct><Id><IBAN>CZ0000000000000000000001</IBAN></Id></Acct>{entries}
</Stmt></BkToCstmrStmt></Document>""".encode()


def tx(amount: str, text: str, ref: str = "") -> str:
    refs = f"<Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>" if ref else ""
    return f'<TxDtls>{refs}<Amt Ccy="CZK">{amount}</Amt><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls>'


def test_an_mt940_entry_is_known_by_the_bank_reference_and_else_by_its_content() -> None:
    first, copy, other, unreferenced = parse_statement(MT940).lines
    assert first.key() == copy.key() == "mt940:CZ6508000000192000145399:BANK-0001"
    assert other.key() != first.key()  # the same amount and text, another entry of the bank's
    assert unreferenced.entry_key == "" and unreferenced.key().startswith("content:")


def test_a_camt_batch_entrys_transactions_are_distinct_entries_and_a_copy_of_one_is_not() -> None:
    batch = f"""<Ntry><Amt Ccy="CZK">200.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>E-1</AcctSvcrRef>
      <BookgDt><Dt>2026-12-01</Dt></BookgDt><NtryDtls>{tx("100.00", "a")}{tx("100.00", "a")}</NtryDtls></Ntry>"""
    single = f"""<Ntry><Amt Ccy="CZK">50.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-12-01</Dt></BookgDt>
      <NtryDtls>{tx("50.00", "b", "T-9")}</NtryDtls></Ntry>"""
    one, two, three, again = parse_statement(camt(batch + single + single)).lines
    assert (one.key(), two.key()) == ("camt:CZ0000000000000000000001:E-1#1", "camt:CZ0000000000000000000001:E-1#2")
    assert three.key() == again.key() == "camt:CZ0000000000000000000001:T-9"


def test_control_characters_in_a_banks_texts_become_spaces_and_reach_no_statement_event() -> None:
    mt940 = MT940.replace(b":86:zaloha", ":86:zal\x00oha\x01 Nov\x85\u00e1k\uffff".encode())
    *_, unreferenced = parse_statement(mt940).lines
    assert unreferenced.text == "zal oha Nov ák"
    entry = """<Ntry><Amt Ccy="CZK">50.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-12-01</Dt></BookgDt>
      <NtryDtls><TxDtls><Amt Ccy="CZK">50.00</Amt><RltdPties><Dbtr><Nm>Petra&#x85;Nov\u00e1\u0086kov\u00e1</Nm></Dbtr>
      </RltdPties><RmtInf><Ustrd>FV&#x9f;1</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"""
    (line,) = parse_statement(camt(entry)).lines
    assert (line.payer, line.text) == ("Petra Nová ková", "FV 1")
    clean = parse_statement(MT940).lines  # a clean file is left exactly as the bank sent it
    assert [line.text for line in clean] == ["Faktura FV/2026/000001"] * 3 + ["zaloha"]
