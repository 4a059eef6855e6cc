"""The command line under abuse: absurd --threads values, a closed stdout, Ctrl-C. Each ends at
once with a clear message or quietly, never with a traceback or a hang."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest

import santacore.cli
from santacore.cli import MAX_THREADS, main
from tests.conftest import REPO_ROOT

EXAMPLE_APP = REPO_ROOT / "examples" / "terminal-notifier.app"
EXECUTABLE = EXAMPLE_APP / "Contents" / "MacOS" / "terminal-notifier"


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_THREADS + 1), "100000", "4294967296", "99999999999999999999"])
def test_threads_out_of_range_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(["bundleinfo", "--threads", value, str(EXAMPLE_APP)])
    assert exit_info.value.code == 2
    assert f"must be between 1 and {MAX_THREADS}, got {value}" in capsys.readouterr().err
    assert time.monotonic() - started < 1


def test_threads_not_a_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bundleinfo", "--threads", "many", str(EXAMPLE_APP)])
    assert exit_info.value.code == 2
    assert "not a whole number: 'many'" in capsys.readouterr().err


def test_the_largest_thread_count_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundleinfo", "--threads", str(MAX_THREADS), str(EXAMPLE_APP)]) == 0
    assert "BundleHash: " in capsys.readouterr().out


def _fileinfo(count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "santacore", "fileinfo", *[str(EXECUTABLE)] * count],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SANTACORE_CONFIG": ""},
    )


def test_a_closed_stdout_ends_quietly() -> None:
    # `santacore fileinfo a b c ... | head -1`: far more output than a pipe buffer holds.
    with _fileinfo(300) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=120) == 141
    assert stderr == ""


def test_ctrl_c_says_interrupted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(santacore.cli, "_command", lambda run: interrupted)
    assert main(["bundleinfo", str(EXAMPLE_APP)]) == 130
    assert capsys.readouterr().err == "santacore: interrupted\n"


def test_sigint_to_a_running_command_exits_130() -> None:
    # A real SIGINT (Ctrl-C) while a command is busy: fileinfo over many files, after its first line
    # (so after LIEF is imported: a SIGINT during that import aborts inside LIEF's module init).
    with _fileinfo(2000) as process:
        assert process.stdout is not None
        assert process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.decode() == "santacore: interrupted\n"


# A child that runs `santacore fileinfo` with a SIGINT timed to land while LIEF's extension module is being
# created (dlopen + its C++ initialisation, which runs Python code): an import hook starts the timer as
# `lief._lief`'s loader begins. Portable (no /proc), and the delay spreads the signal over the whole init.
_CHILD = """
import importlib.abc, importlib.machinery, os, signal, sys, threading
delay, target = float(sys.argv[1]), sys.argv[2]

class InterruptDuringInit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target_module=None):
        if name != "lief._lief":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        create = spec.loader.create_module
        def create_module(spec):
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()
            return create(spec)
        spec.loader.create_module = create_module
        return spec

sys.meta_path.insert(0, InterruptDuringInit())
from santacore.cli import main
sys.exit(main(["fileinfo", target]))
"""


def _interrupt_during_lief_init(delay: float) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(delay), str(EXECUTABLE)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "SANTACORE_CONFIG": ""},
        timeout=60,
    )
    return done.returncode, done.stderr.decode()


def test_sigint_while_lief_initialises_exits_130() -> None:
    # The same hook around a bare `import lief` (no `deferred_sigint`) ends 5 of these 6 runs with SIGABRT
    # (exit 134) inside LIEF's module init, and the 0 s one with a KeyboardInterrupt traceback.
    outcomes = [_interrupt_during_lief_init(delay) for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2)]
    assert outcomes == [(130, "santacore: interrupted\n")] * 6


def test_deferred_sigint_delivers_the_interrupt_after_the_block() -> None:
    from santacore.interrupts import deferred_sigint

    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_sigint():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append("end of block")
    assert reached == ["end of block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
