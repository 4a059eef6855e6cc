"""`RuleStore.staging()`: a rule download staged on disk page by page applies exactly as `add_rules` would."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from santacore.santad.rule_store import Cleanup, RuleStore
from santacore.santad.rules import Rule, RuleError, RuleState, RuleType


def rule(name: str, state: RuleState = RuleState.ALLOW) -> Rule:
    return Rule.create(hashlib.sha256(name.encode()).hexdigest(), RuleType.BINARY, state)


BATCH = [
    rule("a"),
    rule("b"),
    rule("a", RuleState.BLOCK),  # the later one wins
    rule("b", RuleState.REMOVE),  # added then removed: gone
    rule("c", RuleState.REMOVE),
    rule("c", RuleState.BLOCK),  # removed then added: there
    rule("old", RuleState.REMOVE),  # removes a stored rule
]


@pytest.mark.parametrize("cleanup", list(Cleanup))
def test_staged_pages_apply_as_add_rules(tmp_path: Path, cleanup: Cleanup) -> None:
    with RuleStore(tmp_path / "one.db") as one, RuleStore(tmp_path / "staged.db") as staged:
        for store in (one, staged):
            store.add_rules([rule("old"), rule("kept"), rule("t", RuleState.ALLOW_TRANSITIVE)])
        assert one.add_rules(BATCH, cleanup=cleanup) == len(BATCH)
        with staged.staging() as staging:
            staging.add(BATCH[:3])
            staging.add(BATCH[3:])
            assert staging.count == len(BATCH)
            assert staging.apply(cleanup=cleanup) == len(BATCH)
        assert staged.rules() == one.rules()


def test_nothing_applied_without_apply_and_empty_refused(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules([rule("old")])
        before = store.rules()
        with store.staging() as staging:
            staging.add([rule("new")])
        assert store.rules() == before
        with store.staging() as staging, pytest.raises(RuleError, match="Empty rule array"):
            staging.apply(cleanup=Cleanup.ALL)
        assert store.rules() == before
