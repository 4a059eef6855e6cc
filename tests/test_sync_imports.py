"""What the sync client and the testing server may import: dependencies point one way (sync/ never imports the
commands or the testing server, testing/ nothing of the client), no import cycle in either package, httpx only in
the transport, and a real `santacore sync` that never loads LIEF (it has no file to inspect)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from santacore.testing import SyncServer
from tests.conftest import REPO_ROOT
from tests.sync_client import write_config

PACKAGE = REPO_ROOT / "python" / "santacore"
# The identity modules that load LIEF (and the signature verifiers) when imported.
LIEF_MODULES = {f"santacore.identity.{name}" for name in ("fileinfo", "macho", "codesign", "cms")}
TRANSPORT_MODULES = {f"santacore.sync.{name}" for name in ("transport", "request", "response", "failures", "xsrf")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).glob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, *, load_time_only: bool) -> Iterator[str]:
    """The modules `path` imports (absolute names). `load_time_only`: only what runs when the module is imported —
    not inside functions, not under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.AST] = list(tree.body) if load_time_only else list(ast.walk(tree))
    while nodes:
        node = nodes.pop()
        if load_time_only and isinstance(node, ast.If) and not _is_type_checking(node):
            nodes += [*node.body, *node.orelse]
        elif load_time_only and isinstance(node, ast.Try):
            nodes += [*node.body, *node.orelse, *node.finalbody, *(h for x in node.handlers for h in x.body)]
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def load_time_graph(package: str) -> dict[str, set[str]]:
    names = {module_name(p) for p in modules(package)}
    return {
        module_name(p): {m for m in imports(p, load_time_only=True) if m in names and m != module_name(p)}
        for p in modules(package)
    }


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


# --------------------------------------------------------------------------------------------------
# Static: who imports whom


def test_the_probe_sees_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", ["sync", "testing"])
def test_no_import_cycle(package: str) -> None:
    assert cycle(load_time_graph(package)) is None


def test_the_sync_client_never_imports_commands_or_the_testing_server() -> None:
    for path in modules("sync"):
        wrong = {
            m for m in imports(path, load_time_only=False) if m.startswith(("santacore.commands", "santacore.testing"))
        }
        assert not wrong, f"{module_name(path)} imports {sorted(wrong)}"


def test_the_testing_server_imports_nothing_of_the_client() -> None:
    """Only the standard library, protobuf, santacore.testing itself and the generated schema (santacore.syncv1, the
    one thing both sides share): a client bug cannot hide behind shared code."""
    for path in modules("testing"):
        santacore = {m for m in imports(path, load_time_only=False) if m.split(".")[0] == "santacore"}
        outside = {m for m in santacore if not m.startswith(("santacore.testing", "santacore.syncv1"))}
        assert not outside, f"{module_name(path)} imports {sorted(outside)}"


def test_the_schema_package_imports_nothing_of_santacore() -> None:
    for path in modules("syncv1"):
        santacore = {m for m in imports(path, load_time_only=False) if m.split(".")[0] == "santacore"}
        assert santacore <= {"santacore.syncv1", "santacore.syncv1.santa_sync_v1_pb2"}, module_name(path)


def test_httpx_only_in_the_transport() -> None:
    sync_and_commands = [*modules("sync"), PACKAGE / "commands" / "sync.py", PACKAGE / "commands" / "syncd.py"]
    for path in sync_and_commands:
        if "httpx" in {m.split(".")[0] for m in imports(path, load_time_only=False)}:
            assert module_name(path) in TRANSPORT_MODULES, f"{module_name(path)} imports httpx"


def test_nats_only_in_the_push_client_and_never_at_load_time() -> None:
    """nats-py (the `push` extra) loads only when a preflight configures push: in sync/push/nats_client.py."""
    sync_and_commands = [*modules("sync"), PACKAGE / "commands" / "sync.py", PACKAGE / "commands" / "syncd.py"]
    for path in sync_and_commands:
        assert "nats" not in {m.split(".")[0] for m in imports(path, load_time_only=True)}, module_name(path)
        if "nats" in {m.split(".")[0] for m in imports(path, load_time_only=False)}:
            assert module_name(path) in ("santacore.sync.push.nats_client", "santacore.sync.scheduler")


def test_nothing_on_the_sync_path_imports_lief_backed_modules_at_load_time() -> None:
    sync_and_commands = [*modules("sync"), PACKAGE / "commands" / "sync.py", PACKAGE / "commands" / "syncd.py"]
    for path in sync_and_commands:
        wrong = set(imports(path, load_time_only=True)) & (LIEF_MODULES | {"lief"})
        assert not wrong, f"{module_name(path)} imports {sorted(wrong)} when loaded"


# --------------------------------------------------------------------------------------------------
# Dynamic: a real sync in a fresh interpreter

PROBE = """
import contextlib, io, json, sys, traceback

class WhoLoadsLief:
    chain = None

    def find_spec(self, name, path=None, target=None):
        if name == "lief" and WhoLoadsLief.chain is None:
            frames = traceback.extract_stack()[:-1]
            here = [f for f in frames if "santacore" in f.filename]
            WhoLoadsLief.chain = [f"{f.filename.split('/python/')[-1]}:{f.lineno}" for f in here]
        return None

sys.meta_path.insert(0, WhoLoadsLief())
from santacore.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["sync", "--config", sys.argv[1]])
print(json.dumps({"code": code, "modules": sorted(sys.modules), "lief_chain": WhoLoadsLief.chain}))
"""


def test_a_real_sync_does_not_load_lief(tmp_path: Path) -> None:
    with SyncServer() as server:
        write_config(tmp_path, server)
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(tmp_path / "santacore.toml")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        report = json.loads(done.stdout.splitlines()[-1])
        assert report["code"] == 0, done.stderr
        assert [r.stage for r in server.requests] == ["preflight", "ruledownload", "postflight"]
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert "httpx" in loaded  # the probe sees what the sync did load
    assert "lief" not in loaded, f"lief loaded via {report['lief_chain']}"
    assert "nats" not in loaded  # no push configured: no NATS client
