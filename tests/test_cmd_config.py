"""`santacore config show` and `santacore config import PROFILE [-o FILE [--force]]`: Santa's
configuration profile (a .mobileconfig built here with plistlib) turned into TOML that `load_config`
reads back with the same values; the written file's mode and overwrite rules; bad values named by key."""

from __future__ import annotations

import json
import os
import plistlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.config.settings import Config, load_config
from santacore.santad.decisions import ClientMode
from santacore.sync.in_force import load_config_in_force
from santacore.sync.state import SyncState, load_state, save_state
from santacore.testing.server import SyncServer
from tests.sync_client import MACHINE

SYNC_URL = "https://sync.example.com/santa"
BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
OWNER = 'Ada "the admin" Lovelace\t\\ops\\'  # quotes, a tab and backslashes survive the TOML round trip


def _payload(domain: str = "com.northpolesec.santa") -> dict[str, Any]:
    return {
        "PayloadType": domain,
        "PayloadIdentifier": f"{domain}.test",
        "PayloadUUID": "7D3C6C2B-9C44-4C39-A7C2-2D7B3F1F0001",
        "PayloadVersion": 1,
        "ClientMode": 2,
        "SyncBaseURL": SYNC_URL,
        "MachineID": "MACHINE-0001",
        "MachineOwner": OWNER,
        "EnableAllEventUpload": True,
        "DisableUnknownEventUpload": 1,  # Santa reads a number as a boolean
        "EnablePageZeroProtection": False,
        "EnableBadSignatureProtection": True,
        "EnableTransitiveRules": True,
        "AllowedPathRegex": r"/opt/tools/.*\.app/",
        "BlockedPathRegex": '^/tmp/(evil|bad)\'s "dir"/',
        "StaticRules": [
            {
                "identifier": "platform:com.apple.curl",
                "policy": "BLOCKLIST",
                "rule_type": "SIGNINGID",
                "custom_msg": 'no "curl"\nhere',
            },
            {"identifier": "EQHXZ8M8AV", "policy": "ALLOWLIST", "rule_type": "TEAMID"},
        ],
        "EnableBundles": True,  # sync-server only: Santa ignores it in a profile
        "EnableSilentMode": True,  # a Santa key santacore does not use
    }


IMPORTED = {
    "ClientMode",
    "SyncBaseURL",
    "MachineID",
    "MachineOwner",
    "EnableAllEventUpload",
    "DisableUnknownEventUpload",
    "EnablePageZeroProtection",
    "EnableBadSignatureProtection",
    "EnableTransitiveRules",
    "AllowedPathRegex",
    "BlockedPathRegex",
    "StaticRules",
}


def _mobileconfig(path: Path, payload: dict[str, Any], *, fmt: plistlib.PlistFormat = plistlib.FMT_XML) -> Path:
    profile = {
        "PayloadType": "Configuration",
        "PayloadIdentifier": "com.example.santa-profile",
        "PayloadUUID": "7D3C6C2B-9C44-4C39-A7C2-2D7B3F1F0000",
        "PayloadVersion": 1,
        "PayloadDisplayName": "Santa",
        "PayloadContent": [{"PayloadType": "com.apple.dock", "PayloadUUID": "x", "orientation": "left"}, payload],
    }
    path.write_bytes(plistlib.dumps(profile, fmt=fmt))
    return path


