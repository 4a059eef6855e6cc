"""A catalog written out for other tools: JSON Lines and Parquet for analysis, `santactl fileinfo
--json` documents for Zentral's fileinfo ingestion, and rules for `santactl rule --import` and
Moroz's configuration.

Every writer takes the catalog's artifacts (`ArtifactResult`, as the store gives them back) and a
text or binary stream, streams them out (memory stays flat whatever the catalog's size; the rule
writers keep the distinct identifiers only) and returns what it wrote and what it left out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from santacore.errors import SantacoreError
from santacore.santad.rules import Rule, RuleError, RuleState, RuleType, rules_to_json

if TYPE_CHECKING:
    from santacore.catalog.model import ArtifactResult, BinaryRecord

FORMATS = ("jsonl", "parquet", "santactl-fileinfo", "rules-json", "moroz-toml")
RULE_TYPES = {
    "binary": RuleType.BINARY,
    "cdhash": RuleType.CDHASH,
    "signingid": RuleType.SIGNINGID,
    "teamid": RuleType.TEAMID,
    "certificate": RuleType.CERTIFICATE,
}
POLICIES = ("ALLOWLIST", "ALLOWLIST_COMPILER", "BLOCKLIST", "SILENT_BLOCKLIST", "REMOVE")
# Moroz parses `policy` into its own enum, which has no silent block (moroz santa/santa.go).
MOROZ_POLICIES = ("ALLOWLIST", "ALLOWLIST_COMPILER", "BLOCKLIST", "REMOVE")
PARQUET_EXTRA = "pip install 'santacore[export]'"
# What santad can take an identifier from: an unverifiable signature gives no signer (spec §7.3).
SIGNED = ("adhoc", "development", "production")
PARQUET_BATCH = 4096


class ExportError(SantacoreError):
    """An export that cannot be made: a missing optional library, a policy the target cannot hold."""


@dataclass
class ExportCount:
    """What an export wrote (`written`: lines, rows, documents or rules) and what it left out."""

    written: int = 0
    duplicates: int = 0
    lacking: int = 0  # binaries without the identifier the rule type needs
    not_executables: int = 0  # Mach-O files Santa never executes (dylibs, plug-ins): no rule


# ---------------------------------------------------------------- JSON Lines


def artifact_document(result: ArtifactResult) -> dict[str, Any]:
    """One artifact as plain JSON values: the catalog's fields, its bundles and its binaries."""
    return dataclasses.asdict(result)


