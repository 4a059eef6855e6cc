"""`santacore testing serve` as a person runs it: a subprocess, its stdout, stderr and exit status."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from santacore.testing import SyncServer
from santacore.testing.cli import build_parser
from santacore.testing.rule_format import rule_problems

MID = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"
SHA = "3c5e1a0f9d2b7e4c6a8f0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"
PREFLIGHT = {
    "serial_num": "C02XK1ABCDEF",
    "hostname": "mac-17.corp.example.com",
    "os_version": "14.6.1",
    "os_build": "23G93",
    "model_identifier": "Mac14,2",
    "santa_version": "2024.9.674285143",
    "primary_user": "alice",
    "client_mode": "MONITOR",
}
EVENT = {"file_sha256": SHA, "file_path": "/Applications", "file_name": "Acme", "decision": "BLOCK_UNKNOWN"}
CLI = [sys.executable, "-m", "santacore", "testing", "serve"]


def rule(n: int, **extra: Any) -> dict[str, Any]:
    return {"identifier": f"{n:064x}", "policy": "BLOCKLIST", "rule_type": "BINARY", **extra}


class Served:
    """A running `santacore testing serve`: its base URL; `stop()` returns (exit status, stderr)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        assert self.base_url.startswith("http://127.0.0.1:"), self.stop()
        host_port = self.base_url.split("//", 1)[1].split("/", 1)[0]
        self.address = ("127.0.0.1", int(host_port.rsplit(":", 1)[1]))

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30, env=os.environ)


def reset_after(address: tuple[str, int], data: bytes, *, read: bool) -> None:
    """Send `data`, maybe read the start of the answer, then abort the connection (TCP RST)."""
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(data)
        if read:
            s.recv(64)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def raw_post(path: str, body: dict[str, Any], **headers: str) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def disconnect_every_way(served: Served, path: str, **headers: str) -> None:
    request = raw_post(path, PREFLIGHT, **headers)
    reset_after(served.address, request, read=True)  # answered, then reset while kept alive
    reset_after(served.address, request[:40], read=False)  # reset in the middle of the headers
    reset_after(served.address, request[:-10], read=False)  # reset in the middle of the body
    reset_after(served.address, request, read=False)  # reset before the answer is read
    time.sleep(0.3)


def test_serve_logs_each_request_and_no_traceback_when_clients_disconnect(client: httpx.Client, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([rule(1), rule(2)]))
    served = Served("--require-xsrf", "--rules", str(rules), "--sync-type", "clean")
    try:
        base = served.base_url
        disconnect_every_way(served, f"/preflight/{MID}")
        token = client.post(f"{base}xsrf/{MID}").headers["X-XSRF-TOKEN"]
        auth = {"X-XSRF-TOKEN": token}
        assert client.post(f"{base}preflight/{MID}", json=PREFLIGHT, headers=auth).json()["sync_type"] == "CLEAN"
        assert client.post(f"{base}eventupload/{MID}", json={"events": [EVENT, EVENT]}, headers=auth).is_success
        assert len(client.post(f"{base}ruledownload/{MID}", json={}, headers=auth).json()["rules"]) == 2
        postflight = {"rules_received": 2, "rules_processed": 2}
        assert client.post(f"{base}postflight/{MID}", json=postflight, headers=auth).is_success
        disconnect_every_way(served, f"/postflight/{MID}", **auth)
    finally:
        status, err = served.stop()
    assert status == 0
    assert "Traceback" not in err and "ConnectionResetError" not in err
    lines = err.splitlines()
    assert any(f"preflight machine={MID} status=403 error='missing or invalid XSRF token'" in line for line in lines)
    assert any(f"xsrf machine={MID} status=200" in line for line in lines)
    assert any(f"preflight machine={MID} status=200 sync_type=CLEAN client_mode=MONITOR" in line for line in lines)
    assert any(f"eventupload machine={MID} status=200 events_received=2" in line for line in lines)
    assert any(f"ruledownload machine={MID} status=200 rules_served=2" in line for line in lines)
    assert any(f"postflight machine={MID} status=200 rules_received=2 rules_processed=2" in line for line in lines)
    assert any("client disconnected before sending its whole body" in line for line in lines)


def test_serve_zentral_401_and_disconnects_print_no_traceback(client: httpx.Client) -> None:
    served = Served("--profile", "zentral", "--enrollment-secret", "s3cret")
    try:
        assert client.post(f"{served.base_url}preflight/{MID}", json=PREFLIGHT).status_code == 401
        disconnect_every_way(served, f"/preflight/{MID}")
        disconnect_every_way(served, f"/preflight/{MID}", **{"Zentral-Authorization": "Bearer s3cret"})
    finally:
        status, err = served.stop()
    assert status == 0
    assert "Traceback" not in err
    assert f"preflight machine={MID} status=401 error='Unauthorized'" in err
    assert f"preflight machine={MID} status=200 sync_type=CLEAN" in err  # a newly enrolled machine: clean sync


