"""Figures that a suite records for people to quote: one JSON file per suite under
`test-artifacts/` (`fault-report.json`, `badinput-report.json`), one entry per test, merged so
that a partial run (`pytest -k …`) keeps the entries of the tests it did not run."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness import ROOT

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "test-artifacts"))


def record(report: str, name: str, figures: dict[str, Any]) -> Path:
    """Store `figures` as entry `name` of `test-artifacts/<report>.json`; returns the file."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{report}.json"
    # Two test processes of one checkout (two suites run at once) may record into one report:
    # the read-modify-write holds a lock, and each writes through a temporary file of its own.
    with (ARTIFACTS / f".{report}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            document: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            document = {}
        document[name] = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
        with tempfile.NamedTemporaryFile("w", dir=ARTIFACTS, prefix=f".{report}.", delete=False) as temporary:
            temporary.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
        os.chmod(temporary.name, 0o644)  # as any other file of the folder, not the temporary's 0600
        Path(temporary.name).replace(path)
    # Printed too, so that the figures are in the CI log (`pytest -s` or the captured output).
    print(f"\n[{report}] {name}: {json.dumps(figures, sort_keys=True, default=str)}")
    return path
