"""Events built from a file's identity, as santad and santabundleservice build them (spec §4.4, §5.4, §6.6).

`execution_event` is the event santad records for an execution, `file_event` the one
`santactl eventupload` makes for a file, `bundle_events` the BUNDLE_BINARY events of a bundle hash;
`static_cs_flags` and `encode_entitlements` are the runtime flags and [N] entitlements they carry.
The model and its codecs are `santacore.santad.events`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from santacore.identity.bundle import BundleHash
from santacore.identity.fileinfo import FileInfo, FileInfoError, Host, file_info
from santacore.santad.decisions import Decision
from santacore.santad.events import DISTANT_FUTURE, Certificate, SigningStatus, StoredEvent
from santacore.santad.sessions import (
    CS_DEV_CODE,
    CS_HARD,
    CS_KILL,
    CS_PLATFORM_BINARY,
    CS_SIGNED,
    CS_VALID,
    ExecutionContext,
)

# CodeDirectory flags the kernel copies into a process's flags (CS_ALLOWED_MACHO).
_CS_ALLOWED_MACHO = 0x2 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x10000 | 0x20000
# [N] EncodeEntitlementsCommon: at most 64 entitlements, nested values 5 levels deep.
MAX_ENTITLEMENTS = 64
_MAX_ENTITLEMENT_LEVELS = 5


def signing_status(fi: FileInfo) -> SigningStatus:
    """[N]'s status of `FileInfo.signing_status` (unsigned, invalid, adhoc, development, production)."""
    return SigningStatus("SIGNING_STATUS_" + fi.signing_status.upper())


def _standardized(obj: Any, level: int) -> Any:
    """[N] StandardizedNestedObjects: data → base64, dates → ISO 8601, deep values → text."""
    if level == 0:
        return str(obj)
    level -= 1
    if isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list | tuple):
        return [_standardized(v, level) for v in obj]
    if isinstance(obj, dict):
        return {k: _standardized(v, level) for k, v in obj.items()}
    if isinstance(obj, bytes | bytearray):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, datetime | date):
        moment = obj if isinstance(obj, datetime) else datetime(obj.year, obj.month, obj.day)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return str(obj)


def encode_entitlements(
    entitlements: Mapping[str, Any] | None, *, filtered: bool = False
) -> tuple[tuple[tuple[str, str], ...], bool]:
    """[N]'s EncodeEntitlementsCommon: up to 64 (key, compact-JSON value) pairs in the
    dictionary's order, and whether the set is incomplete. NSJSONSerialization escapes `/`."""
    if not entitlements:
        return (), filtered
    standardized = _standardized(dict(entitlements), _MAX_ENTITLEMENT_LEVELS)
    pairs = []
    for key, value in list(standardized.items())[:MAX_ENTITLEMENTS]:
        if not isinstance(key, str):
            continue
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        pairs.append((key, text.replace("/", "\\/")))
    return tuple(pairs), filtered or len(standardized) > MAX_ENTITLEMENTS


def _certificates(fi: FileInfo) -> tuple[Certificate, ...]:
    return tuple(Certificate(c.sha256, c.cn, c.org, c.ou, c.valid_from, c.valid_until) for c in fi.signing_chain)


def static_cs_flags(fi: FileInfo) -> int:
    """Best-effort runtime flags of a process started from `fi`, from the file alone: the
    CodeDirectory flags the kernel adopts, CS_SIGNED, CS_VALID unless the signature fails, and
    CS_PLATFORM_BINARY. macOS may add more at exec (pass the real flags when known)."""
    host = fi.host
    if host is None or host.signature is None:
        return 0
    flags = (host.signature.flags & _CS_ALLOWED_MACHO) | CS_SIGNED
    if fi.signing_status != "invalid":
        flags |= CS_VALID
    if host.signature.platform_binary:
        flags |= CS_PLATFORM_BINARY
    return flags


def _signing_extras(fi: FileInfo) -> dict[str, Any]:
    """The [N] fields a file's signature provides (29, 31–33)."""
    host = fi.host
    entitlements, filtered = encode_entitlements(fi.entitlements)
    return {
        "entitlements": entitlements,
        "entitlements_filtered": filtered,
        "signing_status": signing_status(fi),
        "signing_time": host.signing_time if host else None,
        "secure_signing_time": host.secure_signing_time if host else None,
    }


