"""What each sync stage does in the testing sync server (§3, §4, §9): state read and updated, reply built.

Preflight, eventupload, ruledownload and postflight."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Final

from santacore.testing.profiles import CLEAN_TYPES, ZENTRAL_EMPTY_REGEX, PreflightSettings, Quirks
from santacore.testing.records import Reply
from santacore.testing.replies import error_reply
from santacore.testing.server_state import ServerState
from santacore.testing.wire import as_int, is_bundle_binary, rule_identifier, rule_key, version_tuple, wire_rule

_MAX_CURSORS: Final = 4096


def _random_cursor() -> str:
    return secrets.token_urlsafe(12)


class Stages:
    """The four stage handlers of a `SyncServer`, called with its lock held. `quirks` and `preflight` are the
    server's (changes to them apply to the next request); `new_cursor` names each ruledownload cursor."""

    def __init__(
        self,
        state: ServerState,
        quirks: Quirks,
        preflight: PreflightSettings,
        new_cursor: Callable[[], str] | None = None,
    ) -> None:
        self.state = state
        self.quirks = quirks
        self.preflight_settings = preflight
        self.new_cursor = new_cursor or _random_cursor
        self._cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}

    def handle(self, stage: str, machine_id: str, data: Any) -> Reply:
        """The answer to one decoded, validated stage request."""
        if stage == "preflight":
            return self.preflight(machine_id, data)
        if stage == "eventupload":
            return self.eventupload(machine_id, data)
        if stage == "ruledownload":
            return self.ruledownload(machine_id, data)
        return self.postflight(machine_id, data)

    def preflight(self, machine_id: str, data: Any) -> Reply:
        q, s = self.quirks, self.preflight_settings
        body = data if isinstance(data, dict) else {}
        state = self.state.machine(machine_id)
        pending = state.get("pending_sync_type")
        if q.clean_on_enrollment and not state.get("enrolled"):
            pending = pending or "CLEAN"
        if q.honour_clean_request and body.get("request_clean_sync") is True:
            pending = pending or "CLEAN"  # kept until a postflight confirms it
        sync_type = pending or s.sync_type
        state.update(
            enrolled=True,
            pending_sync_type=pending,
            santa_version=body.get("santa_version"),
            session={"clean": sync_type in CLEAN_TYPES, "sync_type": sync_type},
        )
        self.state.save_machine(machine_id, state)
        self.state.receive("preflight", machine_id, [data])

        out: dict[str, Any]
        if q.preflight_style == "moroz":  # every field of santa.Preflight, in struct order (§9.2)
            clean = sync_type in CLEAN_TYPES if sync_type is not None else q.default_clean_sync
            out = {
                "client_mode": s.client_mode or "MONITOR",
                "blocked_path_regex": s.blocked_path_regex or "",
                "allowed_path_regex": s.allowed_path_regex or "",
                "batch_size": s.batch_size,
                "enable_all_event_upload": s.enable_all_event_upload,
                "enable_bundles": s.enable_bundles,
                "enable_transitive_rules": s.enable_transitive_rules,
                "clean_sync": clean,
                "full_sync_interval": s.full_sync_interval,
            }
        elif q.preflight_style == "zentral":  # §9.4
            out = {
                "client_mode": s.client_mode or "MONITOR",
                "batch_size": s.batch_size,
                "full_sync_interval": s.full_sync_interval,
                "enable_bundles": s.enable_bundles,
                "enable_transitive_rules": s.enable_transitive_rules,
                "enable_all_event_upload": s.enable_all_event_upload,
                "allowed_path_regex": s.allowed_path_regex or ZENTRAL_EMPTY_REGEX,
                "blocked_path_regex": s.blocked_path_regex or ZENTRAL_EMPTY_REGEX,
            }
            minimum = q.sync_type_min_version
            if minimum is not None and version_tuple(body.get("santa_version")) < minimum:
                out["clean_sync"] = sync_type in CLEAN_TYPES
            else:
                out["sync_type"] = sync_type or "NORMAL"
        else:  # protobuf-JSON PreflightResponse: field-number order, defaults omitted (§2.3, §3.1)
            candidates: list[tuple[str, Any]] = [
                ("client_mode", s.client_mode),
                ("sync_type", sync_type),
                ("batch_size", s.batch_size),
                ("enable_bundles", s.enable_bundles),
                ("enable_transitive_rules", s.enable_transitive_rules),
                ("enable_all_event_upload", s.enable_all_event_upload),
                ("disable_unknown_event_upload", s.disable_unknown_event_upload),
                ("full_sync_interval", s.full_sync_interval),
            ]
            out = {k: v for k, v in candidates if v not in (None, 0, False, "")}
            regexes = (("allowed_path_regex", s.allowed_path_regex), ("blocked_path_regex", s.blocked_path_regex))
            out.update((key, value) for key, value in regexes if value is not None)  # even "" sets it (§3.1)
        if s.push is not None:
            out.update(s.push.preflight_fields())
        out.update(s.preflight_extra)
        return Reply(200, out)

    def eventupload(self, machine_id: str, data: Any) -> Reply:
        q, s = self.quirks, self.preflight_settings
        events = data.get("events") if isinstance(data, dict) else None
        events = [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
        self.state.receive("event", machine_id, events)
        wanted: list[str] = []
        for event in events:
            bundle_hash = event.get("file_bundle_hash")
            if not isinstance(bundle_hash, str) or not bundle_hash:
                continue
            count = as_int(event.get("file_bundle_binary_count"))
            if is_bundle_binary(event.get("decision")):
                sha = event.get("file_sha256")
                self.state.note_bundle(bundle_hash, count, sha if isinstance(sha, str) and sha else None)
            else:
                self.state.note_bundle(bundle_hash, count, None)
                if bundle_hash not in wanted:
                    wanted.append(bundle_hash)
        for bundle_hash in {e.get("file_bundle_hash") for e in events}:
            if isinstance(bundle_hash, str) and bundle_hash:
                self.state.settle_bundle(bundle_hash)
        asking = q.bundle_requests == "always" or (q.bundle_requests == "enabled" and s.enable_bundles)
        ask = [h for h in wanted if not self.state.bundle_complete(h)] if asking else []
        if q.response_style == "go":
            return Reply(200, {"Err": None})  # §9.2
        return Reply(200, {"event_upload_bundle_binaries": ask} if ask else {})

    def desired_rules(self, machine_id: str) -> list[dict[str, Any]]:
        merged = {rule_key(r): r for r in self.state.rules("")}
        merged.update((rule_key(r), r) for r in self.state.rules("m:" + machine_id))
        return list(merged.values())

    def ruledownload(self, machine_id: str, data: Any) -> Reply:
        q, s = self.quirks, self.preflight_settings
        style = q.response_style
        if not q.paginate:  # Moroz: the full rule set, one page, no cursor (§9.2)
            rules = [wire_rule(r, style) for r in self.desired_rules(machine_id)]
            return Reply(200, {"rules": rules or (None if q.null_empty_rules else [])})
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if cursor:
            entry = self._cursors.pop(str(cursor), None)
            if entry is None or entry[0] != machine_id:
                return error_reply(q.response_style, 400, f"unknown cursor {cursor!r}")
            _, snapshot, offset = entry
        else:
            snapshot, offset = self._download_set(machine_id), 0
        page_size = max(1, s.page_size or s.batch_size or 50)
        page = snapshot[offset : offset + page_size]
        after = offset + len(page)
        out: dict[str, Any] = {"rules": [wire_rule(r, style) for r in page]}
        if page if q.trailing_empty_page else after < len(snapshot):
            token = self.new_cursor()
            while len(self._cursors) >= _MAX_CURSORS:
                self._cursors.pop(next(iter(self._cursors)))
            self._cursors[token] = (machine_id, snapshot, after)
            out["cursor"] = token
        return Reply(200, out)

    def _download_set(self, machine_id: str) -> list[dict[str, Any]]:
        rules = self.desired_rules(machine_id)
        if not self.quirks.rule_delta:
            return rules
        # Zentral (§9.4): stage what this sync sends; a postflight commits it.
        state = self.state.machine(machine_id)
        session = state.get("session") or {"clean": False}
        desired = {rule_key(r): r for r in rules if r.get("policy") != "REMOVE"}
        if session.get("clean"):
            staged = list(desired.values())
        else:
            committed: dict[str, dict[str, Any]] = state.get("committed") or {}
            staged = [r for key, r in desired.items() if committed.get(key) != r]
            staged += [
                {"identifier": rule_identifier(r), "policy": "REMOVE", "rule_type": r.get("rule_type")}
                for key, r in committed.items()
                if key not in desired
            ]
        state["session"] = {**session, "staged": staged}
        self.state.save_machine(machine_id, state)
        return staged

    def postflight(self, machine_id: str, data: Any) -> Reply:
        q = self.quirks
        body = data if isinstance(data, dict) else {}
        self.state.receive("postflight", machine_id, [data])
        state = self.state.machine(machine_id)
        session = state.pop("session", None) or {}
        if q.postflight_sync_type_keys:
            reported = next((body[k] for k in q.postflight_sync_type_keys if body.get(k) is not None), None)
            confirmed_clean = reported in CLEAN_TYPES
            if confirmed_clean:
                state["pending_sync_type"] = None
        else:  # [G] sends no sync type: the postflight itself confirms what preflight asked
            confirmed_clean = bool(session.get("clean"))
            state["pending_sync_type"] = None
        if q.rule_delta:
            staged = session.get("staged") or []
            committed = {} if confirmed_clean and staged else dict(state.get("committed") or {})
            for rule in staged:
                if rule.get("policy") == "REMOVE":
                    committed.pop(rule_key(rule), None)
                else:
                    committed[rule_key(rule)] = rule
            state["committed"] = committed
        self.state.save_machine(machine_id, state)
        return Reply(200, {"NoOp": {}} if q.response_style == "go" else {})
