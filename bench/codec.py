"""The encode+decode cost of one hop's messages alone, with no network: protobuf (the generated
classes, upb) against the same documents as JSON with the standard library and with orjson."""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from bench.payloads import hop_messages

FORMATS = ("protobuf", "json", "orjson")


def _round_trips(payload: str) -> dict[str, tuple[Callable[[], object], int]]:
    """Per format: a function that encodes and decodes the request and the response once, and the
    bytes those two messages take on the wire."""
    messages, documents = hop_messages(payload)
    types = [type(m) for m in messages]

    def protobuf() -> object:
        return [t.FromString(m.SerializeToString()) for t, m in zip(types, messages, strict=True)]

    def stdlib() -> object:
        return [json.loads(json.dumps(d)) for d in documents]

    def fast() -> object:
        return [orjson.loads(orjson.dumps(d)) for d in documents]

    return {
        "protobuf": (protobuf, sum(m.ByteSize() for m in messages)),
        "json": (stdlib, sum(len(json.dumps(d).encode()) for d in documents)),
        "orjson": (fast, sum(len(orjson.dumps(d)) for d in documents)),
    }


def _time_us(fn: Callable[[], object], budget_s: float) -> float:
    """Microseconds per call: the median of 3 timed batches, each sized to about budget_s / 3."""
    timer = timeit.Timer(fn)
    once = timer.timeit(number=10) / 10
    number = max(10, int(budget_s / 3 / max(once, 1e-9)))
    batches = timer.repeat(repeat=3, number=number)
    return statistics.median(batches) / number * 1e6


def run(budget_s: float) -> dict[str, Any]:
    """{payload: {format: {"us": µs per hop (request and response, each encoded and decoded),
    "bytes": bytes of the two messages, "vs_protobuf": how many times protobuf's time}}}."""
    results: dict[str, Any] = {}
    for payload in ("small", "large"):
        rows = {
            name: {"us": _time_us(fn, budget_s), "bytes": size} for name, (fn, size) in _round_trips(payload).items()
        }
        base = rows["protobuf"]["us"]
        for row in rows.values():
            row["vs_protobuf"] = row["us"] / base if base else 0.0
        results[payload] = {name: {k: round(v, 3) for k, v in row.items()} for name, row in rows.items()}
    return results
