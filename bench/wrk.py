"""HTTP load with wrk (C, one thread, a Lua script for the POST), when it is installed.

wrk keeps `concurrency` connections busy in a closed loop, like bench/http_load.py, at a small
fraction of the CPU: on a 2-core machine the load generator competes with the servers, so the
lighter it is, the truer the numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import auth
from bench.stats import Run

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%s
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d,' ..
    ' "p50_us": %%d, "p90_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def available() -> str | None:
    return shutil.which("wrk")


def run(url: str, body: str, concurrency: int, seconds: float) -> Run:
    """One wrk window of `seconds` (whole seconds; wrk's granularity) at `concurrency`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        extra = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in auth.headers().items())
        script.write(_SCRIPT % (extra, body))
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout=10s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    errors = stats["status_errors"] + stats["socket_errors"]
    good = stats["requests"] - stats["status_errors"]
    return Run(
        rps=good / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p90_ms=stats["p90_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        requests=stats["requests"],
        errors=errors,
    )
