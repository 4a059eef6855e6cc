"""Property lists as Foundation reads them: which plistlib errors mean "malformed", a plist's top-level
dictionary, a value's `-description`, and the Info.plist values Santa reports (spec §7.4)."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping
from xml.parsers.expat import ExpatError

from santacore.identity import constants as C

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Any, Final

# What plistlib.loads raises for malformed input, XML or binary: ExpatError (XML syntax); ValueError
# (bad <integer>/<real>/<data>, unexpected elements, InvalidFileException, UnicodeDecodeError);
# LookupError (an unknown encoding declaration, a closing tag with nothing open: IndexError);
# TypeError and AttributeError (a <date> its regular expression only partly matches, or not at all);
# RecursionError (a binary plist nesting arrays deeper than the interpreter's recursion limit).
PLIST_ERRORS: Final = (ExpatError, ValueError, LookupError, TypeError, AttributeError, RecursionError)


def plist_dict(data: bytes) -> dict[str, Any] | None:
    """A plist's top-level dictionary (XML or binary), or None if it is malformed or not a
    dictionary — as Foundation returns nil."""
    try:
        value = plistlib.loads(data)
    except PLIST_ERRORS:
        return None
    return value if isinstance(value, dict) else None


def describe(value: Any) -> str | None:
    """Foundation's `-description` of a plist value, as Santa stringifies Info.plist values."""
    if value is None:
        return None
    if isinstance(value, bool):  # an NSNumber holding a BOOL describes itself as 1 or 0
        return "1" if value else "0"
    return str(value)


class InfoPlistValues:
    """The §7.4 values of an info dictionary (a bundle's Info.plist, or a binary's embedded
    `__info_plist`), for a class with an ``info`` attribute: `Bundle` and `FileInfo` alike."""

    info: Mapping[str, Any] | None

    @property
    def bundle_id(self) -> str | None:
        return describe(self.info.get(C.CF_BUNDLE_IDENTIFIER)) if self.info else None

    @property
    def bundle_name(self) -> str | None:
        """CFBundleDisplayName, else CFBundleName; empty strings count as missing."""
        for key in (C.CF_BUNDLE_DISPLAY_NAME, C.CF_BUNDLE_NAME):
            name = describe(self.info.get(key)) if self.info else None
            if name:
                return name
        return None

    @property
    def bundle_version(self) -> str | None:
        return describe(self.info.get(C.CF_BUNDLE_VERSION)) if self.info else None

    @property
    def bundle_version_string(self) -> str | None:
        return describe(self.info.get(C.CF_BUNDLE_SHORT_VERSION_STRING)) if self.info else None
