"""What a well-formed wire rule looks like (what Santa accepts from `ruledownload`), for checking rules files.

Only `santacore testing serve` checks its rules file; `SyncServer` serves whatever it is given, so that tests can
serve rules a client must reject."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Final

__all__ = ["POLICIES", "RULE_TYPES", "rule_problems"]

RULE_TYPES: Final = ("BINARY", "CERTIFICATE", "TEAMID", "SIGNINGID", "CDHASH")
POLICIES: Final = (
    "ALLOWLIST",
    "ALLOWLIST_COMPILER",
    "BLOCKLIST",
    "SILENT_BLOCKLIST",
    "REMOVE",
    "CEL",
    "SILENT_GUI_BLOCKLIST",
    "SILENT_TTY_BLOCKLIST",
    # the legacy spellings Santa still accepts
    "WHITELIST",
    "WHITELIST_COMPILER",
    "BLACKLIST",
    "SILENT_BLACKLIST",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CDHASH = re.compile(r"[0-9a-f]{40}")
_TEAM_ID = re.compile(r"[A-Z0-9]{10}")
_STRING_FIELDS: Final = (
    "custom_msg",
    "custom_url",
    "file_bundle_hash",
    "notification_app_name",
    "cel_expr",
    "celExpr",  # protobuf's JSON printer spells cel_expr (no json_name) this way; Santa reads both
    "event_detail_button_label",
)


def _identifier_problem(rule_type: str, identifier: str) -> str | None:
    if rule_type in ("BINARY", "CERTIFICATE"):
        if not _SHA256.fullmatch(identifier):
            return f"{identifier!r} is not a SHA-256: a {rule_type} rule needs 64 lower-case hex characters"
    elif rule_type == "CDHASH":
        if not _CDHASH.fullmatch(identifier):
            return f"{identifier!r} is not a cdhash: a CDHASH rule needs 40 lower-case hex characters"
    elif rule_type == "TEAMID":
        if not _TEAM_ID.fullmatch(identifier):
            return f"{identifier!r} is not a Team ID: a TEAMID rule needs 10 upper-case letters or digits"
    elif rule_type == "SIGNINGID":
        prefix, sep, signing_id = identifier.partition(":")
        if not sep or not signing_id or not (prefix == "platform" or _TEAM_ID.fullmatch(prefix)):
            return (
                f"{identifier!r} is not a signing ID: a SIGNINGID rule needs TEAMID:signing.id (a 10-character "
                "upper-case Team ID) or platform:signing.id"
            )
    return None


def rule_problems(rule: Any, *, policies: Collection[str] | None = None) -> list[str]:
    """What is wrong with one wire rule, as "field: why" strings (empty when Santa would accept it).
    `policies`: the policies the server can serve (default: every policy Santa knows)."""
    if not isinstance(rule, Mapping):
        return [f"a rule must be a JSON object, not {type(rule).__name__}"]
    problems: list[str] = []
    rule_type = rule.get("rule_type")
    if rule_type is None:
        problems.append(f"rule_type: missing (one of {', '.join(RULE_TYPES)})")
    elif rule_type not in RULE_TYPES:
        problems.append(f"rule_type: unknown rule type {rule_type!r} (one of {', '.join(RULE_TYPES)})")
    allowed = POLICIES if policies is None else tuple(p for p in POLICIES if p in policies)
    policy = rule.get("policy")
    if policy is None:
        problems.append(f"policy: missing (one of {', '.join(allowed)})")
    elif policy not in allowed:
        why = "not served by this profile" if policy in POLICIES else "unknown policy"
        problems.append(f"policy: {why} {policy!r} (one of {', '.join(allowed)})")
    key = "identifier" if rule.get("identifier") or "sha256" not in rule else "sha256"
    identifier = rule.get(key)
    if identifier is None or identifier == "":
        problems.append("identifier: missing")
    elif not isinstance(identifier, str):
        problems.append(f"{key}: must be a string, not {type(identifier).__name__}")
    elif isinstance(rule_type, str) and (problem := _identifier_problem(rule_type, identifier)):
        problems.append(f"{key}: {problem}")
    for name in _STRING_FIELDS:
        if name in rule and not isinstance(rule[name], str):
            problems.append(f"{name}: must be a string, not {type(rule[name]).__name__}")
    count = rule.get("file_bundle_binary_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        problems.append(f"file_bundle_binary_count: must be a non-negative integer, not {count!r}")
    expression = rule.get("cel_expr", rule.get("celExpr"))
    if policy == "CEL" and not (isinstance(expression, str) and expression.strip()):
        problems.append("cel_expr: a CEL rule needs a non-empty cel_expr")
    return problems
