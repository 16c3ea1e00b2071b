"""What a caller may send, in one place (docs/rest-api.md#routes and docs/security.md#security): the
limits of an order, and the shape of every id, key and secret. The gateway documents them in OpenAPI
and refuses early; the services enforce them for every gRPC caller. Each text rule is three names
side by side: the pattern (JSON Schema and pydantic), its compiled form, and the sentence a field
violation shows.
"""

from __future__ import annotations

import re

from common.errors import InvalidArgument

MAX_ITEMS = 100
MAX_QUANTITY = 1000
MAX_UNIT_PRICE = 10_000_000
MIN_ORDER_AMOUNT = 1
MAX_ORDER_AMOUNT = 100_000_000
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def _rule(chars: str, shortest: int, longest: int, what: str = "") -> tuple[str, re.Pattern[str], str]:
    """A text rule, `shortest`-`longest` characters of the class `chars`: its pattern, the compiled
    form and the sentence a violation shows. The patterns are for JSON Schema and pydantic, where
    `$` is the end of the text. In Python's `re`, `$` also matches before a final "\\n"
    ("cus_1\\n" passed), so the compiled forms end in `\\Z`."""
    body = f"[{chars}]{{{shortest},{longest}}}"
    sentence = f"must be {shortest}-{longest} {what or f'characters of [{chars}]'}"
    return f"^{body}$", re.compile(f"^{body}\\Z"), sentence


# A customer, a SKU, an order or payment id from a caller.
IDENTIFIER_PATTERN, IDENTIFIER_RE, IDENTIFIER_RULE = _rule("A-Za-z0-9_.:-", 1, 64)
# An account, as API keys name it and the gateway passes it on (x-account-id).
ACCOUNT_ID_PATTERN, ACCOUNT_ID_RE, ACCOUNT_ID_RULE = _rule("A-Za-z0-9_", 1, 64)
# An order's client secret: what the order service makes (`ord_…_secret_…`, URL-safe base64),
# with room to change it.
CLIENT_SECRET_PATTERN, CLIENT_SECRET_RE, CLIENT_SECRET_RULE = _rule("A-Za-z0-9_-", 16, 200)
# A REST Idempotency-Key (the `idempotency-key` metadata of a gRPC call).
IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RE, IDEMPOTENCY_KEY_RULE = _rule(
    r"\x21-\x7e", 1, 255, "visible ASCII characters"
)

CURRENCY_RULE = "must be an upper-case ISO 4217 currency code"
PAYMENT_METHOD_RULE = "unknown payment method"


def check_identifier(field: str, value: str) -> None:
    """An id or name from a gRPC caller, else INVALID_ARGUMENT. An empty id is a bad request, not
    "not found", and a huge one must not be echoed in the error (gRPC clients refuse error
    metadata over 16 KiB, and see RESOURCE_EXHAUSTED instead)."""
    if not IDENTIFIER_RE.match(value):
        raise InvalidArgument(f"invalid {field}", violations=[(field, IDENTIFIER_RULE)])


# ISO 4217 active codes (currencies and funds, without the precious metals and test codes).
CURRENCIES = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BOV",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHE",
        "CHF",
        "CHW",
        "CLF",
        "CLP",
        "CNY",
        "COP",
        "COU",
        "CRC",
        "CUC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MXV",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SLL",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "USN",
        "UYI",
        "UYU",
        "UYW",
        "UZS",
        "VED",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
        "ZWL",
    ]
)
