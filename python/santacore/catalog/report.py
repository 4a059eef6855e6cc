"""What a catalog holds, for a person: `summarise` reads a catalog once into a `CatalogSummary`
(counts, signers by binary count, binaries without a verified production or development signature,
failed artifacts); `summary_document`, `render_text` and `render_html` show it.

Names come from archives a stranger made: every one shown is passed through `visible` (control and
bidirectional-override characters written as escapes, so a name can neither drive a terminal nor
reorder a line) and, in HTML, escaped as well.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from santacore.catalog.store import CatalogStore

# Signing statuses with a verified signer (santad takes a Team ID / certificate from these).
SIGNED = ("development", "production")
# C0/C1 controls, DEL, and the characters that reorder text (bidi embeddings, overrides, isolates, marks).
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str | None) -> str:
    """`text` with every control, bidi-control and undecodable character written as an escape."""
    if text is None:
        return ""
    return _INVISIBLE.sub(
        lambda m: f"\\u{ord(m.group()):04x}" if ord(m.group()) > 0xFF else f"\\x{ord(m.group()):02x}", text
    )


@dataclass
class Signer:
    """A signing certificate (leaf) and what it signed in the catalog."""

    leaf_sha256: str
    common_name: str | None
    organization: str | None
    team_id: str | None
    binaries: int = 0
    distinct: set[str] = field(default_factory=set)
    artifacts: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)

    def document(self) -> dict[str, Any]:
        return {
            "leaf_sha256": self.leaf_sha256,
            "common_name": self.common_name,
            "organization": self.organization,
            "team_id": self.team_id,
            "binaries": self.binaries,
            "distinct_binaries": len(self.distinct),
            "artifacts": len(self.artifacts),
            "signing_statuses": dict(sorted(self.statuses.items())),
        }


@dataclass
class CatalogSummary:
    counts: dict[str, int]
    statuses: Counter[str]
    signers: list[Signer]
    # Binaries santad would find no signer for: unsigned, ad-hoc, or a signature that does not verify.
    unsigned: list[dict[str, Any]]
    unsigned_total: int
    failures: list[dict[str, Any]]
    limit: int | None


def summarise(store: CatalogStore, *, limit: int | None = None) -> CatalogSummary:
    """Read the catalog once. `limit` bounds the unsigned list kept (the counts are always whole)."""
    artifact_paths: dict[int, str] = {}
    failures: list[dict[str, Any]] = []
    for artifact in store.artifacts():
        path = artifact.paths[0] if artifact.paths else f"(sha256 {artifact.sha256})"
        artifact_paths[artifact.id] = path
        if artifact.status == "failed":
            failures.append({"path": path, "kind": artifact.kind, "sha256": artifact.sha256, "error": artifact.error})
    counts = dict(store.counts())
    counts["bundles_hashed"] = sum(1 for b in store.bundles() if b.record.bundle_hash)
    statuses: Counter[str] = Counter()
    signers: dict[str, Signer] = {}
    unsigned: list[dict[str, Any]] = []
    distinct: set[str] = set()
    executables = 0
    for stored in store.binaries():
        b = stored.record
        distinct.add(b.sha256)
        executables += b.fileinfo.get("kind") == "Executable"
        status = b.signing_status or "unknown"
        statuses[status] += 1
        if status in SIGNED and b.leaf_cert_sha256:
            chain = b.fileinfo.get("signing_chain") or [{}]
            leaf = chain[0] if isinstance(chain[0], dict) else {}
            signer = signers.get(b.leaf_cert_sha256)
            if signer is None:
                signer = signers[b.leaf_cert_sha256] = Signer(
                    b.leaf_cert_sha256, leaf.get("cn"), leaf.get("org"), b.team_id
                )
            signer.binaries += 1
            signer.distinct.add(b.sha256)
            signer.artifacts.add(stored.artifact_id)
            signer.statuses[status] += 1
        else:
            if limit is None or len(unsigned) < limit:
                unsigned.append(
                    {
                        "artifact": artifact_paths.get(stored.artifact_id, ""),
                        "path": b.path,
                        "sha256": b.sha256,
                        "type": b.fileinfo.get("type"),
                        "signing_status": status,
                        "code_signed": b.fileinfo.get("code_signed"),
                    }
                )
    counts["distinct_binaries"] = len(distinct)
    counts["executables"] = executables
    counts["signers"] = len(signers)
    counts["team_ids"] = len({s.team_id for s in signers.values() if s.team_id})
    ranked = sorted(signers.values(), key=lambda s: (-s.binaries, s.common_name or "", s.leaf_sha256))
    not_signed = sum(n for status, n in statuses.items() if status not in SIGNED)
    return CatalogSummary(counts, statuses, ranked, unsigned, not_signed, failures, limit)


def summary_document(summary: CatalogSummary) -> dict[str, Any]:
    """The summary as JSON values (`santacore catalog show --json`)."""
    return {
        "counts": summary.counts,
        "signing_statuses": dict(sorted(summary.statuses.items())),
        "signers": [s.document() for s in summary.signers],
        "unsigned_or_adhoc": summary.unsigned,
        "unsigned_or_adhoc_total": summary.unsigned_total,
        "failures": summary.failures,
    }


COUNT_LABELS = (
    ("artifacts", "Artifacts"),
    ("done", "  done"),
    ("failed", "  failed"),
    ("paths", "Paths scanned"),
    ("bundles", "Bundles"),
    ("bundles_hashed", "  with a bundle hash"),
    ("binaries", "Mach-O binaries"),
    ("distinct_binaries", "  distinct (by SHA-256)"),
    ("executables", "  executables"),
    ("signers", "Signing certificates"),
    ("team_ids", "Team IDs"),
)


def render_text(summary: CatalogSummary, limit: int) -> str:
    """The summary for a terminal: counts, then the three lists, each cut at `limit` rows."""
    lines = [f"{label:<24}: {summary.counts.get(key, 0):,}" for key, label in COUNT_LABELS]
    if summary.statuses:
        lines.append(
            "Signing status          : " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.statuses.items()))
        )
    lines += ["", f"Signers by binary count ({len(summary.signers):,}):"]
    for s in summary.signers[:limit]:
        who = visible(s.common_name) or "(no common name)"
        lines.append(f"  {s.binaries:>7,}  {visible(s.team_id) or '-':<10}  {who}  [{s.leaf_sha256[:16]}…]")
    _more(lines, len(summary.signers), limit)
    lines += ["", f"Unsigned, ad-hoc or unverified binaries ({summary.unsigned_total:,}):"]
    for u in summary.unsigned[:limit]:
        lines.append(f"  {u['signing_status']:<8}  {visible(u['artifact'])} : {visible(u['path'])}")
    _more(lines, summary.unsigned_total, limit)
    lines += ["", f"Failed artifacts ({len(summary.failures):,}):"]
    for f in summary.failures[:limit]:
        lines.append(f"  {visible(f['path'])}: {visible(f['error'])}")
    _more(lines, len(summary.failures), limit)
    return "\n".join(lines) + "\n"


def _more(lines: list[str], total: int, shown: int) -> None:
    if total > shown:
        lines.append(f"  … and {total - shown:,} more (--json, or --html, lists them all)")


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;
color:#1d1d1f;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.sub{color:#666}.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1.2em 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.5em}.card.bad b{color:#b00020}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f6f6}.n{text-align:right;font-variant-numeric:tabular-nums;width:6em}
code{font:12px ui-monospace,Menlo,Consolas,monospace}.bar{background:#4a7bd0;height:.7em;border-radius:2px}
.st{display:inline-block;padding:0 .4em;border-radius:4px;background:#eee;font-size:12px}
.st.unsigned,.st.invalid{background:#fde2e2}.st.adhoc{background:#fff3cd}
"""


