"""How santad turns rules into a decision (spec §8.3–8.5; google/santa `SNTPolicyProcessor.mm` `decisionForFileInfo`).

Static rules, then the one highest-precedence rule row, the (type, state) map, bad-signature and
page-zero protection, path scopes, and the client mode's default. `PolicySettings` is what the
decision reads from the configuration in force, built once with `PolicySettings.from_config`.
Nothing here touches the disk; the only output is the stderr warning of a path regex that
runs out of time (`PATH_REGEX_TIMEOUT`)."""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from santacore.santad.decisions import ALLOW_MASK, BLOCK_MASK, ClientMode, Decision
from santacore.santad.rules import (
    EVENT_STATE_ALLOW_COMPILER,
    EVENT_STATE_ALLOW_TRANSITIVE,
    Identifiers,
    Rule,
    RuleError,
    RuleState,
    RuleType,
)

if TYPE_CHECKING:
    import regex

    from santacore.config.settings import Config
    from santacore.identity.fileinfo import FileInfo
    from santacore.santad.cel import CELInputs


def _state_word(state: RuleState) -> str:
    return state.policy if state is not RuleState.ALLOW_TRANSITIVE else "ALLOWLIST_TRANSITIVE"


def _mode_name(mode: ClientMode | int) -> str:
    try:
        return ClientMode(mode).name.capitalize()
    except ValueError:
        return f"Unknown ({int(mode)})"


class RuleLookup(Protocol):
    """Where database rules come from: the single highest-precedence row matching any identifier."""

    def find(self, identifiers: Identifiers) -> Rule | None: ...


def find_rule(
    identifiers: Identifiers,
    lookup: RuleLookup,
    *,
    static_rules: Iterable[Rule] = (),
    launchd_certificate: str | None = None,
) -> Rule | None:
    """§8.3 steps 2 and 4: static rules, then the database, then the launchd-certificate fallback.

    Static rules are keyed by identifier alone, as santad's `staticRules` dictionary is: of two
    static rules with the same identifier the later one wins, whatever their types.
    """
    by_identifier = {rule.identifier: rule for rule in static_rules}
    for rule_type, identifier in identifiers.candidates():
        rule = by_identifier.get(identifier)
        if rule is not None and rule.type is rule_type:
            return rule
    rule = lookup.find(identifiers)
    if rule is None and launchd_certificate and identifiers.certificate == launchd_certificate.lower():
        rule = Rule(identifiers.certificate, RuleType.CERTIFICATE, RuleState.ALLOW)
    return rule


