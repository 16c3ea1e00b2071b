"""`make trace` (`python -m bench.trace`): one `POST /v1/orders` on a throw-away stack with
`OTEL_TRACES_EXPORTER=console`, printed as its trace — a tree of the spans of the three processes,
each timed and labelled with the article's steps it covers
(README.md#where-the-articles-14-steps-live).

The stack (tests/harness.Stack: the real `python -m …` processes, temporary SQLite files, free
ports) serves one order first, so that the traced one shows the warm path rather than the
connections being opened; then it is stopped, which flushes the exporters, and the spans of the
trace are read back from the three logs (one JSON line per span, beside the log lines).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

import httpx

from bench.windows import BODY
from tests.harness import Stack
from tests.spans import Span, children, of_trace, parse, roots

SERVICES = ("gateway", "order_service", "payment_service")
ORDER = "shop.order.v1.OrderService/"
PAYMENT = "shop.payment.v1.PaymentService/"

# (process, span name) → what of the article's flow the span is.
STEPS: dict[tuple[str, str], str] = {
    ("gateway", "POST /v1/orders"): "1 JSON in, validated · 14 the Order back as JSON",
    ("gateway", ORDER + "CreateOrder"): "2-5 CreateOrderRequest, encoded, over HTTP/2",
    ("order_service", ORDER + "CreateOrder"): "6-8 decoded, the handler runs · 9-11 the Order encoded, sent back",
    ("order_service", "write OrderStore.add_pending"): "the order durable (pending_payment) before the charge",
    ("order_service", PAYMENT + "Charge"): "2-5 again: ChargeRequest, encoded, over HTTP/2",
    ("payment_service", PAYMENT + "Charge"): "6-8 decoded, the card charged · 9-11 the Payment encoded, sent back",
    ("payment_service", "read Payments.find"): "a charge with this key already? (idempotency)",
    ("payment_service", "write Payments.insert"): "the payment stored",
    ("order_service", "write OrderStore.record"): "12-13 the Payment decoded, recorded on the order (version + event)",
}
KINDS = {"SERVER": "server", "CLIENT": "client"}


def run_one(workdir: Path) -> tuple[str, httpx.Response, dict[str, str]]:
    """Start the stack, place a warm-up order and the traced one, stop; the trace id, the answer
    and each process's log."""
    # Each process named as the tree names it, whatever OTEL_SERVICE_NAME the caller has set.
    names = {name: {"OTEL_SERVICE_NAME": name} for name in SERVICES}
    stack = Stack(workdir, env={"OTEL_TRACES_EXPORTER": "console"}, service_env=names)
    trace_id = secrets.token_hex(16)
    headers = {"content-type": "application/json", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    try:
        stack.start()
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            http.post("/v1/orders", content=BODY, headers={"content-type": "application/json", **stack.headers})
            reply = http.post("/v1/orders", content=BODY, headers={**headers, **stack.headers})
    finally:
        stack.stop()  # the exporters flush on the way out
    return trace_id, reply, {name: stack.services[name].log() for name in SERVICES}


def _label(span: Span) -> str:
    name = span.name.removeprefix(ORDER).removeprefix(PAYMENT)
    kind = KINDS.get(span.kind)
    return f"{name} ({kind})" if kind and span.name.startswith((ORDER, PAYMENT)) else name


def tree(spans: list[Span]) -> list[str]:
    """The spans as an indented tree: start (ms after the first), duration, process, name, steps."""
    if not spans:
        return []
    zero = min(s.start for s in spans)
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(span: Span, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        start = (span.start - zero).total_seconds() * 1000
        note = STEPS.get((span.service, span.name), "")
        rows.append((f"{start:7.2f}", f"{span.ms:7.2f}", span.service, prefix + branch + _label(span), note))
        below = children(spans, span)
        extension = "" if top else ("   " if last else "│  ")
        for index, child in enumerate(below):
            walk(child, prefix + extension, index == len(below) - 1, False)

    for root in roots(spans):
        walk(root, "", True, True)
    width = max(len(r[3]) for r in rows)
    lines = [f"  {'start ms':>8} {'took ms':>8}  {'process':<16} {'span':<{width}}  article steps"]
    lines += [f"  {s:>8} {d:>8}  {p:<16} {n:<{width}}  {note}".rstrip() for s, d, p, n, note in rows]
    return lines


def hops(spans: list[Span]) -> list[str]:
    """What each gRPC hop cost beyond its handler: the client's span less the server's — encoding,
    HTTP/2 both ways, decoding, the gRPC stacks (steps 3-5 and 9-12 of that hop)."""
    lines = []
    for method in (ORDER + "CreateOrder", PAYMENT + "Charge"):
        client = next((s for s in spans if s.name == method and s.kind == "CLIENT"), None)
        server = next((s for s in spans if s.name == method and s.kind == "SERVER"), None)
        if client and server:
            lines.append(
                f"  {method.split('/')[1]:<12} {client.service} → {server.service}: {client.ms:.2f} ms at the caller,"
                f" {server.ms:.2f} ms in the handler, {client.ms - server.ms:.2f} ms on the wire and in the gRPC stacks"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trace", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trace-") as workdir:
        trace_id, reply, logs = run_one(Path(workdir))
    spans = of_trace([s for name in SERVICES for s in parse(logs[name])], trace_id)
    if reply.status_code != 201 or not spans:
        sys.stderr.write(f"the order was not traced: {reply.status_code} {reply.text[:300]}\n")
        return 1
    order = reply.json()
    processes = sorted({s.service for s in spans}, key=SERVICES.index)
    out = [
        f"POST /v1/orders → {reply.status_code}, order {order['id']} {order['status']}",
        f"trace {trace_id}: {len(spans)} spans from {', '.join(processes)}",
        "",
        *tree(spans),
        "",
        "each gRPC hop:",
        *hops(spans),
        "",
    ]
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
