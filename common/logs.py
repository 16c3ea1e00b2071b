"""One logging set-up for all three processes: a JSON object per line, carrying the request id
and, with tracing on, the current span's `trace_id` and `span_id` (common/tracing.py)."""

from __future__ import annotations

import logging
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

from common.ids import new_id
from common.tracing import current_ids

# Set by the gateway's middleware and by the gRPC services' handler wrapper, read by every log
# line and by the gRPC channel that passes the id on to the next service (common/grpc_client.py).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# A caller's id goes into every log line: 1-128 visible ASCII characters, nothing that could
# break a line or pad it to megabytes.
_REQUEST_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")


def adopt_request_id(given: str | None) -> str:
    """The caller's request id (an `X-Request-ID` header, `x-request-id` gRPC metadata) when it
    is well-formed, else a new one: the same rule at the gateway and at both services."""
    return given if given is not None and _REQUEST_ID_RE.fullmatch(given) else new_id("req")


# Secrets that a library may put in a line of its own (docs/security.md#secrets-never-leak):
# uvicorn's and websockets' DEBUG lines show a request line with its query (`?client_secret=…`), an
# exception may quote a header. Every line is passed through `redact` before it is written.
_SECRETS = re.compile(
    r"(?P<name>client_secret=)[^&\s\"']+"
    r"|(?P<key>\b[sr]k_)[A-Za-z0-9_]{8,}"
    r"|(?P<auth>\b(?:Bearer|Basic) )[A-Za-z0-9+/=._-]{8,}"
    r"|(?P<secret>_secret_)[A-Za-z0-9_-]{8,}",
    re.IGNORECASE,
)


def _hide(match: re.Match[str]) -> str:
    return next(prefix for prefix in match.groups() if prefix) + "[redacted]"


def redact(line: str) -> str:
    """The line with API keys, client secrets and credentials replaced by `[redacted]`."""
    return _SECRETS.sub(_hide, line) if any(mark in line for mark in _MARKS) else line


_MARKS = ("secret", "k_", "Bearer", "Basic", "bearer", "basic")

# Attributes of every LogRecord (and uvicorn's colour copy of the message): not extra fields.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            doc["request_id"] = request_id
        if (ids := current_ids()) is not None:
            doc["trace_id"], doc["span_id"] = ids
        # Structured fields passed with `extra=` (rpc, route, status, duration_ms, ...).
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(doc, default=str).decode())


# The longest service name ("payment_service"): `make run` interleaves three services' lines,
# and like compose's prefixes these line up.
_SERVICE_WIDTH = 15


class ConsoleFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.prefix = f"{service:<{_SERVICE_WIDTH}} | "

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        request_id = request_id_var.get()
        line = self.prefix
        line += f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if request_id:
            line += f" request_id={request_id}"
        if (ids := current_ids()) is not None:
            line += f" trace_id={ids[0]} span_id={ids[1]}"
        line += "".join(f" {k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(service: str, level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own loggers go through the same handler; its access log is replaced by ours.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
