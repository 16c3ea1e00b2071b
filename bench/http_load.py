"""`python -m bench.http_load URL …`: a closed-loop HTTP/1.1 load from its own process, for
machines without wrk. N workers on one aiohttp session with N keep-alive connections; after a
warm-up, back-to-back measured windows; the JSON result on stdout has one entry per window."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import orjson

from bench import auth
from bench.stats import Run


async def measure(url: str, body: bytes, concurrency: int, warmup_s: float, duration_s: float, runs: int) -> list[Run]:
    headers = {"Content-Type": "application/json", **auth.headers()}
    connector = aiohttp.TCPConnector(limit=concurrency)
    window: list[float] = []
    errors = 0
    stop = False
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def worker() -> None:
            nonlocal errors
            while not stop:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok = 200 <= response.status < 400
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    window.append(time.perf_counter() - started)
                else:
                    errors += 1

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        results = []
        try:
            await asyncio.sleep(warmup_s)
            for _ in range(runs):
                window, errors = [], 0
                started = time.perf_counter()
                await asyncio.sleep(duration_s)
                results.append(Run.from_latencies(window, time.perf_counter() - started, errors))
        finally:
            stop = True
            await asyncio.wait(workers, timeout=15)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load")
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="the JSON body to POST")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = asyncio.run(measure(args.url, args.body.encode(), args.concurrency, args.warmup, args.duration, args.runs))
    sys.stdout.write(orjson.dumps([run.to_json() for run in runs]).decode() + "\n")


if __name__ == "__main__":
    main()
