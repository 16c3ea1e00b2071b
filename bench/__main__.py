"""`python -m bench [--quick]`: run the benchmarks of CONTRACT §9, print one table, write
`latest.json`, `latest.md` and PNG plots.

It starts what it needs itself: the hop servers (bench/hop_server.py) and the three services
(tests/harness.Stack, with GATEWAY_BENCH_ROUTES on), on free ports with temporary databases.
A section that fails is recorded with its error and the run goes on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import auth, codec, e2e, goals, hop, machine, plots, push, report
from bench.config import FULL, QUICK, Plan
from tests.harness import ROOT, Stack

log = logging.getLogger("bench")

SECTIONS = ("codec", "hop", "e2e", "push")
RESULTS = ROOT / "bench" / "results"


def _raise_open_files_limit() -> None:
    """1,000 watchers are 1,000 sockets here and in the gateway, which inherits the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _section(results: dict[str, Any], name: str, run: Callable[[], dict[str, Any]]) -> None:
    started = time.monotonic()
    log.info("— %s", name)
    try:
        results[name] = run()
    except Exception as exc:  # a broken section must not hide the others' figures
        log.exception("%s failed", name)
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results.setdefault("section_s", {})[name] = round(time.monotonic() - started, 1)


def run(plan: Plan, sections: list[str], workdir: Path, http_load: str = "auto") -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "schema": 1,
        "mode": plan.name,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine.describe(ROOT),
    }
    if "codec" in sections:
        _section(results, "codec", lambda: codec.run(plan.codec_budget_s))
    if "hop" in sections:
        _section(results, "hop", lambda: hop.run(plan, workdir))
    if "e2e" in sections or "push" in sections:
        stack = Stack(workdir / "stack", env={"GATEWAY_BENCH_ROUTES": "true"})
        auth.use_key(stack.keys.secret)
        try:
            stack.start()
            if "e2e" in sections:
                _section(results, "e2e", lambda: e2e.run(plan, stack, e2e.load_tool(http_load)))
            if "push" in sections:
                _section(results, "push", lambda: push.run(plan, stack))
        except Exception as exc:
            log.exception("the stack failed")
            results.setdefault("e2e", {"error": f"stack: {exc}"})
            results.setdefault("push", {"error": f"stack: {exc}"})
        finally:
            stack.stop()
    results["goals"] = goals.evaluate(results)
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def write(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    md_path.write_text(report.markdown(results))
    return [json_path, md_path, *plots.write_all(results, out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run that proves the harness works (< 1 min)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument(
        "--out", type=Path, help="where to write (default bench/results; --quick: bench/results/quick.tmp)"
    )
    parser.add_argument(
        "--http-load",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator of the end-to-end benchmark (auto: wrk when installed)",
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    plan = QUICK if args.quick else FULL
    out = args.out or (RESULTS / "quick.tmp" if args.quick else RESULTS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    _raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        results = run(plan, sections, Path(workdir), args.http_load)
    written = write(results, out)
    sys.stdout.write(report.text(results))
    sys.stdout.write(
        "\nwrote " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written) + "\n"
    )
    failed = [name for name in sections if "error" in results.get(name, {})]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
