"""The client side shared by the sync tests: a config pointing at a SyncServer, and the stores
and transport a full sync needs, opened around each call (fast retries, short timeouts); and the
eventupload body the spec's field tables describe, built without the product's serialiser."""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from santacore.config.settings import Config, load_config
from santacore.santad.decisions import Decision
from santacore.santad.event_store import EventStore
from santacore.santad.events import Certificate, SigningStatus, StoredEvent, Variant
from santacore.santad.execution import store_events
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule
from santacore.sync.context import SyncContext, open_sync_context
from santacore.sync.host import HostFacts
from santacore.sync.retry import RetryPolicy
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncResult, full_sync
from santacore.testing import SyncServer
from tests.spec_tables import SPEC_EVENT_FIELDS

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


# --------------------------------------------------------------------------------------------------
# The eventupload body by the spec (§3.2, §4.1–4.4, §2.3), independent of santacore.santad.events

# §4.4: a BUNDLE_BINARY event has no execution time, process, users, sessions or quarantine data.
NOT_IN_BUNDLE_BINARY = frozenset(
    {"executing_user", "execution_time", "logged_in_users", "current_sessions", "pid", "ppid", "parent_name"}
    | {"quarantine_data_url", "quarantine_referer_url", "quarantine_timestamp", "quarantine_agent_bundle_id"}
)
# §0: 2024.6–2024.7 declared the bundle counters uint64, which protobuf-JSON prints as quoted strings.
UINT64_IN_2024_6 = frozenset({"file_bundle_hash_millis", "file_bundle_binary_count"})


def _uint32(value: float | None) -> int:
    return int(value) % 2**32 if value is not None and math.isfinite(value) and value > 0 else 0


def _certificate(cert: Certificate, variant: Variant) -> dict[str, Any]:
    """§4.3: empty values omitted (protobuf-JSON) or missing when nil ([G-JSON]); the dates are numbers."""
    pairs: list[tuple[str, Any]] = [("sha256", cert.sha256), ("cn", cert.cn), ("org", cert.org), ("ou", cert.ou)]
    if variant is Variant.GOOGLE_JSON:
        return {k: v for k, v in pairs if v is not None} | {
            "valid_from": cert.valid_from,
            "valid_until": cert.valid_until,
        }
    pairs += [("valid_from", _uint32(cert.valid_from)), ("valid_until", _uint32(cert.valid_until))]
    return {k: v for k, v in pairs if v}


def _field(event: StoredEvent, key: str, variant: Variant) -> Any:
    """The value of one §4.1 field, None when nil."""
    if key == "file_path":
        return posixpath.dirname(event.file_path)
    if key == "file_name":
        return posixpath.basename(event.file_path)
    if key == "execution_time":
        return event.occurrence_date
    if key == "decision":
        return event.decision.value
    if key == "signing_chain":
        return [_certificate(c, variant) for c in event.signing_chain]
    value = getattr(event, key)
    return list(value) if isinstance(value, tuple) else value


def spec_event(event: StoredEvent, variant: Variant) -> dict[str, Any]:
    """One event object as `variant` uploads it (§4.1; §2.3's omission rules; §4.4 for BUNDLE_BINARY)."""
    bundle_binary = event.decision is Decision.BUNDLE_BINARY
    out: dict[str, Any] = {}
    for key, kind in SPEC_EVENT_FIELDS:  # §4.1's fields 1–28 in field-number order
        value = None if bundle_binary and key in NOT_IN_BUNDLE_BINARY else _field(event, key, variant)
        if variant is Variant.GOOGLE_JSON:  # NSDictionary: only nil is left out; the timestamp is always sent
            if key == "quarantine_timestamp":
                value = value or 0
            if value is not None:
                out[key] = value
            continue
        if kind == "uint32":
            value = _uint32(value)
            if variant is Variant.GOOGLE_2024_6 and key in UINT64_IN_2024_6 and value:
                value = str(value)
        if kind == "enum" and value == Decision.UNKNOWN.value:
            value = None  # enum 0 is the default: omitted
        if value not in (None, "", 0, [], False):
            out[key] = value
    if variant is Variant.NORTHPOLESEC:  # fields 29–34; [N] always sets the entitlement message
        info: dict[str, Any] = {}
        if event.entitlements_filtered:
            info["entitlementsFiltered"] = True
        if event.entitlements:
            info["entitlements"] = [{"key": k, "value": v} for k, v in event.entitlements]
        out["entitlementInfo"] = info
        status = event.signing_status if event.signing_status is not SigningStatus.UNSPECIFIED else None
        extras = [
            ("csFlags", event.cs_flags % 2**32),
            ("signingStatus", status.value if status else None),
            ("secureSigningTime", _uint32(event.secure_signing_time)),
            ("signingTime", _uint32(event.signing_time)),
            ("static_rule", event.static_rule),
        ]
        out.update((k, v) for k, v in extras if v)
    return out


def spec_eventupload(events: Iterable[StoredEvent], machine_id: str, variant: Variant) -> dict[str, Any]:
    """§3.2: `events` (those the variant uploads: [N] none without a v1 decision), then `machine_id` ([G] ≥ 2024.6,
    [N]); protobuf-JSON omits an empty list or string, [G-JSON] always has `events`."""
    uploaded = [e for e in events if not (variant is Variant.NORTHPOLESEC and e.decision is Decision.UNKNOWN)]
    wire = [spec_event(e, variant) for e in uploaded]
    if variant is Variant.GOOGLE_JSON:
        return {"events": wire}
    return {k: v for k, v in (("events", wire), ("machine_id", machine_id)) if v}


def ordered(value: Any) -> Any:
    """A JSON value with every object as its list of (key, value) pairs, so comparing it compares key order."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def parsed_in_order(body: bytes) -> Any:
    return ordered(json.loads(body))


def protobuf_double(value: float) -> str:
    """§2.3: `%.15g`, or `%.17g` when the 15-digit text does not read back to the same value."""
    text = f"{value:.15g}"
    return text if float(text) == value else f"{value:.17g}"
