"""A rule-download-only sync (addendum §2): what a `rule_sync` push message, `SyncDaemon.request_rule_sync()` and
`santacore sync --rules-only` run.

Only the ruledownload stage: every page (by cursor, within the same bounds and time budget as a full sync),
staged on disk and applied in one transaction with NORMAL cleanup (nothing removed but what the server REMOVEs).
No preflight, eventupload or postflight, so no rules hash, no settings and no sync type change hands; the XSRF
token the transport holds from earlier syncs is reused. When at least one rule arrived, the sync state records
`rule_sync_last_success` (Santa's RuleSyncLastSuccess); zero rules end the sync at once, touching nothing.
A failed page applies no rule at all (RULE_DOWNLOAD_FAILED, santactl's 3).
"""

from __future__ import annotations

import dataclasses

from santacore.errors import SyncError
from santacore.santad.rule_store import Cleanup
from santacore.sync.context import SyncContext
from santacore.sync.protocol import SyncType
from santacore.sync.stages import SyncResult, SyncStatus, begin_sync, download_and_apply
from santacore.sync.state import load_state, save_state

__all__ = ["rule_sync"]


def rule_sync(ctx: SyncContext, *, state_path: str) -> SyncResult:
    """Run one rule-download-only sync; never raises for server or network trouble (store failures do)."""
    result = SyncResult(performed=SyncType.NORMAL)
    if not begin_sync(ctx, result):
        return result
    try:
        download_and_apply(ctx, result, Cleanup.NONE)  # addendum §2: NORMAL cleanup
    except SyncError as e:
        result.status, result.error = SyncStatus.RULE_DOWNLOAD_FAILED, f"ruledownload: {e}"
        result.log.append(f"Rule download failed: {e}")
        result.events_left = ctx.events.count()
        return result
    for skipped in result.rules_not_applied:
        _warn(ctx, result, f"Rule not applied: {skipped.describe()}")
    if result.rules_received:
        state = load_state(state_path)
        save_state(state_path, dataclasses.replace(state, rule_sync_last_success=ctx.clock()))
    line = f"Rule-only sync complete: {result.rules_processed} of {result.rules_received} rules applied"
    result.log.append(line)
    ctx.log(line)
    result.events_left = ctx.events.count()
    return result


def _warn(ctx: SyncContext, result: SyncResult, line: str) -> None:
    result.log.append(line)
    (ctx.warn or ctx.log)(line)
