"""`plan`: the dry-run assessment. Lays out target paths, finds conflicts with what the target already holds
(reads only: stat/walk and provisioning GETs), lists unsupported items, plans shares and estimates the cost.

It writes nothing to the target. In the state database it stores: item target paths, the share plan
(permissions.plan_action/plan_detail), drive targets and batches, and for files that clash with a different file
at the target under policy `skip` the status `conflict` (reset to `pending` by a later plan once the clash is
gone), so that `copy` leaves them alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from migrate.config import versions_limit
from migrate.engine import meter
from migrate.engine.estimate import PlanBudget, copy_estimate, plan_budget
from migrate.engine.files.adopt import ADOPT_MARK
from migrate.engine.files.layout import Assignment, DriveTarget, assign_drives, layout_drive
from migrate.engine.files.teamfolders import FolderPlan, plan_team_folders
from migrate.engine.files.versions_plan import plan_versions
from migrate.engine.shares.plan import (
    CREATE_SHARE,
    SHARE_GROUP,
    SHARE_LINK,
    SHARE_USER,
    ShareContext,
    SharePolicy,
    grants_not_carried_over,
    refresh_share_plan,
)
from migrate.errors import MappingError
from migrate.mapping import Mappings
from migrate.models import ItemStatus, PlannedShare, RemoteEntry
from migrate.names import NameRules, with_suffix
from migrate.protocols import Target
from migrate.session import Selection
from migrate.store import StateStore
from migrate.store.scratch import EntryTable

log = logging.getLogger(__name__)

PLAN_MARK = "plan: "
# Graph limits, peers.md (c): per app and tenant, for the smallest tenants (0–1,000 licences), stated as such.


class Directory(Protocol):
    """Provisioning reads of the target (users, groups, quota); the Nextcloud backend provides them."""

    def user_exists(self, uid: str) -> bool: ...

    def group_exists(self, gid: str) -> bool: ...

    def user_quota(self, uid: str) -> dict[str, int] | None: ...


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Settings the plan needs, taken from config.Settings by the CLI."""

    prefix: str = ""
    service_account: str = ""
    on_conflict: str = "skip"  # skip | rename | overwrite-if-ours
    onenote: str = "report"  # report | copy-raw
    share_policy: SharePolicy = field(default_factory=SharePolicy)
    windows_names: bool = False
    max_file_size: int | None = None
    create_team_folders: bool = False  # copy creates missing team folders and grants them (plan only lists it)
    migration_group: str = "m365-migration"  # the group that gives the service account team-folder access
    versions: int | None = 0  # [transfer] versions as a number: 0 none, None all, else N (engine.versions)
    source_settings: Any = None  # [source]: the Graph budget figures the estimates use


class _ProvisioningDirectory:
    """Adapts the Nextcloud backend's `Provisioning` (user records with quota_free) to `Directory`."""

    def __init__(self, prov: Any) -> None:
        self.prov = prov
        self._users: dict[str, Any] = {}

    def _user(self, uid: str) -> Any:
        if uid not in self._users:
            self._users[uid] = self.prov.user(uid)
        return self._users[uid]

    def user_exists(self, uid: str) -> bool:
        return self._user(uid) is not None

    def group_exists(self, gid: str) -> bool:
        return bool(self.prov.group_exists(gid))

    def user_quota(self, uid: str) -> dict[str, int] | None:
        rec = self._user(uid)
        if rec is None:
            return None
        free = getattr(rec, "quota_free", None)
        return {"free": -3 if free is None else int(free), "total": -3}


def find_directory(target: Any) -> Directory | None:
    """The target's provisioning reads, when the backend offers them; None for plain WebDAV targets.

    Raises ConfigError (exit 2) when the backend needs a service account that is not configured.
    """
    for obj in (target, getattr(target, "directory", None)):
        if obj is not None and all(callable(getattr(obj, m, None)) for m in ("user_exists", "group_exists")):
            return obj  # type: ignore[return-value]
    factory = getattr(target, "provisioning", None)
    if callable(factory):
        prov = factory()
        if callable(getattr(prov, "user", None)):
            return _ProvisioningDirectory(prov)
        return prov  # type: ignore[no-any-return]
    return None


