"""Santa's rules (spec §8.1–8.2, §8.6): the rule model, a file's identifiers, and santactl rule's messages.

`Rule` is one row of rules.db, validated and normalised the way northpolesec/santa's `SNTRule`
does it (strict: a disallowed character rejects the identifier, nothing is trimmed).
`Identifiers` are the five values a file is looked up by (`santacore.santad.policy.decide` walks
santad's decision from them). `check_message` / `modify_message` are `santactl rule`'s lines. Nothing here prints or
touches the disk: the store is `santacore.santad.rule_store`, the words on screen are the CLI's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from santacore.errors import SantacoreError
from santacore.santad.sessions import CS_DEV_CODE, CS_HARD, CS_KILL, CS_SIGNED, CS_VALID

if TYPE_CHECKING:
    from santacore.identity.fileinfo import FileInfo

# Seconds from the Unix epoch to Apple's reference date (2001-01-01 UTC): rules.db timestamps count from there.
APPLE_EPOCH = 978307200

# santad's internal SNTEventStates that have no wire name (spec §4.2: uploaded as UNKNOWN).
EVENT_STATE_ALLOW_COMPILER = 1 << 44
EVENT_STATE_ALLOW_TRANSITIVE = 1 << 45

TEAM_ID_LENGTH = 10
_HEX = frozenset("0123456789abcdefABCDEF")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class RuleError(SantacoreError, ValueError):
    """A rule that Santa would refuse: bad identifier, unknown policy or type, empty batch."""


class RuleType(IntEnum):
    """DB `type` values (ordered by precedence: lower wins)."""

    CDHASH = 500
    BINARY = 1000
    SIGNINGID = 2000
    CERTIFICATE = 3000
    TEAMID = 4000

    @property
    def wire(self) -> str:
        """The `rule_type` string of the sync protocol and santactl's JSON."""
        return self.name

    @property
    def proto_number(self) -> int:
        return _TYPE_PROTO[self]

    @property
    def kind(self) -> str:
        """What `santactl rule` calls it in `Added rule for <kind>: ...`."""
        return _TYPE_KIND[self]

    @property
    def label(self) -> str:
        """What `santactl rule --check` calls it: `Allowed (<label>)`."""
        return _TYPE_LABEL[self]

    @classmethod
    def from_wire(cls, value: object) -> RuleType:
        """A `rule_type` string (any case, as santactl's import upper-cases it) or proto number."""
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool):
            for t, number in _TYPE_PROTO.items():
                if number == value:
                    return t
        raise RuleError(f"Rule received with invalid rule type {value!r}")


class RuleState(IntEnum):
    """DB `state` values; `.policy` is the sync/santactl string."""

    ALLOW = 1
    BLOCK = 2
    SILENT_BLOCK = 3
    REMOVE = 4
    ALLOW_COMPILER = 5
    ALLOW_TRANSITIVE = 6
    CEL = 9
    """[N] SNTRuleStateCEL: decided by the rule's `cel_expr` (cel.v1 environment), addendum §6."""

    @property
    def policy(self) -> str:
        """The `policy` string; transitive rules are made locally and have none."""
        try:
            return _STATE_POLICY[self]
        except KeyError:
            raise RuleError("ALLOW_TRANSITIVE rules are created locally and have no policy string") from None

    @property
    def label(self) -> str:
        """The policy string, or `ALLOWLIST_TRANSITIVE` for the locally made transitive rules:
        for listings, never for the wire."""
        return _STATE_POLICY.get(self, "ALLOWLIST_TRANSITIVE")

    @property
    def proto_number(self) -> int:
        return _POLICY_PROTO[self.policy]

    @property
    def is_allow(self) -> bool:
        return self in (RuleState.ALLOW, RuleState.ALLOW_COMPILER, RuleState.ALLOW_TRANSITIVE)

    @property
    def is_block(self) -> bool:
        return self in (RuleState.BLOCK, RuleState.SILENT_BLOCK)

    @classmethod
    def from_policy(cls, value: object) -> RuleState:
        """A `policy` string (any case; the deprecated WHITELIST/BLACKLIST spellings too) or proto number."""
        if isinstance(value, str) and value.upper() in _POLICY_STATE:
            return _POLICY_STATE[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool):
            for policy, number in _POLICY_PROTO.items():
                if number == value:
                    return _POLICY_STATE[policy]
        raise RuleError(f"Rule received with invalid policy {value!r}")


