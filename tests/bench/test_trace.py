"""`make trace` (`python -m bench.trace`) prints one order's trace: a tree with the spans of the
three processes, nested as the calls are, each timed and labelled with the article's steps."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.harness import ROOT


def test_make_trace_prints_the_order_as_a_tree_of_three_processes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.trace"], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert re.match(r"POST /v1/orders → 201, order ord_\w+ paid$", lines[0]), lines[0]
    assert re.match(r"trace [0-9a-f]{32}: \d+ spans from gateway, order_service, payment_service$", lines[1]), lines[1]
    rows = {line.split()[2]: line for line in lines if re.match(r"\s+\d+\.\d\d\s+\d+\.\d\d\s", line)}
    assert set(rows) == {"gateway", "order_service", "payment_service"}, rows
    tree = "\n".join(lines)
    # Nested as the calls are: the payment service's Charge under the order service's call.
    for expected in (
        "gateway          POST /v1/orders",
        "└─ CreateOrder (client)",
        "└─ CreateOrder (server)",
        "├─ write OrderStore.add_pending",
        "├─ Charge (client)",
        "│  └─ Charge (server)",
        "└─ write OrderStore.record",
        "1 JSON in",
        "12-13 the Payment decoded",
    ):
        assert expected in tree, expected
    assert "Charge       order_service → payment_service:" in tree
