"""What `sync` has to do: the source's changes since we placed each item, as typed records in a safe order.

A change is found by comparing what the store says we placed (placed_* columns, recorded when each write was
proven) with the item's current source facts and the target path the layout gives it now. Nothing is
remembered between runs except those columns, so a rerun after a kill, or after a 410 resync, finds exactly
what is still left to do, and never redoes what was done.

Kinds, applied in this order: `new-folder` and folder `move` (shallowest first, so every parent exists), file
`move`, `edit`, `new-file`, and `delete` last. A move that a folder's MOVE already covers (same place relative
to the folder) is folded into it (`covered_by`), so a moved folder costs one request whatever it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from migrate.backends.webdav.wire import clean_path
from migrate.store import StateStore

NEW_FOLDER, MOVE, EDIT, NEW_FILE, DELETE, LEFT_OUT = "new-folder", "move", "edit", "new-file", "delete", "left-out"
ORDER = {NEW_FOLDER: 0, MOVE: 1, EDIT: 2, NEW_FILE: 3, DELETE: 4, LEFT_OUT: 5}


@dataclass(frozen=True, slots=True)
class Change:
    """One change to apply at the target for one item."""

    kind: str
    drive_id: str
    item_id: str
    is_folder: bool
    source_path: str
    user: str
    from_path: str | None  # where we placed it (None: new)
    to_path: str | None  # where the layout puts it now (None: deleted or left out)
    size: int = 0
    edited: bool = False  # a move whose content changed too (moved first, then uploaded over)
    covered_by: str | None = None  # the folder move or delete (item id) that takes this item along

    @property
    def depth(self) -> int:
        return (self.to_path or self.from_path or "").strip("/").count("/")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _content_changed(r: dict[str, Any]) -> bool:
    if r["is_folder"]:
        return False
    return ((r["size"], r["quick_xor_hash"]) != (r["placed_source_size"], r["placed_source_hash"])
            or abs((r["mtime"] or 0) - (r["placed_source_mtime"] or 0)) >= 1)


def classify(r: dict[str, Any]) -> Change | None:
    """The change one candidate row (store.iter_sync_candidates) stands for, or None when nothing is to do."""
    placed, target = r["placed_path"], r["target_path"]
    base = {"drive_id": r["drive_id"], "item_id": r["item_id"], "is_folder": bool(r["is_folder"]),
            "source_path": r["path"] or r["name"] or "", "size": r["size"] or 0}
    if r["deleted"]:
        if placed is None:
            return None
        return Change(DELETE, user=r["placed_user"] or "", from_path=placed, to_path=None, **base)
    if target is None:
        return Change(LEFT_OUT, user=r["placed_user"] or "", from_path=placed, to_path=None, **base) \
            if placed is not None else None
    user = r["target_user"] or ""
    if placed is None:
        if r["status"] not in ("pending", "failed"):
            return None
        return Change(NEW_FOLDER if r["is_folder"] else NEW_FILE, user=user, from_path=None, to_path=target, **base)
    if clean_path(placed) != clean_path(target) or (r["placed_user"] or "") != user:
        return Change(MOVE, user=user, from_path=placed, to_path=target, edited=_content_changed(r), **base)
    if _content_changed(r):
        return Change(EDIT, user=user, from_path=placed, to_path=target, **base)
    return None


def _fold(changes: list[Change]) -> list[Change]:
    """Mark moves and deletes that a folder's own move or delete takes along: the nearest moved ancestor moves
    the item to exactly its new path, or an ancestor is deleted."""
    folder_moves = {(c.user, clean_path(c.from_path or "")): (clean_path(c.to_path or ""), c.item_id)
                    for c in changes if c.kind == MOVE and c.is_folder}
    folder_deletes = {(c.user, clean_path(c.from_path or "")): c.item_id
                      for c in changes if c.kind == DELETE and c.is_folder}
    out = []
    for c in changes:
        src = clean_path(c.from_path or "")
        parent, cover = src.rpartition("/")[0], None
        while parent and cover is None and c.kind in (MOVE, DELETE):
            if c.kind == MOVE and (c.user, parent) in folder_moves:
                new_parent, fid = folder_moves[(c.user, parent)]
                if clean_path(c.to_path or "") == new_parent + src[len(parent):]:
                    cover = fid
                break
            if c.kind == DELETE and (c.user, parent) in folder_deletes:
                cover = folder_deletes[(c.user, parent)]
            parent = parent.rpartition("/")[0]
        out.append(_with(c, covered_by=cover) if cover else c)
    return out


def _with(c: Change, **kw: Any) -> Change:
    return Change(**{**c.to_dict(), **kw})


def detect(store: StateStore, drive_ids: Iterable[str]) -> list[Change]:
    """Every change of the drives, in the order sync applies them (memory: one record per change)."""
    changes = [c for d in drive_ids for r in store.iter_sync_candidates(d) if (c := classify(r)) is not None]
    changes = _fold(changes)

    def key(c: Change) -> tuple[int, int, int, str]:
        if c.is_folder and c.kind in (NEW_FOLDER, MOVE):
            return (0, c.depth, 0, c.to_path or "")  # folders first, parents before children
        if c.kind == DELETE:
            return (ORDER[DELETE], 0 if c.is_folder else 1, c.depth, c.from_path or "")
        return (ORDER[c.kind], c.depth, 0, c.to_path or "")

    return sorted(changes, key=key)


def summarise(changes: list[Change]) -> dict[str, int]:
    """Counts per kind (folded moves and deletes counted as `inside`)."""
    out = {k: 0 for k in ORDER}
    out["inside"] = 0
    for c in changes:
        if c.covered_by:
            out["inside"] += 1
        else:
            out[c.kind] += 1
    return out
