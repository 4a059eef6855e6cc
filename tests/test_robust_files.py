"""Files that are not what they should be: a FIFO or a device where a regular file is expected, a
file over its size cap, nesting deeper than the parsers recurse, a path over PATH_MAX. Each case is
built by the test and bounded in time: a hang fails the test instead of stalling the run."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from santacore.files import MiB, UnsuitableFileError, read_regular_file
from tests.conftest import REPO_ROOT

EXAMPLE_APP = REPO_ROOT / "examples" / "terminal-notifier.app"
EXECUTABLE = EXAMPLE_APP / "Contents" / "MacOS" / "terminal-notifier"
TIMEOUT = 60  # seconds; each case below takes well under 5


def santacore(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "santacore", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "SANTACORE_CONFIG": "", **(env or {})},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "santacore.toml"
    path.write_text(f'StateDirectory = "{tmp_path / "state"}"\n')
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def fifo_bundle(tmp_path: Path) -> Path:
    """An app whose Contents/Info.plist is a FIFO with no writer; its executable is a real Mach-O."""
    app = tmp_path / "Fifo.app"
    (app / "Contents" / "MacOS").mkdir(parents=True)
    os.mkfifo(app / "Contents" / "Info.plist")
    shutil.copy(EXECUTABLE, app / "Contents" / "MacOS" / "terminal-notifier")
    return app


# --- the helper ---------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    started = time.monotonic()
    with pytest.raises(UnsuitableFileError, match=r"not a regular file \(a FIFO\)") as info:
        read_regular_file(fifo, MiB)
    assert time.monotonic() - started < 1
    assert info.value.filename == str(fifo)


def test_a_device_is_refused_unread() -> None:
    with pytest.raises(UnsuitableFileError, match=r"not a regular file \(a character device\)"):
        read_regular_file("/dev/zero", MiB)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsuitableFileError, match=r"not a regular file \(a directory\)") as info:
        read_regular_file(tmp_path, MiB)
    assert info.value.errno == errno.EISDIR


def test_a_sparse_file_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "sparse"
    with open(big, "wb") as f:
        f.truncate(2 * 1024 * MiB)  # 2 GiB, no blocks allocated
    with pytest.raises(UnsuitableFileError, match="larger than 1 MiB"):
        read_regular_file(big, MiB)


def test_up_to_the_cap_is_read_whole(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 1000)
    assert read_regular_file(exact, 1000) == b"x" * 1000
    with pytest.raises(UnsuitableFileError, match="larger than 999 bytes"):
        read_regular_file(exact, 999)


# --- a FIFO Info.plist hung every command that looks for a bundle -------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["bundleinfo"],
        ["fileinfo"],
        ["check"],
        ["eventupload", "--dry-run", "--bundles"],
    ],
)
def test_a_fifo_info_plist_hangs_nothing(argv: list[str], fifo_bundle: Path, config: Path) -> None:
    executable = fifo_bundle / "Contents" / "MacOS" / "terminal-notifier"
    extra = [] if argv[0] == "bundleinfo" else ["--config", str(config)]
    result = santacore(*argv, *extra, str(executable))
    assert "Traceback" not in result.stderr
    # The FIFO is read as an unreadable Info.plist is: no bundle there (bundleinfo: "Not a bundle").
    if argv[0] == "bundleinfo":
        assert result.returncode == 2 and "Not a bundle" in result.stderr


def test_a_fifo_code_resources_hangs_nothing(corpus: Path, tmp_path: Path) -> None:
    # A signed app whose _CodeSignature/CodeResources is a FIFO: fileinfo reads the seal to check slot -3.
    source = corpus / "registry" / "pypi" / "PySide6-Essentials" / "6.11.3" / "PySide6" / "Linguist.app"
    app = tmp_path / "Linguist.app"
    shutil.copytree(source, app, symlinks=True)
    seal = app / "Contents" / "_CodeSignature" / "CodeResources"
    seal.unlink()
    os.mkfifo(seal)
    result = santacore("fileinfo", "--json", str(app / "Contents" / "MacOS" / "Linguist"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# --- configuration, profiles and import files ---------------------------------------------------


def test_a_fifo_config_is_refused(fifo: Path) -> None:
    result = santacore("config", "show", "--config", str(fifo))
    assert result.returncode == 1
    assert f"{fifo}: cannot read: not a regular file (a FIFO)" in result.stderr


def test_dev_zero_as_config_is_refused() -> None:
    result = santacore("config", "show", "--config", "/dev/zero")
    assert result.returncode == 1
    assert "/dev/zero: cannot read: not a regular file (a character device)" in result.stderr


def test_a_config_over_one_mib_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * (MiB // 10 + 1))
    result = santacore("config", "show", "--config", str(big))
    assert result.returncode == 1
    assert f"{big}: cannot read: larger than 1 MiB" in result.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "sparse"])
def test_config_import_refuses_what_is_not_a_profile(source: str, tmp_path: Path) -> None:
    path = Path(source)
    if source == "fifo":
        path = tmp_path / "profile.fifo"
        os.mkfifo(path)
    elif source == "sparse":
        path = tmp_path / "big.mobileconfig"
        with open(path, "wb") as f:
            f.truncate(2 * 1024 * MiB)
    result = santacore("config", "import", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = "larger than 16 MiB" if source == "sparse" else "not a regular file"
    assert f"{path}: cannot read: {reason}" in result.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "sparse"])
def test_rule_import_refuses_what_is_not_a_document(source: str, tmp_path: Path, config: Path) -> None:
    path = Path(source)
    if source == "fifo":
        path = tmp_path / "rules.fifo"
        os.mkfifo(path)
    elif source == "sparse":
        path = tmp_path / "rules.json"
        with open(path, "wb") as f:
            f.truncate(2 * 1024 * MiB)
    result = santacore("rule", "--config", str(config), "--import", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = "larger than 256 MiB" if source == "sparse" else "not a regular file"
    assert f"{path}: {reason}" in result.stderr


# --- nesting deeper than the parsers recurse -----------------------------------------------------


def test_a_deeply_nested_toml_config_names_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for argv in (["config", "show"], ["fileinfo", str(EXECUTABLE)], ["rule", "--list"], ["check", str(EXECUTABLE)]):
        result = santacore(*argv, "--config", str(deep))
        # fileinfo still describes the file (exit 0) and says why the rule is not shown.
        assert result.returncode == (0 if argv[0] == "fileinfo" else 1), argv
        assert "Traceback" not in result.stderr
        assert f"{deep}: invalid TOML: arrays or tables nested too deeply" in result.stderr


def test_a_deeply_nested_rule_import_names_the_file(tmp_path: Path, config: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"rules": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = santacore("rule", "--config", str(config), "--import", str(deep))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Failed to parse {deep}: arrays or objects nested too deeply" in result.stderr


def test_a_rule_import_that_is_not_an_object_is_refused(tmp_path: Path, config: Path) -> None:
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    result = santacore("rule", "--config", str(config), "--import", str(listing))
    assert result.returncode == 1
    assert f'Failed to parse {listing}: expected a JSON object {{"rules": [...]}}' in result.stderr


# --- paths ----------------------------------------------------------------------------------------


def test_a_path_over_path_max_says_so(tmp_path: Path) -> None:
    # A real file whose absolute path is longer than PATH_MAX (4096 on Linux, 1024 on macOS).
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        for _ in range(25):
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
        Path("f").write_bytes(b"x")
    finally:
        os.chdir(here)
    long_path = os.path.join(tmp_path, *["d" * 200] * 25, "f")
    result = santacore("bundleinfo", long_path)
    assert result.returncode == 1
    assert result.stderr.endswith(": File name too long\n")


def test_a_symlink_loop_says_so(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = santacore("bundleinfo", str(tmp_path / "a"))
    assert result.returncode == 1
    assert "Too many levels of symbolic links" in result.stderr


# --- the state directory: rules.db and sync-state.json --------------------------------------------


def test_a_fifo_rules_db_is_refused_without_blocking(tmp_path: Path, config: Path) -> None:
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "rules.db")
    for argv in (["rule", "--list"], ["rule", "--block", "--identifier", "a" * 64]):
        result = santacore(*argv, "--config", str(config))
        assert result.returncode == 1, (argv, result.stderr)
        assert "rules.db" in result.stderr and "not a regular file (a FIFO)" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert (tmp_path / "state" / "rules.db").is_fifo()  # left untouched


def test_a_fifo_sync_state_is_refused_without_blocking(tmp_path: Path, config: Path) -> None:
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "sync-state.json")
    result = santacore("config", "show", "--config", str(config))
    assert result.returncode == 1
    assert "sync-state.json: sync state is not a regular file (a FIFO); left untouched" in result.stderr