def _expected(payload: dict[str, Any], tmp_path: Path) -> Config:
    """The Config the profile's santacore keys mean, with Santa's number-as-boolean reading."""
    values = {k: payload[k] for k in IMPORTED}
    values["DisableUnknownEventUpload"] = bool(values["DisableUnknownEventUpload"])
    return Config.from_values(values, source=tmp_path / "expected.toml")


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["config", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


# --- import ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["com.northpolesec.santa", "com.google.santa"])
@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY], ids=["xml", "binary"])
def test_import_prints_toml_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], domain: str, fmt: plistlib.PlistFormat
) -> None:
    payload = _payload(domain)
    profile = _mobileconfig(tmp_path / "santa.mobileconfig", payload, fmt=fmt)
    rc, out, err = _run(capsys, "import", profile)
    assert rc == 0
    assert set(tomllib.loads(out)) == IMPORTED
    written = tmp_path / "imported.toml"
    written.write_text(out, encoding="utf-8")
    config = load_config(written)
    assert config == _expected(payload, tmp_path)
    # The values themselves, as santacore reads them.
    assert config.client_mode is ClientMode.LOCKDOWN
    assert config.sync_base_url == SYNC_URL + "/"
    assert config.machine_id == "MACHINE-0001"
    assert config.machine_owner == OWNER
    assert config.enable_all_event_upload is True
    assert config.disable_unknown_event_upload is True
    assert config.enable_page_zero_protection is False
    assert config.enable_bad_signature_protection is True
    assert config.enable_transitive_rules is True
    assert config.allowed_path_regex is not None and config.blocked_path_regex is not None
    assert config.allowed_path_regex.pattern == "^" + payload["AllowedPathRegex"]
    assert config.blocked_path_regex.pattern == payload["BlockedPathRegex"]
    assert config.blocked_path_regex.match('/tmp/evil\'s "dir"/x')
    assert list(config.static_rules) == payload["StaticRules"]
    assert config.enable_bundles is False  # not taken from a profile
    # What was skipped is said on stderr, key by key.
    notes = err.splitlines()
    assert "not imported: EnableBundles: Santa does not read this key from a profile" in notes
    assert "not imported: EnableSilentMode: a Santa setting santacore does not use" in notes
    assert not any("PayloadUUID" in line or "orientation" in line for line in notes)


def test_import_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = _payload()
    profile = _mobileconfig(tmp_path / "santa.mobileconfig", payload)
    target = tmp_path / "santacore.toml"
    rc, out, _ = _run(capsys, "import", profile, "-o", target)
    assert (rc, out) == (0, f"Wrote {len(IMPORTED)} settings to {target}\n")
    assert target.stat().st_mode & 0o777 == 0o600
    assert load_config(target) == _expected(payload, tmp_path)
    _, printed, _ = _run(capsys, "import", profile)
    assert target.read_text(encoding="utf-8") == printed  # the same document as on stdout

    # An existing file is kept without --force...
    other = {**payload, "ClientMode": 1, "MachineID": "MACHINE-0002"}
    _mobileconfig(profile, other)
    before = target.read_bytes()
    rc, out, err = _run(capsys, "import", profile, "--output", target)
    assert (rc, out) == (1, "")
    assert f"{target} exists (use --force to replace it)" in err
    assert target.read_bytes() == before
    # ...and replaced with it, still private.
    target.chmod(0o644)
    rc, out, _ = _run(capsys, "import", profile, "-o", target, "--force")
    assert (rc, out) == (0, f"Wrote {len(IMPORTED)} settings to {target}\n")
    assert target.stat().st_mode & 0o777 == 0o600
    replaced = load_config(target)
    assert (replaced.client_mode, replaced.machine_id) == (ClientMode.MONITOR, "MACHINE-0002")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["santa.mobileconfig", "santacore.toml"]


def test_import_force_creates_a_missing_file_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _mobileconfig(tmp_path / "santa.mobileconfig", _payload())
    target = tmp_path / "new.toml"
    assert _run(capsys, "import", profile, "-o", target, "--force")[0] == 0
    assert target.stat().st_mode & 0o777 == 0o600


def test_import_plain_preferences_plist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plist = tmp_path / "com.northpolesec.santa.plist"
    plist.write_bytes(plistlib.dumps({"ClientMode": 1, "SyncBaseURL": SYNC_URL, "FullSyncInterval": 120}))
    rc, out, err = _run(capsys, "import", plist)
    assert rc == 0
    assert tomllib.loads(out) == {"ClientMode": 1, "SyncBaseURL": SYNC_URL}
    assert "not imported: FullSyncInterval: " in err


