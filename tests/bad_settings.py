"""Bad values of the gateway's settings, by variable, each with what its one-line refusal must say
beside the variable's name ("": the name alone is checked). The unit tests load them
(tests/unit/common/test_settings.py); a whole gateway process must refuse a few of them the same
way (tests/integration/test_rate_limits.py)."""

from __future__ import annotations

from collections.abc import Mapping

# A well-formed key: never echoed, not even inside a bad value.
KEY = "sk_test_" + "a" * 24
SCHEME = "the scheme must be http:// or https://"

GATEWAY: dict[str, dict[str, str]] = {
    "GATEWAY_PORT": {"x": ""},
    "GATEWAY_DEADLINE_S": {"0": ""},
    "LOG_FORMAT": {"xml": ""},
    "GATEWAY_API_KEYS": {
        "": "",
        "acct_1:sk_test_0123456789abcd": "",  # 23 characters: too short
        f"acct_1:{KEY},acct_2:{KEY}": "",
    },
    "GATEWAY_RATE_LIMIT": {"fast": ""},
    "GATEWAY_DEMO_ACCOUNT": {"not an account": ""},
    "GRPC_TLS_CA": {"/nonexistent/ca.pem": ""},  # with GRPC_TLS_CERT and GRPC_TLS_KEY as missing
    "GATEWAY_CORS_ORIGINS": {
        "*": "entry 1 ('*'): a wildcard is not allowed",
        "https://shop.example,https://*.shop.example": "entry 2",
        "https://shop.example/checkout": "with no path",
        "https://shop.example/": "with no path",
        "ftp://shop.example": SCHEME,
        "shop.example": SCHEME,
        "null": SCHEME,
        "https://shop.example:99999": "the port",
        "https://user@shop.example": "with no path",
    },
    "GATEWAY_RATE_LIMIT_STORAGE": {
        "memcached://cache:11211": "must be memory:// (this process) or redis://",
        "memory": "must be memory://",
        "localhost:6379": "must be memory://",
        "redis://": "names no host",
        "redis://redis:port/0": "the port",
        "redis://redis:6379/zero": "database number",
    },
    "GATEWAY_PUBLIC_URL": {"shop": "", "http://": "names no host", "https://shop.example:port": "the port"},
}


def cases(table: Mapping[str, Mapping[str, str]], only: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(variable, value, says) for every bad value of `table`, or of the variables `only` names."""
    return [
        (variable, value, says)
        for variable, values in table.items()
        if not only or variable in only
        for value, says in values.items()
    ]


def first_cases(table: Mapping[str, Mapping[str, str]], *variables: str) -> list[tuple[str, str, str]]:
    """(variable, value, says) for the first bad value of each of `variables`."""
    return [(variable, *next(iter(table[variable].items()))) for variable in variables]