_TYPE_PROTO = {
    RuleType.BINARY: 1,
    RuleType.CERTIFICATE: 2,
    RuleType.TEAMID: 3,
    RuleType.SIGNINGID: 4,
    RuleType.CDHASH: 5,
}
_TYPE_KIND = {
    RuleType.CDHASH: "CDHash",
    RuleType.BINARY: "SHA-256",
    RuleType.SIGNINGID: "Signing ID",
    RuleType.CERTIFICATE: "Certificate SHA-256",
    RuleType.TEAMID: "Team ID",
}
_TYPE_LABEL = {
    RuleType.CDHASH: "CDHash",
    RuleType.BINARY: "Binary",
    RuleType.SIGNINGID: "SigningID",
    RuleType.CERTIFICATE: "Certificate",
    RuleType.TEAMID: "TeamID",
}
_STATE_POLICY = {
    RuleState.ALLOW: "ALLOWLIST",
    RuleState.BLOCK: "BLOCKLIST",
    RuleState.SILENT_BLOCK: "SILENT_BLOCKLIST",
    RuleState.REMOVE: "REMOVE",
    RuleState.ALLOW_COMPILER: "ALLOWLIST_COMPILER",
    RuleState.CEL: "CEL",
}
_POLICY_PROTO = {"ALLOWLIST": 1, "ALLOWLIST_COMPILER": 2, "BLOCKLIST": 3, "SILENT_BLOCKLIST": 4, "REMOVE": 5, "CEL": 6}
_POLICY_STATE = {policy: state for state, policy in _STATE_POLICY.items()} | {
    "WHITELIST": RuleState.ALLOW,
    "WHITELIST_COMPILER": RuleState.ALLOW_COMPILER,
    "BLACKLIST": RuleState.BLOCK,
    "SILENT_BLACKLIST": RuleState.SILENT_BLOCK,
}

# santactl's own words where it has them (§8.6); ours for the two types it leaves to SNTRule.
_BAD_IDENTIFIER = {
    RuleType.BINARY: "BINARY or CERTIFICATE rules require a valid SHA-256",
    RuleType.CERTIFICATE: "BINARY or CERTIFICATE rules require a valid SHA-256",
    RuleType.CDHASH: "CDHASH rules require a valid hex string of length 40",
    RuleType.TEAMID: "TEAMID rules require a Team ID of exactly 10 characters A-Z or 0-9",
    RuleType.SIGNINGID: "SIGNINGID rules require TEAMID:signing.id or platform:signing.id "
    "(a 10-character Team ID or `platform`, a colon, then a non-empty signing ID)",
}


def apple_timestamp(unix: float | None = None) -> int:
    """Whole seconds since 2001-01-01 UTC (rules.db's `timestamp`), now unless given Unix seconds."""
    return int((time.time() if unix is None else unix) - APPLE_EPOCH)


def normalise_identifier(rule_type: RuleType, identifier: str) -> str:
    """The identifier as rules.db stores it, or RuleError ([N] `SNTRule`: strict, never trimmed)."""
    bad = RuleError(_BAD_IDENTIFIER[rule_type])
    if not isinstance(identifier, str) or not identifier:
        raise bad
    if rule_type in (RuleType.BINARY, RuleType.CERTIFICATE, RuleType.CDHASH):
        length = 40 if rule_type is RuleType.CDHASH else 64
        if len(identifier) != length or not set(identifier) <= _HEX:
            raise bad
        return identifier.lower()
    if rule_type is RuleType.TEAMID:
        if len(identifier) != TEAM_ID_LENGTH or not set(identifier) <= _ALNUM:
            raise bad
        return identifier.upper()
    team, sep, signing_id = identifier.partition(":")
    if not sep or not signing_id:
        raise bad
    if team.lower() == "platform":
        team = "platform"
    elif len(team) != TEAM_ID_LENGTH or not set(team) <= _ALNUM:
        raise bad
    else:
        team = team.upper()
    try:
        signing_id.encode("utf-8")
    except UnicodeEncodeError:
        raise bad from None
    return f"{team}:{signing_id}"


