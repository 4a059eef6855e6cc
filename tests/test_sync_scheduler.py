"""The sync daemon (sync/scheduler.py, commands/syncd.py) and immediate uploads (sync/stages.py) against a real
SyncServer on loopback: timers (§1.2), on-demand syncs and the single-sync lock (§1.4), SIGTERM (§1.5), the dedup
cache (§5.3–5.4) and the §4.5 bundle round trip (SendEvents / DropEvents / StoreEvents)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from santacore.commands import syncd
from santacore.config.settings import Config
from santacore.identity.bundle import BundleHash, hash_bundle
from santacore.identity.fileinfo import file_info
from santacore.santad.decisions import Decision
from santacore.santad.event_builders import execution_event
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent
from santacore.santad.upload_backoff import UploadBackoff
from santacore.sync.context import SyncContext
from santacore.sync.lock import sync_lock
from santacore.sync.protocol import SyncType
from santacore.sync.scheduler import SyncDaemon
from santacore.sync.stages import SyncStatus
from santacore.sync.state import SyncState, load_state, save_state
from santacore.sync.transport import Transport
from santacore.sync.uploads import UploadOutcome, store_new_events, upload_bundle_event, upload_event_now
from santacore.testing import SyncServer
from tests.sync_client import FACTS, MACHINE, fast_settings
from tests.test_sync_stages import BINARYRULES, Client, corpus_events, make_client, wire_rules

APP = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"
MAIN = "Contents/MacOS/terminal-notifier"


def fast_transport(config: Config, machine_id: str) -> Transport:
    return Transport(fast_settings(config), machine_id)


def make_daemon(client: Client, **options: Any) -> SyncDaemon:
    return SyncDaemon(client.config, transport_factory=fast_transport, facts=FACTS, **options)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(batch_size=2, page_size=2) as s:
        yield s


def session(client: Client) -> contextlib.AbstractContextManager[SyncContext]:
    """What santad holds for immediate uploads: the transport and the stores."""
    return client.context()


def stored(client: Client) -> list[StoredEvent]:
    with EventStore(client.config.events_db) as store:
        return [StoredEvent.from_record(r.data) for batch in store.pending(1000) for r in batch]


def denial(corpus: Path, name: str = "badbinary") -> StoredEvent:
    return execution_event(file_info(corpus / BINARYRULES / name), Decision.BLOCK_BINARY)


# ---------------------------------------------------------------------------------------------------------------
# Timers (§1.2)


def test_first_sync_after_the_delay_then_at_the_interval(tmp_path: Path, server: SyncServer) -> None:
    """Injected clock and sleep: 15 s, then the configured interval after a failed sync (re-armed after any
    outcome), then the server's interval, then [G]'s clamp of a server value below 60 to 600."""
    client = make_client(tmp_path, server, 'FullSyncInterval = 90\nSyncProtocol = "google"\n')  # [G]'s clamp
    server.preflight.full_sync_interval = 120
    server.add_fault("status", stage="preflight", times=5, status=500)  # the first sync fails
    now = [1000.0]
    slept: list[float] = []
    started: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        if len(slept) == 3:
            server.preflight.full_sync_interval = 30  # served at the 3rd sync

    def log(line: str) -> None:
        if line.startswith("Full sync starting"):
            started.append(now[0])

    # The server stays reachable throughout (it answers 500s), so the §1.5 monitor never fires and
    # the re-armed interval decides; a probe interval past every wait keeps the sleeps whole.
    daemon = make_daemon(
        client, clock=lambda: now[0], sleep=sleep, log=log, reachability_probe=lambda: True, probe_interval=10_000
    )
    with daemon:
        daemon.run(max_syncs=4)
    assert slept == [15.0, 90, 120, 600]
    assert started == [1015.0, 1105.0, 1225.0, 1825.0]
    assert len(server.requests_for("preflight")) == 5 + 3  # the first sync's five attempts, then one each
    assert len(server.requests_for("postflight")) == 3
    assert daemon.last_result is not None and daemon.last_result.status is SyncStatus.SUCCESS
    assert load_state(client.state_path).full_sync_interval == 600


def test_interval_sources_and_floor(tmp_path: Path, server: SyncServer) -> None:
    daemon = make_daemon(make_client(tmp_path / "a", server))
    assert daemon.full_sync_interval() == 600  # nothing configured, nothing persisted
    daemon = make_daemon(make_client(tmp_path / "b", server, "FullSyncInterval = 90\n"))
    assert daemon.full_sync_interval() == 90
    save_state(daemon.state_path, SyncState(full_sync_interval=300))
    assert daemon.full_sync_interval() == 300  # the server's value wins over the configuration
    save_state(daemon.state_path, SyncState(full_sync_interval=5))
    assert daemon.full_sync_interval() == 60  # floor


# ---------------------------------------------------------------------------------------------------------------
# On-demand syncs and the single-sync lock (§1.4)


def test_request_sync_waits_for_the_running_sync(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.add_rules(wire_rules(corpus, "badbinary"))
    server.add_fault("delay", stage="ruledownload", times=1, delay=1.0)
    client = make_client(tmp_path, server)
    with make_daemon(client, first_sync_delay=0) as daemon:
        daemon.start()
        wait_for(lambda: len(server.requests_for("ruledownload")) == 1)  # the timed sync is running
        queued = daemon.submit_sync()
        refused = daemon.submit_sync()  # one running + one waiting: kMaxEnqueuedSyncs
        assert refused.done() and refused.result().status is SyncStatus.TOO_MANY_SYNCS
        assert not queued.done()
        result = queued.result(timeout=20)
        assert result.status is SyncStatus.SUCCESS
        preflights, postflights = server.requests_for("preflight"), server.requests_for("postflight")
        assert len(preflights) == 2 and len(postflights) == 2
        assert postflights[0].received_at <= preflights[1].received_at  # queued behind, not beside
        assert daemon.syncs_run == 2
        assert daemon.stop(timeout=10)
    assert client.rules()[0].identifier == wire_rules(corpus, "badbinary")[0]["identifier"]
    with pytest.raises(RuntimeError):
        make_daemon(client).submit_sync()  # never started


def test_daemon_and_santacore_sync_share_one_lock(tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    with make_daemon(client, first_sync_delay=3600) as daemon:
        daemon.start()
        with sync_lock(client.config.state_directory):  # `santacore sync` running in "another process"
            pending = daemon.submit_sync()
            time.sleep(0.4)
            assert not pending.done() and server.requests == []
        assert pending.result(timeout=20).status is SyncStatus.SUCCESS
        # stop() is not held up by another sync holding the lock: the waiting request is abandoned.
        with sync_lock(client.config.state_directory):
            waiting = daemon.submit_sync()
            time.sleep(0.2)
            assert daemon.stop(timeout=60)  # returns while the lock is still held here: it polls, it does not block
        assert waiting.result(timeout=1).status is SyncStatus.UNKNOWN
    assert len(server.requests_for("preflight")) == 1


def test_clean_request_is_persisted_when_the_sync_runs(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    client.queue(corpus_events(corpus, 1))
    with make_daemon(client, first_sync_delay=3600) as daemon:
        daemon.start()
        result = daemon.request_sync(SyncType.CLEAN_ALL, timeout=20)
    assert result.status is SyncStatus.SUCCESS and result.performed is SyncType.CLEAN_ALL
    assert server.preflights[MACHINE][0]["request_clean_sync"] is True
    assert load_state(client.state_path).sync_type_required is SyncType.NORMAL


# ---------------------------------------------------------------------------------------------------------------
# santacore syncd: signals and --once


CHILD = (
    "import argparse, sys\n"
    "from santacore.commands import syncd\n"
    "sys.exit(syncd.run(argparse.Namespace(config=sys.argv[1], once=False, first_sync_delay=float(sys.argv[2]))))\n"
)


def spawn_syncd(tmp_path: Path, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, os.fspath(tmp_path / "santacore.toml"), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_mid_sync_exits_0_with_consistent_state(corpus: Path, tmp_path: Path) -> None:
    """SIGTERM while the first rule page is in flight: that request finishes, the second page is never asked
    for, nothing is applied (§1.5), uploaded events are gone from events.db and the rest is untouched."""
    with SyncServer(batch_size=2, page_size=1) as srv:
        srv.add_rules(wire_rules(corpus, "badbinary", "noop"))  # two pages
        srv.add_fault("delay", stage="ruledownload", times=1, delay=1.5)
        client = make_client(tmp_path, srv)
        events = corpus_events(corpus, 3)
        client.queue(events)
        child = spawn_syncd(tmp_path, 0.1)
        try:
            wait_for(lambda: len(srv.requests_for("ruledownload")) == 1 or child.poll() is not None, timeout=30)
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, (out, err)
        assert (
            "Received SIGTERM, stopping" in out
            and "Full sync failed: ruledownload" in out
            and "Sync daemon stopped" in out
        )
        assert len(srv.requests_for("ruledownload")) == 1 and srv.requests_for("postflight") == []
        assert client.rules() == []
        state = load_state(client.state_path)
        assert state.full_sync_last_success is None and state.client_mode is None
        assert client.pending() == 0
        assert sorted(e["file_sha256"] for e in srv.events[MACHINE]) == sorted(e.file_sha256 for e in events)
        with EventStore(client.config.events_db) as store:
            assert store.integrity_check() == ["ok"]
        # The next sync completes what was interrupted.
        assert client.sync(srv).status is SyncStatus.SUCCESS and len(client.rules()) == 2


def test_sigterm_while_idle_exits_0_at_once(tmp_path: Path, server: SyncServer) -> None:
    make_client(tmp_path, server)
    child = spawn_syncd(tmp_path, 3600)
    try:
        assert child.stdout is not None
        assert "first full sync in 3600 s" in child.stdout.readline()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert "Received SIGTERM" in out and server.requests == []


def test_syncd_once(corpus: Path, tmp_path: Path, server: SyncServer, capsys: pytest.CaptureFixture[str]) -> None:
    client = make_client(tmp_path, server)
    client.queue(corpus_events(corpus, 3))
    args = argparse.Namespace(config=os.fspath(tmp_path / "santacore.toml"), once=True, first_sync_delay=0.0)
    assert syncd.run(args) == 0
    out = capsys.readouterr().out
    assert "Preflight complete" in out and "Full sync finished: success" in out
    assert client.pending() == 0 and len(server.events[MACHINE]) == 3


# ---------------------------------------------------------------------------------------------------------------
# Immediate uploads (§5.3–5.4)


def test_immediate_upload_success_deletes_the_row(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    event = denial(corpus)
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_event_now(ctx, event, UploadBackoff()) == UploadOutcome.UPLOADED
        assert ctx.events.count() == 0
    (sent,) = server.events[MACHINE]
    assert sent["file_sha256"] == event.file_sha256 and sent["decision"] == "BLOCK_BINARY"
    assert [r.stage for r in server.requests] == ["eventupload"]


def test_dedup_suppresses_the_same_sha256_for_600_s(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    now = [0.0]
    backoff = UploadBackoff(clock=lambda: now[0])
    first, second, third, fourth = (denial(corpus) for _ in range(4))
    with session(client) as ctx:
        assert upload_event_now(ctx, first, backoff) == UploadOutcome.UPLOADED  # stored, then sent
        now[0] = 10.0
        assert upload_event_now(ctx, second, backoff) == UploadOutcome.SUPPRESSED
        now[0] = 599.0
        assert upload_event_now(ctx, third, backoff) == UploadOutcome.SUPPRESSED
        assert {e.idx for e in stored(client)} == {second.idx, third.idx}  # suppressed events stay stored
        now[0] = 601.0
        assert upload_event_now(ctx, fourth, backoff) == UploadOutcome.UPLOADED
        other = denial(corpus, "noop")  # another SHA-256 is not held back
        assert upload_event_now(ctx, other, backoff) == UploadOutcome.UPLOADED
    assert len(server.events[MACHINE]) == 3
    # The full sync is never deduplicated: it sends the two suppressed events.
    result = client.sync(server)
    assert result.events_uploaded == 2 and client.pending() == 0 and len(server.events[MACHINE]) == 5


def test_failed_immediate_upload_keeps_the_row_and_forgets_the_key(
    corpus: Path, tmp_path: Path, server: SyncServer
) -> None:
    client = make_client(tmp_path, server)
    backoff = UploadBackoff()
    event = denial(corpus)
    server.add_fault("status", stage="eventupload", times=5, status=503)
    with session(client) as ctx:
        assert upload_event_now(ctx, event, backoff) == UploadOutcome.FAILED
        assert [e.idx for e in stored(client)] == [event.idx]
        assert event.file_sha256 not in backoff  # §5.3 [N]: a failed plain upload removes its entry
        assert upload_event_now(ctx, event, backoff) == UploadOutcome.UPLOADED  # so the retry is not suppressed
        assert ctx.events.count() == 0
    assert len(server.events[MACHINE]) == 1


# ---------------------------------------------------------------------------------------------------------------
# The §4.5 round trip


@pytest.fixture
def app(corpus: Path, tmp_path: Path) -> Path:
    """terminal-notifier.app plus three more executables: four binaries, so SendEvents needs two batches of 2."""
    target = tmp_path / "apps" / "terminal-notifier.app"
    shutil.copytree(corpus / APP, target)
    for name in ("badbinary", "goodbinary", "noop"):
        shutil.copyfile(corpus / BINARYRULES / name, target / "Contents" / "MacOS" / name)
    return target


def blocked_in_bundle(app: Path) -> tuple[StoredEvent, BundleHash, str]:
    """The blocking event of the app's main executable (flagged, §4.5 step 1), the bundle hash, its digest."""
    event = execution_event(file_info(app / MAIN), Decision.BLOCK_UNKNOWN, needs_bundle_hash=True)
    bundle = hash_bundle(app)
    assert bundle.bundle_hash is not None and bundle.binary_count == 4
    return event, bundle, bundle.bundle_hash