def check_mapping_targets(mappings: Mappings, directory: Directory, *, service_account: str = "",
                          org_group: str | None = None, config_name: str = "m365-migrate.toml") -> list[str]:
    """Every user and group named by the mapping files must exist at the target; returns file:line messages."""
    errors: list[str] = []
    users: dict[str, bool] = {}
    groups: dict[str, bool] = {}

    def user_ok(uid: str) -> bool:
        key = uid.casefold()
        if key not in users:
            users[key] = bool(directory.user_exists(uid))
        return users[key]

    def group_ok(gid: str) -> bool:
        if gid not in groups:
            groups[gid] = bool(directory.group_exists(gid))
        return groups[gid]

    for row in mappings.users:
        if row.target_user and not user_ok(row.target_user):
            errors.append(f"{mappings.users.path.name}:{row.line}: Nextcloud user {row.target_user!r} does not "
                          "exist at the target (create it, or correct the target_user column)")
    for grow in mappings.groups:
        if grow.target_group and not group_ok(grow.target_group):
            errors.append(f"{mappings.groups.path.name}:{grow.line}: Nextcloud group {grow.target_group!r} does "
                          "not exist at the target (create it, or correct the target_group column)")
    for srow in mappings.sites:
        if srow.target is not None and srow.target.kind == "user" and not user_ok(srow.target.name):
            errors.append(f"{mappings.sites.path.name}:{srow.line}: Nextcloud user {srow.target.name!r} does not "
                          "exist at the target (create it, or correct the target column)")
    if service_account and not user_ok(service_account):
        errors.append(f"{config_name}: [target] service_account {service_account!r} does not exist at the target")
    if org_group and not group_ok(org_group):
        errors.append(f"{config_name}: [policy] organization_links names group {org_group!r}, which does not "
                      "exist at the target")
    return errors


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", "/" + path.strip("/"))


def classify(item: dict[str, Any], entry: RemoteEntry, *, checksums: bool) -> tuple[str, str]:
    """("identical" | "ours" | "differs", explanation) for a planned item that finds `entry` at its path."""
    if item["is_folder"]:
        return ("identical", "folder exists") if entry.is_folder else ("differs", "a file is where a folder goes")
    if entry.is_folder:
        return "differs", "a folder is where this file goes"
    if item["target_etag"] and entry.etag and item["target_etag"] == entry.etag:
        return "ours", "written by an earlier copy run and unchanged since"
    target_sha = next((c.split(":", 1)[1].lower() for c in entry.checksums if c.upper().startswith("SHA1:")), "")
    if checksums and target_sha and item["target_checksum"] and entry.size == item["target_size"] and \
            item["target_checksum"].lower() == f"sha1:{target_sha}":
        # the size and SHA1 recorded before our bytes left (an earlier version of its history, an answer lost)
        return "ours", "written by an earlier copy run (size and SHA1 recorded before the bytes left)"
    if (entry.size or 0) != (item["size"] or 0):
        return "differs", f"size differs (target {entry.size} bytes, source {item['size']} bytes)"
    sha = (item["sha1"] or "").lower()
    if checksums and sha and target_sha:
        if sha != target_sha:
            return "differs", "same size, SHA1 differs"
        return "identical", "same size and SHA1"
    return "identical", "same size; content not compared (no checksum on both sides)"


def _walk(target: Target, user: str, root: str, into: EntryTable) -> None:
    """What the target holds below one root, keyed by NFC path; an absent root holds nothing."""
    if target.stat(user, root) is not None:
        into.fill(target.walk(user, root), key=lambda e: _nfc(e.path))


def find_conflicts(store: StateStore, target: Target, t: DriveTarget, options: PlanOptions,
                   rules: NameRules) -> dict[str, Any]:
    """Compare the planned paths of one drive with the target; apply the conflict policy to the store.

    The target's tree is kept in a temp table, not in memory: a target already holding a million files would
    otherwise cost hundreds of MB on every plan refresh (so on every `copy`).
    """
    with store.entry_table() as existing:
        _walk(target, t.user or "", t.root or "/", existing)
        return _compare(store, t, options, rules, existing, target.features.stored_checksum)


