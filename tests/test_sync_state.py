"""sync/state.py: the persisted sync state and the settings it lays over local configuration."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from santacore.config.settings import load_config
from santacore.errors import StoreError
from santacore.santad.decisions import ClientMode
from santacore.sync.protocol import SyncType
from santacore.sync.state import SyncState, effective_config, load_state, save_state


def test_fresh_state_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sync-state.json"
    assert load_state(path) == SyncState()
    state = SyncState(
        sync_type_required=SyncType.CLEAN_ALL,
        client_mode=ClientMode.LOCKDOWN,
        allowed_path_regex="",
        blocked_path_regex="^/tmp/",
        enable_bundles=True,
        full_sync_interval=120,
        full_sync_last_success=1718035512.5,
    )
    save_state(path, state)
    assert load_state(path) == state
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary left behind


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"sync_type_required": 7}', b'{"client_mode": 9}', b'{"enable_bundles": "yes"}'],
)
def test_bad_state_files_are_errors_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sync-state.json"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=r"sync-state\.json"):
        load_state(path)
    assert path.read_bytes() == content


def test_server_settings_override_local_configuration(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text('ClientMode = 1\nBlockedPathRegex = "/opt/"\nStateDirectory = "state"\n')
    config = load_config(config_file, environ={})
    assert effective_config(config, SyncState()) == config
    state = SyncState(
        client_mode=ClientMode.LOCKDOWN, blocked_path_regex="", allowed_path_regex="^/usr/", enable_bundles=True
    )
    merged = effective_config(config, state)
    assert merged.client_mode is ClientMode.LOCKDOWN
    assert merged.blocked_path_regex is None  # "" clears the sync-provided regex
    assert merged.allowed_path_regex is not None and merged.allowed_path_regex.search("/usr/bin/yes")
    assert merged.enable_bundles is True
    assert config.client_mode is ClientMode.MONITOR  # the local configuration itself is untouched


def test_state_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    save_state(path, SyncState(full_sync_last_success=1.0))
    inode = os.stat(path).st_ino
    save_state(path, SyncState(full_sync_last_success=2.0))
    assert os.stat(path).st_ino != inode  # a new file renamed into place, never rewritten in place
    assert json.loads(path.read_text())["full_sync_last_success"] == 2.0


def test_save_reports_a_failed_directory_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename is durable only once the directory is fsynced: an EIO there is raised, naming the directory."""
    path = tmp_path / "sync-state.json"
    save_state(path, SyncState(full_sync_last_success=1.0))
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as e:
        save_state(path, SyncState(full_sync_last_success=2.0))
    assert (e.value.errno, e.value.filename) == (errno.EIO, str(tmp_path))
    assert load_state(path).full_sync_last_success == 2.0  # replaced, but not known to be durable
