"""`santacore doctor` (santactl doctor's sync check, addendum §3) against real servers on loopback: the testing
server in the northpolesec, google (with XSRF), Moroz and Zentral (right and wrong enrollment secret) profiles, an
HTTPS server whose chain is or is not trusted, a port nobody listens on, and no SyncBaseURL at all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.config.settings import load_config
from santacore.sync.doctor import DOCTOR_MACHINE_ID, PROBE_JSON, PROBE_PROTOBUF, diagnose
from santacore.testing import SyncServer
from tests.sync_client import MACHINE
from tests.test_sync_transport import PKI, Stub, _server_tls, pki  # noqa: F401  (pki: a fixture)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


def _config(tmp_path: Path, base_url: str | None, extra: str = "") -> Path:
    path = tmp_path / "santacore.toml"
    url = f'SyncBaseURL = "{base_url}"\n' if base_url else ""
    path.write_text(f'{url}MachineID = "{MACHINE}"\nStateDirectory = "{tmp_path / "state"}"\n{extra}')
    return path


def _doctor(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["doctor", "--config", str(config), "--json", *args])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def _by_check(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["check"]: (c["status"], c["text"]) for c in doc["checks"]}


def test_northpolesec_profile_everything_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SyncServer(profile="northpolesec") as server:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base_url))
        probes = server.requests_for("preflight")
    assert rc == 0 and doc["ok"] is True
    checks = _by_check(doc)
    assert list(checks) == ["reachability", "tls", "xsrf", "authentication", "compression", "format"]
    assert (
        checks["reachability"][0] == "ok"
        and "preflight/santactl-doctor-test answered HTTP 200" in checks["reachability"][1]
    )
    assert checks["tls"][0] == "info" and "plain HTTP" in checks["tls"][1]
    assert checks["authentication"] == ("ok", "preflight for santactl-doctor-test accepted (HTTP 200)")
    assert checks["compression"][0] == "ok" and checks["compression"][1].startswith("accepts deflate, gzip, none")
    # Santa's probe first: an empty body, for the test machine ID; then one request per encoding and format.
    assert {p.machine_id for p in probes} == {DOCTOR_MACHINE_ID}
    assert probes[0].raw_body == b"" and probes[0].header("Content-Encoding") is None
    assert [p.header("Content-Encoding") for p in probes[1:4]] == ["deflate", "gzip", None]
    assert [p.body for p in probes[1:4]] == [PROBE_JSON] * 3
    assert probes[-1].header("Content-Type") == "application/x-protobuf"
    assert zlib.decompress(probes[-1].raw_body) == PROBE_PROTOBUF  # deflate, the configured encoding


def test_moroz_profile_takes_deflate_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SyncServer(profile="moroz") as server:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base_url))
        rc_gzip, doc_gzip = _doctor(capsys, _config(tmp_path, server.base_url, 'SyncClientContentEncoding = "gzip"\n'))
    checks = _by_check(doc)
    assert rc == 0
    # Moroz zlib-decodes every preflight body: Santa's empty probe is a 500 (a note, not an auth failure).
    assert checks["authentication"][0] == "info" and "HTTP 500" in checks["authentication"][1]
    assert checks["compression"] == (
        "ok",
        "accepts deflate (deflate: HTTP 200, gzip: HTTP 500, none: HTTP 500); SyncClientContentEncoding is deflate",
    )
    assert rc_gzip == 1
    assert _by_check(doc_gzip)["compression"] == (
        "problem",
        "refuses gzip, the configured encoding (deflate: HTTP 200, gzip: HTTP 500, none: HTTP 500): "
        "set SyncClientContentEncoding to deflate",
    )


def test_google_profile_with_xsrf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SyncServer(profile="google", require_xsrf=True) as server:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base_url))
    checks = _by_check(doc)
    assert rc == 0
    assert checks["xsrf"] == (
        "ok",
        "the server asked for an XSRF token (HTTP 403) and issued one in header X-XSRF-TOKEN",
    )
    assert checks["authentication"][0] == "ok"


ZENTRAL_HEADER = '[SyncExtraHeaders]\n"Zentral-Authorization" = "Bearer {}"\n'


def test_zentral_wrong_secret_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SyncServer(profile="zentral", enrollment_secret="right") as server:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base_url, ZENTRAL_HEADER.format("wrong")))
    checks = _by_check(doc)
    assert rc == 1 and doc["ok"] is False
    assert checks["reachability"][0] == "ok"
    assert checks["xsrf"][0] == "info" and "answered HTTP 404" in checks["xsrf"][1]
    status, text = checks["authentication"]
    assert status == "problem" and text.startswith("HTTP 403 for preflight: the server refused the credentials")
    assert "Zentral answers 403 to a wrong enrollment secret" in text


def test_zentral_right_secret_refuses_only_the_test_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Zentral takes only UUID machine IDs: the doctor's ID gets 403 whatever the secret; this machine's does not.
    with SyncServer(profile="zentral", enrollment_secret="right") as server:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base_url, ZENTRAL_HEADER.format("right")))
    status, text = _by_check(doc)["authentication"]
    assert rc == 0 and status == "ok"
    assert text.startswith(f"HTTP 403 for santactl-doctor-test but HTTP 500 for this machine ({MACHINE})")


def test_https_chain_verified(tmp_path: Path, capsys: pytest.CaptureFixture[str], pki: PKI) -> None:  # noqa: F811
    server = Stub(_server_tls(pki, require_client_cert=False))
    try:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base + "/santa/", f'ServerAuthRootsFile = "{pki.ca_pem}"\n'))
    finally:
        server.close()
    checks = _by_check(doc)
    assert rc == 0
    assert checks["tls"] == ("ok", f"certificate chain verified against ServerAuthRootsFile {pki.ca_pem}")


def test_https_chain_not_trusted(tmp_path: Path, capsys: pytest.CaptureFixture[str], pki: PKI) -> None:  # noqa: F811
    server = Stub(_server_tls(pki, require_client_cert=False))
    try:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base + "/santa/"))
        assert server.seen == []
    finally:
        server.close()
    status, text = _by_check(doc)["tls"]
    assert rc == 1 and status == "problem"
    assert "TLS certificate verification failed" in text and "(trusting system roots)" in text
    assert "set ServerAuthRootsFile in " in text and "to the CA that issued the server's certificate" in text


def test_mtls_without_client_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str], pki: PKI) -> None:  # noqa: F811
    server = Stub(_server_tls(pki, require_client_cert=True))
    try:
        rc, doc = _doctor(capsys, _config(tmp_path, server.base + "/", f'ServerAuthRootsFile = "{pki.ca_pem}"\n'))
    finally:
        server.close()
    status, text = _by_check(doc)["tls"]
    assert rc == 1 and status == "problem" and "set ClientAuthCertificateFile" in text


def test_nobody_listening(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, doc = _doctor(capsys, _config(tmp_path, f"http://127.0.0.1:{port}/"))
    assert rc == 1
    assert [c["check"] for c in doc["checks"]] == ["reachability"]
    status, text = _by_check(doc)["reachability"]
    assert status == "problem" and "connection refused" in text and "check SyncBaseURL's host and port" in text


def test_no_sync_base_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, None)
    rc, doc = _doctor(capsys, config)
    assert rc == 1
    assert doc["checks"] == [
        {
            "check": "configuration",
            "status": "problem",
            "text": f"SyncBaseURL is not set in {config}: set it to the sync server's URL",
        }
    ]


def test_text_output_and_santa_only(tmp_path: Path) -> None:
    with SyncServer(profile="northpolesec") as server:
        config = _config(tmp_path, server.base_url)
        done = subprocess.run(
            [sys.executable, "-m", "santacore", "doctor", "--config", str(config), "--santa-only"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert len(server.requests_for("preflight")) == 1
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Sync server: {server.base_url}"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "ok      reachability",
        "note    tls",
        "note    xsrf",
        "ok      authentication",
    ]


def test_diagnose_is_a_library_call(tmp_path: Path) -> None:
    with SyncServer(profile="northpolesec") as server:
        report = diagnose(load_config(_config(tmp_path, server.base_url), environ={}), extra_probes=False)
    assert report.ok and [f.check for f in report.findings] == ["reachability", "tls", "xsrf", "authentication"]
