"""What machine the numbers came from: CPU model, cores, memory, Python, libraries."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf.internal import api_implementation

_MEASURED = ("common", "gateway", "order_service", "payment_service", "protos", "bench", "pyproject.toml")
_LIBRARIES = ("grpcio", "protobuf", "fastapi", "uvicorn", "httpx", "aiohttp", "orjson", "uvloop", "httptools")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def describe(root: Path) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "protobuf_backend": api_implementation.Type(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": _git(root, "rev-parse", "--short", "HEAD") or None,
        # Uncommitted changes to the code that is measured (tests and docs do not count).
        "git_dirty": bool(_git(root, "status", "--porcelain", "--", *_MEASURED)),
    }
