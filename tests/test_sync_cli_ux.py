"""What `santacore sync`, `syncd` and the transport tell the user: each failed attempt as it happens, the final
outcome once, the HTTP exchanges with -v/-vv, the XSRF retry without a sleep, the rules not applied and why.

The CLI runs as a subprocess against a real loopback server (`SyncServer`, or a closed port), with Santa's retry
sleeps shortened by SANTACORE_SYNC_RETRY_SCALE (a test-only setting, `retry_policy_for`)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from santacore.config.settings import load_config
from santacore.errors import SyncError
from santacore.sync.context import open_sync_context
from santacore.sync.retry import RetryPolicy
from santacore.sync.settings import RETRY_SCALE_ENV, TransportSettings, retry_policy_for
from santacore.sync.stages import SyncStatus, full_sync
from santacore.testing import SyncServer
from tests.sync_client import FACTS, MACHINE

SCALE = "0.001"  # 4, 8, 16, 32 s become 4, 8, 16, 32 ms


def _config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    path = tmp_path / "santacore.toml"
    path.write_text(
        f'SyncBaseURL = "{base_url}"\nMachineID = "{MACHINE}"\nStateDirectory = "{tmp_path / "state"}"\n' + extra
    )
    return path


def _santacore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, RETRY_SCALE_ENV: SCALE}
    env.pop("SANTACORE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _attempt_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{stage}: attempt ")]


def test_connection_refused_prints_each_attempt_then_the_outcome_once(tmp_path: Path) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{_closed_port()}/")
    done = _santacore("sync", "--config", str(config))
    assert done.returncode == int(SyncStatus.PREFLIGHT_FAILED), done.stderr
    lines = _attempt_lines(done.stderr, "preflight")
    waits = ["retrying in 0.004 s", "retrying in 0.008 s", "retrying in 0.016 s", "retrying in 0.032 s", "giving up"]
    assert len(lines) == 5, done.stderr
    for n, (line, then) in enumerate(zip(lines, waits, strict=True), start=1):
        assert re.fullmatch(rf"preflight: attempt {n} of 5 failed: connection refused .*; {then}", line), line
    outcome = [line for line in done.stderr.splitlines() if line.startswith("Sync failed:")]
    assert outcome == [outcome[0]] and outcome[0].startswith("Sync failed: preflight: connection refused")
    assert "connection refused" not in done.stdout  # the cause is on stderr only, once per attempt + outcome
    assert done.stderr.count("connection refused") == 6
    assert "Summary: preflight_failed" in done.stdout


@pytest.mark.parametrize(("protocol", "attempts"), [("google", 5), ("northpolesec", 1)])
def test_404_retried_by_google_stopped_at_once_by_northpolesec(tmp_path: Path, protocol: str, attempts: int) -> None:
    with SyncServer() as srv:
        srv.add_fault("status", stage="preflight", status=404, times=5)
        config = _config(tmp_path, srv.base_url, f'SyncProtocol = "{protocol}"\n')
        done = _santacore("sync", "--config", str(config))
        assert len(srv.requests_for("preflight")) == attempts
    assert done.returncode == int(SyncStatus.PREFLIGHT_FAILED), done.stderr
    lines = _attempt_lines(done.stderr, "preflight")
    assert len(lines) == attempts and all("failed: HTTP 404 Not Found" in line for line in lines), done.stderr
    if protocol == "northpolesec":
        assert lines[0].endswith("not retried (SyncProtocol northpolesec stops on this 4xx)")
    else:
        assert lines[-1].endswith("giving up")
    assert done.stderr.count("Sync failed: preflight: HTTP Response: 404 Not Found") == 1


def test_retry_policy_follows_the_protocol_and_the_test_scale(tmp_path: Path) -> None:
    default = load_config(_config(tmp_path, "http://127.0.0.1:1/"), environ={})
    assert retry_policy_for(default, {}).stop_on_4xx  # northpolesec is the default (issue 11)
    google = load_config(_config(tmp_path, "http://127.0.0.1:1/", 'SyncProtocol = "google"\n'), environ={})
    north = load_config(_config(tmp_path, "http://127.0.0.1:1/", 'SyncProtocol = "northpolesec"\n'), environ={})
    assert not retry_policy_for(google, {}).stop_on_4xx and retry_policy_for(north, {}).stop_on_4xx
    assert TransportSettings.from_config(north).retry.stop_on_4xx
    assert [retry_policy_for(google, {}).delays(a) for a in range(2, 6)] == [4, 8, 16, 32]
    assert retry_policy_for(google, {RETRY_SCALE_ENV: "0.5"}).delays(2) == 2
    with pytest.raises(SyncError, match=RETRY_SCALE_ENV):
        retry_policy_for(google, {RETRY_SCALE_ENV: "2"})


def test_verbose_prints_one_line_per_exchange_and_vv_the_bodies(tmp_path: Path) -> None:
    with SyncServer() as srv:
        config = _config(tmp_path, srv.base_url)
        once = _santacore("sync", "--config", str(config), "-v")
        twice = _santacore("sync", "--config", str(config), "-vv")
    assert once.returncode == 0 and twice.returncode == 0, (once.stderr, twice.stderr)
    exchanges = [line for line in once.stderr.splitlines() if line.startswith("HTTP POST ")]
    stages = ["preflight", "ruledownload", "postflight"]
    assert [re.search(r"/(\w+)/" + MACHINE, line)[1] for line in exchanges] == stages  # type: ignore[index]
    for line in exchanges:
        assert re.fullmatch(
            rf"HTTP POST {re.escape(srv.base_url)}\w+/{MACHINE} -> 200 OK; sent \d+ B \(deflate \d+ B\), "
            r"received \d+ B( \(\w+ \d+ B\))?; \d+ ms",
            line,
        ), line
    assert "request body:" not in once.stderr
    assert twice.stderr.count("  request body: {") == 3 and twice.stderr.count("  response body: {") == 3
    assert '"machine_id": "' + MACHINE + '"' in twice.stderr


def test_syncd_verbose_logs_the_exchanges(tmp_path: Path) -> None:
    with SyncServer() as srv:
        config = _config(tmp_path, srv.base_url)
        done = _santacore("syncd", "--config", str(config), "--once", "--first-sync-delay", "0", "-v")
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r" HTTP POST \S+/preflight/\S+ -> 200 OK", done.stdout)) == 1, done.stdout


def test_xsrf_handshake_costs_no_sleep_and_the_token_is_kept(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with SyncServer(require_xsrf=True) as srv:
        config = load_config(_config(tmp_path, srv.base_url), environ={})
        settings = TransportSettings.from_config(config)
        settings = TransportSettings(base_url=settings.base_url, retry=RetryPolicy(sleep=sleeps.append))
        lines: list[str] = []
        with open_sync_context(config, settings=settings, facts=FACTS, log=lines.append) as ctx:
            first = full_sync(ctx, state_path=os.fspath(config.sync_state_path))
            second = full_sync(ctx, state_path=os.fspath(config.sync_state_path))
        assert len(srv.requests_for("xsrf")) == 1
    assert first.status is SyncStatus.SUCCESS and second.status is SyncStatus.SUCCESS, (first.log, second.log)
    assert sleeps == []
    assert any("preflight: attempt 1 of 5 failed: HTTP 403" in line and "retrying at once" in line for line in lines)


def test_rules_not_applied_are_named_with_the_reason(tmp_path: Path) -> None:
    good = {"identifier": "ab" * 32, "rule_type": "BINARY", "policy": "ALLOWLIST"}
    bad = {"identifier": "not-a-hash", "rule_type": "BINARY", "policy": "ALLOWLIST"}
    with SyncServer(rules=[good, bad]) as srv:
        config = _config(tmp_path, srv.base_url)
        done = _santacore("sync", "--config", str(config))
    assert done.returncode == 0, done.stderr
    named = [line for line in done.stderr.splitlines() if line.startswith("Rule not applied:")]
    assert len(named) == 1 and re.match(r"Rule not applied: rule \d of page 1 \(not-a-hash\): \S", named[0]), named
    assert "1 of 2 rules applied (1 not applied, named above)" in done.stdout


def test_sync_json_lists_the_rules_not_applied(tmp_path: Path) -> None:
    bad = {"identifier": "not-a-hash", "rule_type": "BINARY", "policy": "ALLOWLIST"}
    with SyncServer(rules=[bad]) as srv:
        config = _config(tmp_path, srv.base_url)
        done = _santacore("sync", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # stdout is the JSON document alone; the stage lines went to stderr
    assert doc["status"] == "success" and doc["rules_received"] == 1 and doc["rules_applied"] == 0
    [skipped] = doc["rules_not_applied"]
    assert skipped["page"] == 1 and skipped["index"] == 1 and skipped["identifier"] == "not-a-hash"
    assert skipped["reason"] and "Rule not applied: rule 1 of page 1 (not-a-hash)" in done.stderr
    assert "Sync complete" in done.stderr


def test_check_upload_reports_the_exchange_when_verbose(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --upload`'s immediate upload: the failed attempts and, with a verbosity, the exchanges on stderr
    (the `-v` flag itself belongs to the check parser; `upload_recorded` takes the count)."""
    from santacore.commands.immediate import upload_recorded
    from santacore.santad.event_store import EventStore
    from tests.test_sync_scheduler import denial

    event = denial(corpus)  # a blocked binary in no bundle: uploaded alone
    with SyncServer() as srv:
        srv.add_fault("status", stage="eventupload", status=500, times=1)
        config = load_config(_config(tmp_path, srv.base_url), environ={})
        monkeypatch.setenv(RETRY_SCALE_ENV, "0")
        with EventStore(config.events_db) as store:
            report = upload_recorded(config, store, event, verbosity=1)
            assert report["outcomes"] == ["uploaded"] and store.count() == 0
    err = capsys.readouterr().err
    assert "eventupload: attempt 1 of 5 failed: HTTP 500 Internal Server Error; retrying in 0 s" in err, err
    assert re.search(r"HTTP POST \S+/eventupload/\S+ -> 500 ", err) and re.search(r"/eventupload/\S+ -> 200 OK", err)
