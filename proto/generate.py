"""Regenerate python/santacore/syncv1/ from proto/santa_sync_v1.proto with grpcio-tools' protoc.

    .venv/bin/python proto/generate.py            # rewrite the checked-in module
    .venv/bin/python proto/generate.py --out DIR  # write elsewhere (tests/test_proto_schema.py diffs it)

The generated module is checked in so that building and installing santacore needs only the `protobuf` runtime
(maturin builds the wheel; no protoc at build time); the test keeps it equal to what this script produces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "santa_sync_v1.proto"
DEFAULT_OUT = HERE.parent / "python" / "santacore" / "syncv1"


def generate(out: Path) -> list[Path]:
    """Write santa_sync_v1_pb2.py into `out`; the paths written. No .pyi: protoc's stub would declare the enum
    alias `None` (FileAccessAction, spec §3.1), which is not valid Python; the checked-in santa_sync_v1_pb2.pyi is
    written by hand and types the module as Any."""
    from grpc_tools import protoc  # the dev extra's grpcio-tools

    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}", str(HERE / PROTO)])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    return [out / "santa_sync_v1_pb2.py"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
