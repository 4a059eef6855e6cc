"""santacore.santad.cel: Santa's cel.v1 environment (addendum §6) — every variable, every constant, bool and int
results, what fails to compile and what fails to evaluate. Inputs are built by hand; the engine is cel-cpp."""

from __future__ import annotations

import subprocess
import sys

import pytest

from santacore.santad.cel import CELError, CELInputs, CELTarget, compile_error, evaluate

ALLOW, COMPILER, BLOCK, SILENT, SILENT_GUI, SILENT_TTY = 1, 2, 3, 4, 9, 10
INPUTS = CELInputs(
    target=CELTarget(
        signing_id="EQHXZ8M8AV:com.example.tool",
        team_id="EQHXZ8M8AV",
        is_platform_binary=True,
        signing_time=1634326357,  # 2021-10-15T19:32:37Z
        secure_signing_time=None,
    ),
    args=("/usr/local/bin/tool", "--flag", "value"),
    envs={"HOME": "/Users/admin", "MODE": "strict"},
    euid=501,
    cwd="/Users/admin/src",
    path="/usr/local/bin/tool",
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # results: bool, then each ReturnValue constant and number; 0 (UNSPECIFIED) is a valid "no decision"
        ("true", ALLOW),
        ("false", BLOCK),
        ("ALLOWLIST", ALLOW),
        ("ALLOWLIST_COMPILER", COMPILER),
        ("BLOCKLIST", BLOCK),
        ("SILENT_BLOCKLIST", SILENT),
        ("SILENT_GUI_BLOCKLIST", SILENT_GUI),
        ("SILENT_TTY_BLOCKLIST", SILENT_TTY),
        ("3", BLOCK),
        ("0", 0),
        # target
        ("target.signing_id == 'EQHXZ8M8AV:com.example.tool'", ALLOW),
        ("target.team_id == 'EQHXZ8M8AV' ? BLOCKLIST : ALLOWLIST", BLOCK),
        ("target.is_platform_binary ? SILENT_BLOCKLIST : ALLOWLIST", SILENT),
        ("target.signing_time == timestamp('2021-10-15T19:32:37Z')", ALLOW),
        ("target.signing_time < timestamp('2021-01-01T00:00:00Z')", BLOCK),
        ("target.secure_signing_time == timestamp(0)", ALLOW),  # unset: proto3's default, the epoch
        ("target.signing_time.getFullYear() == 2021", ALLOW),
        ("timestamp('2022-01-01T00:00:00Z') - target.signing_time > duration('24h')", ALLOW),
        # args, envs, euid, cwd, path
        ("args.size() == 3 && args[1] == '--flag'", ALLOW),
        ("'--unsafe' in args ? BLOCKLIST : ALLOWLIST", ALLOW),
        ("args.exists(a, a.startsWith('--f')) ? ALLOWLIST_COMPILER : BLOCKLIST", COMPILER),
        ("args.join(' ') == '/usr/local/bin/tool --flag value'", ALLOW),  # the strings extension
        ("envs['MODE'] == 'strict' ? SILENT_TTY_BLOCKLIST : ALLOWLIST", SILENT_TTY),
        ("'DEBUG' in envs", BLOCK),
        ("envs.size() == 2", ALLOW),
        ("euid == 0 ? BLOCKLIST : ALLOWLIST", ALLOW),
        ("euid == 501 ? SILENT_GUI_BLOCKLIST : ALLOWLIST", SILENT_GUI),
        ("cwd.startsWith('/Users/') && path.endsWith('/tool')", ALLOW),
        ("path.lowerAscii().upperAscii() == '/USR/LOCAL/BIN/TOOL'", ALLOW),
        ("path.split('/').size() == 5", ALLOW),
    ],
)
def test_every_variable_and_outcome(expression: str, expected: int) -> None:
    assert compile_error(expression) is None
    assert evaluate(expression, INPUTS) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("this is bad", "Syntax error"),
        ("foo == 1", "undeclared reference to 'foo'"),
        ("target.entitlements.size() > 0", "undefined field 'entitlements'"),  # v2 only
        ("ancestors.size() > 0", "undeclared reference to 'ancestors'"),  # v2 only
        ("UNSPECIFIED", "undeclared reference to 'UNSPECIFIED'"),  # declared only for v2 fallback rules
        ("euid == 'root'", "no matching overload"),  # type-checked, as Santa's compiler is
        ("   ", "empty CEL expression"),
    ],
)
def test_what_does_not_compile(expression: str, reason: str) -> None:
    why = compile_error(expression)
    assert why is not None and reason in why
    assert "\n" not in why  # one line, the caret drawing dropped
    if expression.strip():
        with pytest.raises(CELError, match=reason):
            evaluate(expression, INPUTS)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("envs['MISSING'] == 'x'", "evaluation failed: .*Key not found in map"),
        ("1 / (euid - 501) == 1", "evaluation failed: .*divide by zero"),
        ("5", "expected 'ReturnValue' result got 5"),  # an int that is no ReturnValue number
        ("-1", "expected 'ReturnValue' result got -1"),
        ("'ALLOWLIST'", "expected 'ReturnValue' result got 'ALLOWLIST'"),
        ("args", r"expected 'ReturnValue' result got \["),
    ],
)
def test_what_fails_to_evaluate(expression: str, reason: str) -> None:
    assert compile_error(expression) is None
    with pytest.raises(CELError, match=reason):
        evaluate(expression, INPUTS)


def test_defaults_for_a_file(tmp_path: object) -> None:
    # A file with no signature: empty strings, false, epoch timestamps; argv is the path.
    inputs = CELInputs(path="/bin/x", args=("/bin/x",))
    assert evaluate("target.signing_id == '' && target.team_id == '' && !target.is_platform_binary", inputs) == ALLOW
    assert evaluate("target.signing_time == timestamp(0) && args == [path]", inputs) == ALLOW


def test_the_engine_is_loaded_only_when_used() -> None:
    probe = (
        "import sys, santacore.santad.cel, santacore.santad.policy, santacore.santad.rule_store\n"
        "print(sorted(m for m in ('cel_expr_python', 'google.protobuf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