def test_send_events_when_the_server_asks(app: Path, tmp_path: Path, server: SyncServer) -> None:
    server.preflight.enable_bundles = True  # the server asks for bundles it does not hold completely
    client = make_client(tmp_path, server)
    event, bundle, digest = blocked_in_bundle(app)
    backoff = UploadBackoff()
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_bundle_event(ctx, event, bundle, backoff, batch_size=2) == UploadOutcome.SEND_EVENTS
        assert ctx.events.count() == 0  # the blocking event and every uploaded BUNDLE_BINARY row deleted
    uploads = [r.data["events"] for r in server.requests_for("eventupload")]
    assert [len(u) for u in uploads] == [1, 2, 2]  # only the blocking event, then batch_size chunks
    (blocking,) = uploads[0]
    assert blocking["file_sha256"] == event.file_sha256 and blocking["decision"] == "BLOCK_UNKNOWN"
    assert blocking["file_bundle_hash"] == digest and blocking["file_bundle_binary_count"] == 4
    binaries = [e for u in uploads[1:] for e in u]
    assert {e["decision"] for e in binaries} == {"BUNDLE_BINARY"}
    assert {e["file_sha256"] for e in binaries} == {b.sha256 for b in bundle.unique_binaries()}
    assert all(e["file_bundle_hash"] == digest for e in binaries)
    assert server.bundles[digest].complete
    assert digest in backoff  # the key was forgotten, then taken again by the batch


