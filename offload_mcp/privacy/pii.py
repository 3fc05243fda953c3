"""Personal data with a checkable shape: e-mail, phones, SSN, cards, IBAN, public IPs, addresses.

Each check stops a value that identifies or reaches a person from reaching a provider that
may keep it; each exclusion (example domains, 555 numbers, test cards, reserved ranges)
keeps documentation and test fixtures flowing.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from offload_mcp.privacy.checks import luhn
from offload_mcp.privacy.engine import Detector, Rule, compiled, spans
from offload_mcp.privacy.findings import Finding
from offload_mcp.privacy.tables import (
    EXAMPLE_DOMAIN,
    FAMOUS_ADDRESSES,
    IBAN_LENGTHS,
    NON_PERSONAL_MAILBOXES,
    PUBLIC_SERVICE_IPS,
    TEST_CARDS,
    TEST_IBANS,
    words,
)
from offload_mcp.privacy.tabular import tabular_findings

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

_FILE_TLDS = words("png jpg jpeg gif svg webp js ts py css map json lock txt md html")


def _email_context(text: str, start: int, end: int) -> bool:
    # `user:pass@host` and `ssh://deploy@host` are credentials or hosts, not mailboxes.
    before = text[start - 1] if start else " "
    return before not in "/:" or text[max(0, start - 7) : start] == "mailto:"


def _email(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    if EXAMPLE_DOMAIN.search(domain) or domain.rsplit(".", 1)[-1] in _FILE_TLDS:
        return False
    return local.lower() not in NON_PERSONAL_MAILBOXES


def _us_phone(value: str) -> bool:
    digits = re.sub(r"\D", "", value.split("x")[0].split("ext")[0])
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10:
        return False
    area, exchange = digits[:3], digits[3:6]
    # NANP: neither part starts with 0 or 1; N11 codes are services; 555 is fiction's exchange.
    if area[0] in "01" or exchange[0] in "01" or area[1:] == "11" or exchange == "555":
        return False
    return area != "555" and len(set(digits)) > 2


@functools.lru_cache(maxsize=1024)
def _intl_phone(value: str) -> bool:
    # `+1...` always parses to country code 1 (codes are prefix-free), whose answer is
    # `_us_phone`; a number that passes it has 10 national digits, which `parse` always
    # accepts. So `_us_phone` alone decides, without `phonenumbers.parse` (~60-200 us).
    if value.startswith("+1"):
        return _us_phone(value)
    import phonenumbers

    try:
        number = phonenumbers.parse(value.replace("(0)", ""), None)
    except phonenumbers.NumberParseException:
        return False
    if number.country_code == 1:
        return _us_phone(value)
    return phonenumbers.is_possible_number(number) and not _fictional(number)


def _fictional(number: PhoneNumber) -> bool:
    """Ofcom's and ACMA's drama ranges (the UK's and Australia's 555), repeated digits and
    counting runs."""
    national = str(number.national_number)
    if number.country_code == 44 and national.startswith(("2079460", "1632960", "7700900")):
        return True
    # ACMA's ranges for fiction (Australia's 555).
    if number.country_code == 61 and national.startswith(("25550", "37010", "491570")):
        return True
    return len(set(national)) <= 2 or national in "1234567890123456789"


def valid_phone(value: str) -> bool:
    """A NANP number that is not fiction's, or an international number of possible length."""
    if value.lstrip().startswith(("+", "00")):
        return _intl_phone(value.strip())
    return _us_phone(value)


# Regions whose national notation (`020 7946 0958`, `06 12 34 56 78`, `8120 4048`) a number
# may use where a label or a column says it is a phone; GB first: its drama ranges are fiction
# whatever another plan says.
NATIONAL_REGIONS = "GB DE FR IT ES NL BE CH AT IE AU NZ IN JP SG HK ZA MX BR SE NO DK PL PT"
_DATE_SHAPED = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{8}")
_PHONE_LABEL = (
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|call|callback|whatsapp|contact|reach me"
    r"|(?:new|my|callback|contact|phone|mobile|cell) number)\b"
)
_NATIONAL = re.compile(
    r"[\"']?[:.#=]?\s{0,3}[\"']?(?:(?:me )?(?:at|on) |number:?[ \t]+|no\.? |is )?"
    r"(\(?0\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}|\(?[1-9]\d{1,3}\)?(?:[ .-]?\d{2,4}){1,4})(?![\d-])"
)


