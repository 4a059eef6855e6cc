"""Injected faults of the testing sync server: `Fault`, the thread-safe `FaultList`, and the fault kinds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from santacore.testing.profiles import STAGES, XSRF_STAGE, XSSI_PREFIX

FaultKind = Literal[
    "status", "delay", "drop", "truncate", "malformed_json", "wrong_types", "oversized", "xssi", "compress"
]

FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
PRE_FAULTS: Final = frozenset({"status", "delay", "drop"})  # applied before the request is handled
POST_FAULTS: Final = frozenset(FAULT_KINDS) - PRE_FAULTS  # applied to a 200 answer


@dataclass(eq=False)
class Fault:
    """One injected fault. It applies to requests matching `stage`/`machine_id` (None = any), lets the
    first `skip` of them through, fires `times` times, then leaves the list. `fired` counts firings.

    kinds: status (`status`, `headers`, `body`; 3xx default Location), delay (`delay` seconds, then the
    normal answer), drop (close without answering), truncate (Content-Length larger than what is sent),
    malformed_json (`body`), wrong_types (`fields` merged into the answer), oversized (`size` bytes of
    valid JSON), xssi (`prefix`), compress (`encoding` gzip|deflate).
    """

    kind: FaultKind
    stage: str | None = None
    times: int = 1
    machine_id: str | None = None
    skip: int = 0
    status: int = 500
    delay: float = 1.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    fields: dict[str, Any] | None = None
    prefix: str = XSSI_PREFIX
    encoding: Literal["gzip", "deflate"] = "gzip"
    size: int = 16 * 1024 * 1024
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(FAULT_KINDS)})")
        if self.stage is not None and self.stage not in (*STAGES, XSRF_STAGE):
            raise ValueError(f"unknown stage {self.stage!r}")
        if self.times < 1 or self.skip < 0:
            raise ValueError("times must be >= 1 and skip >= 0")

    @property
    def done(self) -> bool:
        return self.fired >= self.times


# Per-stage defaults of `wrong_types`: values of the wrong JSON type for fields the client must parse.
WRONG_TYPES: Final[dict[str, dict[str, Any]]] = {
    "preflight": {"batch_size": "fifty", "client_mode": True, "enable_bundles": "yes", "full_sync_interval": [600]},
    "eventupload": {"event_upload_bundle_binaries": "not-a-list"},
    "ruledownload": {"rules": {"identifier": "not-a-list"}, "cursor": 7},
    "postflight": {"NoOp": 1},
    "xsrf": {"token": 1},
}


class FaultList:
    """The server's pending faults (thread-safe). `add(kind, ...)` queues one and returns it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: list[tuple[Fault, str | None, str | None]] = []  # (fault, stage, machine_id) per firing

    def add(self, kind: FaultKind, **options: Any) -> Fault:
        return self.append(Fault(kind, **options))

    def append(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def take(self, stage: str | None, machine_id: str | None, kinds: frozenset[str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or fault.stage not in (None, stage):
                    continue
                if fault.machine_id is not None and fault.machine_id != machine_id:
                    continue
                if fault.skip:
                    fault.skip -= 1
                    continue
                fault.fired += 1
                if fault.done:
                    self._faults.remove(fault)
                self.fired.append((fault, stage, machine_id))
                return fault
        return None
