"""`make run`: start the payment service, the order service and the gateway as three processes
(the same `python -m …` commands as anywhere else), wait until the gateway is ready, print its
URL, and stop all three on Ctrl-C or when one of them dies.

The gateway needs an API key (CONTRACT §11). Unless GATEWAY_API_KEYS is given, a development key
is made once into data/dev-api-key (mode 0600, kept across runs, for the account `acct_dev`) and
printed in the banner; the demo page's routes act for `acct_dev` too (GATEWAY_DEMO_ACCOUNT), so
the orders made on the page show up in `curl -u "$SHOP_KEY:" localhost:8000/v1/orders`."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SERVICES = ("payment_service", "order_service", "gateway")
DEV_ACCOUNT = "acct_dev"
DEV_KEY_FILE = "data/dev-api-key"


def _dev_key() -> str:
    """The development key of data/dev-api-key, made the first time."""
    path = DEV_KEY_FILE
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"sk_test_{secrets.token_urlsafe(24).replace('-', '0')}\n")
    with open(path) as key_file:
        return key_file.read().strip()


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
    env = {"GATEWAY_PUBLIC_URL": f"http://localhost:{port}", "GATEWAY_DEMO_ACCOUNT": DEV_ACCOUNT, **os.environ}
    dev_key = None
    if "GATEWAY_API_KEYS" not in env:
        dev_key = _dev_key()
        env["GATEWAY_API_KEYS"] = f"{DEV_ACCOUNT}:{dev_key}"
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
                print(f"\n  gateway ready: {env['GATEWAY_PUBLIC_URL']}  (demo page /, API docs /docs)", flush=True)
                if dev_key is not None:
                    print(f"  development API key ({DEV_KEY_FILE}, account {DEV_ACCOUNT}):", flush=True)
                    print(f"    export SHOP_KEY={dev_key}", flush=True)
                    print(f'    curl -u "$SHOP_KEY:" {local}/v1/orders', flush=True)
                print(flush=True)
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