@functools.lru_cache(maxsize=1024)
def national_phone(value: str) -> bool:
    """A number without its country code, where a label or a column says it is a phone.

    NANP numbers by their plan's rules, others when valid in one of `NATIONAL_REGIONS`;
    fiction's numbers, date-shaped runs and bare digit runs outside NANP (an ID more often
    than a foreign number) do not count.
    """
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 12 or len(set(digits)) <= 2 or _DATE_SHAPED.fullmatch(value):
        return False
    nanp = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(nanp) == 10 and digits[0] != "0":
        if _us_phone(nanp):
            return True
        if "555" in (nanp[:3], nanp[3:6]):
            return False  # else it may be Italian (`312 125 5923`) or Brazilian (`(11) 97922-0241`)
    if digits.startswith("555") or (value.isdigit() and digits[0] != "0"):
        return False
    import phonenumbers

    for region in NATIONAL_REGIONS.split():
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if _fictional(number):
            return False
        # With a trunk `0` the notation itself says "phone number"; without, the plan must.
        if phonenumbers.is_valid_number(number) or (
            digits[0] == "0" and phonenumbers.is_possible_number(number)
        ):
            return True
    return False


# An address after its label, in the notations the US pattern does not know: `10 rue Lafayette`,
# `Hauptstraße 51`, `Bahnhofstr. 6`, `Flat 2, 18 Rue de Rivoli`.
_ADDRESS_LABEL = (
    r"(?i)\b(?:(?:home|street|postal|mailing|shipping|billing|delivery|my) address|address for"
    r"|lives at|live at|ship to|deliver to|adresse|anschrift|wohnhaft in)\b"
)
_LABELLED_ADDRESS = re.compile(
    r"[^:\n]{0,24}?:?[ \t]+(?P<value>(?:(?:Flat|Apt\.?|Unit|Suite) \w+,? )?"
    r"\d{1,5}[A-Za-z]?,? (?:[A-Za-zÀ-ÿ'.-]+ ){1,4}[A-Za-zÀ-ÿ'.-]+"  # house number, 2+ words
    r"|[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer)"
    r" \d{1,4}[a-z]?)"
    r"(?P<rest>(?:,? (?:\d{4,5} )?[A-ZÀ-Ý][\w'À-ÿ-]*(?: [A-Z0-9][\w'-]*){0,3})*)"  # town, postcode
)


def _labelled_addresses(text: str, data: bytes) -> Iterator[Finding]:
    """Street addresses of any country, where a label says so."""
    for found in spans(compiled(_ADDRESS_LABEL), data):
        match = _LABELLED_ADDRESS.match(text, found[0][1])
        if match is not None and "@" not in match.group() and "://" not in match.group():
            yield Finding("street_address", "pii", match.start("value"), match.end("rest"), 0.7)


def _not_a_year_range(text: str, start: int, end: int) -> bool:
    """`Copyright (c) 2008-2017 Oak Ridge ...`: a year, not a house number."""
    return not re.search(r"\d-$", text[max(0, start - 2) : start])


def _not_famous(address: str) -> bool:
    """Not a company's headquarters or fiction's address (docs and fixtures use them)."""
    return " ".join(address.lower().split()[:2]).rstrip(",") not in FAMOUS_ADDRESSES


def _labelled_phones(text: str, data: bytes) -> Iterator[Finding]:
    """National notations, which look like any digit run, only right after a phone label."""
    for found in spans(compiled(_PHONE_LABEL), data):
        match = _NATIONAL.match(text, found[0][1])
        if match is not None and national_phone(match.group(1)):
            yield Finding("phone", "pii", match.start(1), match.end(1), 0.7)


def _real_birth_date(value: str) -> bool:
    """Not a sentinel (`1900-01-01`, `1970-01-01`) that fixtures and defaults use."""
    from offload_mcp.privacy.fixtures import stand_in

    return not stand_in("date_of_birth", value)


def valid_ssn(value: str) -> bool:
    """An SSN the SSA could issue, and no famous example."""
    digits = re.sub(r"\D", "", value)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    # The Woolworth wallet card and the textbook example are famous non-people.
    # HL7's own sample message (`EVERYWOMAN^EVE`) carries 555-44-4444.
    if all(len(set(part)) == 1 for part in (area, group, serial)):
        return False  # `111-22-3333`: a docs example's pattern
    return digits not in ("078051120", "123456789", "219099999", "555444444")


