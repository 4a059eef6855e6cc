"""Hostile servers the sync must survive in bounded time: headers trickled a byte at a time, a cursor that never
ends, a stop during a request. Each server is a raw socket server on loopback, written here. Assertions are on
attempts and generous bounds, never on tight wall-clock figures."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from santacore.config.settings import Config, load_config
from santacore.errors import SyncError
from santacore.santad.rule_store import RuleStore
from santacore.sync.retry import RetryPolicy
from santacore.sync.scheduler import SyncDaemon
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncStatus
from santacore.sync.transport import Transport
from tests.sync_client import MACHINE, SyncTestClient

Handler = Callable[[socket.socket, str, int], None]  # (connection, stage, attempt number of that stage)


class RawServer:
    """An HTTP/1.1 server on loopback that reads one request per connection and hands it to `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def count(self, stage: str) -> int:
        with self._lock:
            return self.requests.count(stage)

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    body += conn.recv(65536)
                stage = head.split(b" ")[1].decode().strip("/").split("/")[0]
                with self._lock:
                    self.requests.append(stage)
                    attempt = self.requests.count(stage)
                self.handler(conn, stage, attempt)
            except OSError:
                pass

    def close(self) -> None:
        self.closing.set()
        self.sock.close()


@contextmanager
def raw_server(handler: Handler) -> Iterator[RawServer]:
    server = RawServer(handler)
    try:
        yield server
    finally:
        server.close()


def reply(conn: socket.socket, document: object) -> None:
    body = json.dumps(document).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def slow_headers(conn: socket.socket, stage: str, attempt: int) -> None:
    """`HTTP/1.1 200 OK`, then a header trickled one byte at a time, for ever (until the client hangs up)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(600):
        time.sleep(0.1)
        conn.sendall(b"a")


def config_for(tmp_path: Path, base_url: str) -> Config:
    config_file = tmp_path / "santacore.toml"
    config_file.write_text(
        f'SyncBaseURL = "{base_url}"\nMachineID = "{MACHINE}"\nStateDirectory = "{tmp_path / "state"}"\n'
        'SyncClientContentEncoding = "none"\n'
    )
    return load_config(config_file, environ={})


def test_slow_headers_end_at_the_attempt_deadline() -> None:
    with raw_server(slow_headers) as server:
        settings = TransportSettings(
            base_url=server.base_url, timeout=1.0, retry=RetryPolicy(attempts=2, sleep=lambda s: None)
        )
        with Transport(settings, MACHINE) as transport:
            started = time.monotonic()
            with pytest.raises(SyncError, match="timed out"):
                transport.post("preflight", b"{}")
            elapsed = time.monotonic() - started
        assert server.count("preflight") == 2  # each attempt ended, so the second was made
        assert elapsed < 30  # two 1 s deadlines; before the fix this never returned


def test_the_sync_budget_bounds_a_whole_sync(tmp_path: Path) -> None:
    with raw_server(slow_headers) as server:
        client = SyncTestClient(config_for(tmp_path, server.base_url))
        started = time.monotonic()
        result = client.run_sync(timeout=30.0, sync_budget=1.5)
        elapsed = time.monotonic() - started
    assert result.status is SyncStatus.PREFLIGHT_FAILED
    assert "budget" in (result.error or "") or "timed out" in (result.error or "")
    assert server.count("preflight") == 1
    assert elapsed < 25  # well under the attempt's 30 s deadline


def test_cancelling_ends_the_attempt_in_flight() -> None:
    stop = threading.Event()
    with raw_server(slow_headers) as server:
        settings = TransportSettings(base_url=server.base_url, timeout=60.0, retry=RetryPolicy(sleep=lambda s: None))
        with Transport(settings, MACHINE) as transport:
            transport.cancelled = stop.is_set
            threading.Timer(0.5, stop.set).start()
            started = time.monotonic()
            with pytest.raises(SyncError, match="stopping"):
                transport.post("preflight", b"{}")
            elapsed = time.monotonic() - started
        assert server.count("preflight") == 1  # not retried
        assert elapsed < 20  # the attempt's own deadline is 60 s


def test_daemon_stop_ends_a_sync_stuck_in_headers(tmp_path: Path) -> None:
    with raw_server(slow_headers) as server:
        daemon = SyncDaemon(config_for(tmp_path, server.base_url), first_sync_delay=0)
        daemon.start(max_syncs=1)
        try:
            for _ in range(200):
                if server.count("preflight"):
                    break
                time.sleep(0.05)
            assert server.count("preflight") == 1
            started = time.monotonic()
            assert daemon.stop(wait=True, timeout=20)  # the transport's attempt deadline is 30 s
            elapsed = time.monotonic() - started
        finally:
            daemon.stop(wait=True, timeout=60)
            daemon.close()
    assert server.count("preflight") == 1
    assert daemon.last_result is not None and daemon.last_result.status is SyncStatus.PREFLIGHT_FAILED
    assert elapsed < 20


def _rule(i: int) -> dict[str, str]:
    return {
        "identifier": hashlib.sha256(f"endless-{i}".encode()).hexdigest(),
        "policy": "BLOCKLIST",
        "rule_type": "BINARY",
    }


def endless_cursor(conn: socket.socket, stage: str, attempt: int) -> None:
    if stage == "ruledownload":
        reply(conn, {"rules": [_rule(attempt * 10 + k) for k in range(10)], "cursor": f"page-{attempt}"})
    else:
        reply(conn, {})


@pytest.mark.parametrize(
    ("bound", "message"),
    [
        ({"max_rule_pages": 30}, "RuleDownloadMaxPages"),
        ({"max_rules": 95}, "RuleDownloadMaxRules"),
        ({"max_rule_bytes": 4000}, "RuleDownloadMaxBytes"),
    ],
)
def test_endless_cursor_hits_a_bound_and_applies_nothing(tmp_path: Path, bound: dict[str, Any], message: str) -> None:
    with raw_server(endless_cursor) as server:
        client = SyncTestClient(config_for(tmp_path, server.base_url))
        result = client.run_sync(**bound)
    assert result.status is SyncStatus.RULE_DOWNLOAD_FAILED
    assert message in (result.error or "")
    assert server.count("ruledownload") <= 31
    with RuleStore(client.config.rules_db) as rules:
        assert rules.counts().total == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("RuleDownloadMaxPages", 30, "more than 30 pages of rules (RuleDownloadMaxPages)"),
        ("RuleDownloadMaxRules", 95, "more than 95 rules (RuleDownloadMaxRules)"),
        ("RuleDownloadMaxBytes", 4000, "passed 4000 bytes (RuleDownloadMaxBytes)"),
    ],
)
def test_rule_download_bounds_come_from_the_configuration(tmp_path: Path, key: str, value: int, message: str) -> None:
    """The bounds are configuration keys: the `santacore sync` a person runs stops at the configured one."""
    import subprocess
    import sys

    with raw_server(endless_cursor) as server:
        config_for(tmp_path, server.base_url)
        config_file = tmp_path / "santacore.toml"
        config_file.write_text(config_file.read_text() + f"{key} = {value}\n")
        assert getattr(load_config(config_file, environ={}), _ATTRS[key]) == value
        done = subprocess.run(
            [sys.executable, "-m", "santacore.cli", "sync", "--config", str(config_file)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "SANTACORE_SYNC_RETRY_SCALE": "0.001"},
        )
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
    assert server.count("ruledownload") <= 31
    with RuleStore(tmp_path / "state" / "rules.db") as rules:
        assert rules.counts().total == 0


_ATTRS = {
    "RuleDownloadMaxPages": "rule_download_max_pages",
    "RuleDownloadMaxRules": "rule_download_max_rules",
    "RuleDownloadMaxBytes": "rule_download_max_bytes",
}


def test_time_budget_and_bounds_keys_reach_the_transport(tmp_path: Path) -> None:
    config_file = tmp_path / "santacore.toml"
    config_file.write_text(
        'SyncBaseURL = "http://127.0.0.1:9/"\nSyncTimeBudget = 45\nRuleDownloadMaxPages = 7\n'
        "RuleDownloadMaxRules = 700\nRuleDownloadMaxBytes = 70000\n"
    )
    settings = TransportSettings.from_config(load_config(config_file, environ={}))
    assert (settings.sync_budget, settings.max_rule_pages, settings.max_rules, settings.max_rule_bytes) == (
        45.0,
        7,
        700,
        70000,
    )
    defaults = TransportSettings.from_config(Config(sync_base_url="http://127.0.0.1:9/"))
    assert (defaults.sync_budget, defaults.max_rule_pages) == (1800.0, 20_000)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("SyncTimeBudget = 0", "expected 1 to 604800 seconds, got 0"),
        ('SyncTimeBudget = "10"', 'expected a whole number of seconds, got "10"'),
        ("RuleDownloadMaxPages = -1", "expected 1 to 4294967295 pages, got -1"),
        ("RuleDownloadMaxBytes = 10", "expected 1024 to 1099511627776 bytes, got 10"),
    ],
)
def test_bad_bound_values_are_named(tmp_path: Path, line: str, reason: str) -> None:
    from santacore.config.settings import ConfigError

    config_file = tmp_path / "santacore.toml"
    config_file.write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, environ={})
    assert reason in str(caught.value)
    assert line.split(" ")[0] in str(caught.value)


def test_endless_cursor_default_bounds_are_set() -> None:
    settings = TransportSettings(base_url="http://127.0.0.1:1/")
    # generous for 1,000,000 real rules, finite for an endless server
    assert 1_000_000 <= settings.max_rules < 10_000_000
    assert 1_000 <= settings.max_rule_pages < 1_000_000
    assert settings.sync_budget > 0
    assert replace(settings, max_rules=5).max_rules == 5


def test_a_waiting_sync_names_the_lock_holder_and_honours_its_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import os

    from santacore.commands import sync as sync_command
    from santacore.sync.lock import lock_holder, sync_lock

    config = config_for(tmp_path, "http://127.0.0.1:9/")
    args = argparse.Namespace(
        config=str(tmp_path / "santacore.toml"),
        clean=False,
        clean_all=False,
        json=False,
        verbose=0,
        timeout=0.5,
        budget=None,
    )
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with sync_lock(config.state_directory):
            holder.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holder.wait(30)
        assert lock_holder(config.state_directory).startswith(f"pid {os.getpid()} since ")
        status = sync_command.run(args)
    finally:
        release.set()
        thread.join(60)
    err = capsys.readouterr().err
    assert status == int(SyncStatus.DAEMON_TIMEOUT)
    assert f"Waiting for another sync to finish: pid {os.getpid()} since" in err
    assert "gave up after 0.5 s" in err


DELAY_0 = ("--first-sync-delay", "0")


def test_syncd_exits_soon_after_sigterm_during_slow_headers(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    with raw_server(slow_headers) as server:
        config_for(tmp_path, server.base_url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "santacore", "syncd", "--config", str(tmp_path / "santacore.toml"), *DELAY_0],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            for _ in range(600):
                if server.count("preflight"):
                    break
                time.sleep(0.05)
            assert server.count("preflight") == 1
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=25)  # the attempt's own deadline is 30 s; before the fix: 91 s and on
            elapsed = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    assert proc.returncode == 0, out
    assert b"Received SIGTERM, stopping" in out
    assert elapsed < 25