def execution_event(
    fi: FileInfo,
    decision: Decision,
    *,
    context: ExecutionContext | None = None,
    now: float | None = None,
    needs_bundle_hash: bool = False,
    static_rule: bool = False,
) -> StoredEvent:
    """The event santad records for an execution of `fi` (§4.1, §5.4, §7.3). `static_rule`: the deciding rule
    came from StaticRules, not rules.db ([N] field 34).

    Bundle fields describe the *nearest* bundle. Team ID and Signing ID are absent when the
    signature is unsigned/invalid or development-signed; the cdhash only when the process is
    CS_SIGNED + CS_VALID with CS_KILL or CS_HARD and the signature verifies.
    """
    if decision is Decision.BUNDLE_BINARY:
        raise ValueError("BUNDLE_BINARY events come from bundle_events()")
    ctx = context or ExecutionContext()
    flags = static_cs_flags(fi) if ctx.cs_flags is None else ctx.cs_flags
    status = fi.signing_status
    verified = status not in ("unsigned", "invalid")
    chain = _certificates(fi) if verified else ()
    development = bool(fi.signing_chain and fi.signing_chain[0].is_development) or bool(flags & CS_DEV_CODE)
    keep_ids = verified and not development
    enforced = flags & CS_SIGNED and flags & CS_VALID and flags & (CS_KILL | CS_HARD)
    cdhash = fi.cdhash if verified and enforced else ("" if status == "unsigned" else None)
    return StoredEvent(
        file_sha256=fi.sha256,
        file_path=fi.path,
        decision=decision,
        occurrence_date=time.time() if now is None else now,
        executing_user=ctx.executing_user,
        logged_in_users=ctx.logged_in_users,
        current_sessions=ctx.current_sessions,
        file_bundle_id=fi.bundle_id,
        file_bundle_path=fi.bundle.path if fi.bundle else None,
        file_bundle_name=fi.bundle_name,
        file_bundle_version=fi.bundle_version,
        file_bundle_version_string=fi.bundle_version_string,
        pid=ctx.pid,
        ppid=ctx.ppid,
        parent_name=ctx.parent_name,
        team_id=fi.team_id if keep_ids else None,
        signing_id=fi.santa_signing_id if keep_ids else None,
        cdhash=cdhash,
        signing_chain=chain,
        cs_flags=flags,
        needs_bundle_hash=needs_bundle_hash,
        static_rule=static_rule,
        **_signing_extras(fi),
    )


def _file_signing(fi: FileInfo) -> dict[str, Any]:
    """Signing values of a non-execution event (§4.1 row 23): a CodeDirectory's values count
    even when validation failed; a universal binary failing the all-architectures check has
    none; unsigned code has an empty cdhash."""
    if fi.consistency == "inconsistent":
        signing: dict[str, Any] = {}
    elif fi.consistency == "unsigned":
        signing = {"cdhash": ""}
    else:
        signing = {"team_id": fi.team_id, "signing_id": fi.santa_signing_id, "cdhash": fi.cdhash}
    return {**signing, "signing_chain": _certificates(fi), **_signing_extras(fi)}


def file_event(fi: FileInfo) -> StoredEvent:
    """The non-execution event `santactl eventupload` makes for one file: decision
    BUNDLE_BINARY, the file's own signing values, its nearest bundle's metadata."""
    return StoredEvent(
        file_sha256=fi.sha256,
        file_path=fi.path,
        decision=Decision.BUNDLE_BINARY,
        occurrence_date=DISTANT_FUTURE,
        file_bundle_id=fi.bundle_id,
        file_bundle_path=fi.bundle.path if fi.bundle else None,
        file_bundle_name=fi.bundle_name,
        file_bundle_version=fi.bundle_version,
        file_bundle_version_string=fi.bundle_version_string,
        **_file_signing(fi),
    )


def _bundle_binary_event(path: str, sha256: str, bh: BundleHash, host: Host) -> StoredEvent:
    root = bh.bundle
    common: dict[str, Any] = {
        "file_sha256": sha256,
        "file_path": path,
        "decision": Decision.BUNDLE_BINARY,
        "occurrence_date": DISTANT_FUTURE,
        "file_bundle_path": root.path,
        "file_bundle_id": root.bundle_id,
        "file_bundle_name": root.bundle_name,
        "file_bundle_version": root.bundle_version,
        "file_bundle_version_string": root.bundle_version_string,
        "file_bundle_executable_rel_path": bh.executable_rel_path,
        "file_bundle_hash": bh.bundle_hash,
        "file_bundle_binary_count": bh.binary_count,
        "file_bundle_hash_millis": bh.hash_millis,
    }
    try:
        fi = file_info(path, host=host)
    except (FileInfoError, OSError):
        return StoredEvent(**common)  # the file went away after hashing: no signature values
    return StoredEvent(**common, **_file_signing(fi))


def bundle_events(bundle_hash: BundleHash, *, host: Host = "apple-silicon") -> list[StoredEvent]:
    """The BUNDLE_BINARY events of a bundle hash (§4.4, §6.6): one per distinct binary, each
    with the ancestor bundle's metadata and its own signing values; empty without a hash.
    `host` picks the slice whose signature each event reports. No process data (§4.4)."""
    if bundle_hash.bundle_hash is None:
        return []
    return [_bundle_binary_event(b.path, b.sha256, bundle_hash, host) for b in bundle_hash.unique_binaries()]