# Each network's prefix with the lengths it issues: Amex 15, Diners 14, Visa 13/16/19, ...
_CARD_PREFIX = re.compile(
    r"3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11}|4(?:\d{12}|\d{15}|\d{18})|(?:5[1-5]|2[2-7])\d{14}"
    r"|(?:6011|65\d\d|64[4-9]\d|62\d\d|35\d\d)\d{12,15}"
)


def _card(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if not _CARD_PREFIX.fullmatch(digits) or not luhn(digits):
        return False
    if digits in TEST_CARDS or len(set(digits)) < 4 or "00000" in digits:
        return False
    separators = set(re.sub(r"\d", "", value))
    # Cards are written 13-16 digits at a time; a longer unbroken run is an ID (a snowflake,
    # an order number), though a few networks issue 19-digit cards.
    return len(separators) <= 1 and (bool(separators) or len(digits) <= 16)


def _iban(value: str) -> bool:
    compact = value.replace(" ", "")
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or compact in TEST_IBANS:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@functools.lru_cache(maxsize=4096)  # `127.0.0.1`, `0.0.0.0` and docs' ranges recur everywhere
def _not_in_dotted_number(text: str, start: int, end: int) -> bool:
    """Not part of a dotted number: an OID (`1.3.6.1.4.1`, `ObjectIdentifier("2.5.4.45")`),
    an RFC section (`section-4.7.1.1`), a version; nor a test's `2.2.2.2`."""
    if text[start - 1 : start] in (".", "-") or re.match(r"\.\d", text[end : end + 2]):
        return False
    if _DOTTED_CONTEXT.search(text, max(0, start - 24), start):
        return False
    # `OpenSSL 3.0.13.1`: small parts after a word that is no address's label read as a version.
    word = re.search(r"([A-Za-z][\w-]*) $", text[max(0, start - 30) : start])
    parts = [int(p) for p in text[start:end].split(".")]
    if word and word.group(1).lower() not in _ADDRESS_WORDS and parts[0] < 10 and max(parts) < 100:
        return False
    return len(set(text[start:end].split("."))) > 1


_ADDRESS_WORDS = words("ip addr address host server from to via at peer remote client src dst")
_DOTTED_CONTEXT = re.compile(
    r"(?i)oid|objectidentifier|section|version|release|\bv(?:er)?\.?\s*$|rfc|[~=<>]=\s*$"
)


def _not_after_point(text: str, start: int, end: int) -> bool:
    """Not the fraction digits of a decimal (`8.6270183987866146`) nor a number in arithmetic
    or a seed (`default_rng(2435908729190400)`, `* 14633730048000000*t + ...`)."""
    before = text[max(0, start - 2) : start]
    return not re.search(r"\d\.$|[(*+/^%] ?$", before)


def _not_a_decimal(text: str, start: int, end: int) -> bool:
    """`3.636 947 5486`, `206.766 9883`, `2.293 712 278 3963`: a number's digits in threes."""
    if re.search(r"\d[. ]$|-$", text[max(0, start - 2) : start]):
        return False
    separators = set(re.sub(r"\(\d{3}\) ?|\d", "", text[start:end]))
    if len(separators) > 1:  # `1838.683 6605`, `259-264 1970`: phones keep one separator
        return False
    return not re.match(r"1\.\d{3} \d{3} \d{4}|\d{3}\.\d{3} \d{4}", text[start:end])


def _ipv4(value: str) -> bool:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    if value in PUBLIC_SERVICE_IPS:
        return False
    if value.endswith(".0"):  # a network (`70.132.0.0` in a CIDR list), not a host
        return False
    return address.is_global and not value.startswith(("0.", "1.0.", "1.1.", "1.2.", "2.0."))


@functools.lru_cache(maxsize=4096)
def _ipv6(value: str) -> bool:
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if address.compressed in PUBLIC_SERVICE_IPS:
        return False
    return address.is_global and value.count(":") >= 3


_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Loop|Alley|Crescent|"
    r"Close|Row|Plaza|Run|Path|Pike|Point|Ridge|Heights|Way)\.?"
)
MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{8}|"
    rf"{MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {MONTH},? \d{{4}}|\d{{1,2}}-{MONTH}-\d{{2,4}})"
)
DOB = (
    r"(?i)(?:\bdob|d\.o\.b\.?|date[ _]of[ _]birth|birth[ _-]?date|born(?: on)?(?: the)?|birthday|"
    r"geburtsdatum|fecha de nacimiento)`?(?:\s*\([^)\n]{1,30}\))?"  # `Date of birth (verified):`
    r"(?:\s+(?:is|was))?[\"']?\s*(?:=>|[:=,>](?:\s*&?\w+\s*=)?)?\s*[\"'`]?"  # `=>`, `: &str =`
    r"(?:\?[ \t]*\n[ \t]*[A-Za-z][\w .-]{0,20}:[ \t]*)?"  # a transcript's answer: `CALLER: ...`
    r"(" + DATE + r")"
)

