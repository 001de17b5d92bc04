"""Team-folder targets (`groupfolder:NAME` in sites.csv): check them before anything is written, create and grant
them when `[target] create_team_folders` allows it, and confirm the mount before every drive's first write.

Why: a team folder is mounted in an account's files only while the account is in one of the folder's groups
(reference §7.3). For anyone else `/<NAME>/…` is an ordinary path in their own home, and a write there quietly
makes a look-alike folder nobody else sees. So every write into a team folder and every verify first asks, as
the writing account, whether `/<NAME>` is the team folder (`nc:mount-type` = `group`) and writable.

The team folder's groups come from the library's root permissions as `scan` read them (the site's owners,
members and visitors groups), mapped through groups.csv: owners → all rights and ACL manager, members → read,
change, create, delete (no re-sharing), visitors → read. A Nextcloud group granted through several libraries
of one folder gets the narrowest of their grants, so the folder is never broader than any library in it.
The writing account gets access only through a dedicated migration group, never through a business group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from migrate.errors import ConfigError, TargetError, Terminal
from migrate.mapping import Mappings

READ, UPDATE, CREATE, DELETE, SHARE = 1, 2, 4, 8, 16
ALL = 31
MEMBER = READ | UPDATE | CREATE | DELETE
ROLE_PERMISSIONS = {"owner": ALL, "sp.owner": ALL, "sp.full control": ALL, "write": MEMBER, "sp.edit": MEMBER,
                    "sp.contribute": MEMBER, "read": READ, "sp.read": READ, "sp.view only": READ,
                    "sp.restricted read": READ}
MANAGE_ROLES = {"owner", "sp.owner", "sp.full control"}
OCC_WORDS = ((READ, "read"), (UPDATE | CREATE, "write"), (SHARE, "share"), (DELETE, "delete"))


class TeamFolderNotMounted(TargetError, Terminal):
    """The team folder a drive goes to is not mounted, writable, for the writing account: that drive stops."""

    exit_code = 2


class TeamFolderAdmin(Protocol):
    """What the Nextcloud backend's `TeamFolders` offers (reads and changes as the admin, mounts as a user)."""

    def list(self) -> list[Any]: ...

    def mount(self, user: str, mount_point: str) -> Any: ...

    def create(self, mount_point: str) -> Any: ...

    def set_group(self, folder_id: int, group: str, permissions: int, *, assigned: bool) -> None: ...

    def set_acl_manager(self, folder_id: int, group: str) -> None: ...


def team_folder_admin(target: Any) -> TeamFolderAdmin | None:
    """The target's team-folder API, or None when it has none (plain WebDAV, or the app is not enabled)."""
    if not getattr(target.features, "group_folders", False):
        return None
    factory = getattr(target, "team_folders", None)
    return factory() if callable(factory) else None


def describe_permissions(perms: int) -> str:
    """Words for a groupfolders bitmask, as `occ groupfolders:group` takes them."""
    words = [w for bits, w in OCC_WORDS if perms & bits == bits]
    return " ".join(words) or "none"


@dataclass
class GroupGrant:
    """One Nextcloud group the folder gets, with the narrowest permissions its libraries allow."""

    group: str
    permissions: int
    manage: bool
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rights": describe_permissions(self.permissions)}


@dataclass
class FolderPlan:
    """One team folder named by sites.csv: what the target has, what the writer sees, what copy will do."""

    mount_point: str
    rows: list[str]
    drives: list[str]
    writer: str
    exists: bool = False
    folder_id: int | None = None
    seen_as: str = "nothing"  # team folder | plain folder in the writer's home | nothing
    writable: bool = False
    acl: bool = False
    current_groups: dict[str, int] = field(default_factory=dict)
    current_managers: list[str] = field(default_factory=list)  # groups that manage ACLs already
    action: str = "ready"  # ready | create | grant | error
    changes: list[str] = field(default_factory=list)
    grants: list[GroupGrant] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grants"] = [g.as_dict() for g in self.grants]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FolderPlan:
        """Back from the plan document (`copy` carries out what the plan listed)."""
        grants = [GroupGrant(g["group"], g["permissions"], g["manage"], list(g["sources"])) for g in d["grants"]]
        return cls(**{**d, "grants": grants})