def test_import_skips_values_santa_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = {**_payload(), "ClientMode": "LOCKDOWN", "SyncBaseURL": "not a url"}
    rc, out, err = _run(capsys, "import", _mobileconfig(tmp_path / "p.mobileconfig", payload))
    assert rc == 0
    values = tomllib.loads(out)
    assert "ClientMode" not in values and "SyncBaseURL" not in values
    assert "not imported: ClientMode: " in err and "not imported: SyncBaseURL: " in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a property list", "not a property list"),
        (plistlib.dumps({"PayloadContent": [{"PayloadType": "com.apple.dock"}]}), "no com.northpolesec.santa"),
        (plistlib.dumps(["a", "list"]), "expected a dictionary"),
    ],
)
def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str) -> None:
    profile = tmp_path / "bad.mobileconfig"
    profile.write_bytes(content)
    target = tmp_path / "out.toml"
    rc, out, err = _run(capsys, "import", profile, "-o", target)
    assert (rc, out) == (1, "")
    assert err.startswith(f"santacore config import: {profile}: ") and message in err
    assert not target.exists()


def test_import_missing_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.mobileconfig"
    rc, out, err = _run(capsys, "import", missing)
    assert (rc, out) == (1, "")
    assert err.startswith(f"santacore config import: {missing}: ")


# --- show ------------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_show_prints_the_configuration_in_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    config = _write(
        tmp_path / "santacore.toml",
        f"ClientMode = 'lockdown'\nSyncBaseURL = {json.dumps(SYNC_URL)}\nStateDirectory = {json.dumps(str(state))}\n"
        'BlockedPathRegex = "/private/tmp/"\nEnableBundles = true\n'
        '[[StaticRules]]\nidentifier = "EQHXZ8M8AV"\npolicy = "BLOCKLIST"\nrule_type = "TEAMID"\n',
    )
    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, err) == (0, "")
    assert out.startswith(
        f"# santacore configuration in force\n# file: {config}\n# server: none (no sync has set any)\n"
    )
    values = tomllib.loads(out)
    assert values["ClientMode"] == 2
    assert values["SyncBaseURL"] == SYNC_URL + "/"
    assert values["StateDirectory"] == str(state)
    assert values["BlockedPathRegex"] == "^/private/tmp/"
    assert values["EnableBundles"] is True
    assert values["StaticRules"] == [{"identifier": "EQHXZ8M8AV", "policy": "BLOCKLIST", "rule_type": "TEAMID"}]
    shown = _write(tmp_path / "shown.toml", out)
    assert load_config(shown) == load_config(config)
    # Each key says where its value comes from; a key not set is a comment.
    lines = out.splitlines()
    assert "ClientMode = 2  # file" in lines and "EnablePageZeroProtection = true  # default" in lines
    assert "# MachineID: not set (default)" in lines and "[[StaticRules]]  # file" in lines
    assert "FullSyncInterval = 600  # default" in lines and "[SyncExtraHeaders]  # default" in lines