def _optional_text(value: object) -> str | None:
    """santactl's reading of custom_msg/custom_url: a non-empty string, else none."""
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Rule:
    """One rule. Build with `Rule.create` (validated); the constructor takes stored rows as they are."""

    identifier: str
    type: RuleType
    state: RuleState
    custom_msg: str | None = None
    custom_url: str | None = None
    timestamp: int = 0
    cel_expr: str | None = None
    """The expression of a CEL rule (state CEL); None for every other state."""

    @classmethod
    def create(
        cls,
        identifier: str,
        type: RuleType | int,
        state: RuleState | int,
        *,
        custom_msg: str | None = None,
        custom_url: str | None = None,
        timestamp: int | None = None,
        cel_expr: str | None = None,
    ) -> Rule:
        """A validated, normalised rule; a transitive rule's timestamp defaults to now (as santad's). A CEL rule
        needs a non-empty `cel_expr` ([N] `SNTRule` drops one without); other states keep none. Whether the
        expression compiles is checked where Santa checks it, on insert (`santacore.santad.rule_store`)."""
        try:
            rule_type, rule_state = RuleType(type), RuleState(state)
        except ValueError as e:
            raise RuleError(f"Rule array contained invalid entry: {e}") from None
        if timestamp is None:
            timestamp = apple_timestamp() if rule_state is RuleState.ALLOW_TRANSITIVE else 0
        if rule_state is RuleState.CEL:
            if not isinstance(cel_expr, str) or not cel_expr.strip():
                raise RuleError("CEL rules require a non-empty cel_expr")
        else:
            cel_expr = None
        return cls(
            identifier=normalise_identifier(rule_type, identifier),
            type=rule_type,
            state=rule_state,
            custom_msg=_optional_text(custom_msg),
            custom_url=_optional_text(custom_url),
            timestamp=timestamp,
            cel_expr=cel_expr,
        )

    def validated(self) -> Rule:
        """This rule passed through `create` (normalised), or RuleError."""
        return Rule.create(
            self.identifier,
            self.type,
            self.state,
            custom_msg=self.custom_msg,
            custom_url=self.custom_url,
            timestamp=self.timestamp,
            cel_expr=self.cel_expr,
        )

    def listing(self) -> dict[str, str]:
        """The rule as `santacore rule --list --json` shows it: the wire form's keys, transitive
        rules included (their policy reads `ALLOWLIST_TRANSITIVE`)."""
        return {**self.to_wire_fields(), "policy": self.state.label}

    def to_wire_fields(self) -> dict[str, str]:
        fields = {
            "identifier": self.identifier,
            "rule_type": self.type.wire,
            "custom_msg": self.custom_msg or "",
            "custom_url": self.custom_url or "",
        }
        if self.cel_expr is not None:
            fields["cel_expr"] = self.cel_expr
        return fields

    def to_wire(self) -> dict[str, str]:
        """santactl's export / the sync `Rule` object: `{identifier, policy, rule_type, custom_msg, custom_url}`,
        and `cel_expr` for a CEL rule."""
        fields = self.to_wire_fields()
        wire = {
            "identifier": fields["identifier"],
            "policy": self.state.policy,
            "rule_type": fields["rule_type"],
            "custom_msg": fields["custom_msg"],
            "custom_url": fields["custom_url"],
        }
        if self.cel_expr is not None:
            wire["cel_expr"] = self.cel_expr
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> Rule:
        """A rule from sync or santactl-import JSON ([N] `initWithDictionary`: keys in any case, `sha256`
        standing in for an empty `identifier`, empty messages meaning none; a CEL rule's expression as `cel_expr`
        or protobuf-JSON's `celExpr`)."""
        if not isinstance(obj, Mapping):
            raise RuleError(f"Rule received with invalid type {type(obj).__name__}")
        d = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
        given = identifier = d.get("identifier")
        if not isinstance(identifier, str) or not identifier:
            identifier = d.get("sha256")
        if not isinstance(identifier, str) or not identifier:
            shown = given if "identifier" in d else identifier
            raise RuleError(f"Rule received with missing/invalid identifier {shown!r}")
        if "policy" not in d:
            raise RuleError("Rule received with missing policy")
        if "rule_type" not in d:
            raise RuleError("Rule received with missing rule type")
        state = RuleState.from_policy(d["policy"])
        return cls.create(
            identifier,
            RuleType.from_wire(d["rule_type"]),
            state,
            custom_msg=_optional_text(d.get("custom_msg")),
            custom_url=_optional_text(d.get("custom_url")),
            cel_expr=_cel_expr(d),
        )