RULES: list[Rule] = [
    Rule(
        "email",
        "pii",
        r"[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}",
        _email,
        trigger=r"[A-Za-z0-9]@[A-Za-z0-9-]+\.",
        bound=False,
        context=_email_context,
    ),
    Rule(
        "phone",
        "pii",
        r"(?:\+?1[ .-]?|001[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
        r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?",
        _us_phone,
        trigger=r"\d{3}[ .-]\d{4}",
        context=_not_a_decimal,
    ),
    Rule(
        "phone",
        "pii",
        r"(?:\+|00)[1-9]\d{0,2}[ .-]?(?:\(0?\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{2,5}){1,4}",
        _intl_phone,
        trigger=r"(?:\+|00)[1-9]\d{0,2}[ .-]?[(\d]",
    ),
    Rule(
        "ssn",
        "pii",
        r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}",
        valid_ssn,
        trigger=r"\d{3}[- ]\d{2}[- ]\d{4}",
    ),
    Rule(  # nine bare digits are an SSN only after its label
        "ssn",
        "pii",
        r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?|ss#)[\"']?[ \t:#=]*[\"']?(\d{9})\b",
        valid_ssn,
        group=1,
    ),
    Rule(
        "payment_card",
        "pii",
        r"\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{4,5}",
        _card,
        context=_not_after_point,
        trigger=r"\d{4}[ -]?\d{4}[ -]?\d{4}|\d{4}[ -]?\d{6}",
    ),
    Rule(
        "iban",
        "pii",
        r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?",
        _iban,
        trigger=r"[A-Z]{2}\d{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
    ),
    Rule(
        "ip_address",
        "pii",
        r"(?:\d{1,3}\.){3}\d{1,3}",
        _ipv4,
        confidence=0.7,
        context=_not_in_dotted_number,
    ),
    Rule(
        "ip_address",
        "pii",
        r"[23][0-9a-fA-F]{3}(?::[0-9a-fA-F]{0,4}){2,7}",
        _ipv6,
        confidence=0.7,
        trigger=r"[23][0-9a-fA-F]{3}:[0-9a-fA-F]{0,4}:",
    ),
    Rule(
        "street_address",
        "pii",
        r"\d{1,6}[A-Z]? (?:[NSEW]\.? )?(?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th))(?: [A-Z][a-z]+){0,3} "
        + _STREET
        + r"(?:,? (?:Apt|Apartment|Suite|Ste|Unit|#|Fl|Floor)\.? ?[A-Za-z0-9-]+)?"
        # then the town and a US state and ZIP, a UK postcode or a Canadian postal code
        r"(?:,? [A-Z][a-z]+(?: [A-Z][a-z]+){0,2}"
        r"(?:,? [A-Z]{2}(?: \d{5}(?:-\d{4})?)?\b|,? [A-Z][a-z]+ \d{5}(?:-\d{4})?"
        r"|,? [A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}|,? [A-Z]{2},? [A-Z]\d[A-Z] ?\d[A-Z]\d))?",
        _not_famous,
        confidence=0.8,
        context=_not_a_year_range,
        trigger=r"\d (?:[NSEW]\.? )?[A-Z0-9][a-z]+ (?:[A-Z][a-z]+ ){0,3}" + _STREET,
    ),
    Rule("date_of_birth", "pii", DOB, _real_birth_date, group=1, confidence=0.85),
]

# A personal column's name, or a secret's as a column of a table (`id,api_token,notes`).
_TABLE_TRIGGER = (
    r"(?i)e-?mail|phone|mobile|ssn|dob|birth|address|card"
    r"|[,\t|(][ \t]*[\"'`]?[\w]*(?:token|secret|passw|api_?key)"
)

DETECTORS: list[Detector] = [
    Detector(_PHONE_LABEL, _labelled_phones),
    Detector(_ADDRESS_LABEL, _labelled_addresses),
    Detector(_TABLE_TRIGGER, tabular_findings),
]
