"""`python -m bench.soak [--seconds N]` (`make soak`, SOAK_SECONDS): see bench/soak/__init__.py.
Writes soak.json, soak.md and soak.png to bench/results/ (or --out); exits 1 when a goal is
missed (an error, something lost, memory or open files growing by 10 % or more)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import machine, plots
from bench.soak import report
from bench.soak.run import Plan, soak
from tests.harness import ROOT

RESULTS = ROOT / "bench" / "results"


def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    """The run's results; the services' logs and data in `workdir` (default: a temporary one)."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
            figures = soak(plan, Path(temporary))
    else:
        figures = soak(plan, workdir)
    return {"started_at": started, "mode": "soak", "machine": machine.describe(ROOT), "soak": figures}


def write(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "soak.json", out / "soak.md", out / "soak.png"]
    paths[0].write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    paths[1].write_text(report.markdown(results))
    plots.soak(results, paths[2])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    parser.add_argument("--orders-per-s", type=float, default=Plan.orders_per_s)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results = run(Plan(seconds=args.seconds, orders_per_s=args.orders_per_s))
    written = write(results, args.out)
    figures = results["soak"]
    summary = {k: figures[k] for k in ("requests", "errors", "lost", "create_p50_ms", "create_p99_ms", "goals")}
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.write("wrote " + ", ".join(str(p) for p in written) + "\n")
    return 0 if all(figures["goals"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
