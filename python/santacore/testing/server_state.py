"""Persistent state of the testing sync server in SQLite: rules, machines, bundles, received bodies.

":memory:" unless a path is given."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from santacore.testing.records import Bundle
from santacore.testing.wire import rule_key

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rules (scope TEXT NOT NULL, rule_key TEXT NOT NULL, seq INTEGER NOT NULL,
                                  body TEXT NOT NULL, PRIMARY KEY (scope, rule_key));
CREATE TABLE IF NOT EXISTS machines (machine_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (hash TEXT PRIMARY KEY, binary_count INTEGER, complete INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bundle_binaries (hash TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (hash, sha256));
CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                     machine_id TEXT NOT NULL, body TEXT NOT NULL);
"""


class ServerState:
    """Persistent server state. Callers hold the server lock; each method is one transaction."""

    def __init__(self, path: str | None) -> None:
        self.db = sqlite3.connect(path or ":memory:", check_same_thread=False, timeout=10)
        with self.db:
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def upsert_rules(self, scope: str, rules: Sequence[Mapping[str, Any]]) -> None:
        with self.db:
            (top,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM rules").fetchone()
            for offset, rule in enumerate(rules, 1):
                self.db.execute(
                    "INSERT INTO rules (scope, rule_key, seq, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, rule_key) DO UPDATE SET body = excluded.body",
                    (scope, rule_key(rule), top + offset, json.dumps(dict(rule))),
                )

    def delete_rules(self, scope: str, key: str | None) -> int:
        with self.db:
            if key is None:
                return self.db.execute("DELETE FROM rules WHERE scope = ?", (scope,)).rowcount
            return self.db.execute("DELETE FROM rules WHERE scope = ? AND rule_key = ?", (scope, key)).rowcount

    def rules(self, scope: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM rules WHERE scope = ? ORDER BY seq", (scope,))
        return [json.loads(body) for (body,) in rows]

    def machine(self, machine_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT state FROM machines WHERE machine_id = ?", (machine_id,)).fetchone()
        return cast(dict[str, Any], json.loads(row[0])) if row else {}

    def save_machine(self, machine_id: str, state: Mapping[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO machines (machine_id, state) VALUES (?, ?)", (machine_id, json.dumps(state))
            )

    def machines(self) -> dict[str, dict[str, Any]]:
        return {mid: json.loads(state) for mid, state in self.db.execute("SELECT machine_id, state FROM machines")}

    def receive(self, kind: str, machine_id: str, bodies: Sequence[Any]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO received (kind, machine_id, body) VALUES (?, ?, ?)",
                [(kind, machine_id, json.dumps(body)) for body in bodies],
            )

    def received(self, kind: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        rows = self.db.execute("SELECT machine_id, body FROM received WHERE kind = ? ORDER BY id", (kind,))
        for machine_id, body in rows:
            out.setdefault(machine_id, []).append(json.loads(body))
        return out

    def note_bundle(self, bundle_hash: str, count: int | None, binary: str | None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO bundles (hash, binary_count, complete) VALUES (?, ?, 0)"
                " ON CONFLICT (hash) DO UPDATE SET binary_count = COALESCE(excluded.binary_count, binary_count)",
                (bundle_hash, count),
            )
            if binary:
                self.db.execute("INSERT OR IGNORE INTO bundle_binaries VALUES (?, ?)", (bundle_hash, binary))

    def settle_bundle(self, bundle_hash: str) -> None:
        """After an upload: complete once exactly `file_bundle_binary_count` distinct binaries are held
        (§9.4; more than that leaves the bundle incomplete for ever). Never undone."""
        with self.db:
            self.db.execute(
                "UPDATE bundles SET complete = 1 WHERE hash = ? AND complete = 0 AND binary_count ="
                " (SELECT COUNT(*) FROM bundle_binaries WHERE hash = bundles.hash)",
                (bundle_hash,),
            )

    def bundles(self) -> dict[str, Bundle]:
        binaries: dict[str, set[str]] = {}
        for bundle_hash, sha in self.db.execute("SELECT hash, sha256 FROM bundle_binaries"):
            binaries.setdefault(bundle_hash, set()).add(sha)
        return {
            h: Bundle(h, count, frozenset(binaries.get(h, ())), bool(complete))
            for h, count, complete in self.db.execute("SELECT hash, binary_count, complete FROM bundles")
        }

    def bundle_complete(self, bundle_hash: str) -> bool:
        row = self.db.execute("SELECT complete FROM bundles WHERE hash = ?", (bundle_hash,)).fetchone()
        return bool(row and row[0])
