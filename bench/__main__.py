"""`python -m bench [--quick]`: run the benchmarks of bench/README.md#benchmarks-make-bench, print
one table, write `latest.json`, `latest.md` and PNG plots.

It starts what it needs itself, on free ports with temporary databases: the hop servers
(bench/hop_server.py), the three services on SQLite (tests/harness.Stack) with a plain FastAPI
app and the gateway with a bare route (bench/bare_gateway.py) under two HTTP servers beside
them, two more of the SQLite stack with tracing on (bench/tracing_cost.py), and a PostgreSQL
server with a cluster of 1 and one of 2 replicas of each gRPC service, and one more stack on a
PostgreSQL server that counts the statements and commits of an order (bench/statements.py).
A section that fails is recorded with its error and the run goes on; the exit status is then 1.
The PostgreSQL sections are skipped (not failed) where PostgreSQL's server binaries are missing,
the rate-limit section where redis-server is.
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

from bench import (
    auth,
    codec,
    e2e,
    e2e_postgres,
    goals,
    hop,
    machine,
    pg,
    plots,
    push,
    push_replicas,
    ratelimit,
    report,
    server,
    statements,
    tracing_cost,
    webhooks,
)
from bench.config import FULL, QUICK, Plan
from bench.procs import stop_together
from bench.windows import load_tool
from tests.harness import ROOT, Stack

log = logging.getLogger("bench")

SECTIONS = (
    "codec",
    "ratelimit",
    "hop",
    "e2e",
    "server",
    "push",
    "e2e_postgres",
    "push_replicas",
    "statements",
    "webhooks",
)
_ON_STACK = ("e2e", "server", "push")  # the sections that share the SQLite stack
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
        # 2: e2e ratios as {name, baseline, concurrency, share}; the server and PostgreSQL sections.
        "schema": 2,
        "mode": plan.name,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine.describe(ROOT),
    }
    if "codec" in sections:
        _section(results, "codec", lambda: codec.run(plan.codec_budget_s))
    if "ratelimit" in sections:
        if reason := ratelimit.unavailable():
            results["ratelimit"] = {"skipped": reason}
        else:
            _section(results, "ratelimit", lambda: ratelimit.run(plan.ratelimit_budget_s, plan.runs, workdir / "redis"))
    if "hop" in sections:
        _section(results, "hop", lambda: hop.run(plan, workdir))
    tool = load_tool(http_load)
    if any(name in sections for name in _ON_STACK):
        _on_stack(results, plan, sections, workdir, tool)
    if "e2e_postgres" in sections or "push_replicas" in sections:
        _on_postgres(results, plan, sections, workdir, tool)
    if "statements" in sections:  # a stack of its own: a server that counts its statements
        if reason := statements.unavailable():
            results["statements"] = {"skipped": reason}
        else:
            _section(results, "statements", lambda: statements.run(plan, workdir))
    if "webhooks" in sections:  # a stack of its own: webhooks allowed to loopback
        _section(results, "webhooks", lambda: webhooks.run(plan, workdir))
    results["goals"] = goals.evaluate(results)
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def _on_stack(results: dict[str, Any], plan: Plan, sections: list[str], workdir: Path, tool: str) -> None:
    stack = Stack(workdir / "stack", env=tracing_cost.UNTRACED_ENV, keys=auth.KEYS)
    try:
        stack.start()
        if "e2e" in sections:
            _section(results, "e2e", lambda: _e2e_with_tracing(plan, stack, tool, workdir))
        if "server" in sections:
            _section(results, "server", lambda: server.run(plan, stack, tool, workdir))
        if "push" in sections:
            _section(results, "push", lambda: push.run(plan, stack))
    except Exception as exc:
        log.exception("the stack failed")
        for name in _ON_STACK:
            if name in sections:
                results.setdefault(name, {"error": f"stack: {exc}"})
    finally:
        stop_together([s.proc for s in stack.services.values() if s.proc is not None])


def _e2e_with_tracing(plan: Plan, stack: Stack, tool: str, workdir: Path) -> dict[str, Any]:
    """Benchmark 2, with the rows of two traced stacks in the same alternation of windows."""
    with tracing_cost.traced_stacks(workdir / "tracing") as traced:
        part = e2e.run(plan, stack, tool, workdir, variants=traced.targets)
    part["tracing"] = traced.summary()  # the stacks have stopped: their last batches are counted
    return part


def _on_postgres(results: dict[str, Any], plan: Plan, sections: list[str], workdir: Path, tool: str) -> None:
    wanted = [name for name in ("e2e_postgres", "push_replicas") if name in sections]
    if reason := pg.unavailable():
        for name in wanted:
            results[name] = {"skipped": reason}
        return
    started = time.monotonic()
    try:
        with pg.setup(workdir / "postgres") as setup:
            results.setdefault("section_s", {})["postgres_start"] = round(time.monotonic() - started, 1)
            if "e2e_postgres" in sections:
                _section(results, "e2e_postgres", lambda: e2e_postgres.run(plan, setup, tool))
            if "push_replicas" in sections:
                _section(results, "push_replicas", lambda: push_replicas.run(plan, setup))
    except Exception as exc:
        log.exception("the PostgreSQL set-up failed")
        for name in wanted:
            results.setdefault(name, {"error": f"PostgreSQL set-up: {exc}"})


def write(results: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    md_path.write_text(report.markdown(results))
    return [json_path, md_path, *plots.write_all(results, out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run that proves every section works (about a minute)"
    )
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
    auth.use_keys()
    plan = QUICK if args.quick else FULL
    out = args.out or (RESULTS / "quick.tmp" if args.quick else RESULTS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per priming request otherwise
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