def write_jsonl(results: Iterable[ArtifactResult], out: IO[str]) -> ExportCount:
    """One line per artifact (failed ones too, with their `error`), bundles and binaries nested."""
    count = ExportCount()
    for result in results:
        out.write(json.dumps(artifact_document(result), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count.written += 1
    return count


# ---------------------------------------------------------------- Parquet

# One row per binary: the flat table analysis tools want (pandas, DuckDB, Polars, Spark).
PARQUET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("artifact_path", "string"),
    ("artifact_sha256", "string"),
    ("artifact_size", "int64"),
    ("artifact_kind", "string"),
    ("bundle_path", "string"),
    ("bundle_hash", "string"),
    ("bundle_binary_count", "int64"),
    ("bundle_id", "string"),
    ("bundle_name", "string"),
    ("bundle_version", "string"),
    ("bundle_short_version", "string"),
    ("path", "string"),
    ("sha256", "string"),
    ("sha1", "string"),
    ("size", "int64"),
    ("type", "string"),
    ("architectures", "list<string>"),
    ("team_id", "string"),
    ("signing_id", "string"),
    ("cdhash", "string"),
    ("signing_status", "string"),
    ("leaf_cert_sha256", "string"),
    ("fileinfo", "string"),  # the whole `santacore fileinfo --json` document, as JSON text
)


def binary_rows(results: Iterable[ArtifactResult]) -> Iterator[dict[str, Any]]:
    """Every binary of every artifact as one flat row of PARQUET_COLUMNS."""
    for result in results:
        bundles = {b.path: b for b in result.bundles}
        for binary in result.binaries:
            bundle = bundles.get(binary.bundle_path) if binary.bundle_path is not None else None
            info = binary.fileinfo
            yield {
                "artifact_path": result.path,
                "artifact_sha256": result.sha256,
                "artifact_size": result.size,
                "artifact_kind": result.kind,
                "bundle_path": binary.bundle_path,
                "bundle_hash": bundle.bundle_hash if bundle else None,
                "bundle_binary_count": bundle.binary_count if bundle else None,
                "bundle_id": bundle.bundle_id if bundle else None,
                "bundle_name": bundle.name if bundle else None,
                "bundle_version": bundle.version if bundle else None,
                "bundle_short_version": bundle.short_version if bundle else None,
                "path": binary.path,
                "sha256": binary.sha256,
                "sha1": info.get("sha1"),
                "size": binary.size,
                "type": info.get("type"),
                "architectures": list(info.get("architectures") or []),
                "team_id": binary.team_id,
                "signing_id": binary.signing_id,
                "cdhash": binary.cdhash,
                "signing_status": binary.signing_status,
                "leaf_cert_sha256": binary.leaf_cert_sha256,
                "fileinfo": json.dumps(info, ensure_ascii=False, sort_keys=True),
            }


def write_parquet(results: Iterable[ArtifactResult], out: IO[bytes]) -> ExportCount:
    """One row per binary, written in row groups of PARQUET_BATCH so memory stays flat."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(f"--format parquet needs pyarrow: {PARQUET_EXTRA}") from None
    types = {"string": pa.string(), "int64": pa.int64(), "list<string>": pa.list_(pa.string())}
    schema = pa.schema([(name, types[kind]) for name, kind in PARQUET_COLUMNS])
    count = ExportCount()
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for row in binary_rows(results):
            batch.append(row)
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count.written += len(batch)
                batch.clear()
        if batch or count.written == 0:  # an empty catalog still gets a file with the schema
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count.written += len(batch)
    return count


# ---------------------------------------------------------------- santactl fileinfo --json

CERT_KEYS = ("SHA-256", "SHA-1", "Common Name", "Organization", "Organizational Unit", "Valid From", "Valid Until")


def santactl_date(seconds: object) -> str | None:
    """google/santa's `yyyy/MM/dd HH:mm:ss Z` (here in UTC): the form Zentral's ingestion parses
    (`%Y/%m/%d %H:%M:%S %z`); northpolesec's ISO 8601 would be refused there."""
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y/%m/%d %H:%M:%S +0000")


def _certificate(cert: Mapping[str, Any]) -> dict[str, str]:
    values = (
        cert.get("sha256"),
        cert.get("sha1"),
        cert.get("cn"),
        cert.get("org"),
        cert.get("ou"),
        santactl_date(cert.get("valid_from")),
        santactl_date(cert.get("valid_until")),
    )
    return {key: value for key, value in zip(CERT_KEYS, values, strict=True) if value is not None}


def santactl_fileinfo(path: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """santactl fileinfo --json's object for one binary (spec §7.6): its labels as keys, every
    scalar a string, nil values left out, `Signing Chain` leaf to root. `path` is the `Path`."""
    doc: dict[str, Any] = {
        "Path": path,
        "SHA-256": info.get("sha256"),
        "SHA-1": info.get("sha1"),
        "Bundle Name": info.get("bundle_name"),
        "Bundle Version": info.get("bundle_version"),
        "Bundle Version Str": info.get("bundle_version_string"),
        "Team ID": info.get("team_id"),
        "Signing ID": info.get("santa_signing_id"),
        "CDHash": info.get("cdhash"),
        "Type": info.get("type"),
        "Page Zero": "__PAGEZERO segment missing/bad!" if info.get("missing_pagezero") else None,
        "Code-signed": info.get("code_signed"),
    }
    chain = info.get("signing_chain")
    if chain:
        doc["Signing Chain"] = [_certificate(c) for c in chain]
    return {key: value for key, value in doc.items() if value is not None}


def member_path(result: ArtifactResult, binary: BinaryRecord) -> str:
    """Where a binary is, for a person or a server: the artifact's path, then the member's
    ("." is the artifact itself: a loose Mach-O)."""
    if binary.path in (".", ""):
        return result.path
    return f"{result.path.rstrip('/')}/{binary.path.lstrip('/')}"


def _nsjson(document: Mapping[str, Any]) -> str:
    # NSJSONSerialization's pretty form: two-space indent, `"key" : value`, `/` escaped.
    # A `/` only ever appears inside strings in JSON text, so the replacement is safe.
    return json.dumps(document, indent=2, separators=(",", " : "), ensure_ascii=False).replace("/", "\\/")


def write_santactl_fileinfo(results: Iterable[ArtifactResult], out: IO[str]) -> ExportCount:
    """`santactl fileinfo --json`'s array, one object per binary: `[\\n` + objects joined by
    `,\\n` + `\\n]\\n`, as santactl prints it."""
    count = ExportCount()
    out.write("[\n")
    for result in results:
        for binary in result.binaries:
            if count.written:
                out.write(",\n")
            out.write(_nsjson(santactl_fileinfo(member_path(result, binary), binary.fileinfo)))
            count.written += 1
    out.write("\n]\n")
    return count


# ---------------------------------------------------------------- rules


def is_executable(binary: BinaryRecord) -> bool:
    """MH_EXECUTE: what santad decides on (a dylib or plug-in is never executed by itself)."""
    return binary.fileinfo.get("kind") == "Executable"


def rule_identifier(binary: BinaryRecord, rule_type: RuleType) -> str | None:
    """The identifier a rule of `rule_type` would use for this binary, as `santactl rule --path`
    derives it (spec §8.6): none from a signature that does not verify."""
    if rule_type is RuleType.BINARY:
        return binary.sha256
    if binary.signing_status not in SIGNED:
        return None
    return {
        RuleType.CDHASH: binary.cdhash,
        RuleType.CERTIFICATE: binary.leaf_cert_sha256,
        RuleType.TEAMID: binary.team_id,
        RuleType.SIGNINGID: binary.signing_id,
    }[rule_type]


def catalog_rules(
    results: Iterable[ArtifactResult],
    rule_type: RuleType,
    state: RuleState,
    *,
    custom_msg: str | None = None,
    executables_only: bool = True,
) -> tuple[list[Rule], ExportCount]:
    """One validated rule per distinct identifier, in catalog order; the count says how many
    binaries were duplicates, lacked the identifier, or were not executables."""
    count = ExportCount()
    seen: set[str] = set()
    rules: list[Rule] = []
    for result in results:
        for binary in result.binaries:
            if executables_only and not is_executable(binary):
                count.not_executables += 1
                continue
            identifier = rule_identifier(binary, rule_type)
            if not identifier:
                count.lacking += 1
                continue
            try:
                rule = Rule.create(identifier, rule_type, state, custom_msg=custom_msg)
            except RuleError:  # a signing ID santad would refuse (e.g. not UTF-8): no rule either
                count.lacking += 1
                continue
            if rule.identifier in seen:
                count.duplicates += 1
                continue
            seen.add(rule.identifier)
            rules.append(rule)
    count.written = len(rules)
    return rules, count


def write_rules_json(rules: list[Rule], out: IO[str]) -> None:
    """`santactl rule --import FILE`'s document, as `santactl rule --export` writes it."""
    json.dump(rules_to_json(rules), out, indent=2, ensure_ascii=False)
    out.write("\n")


def moroz_rules(rules: list[Rule]) -> list[dict[str, str]]:
    """Moroz's `[[rules]]` entries (moroz santa/santa.go `Rule`: rule_type, policy, identifier,
    custom_msg); Moroz serves a rule as it reads it, so policies it has no name for are refused."""
    entries = []
    for rule in rules:
        if rule.state.policy not in MOROZ_POLICIES:
            raise ExportError(f"Moroz has no {rule.state.policy} policy (it knows {', '.join(MOROZ_POLICIES)})")
        entry = {"rule_type": rule.type.wire, "policy": rule.state.policy, "identifier": rule.identifier}
        if rule.custom_msg:
            entry["custom_msg"] = rule.custom_msg
        entries.append(entry)
    return entries


MOROZ_HEADER = """\
Santa rules for Moroz, from a santacore catalog. Add these [[rules]] to Moroz's global.toml
(or a <machine-id>.toml); the preflight settings (client_mode, batch_size, ...) stay yours."""


def write_moroz_toml(rules: list[Rule], out: IO[str]) -> None:
    from santacore.config.settings import ConfigError
    from santacore.config.writer import render_toml

    try:
        out.write(render_toml({"rules": moroz_rules(rules)} if rules else {}, header=MOROZ_HEADER))
    except ConfigError as e:  # a --message that is not text (undecodable bytes) has no TOML form
        raise ExportError(str(e)) from None
