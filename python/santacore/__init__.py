"""santacore: Santa's identifiers and sync protocol, computed from the files alone.

`hash_bundle` resolves and hashes the bundle Santa would hash for a path; `hash_tree`
hashes any directory the same way; `sniff_macho` reads one file's Mach-O headers;
`file_info` is a file's full identity (hashes, signing IDs, cdhash, certificate chain), verified.
"""

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
from santacore.bundle import (
    Bundle,
    BundleHash,
    ancestor_bundle,
    bundle_at,
    hash_bundle,
    nearest_bundle,
    resolve_bundle_root,
)
from santacore.config import Config, ConfigError, load_config
from santacore.decisions import ClientMode, Decision
from santacore.errors import BundleError, MachOError, NotABundleError, SantacoreError, SignatureError, StoreError
from santacore.event_store import EventRow, EventStore
from santacore.events import StoredEvent, bundle_events, execution_event, file_event, upload_body
from santacore.fileinfo import FileInfo, FileInfoError, SliceSigning, file_info
from santacore.policy import DecisionResult, decide, decide_for_file
from santacore.rule_store import RuleStore
from santacore.rules import Identifiers, Rule, RuleError, RuleState, RuleType

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
