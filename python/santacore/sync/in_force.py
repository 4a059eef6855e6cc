"""The configuration in force (spec §3.4): the local file under the last sync's settings, and each value's source.

Santa applies the settings a sync server sends (ClientMode, the path regexes, EnableBundles,
EnableTransitiveRules, the event-upload switches, FullSyncInterval) over its local configuration
until the next sync changes them. santacore keeps them in the sync state
(`santacore.sync.state`); `load_config_in_force` reads the file and that state and merges them
with the sync's own `effective_config`, so `santacore check`, `santacore config show` and the
sync itself all see the same values. Each setting's `Source` says where its value came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from santacore.config.keys import KEYS, toml_value
from santacore.config.settings import Config, load_config
from santacore.sync.state import SyncState, effective_config, load_state

__all__ = ["ConfigInForce", "Setting", "Source", "config_in_force", "load_config_in_force"]


class Source(StrEnum):
    """Where a setting's value comes from."""

    FILE = "file"  # the configuration file
    SERVER = "server"  # the last sync (overrides the file)
    DEFAULT = "default"  # neither: the built-in default


@dataclass(frozen=True)
class Setting:
    """One setting in force: its key, its TOML value (None: not set) and where that came from."""

    key: str
    value: Any
    source: Source


@dataclass(frozen=True)
class ConfigInForce:
    """The local configuration, the persisted sync state, and `config`: the one in force."""

    local: Config
    state: SyncState
    config: Config

    @property
    def server_attributes(self) -> frozenset[str]:
        """The `Config` attributes the last sync set: the sync state's fields of those names that hold a value
        (the fields `effective_config` applies)."""
        return frozenset(
            f.name
            for f in dataclasses.fields(self.state)
            if f.name in _ATTRIBUTES and getattr(self.state, f.name) is not None
        )

    def settings(self) -> tuple[Setting, ...]:
        """Every setting, in the key table's order, then the file's unknown keys (kept, unused)."""
        server = self.server_attributes
        out = []
        for spec in KEYS:
            if spec.attr in server:
                source = Source.SERVER
            elif spec.name in self.local.given_keys:
                source = Source.FILE
            else:
                source = Source.DEFAULT
            out.append(Setting(spec.name, toml_value(getattr(self.config, spec.attr)), source))
        out += [Setting(key, value, Source.FILE) for key, value in self.local.extra.items()]
        return tuple(out)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """`{"Key": {"value": ..., "source": "file" | "server" | "default"}}`; a value not set is null."""
        return {s.key: {"value": s.value, "source": s.source.value} for s in self.settings()}


_ATTRIBUTES = frozenset(spec.attr for spec in KEYS)


def config_in_force(local: Config, state: SyncState) -> ConfigInForce:
    """`local` with the server settings of `state` applied (the sync's `effective_config`)."""
    return ConfigInForce(local=local, state=state, config=effective_config(local, state))


def load_config_in_force(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> ConfigInForce:
    """`load_config(path)` with the settings of the last sync (the sync state in its StateDirectory) on top.
    Raises ConfigError for the file, StoreError for a sync state that is not one."""
    local = load_config(path, environ=environ)
    return config_in_force(local, load_state(local.sync_state_path))
