"""Changes to the tenant after start (what delta tests need): add, modify, rename, move, delete, permissions."""

from __future__ import annotations

from typing import Any

from . import perms
from .generate import OFFICE
from .tenant import Drive, Item, Tenant, Version, now


class MutationError(ValueError):
    """A mutation that Graph itself would refuse (missing item, name clash, ...)."""


class Mutator:
    """Every method runs in the server's loop thread (GraphSandbox.mutate proxies to it) and touches the log."""

    def __init__(self, tenant: Tenant) -> None:
        self.t = tenant

    def _drive(self, drive_id: str) -> Drive:
        d = self.t.drives.get(drive_id)
        if d is None:
            raise MutationError(f"no drive {drive_id!r}")
        return d

    def _item(self, d: Drive, ref: str) -> Item:
        it = d.resolve(ref)
        if it is None:
            raise MutationError(f"no live item {ref!r} in drive {d.id}")
        return it

    def _container(self, d: Drive, ref: str) -> Item:
        it = self._item(d, ref)
        if not it.is_container:
            raise MutationError(f"{ref!r} is not a folder")
        return it

    @staticmethod
    def _check_free(parent: Item, name: str, ignore: Item | None = None) -> None:
        if not name or "/" in name:
            raise MutationError(f"invalid name {name!r}")
        for c in parent.children.values():
            if c is not ignore and c.name.lower() == name.lower():
                raise MutationError(f"nameAlreadyExists: {name!r}")

    def _out(self, d: Drive, it: Item) -> dict[str, Any]:
        return {"drive_id": d.id, "id": it.id, "path": d.path_of(it), "seq": it.seq}

    def add_file(self, drive_id: str, parent_path: str, name: str, size: int = 1024, by: str | None = None) -> dict:
        d = self._drive(drive_id)
        parent = self._container(d, parent_path if parent_path.startswith("/") or parent_path == "root"
                                 else "/" + parent_path)
        self._check_free(parent, name)
        it = d.add(parent, name, "file", by or d.owner_user or (self.t.users[0].id if self.t.users else ""),
                   now(), size, log_time=now())
        if d.drive_type == "documentLibrary" and name.rsplit(".", 1)[-1].lower() in OFFICE:
            it.enrich_extra = 512 + d.rng.randrange(4096)
        return self._out(d, it)

    def add_folder(self, drive_id: str, parent_path: str, name: str) -> dict:
        d = self._drive(drive_id)
        parent = self._container(d, parent_path if parent_path.startswith("/") or parent_path == "root"
                                 else "/" + parent_path)
        self._check_free(parent, name)
        it = d.add(parent, name, "folder", d.owner_user or "", now(), log_time=now())
        return self._out(d, it)

    def modify(self, drive_id: str, item_id: str, size: int | None = None) -> dict:
        """New content (a new version); the old content stays downloadable as a version."""
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        if it.content is None:
            raise MutationError("only files have content")
        it.old_versions.append(Version(it.version_label, it.content, it.modified, it.modified_by))
        it.content = d.new_content(it.content.size if size is None else size)
        it.modified = max(now(), it.modified + 1)
        it.etag_n += 1
        it.ctag_n += 1
        d.touch(it, now())
        return self._out(d, it)

    def rename(self, drive_id: str, item_id: str, name: str) -> dict:
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        if it.parent_id is None:
            raise MutationError("the root cannot be renamed")
        self._check_free(d.items[it.parent_id], name, ignore=it)
        it.name = name
        it.etag_n += 1
        d.touch(it, now())
        return self._out(d, it)

    def move(self, drive_id: str, item_id: str, new_parent: str, name: str | None = None) -> dict:
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        dest = self._container(d, new_parent)
        if it.parent_id is None or dest is it or it in d.ancestors(dest):
            raise MutationError("cannot move an item into itself")
        self._check_free(dest, name or it.name, ignore=it)
        d.items[it.parent_id].children.pop(it.id, None)
        it.parent_id = dest.id
        dest.children[it.id] = it
        if name:
            it.name = name
        it.etag_n += 1
        d.touch(it, now())
        return self._out(d, it)

    def delete(self, drive_id: str, item_id: str) -> dict:
        """Delete an item and (for folders) everything below it; delta reports a tombstone for each."""
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        if it.parent_id is None:
            raise MutationError("the root cannot be deleted")
        out = self._out(d, it)
        d.items[it.parent_id].children.pop(it.id, None)
        stack = [it]
        while stack:
            x = stack.pop()
            stack.extend(x.children.values())
            x.deleted = True
            x.modified = now()
            d.touch(x, now())
        return out

    def add_permission(self, drive_id: str, item_id: str, kind: str, user: str | None = None,
                       group: str | None = None, roles: list[str] | None = None, password: bool = False,
                       expiration: str | None = None) -> dict:
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        u = self.t.user(user) if user else None
        if user and u is None:
            raise MutationError(f"no user {user!r}")
        g = self.t.group(group) if group else None
        if group and g is None:
            raise MutationError(f"no group {group!r}")
        if kind in ("user", "users_link") and u is None:
            raise MutationError(f"a {kind} permission needs user=")
        if kind == "group" and g is None:
            raise MutationError("a group permission needs group=")
        p = perms.make(self.t, d, kind, user=u, group=g, roles=roles, password=password, expiration=expiration)
        it.perms = [x for x in it.perms if x["id"] != p["id"]] + [p]
        it.etag_n += 1
        d.touch(it, now())
        return {**self._out(d, it), "permission": p}

    def remove_permission(self, drive_id: str, item_id: str, permission_id: str) -> dict:
        d = self._drive(drive_id)
        it = self._item(d, item_id)
        before = len(it.perms)
        it.perms = [p for p in it.perms if p["id"] != permission_id]
        if len(it.perms) == before:
            raise MutationError(f"no unique permission {permission_id!r} on {item_id}")
        it.etag_n += 1
        d.touch(it, now())
        return self._out(d, it)

    OPS = ("add_file", "add_folder", "modify", "rename", "move", "delete", "add_permission", "remove_permission")

    def apply(self, op: str, **kwargs: Any) -> dict:
        if op not in self.OPS:
            raise MutationError(f"unknown op {op!r}; expected one of {self.OPS}")
        return getattr(self, op)(**kwargs)