def test_drop_events_when_the_server_does_not_ask(app: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)  # enable_bundles off: the server never asks
    event, bundle, digest = blocked_in_bundle(app)
    backoff = UploadBackoff()
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_bundle_event(ctx, event, bundle, backoff, batch_size=2) == UploadOutcome.DROP_EVENTS
        assert ctx.events.count() == 0  # BUNDLE_BINARY events never stored
        # The same bundle again within 600 s: suppressed; its BUNDLE_BINARY events discarded, the updated
        # blocking event kept for the next full sync (§4.5 step 3).
        again, _, _ = blocked_in_bundle(app)
        store_new_events(ctx.events, [again])
        assert upload_bundle_event(ctx, again, bundle, backoff, batch_size=2) == UploadOutcome.SUPPRESSED
    (kept,) = stored(client)
    assert kept.idx == again.idx and kept.file_bundle_hash == digest
    (sent,) = server.events[MACHINE]
    assert sent["file_bundle_hash"] == digest and sent["decision"] == "BLOCK_UNKNOWN"


def test_store_events_when_the_upload_fails(app: Path, tmp_path: Path, server: SyncServer) -> None:
    server.preflight.enable_bundles = True
    server.add_fault("status", stage="eventupload", times=5, status=500)
    client = make_client(tmp_path, server)
    event, bundle, digest = blocked_in_bundle(app)
    backoff = UploadBackoff()
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_bundle_event(ctx, event, bundle, backoff, batch_size=2) == UploadOutcome.STORE_EVENTS
        rows = ctx.events.for_bundle(digest)
    assert MACHINE not in server.events
    kept = {e.idx: e for e in stored(client)}
    assert len(rows) == len(kept) == 5  # the updated blocking event (same idx) and the four binaries
    assert kept[event.idx].decision is Decision.BLOCK_UNKNOWN and kept[event.idx].file_bundle_hash == digest
    binaries = [e for e in kept.values() if e.decision is Decision.BUNDLE_BINARY]
    assert {e.file_sha256 for e in binaries} == {b.sha256 for b in bundle.unique_binaries()}
    assert digest in backoff  # §5.3: kept after a failed bundle-event upload
    # The next full sync sends them all; its event_upload_bundle_binaries answer is ignored (§4.5 step 5).
    result = client.sync(server)
    assert result.status is SyncStatus.SUCCESS and result.events_uploaded == 5 and client.pending() == 0
    assert len(server.events[MACHINE]) == 5 and server.bundles[digest].complete


