"""CEL rules from a sync server to a decision (addendum §6): the testing server serves `policy: CEL` rules with
`cel_expr` (and `celExpr`, protobuf's JSON spelling), a northpolesec client stores them with state 9 (one that does
not compile is skipped, named, and still counted in `rules_processed`), the rules hash sent at the next preflight
covers them, and `santacore check` decides with them. A google client does not know the policy and skips them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.identity.fileinfo import file_info
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.sync.stages import SyncStatus
from santacore.testing import SyncServer
from tests.sync_client import SyncTestClient, write_config

FILE = "santa/northpolesec/santad/testdata/binaryrules/banned_teamid"
OTHER = "b7c1e3fd640c5f211c89b02c2c6122f78ce322aa5c56eb0bb54bc422a8f8b670"


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


def served_rules(corpus: Path) -> list[dict[str, Any]]:
    fi = file_info(corpus / FILE)
    assert fi.cdhash and fi.signing_chain
    return [
        {
            "identifier": fi.sha256,
            "policy": "CEL",
            "rule_type": "BINARY",
            "cel_expr": "'--unsafe' in args || envs['MODE'] == 'strict' ? BLOCKLIST : ALLOWLIST",
            "custom_msg": "no unsafe runs",
        },
        {  # protobuf's JSON printer: celExpr
            "identifier": fi.signing_chain[0].sha256,
            "policy": "CEL",
            "rule_type": "CERTIFICATE",
            "celExpr": "target.team_id == 'EQHXZ8M8AV' && euid != 0",
        },
        {"identifier": OTHER, "policy": "CEL", "rule_type": "BINARY", "cel_expr": "target.nope == 1"},
        {"identifier": OTHER, "policy": "BLOCKLIST", "rule_type": "CERTIFICATE"},
    ]


def test_cel_rules_round_trip_server_store_check(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fi = file_info(corpus / FILE)
    with SyncServer(profile="northpolesec", rules=served_rules(corpus)) as server:
        config = write_config(tmp_path, server, 'SyncProtocol = "northpolesec"\n')
        client = SyncTestClient(config)
        result = client.run_sync()
        assert result.status is SyncStatus.SUCCESS, result.error
        # received 4, processed 4 (the bad expression was parsed: Santa counts it), one not applied
        assert (result.rules_received, result.rules_processed) == (4, 4)
        assert [(n.identifier, n.reason.split(":")[0]) for n in result.rules_not_applied] == [
            (OTHER, "invalid CEL expression")
        ]
        assert "undefined field 'nope'" in result.rules_not_applied[0].reason
        postflight = server.postflights
        assert [(p["rules_received"], p["rules_processed"]) for p in next(iter(postflight.values()))] == [(4, 4)]
        stored = client.stored_rules()
        assert stored == [
            Rule(
                fi.sha256,
                RuleType.BINARY,
                RuleState.CEL,
                "no unsafe runs",
                cel_expr="'--unsafe' in args || envs['MODE'] == 'strict' ? BLOCKLIST : ALLOWLIST",
            ),
            Rule(
                fi.signing_chain[0].sha256,
                RuleType.CERTIFICATE,
                RuleState.CEL,
                cel_expr="target.team_id == 'EQHXZ8M8AV' && euid != 0",
            ),
            Rule(OTHER, RuleType.CERTIFICATE, RuleState.BLOCK),
        ]
        with RuleStore(config.rules_db) as store:
            assert store.rules_hash() != "99aa06d3014798d86001c324468d497f"
    config_file = tmp_path / "santacore.toml"

    def decide(*args: str) -> dict[str, Any]:
        capsys.readouterr()
        rc = main(["check", "--config", str(config_file), str(corpus / FILE), "--json", *args])
        out, err = capsys.readouterr()
        doc: dict[str, Any] = json.loads(out)
        assert rc == (0 if doc["allowed"] else 3), err
        return doc

    # The BINARY CEL rule outranks the CERTIFICATE one; each variable it reads changes the outcome.
    allowed = decide("--env", "MODE=relaxed")
    assert (allowed["decision"], allowed["rule"]["policy"]) == ("ALLOW_BINARY", "CEL")
    blocked = decide("--arg=--unsafe", "--env", "MODE=relaxed")
    assert (blocked["decision"], blocked["custom_msg"]) == ("BLOCK_BINARY", "no unsafe runs")
    assert decide("--env", "MODE=strict")["decision"] == "BLOCK_BINARY"
    # No MODE: `envs['MODE']` fails, so the rule decides nothing and does not fall through to the certificate rule.
    assert decide()["decision"] == "ALLOW_UNKNOWN"
    # Without the binary rule, the certificate rule (celExpr on the wire) decides from target and euid.
    with RuleStore(config.rules_db) as store:
        store.add_rules([Rule.create(fi.sha256, RuleType.BINARY, RuleState.REMOVE)])
    assert decide("--euid", "501")["decision"] == "ALLOW_CERTIFICATE"
    assert decide("--euid", "0")["decision"] == "BLOCK_CERTIFICATE"


def test_the_next_preflight_rule_counts_cover_cel_rules(tmp_path: Path, corpus: Path) -> None:
    with SyncServer(profile="northpolesec", rules=served_rules(corpus)) as server:
        client = SyncTestClient(write_config(tmp_path, server, 'SyncProtocol = "northpolesec"\n'))
        assert client.run_sync().status is SyncStatus.SUCCESS
        assert client.run_sync().status is SyncStatus.SUCCESS
        second = server.requests_for("preflight")[-1].data
        assert (second["binary_rule_count"], second["certificate_rule_count"]) == (1, 2)


def test_a_google_client_skips_cel_rules(tmp_path: Path, corpus: Path) -> None:
    with SyncServer(profile="google", rules=served_rules(corpus)) as server:
        client = SyncTestClient(write_config(tmp_path, server, 'SyncProtocol = "google"\n'))
        result = client.run_sync()
        assert result.status is SyncStatus.SUCCESS, result.error
        assert (result.rules_received, result.rules_processed) == (4, 1)
        assert client.stored_rules() == [Rule(OTHER, RuleType.CERTIFICATE, RuleState.BLOCK)]
