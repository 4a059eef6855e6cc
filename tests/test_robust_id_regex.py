"""Path regexes from a sync server or the configuration cannot stall a decision (robustness issue, item 4)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.policy import PATH_REGEX_TIMEOUT, PolicySettings, decide, scope_regex_matches
from santacore.santad.rules import Identifiers
from santacore.sync.state import _sync_regex
from tests.test_cmd_check import BINARYRULES, Env

# The issue's pattern: Python's `re` took 53 s on it against 30 x's.
ISSUE_PATTERN = "(x+x+)+y"
# Catastrophic for a backtracking matcher whatever its optimisations (`regex` included).
PATHOLOGICAL = "(x|xx)+y"
BOUND = 2.0  # seconds for a whole decision; PATH_REGEX_TIMEOUT is 0.25 s per regex

NOTHING = Identifiers(binary="0" * 64)


class NoRules:
    def find(self, identifiers: Identifiers) -> None:
        return None


def _decide(path: str, mode: ClientMode, **regexes: str) -> tuple[Decision, float]:
    settings = PolicySettings(
        mode=mode,
        page_zero_protection=False,
        # compiled as a preflight's are
        allowed_path_regex=_sync_regex(regexes.get("allowed_path_regex")),
        blocked_path_regex=_sync_regex(regexes.get("blocked_path_regex")),
    )
    started = time.monotonic()
    result = decide(NOTHING, NoRules(), settings, path=path, is_macho=True, missing_pagezero=False, bad_signature=False)
    return result.decision, time.monotonic() - started


def test_issue_pattern_is_decided_quickly() -> None:
    decision, elapsed = _decide("/" + "x" * 30, ClientMode.MONITOR, blocked_path_regex=ISSUE_PATTERN)
    assert decision is Decision.ALLOW_UNKNOWN  # no "y": no match, as `re` would say after 53 s
    assert elapsed < BOUND


@pytest.mark.parametrize(
    ("key", "mode", "expected"),
    [
        ("blocked_path_regex", ClientMode.MONITOR, Decision.ALLOW_UNKNOWN),
        ("blocked_path_regex", ClientMode.LOCKDOWN, Decision.BLOCK_UNKNOWN),
        ("allowed_path_regex", ClientMode.LOCKDOWN, Decision.BLOCK_UNKNOWN),
        ("allowed_path_regex", ClientMode.MONITOR, Decision.ALLOW_UNKNOWN),
    ],
)
def test_timeout_counts_as_no_match_and_says_so(
    key: str, mode: ClientMode, expected: Decision, capsys: pytest.CaptureFixture[str]
) -> None:
    decision, elapsed = _decide("/" + "x" * 80, mode, **{key: PATHOLOGICAL})
    assert decision is expected
    assert elapsed < BOUND
    err = capsys.readouterr().err
    name = "BlockedPathRegex" if key.startswith("blocked") else "AllowedPathRegex"
    assert f"{name} {PATHOLOGICAL!r} took longer than {PATH_REGEX_TIMEOUT:g} s" in err
    assert "treated as no match" in err


def test_lookarounds_still_work() -> None:
    never = re.compile("(?!)")  # what Zentral sends for "no regex"
    assert not scope_regex_matches("BlockedPathRegex", never, "/Applications/Tool.app")
    ahead = re.compile(r"^/Applications/(?!Bad)")
    assert scope_regex_matches("AllowedPathRegex", ahead, "/Applications/Good.app")
    assert not scope_regex_matches("AllowedPathRegex", ahead, "/Applications/Bad.app")
    behind = re.compile(r"(?<=/tmp/)evil$")
    assert scope_regex_matches("BlockedPathRegex", behind, "/tmp/evil")
    assert scope_regex_matches("BlockedPathRegex", re.compile(r"(?i)^/TMP/"), "/tmp/evil")


def test_check_with_pathological_config_regex(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: `santacore check` with a pathological BlockedPathRegex in the configuration file."""
    target = tmp_path / ("x" * 80)
    shutil.copyfile(corpus / BINARYRULES / "goodbinary", target)
    env = Env(tmp_path, capsys)
    started = time.monotonic()
    rc, out, err = env.check(target, "--json", ClientMode=1, BlockedPathRegex=".*/" + PATHOLOGICAL)
    elapsed = time.monotonic() - started
    assert json.loads(out)["decision"] == "ALLOW_UNKNOWN", err
    assert rc == 0
    assert "BlockedPathRegex" in err and PATHOLOGICAL in err and "treated as no match" in err
    assert elapsed < BOUND + 3  # file_info of a small file included


def test_refused_sync_regex_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert _sync_regex("(unclosed", "BlockedPathRegex") is None
    err = capsys.readouterr().err
    assert "BlockedPathRegex '(unclosed' from the sync server does not compile" in err