def _cel_expr(d: Mapping[str, Any]) -> str | None:
    """`cel_expr` (the proto name) or `celExpr` (protobuf's JSON printer; keys here are lower-cased)."""
    for key in ("cel_expr", "celexpr"):
        value = d.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True)
class Identifiers:
    """What one execution is looked up by; None means "not used" (`identifier=NULL` never matches)."""

    cdhash: str | None = None
    binary: str | None = None
    signing_id: str | None = None
    certificate: str | None = None
    team_id: str | None = None

    def candidates(self) -> list[tuple[RuleType, str]]:
        """(type, identifier) pairs in precedence order, the unused ones left out."""
        pairs = (
            (RuleType.CDHASH, self.cdhash),
            (RuleType.BINARY, self.binary),
            (RuleType.SIGNINGID, self.signing_id),
            (RuleType.CERTIFICATE, self.certificate),
            (RuleType.TEAMID, self.team_id),
        )
        return [(t, v) for t, v in pairs if v]

    @classmethod
    def only(cls, rule_type: RuleType, identifier: str) -> Identifiers:
        """Just one identifier, as `santactl rule --check --identifier X [--teamid ...]` looks up."""
        field = {
            RuleType.CDHASH: "cdhash",
            RuleType.BINARY: "binary",
            RuleType.SIGNINGID: "signing_id",
            RuleType.CERTIFICATE: "certificate",
            RuleType.TEAMID: "team_id",
        }[rule_type]
        return cls(**{field: identifier})

    @classmethod
    def from_file_info(cls, fi: FileInfo, *, cs_flags: int | None = None) -> Identifiers:
        """The identifiers santad would look `fi` up by (§7.3, §8.3 step 2).

        A file alone cannot say how the kernel flagged the running process, so by default this is
        santad's decision for a *path* (`decisionForFilePath`, what `santactl fileinfo` shows): the
        cdhash is used whenever the signature verifies, and "development-signed" means the leaf
        certificate carries a development OID. Pass `cs_flags` (an ES exec event's
        `codesigning_flags`) to decide as for an *execution* instead: Team ID and Signing ID only
        with CS_SIGNED|CS_VALID, the cdhash only with CS_KILL or CS_HARD, development = CS_DEV_CODE.
        Either way a signature that does not verify (unsigned included) drops the cdhash, Team ID,
        Signing ID and certificate, and development-signed code loses its Team ID and Signing ID.
        """
        status = fi.signing_status
        signature_ok = status in ("adhoc", "development", "production")
        chain = fi.signing_chain if signature_ok else ()
        leaf = chain[0] if chain else None
        cdhash = team_id = signing_id = None
        if cs_flags is None:
            if signature_ok:
                cdhash, team_id, signing_id = fi.cdhash, fi.team_id, fi.santa_signing_id
            development = leaf is not None and leaf.is_development
        else:
            if cs_flags & CS_SIGNED and cs_flags & CS_VALID:
                if fi.signing_id:
                    if fi.team_id:
                        team_id, signing_id = fi.team_id, f"{fi.team_id}:{fi.signing_id}"
                    elif fi.platform_binary:
                        signing_id = f"platform:{fi.signing_id}"
                if cs_flags & (CS_KILL | CS_HARD):
                    cdhash = fi.cdhash
            if not signature_ok:
                cdhash = team_id = signing_id = None
            else:
                team_id = team_id or fi.team_id
                if not team_id and signing_id and not fi.platform_binary:
                    signing_id = None
            development = bool(cs_flags & CS_DEV_CODE)
        if signing_id and development:
            team_id = signing_id = None
        return cls(
            cdhash=cdhash or None,
            binary=fi.sha256,
            signing_id=signing_id or None,
            certificate=leaf.sha256 if leaf is not None else None,
            team_id=team_id or None,
        )


