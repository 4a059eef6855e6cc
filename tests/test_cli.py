"""`santacore bundleinfo`: santactl's text, the JSON document, exit codes, the console script."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import blake3
import pytest

from santacore.cli import main
from tests.conftest import REPO_ROOT

EXAMPLE_APP = REPO_ROOT / "examples" / "terminal-notifier.app"
EXAMPLE_IN_CORPUS = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"


def _bundle(manifest: dict[str, Any], root: str) -> dict[str, Any]:
    return next(b for b in manifest["bundles"] if b["bundle_root"] == root)


def test_text_output_is_santactls(corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    expected = _bundle(manifest, EXAMPLE_IN_CORPUS)
    assert main(["bundleinfo", str(EXAMPLE_APP)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[0].startswith("Hashing time: ") and lines[0].endswith(" ms")
    assert int(lines[0].removeprefix("Hashing time: ").removesuffix(" ms")) >= 0
    assert lines[1] == f"{expected['binary_count']} events found"
    assert lines[2] == f"BundleHash: {expected['bundle_hash']}"
    (rel, sha), *_ = expected["binaries"].items()
    assert lines[3] == f"BundleID: {expected['bundle_id']} "
    assert lines[4] == f"\tSHA-256: {sha} "
    assert lines[5] == f"\tPath: {EXAMPLE_APP / rel}"
    assert lines[6:] == [""]


def test_shipped_example_is_the_corpus_bundle(corpus: Path) -> None:
    for path in EXAMPLE_APP.rglob("*"):
        if path.is_file():
            twin = corpus / EXAMPLE_IN_CORPUS / path.relative_to(EXAMPLE_APP)
            assert path.read_bytes() == twin.read_bytes(), path


def test_json_document(corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    b = _bundle(manifest, "registry/pypi/mujoco/3.17.0/mujoco/MuJoCo_(mjpython).app")
    root = corpus / b["bundle_root"]
    assert main(["bundleinfo", "--json", "--blake3", "--threads", "1", str(root / b["main_executable"])]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bundle_root"] == str(root)
    assert doc["bundle_hash"] == b["bundle_hash"]
    assert doc["binary_count"] == b["binary_count"]
    assert doc["bundle_id"] == b["bundle_id"]
    assert doc["bundle_name"] == b["bundle_name"]
    assert doc["bundle_version"] == b["bundle_version"]
    assert doc["bundle_version_string"] == b["bundle_version_string"]
    assert doc["executable_rel_path"] == b["main_executable"]
    assert doc["hash_millis"] > 0
    assert {os.path.relpath(x["path"], root): x["sha256"] for x in doc["binaries"]} == b["binaries"]
    for binary in doc["binaries"]:
        data = Path(binary["path"]).read_bytes()
        assert binary["size"] == len(data)
        assert binary["blake3"] == blake3.blake3(data).hexdigest()
        files = {f["path"]: f for f in manifest["files"]}
        assert binary["architectures"] == files[os.path.relpath(binary["path"], corpus)]["architectures"]
    assert doc["skipped"] == []
    assert doc["stats"]["regular_files"] == b["tree"]["regular_files"]


def test_no_executables_prints_null_hash(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    framework = corpus / "registry/pypi/PySide6-Essentials/6.11.3/PySide6/Qt/lib/QtConcurrent.framework"
    assert main(["bundleinfo", str(framework)]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[1:] == ["0 events found", "BundleHash: (null)", ""]


def test_not_a_bundle_exits_2(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundleinfo", str(corpus / "santa/google/common/testdata/DirectoryBundle")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "Not a bundle\n"


def test_unreadable_path_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundleinfo", str(tmp_path / "missing.app")]) == 1
    err = capsys.readouterr().err
    assert "No such file or directory" in err and "missing.app" in err


def test_bad_threads_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bundleinfo", "--threads", "0", str(EXAMPLE_APP)])
    assert exit_info.value.code == 2
    assert "must be between 1 and 256" in capsys.readouterr().err


def test_duplicate_binaries_print_one_event_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "Dup.app"
    subprocess.run(["cp", "-a", str(EXAMPLE_APP), str(app)], check=True)
    exe = app / "Contents/MacOS/terminal-notifier"
    (app / "Contents/Helpers").mkdir()
    (app / "Contents/Helpers/copy").write_bytes(exe.read_bytes())
    assert main(["bundleinfo", str(app)]) == 0
    out = capsys.readouterr().out
    assert "1 events found" in out
    assert out.count("BundleID: ") == 1
    assert main(["bundleinfo", "--json", str(app)]) == 0
    assert len(json.loads(capsys.readouterr().out)["binaries"]) == 2


def test_console_script_and_module_run() -> None:
    exe = Path(sys.executable).parent / "santacore"
    for cmd in ([str(exe)], [sys.executable, "-m", "santacore"]):
        done = subprocess.run([*cmd, "bundleinfo", str(EXAMPLE_APP)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "1 events found\nBundleHash: " in done.stdout


def test_progress_bar_on_a_terminal_keeps_stdout_clean() -> None:
    """With stderr on a terminal a progress bar is drawn there; stdout stays exactly santactl's."""
    plain = subprocess.run(
        [sys.executable, "-m", "santacore", "bundleinfo", str(EXAMPLE_APP)], capture_output=True, text=True
    )
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "santacore", "bundleinfo", str(EXAMPLE_APP)],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    drop_time = slice(1, None)
    assert done.stdout.split("\n")[drop_time] == plain.stdout.split("\n")[drop_time]


