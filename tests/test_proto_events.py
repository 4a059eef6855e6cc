"""[N]'s event fields 29–34 as `santacore check --record` stores and a sync sends them (spec §4.1), in both wire
formats: `static_rule` when StaticRules decided; signing status, cs flags and entitlements from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from santacore.cli import main
from santacore.identity.fileinfo import file_info
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent, Variant
from santacore.sync import protocol as p
from santacore.sync.binary import encode_request
from santacore.syncv1 import santa_sync_v1_pb2 as pb

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"


def _record(tmp_path: Path, path: Path, extra: str) -> StoredEvent:
    config = tmp_path / "santacore.toml"
    state = tmp_path / "state"
    config.write_text(
        f'StateDirectory = "{state}"\nSyncBaseURL = "http://127.0.0.1:1/"\nClientMode = 2\n{extra}', encoding="utf-8"
    )
    assert main(["check", "--config", str(config), str(path), "--record"]) == 3  # blocked
    with EventStore(state / "events.db") as store:
        (row,) = [r for batch in store.pending(10) for r in batch]
    return StoredEvent.from_record(row.data)


@pytest.mark.parametrize("static", [True, False], ids=["StaticRules", "no rule"])
def test_static_rule_field(tmp_path: Path, corpus: Path, static: bool) -> None:
    path = corpus / BINARYRULES / "badbinary"
    sha = file_info(path).sha256
    extra = f'StaticRules = [{{identifier = "{sha}", policy = "BLOCKLIST", rule_type = "BINARY"}}]\n' if static else ""
    event = _record(tmp_path, path, extra)
    assert event.decision.value == ("BLOCK_BINARY" if static else "BLOCK_UNKNOWN")
    assert event.static_rule is static
    wire = p.eventupload_request([event], "m", Variant.NORTHPOLESEC)
    assert wire["events"][0].get("static_rule", False) is static
    (sent,) = pb.EventUploadRequest.FromString(encode_request("eventupload", wire)).events
    assert sent.static_rule is static
    # The google variants have no field 34 (§9.1).
    assert "static_rule" not in p.eventupload_request([event], "m", Variant.GOOGLE)["events"][0]


def test_signing_fields_from_the_file(tmp_path: Path, corpus: Path) -> None:
    path = corpus / BINARYRULES / "allowed_teamid"
    fi = file_info(path)
    event = _record(tmp_path, path, "")
    wire = p.eventupload_request([event], "m", Variant.NORTHPOLESEC)
    (sent,) = pb.EventUploadRequest.FromString(encode_request("eventupload", wire)).events
    assert pb.SigningStatus.Name(sent.signing_status) == f"SIGNING_STATUS_{fi.signing_status.upper()}"
    assert sent.cs_flags == event.cs_flags != 0
    assert sent.HasField("entitlement_info")
