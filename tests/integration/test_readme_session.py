"""The README's sessions, run as a reader runs them: the curl session pasted into bash and into
zsh, twice each against the same stack (so that no step depends on an earlier run's data), each
step's output checked; the Python gRPC session; and the data reset it offers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_executable
from tests.harness import ROOT, Stack

README = ROOT / "README.md"
_STEP = re.compile(r"^# (\d+)\. ", re.MULTILINE)
_MARK = "@@step"

# What each numbered step of the curl session prints (regular expressions, one per line).
EXPECTED = {
    1: [r"paid 2598 succeeded"],
    2: [r"payment_failed card_declined generic_decline"],
    3: [r"requires_action http://\S+/pay/pay_\w+\?client_secret=ord_\w+_secret_[\w-]+"],
    4: [r"HTTP/1\.1 201 Created\r?", r"(?i:idempotent-replayed): true\r?"],
    5: [r"succeeded", r"paid 3"],
    6: [r"304"],
    7: [r"retry: 2000", r"id: 3", r"event: order\.updated", r'data: .*"status":"paid".*', r"\(still open.*\)"],
    8: [r"partially_refunded 500", r"refunded 1299"],
    9: [r"retry: 2000", r"id: 5", r"event: order\.updated", r'data: .*"status":"refunded".*'],
    10: [r"refunded payment_failed paid"],
}


def fenced_block(heading: str, first_line: str = "") -> str:
    """The first ```sh block of that section of the README whose first line starts so."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"\n## {heading}\n") + 1 :]
    section = section[: section.find("\n## ")]
    for block in re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"no sh block starting {first_line!r} under {heading!r}")


def with_markers(session: str) -> str:
    """The session with a line that prints `@@step N` before each numbered step."""
    return _STEP.sub(lambda m: f'echo "{_MARK} {m.group(1)}"\n{m.group(0)}', session)


def outputs_by_step(output: str) -> dict[int, list[str]]:
    steps: dict[int, list[str]] = {}
    current = 0
    for line in output.splitlines():
        if line.startswith(_MARK):
            current = int(line.split()[1])
            steps[current] = []
        elif line.strip() and current:
            steps[current].append(line)
    return steps


def test_the_session_has_the_steps_this_test_knows() -> None:
    """So that a changed README changes this test too."""
    assert [int(n) for n in _STEP.findall(fenced_block("A curl session"))] == sorted(EXPECTED)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_curl_session_runs_again_and_again(stack: Stack, shell: str, tmp_path: Path) -> None:
    executable = require_executable(shell)
    script = tmp_path / "session.sh"
    script.write_text(with_markers(fenced_block("A curl session")))
    for run in (1, 2):
        done = subprocess.run(
            [executable, str(script)],
            env={"PATH": "/usr/bin:/bin", "GATEWAY": stack.url, "SHOP_KEY": stack.keys.secret, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        steps = outputs_by_step(done.stdout)
        assert sorted(steps) == sorted(EXPECTED), done.stdout
        for step, patterns in EXPECTED.items():
            lines = steps[step]
            assert len(lines) == len(patterns), (run, step, lines)
            for pattern, line in zip(patterns, lines, strict=True):
                assert re.fullmatch(pattern, line), (run, step, pattern, line)


def test_the_python_grpc_session(stack: Stack) -> None:
    done = subprocess.run(
        ["bash", "-c", fenced_block("The gRPC APIs directly", first_line=".venv/bin/python")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "ORDER_SERVICE_TARGET": stack.order_target},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert re.fullmatch(r"ord_\w+ ORDER_STATUS_PAID", first)
    assert second == "1299"


def test_reset_data_empties_data_and_nothing_else(tmp_path: Path) -> None:
    """`make reset-data` in a copy of the Makefile's folder: the real ./data stays untouched."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "data").mkdir()
    for name in ("orders.db", "orders.db-wal", "payments.db"):
        (tmp_path / "data" / name).write_text("x")
    (tmp_path / "keep.txt").write_text("x")
    done = subprocess.run(["make", "-s", "reset-data"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "keep.txt").exists()
