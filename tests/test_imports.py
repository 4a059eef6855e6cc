"""Pay for what you use: which heavy libraries an entry point loads. Each case runs in a fresh
interpreter and reports `sys.modules`, so what one test imported cannot hide what another loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO_ROOT / "examples" / "terminal-notifier.app"

# The libraries that cost start-up time and memory, and the only code allowed to load each.
# google: protobuf
HEAVY = (
    "lief",
    "cryptography",
    "asn1crypto",
    "httpx",
    "rich",
    "google",
    "nats",
    "nkeys",
    "nacl",
    "dask",
    "distributed",
    "pyarrow",
)


def loaded_after(script: str) -> set[str]:
    """The heavy top-level packages in sys.modules after `script` runs in a fresh interpreter."""
    probe = f"{script}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1])) & set(HEAVY)


def test_the_probe_sees_a_heavy_import() -> None:
    # The probe itself must be able to fail: examining a signed file does load LIEF and the verifiers.
    binary = EXAMPLE_APP / "Contents" / "MacOS" / "terminal-notifier"
    assert loaded_after(f"import santacore; santacore.file_info({str(binary)!r})") >= {
        "lief",
        "cryptography",
        "asn1crypto",
    }


def test_import_santacore_loads_the_engine_only() -> None:
    assert loaded_after("import santacore; santacore._core.hash_tree") == set()


def test_the_sync_schema_loads_protobuf_only_when_used() -> None:
    # The package is cheap to import; its generated module is what loads protobuf.
    assert loaded_after("import santacore.syncv1, santacore.sync.responses, santacore.testing") == set()
    assert loaded_after("from santacore.syncv1 import santa_sync_v1_pb2") == {"google"}


def test_start_up_path_does_not_import_typing() -> None:
    # typing costs several milliseconds of every start; annotations only need it under TYPE_CHECKING.
    script = "import santacore, santacore.cli, sys\nsantacore.cli.build_parser()\nprint('typing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


@pytest.mark.parametrize(
    "call",
    [
        f"santacore.hash_tree({str(EXAMPLE_APP)!r})",
        f"santacore.hash_bundle({str(EXAMPLE_APP)!r})",
        f"santacore.bundle_at({str(EXAMPLE_APP)!r}).info",
        f"santacore.sniff_macho({str(EXAMPLE_APP / 'Contents' / 'MacOS' / 'terminal-notifier')!r})",
    ],
)
def test_hashing_loads_nothing_heavy(call: str) -> None:
    assert loaded_after(f"import santacore\nresult = {call}\nassert result") == set()


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--help"], set()),
        (["bundleinfo", str(EXAMPLE_APP)], set()),
        (["bundleinfo", "--json", str(EXAMPLE_APP)], set()),
        (["config", "show"], set()),
        (["doctor", "--help"], set()),
        (["catalog", "export", "--help"], set()),
        (["catalog", "show", "--help"], set()),
        (["catalog", "scan", "--help"], set()),
    ],
)
def test_cli_commands_load_only_what_they_use(argv: list[str], allowed: set[str]) -> None:
    script = (
        "import contextlib, io, os\n"
        "os.environ.pop('SANTACORE_CONFIG', None)\n"
        "from santacore.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "assert code == 0, code\n"
    )
    assert loaded_after(script) <= allowed


def test_bundleinfo_output_is_unchanged_by_lazy_loading() -> None:
    # The lazy CLI still prints the bundle's hash (the example's Info.plist identifies it).
    out = subprocess.run(
        [sys.executable, "-m", "santacore", "bundleinfo", "--json", str(EXAMPLE_APP)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    document = json.loads(out)
    assert document["bundle_id"] == "nl.superalloy.oss.terminal-notifier"
    assert len(document["bundle_hash"]) == 64