def _compare(store: StateStore, t: DriveTarget, options: PlanOptions, rules: NameRules, existing: EntryTable,
             checksums: bool) -> dict[str, Any]:
    conflicts: list[dict[str, Any]] = []
    already = {"files": 0, "bytes": 0}
    renamed_paths: list[tuple[str | None, str | None, int]] = []
    for item in store.iter_items(t.id, statuses=("pending", "failed", "conflict", "verified", "uploaded")):
        tp = item["target_path"]
        stale_mark = item["status"] == "conflict" and (item["last_error"] or "").startswith(PLAN_MARK)
        entry = existing.get(_nfc(tp)) if tp else None
        if entry is None or (item["is_folder"] and entry.is_folder):
            if stale_mark:
                store.transition(t.id, item["item_id"], ItemStatus.PENDING, last_error=None)
            continue
        kind, why = classify(item, entry, checksums=checksums)
        if kind == "identical" and (item["last_error"] or "").startswith(ADOPT_MARK):
            kind, why = "differs", "same size, other content (copy read the target's bytes)"
        if kind in ("identical", "ours"):
            if item["status"] not in ("verified", "uploaded"):
                already["files"] += 1
                already["bytes"] += item["size"] or 0
            if stale_mark:
                store.transition(t.id, item["item_id"], ItemStatus.PENDING, last_error=None)
            continue
        if item["status"] in ("verified", "uploaded"):
            why += "; changed at the target after our copy"
        policy = options.on_conflict
        action = {"skip": "skip: left as it is, not copied", "rename": "rename: copied beside it",
                  "overwrite-if-ours": "skip: not written by this tool, left as it is"}[policy]
        new_path = None
        if policy == "rename" and not item["is_folder"] and not entry.is_folder:
            parent, _, name = tp.rpartition("/")
            new_name = with_suffix(name, item["item_id"], rules)
            new_path = f"{parent}/{new_name}"
            if _nfc(new_path) in existing:
                new_path, action = None, "skip: the renamed path is taken too"
        if new_path:
            renamed_paths.append((t.user, new_path, item["id"]))
            if stale_mark:
                store.transition(t.id, item["item_id"], ItemStatus.PENDING, last_error=None)
        elif item["status"] in ("pending", "failed"):
            with store.atomic():
                if item["status"] == "failed":
                    store.transition(t.id, item["item_id"], ItemStatus.PENDING)
                store.transition(t.id, item["item_id"], ItemStatus.CONFLICT,
                                 last_error=f"{PLAN_MARK}{why} at {t.user or ''}:{tp} ({action})")
        conflicts.append({"drive_id": t.id, "item_id": item["item_id"], "path": item["path"] or item["name"],
                          "target_user": t.user, "target_path": tp, "kind": "folder" if item["is_folder"] else "file",
                          "source_size": item["size"], "target_size": entry.size, "problem": why,
                          "policy": policy, "action": action, "renamed_to": new_path})
    if renamed_paths:
        store.set_targets(renamed_paths)
    return {"conflicts": conflicts, "already": already, "target_entries": len(existing)}


# ------------------------------------------------------------------------------------------- estimates
def estimate(files: int, bytes_: int, shared_items: int, measured_bps: float | None, *,
             budget: PlanBudget | None = None, drives: int = 1) -> dict[str, Any]:
    """Duration and Graph cost of copying `files`/`bytes_` (see engine/estimate.py)."""
    return copy_estimate(files, bytes_, shared_items, measured_bps, budget=budget or PlanBudget(), drives=drives)


def measured_throughput(store: StateStore) -> float | None:
    """Median of the copy throughputs earlier runs recorded (bytes/s), or None."""
    values = [m["value"] for m in store.metrics("copy_bytes_per_s") if m["value"] and m["value"] > 0]
    return float(statistics.median(values)) if values else None


