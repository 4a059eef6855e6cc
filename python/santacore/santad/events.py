"""Santa's stored execution event (SNTStoredEvent, spec §4–§5): the model, its wire forms and its events.db record.

* `StoredEvent` holds every §4.1 field plus what santad stores beside them (`idx`,
  `occurrence_date`, `needs_bundle_hash`, the full `file_path`).
* `to_wire(variant)` is the event as a sync client uploads it (§4.1, §9.1): protobuf-JSON of
  the final google/santa release by default, or one of the other `Variant`s.
  `upload_body` wraps a batch as the eventupload request (§3.2).
* `to_record` / `from_record` are the events.db `eventdata` blob (§5.1 santacore guidance):
  JSON of the §4.1 keys plus the internal fields.
* `with_bundle_fields` copies a bundle hash onto a stored event (§4.4).

Building events from a file (`execution_event`, `file_event`, `bundle_events`) is
`santacore.santad.event_builders`, which needs a file's identity (and LIEF); this module does not,
so a sync that only reads and uploads stored events never loads it. The model neither stores nor
sends itself; the event store and the sync client do.
"""

from __future__ import annotations

import json
import math
import posixpath
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from santacore.errors import SantacoreError
from santacore.santad.decisions import Decision

if TYPE_CHECKING:
    from santacore.identity.bundle import BundleHash

# `[NSDate distantFuture]` as Unix seconds: the occurrence date of a BUNDLE_BINARY event.
DISTANT_FUTURE = 64092211200.0
_UINT32 = 0xFFFFFFFF


class EventDecodeError(SantacoreError, ValueError):
    """An events.db `eventdata` blob that is not a stored event (Santa deletes such rows)."""


class Variant(StrEnum):
    """Which sync client's event JSON to produce (spec §0, §4.1, §9.1)."""

    GOOGLE = "google"
    """[G] ≥ 2024.8 protobuf-JSON: empty/zero/false omitted, counters uint32."""
    GOOGLE_2024_6 = "google-2024.6"
    """[G] 2024.6–2024.7: as GOOGLE, but the uint64 `file_bundle_hash_millis` and
    `file_bundle_binary_count` print as quoted strings."""
    GOOGLE_JSON = "google-json"
    """[G-JSON] ≤ 2024.5 NSJSONSerialization: only nil omitted; `signing_chain` and
    `quarantine_timestamp` always sent; `decision` "UNKNOWN" sent; millis a double."""
    NORTHPOLESEC = "northpolesec"
    """[N]: GOOGLE plus fields 29–34; events without a v1 decision are not uploaded."""


DEFAULT_VARIANT = Variant.GOOGLE


class SigningStatus(StrEnum):
    """[N]'s `signingStatus` (event field 31)."""

    UNSPECIFIED = "SIGNING_STATUS_UNSPECIFIED"
    UNSIGNED = "SIGNING_STATUS_UNSIGNED"
    INVALID = "SIGNING_STATUS_INVALID"
    ADHOC = "SIGNING_STATUS_ADHOC"
    DEVELOPMENT = "SIGNING_STATUS_DEVELOPMENT"
    PRODUCTION = "SIGNING_STATUS_PRODUCTION"


class Certificate(NamedTuple):
    """One `signing_chain` entry (§4.3): what MOLCertificate reports; absent values are None."""

    sha256: str
    cn: str | None
    org: str | None
    ou: str | None
    valid_from: int
    valid_until: int


def new_idx() -> int:
    """A fresh event ID: a random unsigned 32-bit value, as santad's `arc4random()` (§5.1)."""
    return secrets.randbits(32)


