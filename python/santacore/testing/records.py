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
    wire_format: str = "json"  # "protobuf" for an application/x-protobuf body (SyncEnableProtoTransfer)
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


def request_summary(rec: RecordedRequest, *, delivered: bool = True) -> str:
    """One line on a request and its answer: stage, machine ID, status, what was received or served."""
    if rec.stage is not None:
        parts = [rec.stage, f"machine={rec.machine_id}"]
    else:
        parts = [rec.method, rec.path.split("?", 1)[0]]
    parts.append("status=-" if rec.status is None else f"status={rec.status}")
    data = rec.data if isinstance(rec.data, dict) else {}
    answer = rec.answer if isinstance(rec.answer, dict) else {}
    if rec.status == 200:
        parts += _stage_details(rec.stage, data, answer)
    if rec.fault:
        parts.append(f"fault={rec.fault}")
    if rec.error:
        parts.append(f"error={rec.error!r}")
    if rec.status is None and not rec.error:
        parts.append("no answer sent")
    elif not delivered and rec.status is not None:
        parts.append("client disconnected before the answer was written")
    return " ".join(parts)


def _stage_details(stage: str | None, data: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    if stage == "preflight":
        if "sync_type" in answer:
            sync = f"sync_type={answer['sync_type']}"
        elif "clean_sync" in answer:
            sync = f"clean_sync={str(bool(answer['clean_sync'])).lower()}"
        else:
            sync = "sync_type=NORMAL"
        details = [sync, f"client_mode={answer.get('client_mode', 'MONITOR')}"]
        if data.get("request_clean_sync") is True:
            details.append("clean_sync_requested")
        if data.get("santa_version"):
            details.append(f"santa_version={data['santa_version']}")
        return details
    if stage == "eventupload":
        events = data.get("events")
        details = [f"events_received={len(events) if isinstance(events, list) else 0}"]
        wanted = answer.get("event_upload_bundle_binaries")
        if isinstance(wanted, list) and wanted:
            details.append(f"bundle_binaries_requested={len(wanted)}")
        return details
    if stage == "ruledownload":
        rules = answer.get("rules")
        details = [f"rules_served={len(rules) if isinstance(rules, list) else 0}"]
        if answer.get("cursor"):
            details.append("more_pages=yes")
        return details
    if stage == "postflight":
        details = [f"{key}={data[key]}" for key in ("rules_received", "rules_processed") if key in data]
        reported = data.get("syncType", data.get("sync_type"))
        if reported is not None:
            details.append(f"sync_type={reported}")
        return details
    if stage == "xsrf":
        return ["xsrf_token_issued"]
    return []
