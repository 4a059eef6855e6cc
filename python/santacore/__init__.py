"""santacore: Santa's identifiers and sync protocol, computed from the files alone.

`hash_bundle` resolves and hashes the bundle Santa would hash for a path; `hash_tree`
hashes any directory the same way; `sniff_macho` reads one file's Mach-O headers;
`file_info` is a file's full identity (hashes, signing IDs, cdhash, certificate chain), verified.

Importing santacore loads the Rust engine only. Every other public name is imported from its
module the first time it is used (PEP 562), so a command pays only for what it touches: hashing
never loads LIEF or cryptography, a sync never loads LIEF.
"""

from __future__ import annotations

from importlib import import_module

from santacore._core import (
    BinaryFile,
    MachOInfo,
    MachOSlice,
    Progress,
    SkippedPath,
    TreeHash,
    TreeStats,
    __version__,
    arch_name,
    bundle_hash_from_hashes,
    hash_tree,
    sniff_macho,
    sniff_macho_bytes,
)
from santacore.errors import BundleError, MachOError, NotABundleError, SantacoreError, SignatureError, StoreError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:  # what mypy sees; at run time __getattr__ below imports these on first use
    from typing import Any

    from santacore.config.settings import Config, ConfigError, load_config
    from santacore.identity.bundle import (
        Bundle,
        BundleHash,
        ancestor_bundle,
        bundle_at,
        hash_bundle,
        nearest_bundle,
        resolve_bundle_root,
    )
    from santacore.identity.fileinfo import FileInfo, FileInfoError, SliceSigning, file_info
    from santacore.santad.decisions import ClientMode, Decision
    from santacore.santad.event_builders import bundle_events, execution_event, file_event
    from santacore.santad.event_store import EventRow, EventStore
    from santacore.santad.events import StoredEvent, upload_body
    from santacore.santad.policy import DecisionResult, PolicySettings, decide, decide_for_file
    from santacore.santad.rule_store import RuleStore
    from santacore.santad.rules import Identifiers, Rule, RuleError, RuleState, RuleType

# Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("Config", "ConfigError", "load_config"), "santacore.config.settings"),
    **dict.fromkeys(
        (
            "Bundle",
            "BundleHash",
            "ancestor_bundle",
            "bundle_at",
            "hash_bundle",
            "nearest_bundle",
            "resolve_bundle_root",
        ),
        "santacore.identity.bundle",
    ),
    **dict.fromkeys(("FileInfo", "FileInfoError", "SliceSigning", "file_info"), "santacore.identity.fileinfo"),
    **dict.fromkeys(("ClientMode", "Decision"), "santacore.santad.decisions"),
    **dict.fromkeys(("EventRow", "EventStore"), "santacore.santad.event_store"),
    **dict.fromkeys(("StoredEvent", "upload_body"), "santacore.santad.events"),
    **dict.fromkeys(("bundle_events", "execution_event", "file_event"), "santacore.santad.event_builders"),
    **dict.fromkeys(("DecisionResult", "PolicySettings", "decide", "decide_for_file"), "santacore.santad.policy"),
    "RuleStore": "santacore.santad.rule_store",
    **dict.fromkeys(("Identifiers", "Rule", "RuleError", "RuleState", "RuleType"), "santacore.santad.rules"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'santacore' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BinaryFile",
    "Bundle",
    "BundleError",
    "BundleHash",
    "ClientMode",
    "Config",
    "ConfigError",
    "Decision",
    "DecisionResult",
    "EventRow",
    "EventStore",
    "FileInfo",
    "FileInfoError",
    "Identifiers",
    "MachOError",
    "MachOInfo",
    "MachOSlice",
    "NotABundleError",
    "PolicySettings",
    "Progress",
    "Rule",
    "RuleError",
    "RuleState",
    "RuleStore",
    "RuleType",
    "SantacoreError",
    "SignatureError",
    "SkippedPath",
    "SliceSigning",
    "StoreError",
    "StoredEvent",
    "TreeHash",
    "TreeStats",
    "__version__",
    "ancestor_bundle",
    "arch_name",
    "bundle_at",
    "bundle_events",
    "bundle_hash_from_hashes",
    "decide",
    "decide_for_file",
    "execution_event",
    "file_event",
    "file_info",
    "hash_bundle",
    "hash_tree",
    "load_config",
    "nearest_bundle",
    "resolve_bundle_root",
    "sniff_macho",
    "sniff_macho_bytes",
    "upload_body",
]
