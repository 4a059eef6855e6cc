"""santad's bundle round trip (spec §4.5) from the command line, against the testing server's Zentral profile
(which asks for a bundle's binaries until it holds them all): `santacore check --record --upload` on a blocked
binary of a real corpus bundle, with the server up and with it down (then `santacore sync` delivers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from santacore.identity.bundle import hash_bundle
from santacore.santad.event_store import EventStore
from santacore.sync.settings import RETRY_SCALE_ENV
from santacore.testing import SyncServer
from tests.sync_client import MACHINE

APP = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"
MAIN = "Contents/MacOS/terminal-notifier"
SECRET = "roundtrip-secret"


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(
        profile="zentral", enrollment_secret=SECRET, client_mode="LOCKDOWN", enable_bundles=True, batch_size=2
    ) as s:
        yield s


def santacore(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, RETRY_SCALE_ENV: "0.001"}
    env.pop("SANTACORE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def write_config(tmp_path: Path, server: SyncServer) -> Path:
    config = tmp_path / "santacore.toml"
    config.write_text(
        f'SyncBaseURL = "{server.base_url}"\nMachineID = "{MACHINE}"\nStateDirectory = "{tmp_path / "state"}"\n'
        f'SyncExtraHeaders = {{"Zentral-Authorization" = "Bearer {SECRET}"}}\n'
    )
    return config


def received(server: SyncServer) -> list[dict[str, object]]:
    """The events the server holds for the one machine (Zentral keys machines by normalised UUID)."""
    (events,) = server.events.values()
    return events


def queued(tmp_path: Path) -> int:
    with EventStore(tmp_path / "state" / "events.db") as store:
        return store.count()


def test_check_upload_runs_the_bundle_round_trip(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    config = write_config(tmp_path, server)
    done = santacore("sync", "--config", str(config))  # enrolls, and brings LOCKDOWN and EnableBundles
    assert done.returncode == 0, done.stderr
    target = corpus / APP / MAIN
    bh = hash_bundle(target)
    assert bh.bundle_hash is not None

    done = santacore("check", "--record", "--upload", "--json", "--config", str(config), str(target))
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert doc["decision"] == "BLOCK_UNKNOWN"
    assert doc["upload"] == {
        "outcomes": ["needs-bundle-hash", "send-events"],
        "bundle_hash": bh.bundle_hash,
        "bundle_binaries": bh.binary_count,
        "events_queued": 0,
    }
    bundle = server.bundles[bh.bundle_hash]
    assert bundle.complete and bundle.binaries == {b.sha256 for b in bh.binaries}
    assert queued(tmp_path) == 0
    (blocking, *binaries) = received(server)
    assert blocking["file_bundle_hash"] == bh.bundle_hash and blocking["decision"] == "BLOCK_UNKNOWN"
    assert [b["decision"] for b in binaries] == ["BUNDLE_BINARY"] * bh.binary_count
    assert "Immediate upload: send-events" in done.stderr

    # The server down: everything stays queued (the event with its bundle fields and the bundle's binaries).
    server.stop()
    done = santacore("check", "--record", "--upload", "--config", str(config), str(target))
    assert done.returncode == 3, done.stderr
    assert "Immediate upload: store-events" in done.stderr
    assert f"Events queued in {tmp_path / 'state' / 'events.db'}: {1 + bh.binary_count}" in done.stderr
    assert queued(tmp_path) == 1 + bh.binary_count
    server.start()
    done = santacore("sync", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events_uploaded"] == 1 + bh.binary_count
    assert queued(tmp_path) == 0
    assert len(received(server)) == 2 * (1 + bh.binary_count)


def test_check_upload_without_bundles_uploads_the_event_alone(corpus: Path, tmp_path: Path) -> None:
    with SyncServer(client_mode="LOCKDOWN") as server:  # bundles not enabled
        config = write_config(tmp_path, server)
        assert santacore("sync", "--config", str(config)).returncode == 0
        done = santacore("check", "--record", "--upload", "--json", "--config", str(config), str(corpus / APP / MAIN))
        assert done.returncode == 3, done.stderr
        upload = json.loads(done.stdout)["upload"]
        assert upload["outcomes"] == ["uploaded"] and upload["bundle_hash"] is None
        (event,) = received(server)
        assert "file_bundle_hash" not in event and queued(tmp_path) == 0