def test_show_reads_santacore_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _write(tmp_path / "env.toml", f"MachineID = 'FROM-ENV'\nStateDirectory = {json.dumps(str(tmp_path))}\n")
    monkeypatch.setenv("SANTACORE_CONFIG", str(config))
    rc, out, _ = _run(capsys, "show")
    assert rc == 0
    assert out.startswith(f"# santacore configuration in force\n# file: {config}\n")
    assert tomllib.loads(out)["MachineID"] == "FROM-ENV"
    monkeypatch.delenv("SANTACORE_CONFIG")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    rc, out, _ = _run(capsys, "show", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["MachineID"] == {"value": None, "source": "default"}
    if os.geteuid() != 0:
        assert doc["StateDirectory"] == {"value": str(tmp_path / "xdg" / "santacore"), "source": "default"}


def test_show_notes_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(
        tmp_path / "santacore.toml",
        f"StateDirectory = {json.dumps(str(tmp_path))}\nClientMod = 2\nEnableSilentMode = true\n",
    )
    rc, out, err = _run(capsys, "show", "--config", config)
    assert rc == 0
    assert "note: ClientMod: not a Santa or santacore setting (did you mean ClientMode?)" in err.splitlines()
    assert "note: EnableSilentMode: a Santa setting santacore does not use" in err.splitlines()
    assert tomllib.loads(out)["ClientMod"] == 2
    assert "ClientMod = 2  # file" in out.splitlines()
    doc = json.loads(_run(capsys, "show", "--config", config, "--json")[1])
    assert doc["ClientMod"] == {"value": 2, "source": "file"}
    assert doc["ClientMode"] == {"value": 1, "source": "default"}


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("ClientMode = 7", "ClientMode", "expected 1 (MONITOR), 2 (LOCKDOWN) or 3 (STANDALONE), got 7"),
        ('ClientMode = "paranoid"', "ClientMode", 'got "paranoid"'),
        ('SyncBaseURL = "ftp://sync.example.com/"', "SyncBaseURL", "expected an http(s) URL"),
        ('SyncBaseURL = "https://sync.example.com/?x=1"', "SyncBaseURL", "must not have a query"),
        ('BlockedPathRegex = "(unclosed"', "BlockedPathRegex", "invalid regular expression"),
        ('AllowedPathRegex = ""', "AllowedPathRegex", "empty pattern"),
        ('EnableBundles = "yes"', "EnableBundles", 'expected true or false, got "yes"'),
        ("EnablePageZeroProtection = 1", "EnablePageZeroProtection", "expected true or false, got 1"),
        ('MachineID = "a/b"', "MachineID", "must not contain"),
        ('StaticRules = ["BLOCKLIST"]', "StaticRules[0]", "expected a table"),
        ("FullSyncInterval = 5", "FullSyncInterval", "expected at least 60 seconds"),
        ('StateDirectory = ""', "StateDirectory", "must not be empty"),
    ],
)
def test_show_names_the_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, message: str
) -> None:
    config = _write(tmp_path / "santacore.toml", f"MachineOwner = 'fine'\n{text}\n")
    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, out) == (1, "")
    assert err.startswith(f"santacore config: {config}: {key}: "), err
    assert message in err
    assert len(err.splitlines()) == 1


def test_show_bad_sync_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "santacore.toml", f"StateDirectory = {json.dumps(str(tmp_path))}\n")
    (tmp_path / "sync-state.json").write_text('{"client_mode": 9}')
    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, out) == (1, "")
    assert err.startswith(f"santacore config: {tmp_path / 'sync-state.json'}: sync state has a bad value")


def test_show_malformed_toml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "santacore.toml", "ClientMode = 2\nSyncBaseURL = \n")
    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, out) == (1, "")
    assert re.match(rf"santacore config: {re.escape(str(config))}: line 2: invalid TOML", err)
    missing = tmp_path / "missing.toml"
    rc, out, err = _run(capsys, "show", "--config", missing)
    assert (rc, out, err) == (1, "", f"santacore config: {missing}: no such configuration file\n")


