"""Target layout: which target user and folder each drive goes to (from the mapping files), and the target path
of every live item (name rules applied per path component; a renamed folder renames everything below it).

Nothing is guessed: a drive without a mapping row is listed as unmapped, a row with a blank target as "not
migrated", and neither gets target paths (so `copy` leaves their items alone).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from migrate.mapping import Mappings, SiteRow, UserRow
from migrate.names import NameRules, clean_name, resolve_siblings
from migrate.store import StateStore

ONENOTE = "onenote"
WRITE_BATCH = 2000


@dataclass
class DriveTarget:
    """Where one source drive goes; `status` is mapped | unmapped | not-migrated | error."""

    drive: dict[str, Any]
    status: str
    user: str | None = None  # target user ('' for a plain WebDAV root)
    root: str | None = None  # folder in that user's tree, starting with /
    where: str = ""  # "users.csv:4" / "sites.csv:7": the row that decided it
    reason: str = ""
    batch: str = ""
    target_kind: str = ""  # user | groupfolder | webdav
    mount: str = ""  # the team folder's mount point, for groupfolder targets

    @property
    def id(self) -> str:
        return str(self.drive["id"])

    def label(self) -> str:
        d = self.drive
        return f"{d['kind']} {d['name']!r} ({d['owner_upn'] or d['site_url'] or d['id']})"

    def as_dict(self) -> dict[str, Any]:
        d = self.drive
        return {"drive_id": d["id"], "kind": d["kind"], "name": d["name"], "owner": d["owner_upn"] or d["site_url"],
                "batch": self.batch, "status": self.status, "target_user": self.user, "target_root": self.root,
                "mapping_row": self.where, "reason": self.reason, "target_kind": self.target_kind,
                "team_folder": self.mount}


@dataclass
class Assignment:
    """All drives with their targets, and the mapping problems found on the way (file:line: message)."""

    targets: list[DriveTarget] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _join(root: str, *parts: str) -> str:
    base = root.rstrip("/")
    tail = "/".join(p for p in parts if p)
    return (base + "/" + tail) if tail else (root or "/")


def _row_where(mappings: Mappings, row: UserRow | SiteRow) -> str:
    path = mappings.users.path if isinstance(row, UserRow) else mappings.sites.path
    return f"{path.name}:{row.line}"


def assign_drives(
    store: StateStore,
    mappings: Mappings,
    *,
    prefix: str = "",
    service_account: str = "",
    rules: NameRules | None = None,
) -> Assignment:
    """Decide every drive's target from users.csv (OneDrives) and sites.csv (libraries, Teams drives); store it.

    OneDrives go to their user's tree below `prefix`. A sites.csv row that names a whole site with several
    libraries puts each library in a subfolder named after it. Two drives that would land in the same folder are
    an error naming both rows. Drive rows get `batch`, `target_user` and `target_root` (NULL when not migrated).
    """
    rules = rules or NameRules()
    out = Assignment()
    drives = store.drives()
    site_drive_count: dict[int, int] = {}
    matches: dict[str, SiteRow | None] = {}
    for d in drives:
        if d["kind"] != "onedrive":
            row = mappings.sites.find(drive_id=d["id"], drive_url=d["web_url"] or None, site_id=d["site_id"] or None,
                                      site_url=d["site_url"] or None)
            matches[d["id"]] = row
            if row is not None and row.source_kind != "drive_id":
                site_drive_count[row.line] = site_drive_count.get(row.line, 0) + 1
    used: dict[tuple[str, str], str] = {}
    for d in drives:
        t = DriveTarget(d, "unmapped", batch=d["batch"] or "")
        if d["kind"] == "onedrive":
            row = mappings.users.get(d["owner_upn"]) if d["owner_upn"] else None
            if row is None:
                t.reason = f"no row for {d['owner_upn'] or 'this OneDrive'} in {mappings.users.path.name}"
            else:
                t.where, t.batch = _row_where(mappings, row), row.batch or t.batch
                if row.target_user is None:
                    t.status, t.reason = "not-migrated", "blank target_user"
                else:
                    t.status, t.user, t.root = "mapped", row.target_user, _join("/", prefix)
                    t.target_kind = "user"
        else:
            srow = matches[d["id"]]
            if srow is None:
                t.reason = f"no row for this {d['kind']} (site {d['site_url'] or d['site_id'] or '?'}) in " \
                           f"{mappings.sites.path.name}"
            else:
                t.where, t.batch = _row_where(mappings, srow), srow.batch or t.batch
                target = srow.target
                if target is None:
                    t.status, t.reason = "not-migrated", "blank target"
                else:
                    sub = clean_name(d["name"], rules)[0] if site_drive_count.get(srow.line, 0) > 1 else ""
                    t.target_kind = target.kind
                    if target.kind == "user":
                        t.user, t.root = target.name, _join(target.path, sub)
                    elif target.kind == "groupfolder":
                        if not service_account:
                            out.errors.append(
                                f"{t.where}: groupfolder:{target.name} is written by the service account, but "
                                "[target] service_account is not set in the configuration")
                            t.status, t.reason = "error", "no service account for group folders"
                        t.user, t.root = service_account, _join("/" + target.name, target.path.strip("/"), sub)
                        t.mount = target.name
                    else:
                        t.user, t.root = "", _join(target.path, sub)
                    if t.status != "error":
                        t.status = "mapped"
        if t.status == "mapped":
            key = ((t.user or "").casefold(), (t.root or "/").casefold())
            if key in used:
                out.errors.append(
                    f"{t.where}: {t.label()} would be written to {t.user or ''}:{t.root}, which is also the target "
                    f"of {used[key]}; give each source its own folder")
                t.status, t.reason = "error", f"same target folder as {used[key]}"
            else:
                used[key] = f"{t.where} ({t.label()})"
        out.targets.append(t)
    _nested_warnings(out)
    for t in out.targets:
        store.update_drive(t.id, batch=t.batch, target_user=t.user if t.status == "mapped" else None,
                           target_root=t.root if t.status == "mapped" else None,
                           target_mount=t.mount if t.status == "mapped" and t.mount else None)
    return out


def _nested_warnings(out: Assignment) -> None:
    mapped = [t for t in out.targets if t.status == "mapped"]
    for a in mapped:
        for b in mapped:
            if a is b or (a.user or "").casefold() != (b.user or "").casefold():
                continue
            ra, rb = (a.root or "/").rstrip("/").casefold(), (b.root or "/").rstrip("/").casefold()
            if rb.startswith(ra + "/"):
                out.warnings.append(
                    f"{b.where} ({b.label()}) lands inside {a.where} ({a.label()}) at {b.user}:{b.root}; "
                    f"a folder of the outer source with that name would be renamed")


# --------------------------------------------------------------------------------------------- item paths
@dataclass
class DriveLayout:
    """What laying out one drive found: renames, items left out and why, and counts."""

    drive_id: str
    renames: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0
    planned_files: int = 0
    planned_bytes: int = 0
    too_long_paths: list[dict[str, Any]] = field(default_factory=list)


MAX_PATH_BYTES = 3500  # reference §5.2: cap at ~3500 bytes and report longer paths


def top_level(path: str | None) -> bool:
    """True when a stored source path names an entry directly below the drive root (or is unknown)."""
    if not path:
        return True
    p = path.strip()
    if p.startswith("/drive/root:"):
        p = p[len("/drive/root:"):]
    return "/" not in p.strip("/")


def layout_drive(
    store: StateStore,
    target: DriveTarget,
    rules: NameRules,
    *,
    onenote_policy: str = "report",
    max_file_size: int | None = None,
    reserved_at_root: tuple[str, ...] = (),
) -> DriveLayout:
    """Compute and store target_user/target_path of every live item of a mapped drive (two paged passes).

    Pass 1 names every folder (siblings resolved together); pass 2 recomputes each folder's children the same
    way and writes full paths. Memory: one folder's children (the folders themselves are in a temp table).
    Items that will not be copied (malware-flagged, OneNote notebooks under policy `report`, over the target's
    size limit, below a parent missing from the inventory) get no target path and are listed with the reason.
    """
    drive_id = target.id
    out = DriveLayout(drive_id)
    user, root = target.user or "", target.root or "/"
    root_ids: set[str] = set()
    missing = "its parent folder is missing from the inventory (run `scan` again)"

    def resolve(parent_id: str, children: list[dict[str, Any]]) -> dict[str, Any]:
        reserved = reserved_at_root if parent_id in root_ids else ()
        return resolve_siblings([(c["item_id"], c["name"]) for c in children], rules, reserved=reserved)

    def left_out(c: dict[str, Any]) -> bool:
        return (c["package_type"] or "").lower() == ONENOTE and onenote_policy != "copy-raw"

    with store.folder_table() as folders:  # one row per folder of the drive: kept out of memory
        for parent_id, children in store.iter_sibling_groups(drive_id):
            if parent_id is None:
                root_ids.update(c["item_id"] for c in children)
                continue
            names = resolve_siblings([(c["item_id"], c["name"]) for c in children], rules)
            folders.add_group(parent_id, all(top_level(c["path"]) for c in children),
                              [(c["item_id"], names[c["item_id"]].target, left_out(c)) for c in children
                               if c["is_folder"]])
        gaps: set[str] = set()
        for pid, top in folders.parents_not_folders(root_ids):
            (root_ids if top else gaps).add(pid)
        if reserved_at_root:  # names at the root are resolved against the reserved ones: redo those folders
            for parent_id, children in store.iter_sibling_groups(drive_id):
                if parent_id in root_ids:
                    names = resolve(parent_id, children)
                    folders.rename((c["item_id"], names[c["item_id"]].target) for c in children if c["is_folder"])
        folders.resolve_paths({rid: root for rid in root_ids}, {g: missing for g in gaps},
                              left_out_why="OneNote notebook (policy onenote = report): listed, not copied")

        pending: list[tuple[str | None, str | None, int]] = []

        def flush() -> None:
            if pending:
                store.set_targets(pending, laid=True)
                pending.clear()

        for parent_id, children in store.iter_sibling_groups(drive_id):
            if parent_id is None:  # the drive root itself
                for c in children:
                    pending.append((user, root if c["is_folder"] else None, c["id"]))
                continue
            names = resolve(parent_id, children)
            ppath, why = folders.path(parent_id) or (None, missing)
            for c in children:
                path = place_child(out, c, names[c["item_id"]], ppath, why, parent_id in gaps, user,
                                   onenote_policy=onenote_policy, max_file_size=max_file_size)
                pending.append((user if path is not None else None, path, c["id"]))
                if len(pending) >= WRITE_BATCH:
                    flush()
        flush()
    store.mark_laid(drive_id, layout_digest(target, rules, onenote_policy, max_file_size, reserved_at_root))
    return out


def layout_digest(target: DriveTarget, rules: NameRules, onenote_policy: str, max_file_size: int | None,
                  reserved_at_root: tuple[str, ...]) -> str:
    """The settings a layout depends on; a different digest means the stored layout is stale as a whole."""
    parts: list[Any] = [target.user or "", target.root or "/", onenote_policy, max_file_size, sorted(reserved_at_root)]
    for f in fields(rules):
        if f.repr:
            v = getattr(rules, f.name)
            parts.append([f.name, sorted(v) if isinstance(v, frozenset) else v])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def place_child(out: DriveLayout, c: dict[str, Any], r: Any, ppath: str | None, why: str, parent_gap: bool,
                user: str, *, onenote_policy: str, max_file_size: int | None) -> str | None:
    """The target path of one child whose folder is at `ppath` (None: not copied, for `why`), with the renames,
    items left out and counts noted in `out`; shared by the full and the incremental layout."""
    drive_id = out.drive_id

    def unsupported(reason: str, action: str = "not copied") -> None:
        out.unsupported.append({"drive_id": drive_id, "item_id": c["item_id"], "path": c["path"] or c["name"],
                                "kind": "folder" if c["is_folder"] else "file", "size": c["size"],
                                "reason": reason, "action": action})

    out.items += 1
    path: str | None = None
    onenote = (c["package_type"] or "").lower() == ONENOTE
    if ppath is None:
        if parent_gap:
            unsupported(why)
        elif c["is_folder"]:
            unsupported(why or "its folder is not copied")
    elif c["is_folder"]:
        if onenote and onenote_policy != "copy-raw":
            unsupported("OneNote notebook (policy onenote = report): listed, not copied")
        else:
            path = _join(ppath, r.target)
            if onenote:
                unsupported("OneNote notebook (policy onenote = copy-raw): section files are copied as "
                            "they are, checked by size only; ask the owner to check it", "copied raw")
    elif c["malware"]:
        unsupported("flagged as malware by Microsoft 365: the download is blocked")
    elif max_file_size is not None and (c["size"] or 0) > max_file_size:
        unsupported(f"larger than the target's limit of {max_file_size} bytes")
    else:
        path = _join(ppath, r.target)
    if path is not None and r.renamed:
        out.renames.append({"drive_id": drive_id, "item_id": c["item_id"], "source_path": c["path"] or c["name"],
                            "source_name": r.source, "target_name": r.target, "target_path": path,
                            "target_user": user, "reasons": list(r.reasons)})
    if path is not None and len(path.encode("utf-8")) > MAX_PATH_BYTES:
        out.too_long_paths.append({"drive_id": drive_id, "item_id": c["item_id"],
                                   "path": c["path"] or c["name"], "bytes": len(path.encode("utf-8"))})
    if path is not None and not c["is_folder"]:
        out.planned_files += 1
        out.planned_bytes += c["size"] or 0
    return path


ProgressFn = Callable[[str], None]
