"""A bad StaticRules entry is refused when the configuration is read (robustness issue, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from santacore.cli import main

BAD_ENTRIES = [
    ("5", "identifier = 5", "missing/invalid identifier 5"),
    ('"aa"', 'identifier = "aa"', "valid SHA-256"),
]


@pytest.mark.parametrize(("identifier", "shown", "why"), BAD_ENTRIES)
@pytest.mark.parametrize("command", [["config", "show"], ["check", "/bin/sh"]])
def test_bad_static_rule_named_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], identifier: str, shown: str, why: str, command: list[str]
) -> None:
    config = tmp_path / "santacore.toml"
    config.write_text(
        f'StateDirectory = "{tmp_path / "state"}"\n\n'
        "[[StaticRules]]\n"
        'identifier = "EQHXZ8M8AV"\npolicy = "ALLOWLIST"\nrule_type = "TEAMID"\n\n'
        "[[StaticRules]]\n"
        f'identifier = {identifier}\npolicy = "BLOCKLIST"\nrule_type = "BINARY"\n',
        encoding="utf-8",
    )
    capsys.readouterr()
    rc = main([*command, "--config", str(config)])
    err = capsys.readouterr().err
    assert rc != 0
    assert f"{config}: StaticRules[1]: invalid rule {{{shown}, " in err
    assert why in err
