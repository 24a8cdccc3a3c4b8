"""Generate the Python gRPC stubs (with .pyi) from protos/ into the `mediadl` package, or check drift."""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_ROOT = ROOT / "mediadl"
HEADER = '"""Generated gRPC stubs for mediadl. Never edit: run `make protos`."""\n'


def generate(out: Path) -> None:
    """Run protoc on every .proto and add the __init__.py files protoc does not write."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    # mypy-protobuf's plugin types the *_pb2_grpc stubs, so typed callers need no ignores.
    plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for directory in [out / "mediadl", *(p for p in (out / "mediadl").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").write_text(HEADER)
    (out / "mediadl" / "py.typed").write_text("")


def tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh = tree(out / "mediadl")
        if opts.check:
            committed = tree(PACKAGE_ROOT)
            stale = sorted(
                name
                for name in fresh.keys() | committed.keys()
                if name not in fresh
                or name not in committed
                or not filecmp.cmp(fresh[name], committed[name], shallow=False)
            )
            if stale:
                sys.exit("generated stubs are out of date (run `make protos`): " + ", ".join(stale))
            print(f"stubs in sync ({len(fresh)} files)")
            return
        if PACKAGE_ROOT.exists():
            shutil.rmtree(PACKAGE_ROOT)
        shutil.copytree(out / "mediadl", PACKAGE_ROOT)
        print(f"generated {len(fresh)} files into {PACKAGE_ROOT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