# --- sync and syncd: santactl's exit codes without a server or a machine ID ---------------------------------


@pytest.mark.parametrize("command", [["sync"], ["syncd", "--once", "--first-sync-delay", "0"]])
def test_sync_without_sync_base_url_exits_6(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "santacore.toml"
    config.write_text(f'MachineID = "M-1"\nStateDirectory = "{tmp_path / "state"}"\n')
    assert main([*command, "--config", str(config)]) == 6  # santactl's "missing SyncBaseURL"
    assert capsys.readouterr().err == "Missing SyncBaseURL. Exiting.\n"


@pytest.mark.parametrize("command", [["sync"], ["syncd", "--once", "--first-sync-delay", "0"]])
def test_sync_without_machine_id_exits_7(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("santacore.sync.host.MACHINE_ID_FILE", str(tmp_path / "no-machine-id"))
    config = tmp_path / "santacore.toml"
    config.write_text(f'SyncBaseURL = "http://127.0.0.1:9/"\nStateDirectory = "{tmp_path / "state"}"\n')
    assert main([*command, "--config", str(config)]) == 7  # santactl's "missing MachineID"
    assert capsys.readouterr().err == "Missing MachineID. Exiting.\n"


def test_sync_exit_codes_in_the_help() -> None:
    done = subprocess.run([sys.executable, "-m", "santacore", "sync", "--help"], capture_output=True, text=True)
    assert "6 no SyncBaseURL, 7 no MachineID" in " ".join(done.stdout.split())


# --- usage errors: named, with the command's own usage, exit 2 ----------------------------------------


def _santacore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=60)


def test_unknown_top_level_option_is_named() -> None:
    done = _santacore("--bogus")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: santacore [-h]")
    assert done.stderr.endswith("santacore: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        (("check", "--bogus", "x"), "santacore check", "unrecognized arguments: --bogus"),
        (("config", "show", "--bogus"), "santacore config show", "unrecognized arguments: --bogus"),
        (("fileinfo", "x", "--bogus"), "santacore fileinfo", "unrecognized arguments: --bogus"),
        (("check", "--upload", "x"), "santacore check", "--upload uploads the recorded event and needs --record"),
        (("bundleinfo", "--blake3", str(EXAMPLE_APP)), "santacore bundleinfo", "--blake3 needs --json"),
        (("eventupload", "--json", "x"), "santacore eventupload", "--json prints the upload body and needs --dry-run"),
        (("rule", "--clean", "--list"), "santacore rule", "--clean and --clean-all go with --import FILE"),
        (("rule", "--check", "--json", "--identifier", "x"), "santacore rule", "--json goes with --list"),
        (("fileinfo", "--json", "--key", "Rule", "x"), "santacore fileinfo", "--key chooses lines of the text output"),
    ],
)
def test_usage_errors_show_the_commands_usage(args: tuple[str, ...], usage: str, message: str) -> None:
    done = _santacore(*args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"usage: {usage} ")
    assert f"{usage}: error: {message}" in done.stderr


