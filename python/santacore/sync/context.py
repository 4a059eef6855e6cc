"""`SyncContext` and its one builder, `open_sync_context`: machine ID, facts, variant, transport, stores."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from santacore.config.settings import Config
from santacore.errors import SyncError
from santacore.santad.event_store import EventStore
from santacore.santad.events import DEFAULT_VARIANT, Variant
from santacore.santad.rule_store import RuleStore
from santacore.sync.host import HostFacts, resolve_machine_id
from santacore.sync.settings import TransportSettings
from santacore.sync.transport import Exchange, Transport

__all__ = ["SyncContext", "config_variant", "open_sync_context"]


def _quiet(line: str) -> None:
    pass


@dataclass
class SyncContext:
    """Everything a sync needs; whoever built it owns (opens and closes) the stores and the transport."""

    config: Config
    machine_id: str
    transport: Transport
    events: EventStore
    rules: RuleStore
    facts: HostFacts
    variant: Variant = DEFAULT_VARIANT
    log: Callable[[str], None] = _quiet
    clock: Callable[[], float] = time.time
    warn: Callable[[str], None] | None = None  # what went wrong but did not stop the sync; default: `log`
    deadline: float | None = None  # time.monotonic() value: the sync's budget ends here (full_sync sets it)
    proto_transfer: bool = False  # SyncEnableProtoTransfer: binary protobuf bodies (addendum §3)
    push_token: str | None = None  # the push client's token, sent as push_notification_token (addendum §1.1 #8)


def config_variant(config: Config) -> Variant:
    """The wire variant the configuration's SyncProtocol names."""
    return Variant(config.sync_protocol.value)


@contextmanager
def open_sync_context(
    config: Config,
    *,
    machine_id: str | None = None,
    settings: TransportSettings | None = None,
    transport: Transport | None = None,
    events: EventStore | None = None,
    rules: RuleStore | None = None,
    facts: HostFacts | None = None,
    variant: Variant | None = None,
    log: Callable[[str], None] = _quiet,
    attempt_log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    trace: Callable[[Exchange], None] | None = None,
) -> Iterator[SyncContext]:
    """The `SyncContext` for `config`, for the `with` block. What is passed in is used as is and left open; what
    is not is made here (and closed on exit):

    * `machine_id`: `resolve_machine_id(config)` (MachineID, else /etc/machine-id); SyncError when there is none;
    * `transport`: ``Transport(settings or TransportSettings.from_config(config), machine_id)`` (SyncError when
      SyncBaseURL is unset or the TLS material is unusable);
    * `events`, `rules`: the configuration's events.db and rules.db (StoreError, OSError);
    * `facts`: `HostFacts.current()`; `variant`: the configuration's SyncProtocol.

    `log` receives the stage lines, `warn` (default: `log`) what went wrong without stopping the sync (a rule not
    applied); the transport made here reports each failed attempt to `attempt_log` (default:
    `log`) and each HTTP exchange to `trace`. A transport passed in keeps its own reporting.
    """
    if transport is not None and settings is not None:
        raise ValueError("pass either a transport or the settings to make one, not both")
    ident = machine_id or resolve_machine_id(config)
    if not ident:
        raise SyncError("Missing MachineID: set MachineID (or MachineIDPlist), or provide /etc/machine-id")
    wire_variant = variant if variant is not None else config_variant(config)
    if config.sync_enable_proto_transfer and wire_variant is Variant.GOOGLE_JSON:
        raise SyncError(
            'SyncEnableProtoTransfer needs a protobuf SyncProtocol, not "google-json" (NSJSONSerialization)'
        )
    with ExitStack() as owned:
        if transport is None:
            transport = owned.enter_context(
                Transport(
                    settings or TransportSettings.from_config(config),
                    ident,
                    log=attempt_log if attempt_log is not None else log,
                    trace=trace,
                )
            )
        if events is None:
            events = owned.enter_context(EventStore(config.events_db))
        if rules is None:
            rules = owned.enter_context(RuleStore(config.rules_db))
        yield SyncContext(
            config=config,
            machine_id=ident,
            transport=transport,
            events=events,
            rules=rules,
            facts=facts if facts is not None else HostFacts.current(),
            variant=wire_variant,
            log=log,
            proto_transfer=config.sync_enable_proto_transfer,
            warn=warn,
        )
