"""Compile protos/ into the `shop` package (messages, gRPC stubs and .pyi type stubs).

    python scripts/gen_protos.py [OUT_DIR]      # default: the repository root

The output is never edited by hand and never committed; `make proto` (run by `make run`,
`make test` and the image build) regenerates it, and tests/unit/test_generated_code.py fails
when what is on disk differs from what protos/ gives.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # protoc finds the mypy-protobuf plugins on PATH; they live beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(PROTO_DIR)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages (not namespace packages) so that setuptools, mypy and the image see them.
    for proto in proto_files():
        package = out_dir / proto.relative_to(PROTO_DIR).parent
        while package != out_dir:
            (package / "__init__.py").touch()
            package = package.parent


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
