"""The README's webhook receiver and its curl session, run as a reader runs them: the receiver
from the README started by the session itself, against a stack that allows loopback receivers
(as `make run` does); what each step prints is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_executable
from tests.harness import ROOT, Stack, free_port

SECTION = "Events and webhooks — the fifth way"


def block(language: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"\n## {SECTION}\n") + 1 :]
    section = section[: section.find("\n## ")]
    found = re.search(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found is not None, f"no {language} block in the README's {SECTION!r}"
    return found.group(1)


def test_the_receiver_and_the_session_of_the_readme(webhook_stack: Stack, tmp_path: Path) -> None:
    bash = require_executable("bash")
    require_executable("curl")
    port = free_port()
    (tmp_path / "receiver.py").write_text(block("python"))
    session = block("sh").replace("127.0.0.1:4242", f"127.0.0.1:{port}")
    session = session.replace("python3 receiver.py &", f"PORT={port} python3 receiver.py &")
    # Until the receiver listens (this stack retries for 0.4 s only; a reader's, for hours).
    listening = f"until (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.05; done\n"
    session = session.replace("python3 receiver.py &\n", "python3 receiver.py &\n" + listening)
    env = {
        **os.environ,
        "GATEWAY": webhook_stack.url,
        "SHOP_KEY": webhook_stack.keys.secret,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [bash, "-c", session + "\nwait\n"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout
    assert done.returncode == 0, done.stderr + output
    # The receiver printed both events of the order, verified (pending_payment, then paid).
    printed = re.findall(r"^(evt_\w+) (ord_\w+) (\w+)$", output, re.MULTILINE)
    assert [status for _, _, status in printed][:2] == ["pending_payment", "paid"], output
    assert '"deliveries":[{"event_id":"' in output
    assert '"status":"succeeded"' in output
    assert '"next_cursor":"' in output
    assert "retry: 2000" in output
    assert output.count('"secret":"whsec_') == 1  # the rotation's answer
    assert '"status":"deleted"' in output
