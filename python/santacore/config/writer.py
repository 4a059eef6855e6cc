"""TOML text of santacore's settings (`render_toml`) and the configuration file writer (`write_config`)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from santacore.config.keys import KEYS
from santacore.config.settings import Config, ConfigError

__all__ = ["render_toml", "write_config"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key, literal_ok=False)


def _toml_string(text: str, *, literal_ok: bool = True) -> str:
    if _SURROGATE.search(text):
        raise TypeError("a string with a lone surrogate (undecodable bytes) has no TOML form")
    if literal_ok and "\n" in text and "'''" not in text and not text.endswith("'"):
        if not _CONTROL.search(text.replace("\n", "")):
            return "'''\n" + text + "'''"
    if literal_ok and "\\" in text and "'" not in text and not _CONTROL.search(text):
        return "'" + text + "'"
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"{type(value).__name__} has no TOML form")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def render_toml(
    values: Mapping[str, Any], *, header: str | None = None, comments: Mapping[str, str] | None = None
) -> str:
    """`values` (Santa key names → TOML values) as a TOML document, known keys in the documented
    order, then the others; tables and arrays of tables last, as TOML requires.

    `comments` (key → text) end a key's line, or its table's header, as ``# text``. A None value
    is a key that is not set: TOML has no null, so it is a comment line (``# Key: not set (text)``)."""
    notes = comments or {}
    order = {spec.name: i for i, spec in enumerate(KEYS)}
    keys = sorted(values, key=lambda k: order.get(k, len(order)))
    lines = [f"# {line}".rstrip() for line in (header or "").splitlines()]
    tables: list[str] = []
    for key in keys:
        value = values[key]
        note = f"  # {notes[key]}" if key in notes else ""
        try:
            if value is None:
                lines.append(f"# {key}: not set" + (f" ({notes[key]})" if key in notes else ""))
            elif isinstance(value, Mapping):
                tables += ["", f"[{_toml_key(key)}]{note}"]
                tables += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
            elif _is_table_array(value):
                for entry in value:
                    tables += ["", f"[[{_toml_key(key)}]]{note}"]
                    tables += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items()]
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}{note}")
        except TypeError as exc:
            raise ConfigError(f"{key}: cannot be written as TOML: {exc}") from None
    text = "\n".join(lines + tables)
    return text.lstrip("\n") + "\n"


def write_config(
    path: str | os.PathLike[str],
    values: Mapping[str, Any],
    *,
    overwrite: bool = False,
    header: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Check `values` (they must load), then write them as TOML at `path` with mode 0600 (the file
    may hold a password). An existing file is replaced only with `overwrite`: FileExistsError."""
    target = Path(path)
    Config.from_values(values, source=target, environ=environ)
    text = render_toml(values, header=header).encode("utf-8")
    if not overwrite:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
