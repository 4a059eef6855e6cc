"""`santacore syncd` as a real process with push notifications against a real nats-server and SyncServer: a push
triggers its sync; kill -9 in the middle of that sync loses no event and half-applies no rule; SIGTERM stops the
push client and exits 0. Also `santacore testing serve --push` publishing from stdin."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from santacore.santad.rule_store import RuleStore
from santacore.testing import SyncServer
from santacore.testing.push import NatsBroker, PushSide
from tests.push_broker import broker  # noqa: F401 -- the fixture
from tests.test_sync_scheduler import wait_for
from tests.test_sync_stages import Client, corpus_events, make_client, wire_rules


class Syncd:
    """A `santacore syncd` subprocess whose stdout lines are collected as they come."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "SANTACORE_SYNC_RETRY_SCALE": "0.001"}
        env.pop("SANTACORE_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "santacore", "syncd", "--first-sync-delay", "0", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str, count: int = 1) -> bool:
        return sum(text in line for line in list(self.lines)) >= count

    def wait_for(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        try:
            wait_for(lambda: self.saw(text, count), timeout)
        except AssertionError:
            raise AssertionError(f"syncd never said {text!r} ({count}x):\n" + "\n".join(self.lines)) from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._closed()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self._closed()
        return code

    def _closed(self) -> None:
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(batch_size=2, page_size=2) as s:
        yield s


def rule_count(client: Client) -> int:
    with RuleStore(client.config.rules_db, read_only=True) as rules:
        return rules.counts().total


def test_kill_9_during_a_push_triggered_sync_loses_nothing(
    corpus: Path,
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker)
    server.add_rules(wire_rules(corpus, "badbinary"))
    client = make_client(tmp_path, server)
    config = client.config.source
    assert config is not None
    syncd = Syncd(config)
    try:
        syncd.wait_for("Push notifications connected")
        syncd.wait_for("Next full sync in 14400 s")
        assert rule_count(client) == 1
        # Five events queued (three batches of two) and three new rules (two pages); the push-triggered sync is
        # killed while its second event batch is in flight.
        events = corpus_events(corpus, 5)
        client.queue(events)
        server.add_rules(wire_rules(corpus, "noop", "banned_cdhash", "badcert"))
        server.add_fault("delay", stage="eventupload", skip=1, times=1, delay=2.0)
        server.push.publish_host()
        try:
            wait_for(lambda: len(server.requests_for("eventupload")) == 2)
        except AssertionError:
            raise AssertionError("\n".join(syncd.lines)) from None
        syncd.kill()
    finally:
        if syncd.proc.poll() is None:
            syncd.kill()
    time.sleep(2.2)  # the server finishes the delayed request the dead client sent
    received = {e["file_sha256"] for e in server.events.get(client_machine(client), [])}
    pending = set(client.pending_sha256())
    assert {e.file_sha256 for e in events} <= received | pending  # no event lost
    assert rule_count(client) == 1  # the sync never reached its rule transaction

    # Again, killed between two rule pages: still none of the new rules.
    server.add_fault("delay", stage="ruledownload", skip=1, times=1, delay=2.0)
    syncd = Syncd(config)
    try:
        syncd.wait_for("Push notifications connected")
        before = len(server.requests_for("ruledownload"))
        server.push.publish_host()
        wait_for(lambda: len(server.requests_for("ruledownload")) >= before + 2)
        syncd.kill()
    finally:
        if syncd.proc.poll() is None:
            syncd.kill()
    assert rule_count(client) in (1, 4)  # all or nothing
    time.sleep(2.2)

    # A clean restart then delivers everything; SIGTERM stops it (and its push client) with exit 0.
    syncd = Syncd(config)
    try:
        syncd.wait_for("Next full sync in 14400 s")
        assert rule_count(client) == 4 and client.pending_count() == 0
        assert syncd.terminate() == 0
        assert syncd.saw("Push notifications stopped: the sync daemon is stopping")
    finally:
        if syncd.proc.poll() is None:
            syncd.kill()
    received = {e["file_sha256"] for e in server.events.get(client_machine(client), [])}
    assert {e.file_sha256 for e in events} <= received


def client_machine(client: Client) -> str:
    return str(client.config.machine_id)


def test_testing_serve_push_publishes_from_stdin(tmp_path: Path) -> None:
    """`santacore testing serve --push`: its preflight hands out a live broker; `host` typed on stdin syncs."""
    env = {k: v for k, v in os.environ.items() if k != "SANTACORE_CONFIG"}
    serve = subprocess.Popen(
        [sys.executable, "-m", "santacore", "testing", "serve", "--push", "--quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert serve.stdout is not None and serve.stdin is not None
        base_url = serve.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        config = tmp_path / "santacore.toml"
        config.write_text(
            f'SyncBaseURL = "{base_url}"\nMachineID = "A7D3C9E2-0000-4000-8000-000000000001"\n'
            f'StateDirectory = "{tmp_path / "state"}"\n'
        )
        syncd = Syncd(config)
        try:
            syncd.wait_for("Push notifications connected")
            syncd.wait_for("Next full sync in 14400 s")
            serve.stdin.write("host\n")
            serve.stdin.flush()
            syncd.wait_for("Push: message on santa.host.testdevice: full sync in 0 s")
            syncd.wait_for("Full sync finished: success", count=2)
            assert syncd.terminate() == 0
        finally:
            if syncd.proc.poll() is None:
                syncd.kill()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
        for stream in (serve.stdin, serve.stdout, serve.stderr):
            if stream is not None:
                stream.close()
