"""The README's webhook receiver and its curl session, run as a reader runs them: the receiver
from the README started by the session itself, against a stack that allows loopback receivers
(as `make run` does); what each step prints is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WEBHOOK_ENV, require_executable
from tests.harness import ROOT, Stack, free_port

SECTION = "Events and webhooks — the fifth way"


def block(language: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"\n## {SECTION}\n") + 1 :]
    section = section[: section.find("\n## ")]
    found = re.search(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found is not None, f"no {language} block in the README's {SECTION!r}"
    return found.group(1)


@pytest.fixture(scope="module")
def readme_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """As `make run` sends webhooks, but for the retries' pace: a reader's receiver answers within
    the default 10 s, however busy the machine (the suites' shared stack gives up after 1 s)."""
    env = WEBHOOK_ENV | {"WEBHOOK_TIMEOUT_S": "10", "WEBHOOK_RETRY_SCHEDULE_S": "0.2,0.5,1,2,5"}
    with Stack(tmp_path_factory.mktemp("readme"), env=env) as running:
        yield running


def test_the_receiver_and_the_session_of_the_readme(readme_stack: Stack, tmp_path: Path) -> None:
    bash = require_executable("bash")
    require_executable("curl")
    port = free_port()
    (tmp_path / "receiver.py").write_text(block("python"))
    session = block("sh").replace("127.0.0.1:4242", f"127.0.0.1:{port}")
    session = session.replace("python3 receiver.py &", f"PORT={port} python3 receiver.py &")
    # Until the receiver listens (this stack retries for 0.4 s only; a reader's, for hours).
    listening = f"until (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.05; done\n"
    session = session.replace("python3 receiver.py &\n", "python3 receiver.py &\n" + listening)
    # Until both deliveries have succeeded (a reader's live stream takes 3 s, which a busy
    # machine may not give them), before the endpoint is deleted.
    delivered = (
        'until [ "$(curl -s -u "$SHOP_KEY:" "$GATEWAY/v1/webhook_endpoints/$ENDPOINT_ID/deliveries"'
        ' | grep -o \'"status":"succeeded"\' | wc -l)" -ge 2 ]; do sleep 0.1; done\n'
    )
    stream = next(line for line in session.splitlines() if "/v1/events/stream" in line) + "\n"
    session = session.replace(stream, stream + delivered)
    env = {
        **os.environ,
        "GATEWAY": readme_stack.url,
        "SHOP_KEY": readme_stack.keys.secret,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [bash, "-c", session + "\nwait\n"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout
    assert done.returncode == 0, done.stderr + output
    # The receiver printed both events of the order, verified (pending_payment, then paid) — at
    # least once each: an attempt whose answer was late is sent again.
    printed = re.findall(r"^(evt_\w+) (ord_\w+) (\w+)$", output, re.MULTILINE)
    first_arrivals = list(dict.fromkeys(printed))
    assert [status for _, _, status in first_arrivals] == ["pending_payment", "paid"], output
    assert '"deliveries":[{"event_id":"' in output
    assert '"status":"succeeded"' in output
    assert '"next_cursor":"' in output
    assert "retry: 2000" in output
    assert output.count('"secret":"whsec_') == 1  # the rotation's answer
    assert '"status":"deleted"' in output
