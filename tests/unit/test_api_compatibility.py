"""buf guards the gRPC API (buf.yaml): protos/ passes `buf lint`, and `buf breaking` against
protos/baseline.binpb, the API as released. The check can fail: a copy of the protos with a
field renumbered, a field or an RPC removed, or a field's type changed is refused, while one
with a field added passes."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import ROOT

BUF = ROOT / ".venv" / "bin" / "buf"
BASELINE = ROOT / "protos" / "baseline.binpb"
ORDER_PROTO = Path("protos/shop/order/v1/order.proto")
PAYMENT_PROTO = Path("protos/shop/payment/v1/payment.proto")


def _buf(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is installed with the dev dependencies (buf-bin): run `make install`"
    return subprocess.run([str(BUF), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def _copy_with(tmp_path: Path, path: Path, change: Callable[[str], str]) -> Path:
    """buf.yaml and protos/ copied to `tmp_path`, with `change` applied to one proto file."""
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    text = (tmp_path / path).read_text()
    changed = change(text)
    assert changed != text, "the change applies to the protos as they are"
    (tmp_path / path).write_text(changed)
    return tmp_path


def _replace(pattern: str, replacement: str) -> Callable[[str], str]:
    return lambda text: re.sub(pattern, replacement, text, count=1, flags=re.MULTILINE)


def test_the_protos_pass_buf_lint() -> None:
    done = _buf("lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_protos_keep_the_released_api() -> None:
    done = _buf("breaking", "--against", BASELINE)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "change", "says"),
    [
        (
            ORDER_PROTO,
            _replace(r"^(\s*string customer_id = )2;", r"\g<1>22;"),
            'Previously present field "2" with name "customer_id"',
        ),
        (ORDER_PROTO, _replace(r"^\s*rpc RefundOrder\(.*\n", ""), 'Previously present RPC "RefundOrder"'),
        (
            PAYMENT_PROTO,
            _replace(r"^(\s*)int64 amount = (\d+);", r"\1string amount = \2;"),
            'changed type from "int64"',
        ),
        (
            ORDER_PROTO,
            _replace(r"^\s*rpc WatchOrder\((\w+)\) returns \(stream (\w+)\);", r"  rpc WatchOrder(\1) returns (\2);"),
            "streaming",
        ),
    ],
    ids=["field renumbered", "rpc removed", "field type changed", "stream made unary"],
)
def test_buf_breaking_refuses_a_change_that_breaks_clients(
    tmp_path: Path, path: Path, change: Callable[[str], str], says: str
) -> None:
    changed = _copy_with(tmp_path, path, change)
    done = _buf("breaking", "--against", BASELINE, cwd=changed)
    assert done.returncode != 0
    assert says in done.stdout + done.stderr


def test_buf_breaking_lets_a_new_field_through(tmp_path: Path) -> None:
    def add_field(text: str) -> str:
        message = re.search(r"^message GetOrderRequest \{\n(.*?)^\}", text, flags=re.MULTILINE | re.DOTALL)
        assert message is not None
        numbers = [int(n) for n in re.findall(r"= (\d+);", message.group(1))]
        field = f"  string note_for_test = {max(numbers) + 1};\n"
        return text[: message.end() - 1] + field + text[message.end() - 1 :]

    changed = _copy_with(tmp_path, ORDER_PROTO, add_field)
    done = _buf("breaking", "--against", BASELINE, cwd=changed)
    assert done.returncode == 0, done.stdout + done.stderr
