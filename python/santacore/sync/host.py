"""This host to the sync server (spec §2.1, §3.1): the machine ID, the preflight's facts, `santa_version`.

Decisions (santacore's, not Santa's):

* `santa_version` (preflight key 6, also fit for the User-Agent): `default_santa_version()`, `"2024.9.<build>"`.
  Servers gate on it (Zentral sends `sync_type` only to ≥ 2024.1 and old-style `sha256` rules to very old
  clients, and parses it as dot-separated integers), so it names the Santa release whose wire format santacore
  emits (2024.8+ protobuf-JSON; 2024.9 is the spec's own example) and carries santacore's version in the build
  number: `major * 1_000_000 + minor * 1_000 + patch` (santacore 0.1.0 → `2024.9.1000`). Pass `santa_version=`
  to override.
* Host facts on Linux: `serial_num` is the machine ID (no per-host serial is reliably readable without root, and
  DMI placeholders such as "To Be Filled By O.E.M." would merge hosts on servers keyed by serial); `os_version` is
  `/etc/os-release` VERSION_ID when it is dotted digits, else the numeric part of the kernel release (Zentral
  rejects non-numeric versions); `os_build` is the kernel release (`uname -r`); `model_identifier` is the DMI
  product name when readable, else empty (omitted). On macOS they are Santa's sources (SystemVersion.plist,
  `hw.model`, IOPlatformSerialNumber).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import plistlib
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from santacore._core import __version__ as _SANTACORE_VERSION

if TYPE_CHECKING:
    from santacore.config.settings import Config

SANTA_RELEASE: Final = "2024.9"
MACHINE_ID_FILE: Final = "/etc/machine-id"


def resolve_machine_id(config: Config) -> str | None:
    """The machine ID a sync uses: the configured MachineID (or its MachineIDPlist), else the systemd machine ID
    in `MACHINE_ID_FILE` (§2.1 santacore guidance); None when there is neither."""
    configured = config.configured_machine_id()
    if configured:
        return configured
    try:
        with open(MACHINE_ID_FILE, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def default_santa_version(core_version: str = _SANTACORE_VERSION) -> str:
    """The `santa_version` santacore reports: `<SANTA_RELEASE>.<build>` (module docstring)."""
    numbers = [int(m.group()) if (m := re.match(r"\d+", part)) else 0 for part in core_version.split(".")[:3]]
    major, minor, patch = [*numbers, 0, 0, 0][:3]
    return f"{SANTA_RELEASE}.{major * 1_000_000 + minor * 1_000 + patch}"


@dataclass(frozen=True)
class HostFacts:
    """The preflight's machine description (§3.1 fields 1–5). `serial_number` None → the machine ID is sent."""

    hostname: str = ""
    os_version: str = ""
    os_build: str = ""
    model_identifier: str = ""
    serial_number: str | None = None

    @classmethod
    def current(cls) -> HostFacts:
        """This host's facts (macOS: Santa's sources; elsewhere: see the module docstring). Never raises."""
        hostname = _safe(socket.gethostname, "")
        if platform.system() == "Darwin":
            return _darwin_facts(hostname)
        os_release = ""
        for path in ("/etc/os-release", "/usr/lib/os-release"):
            os_release = _read_text(path)
            if os_release:
                break
        return linux_host_facts(
            hostname=hostname,
            os_release=os_release,
            kernel_release=platform.release(),
            product_name=_read_text("/sys/class/dmi/id/product_name"),
        )


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except (OSError, ValueError, UnicodeError, subprocess.SubprocessError):
        return default


def _read_text(path: str) -> str:
    return str(_safe(lambda: Path(path).read_text(encoding="utf-8", errors="replace"), ""))


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5) assignments, shell quoting removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = re.sub(r"\\(.)", r"\1", value[1:-1]) if value[0] == '"' else value[1:-1]
        values[key.strip()] = value
    return values


def linux_host_facts(*, hostname: str, os_release: str, kernel_release: str, product_name: str) -> HostFacts:
    """Host facts from Linux sources (module docstring): pure, for `HostFacts.current` and tests."""
    version = parse_os_release(os_release).get("VERSION_ID", "")
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        match = re.match(r"\d+(\.\d+)*", kernel_release)
        version = match.group() if match else ""
    return HostFacts(
        hostname=hostname,
        os_version=version,
        os_build=kernel_release.strip(),
        model_identifier=product_name.strip(),
        serial_number=None,
    )


def _darwin_facts(hostname: str) -> HostFacts:
    def system_version() -> dict[str, Any]:
        with open("/System/Library/CoreServices/SystemVersion.plist", "rb") as f:
            data = plistlib.load(f)
        return data if isinstance(data, dict) else {}

    def model() -> str:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        size = ctypes.c_size_t(0)
        if libc.sysctlbyname(b"hw.model", None, ctypes.byref(size), None, 0) != 0:
            return ""
        buf = ctypes.create_string_buffer(size.value)
        if libc.sysctlbyname(b"hw.model", buf, ctypes.byref(size), None, 0) != 0:
            return ""
        return buf.value.decode("utf-8", "replace")

    def serial() -> str | None:
        out = subprocess.run(
            ["/usr/sbin/ioreg", "-c", "IOPlatformExpertDevice", "-d", "2"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        match = re.search(r'"IOPlatformSerialNumber" = "([^"]*)"', out)
        return match.group(1) if match and match.group(1) else None

    sv = _safe(system_version, {})
    return HostFacts(
        hostname=hostname,
        os_version=str(sv.get("ProductVersion", "")),
        os_build=str(sv.get("ProductBuildVersion", "")),
        model_identifier=str(_safe(model, "")),
        serial_number=_safe(serial, None),
    )
