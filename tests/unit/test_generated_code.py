"""The generated `shop` package must be exactly what protos/ gives today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.harness import ROOT


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)  # type: ignore[attr-defined]
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert fresh, "the generator produced nothing"
    on_disk = {
        p.relative_to(ROOT): p.read_bytes()
        for p in (ROOT / "shop").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    stale = sorted(str(path) for path in fresh if on_disk.get(path) != fresh[path])
    extra = sorted(str(path) for path in set(on_disk) - set(fresh))
    assert not stale, f"stale generated files, run `make proto`: {stale}"
    assert not extra, f"generated files with no proto behind them, run `make clean proto`: {extra}"