def _e(text: object) -> str:
    """Escaped for HTML text and attribute values, hostile characters made visible first."""
    return html.escape(visible(None if text is None else str(text)), quote=True)


def _card(label: str, value: int, bad: bool = False) -> str:
    return f'<div class="card{" bad" if bad and value else ""}"><b>{value:,}</b>{_e(label)}</div>'


def render_html(summary: CatalogSummary, *, title: str = "santacore catalog") -> str:
    """One self-contained page (inline CSS, no script, no external asset)."""
    c = summary.counts
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network, no script: the page shows what it holds and nothing else.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{c.get("artifacts", 0):,} artifacts, {c.get("binaries", 0):,} Mach-O binaries, '
        f"{c.get('signers', 0):,} signing certificates</p>",
        '<div class="cards">',
        _card("artifacts done", c.get("done", 0)),
        _card("artifacts failed", c.get("failed", 0), bad=True),
        _card("bundles", c.get("bundles", 0)),
        _card("binaries", c.get("binaries", 0)),
        _card("distinct binaries", c.get("distinct_binaries", 0)),
        _card("signers", c.get("signers", 0)),
        _card("Team IDs", c.get("team_ids", 0)),
        _card("unsigned / ad-hoc / unverified", summary.unsigned_total, bad=True),
        "</div>",
    ]
    if summary.statuses:
        parts.append(
            "<p>Signing status: "
            + ", ".join(f'<span class="st {_e(k)}">{_e(k)}</span> {v:,}' for k, v in sorted(summary.statuses.items()))
            + "</p>"
        )
    parts += _signers_table(summary)
    parts += _unsigned_table(summary)
    parts += _failures_table(summary)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _signers_table(summary: CatalogSummary) -> list[str]:
    rows = [f"<h2>Signers by binary count ({len(summary.signers):,})</h2>"]
    if not summary.signers:
        return [*rows, "<p>No binary has a verified signing certificate.</p>"]
    top = max(s.binaries for s in summary.signers)
    rows.append(
        '<table><tr><th>Common name, leaf certificate SHA-256</th><th style="width:7em">Team ID</th>'
        '<th class="n">Binaries</th><th class="n">Distinct</th><th class="n">Artifacts</th>'
        '<th style="width:10em"></th></tr>'
    )
    for s in summary.signers:
        width = max(1, round(100 * s.binaries / top))
        rows.append(
            f"<tr><td>{_e(s.common_name or '(no common name)')}<br><code>{_e(s.leaf_sha256)}</code></td>"
            f'<td><code>{_e(s.team_id or "-")}</code></td><td class="n">{s.binaries:,}</td>'
            f'<td class="n">{len(s.distinct):,}</td><td class="n">{len(s.artifacts):,}</td>'
            f'<td><div class="bar" style="width:{width}%"></div></td></tr>'
        )
    rows.append("</table>")
    return rows