@pytest.mark.parametrize("command", ["bundleinfo", "fileinfo", "rule", "check", "eventupload", "sync"])
def test_every_command_documents_its_exit_status(command: str) -> None:
    done = _santacore(command, "--help")
    assert done.returncode == 0
    assert "Exit status" in done.stdout or "Exit codes" in done.stdout


@pytest.mark.parametrize(
    "command",
    [("bundleinfo",), ("fileinfo",), ("rule",), ("check",), ("eventupload",), ("config", "show"), ("config", "import")],
)
def test_readme_usage_lists_every_option(command: tuple[str, ...]) -> None:
    """The usage blocks of the README name every option the command has."""
    import re

    from santacore.cli import _command_parser, build_parser

    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", (REPO_ROOT / "README.md").read_text(encoding="utf-8"), re.S))
    usage: list[str] = []  # each `santacore COMMAND` line with its indented continuation lines
    within = False
    for line in blocks.split("\n"):
        if line.startswith("santacore "):
            within = line.startswith("santacore " + " ".join(command) + " ")
        elif not line.startswith(" "):
            within = False
        if within:
            usage.append(line)
    options = {
        option
        for action in _command_parser(build_parser(), command)._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing = sorted(o for o in options if not any(o in line for line in usage))
    assert not missing, f"README usage of santacore {' '.join(command)} lacks {missing}"


def test_symlink_loop_is_named_not_reported_missing(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    done = _santacore("bundleinfo", str(tmp_path / "a"))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"santacore bundleinfo: {tmp_path / 'a'}: Too many levels of symbolic links\n"


def test_state_directory_that_cannot_be_made_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    state = tmp_path / "file" / "state"
    config = tmp_path / "santacore.toml"
    config.write_text(f'StateDirectory = "{state}"\n', encoding="utf-8")
    for args in (("rule", "--list"), ("check", str(EXAMPLE_APP)), ("config", "show")):
        done = _santacore(*args, "--config", str(config))
        assert (done.returncode, done.stdout) == (1, ""), args
        assert f"StateDirectory {state} cannot be used: {state}" in done.stderr, args
        assert "Not a directory" in done.stderr, args


class _FakeProgress:
    """Counters a test moves by hand, in place of the core's Progress."""

    def __init__(self) -> None:
        self.files_examined = self.binaries_found = self.bytes_found = self.bytes_hashed = 0
        self.walk_finished = self.finished = False


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_spinner_then_a_bar_of_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """While walking: a spinner and counters; once the executables are known: bytes of their total."""
    from santacore.commands import progress as module

    terminal = _Terminal()
    monkeypatch.setattr(module, "Progress", _FakeProgress)
    monkeypatch.setattr(sys, "stderr", terminal)
    seen: list[str] = []

    def work(p: Any) -> str:
        p.files_examined, p.binaries_found, p.bytes_hashed = 120, 3, 1_000_000
        time.sleep(0.4)
        seen.append(terminal.getvalue())
        p.walk_finished, p.bytes_found, p.bytes_hashed = True, 10_000_000, 5_000_000
        time.sleep(0.4)
        return "done"

    assert module.with_progress(work) == "done"
    walking, drawn = seen[0], terminal.getvalue()
    assert "120 files, 3 executables (walking)" in walking and "/10.0" not in walking
    assert "120 files, 3 executables, hashing" in drawn and "5.0/10.0" in drawn
