"""`santacore eventupload PATH... [--bundles] [--dry-run [--json]]` (northpolesec's santactl eventupload):
BUNDLE_BINARY events for files and their bundles (spec §4.1, §4.4), the upload body (§3.2), glob
patterns, and the events queued in events.db (§5.1).

Hashes and bundle values come from the corpus manifest or `file_info`; every store lives in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.identity.fileinfo import file_info
from santacore.santad.event_store import EventRow, EventStore
from santacore.santad.events import StoredEvent

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
COMMON = "santa/northpolesec/common/testdata"
MUJOCO = "registry/pypi/mujoco/3.17.0/mujoco/MuJoCo_(mjpython).app"
NOTIFIER = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"
SYNC_URL = "https://sync.example.com/santa"
MACHINE_ID = "EVENTUPLOAD-TEST"

# §4.1 keys (protobuf-JSON names, [G] variant), and those a BUNDLE_BINARY event never carries (§4.4).
EVENT_KEYS = {
    "file_sha256",
    "file_path",
    "file_name",
    "executing_user",
    "execution_time",
    "logged_in_users",
    "current_sessions",
    "decision",
    "file_bundle_id",
    "file_bundle_path",
    "file_bundle_executable_rel_path",
    "file_bundle_name",
    "file_bundle_version",
    "file_bundle_version_string",
    "file_bundle_hash",
    "file_bundle_hash_millis",
    "file_bundle_binary_count",
    "pid",
    "ppid",
    "parent_name",
    "team_id",
    "signing_id",
    "cdhash",
    "quarantine_data_url",
    "quarantine_referer_url",
    "quarantine_timestamp",
    "quarantine_agent_bundle_id",
    "signing_chain",
}
PROCESS_KEYS = {
    "executing_user",
    "execution_time",
    "logged_in_users",
    "current_sessions",
    "pid",
    "ppid",
    "parent_name",
    "quarantine_data_url",
    "quarantine_referer_url",
    "quarantine_timestamp",
    "quarantine_agent_bundle_id",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(value)


@dataclass
class Env:
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def events_db(self) -> Path:
        return self.state / "events.db"

    def config(self, **values: Any) -> Path:
        path = self.tmp / f"santacore-{len(list(self.tmp.glob('santacore-*.toml')))}.toml"
        lines = [f"StateDirectory = {_toml(str(self.state))}"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def run(self, *args: str | Path, **config: Any) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["eventupload", "--config", str(self.config(**config)), *map(str, args)])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def body(self, *args: str | Path, rc: int = 0, **config: Any) -> dict[str, Any]:
        """The --dry-run --json body (MachineID set, no SyncBaseURL needed)."""
        got, out, err = self.run("--dry-run", "--json", *args, **{"MachineID": MACHINE_ID, **config})
        assert got == rc, err
        doc: dict[str, Any] = json.loads(out)
        assert doc.get("machine_id") == MACHINE_ID
        return doc

    def queue(self, *args: str | Path) -> tuple[int, str, str]:
        return self.run("--queue-only", *args, SyncBaseURL=SYNC_URL)  # no server is contacted

    def rows(self) -> list[EventRow]:
        if not self.events_db.exists():
            return []
        with EventStore(self.events_db) as store:
            return [row for batch in store.pending(1000) for row in batch]

    def count(self) -> int:
        if not self.events_db.exists():
            return 0
        with EventStore(self.events_db) as store:
            return store.count()


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Env:
    return Env(tmp_path, capsys)


def _entry(manifest: dict[str, Any], rel: str) -> dict[str, Any]:
    return next(f for f in manifest["files"] if f["path"] == rel)


def _bundle(manifest: dict[str, Any], root: str) -> dict[str, Any]:
    return next(b for b in manifest["bundles"] if b["bundle_root"] == root)


def _assert_non_execution(event: dict[str, Any]) -> None:
    assert set(event) <= EVENT_KEYS, set(event) - EVENT_KEYS
    assert not set(event) & PROCESS_KEYS
    assert event["decision"] == "BUNDLE_BINARY"


# --- refusals ---------------------------------------------------------------------------------------


def test_missing_sync_base_url(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    assert env.run(path) == (1, "", "Missing SyncBaseURL. Exiting.\n")
    assert env.run(path, SyncBaseURL="") == (1, "", "Missing SyncBaseURL. Exiting.\n")
    assert not env.events_db.exists()


def test_json_needs_dry_run(corpus: Path, env: Env) -> None:
    with pytest.raises(SystemExit) as exc:
        env.run("--json", corpus / BINARYRULES / "goodbinary", SyncBaseURL=SYNC_URL)
    assert exc.value.code == 2
    assert "--dry-run" in env.capsys.readouterr().err
    assert not env.events_db.exists()


# --- the upload body ------------------------------------------------------------------------------------


def test_dry_run_body_for_a_plain_file(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    fi = file_info(path)
    entry = _entry(manifest, f"{BINARYRULES}/goodbinary")
    body = env.body(path)
    assert set(body) == {"events", "machine_id"}
    (event,) = body["events"]
    _assert_non_execution(event)
    assert event == {
        "file_sha256": entry["sha256"],
        "file_path": os.path.dirname(fi.path),
        "file_name": "goodbinary",
        "decision": "BUNDLE_BINARY",
    }
    assert not env.events_db.exists()


def test_dry_run_without_machine_id_has_no_machine_id(corpus: Path, env: Env) -> None:
    rc, out, _ = env.run("--dry-run", "--json", corpus / BINARYRULES / "goodbinary")
    assert rc == 0
    assert set(json.loads(out)) == {"events"}


def test_dry_run_body_carries_the_files_own_signature(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    """Unlike an execution event, a BUNDLE_BINARY event keeps the Team ID and Signing ID of
    development-signed code (§4.4: the binary's own values)."""
    rel = f"{COMMON}/signed-with-teamid"
    entry = _entry(manifest, rel)
    assert entry["santa_signing_status"] == "development"
    (event,) = env.body(corpus / rel)["events"]
    _assert_non_execution(event)
    assert event["file_sha256"] == entry["sha256"]
    assert event["team_id"] == entry["team_id"]
    assert event["signing_id"] == entry["santa_signing_id"]
    assert event["cdhash"] == entry["cdhash"]
    assert event["signing_chain"] == [
        {k: c[k] for k in ("sha256", "cn", "org", "ou", "valid_from", "valid_until")} for c in entry["signing_chain"]
    ]


def test_dry_run_inconsistent_universal_binary_has_no_cdhash(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    rel = "registry/npm/fsevents/2.3.3/fsevents.node"
    entry = _entry(manifest, rel)
    assert entry["santa_signing_consistency"] == "inconsistent"
    (event,) = env.body(corpus / rel)["events"]
    assert event["file_sha256"] == entry["sha256"]
    assert not {"cdhash", "team_id", "signing_id", "signing_chain"} & set(event)


@pytest.mark.parametrize(
    ("root", "given"),
    [
        (MUJOCO, ""),  # the bundle directory
        (MUJOCO, "Contents/MacOS/mjpython"),  # its main executable
        (NOTIFIER, ""),
        (NOTIFIER, "Contents/MacOS/terminal-notifier"),
    ],
)
def test_dry_run_bundles(corpus: Path, manifest: dict[str, Any], env: Env, root: str, given: str) -> None:
    bundle = _bundle(manifest, root)
    assert bundle["bundle_hash"] and bundle["santa_ancestor_bundle_root"] == root
    bundle_root = str(corpus / root)
    path = corpus / root / given if given else corpus / root
    main_exe = str(corpus / root / bundle["main_executable"])
    body = env.body("--bundles", path)
    events = body["events"]
    assert len(events) == bundle["binary_count"] + 1
    *hashed, own = events
    binaries = {}
    for event in hashed:
        _assert_non_execution(event)
        assert event["file_bundle_hash"] == bundle["bundle_hash"]
        assert event["file_bundle_binary_count"] == bundle["binary_count"]
        assert event["file_bundle_path"] == bundle_root
        assert event["file_bundle_executable_rel_path"] == bundle["main_executable"]
        assert event["file_bundle_id"] == bundle["bundle_id"]
        for key in ("name", "version", "version_string"):
            if bundle[f"bundle_{key}"] is not None:
                assert event[f"file_bundle_{key}"] == bundle[f"bundle_{key}"]
        binaries[os.path.relpath(os.path.join(event["file_path"], event["file_name"]), bundle_root)] = event[
            "file_sha256"
        ]
    assert binaries == bundle["binaries"]
    # The file's own event: the main executable, its nearest bundle, no bundle hash.
    _assert_non_execution(own)
    assert os.path.join(own["file_path"], own["file_name"]) == main_exe
    assert own["file_sha256"] == bundle["binaries"][bundle["main_executable"]]
    assert own["file_bundle_path"] == bundle_root
    assert not {"file_bundle_hash", "file_bundle_binary_count", "file_bundle_executable_rel_path"} & set(own)
    # Without --bundles only the file's own event.
    assert env.body(path)["events"] == [own]


def test_bundles_on_a_file_outside_any_bundle(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    assert env.body("--bundles", path) == env.body(path)


def test_dry_run_text(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    bundle = _bundle(manifest, NOTIFIER)
    rc, out, err = env.run("--dry-run", "--bundles", corpus / NOTIFIER, corpus / BINARYRULES / "goodbinary")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Hashing {corpus / NOTIFIER}"
    assert lines[2] == f"\tEvents found: {bundle['binary_count']}"
    assert lines[3] == f"\tBundleHash: {bundle['bundle_hash']}"
    assert lines[-1] == f"Would queue {bundle['binary_count'] + 2} events (no store written: --dry-run)"
    assert not env.events_db.exists()


# --- globs and bad paths -------------------------------------------------------------------------------


def test_glob_patterns_expand(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    pattern = str(corpus / BINARYRULES / "*_cdhash")
    expected = sorted(
        f["sha256"]
        for f in manifest["files"]
        if f["path"].startswith(f"{BINARYRULES}/") and f["path"].endswith("_cdhash")
    )
    assert len(expected) == 2
    events = env.body(pattern)["events"]
    assert sorted(e["file_sha256"] for e in events) == expected
    assert sorted(e["file_name"] for e in events) == ["allowed_cdhash", "banned_cdhash"]
    # Recursive patterns too.
    recursive = env.body(str(corpus / NOTIFIER / "**" / "terminal-notifier"))["events"]
    assert [e["file_name"] for e in recursive] == ["terminal-notifier"]


def test_unmatched_pattern_is_reported(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    good = corpus / BINARYRULES / "goodbinary"
    unmatched = str(corpus / BINARYRULES / "no-such-*")
    rc, out, err = env.run("--dry-run", "--json", unmatched, good, MachineID=MACHINE_ID)
    assert rc == 1
    assert err == f"Skipping {unmatched}: no file matches\n"
    assert [e["file_sha256"] for e in json.loads(out)["events"]] == [
        _entry(manifest, f"{BINARYRULES}/goodbinary")["sha256"]
    ]


def test_skipped_paths_do_not_stop_the_others(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    not_a_bundle = corpus / BINARYRULES  # a plain directory
    missing = corpus / BINARYRULES / "no-such-binary"
    unmatched = str(corpus / BINARYRULES / "nothing-*-here")
    good = corpus / BINARYRULES / "goodbinary"
    rc, out, err = env.queue(not_a_bundle, good, missing, unmatched)
    assert rc == 1
    skipped = err.splitlines()
    assert len(skipped) == 3
    assert skipped[0] == f"Skipping {unmatched}: no file matches"
    assert skipped[1].startswith(f"Skipping {not_a_bundle}: ")
    assert skipped[2].startswith(f"Skipping {missing}: ")
    assert out == f"Queued 1 events in {env.events_db} (1 pending upload)\n"
    (row,) = env.rows()
    assert StoredEvent.from_record(row.data).file_sha256 == _entry(manifest, f"{BINARYRULES}/goodbinary")["sha256"]


def test_only_bad_paths(corpus: Path, env: Env) -> None:
    missing = corpus / BINARYRULES / "no-such-binary"
    rc, out, err = env.queue(missing)
    assert rc == 1
    assert err.startswith(f"Skipping {missing}: ")
    assert out == f"Queued 0 events in {env.events_db} (0 pending upload)\n"
    assert env.count() == 0


# --- queued -----------------------------------------------------------------------------------------------


def test_queued_events_are_stored_and_decode(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    bundle = _bundle(manifest, MUJOCO)
    app = corpus / MUJOCO
    plain = corpus / COMMON / "signed-with-teamid"

    rc, out, err = env.queue(plain)
    assert (rc, err) == (0, "")
    assert out == f"Queued 1 events in {env.events_db} (1 pending upload)\n"
    assert env.count() == 1

    rc, out, err = env.queue("--bundles", app)
    assert (rc, err) == (0, "")
    queued = bundle["binary_count"] + 1
    assert out.splitlines()[-1] == f"Queued {queued} events in {env.events_db} ({1 + queued} pending upload)"
    assert env.count() == 1 + queued

    events = {row.idx: (row, StoredEvent.from_record(row.data)) for row in env.rows()}
    assert len(events) == 1 + queued
    for idx, (row, event) in events.items():
        assert event.idx == idx
        assert event.decision.value == "BUNDLE_BINARY"
        assert event.execution_time is None and event.pid is None and event.executing_user is None
        assert row.unique_id == event.file_sha256
        assert row.bundle_hash == event.file_bundle_hash
        assert event.to_wire()["decision"] == "BUNDLE_BINARY"
    hashed = [e for _, e in events.values() if e.file_bundle_hash is not None]
    assert {os.path.relpath(e.file_path, app): e.file_sha256 for e in hashed} == bundle["binaries"]
    assert {e.file_bundle_hash for e in hashed} == {bundle["bundle_hash"]}
    assert {e.file_bundle_binary_count for e in hashed} == {bundle["binary_count"]}
    with EventStore(env.events_db) as store:
        assert len(store.for_bundle(bundle["bundle_hash"])) == bundle["binary_count"]
    signed = [e for _, e in events.values() if e.file_path == file_info(plain).path]
    entry = _entry(manifest, f"{COMMON}/signed-with-teamid")
    assert [(e.file_sha256, e.team_id, e.signing_id, e.cdhash) for e in signed] == [
        (entry["sha256"], entry["team_id"], entry["santa_signing_id"], entry["cdhash"])
    ]


def test_dry_run_matches_what_is_queued(corpus: Path, env: Env) -> None:
    args = ("--bundles", corpus / NOTIFIER, corpus / BINARYRULES / "allowed_cdhash")
    body = env.body(*args)
    assert env.run("--queue-only", *args, SyncBaseURL=SYNC_URL, MachineID=MACHINE_ID)[0] == 0
    stored = [StoredEvent.from_record(r.data) for r in env.rows()]

    def key(wire: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in wire.items() if k != "file_bundle_hash_millis"}, sort_keys=True)

    assert sorted(map(key, body["events"])) == sorted(key(e.to_wire()) for e in stored)


def test_subprocess_smoke(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    config = env.config(SyncBaseURL=SYNC_URL)
    pattern = str(corpus / BINARYRULES / "good*")
    done = subprocess.run(
        [sys.executable, "-m", "santacore", "eventupload", "--queue-only", "--config", str(config), pattern],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == f"Queued 2 events in {env.events_db} (2 pending upload)\n"
    names = sorted(os.path.basename(StoredEvent.from_record(r.data).file_path) for r in env.rows())
    assert names == ["goodbinary", "goodcert"]
    assert env.events_db.stat().st_mode & 0o777 == 0o600


# --- uploaded at once (santactl eventupload), against a real SyncServer on loopback -----------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uploads_at_once_with_the_bundle(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    from santacore.testing import SyncServer

    bundle = _bundle(manifest, MUJOCO)
    with SyncServer() as server:
        rc, out, err = env.run(corpus / MUJOCO, SyncBaseURL=server.base_url, MachineID=MACHINE_ID, EnableBundles=True)
        assert (rc, err) == (0, ""), err
        assert out.splitlines()[0] == f"Hashing {corpus / MUJOCO}"
        total = bundle["binary_count"] + 1  # the bundle's binaries and the file's own event
        assert out.splitlines()[-2:] == [
            f"Uploading {total} events...",
            f"Done: {total} events uploaded, 0 pending upload in {env.events_db}",
        ]
        (received,) = server.events.values()
        assert len(received) == total and {e["decision"] for e in received} == {"BUNDLE_BINARY"}
        hashed = [e for e in received if e.get("file_bundle_hash")]
        assert {e["file_bundle_hash"] for e in hashed} == {bundle["bundle_hash"]}
        assert env.count() == 0
        # --binary-only: the file's own event alone, no hashing.
        rc, out, err = env.run(
            "--binary-only", corpus / MUJOCO, SyncBaseURL=server.base_url, MachineID=MACHINE_ID, EnableBundles=True
        )
        assert (rc, err) == (0, "") and "Hashing" not in out
        assert len(next(iter(server.events.values()))) == total + 1


def test_what_cannot_be_uploaded_stays_queued(corpus: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANTACORE_SYNC_RETRY_SCALE", "0.001")
    url = f"http://127.0.0.1:{_closed_port()}/"
    rc, out, err = env.run("--bundles", corpus / NOTIFIER, SyncBaseURL=url, MachineID=MACHINE_ID)
    assert rc == 1
    assert f"2 of 2 events not uploaded: kept in {env.events_db} for the next sync" in err
    assert out.splitlines()[-1] == f"Done: 0 events uploaded, 2 pending upload in {env.events_db}"
    assert env.count() == 2
