"""Names Santa defines once: bundle layout rules and output labels."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Final

# Extensions a directory must have (exactly, case-sensitively) to be the highest-ancestor
# bundle that Santa hashes (spec §6.2). `appex`, `plugin`, `systemextension`... are not.
ANCESTOR_BUNDLE_EXTENSIONS: Final = frozenset({"app", "bundle", "framework", "kext", "xctest", "xpc"})

INFO_PLIST: Final = "Info.plist"
CF_BUNDLE_IDENTIFIER: Final = "CFBundleIdentifier"
CF_BUNDLE_EXECUTABLE: Final = "CFBundleExecutable"
CF_BUNDLE_DISPLAY_NAME: Final = "CFBundleDisplayName"
CF_BUNDLE_NAME: Final = "CFBundleName"
CF_BUNDLE_VERSION: Final = "CFBundleVersion"
CF_BUNDLE_SHORT_VERSION_STRING: Final = "CFBundleShortVersionString"

MH_EXECUTE: Final = 2

# What Objective-C's printf("%s", nil) shows, as `santactl bundleinfo` prints a missing value.
NULL_TEXT: Final = "(null)"
NOT_A_BUNDLE: Final = "Not a bundle"

# santactl's keys, in its default order; also the valid `--key` values.
FILEINFO_KEYS: Final = (
    "Path",
    "SHA-256",
    "SHA-1",
    "Bundle Name",
    "Bundle Version",
    "Bundle Version Str",
    "Download Referrer URL",
    "Download URL",
    "Download Timestamp",
    "Download Agent",
    "Team ID",
    "Signing ID",
    "CDHash",
    "Type",
    "Page Zero",
    "Code-signed",
    "Rule",
    "Signing Chain",
    "Universal Signing Chain",
)
