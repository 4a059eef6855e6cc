"""Record types of the testing sync server: requests as received, bundles, replies, the handler's answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from santacore.testing.faults import Fault


@dataclass
class RecordedRequest:
    """One request as received: `raw_body` is the wire bytes, `body` the decoded bytes, `data` the JSON."""

    method: str
    path: str
    stage: str | None
    machine_id: str | None
    headers: dict[str, str]
    raw_body: bytes
    body: bytes | None = None
    data: Any = None
    status: int | None = None  # None: no answer was sent (dropped)
    answer: Any = None  # the JSON value the stage answered (before any body fault)
    error: str | None = None
    fault: str | None = None
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Bundle:
    """What the server knows of one bundle hash (§4.5)."""

    hash: str
    binary_count: int | None
    binaries: frozenset[str]
    complete: bool


@dataclass
class Reply:
    """An answer before rendering: `obj` is encoded in the profile's response style unless `body` is given."""

    status: int
    obj: Any = None  # JSON value, encoded in the profile's style
    body: bytes | None = None  # verbatim body (wins over obj)
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the HTTP handler does with a request: send `reply` (None: close the connection without answering),
    with `fault`'s damage to its body when set (a body fault of a 200)."""

    reply: Reply | None
    fault: Fault | None = None