def test_serve_quiet_logs_no_requests(client: httpx.Client) -> None:
    served = Served("--quiet")
    try:
        assert client.post(f"{served.base_url}preflight/{MID}", json=PREFLIGHT).is_success
    finally:
        status, err = served.stop()
    assert status == 0 and "preflight" not in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--client-mode", "BOGUS"], "argument --client-mode: invalid choice: 'BOGUS'"),
        (["--sync-type", "sometimes"], "argument --sync-type: invalid choice: 'SOMETIMES'"),
        (["--profile", "nope"], "argument --profile: invalid choice: 'nope'"),
        (["--port", "70000"], "argument --port: must be 0 to 65535, got 70000"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["--page-size", "x"], "argument --page-size: expected a whole number, got 'x'"),
        (["--allowed-path-regex", "(unclosed"], "argument --allowed-path-regex: '(unclosed' is not a valid regular"),
        (["--xsrf-header", "bad header"], "argument --xsrf-header: 'bad header' is not a valid HTTP header name"),
        (["--quirk", "nope=1"], "--quirk: unknown quirk 'nope' (known: path_prefix,"),
        (["--quirk", "paginate=3"], "--quirk: paginate=3 does not fit (expected true or false)"),
        (["--quirk", "paginate"], "argument --quirk: expected NAME=VALUE, got 'paginate'"),
        (["--quirk", "allowed_policies=[[1]]"], "argument --quirk: allowed_policies: a list of plain values expected"),
        (["--enrollment-secret", "s"], "--enrollment-secret: only the zentral profile enrolls machines, not google"),
        (["--profile", "moroz", "--require-xsrf"], "--require-xsrf: the moroz profile has no /xsrf/ route"),
        (["--state-db", "/nonexistent/dir/state.db"], "--state-db /nonexistent/dir/state.db: directory"),
        (["--bogus-option"], "unrecognized arguments: --bogus-option"),
    ],
)
def test_serve_refuses_bad_options(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no base URL: it never started


def test_serve_accepts_options_in_any_case(client: httpx.Client) -> None:
    served = Served("--client-mode", "lockdown", "--sync-type", "clean_all")
    try:
        answer = client.post(f"{served.base_url}preflight/{MID}", json=PREFLIGHT).json()
    finally:
        served.stop()
    assert answer["client_mode"] == "LOCKDOWN" and answer["sync_type"] == "CLEAN_ALL"


def test_serve_port_in_use_exits_1() -> None:
    with SyncServer() as server:
        result = run_cli("--port", str(server.port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {server.port}" in result.stderr
    assert "Traceback" not in result.stderr


BAD_RULES: list[tuple[dict[str, Any], str]] = [
    (rule(1, identifier=SHA.upper()), "rules[1].identifier: '3C5E"),
    (rule(1, identifier="abc"), "is not a SHA-256: a BINARY rule needs 64 lower-case hex characters"),
    (
        {"identifier": "ab" * 32, "rule_type": "CERTIFICATE", "policy": "ALLOW"},
        "rules[1].policy: unknown policy 'ALLOW'",
    ),
    ({"identifier": "EQHXZ8M8A", "rule_type": "TEAMID", "policy": "BLOCKLIST"}, "a TEAMID rule needs 10 upper-case"),
    ({"identifier": "eqhxz8m8av", "rule_type": "TEAMID", "policy": "BLOCKLIST"}, "'eqhxz8m8av' is not a Team ID"),
    ({"identifier": "com.acme.app", "rule_type": "SIGNINGID", "policy": "BLOCKLIST"}, "is not a signing ID"),
    ({"identifier": "EQHXZ8M8AV:", "rule_type": "SIGNINGID", "policy": "BLOCKLIST"}, "is not a signing ID"),
    ({"identifier": "ab" * 19, "rule_type": "CDHASH", "policy": "BLOCKLIST"}, "a CDHASH rule needs 40 lower-case hex"),
    ({"identifier": SHA, "rule_type": "HASH", "policy": "BLOCKLIST"}, "rules[1].rule_type: unknown rule type 'HASH'"),
    ({"identifier": SHA, "policy": "BLOCKLIST"}, "rules[1].rule_type: missing (one of BINARY, CERTIFICATE,"),
    ({"rule_type": "BINARY", "policy": "BLOCKLIST"}, "rules[1].identifier: missing"),
    (rule(1, custom_msg=5), "rules[1].custom_msg: must be a string, not int"),
    (rule(1, policy="CEL"), "rules[1].cel_expr: a CEL rule needs a non-empty cel_expr"),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_RULES)
def test_serve_refuses_an_invalid_rule_naming_file_index_and_field(tmp_path: Path, bad: Any, expected: str) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [rule(1), bad]}))
    result = run_cli("--rules", str(rules))
    assert result.returncode == 2
    assert f"--rules {rules}: 1 problem(s)" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"rules": 5}', 'expected a JSON list of rules or {"rules": [...]}'),
        ("[{", "not valid JSON"),
        ("[1]", "rules[0].a rule must be a JSON object, not int"),
        (None, "cannot read it: No such file or directory"),
    ],
)
def test_serve_refuses_an_unreadable_rules_file(tmp_path: Path, content: str | None, expected: str) -> None:
    rules = tmp_path / "rules.json"
    if content is not None:
        rules.write_text(content)
    result = run_cli("--rules", str(rules))
    assert result.returncode == 2
    assert f"--rules {rules}: " in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_policy_the_profile_cannot_serve(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([rule(1, policy="SILENT_BLOCKLIST")]))
    result = run_cli("--profile", "moroz", "--rules", str(rules))
    assert result.returncode == 2
    assert "rules[0].policy: not served by this profile 'SILENT_BLOCKLIST'" in result.stderr