def _split_path(path: str) -> tuple[str, str]:
    """NSString `stringByDeletingLastPathComponent` and `lastPathComponent`."""
    trimmed = path.rstrip("/") or ("/" if path.startswith("/") else "")
    if trimmed == "/":
        return "/", "/"
    directory, name = posixpath.split(trimmed)
    if directory not in ("", "/"):
        directory = directory.rstrip("/") or "/"
    return directory, name


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """An execution (or BUNDLE_BINARY) event as santad stores it. None means "nil" (not set)."""

    file_sha256: str
    file_path: str
    """The binary's full path; the wire splits it into `file_path` (directory) and `file_name`."""
    decision: Decision
    occurrence_date: float
    """Unix seconds when the decision was recorded; `DISTANT_FUTURE` for BUNDLE_BINARY events."""
    executing_user: str | None = None
    logged_in_users: tuple[str, ...] = ()
    current_sessions: tuple[str, ...] = ()
    file_bundle_id: str | None = None
    file_bundle_path: str | None = None
    file_bundle_executable_rel_path: str | None = None
    file_bundle_name: str | None = None
    file_bundle_version: str | None = None
    file_bundle_version_string: str | None = None
    file_bundle_hash: str | None = None
    file_bundle_hash_millis: float | None = None
    file_bundle_binary_count: int | None = None
    pid: int | None = None
    ppid: int | None = None
    parent_name: str | None = None
    team_id: str | None = None
    signing_id: str | None = None
    """Santa's formatted form: `TEAMID:identifier` or `platform:identifier`."""
    cdhash: str | None = None
    quarantine_data_url: str | None = None
    quarantine_referer_url: str | None = None
    quarantine_timestamp: float | None = None
    quarantine_agent_bundle_id: str | None = None
    signing_chain: tuple[Certificate, ...] = ()
    # [N] fields 29–34.
    entitlements: tuple[tuple[str, str], ...] = ()
    """(key, JSON-encoded value) pairs as [N] uploads them (`encode_entitlements`)."""
    entitlements_filtered: bool = False
    cs_flags: int = 0
    signing_status: SigningStatus | None = None
    secure_signing_time: int | None = None
    signing_time: int | None = None
    static_rule: bool = False
    # santad's own bookkeeping.
    idx: int = field(default_factory=new_idx)
    needs_bundle_hash: bool = False

    @property
    def execution_time(self) -> float | None:
        """The wire `execution_time`: the occurrence date, absent for BUNDLE_BINARY."""
        return None if self.decision is Decision.BUNDLE_BINARY else self.occurrence_date

    @property
    def file_directory(self) -> str:
        """The wire `file_path`: the full path with its last component removed."""
        return _split_path(self.file_path)[0]

    @property
    def file_name(self) -> str:
        return _split_path(self.file_path)[1]

    @property
    def unique_id(self) -> str:
        """[N]'s `uniqueid` column for execution events: the file SHA-256."""
        return self.file_sha256

    @property
    def bundle_hash(self) -> str | None:
        return self.file_bundle_hash

    def uploaded_in(self, variant: Variant = DEFAULT_VARIANT) -> bool:
        """Whether that client uploads the event ([N] deletes events with no v1 decision unsent)."""
        return not (variant is Variant.NORTHPOLESEC and self.decision is Decision.UNKNOWN)

    def to_wire(self, variant: Variant = DEFAULT_VARIANT) -> dict[str, Any]:
        """The event's JSON object as `variant` uploads it, keys in proto field order."""
        if not self.uploaded_in(variant):
            raise ValueError(f"{variant} does not upload events with decision {self.decision}")
        return _to_wire(self, variant)

    def to_record(self) -> bytes:
        """The events.db `eventdata` blob."""
        return _to_record(self)

    @classmethod
    def from_record(cls, data: bytes) -> StoredEvent:
        """Decode an `eventdata` blob; raises EventDecodeError for anything else."""
        return _from_record(data)


def upload_body(
    events: Iterable[StoredEvent], machine_id: str, *, variant: Variant = DEFAULT_VARIANT
) -> dict[str, Any]:
    """The eventupload request body (§3.2): `events` (then `machine_id`, [G] ≥ 2024.6 and [N]).

    Events `variant` does not upload are left out. Protobuf-JSON omits an empty list and an
    empty string, so the keys can be missing; [G-JSON] always has `events` and never `machine_id`.
    """
    wire = wire_events(events, variant)
    if variant is Variant.GOOGLE_JSON:
        return {"events": wire}
    body: dict[str, Any] = {}
    if wire:
        body["events"] = wire
    if machine_id:
        body["machine_id"] = machine_id
    return body


# ---------------------------------------------------------------------------------------------
# Wire serialisation


