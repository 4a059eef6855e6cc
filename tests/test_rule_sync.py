"""Rule-download-only syncs (addendum §2, sync/rule_sync.py): `santacore sync --rules-only` as a real subprocess,
`SyncDaemon.request_rule_sync()`, and the rule-sync timer (the last fire time armed wins), against a real
SyncServer on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from santacore.santad.rule_store import RuleStore
from santacore.sync.scheduler import MAX_ENQUEUED_SYNCS
from santacore.sync.settings import RETRY_SCALE_ENV
from santacore.sync.stages import SyncStatus
from santacore.sync.state import load_state
from santacore.testing import SyncServer
from tests.push_broker import ScriptedRandom
from tests.test_push_nats import daemon_for
from tests.test_sync_scheduler import wait_for
from tests.test_sync_stages import make_client, wire_rules


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(batch_size=2, page_size=2) as s:
        yield s


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, RETRY_SCALE_ENV: "0.001"}  # Santa's 4–32 s retry sleeps in milliseconds
    env.pop("SANTACORE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_rules_only_cli_downloads_every_page_and_nothing_else(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    config = str(client.config.source)
    # Nothing to download: success, and the state is not touched (no RuleSyncLastSuccess).
    done = run_cli("sync", "--rules-only", "--json", "--config", config)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rules_received"] == 0
    assert load_state(client.state_path).rule_sync_last_success is None
    server.add_rules(wire_rules(corpus, "badbinary", "noop", "banned_cdhash"))
    done = run_cli("sync", "--rules-only", "--config", config)
    assert done.returncode == 0, done.stderr
    assert "Rule-only sync complete: 3 of 3 rules applied" in done.stdout
    with RuleStore(client.config.rules_db, read_only=True) as rules:
        assert rules.counts().binary == 3
    assert load_state(client.state_path).rule_sync_last_success is not None
    assert load_state(client.state_path).full_sync_last_success is None  # no postflight, no full-sync success
    assert [r.stage for r in server.requests] == ["ruledownload"] * 3  # 1 empty page, then 2 pages of 2
    body = server.requests_for("ruledownload")[-1].body
    assert body is not None and b'"cursor":' in body  # the second page asked for by cursor


def test_rules_only_failed_page_applies_nothing(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    server.add_rules(wire_rules(corpus, "badbinary", "noop", "banned_cdhash"))
    server.add_fault("status", stage="ruledownload", times=100, status=500, skip=1)
    done = run_cli("sync", "--rules-only", "--config", str(client.config.source))
    assert done.returncode == int(SyncStatus.RULE_DOWNLOAD_FAILED), done.stderr
    with RuleStore(client.config.rules_db) as rules:
        assert rules.counts().total == 0
    assert load_state(client.state_path).rule_sync_last_success is None


def test_rules_only_excludes_clean() -> None:
    done = run_cli("sync", "--rules-only", "--clean")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_request_rule_sync_runs_outside_the_limit_of_two(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.add_rules(wire_rules(corpus, "badbinary"))
    server.add_fault("delay", stage="preflight", times=1, delay=1.5)
    client = make_client(tmp_path, server)
    lines: list[str] = []
    with daemon_for(client, ScriptedRandom(), lines) as daemon:
        daemon.start()
        wait_for(lambda: len(server.requests_for("preflight")) == 1)  # the first full sync is running
        second = daemon.submit_sync()  # running + waiting = the limit
        assert MAX_ENQUEUED_SYNCS == 2
        third = daemon.submit_sync()
        assert third.result(1).status is SyncStatus.TOO_MANY_SYNCS
        rules_only = daemon.submit_rule_sync()  # still accepted: outside the limit
        assert rules_only.result(30).status is SyncStatus.SUCCESS
        assert second.result(30).status is SyncStatus.SUCCESS
    stages = [r.stage for r in server.requests]
    # Serial: the rule-only sync ran after the running full sync, before the queued one (FIFO).
    assert stages.index("postflight") < len(stages) - stages[::-1].index("ruledownload")


def test_rule_sync_timer_last_armed_fire_time_wins(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    """Injected clock and sleep: arming at +50 s then at +20 s fires once, at +20 s, and disarms."""
    server.add_rules(wire_rules(corpus, "badbinary"))
    client = make_client(tmp_path, server)
    now = [1000.0]
    fired: list[float] = []

    def log(line: str) -> None:
        if line.startswith("Rule-only sync starting"):
            fired.append(now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    daemon = daemon_for(client, ScriptedRandom(), [], clock=lambda: now[0], sleep=sleep)
    daemon._log = log  # only the lines this test reads
    daemon.first_sync_delay = 100
    with daemon:
        daemon.push_rule_sync(50, "test")
        daemon.push_rule_sync(20, "test")
        daemon.run(max_syncs=1)
    assert fired == [1020.0]
    assert daemon.rule_sync_due is None and daemon.rules_only_run == 1
    assert [r.stage for r in server.requests][:1] == ["ruledownload"]