def test_subprocess_smoke(tmp_path: Path) -> None:
    payload = _payload()
    profile = _mobileconfig(tmp_path / "santa.mobileconfig", payload)
    target = tmp_path / "santacore.toml"
    base = [sys.executable, "-m", "santacore", "config"]
    done = subprocess.run(
        [*base, "import", str(profile), "-o", str(target)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, f"Wrote {len(IMPORTED)} settings to {target}\n"), done.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    done = subprocess.run([*base, "show", "--config", str(target)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    shown = _write(tmp_path / "shown.toml", done.stdout)
    assert load_config(shown) == load_config(target) == _expected(payload, tmp_path)


# --- show after a sync: the server's settings are in force ----------------------------------------------


def test_show_after_a_sync_that_set_lockdown(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real `santacore sync` against SyncServer, whose preflight sets LOCKDOWN (and more) over a file that
    says MONITOR: `config show` then shows what `check` decides with, each value with its source."""
    state = tmp_path / "state"
    with SyncServer(
        client_mode="LOCKDOWN", blocked_path_regex="^/private/var/tmp/", full_sync_interval=900, enable_bundles=True
    ) as server:
        config = _write(
            tmp_path / "santacore.toml",
            f"ClientMode = 1\nEnableBundles = false\nSyncBaseURL = {json.dumps(server.base_url)}\n"
            f"MachineID = {json.dumps(MACHINE)}\nStateDirectory = {json.dumps(str(state))}\n",
        )
        before = json.loads(_run(capsys, "show", "--config", config, "--json")[1])
        assert before["ClientMode"] == {"value": 1, "source": "file"}
        assert before["BlockedPathRegex"] == {"value": None, "source": "default"}
        capsys.readouterr()
        assert main(["sync", "--config", str(config)]) == 0, capsys.readouterr().err
    assert load_state(state / "sync-state.json").client_mode is ClientMode.LOCKDOWN  # what the sync left

    rc, out, err = _run(capsys, "show", "--config", config, "--json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["ClientMode"] == {"value": 2, "source": "server"}
    assert doc["BlockedPathRegex"] == {"value": "^/private/var/tmp/", "source": "server"}
    assert doc["FullSyncInterval"] == {"value": 900, "source": "server"}
    assert doc["EnableBundles"] == {"value": True, "source": "server"}
    assert doc["SyncBaseURL"] == {"value": server.base_url.rstrip("/") + "/", "source": "file"}
    assert doc["MachineID"] == {"value": MACHINE, "source": "file"}
    assert doc["StateDirectory"] == {"value": str(state), "source": "file"}
    assert doc["EnablePageZeroProtection"] == {"value": True, "source": "default"}
    assert doc["MachineOwner"] == {"value": None, "source": "default"}
    assert {entry["source"] for entry in doc.values()} == {"file", "server", "default"}

    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == [
        "# santacore configuration in force",
        f"# file: {config}",
        f"# server: the settings of the last sync, in {state / 'sync-state.json'} (they override the file)",
    ]
    assert "ClientMode = 2  # server" in lines
    assert 'BlockedPathRegex = "^/private/var/tmp/"  # server' in lines
    assert "EnableBundles = true  # server" in lines
    assert "# MachineOwner: not set (default)" in lines
    in_force = load_config_in_force(config).config
    assert load_config(_write(tmp_path / "shown.toml", out)) == in_force  # the TOML is the configuration in force

    # `check` decides with the same values: LOCKDOWN blocks an unknown binary.
    capsys.readouterr()
    assert main(["check", "--config", str(config), "--json", str(corpus / BINARYRULES / "goodbinary")]) == 3  # blocked
    decision = json.loads(capsys.readouterr().out)
    assert (decision["mode"], decision["decision"]) == ("LOCKDOWN", "BLOCK_UNKNOWN")


def test_show_server_settings_from_the_sync_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sync state as a sync writes it (`save_state`): a server value equal to the file's still counts as the
    server's, and a regex the server cleared ("") is not set, by the server."""
    state = tmp_path / "state"
    config = _write(
        tmp_path / "santacore.toml",
        f'ClientMode = 2\nAllowedPathRegex = "/opt/"\nStateDirectory = {json.dumps(str(state))}\n',
    )
    save_state(
        state / "sync-state.json",
        SyncState(
            client_mode=ClientMode.LOCKDOWN,
            allowed_path_regex="",
            enable_transitive_rules=True,
            full_sync_last_success=1718035512.5,
        ),
    )
    rc, out, err = _run(capsys, "show", "--config", config)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert "ClientMode = 2  # server" in lines
    assert "# AllowedPathRegex: not set (server)" in lines
    assert "EnableTransitiveRules = true  # server" in lines
    assert "EnableBundles = false  # default" in lines
    doc = json.loads(_run(capsys, "show", "--config", config, "--json")[1])
    assert doc["AllowedPathRegex"] == {"value": None, "source": "server"}
    assert [k for k, v in doc.items() if v["source"] == "server"] == [
        "ClientMode",
        "EnableTransitiveRules",
        "AllowedPathRegex",
    ]
