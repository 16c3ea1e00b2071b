"""Spans as the console exporter writes them (`OTEL_TRACES_EXPORTER=console`: one JSON object per
line, beside the JSON log lines), read back from the services' logs — for the tracing tests and
`make trace`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    kind: str  # SERVER, CLIENT, INTERNAL
    trace_id: str  # 32 hex digits, as in traceparent and in the log lines
    span_id: str  # 16 hex digits
    parent_id: str | None
    start: datetime
    end: datetime
    status: str  # UNSET, OK, ERROR
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000


def _hex(value: str | None, digits: int) -> str | None:
    return None if value is None else value.removeprefix("0x").rjust(digits, "0")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse(text: str) -> list[Span]:
    """Every span in a log: the lines that are a span's JSON (log lines have no `context`)."""
    spans = []
    for line in text.splitlines():
        if not line.startswith('{"name"'):
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict) or "context" not in doc:
            continue
        spans.append(
            Span(
                name=doc["name"],
                service=str(doc.get("resource", {}).get("attributes", {}).get("service.name", "?")),
                kind=str(doc["kind"]).removeprefix("SpanKind."),
                trace_id=_hex(doc["context"]["trace_id"], 32) or "",
                span_id=_hex(doc["context"]["span_id"], 16) or "",
                parent_id=_hex(doc.get("parent_id"), 16),
                start=_time(doc["start_time"]),
                end=_time(doc["end_time"]),
                status=str(doc.get("status", {}).get("status_code", "UNSET")),
                attributes=dict(doc.get("attributes") or {}),
            )
        )
    return spans


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a log (not the spans)."""
    lines = []
    for line in text.splitlines():
        if line.startswith('{"ts"'):
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return lines


def of_trace(spans: Iterable[Span], trace_id: str) -> list[Span]:
    return sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start)


def children(spans: list[Span], parent: Span) -> list[Span]:
    return sorted((s for s in spans if s.parent_id == parent.span_id), key=lambda s: s.start)


def roots(spans: list[Span]) -> list[Span]:
    """The spans whose parent is not among them (the client's own span, if it sent one, is not)."""
    ids = {s.span_id for s in spans}
    return sorted((s for s in spans if s.parent_id not in ids), key=lambda s: s.start)
