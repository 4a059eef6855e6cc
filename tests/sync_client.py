"""The client side shared by the sync tests: a config pointing at a SyncServer, and the stores
and transport a full sync needs, opened around each call (fast retries, short timeouts)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from santacore.config.settings import Config, load_config
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent, Variant
from santacore.santad.execution import store_events
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule
from santacore.sync.context import SyncContext, open_sync_context
from santacore.sync.host import HostFacts
from santacore.sync.retry import RetryPolicy
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncResult, full_sync
from santacore.testing import SyncServer

MACHINE = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"
NO_SLEEP = RetryPolicy(sleep=lambda seconds: None)
FACTS = HostFacts(hostname="host", os_version="14.6.1", os_build="23G93", model_identifier="Mac14,2")


def write_config(directory: Path, server: SyncServer, extra: str = "") -> Config:
    """A santacore.toml in `directory` for `server`, with its state directory beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "santacore.toml"
    config_file.write_text(
        f'SyncBaseURL = "{server.base_url}"\nMachineID = "{MACHINE}"\nStateDirectory = "{directory / "state"}"\n'
        + extra
    )
    return load_config(config_file, environ={})


def fast_settings(config: Config, **changes: Any) -> TransportSettings:
    """The configuration's transport settings with no retry sleeps and a 5 s deadline, then `changes`."""
    return replace(TransportSettings.from_config(config), **{"retry": NO_SLEEP, "timeout": 5.0, **changes})


@dataclass
class SyncTestClient:
    config: Config

    @property
    def state_path(self) -> str:
        return os.fspath(self.config.sync_state_path)

    @contextmanager
    def context(
        self, *, variant: Variant | None = None, machine_id: str = MACHINE, **transport: Any
    ) -> Iterator[SyncContext]:
        """`variant`: the configuration's SyncProtocol unless given; `transport`: TransportSettings changes."""
        settings = fast_settings(self.config, **transport)
        with open_sync_context(
            self.config, machine_id=machine_id, settings=settings, facts=FACTS, variant=variant
        ) as ctx:
            yield ctx

    def run_sync(self, *, variant: Variant | None = None, machine_id: str = MACHINE, **transport: Any) -> SyncResult:
        with self.context(variant=variant, machine_id=machine_id, **transport) as ctx:
            return full_sync(ctx, state_path=self.state_path)

    def queue(self, events: list[StoredEvent]) -> None:
        with EventStore(self.config.events_db) as store:
            store_events(store, events)

    def pending_count(self) -> int:
        with EventStore(self.config.events_db) as store:
            return store.count()

    def pending_sha256(self) -> list[str]:
        with EventStore(self.config.events_db) as store:
            return [StoredEvent.from_record(r.data).file_sha256 for batch in store.pending(100) for r in batch]

    def stored_rules(self) -> list[Rule]:
        with RuleStore(self.config.rules_db) as store:
            return store.rules()