def test_send_events_batch_failure_keeps_the_rest(app: Path, tmp_path: Path, server: SyncServer) -> None:
    server.preflight.enable_bundles = True
    server.add_fault("status", stage="eventupload", skip=1, times=5, status=500)  # the first chunk fails
    client = make_client(tmp_path, server)
    event, bundle, digest = blocked_in_bundle(app)
    backoff = UploadBackoff()
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_bundle_event(ctx, event, bundle, backoff, batch_size=2) == UploadOutcome.SEND_EVENTS
    assert [e.decision for e in stored(client)] == [Decision.BUNDLE_BINARY] * 4
    assert len(server.events[MACHINE]) == 1
    assert digest not in backoff  # §5.3 [N]: a failed SendEvents upload removes the entry


def test_no_bundle_hash_leaves_the_event_as_stored(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    event = denial(corpus)
    empty = dataclasses.replace(hash_bundle(corpus / APP), bundle_hash=None)  # what an empty bundle gives (§6.6)
    with session(client) as ctx:
        store_new_events(ctx.events, [event])
        assert upload_bundle_event(ctx, event, empty, UploadBackoff()) == UploadOutcome.NO_BUNDLE_HASH
    assert [e.idx for e in stored(client)] == [event.idx] and server.requests == []


# ---------------------------------------------------------------------------------------------------------------
# The daemon's record_event / record_bundle_hash (§5.4)


def test_record_event_as_santad(corpus: Path, app: Path, tmp_path: Path, server: SyncServer) -> None:
    server.preflight.enable_bundles = True
    client = make_client(tmp_path, server)
    with make_daemon(client, first_sync_delay=3600) as daemon:
        daemon.start()
        allowed = execution_event(file_info(corpus / BINARYRULES / "goodbinary"), Decision.ALLOW_UNKNOWN)
        assert daemon.record_event(allowed) == UploadOutcome.STORED  # waits for the full sync
        assert server.requests == []
        assert daemon.record_event(denial(corpus)) == UploadOutcome.UPLOADED
        in_bundle = execution_event(file_info(app / MAIN), Decision.BLOCK_UNKNOWN)
        # Bundles are off until the server says otherwise: an ordinary immediate upload.
        assert daemon.record_event(in_bundle) == UploadOutcome.UPLOADED
        # A sync turns bundles on and teaches the daemon the server's batch size (2).
        assert daemon.request_sync(timeout=20).status is SyncStatus.SUCCESS
        assert daemon.batch_size == 2 and load_state(client.state_path).enable_bundles is True
        blocked = execution_event(file_info(app / MAIN), Decision.BLOCK_UNKNOWN)
        assert daemon.record_event(blocked) == UploadOutcome.NEEDS_BUNDLE_HASH
        (flagged,) = stored(client)
        assert flagged.idx == blocked.idx and flagged.needs_bundle_hash
        before = len(server.requests_for("eventupload"))
        assert daemon.record_bundle_hash(blocked) == UploadOutcome.SEND_EVENTS
        uploads = [len(r.data["events"]) for r in server.requests_for("eventupload")[before:]]
        assert uploads == [1, 2, 2]
        assert stored(client) == []
        plain = denial(corpus, "noop")
        assert daemon.record_bundle_hash(plain) == UploadOutcome.NO_BUNDLE_HASH  # not in a bundle: not hashed


def test_stop_from_another_thread_while_running_in_the_foreground(tmp_path: Path, server: SyncServer) -> None:
    client = make_client(tmp_path, server)
    daemon = make_daemon(client, first_sync_delay=3600)
    threading.Timer(0.2, daemon.stop, kwargs={"wait": False}).start()
    with daemon:
        daemon.run()  # returns on stop(), not after the hour's delay
    assert server.requests == []
    assert not daemon.running


def test_reachability_monitor_syncs_when_the_server_returns(tmp_path: Path, server: SyncServer) -> None:
    """§1.5: after a failed preflight the daemon probes the server and syncs as soon as it is
    reachable again, long before the full-sync interval; a successful preflight stops probing."""
    reachable = threading.Event()
    probes: list[float] = []

    def probe() -> bool:
        probes.append(time.monotonic())
        return reachable.is_set()

    server.add_fault("status", stage="preflight", times=5, status=503)
    client = make_client(tmp_path, server)
    daemon = make_daemon(client, first_sync_delay=0.0, reachability_probe=probe, probe_interval=0.05)
    with daemon:
        daemon.start()
        wait_for(lambda: daemon.syncs_run == 1)
        assert daemon.last_result is not None and daemon.last_result.status is SyncStatus.PREFLIGHT_FAILED
        assert daemon.monitoring_reachability
        wait_for(lambda: len(probes) >= 3)  # probing, not waiting out the 600 s interval
        assert daemon.syncs_run == 1
        reachable.set()
        wait_for(lambda: daemon.syncs_run == 2)
        second = daemon.last_result
        assert second is not None and second.status == SyncStatus.SUCCESS
        assert not daemon.monitoring_reachability
        count = len(probes)
        time.sleep(0.3)
        assert len(probes) == count  # monitor stopped after the successful preflight
        daemon.stop()
