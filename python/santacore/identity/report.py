"""How `santacore fileinfo` shows a FileInfo: `santactl fileinfo`'s text (labels, order
and layout of spec §7.5) and santacore's JSON document (stable snake_case keys, the
manifest's field names, every slice and what verification found)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from santacore.identity import constants as C

if TYPE_CHECKING:  # annotations only: rendering never needs LIEF or cryptography loaded by itself
    from santacore.identity.cms import CertificateInfo
    from santacore.identity.fileinfo import FileInfo, SliceSigning

KEYS = C.FILEINFO_KEYS
CHAIN_KEYS = ("Signing Chain", "Universal Signing Chain")
CERT_KEYS = ("SHA-256", "SHA-1", "Common Name", "Organization", "Organizational Unit", "Valid From", "Valid Until")
PAGE_ZERO_BAD = "__PAGEZERO segment missing/bad!"


def santa_date(seconds: int | None) -> str:
    """northpolesec/santa's format: ISO 8601 in UTC (google/santa printed local time)."""
    if seconds is None:
        return "null"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cert_values(c: CertificateInfo) -> list[tuple[str, str]]:
    values = (c.sha256, c.sha1, c.cn, c.org, c.ou, santa_date(c.valid_from), santa_date(c.valid_until))
    return [(k, v if v is not None else "null") for k, v in zip(CERT_KEYS, values, strict=True)]


def _chain_lines(chain: Sequence[CertificateInfo], indent: str = "") -> list[str]:
    lines: list[str] = []
    for i, cert in enumerate(chain, 1):
        if i > 1:
            lines.append("")
        for j, (key, value) in enumerate(_cert_values(cert)):
            lead = f"{indent}   {i:2d}. " if j == 0 else f"{indent}       "
            lines.append(f"{lead}{key:<20}: {value}")
    return lines


def _universal_entries(fi: FileInfo) -> list[tuple[str, SliceSigning]] | None:
    """Shown only when the primary chain is empty and the architectures disagree."""
    if fi.signing_chain or len({s.consistency_class() for s in fi.slices}) < 2:
        return None
    return [(s.arch, s) for s in fi.slices]


def _universal_lines(fi: FileInfo) -> list[str]:
    lines: list[str] = []
    for arch, s in _universal_entries(fi) or []:
        lines.append(f"  Architecture: {arch}")
        if s.chain and not s.adhoc:
            lines.extend(_chain_lines(s.chain, indent=""))
        else:
            lines.append(f"    {1:2d}. {'ad-hoc' if s.signature is not None else 'unsigned':<20}")
    return lines


# santactl fileinfo's `Rule` value for each decision santad can reach (spec §7.5); anything else is "None".
RULE_TEXT = {
    "ALLOW_UNKNOWN": "Allowed (Unknown)",
    "ALLOW_BINARY": "Allowed (Binary)",
    "ALLOW_CERTIFICATE": "Allowed (Certificate)",
    "ALLOW_SCOPE": "Allowed (Scope)",
    "ALLOW_TEAMID": "Allowed (TeamID)",
    "ALLOW_SIGNINGID": "Allowed (SigningID)",
    "ALLOW_CDHASH": "Allowed (CDHash)",
    "ALLOW_COMPILER": "Allowed (Compiler)",
    "ALLOW_TRANSITIVE": "Allowed (Transitive)",
    "BLOCK_UNKNOWN": "Blocked (Unknown)",
    "BLOCK_BINARY": "Blocked (Binary)",
    "BLOCK_CERTIFICATE": "Blocked (Certificate)",
    "BLOCK_SCOPE": "Blocked (Scope)",
    "BLOCK_TEAMID": "Blocked (TeamID)",
    "BLOCK_SIGNINGID": "Blocked (SigningID)",
    "BLOCK_CDHASH": "Blocked (CDHash)",
}
# The `Download …` keys: macOS quarantine data (extended attributes, LaunchServices), absent off macOS.
DOWNLOAD_KEYS = ("Download Referrer URL", "Download URL", "Download Timestamp", "Download Agent")


def rule_text(decision_name: str) -> str:
    """The `Rule` value for a decision's name (`DecisionResult.name`)."""
    return RULE_TEXT.get(decision_name, "None")


def text_values(fi: FileInfo, rule: str | None = None) -> dict[str, str | None]:
    """Every scalar key's value (None: the key is skipped, as santactl skips nil). `rule` is the
    `Rule` value (`rule_text`), None when no rule lookup was made."""
    return {
        "Path": fi.path,
        "SHA-256": fi.sha256,
        "SHA-1": fi.sha1,
        "Bundle Name": fi.bundle_name,
        "Bundle Version": fi.bundle_version,
        "Bundle Version Str": fi.bundle_version_string,
        # Quarantine data lives in macOS extended attributes and LaunchServices; absent here.
        "Download Referrer URL": None,
        "Download URL": None,
        "Download Timestamp": None,
        "Download Agent": None,
        "Team ID": fi.team_id,
        "Signing ID": fi.santa_signing_id,
        "CDHash": fi.cdhash,
        "Type": fi.type_string,
        "Page Zero": PAGE_ZERO_BAD if fi.missing_pagezero else None,
        "Code-signed": fi.code_signed,
        "Rule": rule,
    }


