"""rules.db: santad's rule table (spec §8.7, google/santa `SNTRuleTable.mm`, `user_version` 7, plus `cel_expr`).

The schema, the precedence query, the batch semantics (one transaction; INSERT OR REPLACE; REMOVE
deletes; any bad rule or an empty batch rolls everything back) and the migrations from older
Santa databases are santad's. One deliberate deviation: santad opens the file with
`PRAGMA locking_mode = EXCLUSIVE` because it is the only process that ever touches it (santactl
asks santad over XPC). santacore's CLI and daemon both open the database themselves, so it is
opened in WAL mode with a busy timeout instead — readers never block the writer, and writers
queue (`BEGIN IMMEDIATE`) rather than fail — with `synchronous = FULL` so a committed rule
survives a power cut. A file that is not Santa's rules table is refused (StoreError) and left
exactly as it was: never migrated, converted to WAL, deleted or recreated.

CEL rules (addendum §6) need northpolesec/santa's `cel_expr` column, which google/santa's schema lacks: santacore's
schema version 8 is Santa's version 7 plus that column (NULL for every other rule), and opening a version-7 file
read-write adds it (ALTER TABLE, nothing else changes). A read-only open takes version 7 as it is (it can hold no CEL
rule). As santad does, every CEL expression is compiled when the rule is inserted: one that does not compile is
skipped (`RejectedRule`) while the rest of the batch commits.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

from santacore.errors import StoreError
from santacore.files import UnsuitableFileError, read_regular_file_head
from santacore.santad.rules import Identifiers, Rule, RuleError, RuleState, RuleType, rules_from_json, rules_to_json
from santacore.santad.rules_hash import HashedRow, rules_hash
from santacore.santad.statedir import create_private_file

SCHEMA_VERSION = 8
SANTA_SCHEMA_VERSION = 7  # google/santa's last; 8 is santacore's (7 + `cel_expr`)
SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_TIMEOUT = 10.0
SANTA_COLUMNS = frozenset({"identifier", "state", "type", "custommsg", "timestamp", "customurl"})
COLUMNS = SANTA_COLUMNS | {"cel_expr"}

# The `rules` columns each older Santa schema version has, to recognise a database before migrating it.
_V1_COLUMNS = frozenset({"shasum", "state", "type", "custommsg"})
_OLD_COLUMNS = {
    1: _V1_COLUMNS,
    2: _V1_COLUMNS,
    3: _V1_COLUMNS | {"timestamp"},
    4: SANTA_COLUMNS - {"customurl"},
    5: SANTA_COLUMNS - {"customurl"},
    6: SANTA_COLUMNS - {"customurl"},
    7: SANTA_COLUMNS,
}
# Santa's migrations (SNTRuleTable `initializeDatabase:fromVersion:`): the statements that take a
# database from version N-1 to N.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
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
_CREATE = (
    "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
    "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT, 'cel_expr' TEXT)",
    "CREATE UNIQUE INDEX rulesunique ON rules (identifier, type)",
)
_ROW_COLUMNS = "identifier, state, type, custommsg, customurl, timestamp, cel_expr"
# One query, highest precedence first: DB type values are ordered by precedence (§8.3 step 2).
_FIND_WHERE = (
    " WHERE " + " OR ".join(f"(identifier=? AND type={t.value})" for t in sorted(RuleType)) + " ORDER BY type LIMIT 1"
)


class Cleanup(Enum):
    """SNTRuleCleanup: what a batch deletes first, in its own transaction (§1.6)."""

    NONE = "none"
    NON_TRANSITIVE = "clean"
    ALL = "clean_all"


@dataclass(frozen=True)
class RejectedRule:
    """A rule of a batch that was not stored because its CEL expression does not compile (santad's
    `SNTErrorCodeRuleInvalidCELExpression`): its 1-based position in the batch (in a staged download, within the
    `add` call), the rule, and the compiler's reason."""

    position: int
    rule: Rule
    reason: str
    batch: int = 1


@dataclass(frozen=True)
class RuleCounts:
    """The preflight's rule counters (§3.1): by type, plus compiler and transitive rules of any type."""

    binary: int = 0
    certificate: int = 0
    compiler: int = 0
    transitive: int = 0
    teamid: int = 0
    signingid: int = 0
    cdhash: int = 0
    total: int = 0