# ------------------------------------------------------------------------------------------- site groups
def _site_grants(store: Any, drive_id: str, mappings: Mappings) -> tuple[dict[str, GroupGrant], list[str]] | None:
    """Nextcloud groups the library's root grants map to (strongest role per group, as SharePoint unites them),
    and what is not carried; None when no scan has read the root's permissions yet."""
    rows = store.drive_access(drive_id)
    if rows is None:
        return None
    out: dict[str, GroupGrant] = {}
    left: list[str] = []
    for r in rows:
        roles = [x for x in (r["roles"] or "").split(",") if x]
        name, gid = r["grantee_name"] or "", r["grantee_id"] or ""
        who = f"{name or gid or r['perm_id']} ({', '.join(roles) or 'no role'})"
        if r["kind"] not in ("group", "owner"):
            left.append(f"{who}: a {r['kind']} grant; team folders are given to groups only (the share plan "
                        "lists item shares)")
            continue
        # Site groups carry a site-local number as id: only their name can be in groups.csv.
        target = mappings.groups.target_for(*( [gid] if gid and not gid.isdigit() else []), name)
        if target is None:
            left.append(f"{who}: no row in {mappings.groups.path.name}, not granted")
            continue
        perms = max((ROLE_PERMISSIONS.get(x.lower(), 0) for x in roles), default=0)
        if not perms:
            left.append(f"{who}: role not carried over (only owner, write and read are), not granted")
            continue
        g = out.setdefault(target, GroupGrant(target, 0, False))
        g.permissions |= perms
        g.manage = g.manage or any(x.lower() in MANAGE_ROLES for x in roles)
        g.sources.append(who)
    return out, left


def _narrowest(per_drive: list[dict[str, GroupGrant]]) -> tuple[list[GroupGrant], list[str]]:
    """A group keeps only what every library of the folder grants it (absent from one → not granted)."""
    names = set().union(*per_drive) if per_drive else set()
    kept, dropped = [], []
    for name in sorted(names):
        grants = [d.get(name) for d in per_drive]
        if any(g is None for g in grants):
            dropped.append(f"{name}: granted by only some of the libraries in this folder, not granted")
            continue
        perms = ALL
        for g in grants:
            perms &= g.permissions  # type: ignore[union-attr]
        kept.append(GroupGrant(name, perms, all(g.manage for g in grants),  # type: ignore[union-attr]
                               [s for g in grants for s in g.sources]))  # type: ignore[union-attr]
    return kept, dropped


# ------------------------------------------------------------------------------------------- plan and doctor
def _fixes(f: FolderPlan, migration_group: str) -> str:
    """The admin commands for this one folder; what every folder shares comes once, from _common_fixes."""
    fid = str(f.folder_id) if f.folder_id is not None else "<id>"
    cmds = [f"occ groupfolders:create {_q(f.mount_point)} (prints its id)"] if not f.exists else []
    cmds.append(f"occ groupfolders:group {fid} {_q(migration_group)} read write share delete")
    if not f.exists:
        cmds.append(f"occ groupfolders:group {fid} <group> read write … for each of the site's groups")
    return "\n    fix: " + "; ".join(cmds)


def _common_fixes(writer: str, migration_group: str, config_name: str) -> str:
    return (f"for the team folders above, once: occ group:add {_q(migration_group)}; occ group:adduser "
            f"{_q(migration_group)} {_q(writer)}\n    or instead: set create_team_folders = true in [target] of "
            f"{config_name}; `copy` then creates the folders and gives {writer!r} access through the group "
            f"{migration_group!r}")


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