def render_text(fi: FileInfo, keys: Sequence[str] = KEYS, *, rule: str | None = None) -> str:
    """`santactl fileinfo`'s text for one file. One key (not a chain): just the value."""
    values = text_values(fi, rule)
    if len(keys) == 1 and keys[0] not in CHAIN_KEYS:
        value = values.get(keys[0])
        return f"{value}\n" if value is not None else ""
    width = max(len(k) for k in keys)
    lines: list[str] = []
    for key in keys:
        if key == "Signing Chain":
            if fi.signing_chain:
                lines.append("Signing Chain:")
                lines.extend(_chain_lines(fi.signing_chain))
        elif key == "Universal Signing Chain":
            if _universal_entries(fi):
                lines.append("Universal Signing Chain:")
                lines.extend(_universal_lines(fi))
        elif values.get(key) is not None:
            lines.append(f"{key:<{width}}: {values[key]}")
    return "\n".join(lines) + "\n\n"


def certificate_document(c: CertificateInfo) -> dict[str, Any]:
    return {
        "sha256": c.sha256,
        "sha1": c.sha1,
        "cn": c.cn,
        "org": c.org,
        "ou": c.ou,
        "ous": list(c.ous),
        "country": c.country,
        "issuer_cn": c.issuer_cn,
        "issuer_org": c.issuer_org,
        "valid_from": c.valid_from,
        "valid_until": c.valid_until,
        "valid_from_iso": santa_date(c.valid_from),
        "valid_until_iso": santa_date(c.valid_until),
        "serial": c.serial,
        "self_issued": c.self_issued,
        "production_signing_oids": list(c.production_signing_oids),
    }


def slice_document(s: SliceSigning) -> dict[str, Any]:
    sig = s.signature
    doc: dict[str, Any] = {"arch": s.arch, "signed": sig is not None}
    if sig is not None:
        doc.update(
            cdhash=sig.cdhash,
            signing_id=sig.signing_id,
            team_id=sig.team_id,
            santa_signing_id=sig.santa_signing_id,
            platform_binary=sig.platform_binary,
            flags=sig.flags,
            adhoc=sig.adhoc,
            linker_signed=sig.linker_signed,
            hardened_runtime=sig.hardened_runtime,
            chosen_hash_type=sig.chosen_hash_type,
            slots=[{"type": f"{x.type:#x}", "magic": f"{x.magic:#x}", "length": x.length} for x in sig.slots],
            code_directories=[
                {
                    "slot": f"{cd.slot_type:#x}",
                    "version": f"{cd.version:#x}",
                    "hash_type": cd.hash_type_name,
                    "identifier": cd.identifier,
                    "team_id": cd.team_id,
                    "cdhash": cd.cdhash,
                }
                for cd in sig.code_directories
            ],
            entitlements=s.entitlements,
            signing_chain=[certificate_document(c) for c in s.chain],
            signing_time=s.signing_time,
            secure_signing_time=s.secure_signing_time,
        )
    doc["verification"] = {
        "valid": s.valid,
        "code_pages_valid": s.code_pages_valid,
        "special_slots": {str(k): v for k, v in sorted(s.special_slots.items())},
        "cms_signature_valid": s.cms.signature_valid if s.cms else None,
        "anchor": s.cms.anchor if s.cms else None,
        "problems": list(s.problems),
    }
    return doc


def json_document(fi: FileInfo) -> dict[str, Any]:
    host = fi.host
    return {
        "path": fi.path,
        "size": fi.size,
        "sha256": fi.sha256,
        "sha1": fi.sha1,
        "type": fi.type_string,
        "kind": fi.kind,
        "is_macho": fi.macho.is_macho,
        "is_fat": fi.macho.is_fat,
        "architectures": fi.architectures,
        "missing_pagezero": fi.missing_pagezero,
        "bundle_path": fi.bundle.path if fi.bundle else None,
        "bundle_id": fi.bundle_id,
        "bundle_name": fi.bundle_name,
        "bundle_version": fi.bundle_version,
        "bundle_version_string": fi.bundle_version_string,
        "host_arch": fi.host_arch,
        "team_id": fi.team_id,
        "signing_id": fi.signing_id,
        "santa_signing_id": fi.santa_signing_id,
        "cdhash": fi.cdhash,
        "platform_binary": fi.platform_binary,
        "entitlements": fi.entitlements,
        # The host slice's chain, as the manifest's *_by_host fields: None unsigned, [] ad-hoc.
        "signing_chain": [certificate_document(c) for c in host.chain] if host and host.signature else None,
        "signing_time": host.signing_time if host else None,
        "secure_signing_time": host.secure_signing_time if host else None,
        "signed": any(s.signature is not None for s in fi.slices),
        "slots_present": {f"{x.type:#x}": True for x in host.signature.slots} if host and host.signature else None,
        "signing_consistency": fi.consistency,
        "signing_status": fi.signing_status,
        "code_signed": fi.code_signed,
        "slices": [slice_document(s) for s in fi.slices],
    }