# §8.4, as google/santa's `decision:forRule:withTransitiveRules:` has it. Pairs not here are
# unusable. ALLOW_COMPILER becomes the plain allow when transitive rules are off; ALLOW_TRANSITIVE
# is unusable when they are off. Note [G] lists (CDHASH, ALLOW_TRANSITIVE) as well, which the
# spec's table marks invalid; santad never creates such a row (transitive rules are BINARY).
_RULE_DECISIONS: Mapping[tuple[RuleType, RuleState], int] = {
    (RuleType.CDHASH, RuleState.ALLOW): Decision.ALLOW_CDHASH.event_state,
    (RuleType.CDHASH, RuleState.ALLOW_COMPILER): EVENT_STATE_ALLOW_COMPILER,
    (RuleType.CDHASH, RuleState.ALLOW_TRANSITIVE): EVENT_STATE_ALLOW_TRANSITIVE,
    (RuleType.CDHASH, RuleState.BLOCK): Decision.BLOCK_CDHASH.event_state,
    (RuleType.CDHASH, RuleState.SILENT_BLOCK): Decision.BLOCK_CDHASH.event_state,
    (RuleType.BINARY, RuleState.ALLOW): Decision.ALLOW_BINARY.event_state,
    (RuleType.BINARY, RuleState.ALLOW_TRANSITIVE): EVENT_STATE_ALLOW_TRANSITIVE,
    (RuleType.BINARY, RuleState.ALLOW_COMPILER): EVENT_STATE_ALLOW_COMPILER,
    (RuleType.BINARY, RuleState.BLOCK): Decision.BLOCK_BINARY.event_state,
    (RuleType.BINARY, RuleState.SILENT_BLOCK): Decision.BLOCK_BINARY.event_state,
    (RuleType.SIGNINGID, RuleState.ALLOW): Decision.ALLOW_SIGNINGID.event_state,
    (RuleType.SIGNINGID, RuleState.ALLOW_COMPILER): EVENT_STATE_ALLOW_COMPILER,
    (RuleType.SIGNINGID, RuleState.BLOCK): Decision.BLOCK_SIGNINGID.event_state,
    (RuleType.SIGNINGID, RuleState.SILENT_BLOCK): Decision.BLOCK_SIGNINGID.event_state,
    (RuleType.CERTIFICATE, RuleState.ALLOW): Decision.ALLOW_CERTIFICATE.event_state,
    (RuleType.CERTIFICATE, RuleState.BLOCK): Decision.BLOCK_CERTIFICATE.event_state,
    (RuleType.CERTIFICATE, RuleState.SILENT_BLOCK): Decision.BLOCK_CERTIFICATE.event_state,
    (RuleType.TEAMID, RuleState.ALLOW): Decision.ALLOW_TEAMID.event_state,
    (RuleType.TEAMID, RuleState.BLOCK): Decision.BLOCK_TEAMID.event_state,
    (RuleType.TEAMID, RuleState.SILENT_BLOCK): Decision.BLOCK_TEAMID.event_state,
}
_COMPILER_OFF = {
    RuleType.CDHASH: Decision.ALLOW_CDHASH,
    RuleType.BINARY: Decision.ALLOW_BINARY,
    RuleType.SIGNINGID: Decision.ALLOW_SIGNINGID,
}
_INTERNAL_NAMES = {EVENT_STATE_ALLOW_COMPILER: "ALLOW_COMPILER", EVENT_STATE_ALLOW_TRANSITIVE: "ALLOW_TRANSITIVE"}


def rule_event_state(rule: Rule, *, transitive_rules: bool) -> int | None:
    """The SNTEventState a matched rule yields (§8.4), or None when santad treats it as no match."""
    state = _RULE_DECISIONS.get((rule.type, rule.state))
    if state is None:
        return None
    if rule.state is RuleState.ALLOW_COMPILER and not transitive_rules:
        return _COMPILER_OFF[rule.type].event_state
    if rule.state is RuleState.ALLOW_TRANSITIVE and not transitive_rules:
        return None
    return state


@dataclass(frozen=True)
class DecisionResult:
    """santad's SNTCachedDecision, reduced to what santacore reports."""

    decision: Decision
    """The wire decision; UNKNOWN for the internal ALLOW_COMPILER / ALLOW_TRANSITIVE states."""
    rule: Rule | None
    """The rule that decided, or None when a later step did (an unusable rule is not kept)."""
    silent: bool
    custom_msg: str | None
    custom_url: str | None
    explanation: str
    event_state: int
    """SNTEventState bits, as events.db stores the decision."""

    @property
    def allowed(self) -> bool:
        return bool(self.event_state & ALLOW_MASK)

    @property
    def blocked(self) -> bool:
        return bool(self.event_state & BLOCK_MASK)

    @property
    def name(self) -> str:
        """The decision's name, the internal states included (`ALLOW_COMPILER`, `ALLOW_TRANSITIVE`)."""
        return _INTERNAL_NAMES.get(self.event_state, self.decision.value)

    @property
    def would_block_in_lockdown(self) -> bool:
        """Whether Lockdown would have blocked what this decision allowed: only the mode default
        differs between the modes (§8.3 step 8), so that is exactly an ALLOW_UNKNOWN — which is what
        Monitor mode records and (unless `disable_unknown_event_upload`) stores for upload (§8.5)."""
        return self.decision is Decision.ALLOW_UNKNOWN


