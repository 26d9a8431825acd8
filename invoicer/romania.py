"""What CIUS-RO (ANAF's RO e-Factura rules) asks of a Romanian address and buyer, worked out
from what the invoice already holds.

A Romanian address needs its county as an ISO 3166-2:RO code (BR-RO-110/111), and a
Bucharest one its sector as the city, SECTOR1 to SECTOR6 (BR-RO-100/101). Addresses keep no
county, but a Romanian postal code (six digits, Poșta Română's 2003 scheme) starts with its
county's two digits, and in Bucharest with its sector's. A buyer with neither a VAT id nor a
legal registration id, a consumer, is identified by thirteen zeros, as ANAF prescribes for a
person without a CNP (BR-RO-120)."""

from __future__ import annotations

from events.contract import Address

CONSUMER_WITHOUT_CNP = "0000000000000"

# The first two digits of a Romanian postal code -> its county (ISO 3166-2:RO).
COUNTIES = {
    **{f"0{sector}": "RO-B" for sector in range(1, 7)},
    "07": "RO-IF",
    "08": "RO-GR",
    "10": "RO-PH",
    "11": "RO-AG",
    "12": "RO-BZ",
    "13": "RO-DB",
    "14": "RO-TR",
    "20": "RO-DJ",
    "21": "RO-GJ",
    "22": "RO-MH",
    "23": "RO-OT",
    "24": "RO-VL",
    "30": "RO-TM",
    "31": "RO-AR",
    "32": "RO-CS",
    "33": "RO-HD",
    "40": "RO-CJ",
    "41": "RO-BH",
    "42": "RO-BN",
    "43": "RO-MM",
    "44": "RO-SM",
    "45": "RO-SJ",
    "50": "RO-BV",
    "51": "RO-AB",
    "52": "RO-CV",
    "53": "RO-HR",
    "54": "RO-MS",
    "55": "RO-SB",
    "60": "RO-BC",
    "61": "RO-NT",
    "62": "RO-VN",
    "70": "RO-IS",
    "71": "RO-BT",
    "72": "RO-SV",
    "73": "RO-VS",
    "80": "RO-GL",
    "81": "RO-BR",
    "82": "RO-TL",
    "90": "RO-CT",
    "91": "RO-CL",
    "92": "RO-IL",
}


def county(address: Address) -> str:
    """The county code of a Romanian address, from its postal code; "" if it has none."""
    code = address.postal_code.replace(" ", "")
    if address.country != "RO" or len(code) != 6 or not code.isdigit():
        return ""
    return COUNTIES.get(code[:2], "")


def city(address: Address) -> str:
    """The city as CIUS-RO writes it: a Bucharest address's sector (SECTOR1..SECTOR6)."""
    if county(address) == "RO-B":
        return f"SECTOR{address.postal_code.replace(' ', '')[1]}"
    return address.city