def test_serve_allow_invalid_rules_serves_them(client: httpx.Client, tmp_path: Path) -> None:
    invalid = rule(1, identifier="not-a-hash")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([invalid]))
    served = Served("--rules", str(rules), "--allow-invalid-rules")
    try:
        answer = client.post(f"{served.base_url}ruledownload/{MID}", json={}).json()
    finally:
        served.stop()
    assert answer == {"rules": [invalid]}


def test_python_api_serves_invalid_rules_on_purpose(client: httpx.Client) -> None:
    invalid = {"identifier": "NOT-A-TEAM-ID", "rule_type": "TEAMID", "policy": "BLOCKLIST"}
    with SyncServer(rules=[invalid]) as server:
        assert client.post(server.url("ruledownload", MID), json={}).json() == {"rules": [invalid]}


def test_rule_problems_accepts_well_formed_rules() -> None:
    good = [
        rule(1),
        {"identifier": "ab" * 32, "rule_type": "CERTIFICATE", "policy": "ALLOWLIST"},
        {"identifier": "EQHXZ8M8AV", "rule_type": "TEAMID", "policy": "SILENT_BLOCKLIST"},
        {"identifier": "EQHXZ8M8AV:com.Acme.app", "rule_type": "SIGNINGID", "policy": "ALLOWLIST_COMPILER"},
        {"identifier": "platform:com.apple.ls", "rule_type": "SIGNINGID", "policy": "REMOVE"},
        {"identifier": "ab" * 20, "rule_type": "CDHASH", "policy": "BLOCKLIST", "custom_msg": "no", "custom_url": ""},
        {"sha256": SHA, "rule_type": "BINARY", "policy": "WHITELIST"},
        rule(1, policy="CEL", cel_expr="true"),
    ]
    assert [rule_problems(r) for r in good] == [[]] * len(good)


def test_serve_help_describes_every_option_for_users() -> None:
    parser = build_parser()
    options = [a for a in parser._actions if a.option_strings]
    assert all(a.help and "§" not in a.help for a in options), [a.option_strings for a in options if not a.help]
    result = run_cli("--help")
    assert result.returncode == 0
    for action in options:
        assert action.option_strings[-1] in result.stdout
    assert "§" not in result.stdout
    assert "Exit status:" in result.stdout
    for line in ("0  stopped by Ctrl-C or SIGTERM", "1  the server could not start", "2  invalid option"):
        assert line in result.stdout


def test_serve_logs_requests_http_server_itself_refuses(client: httpx.Client) -> None:
    served = Served()
    try:
        with socket.create_connection(served.address, timeout=5) as s:
            s.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
            assert b"Error code: 400" in b"".join(iter(lambda: s.recv(4096), b""))  # HTTP/0.9 style: body only
        assert client.request("OPTIONS", f"{served.base_url}preflight/{MID}").status_code == 501
        assert client.get(f"{served.base_url}nowhere").status_code == 404
        body = {**PREFLIGHT, "request_clean_sync": True}
        assert client.post(f"{served.base_url}preflight/{MID}", json=body).is_success
    finally:
        status, err = served.stop()
    assert status == 0 and "Traceback" not in err
    assert "request 'NOT AN HTTP REQUEST' status=400 error=\"Bad request version ('REQUEST')\"" in err
    assert f"OPTIONS /preflight/{MID} status=501" in err
    assert "GET /nowhere status=404" in err
    assert f"preflight machine={MID} status=200 sync_type=CLEAN client_mode=MONITOR clean_sync_requested" in err