def plan_team_folders(store: Any, target: Any, drive_targets: Iterable[Any], mappings: Mappings, *, writer: str,
                      create: bool, migration_group: str,
                      config_name: str = "m365-migrate.toml") -> tuple[list[FolderPlan], list[str]]:
    """Check every team folder the mapped drives go to (reads only); returns the plans and the errors, each
    naming its sites.csv line, what is missing and both fixes (admin commands, or `create_team_folders`)."""
    by_name: dict[str, FolderPlan] = {}
    drive_ids: dict[str, list[str]] = {}
    for t in drive_targets:
        if t.status != "mapped" or t.target_kind != "groupfolder" or not t.mount:
            continue
        f = by_name.setdefault(t.mount, FolderPlan(t.mount, [], [], writer))
        if t.where not in f.rows:
            f.rows.append(t.where)
        f.drives.append(t.label())
        drive_ids.setdefault(t.mount, []).append(t.id)
    if not by_name:
        return [], []
    admin = team_folder_admin(target)
    errors: list[str] = []
    fixable = False  # some folder needs the admin commands every folder shares (said once, at the end)
    if admin is None:
        for f in by_name.values():
            f.action, f.error = "error", "the target offers no team folders"
            errors.append(f"{', '.join(f.rows)}: groupfolder:{f.mount_point} needs a Nextcloud target with the Team "
                          "folders app (groupfolders) enabled, which this target does not offer"
                          "\n    fix: as the Nextcloud admin run `occ app:enable groupfolders`, or map the library "
                          "to a user:<uid>:/<path> target")
        return list(by_name.values()), errors
    folders = {str(x.mount_point).strip("/"): x for x in admin.list()}
    created = store.created_team_folders() if store is not None else {}
    for name, f in by_name.items():
        existing = folders.get(name)
        mount = admin.mount(writer, name)
        f.exists = existing is not None
        if existing is not None:
            f.folder_id, f.acl, f.current_groups = existing.id, existing.acl, dict(existing.groups)
            f.current_managers = sorted(i for t, i in existing.manage if t == "group")
        f.seen_as = ("team folder" if mount.is_team_folder else
                     f"plain folder in {writer}'s home" if mount.exists else "nothing")
        f.writable = mount.is_team_folder and mount.writable
        if mount.is_team_folder and existing is not None and mount.folder_id not in (None, existing.id):
            f.seen_as = f"another team folder (id {mount.folder_id})"
        ours = existing is None or existing.id in created.get(name, set())
        if store is None:
            pass  # doctor: no inventory, so no site groups to compare
        elif ours:
            _site_groups_for(f, store, drive_ids[name], mappings, create)
        else:
            f.notes.append("the folder exists: its groups stay as the Nextcloud admin set them "
                           f"({_groups_text(f.current_groups)})")
        if f.acl:
            f.notes.append("advanced permissions (ACL) are on: the tool sets no ACL rules and leaves the admin's "
                           "rules as they are; folder-level group rights are carried over, item-level permissions "
                           "of the libraries are not turned into ACL rules (the share plan lists item shares)")
        if mount.exists and not mount.is_team_folder:
            f.notes.append(f"{writer!r} has a plain folder '/{name}' in its own home (a look-alike, e.g. from an "
                           "earlier run); it is not the team folder and never counts as copied. Nextcloud renames "
                           f"it to '/{name} (1)' once the team folder is mounted for {writer!r}; delete it then")
        ready = f.writable and existing is not None and f.seen_as == "team folder"
        if ready:
            missing = ([g for g in f.grants if _needs_grant(g, f.current_groups, f.current_managers)]
                       if ours else [])
            if missing and create:
                f.action = "grant"
                f.changes += [f"give group {g.group!r} {describe_permissions(g.permissions)}" for g in missing]
            continue
        problem = _problem(f, existing, mount, writer)
        if f.seen_as.startswith("another team folder") or not create:
            f.action, f.error = "error", problem
            errors.append(f"{', '.join(f.rows)}: groupfolder:{name}: {problem}" +
                          ("" if f.seen_as.startswith("another") else _fixes(f, migration_group)))
            fixable = fixable or not f.seen_as.startswith("another")
            continue
        if existing is None:
            f.action = "create"
            f.changes.append(f"create team folder {name!r}")
        else:
            f.action = "grant"
        f.changes.append(f"give {writer!r} access through group {migration_group!r} (read write share delete)")
        if ours:
            f.changes += [f"give group {g.group!r} {describe_permissions(g.permissions)}"
                          + (" and ACL management" if g.manage else "") for g in f.grants]
    for f in by_name.values():
        if f.action in ("create", "grant") and _access_unknown(f):
            errors.append(f"{', '.join(f.rows)}: groupfolder:{f.mount_point}: the library's own permissions were "
                          "not read yet, so the tool cannot tell which groups may see the new team folder"
                          "\n    fix: run `m365-migrate scan` (it reads each library's root permissions), then plan "
                          "again")
            f.action, f.error = "error", "the library's permissions were not read yet"
    if fixable:
        errors.append(_common_fixes(writer, migration_group, config_name))
    return list(by_name.values()), errors


