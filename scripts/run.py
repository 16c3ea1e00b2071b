"""`make run`: start the payment service, the order service and the gateway as three processes
(the same `python -m …` commands as anywhere else), wait until the gateway is ready, print its
URL, and stop all three on Ctrl-C or when one of them dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SERVICES = ("payment_service", "order_service", "gateway")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _ports_in_use(env: dict[str, str]) -> list[str]:
    """Say which of the three listening addresses another program already holds."""
    busy = []
    for prefix, port in (("GATEWAY", "8000"), ("ORDER_SERVICE", "50051"), ("PAYMENT_SERVICE", "50052")):
        host, port = env.get(f"{prefix}_HOST", "127.0.0.1"), env.get(f"{prefix}_PORT", port)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, int(port)))
            except OSError:
                busy.append(f"{host}:{port} ({prefix}_PORT)")
    return busy


def main() -> int:
    host = os.environ.get("GATEWAY_HOST", "127.0.0.1")
    port = os.environ.get("GATEWAY_PORT", "8000")
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    env = {"GATEWAY_PUBLIC_URL": f"http://localhost:{port}", **os.environ}
    busy = _ports_in_use(env)
    if busy:
        print(f"already in use: {', '.join(busy)}; stop what holds it or choose another port", file=sys.stderr)
        return 1
    procs = [subprocess.Popen([sys.executable, "-m", name], env=env) for name in SERVICES]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    announced = False
    try:
        while not stopping:
            if any(p.poll() is not None for p in procs):
                print("a service stopped; stopping the others", file=sys.stderr)
                break
            if not announced and _ready(local):
                print(f"\n  gateway ready: {env['GATEWAY_PUBLIC_URL']}  (demo page /, API docs /docs)\n", flush=True)
                announced = True
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
