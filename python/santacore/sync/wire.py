"""The JSON encoder of Santa's sync client (spec §2.3): protobuf-JSON and [G-JSON], and the anti-XSSI prefix.

Protobuf's MessageToJsonString escaping and double formatting for the default variant, NSJSONSerialization's for
[G-JSON]; the anti-XSSI prefix a server may put before a response; and the non-JSON literals (`NaN`, `Infinity`)
that Santa's response readers refuse."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from santacore.santad.events import DEFAULT_VARIANT, Variant


def _escape_class(points: Iterable[int | tuple[int, int]]) -> re.Pattern[str]:
    parts = []
    for p in points:
        lo, hi = (p, p) if isinstance(p, int) else p
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return re.compile("[" + "".join(parts) + "]")


# protobuf json/internal/writer.cc `MustEscape`: the JSON-required escapes, `<` `>`, and invisible code points.
_PB_SHORT: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\f": "\\f", "\b": "\\b", "\\": "\\\\"}
_PB_ESCAPED: Final = _escape_class(
    [
        (0x0000, 0x001F),
        0x22,
        0x5C,
        0x3C,
        0x3E,
        (0x007F, 0x009F),
        0x00AD,
        (0x0600, 0x0603),
        0x06DD,
        0x070F,
        0x17B4,
        0x17B5,
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x206A, 0x206F),
        0xFEFF,
        (0xFFF9, 0xFFFB),
        (0xD800, 0xDFFF),  # lone surrogates: protobuf writes undecodable input as a space
        (0x1D173, 0x1D17A),
        0xE0001,
        (0xE0020, 0xE007F),
    ]
)
# NSJSONSerialization: `"`, `\`, `/` and the C0 controls.
_NS_SHORT: Final = {**_PB_SHORT, "/": "\\/"}
_NS_ESCAPED: Final = _escape_class([(0x0000, 0x001F), 0x22, 0x5C, 0x2F, (0xD800, 0xDFFF)])


def _u_escape(cp: int) -> str:
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def _pb_char(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _PB_SHORT:
        return _PB_SHORT[ch]
    cp = ord(ch)
    return " " if 0xD800 <= cp <= 0xDFFF else _u_escape(cp)


def _ns_char(match: re.Match[str]) -> str:
    ch = match.group()
    return _NS_SHORT.get(ch) or _u_escape(ord(ch))


def format_double(value: float) -> str:
    """A double as protobuf-JSON prints it (`io::SimpleDtoa`): `%.15g`, or `%.17g` if that does not read back."""
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    text = f"{value:.15g}"
    return text if float(text) == value else f"{value:.17g}"


def _ns_double(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"NSJSONSerialization cannot write {value!r}")
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value))
    return repr(value)


def encode_json(obj: object, variant: Variant = DEFAULT_VARIANT) -> bytes:
    """`obj` (dicts in the caller's key order, lists, str, int, float, bool, None) as `variant` serialises it."""
    ns = variant is Variant.GOOGLE_JSON
    escaped, char, double = (_NS_ESCAPED, _ns_char, _ns_double) if ns else (_PB_ESCAPED, _pb_char, format_double)
    out: list[str] = []

    def write(value: object) -> None:
        if value is None:
            out.append("null")
        elif value is True:
            out.append("true")
        elif value is False:
            out.append("false")
        elif isinstance(value, int):
            out.append(str(value))
        elif isinstance(value, float):
            out.append(double(value))
        elif isinstance(value, str):
            out.append('"' + escaped.sub(char, value) + '"')
        elif isinstance(value, Mapping):
            out.append("{")
            for i, (key, item) in enumerate(value.items()):
                if not isinstance(key, str):
                    raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
                out.append(("," if i else "") + '"' + escaped.sub(char, key) + '":')
                write(item)
            out.append("}")
        elif isinstance(value, list | tuple):
            out.append("[")
            for i, item in enumerate(value):
                if i:
                    out.append(",")
                write(item)
            out.append("]")
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as JSON")

    write(obj)
    return "".join(out).encode("utf-8")


_XSSI_PREFIXES: Final = (b")]}'\n", b"])}")  # §2.3: checked in this order, one removed


def strip_xssi(body: bytes) -> bytes:
    """§2.3: remove one anti-XSSI prefix, `)]}'\\n` first, else `])}`."""
    for prefix in _XSSI_PREFIXES:
        if body.startswith(prefix):
            return body[len(prefix) :]
    return body


def reject_constant(name: str) -> Any:
    """`json.loads(parse_constant=...)`: neither protobuf's nor NSJSONSerialization's parser takes `NaN`/`Infinity`."""
    raise ValueError(f"{name} is not JSON")