class RuleStore:
    """rules.db. `created_fresh` says the file had no schema before (the next sync must be CLEAN_ALL)."""

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, read_only: bool = False
    ) -> None:
        """`read_only=True`: for commands that only look (`rule --list`, `fileinfo`, a check): the file is opened
        ``mode=ro`` with `query_only`, never created, migrated or switched to WAL, so a read-only state directory
        works; it must already hold Santa's current schema; a write raises StoreError."""
        self.path = os.fspath(path)
        self._lock = threading.RLock()
        self.read_only = read_only
        self._cel_column = "cel_expr"
        if read_only:
            self.created_fresh = False
            _check_header(self.path)  # first: it names a FIFO or a foreign file for what it is
            if not os.path.isfile(self.path):
                raise StoreError(f"{self.path}: no rules database here")
            try:
                self._db = sqlite3.connect(
                    f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro",
                    uri=True,
                    timeout=timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._db.execute("PRAGMA query_only = ON")
                version = self._user_version()
                if version not in (SCHEMA_VERSION, SANTA_SCHEMA_VERSION):
                    raise StoreError(
                        f"{self.path}: rules database has user_version {version}, not {SCHEMA_VERSION}; "
                        "it cannot be opened read-only (a read-write open migrates it)"
                    )
                if version == SANTA_SCHEMA_VERSION:  # Santa's own schema: no CEL rules in it
                    self._cel_column = "NULL"
                self._check_schema(COLUMNS if version == SCHEMA_VERSION else SANTA_COLUMNS)
            except sqlite3.Error as e:
                self._db.close()
                raise StoreError(f"{self.path}: cannot open read-only: {e}") from None
            except BaseException:
                self._db.close()
                raise
            return
        if self.path != ":memory:":
            if not os.path.lexists(self.path):
                create_private_file(self.path)
            _check_header(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open: {e}") from None
        try:
            self.created_fresh = self._prepare(timeout)
        except BaseException:
            self._db.close()
            raise

    # -- opening -------------------------------------------------------------------------------

    def _prepare(self, timeout: float) -> bool:
        try:
            version = self._user_version()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: rules database has user_version {version}, newer than the {SCHEMA_VERSION} "
                    "santacore understands (a newer Santa's or northpolesec/santa's); left untouched"
                )
            fresh = False
            if version < SCHEMA_VERSION:
                fresh = self._create_or_migrate()
            self._check_schema()
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and self.path != ":memory:":
                raise StoreError(f"{self.path}: cannot switch to WAL journaling (got {mode!r})")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            return fresh
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {e}") from None

    def _user_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _objects(self) -> list[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        return [name for (name,) in rows]

    def _columns(self) -> set[str]:
        return {row[1] for row in self._db.execute("PRAGMA table_info(rules)")}

    def _create_or_migrate(self) -> bool:
        """Create the schema (an empty file) or bring an older Santa schema to version 7, in one
        transaction taken before looking again, so two processes opening a new file don't race."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._user_version()
            fresh = False
            if version == 0:
                objects = self._objects()
                if objects:
                    raise StoreError(
                        f"{self.path}: not a rules database: it holds {', '.join(objects)} "
                        "and no Santa schema (user_version 0); left untouched"
                    )
                for statement in _CREATE:
                    self._db.execute(statement)
                fresh = True
            elif version < SCHEMA_VERSION:
                columns = self._columns()
                if not columns:
                    raise StoreError(f"{self.path}: user_version {version} but no 'rules' table; left untouched")
                if columns != _OLD_COLUMNS[version]:
                    raise StoreError(
                        f"{self.path}: user_version {version} but its 'rules' table has columns "
                        f"{sorted(columns) or 'none'}, not Santa's; left untouched"
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS.get(step, ()):
                        self._db.execute(statement)
                self._check_schema()  # before COMMIT: a table without its unique index is refused unchanged
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
            return fresh
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _check_schema(self, expected: frozenset[str] = COLUMNS) -> None:
        columns = self._columns()
        if not columns:
            raise StoreError(f"{self.path}: user_version {self._user_version()} but no 'rules' table; left untouched")
        if columns != expected:
            raise StoreError(
                f"{self.path}: the 'rules' table has columns {sorted(columns)}, not Santa's {sorted(expected)}; "
                "left untouched"
            )
        for index in self._db.execute("PRAGMA index_list(rules)").fetchall():
            name, unique = index[1], index[2]
            indexed = [row[2] for row in self._db.execute(f"PRAGMA index_info({_quote(name)})")]
            if unique and sorted(indexed) == ["identifier", "type"]:
                return
        raise StoreError(f"{self.path}: the 'rules' table lacks the unique (identifier, type) index; left untouched")

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RuleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any exception rolls it back whole."""
        with self._lock:
            if self.read_only:
                raise StoreError(f"{self.path}: opened read-only")
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: {e}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"{self.path}: {e}") from None
                raise

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: {e}") from None

    @property
    def _select(self) -> str:
        return f"SELECT {_ROW_COLUMNS.replace('cel_expr', self._cel_column)} FROM rules"

    def _rule(self, row: tuple[str, int, int, str | None, str | None, int | None, str | None]) -> Rule:
        identifier, state, rule_type, custom_msg, custom_url, timestamp, cel_expr = row
        try:
            return Rule(
                identifier, RuleType(rule_type), RuleState(state), custom_msg, custom_url, timestamp or 0, cel_expr
            )
        except ValueError:
            raise StoreError(
                f"{self.path}: rule {identifier!r} has type {rule_type} / state {state}, which Santa's schema "
                f"version {SCHEMA_VERSION} does not define"
            ) from None

    # -- rules ---------------------------------------------------------------------------------

    def add_rules(
        self,
        rules: Iterable[Rule],
        *,
        cleanup: Cleanup = Cleanup.NONE,
        rejected: list[RejectedRule] | None = None,
    ) -> int:
        """Apply one batch in one transaction (santad `addRules:ruleCleanup:error:`): each rule is
        validated and normalised, REMOVE deletes, others INSERT OR REPLACE on (identifier, type).
        An empty batch or any bad rule raises RuleError and changes nothing. A CEL rule whose expression does not
        compile is skipped and appended to `rejected`, as santad skips it; without a `rejected` list it is a bad
        rule like any other. Returns the batch size."""
        batch = list(rules)
        if not batch:
            raise RuleError("Empty rule array")
        with self._write() as db:
            if cleanup is Cleanup.ALL:
                db.execute("DELETE FROM rules")
            elif cleanup is Cleanup.NON_TRANSITIVE:
                db.execute("DELETE FROM rules WHERE state != ?", (RuleState.ALLOW_TRANSITIVE.value,))
            for i, entry in enumerate(batch, 1):
                rule = _checked_entry(entry, i)
                why = _cel_problem(rule)
                if why is not None:
                    if rejected is None:
                        raise RuleError(
                            f"Rule array contained invalid entry #{i} ({rule.type.wire} {rule.identifier}): {why}"
                        )
                    rejected.append(RejectedRule(i, rule, why))
                elif rule.state is RuleState.REMOVE:
                    db.execute("DELETE FROM rules WHERE identifier=? AND type=?", (rule.identifier, rule.type.value))
                else:
                    db.execute(
                        f"INSERT OR REPLACE INTO rules ({_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", _row(rule)
                    )
        return len(batch)

    @contextmanager
    def staging(self) -> Iterator[RuleStaging]:
        """A rule download's staging area: rules are validated and kept in a connection-private temporary table
        (SQLite's temp store, on disk) as pages arrive, so memory stays bounded however many there are; `apply`
        then writes them all to `rules` in one transaction, as `add_rules` would. Dropped on exit."""
        with self._lock:
            try:
                self._db.execute("DROP TABLE IF EXISTS temp.staged_rules")
                self._db.execute(
                    "CREATE TEMP TABLE staged_rules (seq INTEGER PRIMARY KEY, identifier TEXT NOT NULL, "
                    "state INTEGER NOT NULL, type INTEGER NOT NULL, custommsg TEXT, customurl TEXT, timestamp INTEGER, "
                    "cel_expr TEXT)"
                )
                self._db.execute("CREATE INDEX temp.staged_rules_key ON staged_rules (identifier, type, seq)")
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot stage rules: {e}") from None
        try:
            yield RuleStaging(self)
        finally:
            with self._lock, contextlib.suppress(sqlite3.Error):
                self._db.execute("DROP TABLE IF EXISTS temp.staged_rules")

    def replace_all(self, rules: Iterable[Rule], *, keep_transitive: bool = False) -> int:
        """A clean rule download: delete (CLEAN_ALL) or delete all but transitive rules (CLEAN), then
        apply `rules`, in one transaction. An empty download must not come here: santad skips the
        call, so nothing is deleted; this raises RuleError ("Empty rule array") and deletes nothing."""
        return self.add_rules(rules, cleanup=Cleanup.NON_TRANSITIVE if keep_transitive else Cleanup.ALL)

    def find(self, identifiers: Identifiers) -> Rule | None:
        """The one highest-precedence rule matching any of the identifiers (CDHASH > BINARY >
        SIGNINGID > CERTIFICATE > TEAMID), in one query."""
        rows = self._query(
            self._select + _FIND_WHERE,
            (
                identifiers.cdhash,
                identifiers.binary,
                identifiers.signing_id,
                identifiers.certificate,
                identifiers.team_id,
            ),
        )
        return self._rule(rows[0]) if rows else None

    def rules(self, type: RuleType | None = None) -> list[Rule]:
        """Every rule (of one type), by precedence then identifier."""
        if type is None:
            rows = self._query(f"{self._select} ORDER BY type, identifier")
        else:
            rows = self._query(f"{self._select} WHERE type=? ORDER BY identifier", (type.value,))
        return [self._rule(row) for row in rows]

    def counts(self) -> RuleCounts:
        """santad's rule counters, in one query."""
        (row,) = self._query(
            "SELECT "
            + ", ".join(
                (
                    f"COUNT(CASE WHEN type={RuleType.BINARY.value} THEN 1 END)",
                    f"COUNT(CASE WHEN type={RuleType.CERTIFICATE.value} THEN 1 END)",
                    f"COUNT(CASE WHEN state={RuleState.ALLOW_COMPILER.value} THEN 1 END)",
                    f"COUNT(CASE WHEN state={RuleState.ALLOW_TRANSITIVE.value} THEN 1 END)",
                    f"COUNT(CASE WHEN type={RuleType.TEAMID.value} THEN 1 END)",
                    f"COUNT(CASE WHEN type={RuleType.SIGNINGID.value} THEN 1 END)",
                    f"COUNT(CASE WHEN type={RuleType.CDHASH.value} THEN 1 END)",
                    "COUNT(*)",
                )
            )
            + " FROM rules"
        )
        return RuleCounts(*row)

    def rules_hash(self) -> str:
        """northpolesec/santa's `rules_hash` of this table (addendum §4, `santacore.santad.rules_hash`).

        Santa reads the rows with no ORDER BY: SQLite's scan of a rowid table, which is rowid order. Rules are
        written with INSERT OR REPLACE, which deletes a replaced row and inserts the new one with a fresh, larger
        rowid, so a re-added rule moves to the end, in Santa's table and in this one alike. `ORDER BY rowid` says
        that order out loud rather than trusting the planner to keep scanning the table (not its index)."""
        rows = self._query(
            f"SELECT identifier, {self._cel_column}, NULL, state, type FROM rules WHERE state != ? ORDER BY rowid",
            (RuleState.ALLOW_TRANSITIVE.value,),
        )
        return rules_hash(HashedRow(*row) for row in rows)

    def clear(self, *, include_transitive: bool = False) -> int:
        """`santactl rule --clean` (non-transitive rules) or `--clean-all`; returns how many were deleted."""
        with self._write() as db:
            if include_transitive:
                cursor = db.execute("DELETE FROM rules")
            else:
                cursor = db.execute("DELETE FROM rules WHERE state != ?", (RuleState.ALLOW_TRANSITIVE.value,))
            return cursor.rowcount

    def import_json(
        self,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        clean: bool = False,
        clean_all: bool = False,
        rejected: list[RejectedRule] | None = None,
    ) -> int:
        """`santactl rule --import FILE [--clean | --clean-all]`: a `{"rules": [...]}` document (a path
        or the parsed object) applied as one batch; `clean_all` wins over `clean`. Returns the count.
        `rejected`: as `add_rules` (CEL rules whose expression does not compile are skipped into it)."""
        if isinstance(source, Mapping):
            document: object = source
        else:
            path = os.fspath(source)
            with open(path, "rb") as f:
                data = f.read()
            try:
                document = json.loads(data)
            except (ValueError, UnicodeDecodeError) as e:
                raise RuleError(f"Failed to parse {path}: {e}") from None
        cleanup = Cleanup.ALL if clean_all else Cleanup.NON_TRANSITIVE if clean else Cleanup.NONE
        return self.add_rules(rules_from_json(document), cleanup=cleanup, rejected=rejected)

    def export_json(self, path: str | os.PathLike[str] | None = None) -> dict[str, list[dict[str, str]]]:
        """`santactl rule --export FILE`: every rule but the transitive ones as `{"rules": [...]}`;
        written to `path` (pretty-printed, replaced atomically) when given."""
        document = rules_to_json(self.rules())
        if path is not None:
            target = os.fspath(path)
            temporary = f"{target}.tmp{os.getpid()}"
            try:
                with open(temporary, "w", encoding="utf-8") as f:
                    json.dump(document, f, indent=2)
                    f.write("\n")
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        return document


def _check_header(path: str) -> None:
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


def _checked_entry(entry: object, position: int) -> Rule:
    """Entry `position` (1-based) of a rule batch, validated and normalised; RuleError naming it otherwise."""
    if not isinstance(entry, Rule):
        raise RuleError(f"Rule array contained invalid entry #{position}: {entry!r}")
    try:
        return entry.validated()
    except RuleError as e:
        raise RuleError(
            f"Rule array contained invalid entry #{position} ({entry.type!r} {entry.identifier!r}): {e}"
        ) from None


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RuleStaging:
    """`RuleStore.staging()`'s handle: `add` validates and stages rules, `count` says how many, `apply` commits."""

    def __init__(self, store: RuleStore) -> None:
        self._store = store
        self._count = 0
        self._batches = 0
        self.rejected: list[RejectedRule] = []
        """CEL rules not staged because their expression does not compile (santad skips them on insert)."""

    @property
    def count(self) -> int:
        """How many rules were handed to `add` (staged or rejected): a batch santad would insert."""
        return self._count

    def add(self, rules: Iterable[Rule]) -> None:
        rows: list[_Row] = []
        self._batches += 1
        handed = 0
        for entry in rules:
            handed += 1
            rule = _checked_entry(entry, self._count + handed)
            why = _cel_problem(rule)
            if why is None:
                rows.append(_row(rule))
            else:
                self.rejected.append(RejectedRule(handed, rule, why, self._batches))
        store = self._store
        with store._lock:
            try:
                store._db.executemany(
                    f"INSERT INTO temp.staged_rules ({_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
            except sqlite3.Error as e:
                raise StoreError(f"{store.path}: cannot stage rules: {e}") from None
        self._count += handed

    def apply(self, *, cleanup: Cleanup = Cleanup.NONE) -> int:
        """Write every staged rule in one transaction (REMOVE deletes, others INSERT OR REPLACE, in the order
        staged), after `cleanup`; RuleError ("Empty rule array") and no change when nothing is staged."""
        if not self._count:
            raise RuleError("Empty rule array")
        with self._store._write() as db:
            if cleanup is Cleanup.ALL:
                db.execute("DELETE FROM rules")
            elif cleanup is Cleanup.NON_TRANSITIVE:
                db.execute("DELETE FROM rules WHERE state != ?", (RuleState.ALLOW_TRANSITIVE.value,))
            db.execute(
                "DELETE FROM rules WHERE (identifier, type) IN "
                "(SELECT identifier, type FROM temp.staged_rules WHERE state = ?)",
                (RuleState.REMOVE.value,),
            )
            # The last staged rule for an (identifier, type) wins, as applying them in order would.
            db.execute(
                f"INSERT OR REPLACE INTO rules ({_ROW_COLUMNS}) "
                f"SELECT {_ROW_COLUMNS} FROM temp.staged_rules AS s "
                "WHERE seq = (SELECT MAX(seq) FROM temp.staged_rules WHERE identifier = s.identifier "
                "AND type = s.type) AND state != ? ORDER BY seq",
                (RuleState.REMOVE.value,),
            )
        return self._count
