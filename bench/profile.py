"""`python -m bench.profile hop|e2e`: where the time goes under the benchmark's load.

Samples the server processes with py-spy while the load runs, then prints per process the
functions most often on top of the stack (self) and on it at all (inclusive), plus — for the
services — how long each RPC and route took by their own log lines. This is how the findings in
bench/README.md were made; run it on a quiet machine to see the same on yours.

  hop      the gRPC hop (PaymentService.Charge, 32 clients): hop server and load client
  e2e      POST /v1/orders (32 clients, wrk or the Python generator): gateway, order, payment
  postgres the same on PostgreSQL, one replica of each service (bench/pg.py's `single`)
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import auth, pg, windows
from bench.procs import Server
from bench.stats import percentile
from tests.harness import ROOT, Service, Stack, free_port

_IDLE = ("EpollSelector.select", "_connection_worker_thread (aiosqlite/core.py:59)", "Condition.wait")


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (it is in the dev extra: make install)")
    return found


def _record(pids: dict[str, int], seconds: float, out: Path) -> dict[str, subprocess.Popen[bytes]]:
    return {
        name: subprocess.Popen(
            [
                _py_spy(),
                "record",
                "-d",
                str(int(seconds)),
                "-r",
                "200",
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                str(out / f"{name}.folded"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    }


def summarize(folded: Path, top: int = 15) -> str:
    """Self and inclusive shares of the sampled stacks (py-spy's folded format)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for name in {frame.split(":")[0] for frame in frames}:
            inclusive[name] += samples
    if not total:
        return "  (no samples)"
    idle = sum(n for frame, n in own.items() if frame.startswith(_IDLE))
    lines = [f"  {total} samples; waiting (epoll, queue, condition): {100 * idle / total:.0f}%", "  self:"]
    lines += [f"    {100 * n / total:5.1f}%  {frame[:140]}" for frame, n in own.most_common(top)]
    lines.append("  inclusive (application and library frames):")
    lines += [
        f"    {100 * n / total:5.1f}%  {frame[:140]})"
        for frame, n in inclusive.most_common(top * 4)
        if not frame.startswith(("<module>", "_run_", "run (", "Runner.", "BaseEventLoop.run", "main ("))
    ][:top]
    return "\n".join(lines)


def _durations(log_text: str) -> list[str]:
    by_name: dict[str, list[float]] = collections.defaultdict(list)
    for line in log_text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "duration_ms" in doc:
            by_name[str(doc.get("rpc") or doc.get("route"))].append(float(doc["duration_ms"]))
    out = []
    for name, values in sorted(by_name.items()):
        p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
        out.append(f"    {name}: n={len(values)} p50={p50:.1f} ms p90={p90:.1f} ms p99={p99:.1f} ms")
    return out


def profile_hop(seconds: float, out: Path) -> str:
    port = free_port()
    server = Server("bench.hop_server", ["grpc", str(port)], out / "hop_server.log")
    try:
        server.wait_grpc(f"127.0.0.1:{port}")
        client = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.hop_client",
                "grpc",
                f"127.0.0.1:{port}",
                "--concurrency=32",
                "--warmup=1",
                f"--duration={seconds + 2}",
                "--runs=1",
                f"--server-pid={server.pid}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        for recorder in _record({"hop_server": server.pid, "hop_client": client.pid}, seconds, out).values():
            recorder.wait()
        result, _ = client.communicate(timeout=60)
    finally:
        server.stop()
    parts = [f"gRPC hop, Charge, 32 clients: {result.strip()}"]
    parts += [f"\n{name}:\n{summarize(out / f'{name}.folded')}" for name in ("hop_server", "hop_client")]
    return "\n".join(parts)


def profile_e2e(seconds: float, out: Path, tool: str) -> str:
    stack = Stack(out / "stack", keys=auth.KEYS)
    auth.use_keys()
    stack.start()
    try:
        pids = {name: s.proc.pid for name, s in stack.services.items() if s.proc is not None}
        return _profile_orders(stack.url, pids, list(stack.services.values()), seconds, out, tool)
    finally:
        stack.stop()


def profile_postgres(seconds: float, out: Path, tool: str) -> str:
    auth.use_keys()
    with pg.setup(out) as setup:
        services = setup.single.services
        pids = {name: s.proc.pid for name, s in services.items() if s.proc is not None}
        return _profile_orders(setup.single.url, pids, list(services.values()), seconds, out, tool)


def _profile_orders(
    base: str, pids: dict[str, int], services: list[Service], seconds: float, out: Path, tool: str
) -> str:
    url = base + "/v1/orders"
    windows.window(tool, url, 32, 2)  # warm-up
    for service in services:
        service.log_path.write_text("")
    recorders = _record(pids, seconds, out)
    measured = windows.window(tool, url, 32, seconds + 1)
    for recorder in recorders.values():
        recorder.wait()
    parts = [f"POST /v1/orders, 32 clients ({tool}): {measured.to_json()}", "\ndurations from the services' logs:"]
    for service in services:
        parts += _durations(service.log())
    parts += [f"\n{name}:\n{summarize(out / f'{name}.folded')}" for name in pids]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["hop", "e2e", "postgres"])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--out", type=Path, help="keep the folded stacks here (flamegraph.pl, speedscope)")
    args = parser.parse_args()
    tool = windows.load_tool("auto")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if args.target == "hop":
            text = profile_hop(args.seconds, out)
        elif args.target == "e2e":
            text = profile_e2e(args.seconds, out, tool)
        else:
            text = profile_postgres(args.seconds, out, tool)
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
