"""What a sync leaves behind (spec §1.6, §3.4): the sync state file and the effective configuration.

The requested sync type, the settings the server sent (applied at postflight and overriding local
configuration), and the last success times — Santa's `/var/db/santa/sync-state.plist`, kept as JSON in the
state directory and replaced atomically so a crash never leaves half a state."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from santacore.config.settings import Config
from santacore.errors import StoreError
from santacore.files import SYNC_STATE_LIMIT, UnsuitableFileError, read_regular_file
from santacore.santad.decisions import ClientMode
from santacore.santad.statedir import create_private_file, fsync_directory
from santacore.sync.protocol import SyncType


@dataclass(frozen=True)
class SyncState:
    """Persisted sync outcome. None means "the server never set it": local configuration applies."""

    sync_type_required: SyncType = SyncType.NORMAL
    client_mode: ClientMode | None = None
    allowed_path_regex: str | None = None
    blocked_path_regex: str | None = None
    enable_bundles: bool | None = None
    enable_transitive_rules: bool | None = None
    enable_all_event_upload: bool | None = None
    disable_unknown_event_upload: bool | None = None
    full_sync_interval: int | None = None
    full_sync_last_success: float | None = None
    rule_sync_last_success: float | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        doc["sync_type_required"] = int(self.sync_type_required)
        doc["client_mode"] = int(self.client_mode) if self.client_mode is not None else None
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_json(cls, doc: Any, where: str) -> SyncState:
        if not isinstance(doc, dict):
            raise StoreError(f"{where}: sync state is not a JSON object")
        try:
            return cls(
                sync_type_required=SyncType(int(doc.get("sync_type_required", 0))),
                client_mode=ClientMode(int(doc["client_mode"])) if "client_mode" in doc else None,
                allowed_path_regex=_opt(doc, "allowed_path_regex", str),
                blocked_path_regex=_opt(doc, "blocked_path_regex", str),
                enable_bundles=_opt(doc, "enable_bundles", bool),
                enable_transitive_rules=_opt(doc, "enable_transitive_rules", bool),
                enable_all_event_upload=_opt(doc, "enable_all_event_upload", bool),
                disable_unknown_event_upload=_opt(doc, "disable_unknown_event_upload", bool),
                full_sync_interval=_opt(doc, "full_sync_interval", int),
                full_sync_last_success=_opt(doc, "full_sync_last_success", float),
                rule_sync_last_success=_opt(doc, "rule_sync_last_success", float),
            )
        except (ValueError, TypeError) as e:
            raise StoreError(f"{where}: sync state has a bad value: {e}") from None


def _opt(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{key} should be {kind.__name__}, got {value!r}")
    return value


def load_state(path: str | os.PathLike[str]) -> SyncState:
    """The persisted state, or a fresh one when there is none yet. A file that is not a sync
    state is an error and is left alone."""
    where = os.fspath(path)
    try:
        raw = read_regular_file(where, SYNC_STATE_LIMIT)
    except FileNotFoundError:
        return SyncState()
    except UnsuitableFileError as e:  # a FIFO, a device or a runaway file: never read it, never replace it
        raise StoreError(f"{where}: sync state is {e.strerror}; left untouched") from None
    if not raw.strip():
        return SyncState()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise StoreError(f"{where}: sync state is not JSON: {e}") from None
    return SyncState.from_json(doc, where)


def save_state(path: str | os.PathLike[str], state: SyncState) -> None:
    """Replace the state file atomically and durably (write, fsync, rename, fsync directory)."""
    target = os.fspath(path)
    if not os.path.lexists(target):
        create_private_file(target)
    temporary = f"{target}.tmp{os.getpid()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state.to_json(), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(os.path.dirname(target))


def _sync_regex(pattern: str | None, key: str = "path regex") -> re.Pattern[str] | None:
    """§3.1: a sync-provided regex is matched unanchored as sent; "" clears it (santacore
    guidance, since Moroz always sends ""); a pattern that does not compile counts as none,
    with a warning on stderr naming `key`. Matching is bounded in time (`santad.policy`)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        print(
            f"santacore: warning: {key} {pattern!r} from the sync server does not compile ({e}); ignored",
            file=sys.stderr,
        )
        return None


# The on/off settings a sync server may set (preflight), kept in the sync state and applied over the file.
SERVER_SWITCHES = (
    "enable_bundles",
    "enable_transitive_rules",
    "enable_all_event_upload",
    "disable_unknown_event_upload",
)


def effective_config(config: Config, state: SyncState) -> Config:
    """Local configuration with the server's settings applied on top (§3.4: sync-provided
    values override local configuration)."""
    changes: dict[str, Any] = {}
    if state.client_mode is not None:
        changes["client_mode"] = state.client_mode
    for name in SERVER_SWITCHES:
        value = getattr(state, name)
        if value is not None:
            changes[name] = value
    if state.allowed_path_regex is not None:
        changes["allowed_path_regex"] = _sync_regex(state.allowed_path_regex, "AllowedPathRegex")
    if state.blocked_path_regex is not None:
        changes["blocked_path_regex"] = _sync_regex(state.blocked_path_regex, "BlockedPathRegex")
    if state.full_sync_interval is not None:
        changes["full_sync_interval"] = state.full_sync_interval
    return dataclasses.replace(config, **changes) if changes else config