def _access_unknown(f: FolderPlan) -> bool:
    return any(n.startswith("not read yet") for n in f.not_carried)


def _site_groups_for(f: FolderPlan, store: Any, drive_ids: list[str], mappings: Mappings, create: bool) -> None:
    per_drive = []
    for d in drive_ids:
        found = _site_grants(store, d, mappings)
        if found is None:
            f.not_carried.append("not read yet: no scan has read this library's root permissions")
            return
        grants, left = found
        per_drive.append(grants)
        f.not_carried += left
    f.grants, dropped = _narrowest(per_drive)
    f.not_carried += dropped
    if not f.grants and create:
        f.notes.append("no group of the site maps to a Nextcloud group through groups.csv: only the migration "
                       "account will see the folder until groups are added")


def _needs_grant(g: GroupGrant, current: dict[str, int], managers: Iterable[str], *,
                 manage_only: bool = True) -> bool:
    """A planned group still to do on a folder the tool created: not assigned yet, or holding more than planned
    (adding a group gives it every right until its permissions are set, so an interrupted copy can leave that;
    it is narrowed, never widened: rights an admin took away later stay away). With `manage_only`, a missing ACL
    manager entry counts too."""
    if g.group not in current or current[g.group] & ~g.permissions:
        return True
    return manage_only and g.manage and g.group not in managers


def _groups_text(groups: dict[str, int]) -> str:
    return ", ".join(f"{g}: {describe_permissions(p)}" for g, p in sorted(groups.items())) or "no groups"


def _problem(f: FolderPlan, existing: Any, mount: Any, writer: str) -> str:
    where = f"'/{f.mount_point}' in {writer}'s own home"
    if existing is None:
        return (f"the team folder {f.mount_point!r} does not exist on the target, so {', '.join(f.drives)} would "
                f"land in a plain folder {where}, where nobody else sees it")
    if f.seen_as.startswith("another team folder"):
        return (f"{writer!r} sees {f.seen_as} at '/{f.mount_point}', not team folder {existing.id}; "
                "rename one of the mount points")
    if not mount.is_team_folder:
        return (f"the team folder {f.mount_point!r} (id {existing.id}, groups: {_groups_text(existing.groups)}) is "
                f"not mounted for the writing account {writer!r}, which is in none of its groups, so the files "
                f"would land in a plain folder {where}")
    return (f"{writer!r} sees the team folder {f.mount_point!r} (id {existing.id}) read-only (permissions "
            f"'{mount.permissions}'), so it cannot write into it")