def _number(value: float) -> int | float:
    """A double as JSON writers print it: an exactly integral value without a fraction."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _uint32(value: float | None) -> int:
    """A double stored into a uint32 proto field: truncated, wrapped, never negative."""
    if value is None or not math.isfinite(value) or value <= 0:
        return 0
    return int(value) & _UINT32


def _certificate_wire(cert: Certificate, variant: Variant) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = [("sha256", cert.sha256), ("cn", cert.cn), ("org", cert.org), ("ou", cert.ou)]
    if variant is Variant.GOOGLE_JSON:
        out = {k: v for k, v in pairs if v is not None}
        out["valid_from"] = cert.valid_from
        out["valid_until"] = cert.valid_until
        return out
    pairs += [("valid_from", _uint32(cert.valid_from)), ("valid_until", _uint32(cert.valid_until))]
    return {k: v for k, v in pairs if v}


def _to_wire(e: StoredEvent, variant: Variant) -> dict[str, Any]:
    g_json = variant is Variant.GOOGLE_JSON
    directory, name = _split_path(e.file_path)
    execution = e.decision is not Decision.BUNDLE_BINARY

    def process(value: Any) -> Any:  # BUNDLE_BINARY events carry no process or quarantine data (§4.4)
        return value if execution else None

    millis: int | float | str | None
    count: int | str | None
    if g_json:
        decision: str | None = e.decision.value  # "UNKNOWN" included
        millis = None if e.file_bundle_hash_millis is None else _number(e.file_bundle_hash_millis)
        count = e.file_bundle_binary_count
        # `@([nil timeIntervalSince1970])` is @0, so the timestamp is always sent.
        quarantine: int | float | None = _number(e.quarantine_timestamp or 0.0) if execution else 0
    else:
        decision = None if e.decision is Decision.UNKNOWN else e.decision.value
        millis, count = _uint32(e.file_bundle_hash_millis), _uint32(e.file_bundle_binary_count)
        if variant is Variant.GOOGLE_2024_6:  # uint64 fields: protobuf-JSON quotes 64-bit integers
            millis, count = (str(millis) if millis else 0), (str(count) if count else 0)
        quarantine = process(_uint32(e.quarantine_timestamp))
    pairs: list[tuple[str, Any]] = [
        ("file_sha256", e.file_sha256),
        ("file_path", directory),
        ("file_name", name),
        ("executing_user", process(e.executing_user)),
        ("execution_time", process(_number(e.occurrence_date))),
        ("logged_in_users", process(list(e.logged_in_users))),
        ("current_sessions", process(list(e.current_sessions))),
        ("decision", decision),
        ("file_bundle_id", e.file_bundle_id),
        ("file_bundle_path", e.file_bundle_path),
        ("file_bundle_executable_rel_path", e.file_bundle_executable_rel_path),
        ("file_bundle_name", e.file_bundle_name),
        ("file_bundle_version", e.file_bundle_version),
        ("file_bundle_version_string", e.file_bundle_version_string),
        ("file_bundle_hash", e.file_bundle_hash),
        ("file_bundle_hash_millis", millis),
        ("file_bundle_binary_count", count),
        ("pid", process(e.pid)),
        ("ppid", process(e.ppid)),
        ("parent_name", process(e.parent_name)),
        ("team_id", e.team_id),
        ("signing_id", e.signing_id),
        ("cdhash", e.cdhash),
        ("quarantine_data_url", process(e.quarantine_data_url)),
        ("quarantine_referer_url", process(e.quarantine_referer_url)),
        ("quarantine_timestamp", quarantine),
        ("quarantine_agent_bundle_id", process(e.quarantine_agent_bundle_id)),
        ("signing_chain", [_certificate_wire(c, variant) for c in e.signing_chain]),
    ]
    if g_json:  # only nil is left out
        return {k: v for k, v in pairs if v is not None}
    if variant is Variant.NORTHPOLESEC:
        # mutable_entitlement_info() is always called: the message is present, maybe empty.
        info: dict[str, Any] = {}
        if e.entitlements_filtered:
            info["entitlementsFiltered"] = True
        if e.entitlements:
            info["entitlements"] = [{"key": k, "value": v} for k, v in e.entitlements]
        status = e.signing_status if e.signing_status is not SigningStatus.UNSPECIFIED else None
        pairs += [
            ("entitlementInfo", info),
            ("csFlags", e.cs_flags & _UINT32),
            ("signingStatus", status.value if status else None),
            ("secureSigningTime", _uint32(e.secure_signing_time)),
            ("signingTime", _uint32(e.signing_time)),
            ("static_rule", e.static_rule),
        ]
    # protobuf-JSON leaves out empty strings and lists, zeros and false; a present message stays.
    return {k: v for k, v in pairs if v or k == "entitlementInfo"}


# ---------------------------------------------------------------------------------------------
# events.db record

_STR_FIELDS = (
    "executing_user",
    "file_bundle_id",
    "file_bundle_path",
    "file_bundle_executable_rel_path",
    "file_bundle_name",
    "file_bundle_version",
    "file_bundle_version_string",
    "file_bundle_hash",
    "parent_name",
    "team_id",
    "signing_id",
    "cdhash",
    "quarantine_data_url",
    "quarantine_referer_url",
    "quarantine_agent_bundle_id",
)
_INT_FIELDS = ("file_bundle_binary_count", "pid", "ppid", "secure_signing_time", "signing_time")
_FLOAT_FIELDS = ("file_bundle_hash_millis", "quarantine_timestamp")


def _to_record(e: StoredEvent) -> bytes:
    doc: dict[str, Any] = {
        "idx": e.idx,
        "file_sha256": e.file_sha256,
        "file_path": e.file_path,
        "occurrence_date": e.occurrence_date,
        "decision": e.decision.event_state,
        "needs_bundle_hash": e.needs_bundle_hash,
        "logged_in_users": list(e.logged_in_users),
        "current_sessions": list(e.current_sessions),
        "signing_chain": [c._asdict() for c in e.signing_chain],
        "entitlements": [{"key": k, "value": v} for k, v in e.entitlements],
        "entitlements_filtered": e.entitlements_filtered,
        "cs_flags": e.cs_flags,
        "static_rule": e.static_rule,
    }
    for name in (*_STR_FIELDS, *_INT_FIELDS, *_FLOAT_FIELDS):
        value = getattr(e, name)
        if value is not None:
            doc[name] = value
    if e.signing_status is not None:
        doc["signing_status"] = e.signing_status.value
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii")


class _Reader:
    """Typed access to a decoded record; any mismatch is an EventDecodeError."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        if key not in self.doc or self.doc[key] is None:
            if required:
                raise EventDecodeError(f"stored event has no {key!r}")
            return None
        value = self.doc[key]
        bad_bool = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
        if bad_bool or not isinstance(value, kind):
            raise EventDecodeError(f"stored event {key!r} is {type(value).__name__}, not {kind}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list) or []
        if not all(isinstance(v, str) for v in values):
            raise EventDecodeError(f"stored event {key!r} holds a non-string")
        return tuple(values)

    def objects(self, key: str) -> list[dict[str, Any]]:
        values = self.get(key, list) or []
        if not all(isinstance(v, dict) for v in values):
            raise EventDecodeError(f"stored event {key!r} holds a non-object")
        return values


def _from_record(data: bytes) -> StoredEvent:
    try:
        doc = json.loads(data)
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise EventDecodeError(f"stored event is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EventDecodeError(f"stored event is a JSON {type(doc).__name__}, not an object")
    r = _Reader(doc)
    idx = r.get("idx", int, required=True)
    if not 0 <= idx <= _UINT32:
        raise EventDecodeError(f"stored event idx {idx} is not an unsigned 32-bit value")
    occurrence = float(r.get("occurrence_date", (int, float), required=True))
    chain = []
    for c in r.objects("signing_chain"):
        cr = _Reader(c)
        chain.append(
            Certificate(
                sha256=cr.get("sha256", str, required=True),
                cn=cr.get("cn", str),
                org=cr.get("org", str),
                ou=cr.get("ou", str),
                valid_from=cr.get("valid_from", int, required=True),
                valid_until=cr.get("valid_until", int, required=True),
            )
        )
    entitlements = []
    for ent in r.objects("entitlements"):
        er = _Reader(ent)
        entitlements.append((er.get("key", str, required=True), er.get("value", str, required=True)))
    status = r.get("signing_status", str)
    try:
        signing_status = SigningStatus(status) if status is not None else None
    except ValueError as exc:
        raise EventDecodeError(f"stored event has an unknown signing_status {status!r}") from exc
    values: dict[str, Any] = {name: r.get(name, str) for name in _STR_FIELDS}
    values |= {name: r.get(name, int) for name in _INT_FIELDS}
    for name in _FLOAT_FIELDS:
        number = r.get(name, (int, float))
        values[name] = None if number is None else float(number)
    return StoredEvent(
        idx=idx,
        file_sha256=r.get("file_sha256", str, required=True),
        file_path=r.get("file_path", str, required=True),
        occurrence_date=occurrence,
        decision=Decision.from_event_state(r.get("decision", int, required=True)),
        needs_bundle_hash=bool(r.get("needs_bundle_hash", bool)),
        logged_in_users=r.strings("logged_in_users"),
        current_sessions=r.strings("current_sessions"),
        signing_chain=tuple(chain),
        entitlements=tuple(entitlements),
        entitlements_filtered=bool(r.get("entitlements_filtered", bool)),
        cs_flags=r.get("cs_flags", int) or 0,
        static_rule=bool(r.get("static_rule", bool)),
        signing_status=signing_status,
        **values,
    )


def wire_events(events: Iterable[StoredEvent], variant: Variant = DEFAULT_VARIANT) -> list[dict[str, Any]]:
    """The uploaded form of each event `variant` uploads, in order."""
    return [e.to_wire(variant) for e in events if e.uploaded_in(variant)]


def with_bundle_fields(event: StoredEvent, bundle_hash: BundleHash) -> StoredEvent:
    """The blocking event after hashing (§4.4): hash, count, millis and executable path copied
    on, its nearest-bundle path/id/name/versions and `idx` kept. No hash → unchanged (§6.6)."""
    if bundle_hash.bundle_hash is None:
        return event
    return replace(
        event,
        file_bundle_hash=bundle_hash.bundle_hash,
        file_bundle_binary_count=bundle_hash.binary_count,
        file_bundle_hash_millis=bundle_hash.hash_millis,
        file_bundle_executable_rel_path=bundle_hash.executable_rel_path,
    )