def _unsigned_table(summary: CatalogSummary) -> list[str]:
    rows = [f"<h2>Unsigned, ad-hoc or unverified binaries ({summary.unsigned_total:,})</h2>"]
    if not summary.unsigned:
        return [*rows, "<p>None.</p>"]
    rows.append(
        '<table><tr><th style="width:7em">Status</th><th>Artifact</th><th>Path inside</th>'
        '<th style="width:19em">SHA-256</th></tr>'
    )
    for u in summary.unsigned:
        status = u["signing_status"]
        rows.append(
            f'<tr><td><span class="st {_e(status)}">{_e(status)}</span></td><td>{_e(u["artifact"])}</td>'
            f"<td>{_e(u['path'])}<br>{_e(u['type'] or '')}</td><td><code>{_e(u['sha256'])}</code></td></tr>"
        )
    rows.append("</table>")
    if summary.unsigned_total > len(summary.unsigned):
        rows.append(f"<p>… and {summary.unsigned_total - len(summary.unsigned):,} more.</p>")
    return rows


def _failures_table(summary: CatalogSummary) -> list[str]:
    rows = [f"<h2>Failed artifacts ({len(summary.failures):,})</h2>"]
    if not summary.failures:
        return [*rows, "<p>None.</p>"]
    rows.append('<table><tr><th>Artifact</th><th style="width:6em">Kind</th><th>Reason</th></tr>')
    for f in summary.failures:
        rows.append(f"<tr><td>{_e(f['path'])}</td><td>{_e(f['kind'])}</td><td>{_e(f['error'])}</td></tr>")
    rows.append("</table>")
    return rows