def identifier_for_path(fi: FileInfo, rule_type: RuleType) -> str | None:
    """`santactl rule --path`: the identifier of `rule_type` for the file, None when it has none
    (an unverifiable signature yields none; unlike a decision, development signing is no bar)."""
    if rule_type is RuleType.BINARY:
        return fi.sha256
    if fi.signing_status not in ("adhoc", "development", "production"):
        return None
    if rule_type is RuleType.CERTIFICATE:
        return fi.signing_chain[0].sha256 if fi.signing_chain else None
    if rule_type is RuleType.CDHASH:
        return fi.cdhash
    if rule_type is RuleType.TEAMID:
        return fi.team_id
    return fi.santa_signing_id


NO_RULE = "No rule exists with the given parameters"


def check_message(rule: Rule | None) -> str:
    """`santactl rule --check`'s text (uncoloured): `Allowed (Binary, Compiler)` and the like; a
    transitive rule adds `last access date: <date>` in NSDate's description format."""
    if rule is None:
        return NO_RULE
    if rule.state is RuleState.CEL:
        return f"CEL ({rule.type.label}): {rule.cel_expr}"
    if rule.state.is_allow:
        text = "Allowed"
    elif rule.state.is_block:
        text = "Blocked"
    else:
        raise RuleError(f"Unexpected rule state: {int(rule.state)}")
    extra = {
        RuleState.ALLOW_COMPILER: ", Compiler",
        RuleState.ALLOW_TRANSITIVE: ", Transitive",
        RuleState.SILENT_BLOCK: ", Silent",
    }.get(rule.state, "")
    text = f"{text} ({rule.type.label}{extra})"
    if rule.state is RuleState.ALLOW_TRANSITIVE:
        when = datetime.fromtimestamp(APPLE_EPOCH + rule.timestamp, UTC)
        text += f"\nlast access date: {when:%Y-%m-%d %H:%M:%S} +0000"
    return text


def modify_message(rule: Rule, removed: bool | None = None) -> str:
    """`santactl rule`'s success line; `removed` defaults to whether the rule is a REMOVE."""
    if removed is None:
        removed = rule.state is RuleState.REMOVE
    return f"{'Removed' if removed else 'Added'} rule for {rule.type.kind}: {rule.identifier}."


def rules_to_json(rules: Iterable[Rule]) -> dict[str, list[dict[str, str]]]:
    """santactl's export document `{"rules": [...]}`; transitive rules are left out, as santactl does."""
    return {"rules": [r.to_wire() for r in rules if r.state is not RuleState.ALLOW_TRANSITIVE]}


def rules_from_json(document: object) -> list[Rule]:
    """The rules of a santactl import document `{"rules": [...]}`; the first bad one raises RuleError
    naming its position."""
    if not isinstance(document, Mapping):
        raise RuleError('expected a JSON object {"rules": [...]}')
    entries: Any = document.get("rules")
    if not isinstance(entries, list):
        raise RuleError('expected a JSON object {"rules": [...]}: "rules" is missing or not a list')
    rules = []
    for i, entry in enumerate(entries):
        try:
            rules.append(Rule.from_wire(entry))
        except RuleError as e:
            raise RuleError(f"Invalid rule #{i + 1}: {e}") from None
    return rules