# ------------------------------------------------------------------------------------------- the plan
def run_plan(
    store: StateStore,
    target: Target,
    mappings: Mappings,
    selection: Selection,
    options: PlanOptions,
    *,
    directory: Directory | None = None,
    today: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the assessment (a JSON-ready document) and store the plan; raises MappingError (exit 2) listing
    every mapping row whose target user or group is missing and every pair of sources sharing a folder."""
    say = progress or (lambda _m: None)
    today = today or dt.date.today()
    rules = NameRules.from_features(target.features, windows=options.windows_names)
    errors: list[str] = []
    if directory is not None:
        say("checking mapped users and groups at the target")
        errors += check_mapping_targets(mappings, directory, service_account=options.service_account,
                                        org_group=_org_group(options.share_policy))
    assignment: Assignment = assign_drives(store, mappings, prefix=options.prefix,
                                           service_account=options.service_account, rules=rules)
    errors += assignment.errors
    selected = {d["id"] for d in selection.drives(store)}
    folders: list[FolderPlan] = []
    if options.service_account and not errors:
        say("checking the team folders of the selected libraries")
        folders, folder_errors = plan_team_folders(
            store, target, [t for t in assignment.targets if t.id in selected], mappings,
            writer=options.service_account, create=options.create_team_folders,
            migration_group=options.migration_group)
        errors += folder_errors
    if errors:
        raise MappingError("\n".join(errors), hint="fix the mapping files (or the target), then run `plan` again")

    by_id = {t.id: t for t in assignment.targets}
    not_mounted = {f.mount_point for f in folders if f.seen_as != "team folder"}
    doc: dict[str, Any] = {"renames": [], "conflicts": [], "unsupported": [], "unmapped": [], "shares": [],
                           "grants": [], "not_carried_over": [],
                           "drives": [], "warnings": list(assignment.warnings), "too_long_paths": []}
    already_total = {"files": 0, "bytes": 0}
    per_user: dict[str, int] = {}
    for drive_id in sorted(selected, key=lambda i: (by_id[i].drive["kind"], by_id[i].drive["name"], i)):
        t = by_id[drive_id]
        totals = store.drive_totals(drive_id)
        row = {**t.as_dict(), **{k: totals[k] for k in ("files", "bytes", "folders", "shared", "largest")},
               "planned_files": 0, "planned_bytes": 0, "renames": 0, "conflicts": 0, "unsupported": 0,
               "already_files": 0, "already_bytes": 0}
        if t.status != "mapped":
            store.clear_drive_targets(drive_id)
            doc["unmapped"].append({**t.as_dict(), "files": totals["files"], "bytes": totals["bytes"]})
            doc["drives"].append(row)
            continue
        say(f"laying out {t.label()}")
        _reset_left_out(store, drive_id)
        lay = layout_drive(store, t, rules, onenote_policy=options.onenote, max_file_size=options.max_file_size)
        _mark_left_out(store, drive_id, lay.unsupported)
        if t.mount in not_mounted:  # created or granted by copy: what is at the path now is not the team folder
            found = {"conflicts": [], "already": {"files": 0, "bytes": 0}, "target_entries": 0}
        else:
            say(f"comparing with the target: {t.user or '(WebDAV)'}:{t.root}")
            found = find_conflicts(store, target, t, options, rules)
        doc["renames"] += lay.renames
        doc["unsupported"] += lay.unsupported
        doc["too_long_paths"] += lay.too_long_paths
        doc["conflicts"] += found["conflicts"]
        if totals["files"] == 0:
            doc["unsupported"].append({"drive_id": drive_id, "item_id": "", "path": "/", "kind": "drive", "size": 0,
                                       "reason": "empty drive: nothing to copy", "action": "nothing to do"})
        skipped = [c for c in found["conflicts"] if c["kind"] == "file" and not c["renamed_to"]]
        row.update(planned_files=lay.planned_files - len(skipped),
                   planned_bytes=lay.planned_bytes - sum(c["source_size"] or 0 for c in skipped),
                   renames=len(lay.renames), conflicts=len(found["conflicts"]), unsupported=len(lay.unsupported),
                   already_files=found["already"]["files"], already_bytes=found["already"]["bytes"],
                   verified_files=totals["verified_files"])
        already_total["files"] += found["already"]["files"]
        already_total["bytes"] += found["already"]["bytes"]
        if t.target_kind == "user" and t.user:
            per_user[t.user] = per_user.get(t.user, 0) + row["planned_bytes"] - row["already_bytes"]
        doc["drives"].append(row)

    doc["team_folders"] = [f.as_dict() for f in folders]
    doc["warnings"] += [f"team folder {f.mount_point!r}: {n}" for f in folders for n in f.notes
                        if n.startswith("no group of the site")]
    doc["versions"] = plan_versions(store, doc["drives"], options.versions,
                                    supported=bool(getattr(target.features, "versions", False)))
    for a in doc["versions"]["accounts"]:  # carried versions count against the owner's quota too
        if a["user"] in per_user:
            per_user[a["user"]] += a["bytes"]
    doc["quota"] = _quota(per_user, directory, doc)
    doc["grants"], doc["shares"] = _plan_shares(store, sorted(selected), mappings, options, today)
    doc["not_carried_over"] = list(grants_not_carried_over(store, sorted(selected)))
    measured = measured_throughput(store)
    budget = plan_budget(options.source_settings, meter.status_view(store))
    doc["batches"] = _batches(doc["drives"], measured, budget)
    doc["versions_not_carried"] = store.version_rows(sorted(selected), ("missing", "not-carried"))
    files = sum(d["planned_files"] - d["already_files"] for d in doc["drives"])
    bytes_ = sum(d["planned_bytes"] - d["already_bytes"] for d in doc["drives"])
    doc["estimate"] = estimate(files, bytes_, sum(d["shared"] for d in doc["drives"] if d["status"] == "mapped"),
                               measured, budget=budget,
                               drives=sum(1 for d in doc["drives"] if d["status"] == "mapped"))
    doc["name_rules"] = rules.describe()
    doc["policies"] = {"on_conflict": options.on_conflict, "onenote": options.onenote,
                       "anonymous_links": options.share_policy.anonymous_links,
                       "organization_links": options.share_policy.organization_links,
                       "external_guests": options.share_policy.external_guests, "prefix": options.prefix or "(none)"}
    doc["checks"] = {"users_and_groups_checked": directory is not None,
                     "target_checksums": bool(target.features.stored_checksum)}
    if directory is None:
        doc["warnings"].append("the target offers no provisioning API: mapped users and groups and quotas were "
                               "not checked")
    doc["summary"] = _summary(doc, already_total)
    return doc


def _reset_left_out(store: StateStore, drive_id: str) -> None:
    """Items an earlier plan left out go back to pending, so a changed policy or inventory is judged afresh."""
    for item in store.iter_items(drive_id, statuses=("skipped",)):
        if (item["last_error"] or "").startswith(PLAN_MARK):
            store.transition(drive_id, item["item_id"], ItemStatus.PENDING, last_error=None)


def _mark_left_out(store: StateStore, drive_id: str, unsupported: list[dict[str, Any]]) -> None:
    """Items the layout will not copy (malware, OneNote under `report`, orphans, and everything inside a folder
    left out) become `skipped` with the reason, so status and verify count them as decided, not waiting."""
    reasons = {u["item_id"]: u["reason"] for u in unsupported if u.get("item_id")}
    folders = sorted(((u["path"].strip("/") + "/", u["reason"]) for u in unsupported
                      if u.get("item_id") and u.get("kind") != "file" and u.get("path")), key=lambda f: -len(f[0]))
    marks = []
    for item in store.iter_items(drive_id, statuses=("pending", "failed", "conflict")):
        if item["target_path"]:
            continue
        reason = reasons.get(item["item_id"])
        if reason is None:
            path = (item["path"] or "").strip("/")
            reason = next((f"inside {f.rstrip('/')}, which is not copied: {r}" for f, r in folders
                           if path.startswith(f)), "no target path (see the plan's unsupported list)")
        marks.append((item["item_id"], reason))
    for item_id, reason in marks:
        store.transition(drive_id, item_id, ItemStatus.SKIPPED, last_error=PLAN_MARK + reason)


def _org_group(policy: SharePolicy) -> str | None:
    return policy.organization_links[6:] if policy.organization_links.startswith("group:") else None


def _quota(per_user: dict[str, int], directory: Directory | None, doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    getter = getattr(directory, "user_quota", None) if directory is not None else None
    for user, need in sorted(per_user.items()):
        q = getter(user) if callable(getter) else None
        free = q.get("free") if q else None
        row = {"target_user": user, "planned_bytes": need, "free": free, "total": q.get("total") if q else None}
        if free is None:
            row["verdict"] = "unknown"
        elif free < 0:
            row["verdict"] = "unlimited"
        elif need > free:
            row["verdict"] = "over quota"
            doc["unsupported"].append({"drive_id": "", "item_id": "", "path": f"{user}:/", "kind": "user",
                                       "size": need, "action": "copy will stop (507)",
                                       "reason": f"planned {need} bytes exceed {user}'s free quota of {free} bytes"})
        else:
            row["verdict"] = "fits"
        out.append(row)
    return out


def share_context(mappings: Mappings, options: PlanOptions, today: dt.date) -> ShareContext:
    """What the share plan looks grantees up in (users.csv, groups.csv) and the [policy] it follows."""
    return ShareContext(user_for=mappings.users.target_for,
                        group_for=lambda gid, name: mappings.groups.target_for(gid, name),
                        policy=options.share_policy, today=today)


def _plan_shares(store: StateStore, drive_ids: list[str], mappings: Mappings, options: PlanOptions,
                 today: dt.date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Plan every grant and store one planned share per item and recipient; returns (grant rows, share rows)."""
    ctx = share_context(mappings, options, today)
    grants: list[dict[str, Any]] = []

    def on_grant(g: dict[str, Any], action: str, detail: dict[str, Any]) -> None:
        grants.append({"drive_id": g["drive_id"], "item_id": g["item_id"], "source_path": g["item_path"] or "",
                       "grant": g["kind"], "link_scope": g["link_scope"], "roles": g["roles"],
                       "grantee": detail["grantee"], "expires": g["expires"], "action": action, **{
                           k: detail.get(k) for k in ("share_type", "share_with", "permissions", "expire_date",
                                                      "password", "owner", "path", "reason")}})

    refresh_share_plan(store, drive_ids, ctx, on_grant=on_grant)
    shares = [share_row(s) for s in store.iter_planned_shares(drive_ids) if s.planned]
    return grants, shares


def share_row(s: PlannedShare) -> dict[str, Any]:
    """A planned share as a report row: what will exist at the target, and the grants it stands for."""
    kind = {SHARE_USER: "user", SHARE_GROUP: "group", SHARE_LINK: "public link"}.get(s.share_type, str(s.share_type))
    return {"drive_id": s.drive_id, "item_id": s.item_id, "owner": s.owner, "path": s.path, "share_type": s.share_type,
            "kind": kind, "share_with": s.share_with, "permissions": s.permissions, "expire_date": s.expire_date,
            "password": s.password, "grants": len(s.grants),
            "from_grants": "; ".join(f"{g['grant']}{'/' + g['link_scope'] if g['link_scope'] else ''} "
                                     f"{g['grantee'] or ''} ({g['roles']}) → {g['permissions']}".replace("  ", " ")
                                     for g in s.grants),
            "note": s.note, "status": s.status or "not started"}


def _batches(drives: list[dict[str, Any]], measured: float | None, budget: PlanBudget) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in drives:
        if d["status"] != "mapped":
            continue
        b = out.setdefault(d["batch"] or "(no batch)", {"batch": d["batch"] or "(no batch)", "drives": 0,
                                                         "files": 0, "bytes": 0, "shared": 0})
        b["drives"] += 1
        b["files"] += d["planned_files"] - d["already_files"]
        b["bytes"] += d["planned_bytes"] - d["already_bytes"]
        b["shared"] += d["shared"]
    for b in out.values():
        b["estimate"] = estimate(b["files"], b["bytes"], b["shared"], measured, budget=budget, drives=b["drives"])
    return [out[k] for k in sorted(out)]


def _summary(doc: dict[str, Any], already: dict[str, int]) -> dict[str, Any]:
    drives = doc["drives"]
    mapped = [d for d in drives if d["status"] == "mapped"]
    grants, lost = doc["grants"], doc["not_carried_over"]
    return {
        "drives": len(drives), "drives_mapped": len(mapped), "drives_unmapped": len(doc["unmapped"]),
        "files": sum(d["files"] for d in drives), "bytes": sum(d["bytes"] for d in drives),
        "files_mapped": sum(d["files"] for d in mapped), "bytes_mapped": sum(d["bytes"] for d in mapped),
        "planned_files": sum(d["planned_files"] for d in mapped),
        "planned_bytes": sum(d["planned_bytes"] for d in mapped),
        "already_files": already["files"], "already_bytes": already["bytes"],
        "renames": len(doc["renames"]), "conflicts": len(doc["conflicts"]), "unsupported": len(doc["unsupported"]),
        "grants": len(grants), "shares_planned": len(doc["shares"]),
        "grants_shared": sum(1 for g in grants if g["action"] == CREATE_SHARE),
        "grants_not_carried_over": len(lost),
        "grants_dropped": sum(1 for g in lost if g["action"] == "drop"),
        "grants_reported": sum(1 for g in lost if g["action"] == "report"),
        "grants_not_needed": sum(1 for g in grants if g["action"] == "none"),
        "attention": bool(doc["conflicts"] or doc["unmapped"] or doc["unsupported"] or lost),
    }


def options_from_settings(settings: Any) -> PlanOptions:
    """PlanOptions from config.Settings ([target] prefix/service_account/on_conflict and [policy])."""
    pol = settings.policy
    return PlanOptions(prefix=settings.target.prefix, service_account=settings.target.service_account,
                       on_conflict=settings.target.on_conflict, onenote=pol.onenote,
                       create_team_folders=settings.target.create_team_folders,
                       migration_group=settings.target.migration_group,
                       versions=versions_limit(getattr(settings.transfer, "versions", "none")),
                       share_policy=SharePolicy(pol.anonymous_links, pol.organization_links, pol.external_guests),
                       source_settings=settings.source)


def stamp(doc: dict[str, Any], *, state: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Add when and from which state database the plan was made."""
    when = now or dt.datetime.now(dt.UTC)
    return {"generated_at": when.strftime("%Y-%m-%d %H:%M:%S UTC"), "state": state, **doc}