def would_block_in_lockdown(result: DecisionResult) -> bool:
    """See `DecisionResult.would_block_in_lockdown`."""
    return result.would_block_in_lockdown


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    """The settings santad's decision reads (§8.3) and whether it creates an event (§5.2).

    The defaults are Santa's (those of an empty configuration): `PolicySettings()` equals
    `PolicySettings.from_config(Config())`."""

    mode: ClientMode | int = ClientMode.MONITOR
    """ClientMode; a value santad does not know blocks, as Lockdown does."""
    transitive_rules: bool = False
    """EnableTransitiveRules: ALLOW_COMPILER and ALLOW_TRANSITIVE rules count as such (§8.4)."""
    bad_signature_protection: bool = False
    """EnableBadSignatureProtection: block a signature that fails for a reason other than being unsigned."""
    page_zero_protection: bool = True
    """EnablePageZeroProtection: block a Mach-O without `__PAGEZERO`."""
    allowed_path_regex: re.Pattern[str] | None = None
    blocked_path_regex: re.Pattern[str] | None = None
    static_rules: tuple[Rule, ...] = ()
    """StaticRules, looked at before rules.db."""
    launchd_certificate: str | None = None
    """The leaf certificate SHA-256 of launchd, allowed when no rule matches it (§8.3 step 4)."""
    all_event_upload: bool = False
    """EnableAllEventUpload: allowed executions are recorded too (§5.2)."""
    unknown_event_upload: bool = True
    """Not DisableUnknownEventUpload: ALLOW_UNKNOWN (Monitor mode) executions are recorded (§5.2)."""
    fail_closed: bool = False
    """FailClosed: a CEL rule that fails to compile or evaluate blocks (BLOCK_UNKNOWN) instead of deciding nothing."""

    @classmethod
    def from_config(cls, config: Config, *, launchd_certificate: str | None = None) -> PolicySettings:
        """The settings of `config`: pass the configuration in force (`santacore.sync.in_force`:
        the local file with the last sync's server settings on top), not the local file alone.
        Static rules are validated here (RuleError)."""
        return cls(
            mode=config.client_mode,
            transitive_rules=config.enable_transitive_rules,
            bad_signature_protection=config.enable_bad_signature_protection,
            page_zero_protection=config.enable_page_zero_protection,
            allowed_path_regex=config.allowed_path_regex,
            blocked_path_regex=config.blocked_path_regex,
            static_rules=tuple(Rule.from_wire(r) for r in config.static_rules),
            launchd_certificate=launchd_certificate,
            all_event_upload=config.enable_all_event_upload,
            unknown_event_upload=not config.disable_unknown_event_upload,
            fail_closed=config.fail_closed,
        )

    def creates_event(self, result: DecisionResult) -> bool:
        """§5.2: santad stores an event for every denial; for ALLOW_UNKNOWN unless
        DisableUnknownEventUpload; for other allows only with EnableAllEventUpload."""
        if self.all_event_upload or not result.allowed:
            return True
        return result.decision is Decision.ALLOW_UNKNOWN and self.unknown_event_upload