# ------------------------------------------------------------------------------------------- copy
def prepare_team_folders(store: Any, target: Any, folders: list[FolderPlan], *, writer: str, migration_group: str,
                         say: Callable[[str], None] = lambda _m: None) -> int:
    """Carry out the plan's `create`/`grant` actions (only with create_team_folders); each change is audited.
    Returns the number of changes; a rerun after success finds every folder ready and changes nothing."""
    todo = [f for f in folders if f.action in ("create", "grant")]
    if not todo:
        return 0
    admin = team_folder_admin(target)
    if admin is None:
        raise ConfigError("the target offers no team folders")
    prov = target.provisioning()
    changes = 0
    members = prov.group_members(migration_group)
    if members is None:
        prov.create_group(migration_group)
        store.audit("group-create", migration_group, purpose="team-folder access for the migration account")
        changes += 1
        members = []
    if writer not in members:
        prov.add_to_group(writer, migration_group)
        store.audit("group-add-member", migration_group, user=writer)
        changes += 1
    for f in todo:
        folder_id, current, managers = f.folder_id, dict(f.current_groups), set(f.current_managers)
        if folder_id is None:
            found = next((x for x in admin.list() if str(x.mount_point).strip("/") == f.mount_point), None)
            if found is None:
                found = admin.create(f.mount_point)
                say(f"created team folder {f.mount_point!r} (id {found.id})")
                store.audit("teamfolder-create", f.mount_point, folder_id=found.id, rows=f.rows)
                changes += 1
            folder_id, current = found.id, dict(found.groups)
            managers = {i for t, i in found.manage if t == "group"}
            store.record_team_folder(f.mount_point, folder_id)
        grants = [GroupGrant(migration_group, ALL, False)]
        if f.folder_id is None or f.folder_id in store.created_team_folders().get(f.mount_point, set()):
            grants += [g for g in f.grants if g.group != migration_group]  # never regroup an admin's folder
        for g in grants:
            if _needs_grant(g, current, managers, manage_only=False) or (g.group == migration_group
                                                                          and current[g.group] != ALL):
                # a group not assigned yet is added first: setting permissions alone changes nothing (20.1.2)
                admin.set_group(folder_id, g.group, g.permissions, assigned=g.group in current)
                store.audit("teamfolder-grant", f.mount_point, folder_id=folder_id, group=g.group,
                            permissions=g.permissions, sources=g.sources)
                say(f"team folder {f.mount_point!r}: group {g.group!r} gets {describe_permissions(g.permissions)}")
                changes += 1
            if g.manage and g.group not in managers:  # a second manageACL for the same group is an HTTP 500
                admin.set_acl_manager(folder_id, g.group)
                store.audit("teamfolder-acl-manager", f.mount_point, folder_id=folder_id, group=g.group)
                changes += 1
    return changes


def confirm_mount(target: Any, drive: dict[str, Any]) -> None:
    """Before the first write of a drive (copy, sync): when it goes to a team folder, the writing account must see
    that folder mounted (`nc:mount-type` = group) and writable. Raises TeamFolderNotMounted otherwise; does nothing
    for drives that go elsewhere."""
    problem = mount_problem(target, drive)
    if problem:
        raise TeamFolderNotMounted(problem, hint="run `m365-migrate plan` for the fixes; nothing of this drive was "
                                                 "written")


def mount_problem(target: Any, drive: dict[str, Any], *, write: bool = True) -> str:
    """Why a drive's team folder is not mounted (and, with `write`, writable) for its writer; '' when it is or
    the drive goes elsewhere."""
    name = drive.get("target_mount")
    if not name:
        return ""
    user = drive.get("target_user") or ""
    admin = team_folder_admin(target)
    if admin is None:
        return f"team folder {name!r}: the target offers no team folders"
    mount = admin.mount(user, name)
    if not mount.is_team_folder:
        what = "a plain folder in its own home" if mount.exists else "nothing"
        return (f"team folder {name!r} is not mounted for {user!r} (it sees {what} at '/{name}'); writing there "
                "would create a look-alike folder outside the team folder")
    if write and not mount.writable:
        return f"team folder {name!r} is read-only for {user!r} (permissions '{mount.permissions}')"
    return ""


@dataclass(frozen=True)
class SiteRowTarget:
    """A sites.csv row seen as a drive target, for checks made without an inventory (`doctor`)."""

    where: str
    source: str
    mount: str
    id: str = ""
    status: str = "mapped"
    target_kind: str = "groupfolder"

    def label(self) -> str:
        return f"the library of {self.source}"


def rows_as_targets(mappings: Mappings) -> list[SiteRowTarget]:
    return [SiteRowTarget(f"{mappings.sites.path.name}:{r.line}", r.source, r.target.name)
            for r in mappings.sites if r.target is not None and r.target.kind == "groupfolder"]


def backfill_mounts(store: Any, mappings: Mappings) -> None:
    """State databases planned before team folders were checked: record which drives go to one (store only)."""
    for d in store.drives():
        if d["kind"] == "onedrive" or d.get("target_mount") or not d["target_root"]:
            continue
        row = mappings.sites.find(drive_id=d["id"], drive_url=d["web_url"] or None, site_id=d["site_id"] or None,
                                  site_url=d["site_url"] or None)
        if row is not None and row.target is not None and row.target.kind == "groupfolder":
            store.update_drive(d["id"], target_mount=row.target.name)
