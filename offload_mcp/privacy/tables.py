"""Reference data the checks need: documented examples, test numbers, IBAN lengths."""

from __future__ import annotations

import re


def words(text: str) -> frozenset[str]:
    """A set from a whitespace-separated list (keeps long tables readable)."""
    return frozenset(text.split())


# Published in vendors' docs and tutorials; flagging them blocks documentation work.
DOCUMENTED_KEYS = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    }
)

# RFC 2606 / 6761 names and common documentation stand-ins: nobody's mailbox.
EXAMPLE_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net|edu)|[a-z0-9-]+\.(?:example|test|invalid|localhost|local)"
    r"|example|localhost|test|invalid|(?:your|my)-?(?:domain|company|email|site)\.[a-z]+"
    r"|domain\.(?:com|tld)|email\.tld|company\.com)$"
)

# Role mailboxes and VCS users belong to no one in particular.
NON_PERSONAL_MAILBOXES = words(
    "git noreply no-reply donotreply do-not-reply mailer-daemon postmaster hostmaster "
    "webmaster abuse root nobody you your.name user username name someone"
)

# Card networks' and processors' published test numbers (Stripe, Adyen, Braintree, PayPal).
TEST_CARDS = words(
    """
    4111111111111111 4242424242424242 4000056655665556 5555555555554444 2223003122003222
    5200828282828210 5105105105105100 378282246310005 371449635398431 6011111111111117
    6011000990139424 3056930009020004 36227206271667 3566002020360505 6200000000000005
    4012888888881881 4222222222222 4012888888881 5019717010103742 6331101999990016
    4917610000000000 4444333322221111 4988438843884305 4166676667666746 4646464646464644
    5454545454545454 4000000000000002 4000000000009995 4000000000000069 4000000000000127
    4000000000000119 4100000000000019 4000000000003220 4000002500003155 378734493671000
    5425233430109903 4263982640269299 4917484589897107 6011000400000000 3714496353984312
    """
)

# Wikipedia's and banks' documentation IBANs carry valid checksums but belong to no one.
TEST_IBANS = words(
    "GB82WEST12345698765432 DE89370400440532013000 GB33BUKB20201555555555 "
    "FR1420041010050500013M02606 NL91ABNA0417164300 GB29NWBK60161331926819 "
    "CH9300762011623852957 ES9121000418450200051332 IT60X0542811101000000123456"
)

# Headquarters that docs and fixtures use (Stripe's test data, Google's samples) and fiction's
# addresses: nobody's home. House number and first word of the street.
FAMOUS_ADDRESSES = frozenset(
    {
        "510 townsend",
        "1600 amphitheatre",
        "51 franklin",
        "59 temple",
        "675 mass",
        "160 saratoga",
        "1895 preston",
        "1 infinite",
        "1 apple",
        "1 hacker",
        "1 microsoft",
        "410 terry",
        "1600 pennsylvania",
        "350 fifth",
        "742 evergreen",
        "221b baker",
        "4 privet",
        "1313 mockingbird",
        "123 fake",
    }
)

# Public resolvers and well-known service addresses: in configs and docs, never a person's.
PUBLIC_SERVICE_IPS = words(
    "8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 1.1.1.2 1.0.0.2 1.1.1.3 1.0.0.3 9.9.9.9 149.112.112.112 "
    "208.67.222.222 208.67.220.220 64.6.64.6 64.6.65.6 94.140.14.14 94.140.15.15 "
    "76.76.2.0 76.76.10.0 185.228.168.9 185.228.169.9 4.2.2.1 4.2.2.2 "
    "2001:4860:4860::8888 2001:4860:4860::8844 2606:4700:4700::1111 2606:4700:4700::1001 "
    "2620:fe::fe 2620:fe::9 2620:119:35::35 2620:119:53::53"
)

_IBAN = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 "
    "EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 "
    "IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 "
    "NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 "
    "TR26 UA29 VA22 VG24 XK20"
)
IBAN_LENGTHS: dict[str, int] = {item[:2]: int(item[2:]) for item in _IBAN.split()}