def compile_path_regex(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """A scope regex (`AllowedPathRegex`/`BlockedPathRegex`); "" means none.

    Santa compiles these with NSRegularExpression (ICU syntax) and ignores one that fails to
    compile; santacore compiles with Python's `re` and refuses it instead (RuleError), so the
    mistake surfaces when the configuration is read rather than as a silently missing scope.
    """
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise RuleError(f"invalid path regex {pattern!r}: {e}") from None


PATH_REGEX_TIMEOUT = 0.25
"""Seconds one scope regex may run against one path. The patterns come from a sync server or the
configuration file, so one with catastrophic backtracking (`(x|xx)+y`) must not stall a
decision: they are matched with the `regex` package, whose matcher takes a time limit (Python's
`re` has none, and took 53 s on `(x+x+)+y`). A match that runs out of time counts as no match
and is reported on stderr, naming the key and the pattern: that is what Santa does with a scope
regex it cannot use (one that does not compile is ignored), and it leaves the decision to the
remaining steps (rules were already looked at; the client mode's default decides), so an
unusable BlockedPathRegex cannot block everything and an unusable AllowedPathRegex cannot allow
anything."""


@functools.lru_cache(maxsize=32)
def _timed_pattern(pattern: str, flags: int) -> regex.Pattern[str]:
    import regex  # only when a scope regex is matched: `import santacore` stays cheap

    # VERSION0 is the `re`-compatible syntax (lookarounds such as Zentral's `(?!)` included).
    # Flag values differ between the two modules past these four; inline flags stay in `pattern`.
    same = {
        re.IGNORECASE: regex.IGNORECASE,
        re.MULTILINE: regex.MULTILINE,
        re.DOTALL: regex.DOTALL,
        re.VERBOSE: regex.VERBOSE,
    }
    wanted = regex.VERSION0
    for ours, theirs in same.items():
        if flags & ours:
            wanted |= theirs
    return regex.compile(pattern, wanted)


def scope_regex_matches(key: str, pattern: re.Pattern[str], path: str, *, timeout: float | None = None) -> bool:
    """`pattern` (the value of `key`, AllowedPathRegex or BlockedPathRegex) searched in `path`
    within `timeout` seconds (`PATH_REGEX_TIMEOUT`); no match, with a warning on stderr naming
    the key and the pattern, when time runs out or the pattern cannot be matched."""
    import regex

    limit = PATH_REGEX_TIMEOUT if timeout is None else timeout
    try:
        return _timed_pattern(pattern.pattern, pattern.flags).search(path, timeout=limit) is not None
    except TimeoutError:
        why = f"took longer than {limit:g} s on {path!r}"
    except regex.error as e:
        why = f"cannot be matched ({e})"
    print(f"santacore: warning: {key} {pattern.pattern!r} {why}; treated as no match", file=sys.stderr)
    return False


def _result(
    event_state: int,
    explanation: str,
    rule: Rule | None = None,
    *,
    silent: bool | None = None,
) -> DecisionResult:
    return DecisionResult(
        decision=Decision.from_event_state(event_state),
        rule=rule,
        silent=(rule is not None and rule.state is RuleState.SILENT_BLOCK) if silent is None else silent,
        custom_msg=rule.custom_msg if rule is not None else None,
        custom_url=rule.custom_url if rule is not None else None,
        explanation=explanation,
        event_state=event_state,
    )


def decide(
    identifiers: Identifiers,
    lookup: RuleLookup,
    settings: PolicySettings,
    *,
    path: str | None,
    is_macho: bool,
    missing_pagezero: bool,
    bad_signature: bool,
    cel: CELInputs | None = None,
) -> DecisionResult:
    """santad's decision (§8.3 steps 2–8, google/santa order) under `settings`; the first step that decides wins.

    A CEL rule (addendum §6) is evaluated with `cel`, the execution's inputs; its result is combined with the
    rule's type as a stored state would be, and when it decides nothing the lookup does not fall through to
    lower-precedence rules. Without `cel` (no execution to look at, as santactl's path decisions) a CEL rule
    decides nothing.
    `bad_signature` is a signature error other than "unsigned". `path` None means no file to
    look at (santactl checking a bare identifier): the scope steps 6–7 are skipped, as santad's
    `fileIsScopeBlocked:`/`fileIsScopeAllowed:` return nothing without a file. Step 1 (critical
    system binaries, hashed at santad's start on a Mac) is not modelled.
    """
    s = settings
    rule = find_rule(identifiers, lookup, static_rules=s.static_rules, launchd_certificate=s.launchd_certificate)
    why = "No rule matched"
    if rule is not None and rule.state is RuleState.CEL:
        decided, why = _cel_decision(rule, cel, s)
        if decided is not None:
            return decided
    elif rule is not None:
        state = rule_event_state(rule, transitive_rules=s.transitive_rules)
        if state is not None:
            return _result(state, f"{rule.type.wire} {_state_word(rule.state)} rule {rule.identifier}", rule)
        why = f"{rule.type.wire} {_state_word(rule.state)} rule ignored"
    if s.bad_signature_protection and bad_signature:
        return _result(Decision.BLOCK_CERTIFICATE.event_state, "Blocked due to signature error")
    if path is not None:
        if s.blocked_path_regex is not None and scope_regex_matches("BlockedPathRegex", s.blocked_path_regex, path):
            return _result(Decision.BLOCK_SCOPE.event_state, "Blocked Path Regex")
        if s.page_zero_protection and missing_pagezero:
            return _result(Decision.BLOCK_SCOPE.event_state, "Missing __PAGEZERO")
        if s.allowed_path_regex is not None and scope_regex_matches("AllowedPathRegex", s.allowed_path_regex, path):
            return _result(Decision.ALLOW_SCOPE.event_state, "Allowed Path Regex")
        if not is_macho:
            return _result(Decision.ALLOW_SCOPE.event_state, "Not a Mach-O")
    if s.mode == ClientMode.MONITOR:
        return _result(Decision.ALLOW_UNKNOWN.event_state, f"{why}; Monitor mode allows")
    return _result(Decision.BLOCK_UNKNOWN.event_state, f"{why}; {_mode_name(s.mode)} mode blocks")


# A CEL result (santa.cel.v1.ReturnValue) as the rule state it stands for (SNTPolicyProcessor); SILENT_GUI_BLOCKLIST
# and SILENT_TTY_BLOCKLIST are blocks that silence only the dialog / only the terminal message ([N] states 12, 13,
# which santacore does not store): a block here, with the silence named in the explanation.
_CEL_STATES: Mapping[int, RuleState] = {
    1: RuleState.ALLOW,
    2: RuleState.ALLOW_COMPILER,
    3: RuleState.BLOCK,
    4: RuleState.SILENT_BLOCK,
    9: RuleState.BLOCK,
    10: RuleState.BLOCK,
}
_CEL_SILENCE = {9: " (no GUI dialog)", 10: " (no TTY message)"}


def _cel_decision(rule: Rule, inputs: CELInputs | None, s: PolicySettings) -> tuple[DecisionResult | None, str]:
    """A CEL rule's decision, or None and why it made none (the caller goes on without lower-precedence rules)."""
    what = f"{rule.type.wire} CEL rule {rule.identifier}"
    if inputs is None:
        return None, f"{what} not evaluated (no execution to evaluate it for)"
    from santacore.santad.cel import RETURN_NAMES, CELError, evaluate  # loads cel-cpp: only for a CEL rule

    assert rule.cel_expr is not None  # Rule.create refuses a CEL rule without one
    try:
        value = evaluate(rule.cel_expr, inputs)
    except CELError as e:
        if s.fail_closed:
            return _result(Decision.BLOCK_UNKNOWN.event_state, f"{what} failed ({e}); FailClosed blocks"), ""
        return None, f"{what} failed ({e})"
    name = RETURN_NAMES.get(value, str(value))
    state = _CEL_STATES.get(value)
    if state is None:
        return None, f"{what} returned {name} (no decision)"
    event_state = rule_event_state(dataclasses.replace(rule, state=state), transitive_rules=s.transitive_rules)
    if event_state is None:
        return None, f"{what} returned {name}, which a {rule.type.wire} rule cannot decide"
    silent = state is RuleState.SILENT_BLOCK
    return _result(event_state, f"{what} returned {name}{_CEL_SILENCE.get(value, '')}", rule, silent=silent), ""


def decide_for_file(
    fi: FileInfo,
    lookup: RuleLookup,
    settings: PolicySettings,
    *,
    cs_flags: int | None = None,
    cel: CELInputs | None = None,
) -> DecisionResult:
    """`decide` with everything a file tells: its identifiers (`Identifiers.from_file_info`), path,
    Mach-O-ness, `__PAGEZERO`, and whether its signature fails for a reason other than being unsigned;
    `cel`: the execution's CEL inputs (`CELInputs.for_file`), for CEL rules."""
    return decide(
        Identifiers.from_file_info(fi, cs_flags=cs_flags),
        lookup,
        settings,
        path=fi.path,
        is_macho=fi.macho.is_macho,
        missing_pagezero=fi.missing_pagezero,
        bad_signature=fi.signing_status == "invalid",
        cel=cel,
    )
