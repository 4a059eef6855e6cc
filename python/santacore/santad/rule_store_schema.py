"""rules.db's layout (spec §8.7): Santa's schema versions 1–7 and their migrations, santacore's version 8 (Santa's 7
plus [N]'s `cel_expr` column, for CEL rules), the column lists the store reads and writes, a rule as a row (and a CEL
rule that cannot be one, `RejectedRule`), and the check that a file is an SQLite database before SQLite sees it."""

from __future__ import annotations

import errno
from dataclasses import dataclass

from santacore.errors import StoreError
from santacore.files import UnsuitableFileError, read_regular_file_head
from santacore.santad.rules import Rule, RuleState, RuleType

SCHEMA_VERSION = 8
SANTA_SCHEMA_VERSION = 7  # google/santa's last; 8 is santacore's (7 + `cel_expr`)
SQLITE_MAGIC = b"SQLite format 3\x00"
SANTA_COLUMNS = frozenset({"identifier", "state", "type", "custommsg", "timestamp", "customurl"})
COLUMNS = SANTA_COLUMNS | {"cel_expr"}

# The `rules` columns each older Santa schema version has, to recognise a database before migrating it.
V1_COLUMNS = frozenset({"shasum", "state", "type", "custommsg"})
OLD_COLUMNS = {
    1: V1_COLUMNS,
    2: V1_COLUMNS,
    3: V1_COLUMNS | {"timestamp"},
    4: SANTA_COLUMNS - {"customurl"},
    5: SANTA_COLUMNS - {"customurl"},
    6: SANTA_COLUMNS - {"customurl"},
    7: SANTA_COLUMNS,
}
# Santa's migrations (SNTRuleTable `initializeDatabase:fromVersion:`): the statements that take a
# database from version N-1 to N.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("DROP VIEW IF EXISTS binrules", "DROP VIEW IF EXISTS certrules"),
    3: ("ALTER TABLE rules ADD 'timestamp' INTEGER",),
    4: ("ALTER TABLE rules RENAME COLUMN 'shasum' TO 'identifier'",),
    5: (
        "UPDATE rules SET type = 1000 WHERE type = 1",
        "UPDATE rules SET type = 3000 WHERE type = 2",
        "UPDATE rules SET type = 4000 WHERE type = 3",
        "UPDATE rules SET type = 2000 WHERE type = 4",
    ),
    6: (
        "UPDATE rules SET identifier = LOWER(identifier) WHERE type = 1000 OR type = 3000",
        "UPDATE rules SET identifier = UPPER(identifier) WHERE type = 4000",
    ),
    7: ("ALTER TABLE rules ADD 'customurl' TEXT",),
    8: ("ALTER TABLE rules ADD 'cel_expr' TEXT",),  # santacore's step: [N]'s column for CEL rules
}
CREATE = (
    "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
    "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT, 'cel_expr' TEXT)",
    "CREATE UNIQUE INDEX rulesunique ON rules (identifier, type)",
)
ROW_COLUMNS = "identifier, state, type, custommsg, customurl, timestamp, cel_expr"
# One query, highest precedence first: DB type values are ordered by precedence (§8.3 step 2).
FIND_WHERE = (
    " WHERE " + " OR ".join(f"(identifier=? AND type={t.value})" for t in sorted(RuleType)) + " ORDER BY type LIMIT 1"
)


def check_header(path: str) -> None:
    """Refuse, without letting SQLite near it, a file that is not an SQLite database (an empty file
    is one: SQLite gives it a schema)."""
    try:
        head = read_regular_file_head(path, len(SQLITE_MAGIC))  # a FIFO here would block a plain open
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StoreError(f"{path}: is a directory, not a rules database") from None
    except UnsuitableFileError as e:
        if e.errno == errno.EISDIR:
            raise StoreError(f"{path}: is a directory, not a rules database") from None
        raise StoreError(f"{path}: {e.strerror}, not a rules database; left untouched") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot read: {e.strerror or e}") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite database (a rules.db was expected); left untouched")


@dataclass(frozen=True)
class RejectedRule:
    """A rule of a batch that was not stored because its CEL expression does not compile (santad's
    `SNTErrorCodeRuleInvalidCELExpression`): its 1-based position in the batch (in a staged download, within the
    `add` call), the rule, and the compiler's reason."""

    position: int
    rule: Rule
    reason: str
    batch: int = 1


_Row = tuple[str, int, int, str | None, str | None, int, str | None]


def _row(rule: Rule) -> _Row:
    """A rule as the columns (identifier, state, type, custommsg, customurl, timestamp, cel_expr) of rules.db."""
    return (
        rule.identifier,
        rule.state.value,
        rule.type.value,
        rule.custom_msg,
        rule.custom_url,
        rule.timestamp,
        rule.cel_expr,
    )


def _cel_problem(rule: Rule) -> str | None:
    """Why a CEL rule cannot be stored (its expression does not compile), or None; None for other rules."""
    if rule.state is not RuleState.CEL or rule.cel_expr is None:
        return None
    from santacore.santad.cel import compile_error  # cel-cpp is loaded only when there is a CEL rule

    why = compile_error(rule.cel_expr)
    return None if why is None else f"invalid CEL expression: {why}"
