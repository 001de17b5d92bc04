"""`cutover --batch NAME`: switchover day as one command, after Microsoft 365 was frozen for the batch.

  1. the final `sync` (delta pass, changes applied, conflicts kept both ways);
  2. `verify` of every recorded file of the batch (size, checksum, mtime);
  3. `share`: the planned shares, as each owner;
  4. a second delta pass, which must find nothing: a change after the freeze is reported loudly (the freeze
     did not hold, or someone still has write access).

The batch is whole when the sync failed nothing, verify found no gap and nothing is left uncopied, every
planned share is made (or decided by policy), and the second pass is empty. Each step's figures and duration go
into the cutover report (reports.cutover); the audit trail's head hash is written into it, so the report names
the exact trail it was made with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.engine.files.sync import SyncOptions, SyncSummary, run_sync
from migrate.errors import ConfigError
from migrate.protocols import Source, Target
from migrate.session import Selection
from migrate.store import StateStore


@dataclass
class CutoverSummary:
    """What switchover day found, per step; `whole` is the verdict (exit 0 only then)."""

    batch: str
    drives: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    share: dict[str, Any] = field(default_factory=dict)
    late_changes: dict[str, int] = field(default_factory=dict)
    late_items: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    share_problems: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    not_copied: int = 0
    audit_head: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)  # earlier versions by state, not carried by reason
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def whole(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "whole": self.whole}


def _step(summary: CutoverSummary, name: str, say: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    say(f"cutover: {name}")
    started = time.monotonic()

    def done(figures: dict[str, Any]) -> None:
        summary.steps.append({"step": name, "seconds": round(time.monotonic() - started, 2), **figures})

    return done


def run_cutover(store: StateStore, source: Source, target: Target, mappings: Any, batch: str, plan_options: Any,
                options: SyncOptions, *, share_rate: tuple[int, int] = (20, 600), passwords_file: Path | None = None,
                say: Callable[[str], None] = lambda _m: None,
                source_stats: Callable[[], dict[str, Any]] | None = None) -> CutoverSummary:
    """Run the four steps for one batch (see the module docstring). Fatal errors (auth, target full) stop it and
    are raised; everything else is recorded in the summary, whose `problems` say why the batch is not whole."""
    from migrate.engine.files.verify import verify_drives
    from migrate.engine.shares.apply import run_share

    started = time.monotonic()
    selection = Selection(batches=(batch,))
    drives = selection.drives(store)
    if not drives:
        raise ConfigError(f"no drive belongs to batch {batch!r}",
                          hint="`m365-migrate status` lists the batches; batches come from the mapping files")
    s = CutoverSummary(batch=batch, drives=[{"id": d["id"], "name": d["name"], "owner": d["owner_upn"] or
                                             d["site_url"], "kind": d["kind"]} for d in drives])

    done = _step(s, "final sync", say)
    sy: SyncSummary = run_sync(store, source, target, mappings, selection, plan_options, options, say=say,
                               source_stats=source_stats)
    s.sync = {"counts": sy.counts, "applied": sy.applied, "conflicts": len(sy.conflicts), "failed": len(sy.failed),
              "graph": (sy.scan or {}).get("graph", {})}
    s.conflicts, s.kept, s.failed = sy.conflicts, sy.kept, sy.failed
    done({"changes": sum(sy.counts.values()), "conflicts": len(sy.conflicts), "failed": len(sy.failed)})
    if sy.failed:
        s.problems.append(f"the final sync could not apply {len(sy.failed)} changes (listed under failed)")

    done = _step(s, "verify", say)
    rows = [store.drive(d["id"]) for d in drives]
    v = verify_drives(store, target, [r for r in rows if r])
    s.verify = {"checked": v.checked, "ok": v.ok, "gaps": len(v.gaps), "not_copied": v.not_copied,
                "versions_checked": v.versions_checked}
    s.gaps, s.not_copied = v.gaps, v.not_copied
    done(dict(s.verify))
    if v.gaps:
        s.problems.append(f"verify found {len(v.gaps)} gaps at the target")
    if v.not_copied:
        s.problems.append(f"{v.not_copied} files of the batch are not copied yet (failed, pending or in conflict)")

    done = _step(s, "share", say)
    try:
        sh = run_share(store, target, mappings, selection, plan_options, workers=options.workers,
                       share_rate=share_rate, passwords_file=passwords_file, say=say)
        s.share = {k: v for k, v in sh.to_dict().items() if not isinstance(v, list)}
        s.share["not_visible"] = len(sh.not_visible)
        s.share_problems = [*sh.failed, *sh.waiting, *sh.refused_broader]
        if sh.attention and s.share_problems:
            s.problems.append(f"{len(s.share_problems)} planned shares are not made (listed under shares)")
        if sh.not_visible:
            s.share_problems += sh.not_visible
            s.problems.append(f"{len(sh.not_visible)} shares are not seen by every recipient yet (pending for them; "
                              "listed under shares)")
        done({"created": sh.created, "already": sh.already, "problems": len(s.share_problems)})
    except ConfigError as exc:  # a target without a share API (plain WebDAV): stated, not a crash
        s.share = {"error": exc.message}
        s.problems.append(f"shares were not made: {exc.message}")
        done({"error": exc.message})

    done = _step(s, "second delta pass (must be empty)", say)
    from migrate.engine.files.scan import scan

    sc = scan(store, source, selection, workers=options.workers, source_stats=source_stats)
    late = {k: 0 for k in ("new", "moved", "edited", "deleted")}
    for d in drives:
        for k, n in store.waiting_changes(d["id"]).items():
            late[k] += n
    s.late_changes = late
    s.late_items = store.waiting_items([d["id"] for d in drives], limit=200)
    done({**late, "drives_failed": len(sc.failed)})
    if any(late.values()):
        s.problems.append(f"CHANGED AFTER THE FREEZE: {sum(late.values())} items changed at the source during "
                          "cutover; the freeze did not hold: check it, then run `cutover` again")
    if sc.failed:
        s.problems.append(f"the second delta pass failed for {len(sc.failed)} drives")

    for d in drives:
        c = store.status_counts(d["id"]).get("verified", {})
        s.files += c.get("files", 0)
        s.bytes += c.get("bytes", 0)
    s.versions = store.version_counts([d["id"] for d in drives])
    s.audit_head = store.audit_head()
    s.seconds = time.monotonic() - started
    return s
