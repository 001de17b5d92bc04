"""`verify`: re-check the target (and optionally the source) against the state database; list every gap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.teamfolders import mount_problem
from migrate.engine.transfer import check_entry
from migrate.models import ItemStatus
from migrate.protocols import Source, Target
from migrate.store import StateStore


@dataclass
class VerifySummary:
    """Counts and the list of gaps; a clean run has no gaps."""

    checked: int = 0
    ok: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    not_copied: int = 0

    @property
    def attention(self) -> bool:
        return bool(self.gaps)


def verify_drives(
    store: StateStore,
    target: Target,
    drives: list[dict[str, Any]],
    *,
    source: Source | None = None,
    source_hash: Callable[[str, str], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifySummary:
    """Every verified file must exist at the target with its size (and SHA1 and mtime where the target keeps
    them). With `source_hash`, the source's current QuickXorHash must still be the one we copied.

    A file that fails is moved to `failed` with the reason, so the next `copy` sends it again.
    """
    s = VerifySummary()
    for d in drives:
        counts = store.status_counts(d["id"])
        s.not_copied += sum(v["files"] for k, v in counts.items() if k not in ("verified", "skipped"))
        # A file under a team-folder path the writer does not see mounted sits in a look-alike folder in the
        # writer's own home: it is a gap however whole it is.
        outside = mount_problem(target, d, write=False)
        for item in store.iter_items(d["id"], statuses=("verified",), files_only=True):
            s.checked += 1
            if outside:
                problem = f"outside its team folder: {outside}"
            else:
                entry = target.stat(item["target_user"] or "", item["target_path"])
                problem = check_entry(entry, size=_expected_size(item), sha1=item["sha1"], mtime=item["mtime"],
                                      features=target.features)
            if not problem and source_hash is not None:
                current = source_hash(d["id"], item["item_id"])
                if current is None:
                    problem = "the file no longer exists at the source (run `scan` to record the deletion)"
                elif item["quick_xor_hash"] and current and current != item["quick_xor_hash"] and not _rewritten(item):
                    problem = "the file changed at the source since it was copied (run `scan`, then `copy`)"
            if problem:
                s.gaps.append({"drive_id": d["id"], "item_id": item["item_id"], "path": item["path"],
                               "target": f"{item['target_user'] or ''}:{item['target_path']}", "problem": problem})
                store.transition(d["id"], item["item_id"], ItemStatus.FAILED, last_error=f"verify: {problem}")
            else:
                s.ok += 1
            if progress:
                progress(1)
    return s


def _expected_size(item: dict[str, Any]) -> int:
    """What we wrote: the listed size, unless the bytes served differed (SharePoint's Office rewrite)."""
    return item["target_size"] if item["target_size"] is not None else item["size"]


def _rewritten(item: dict[str, Any]) -> bool:
    """SharePoint served other bytes than listed (Office rewrite): the listed hash was never ours to compare."""
    resized = item["target_size"] is not None and item["target_size"] != item["size"]
    return resized or "another hash" in (item["note"] or "")
