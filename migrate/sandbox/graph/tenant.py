"""The tenant model: users, groups, sites, drives and items, with a per-drive change log that drives delta."""

from __future__ import annotations

import base64
import bisect
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .content import PERIOD, Content

DOMAIN = "contoso.onmicrosoft.com"
SP_HOST = "contoso.sharepoint.com"
MY_HOST = "contoso-my.sharepoint.com"
GEN_TIME = 1767225600.0  # 2026-01-01T00:00:00Z: the instant the generated tenant "exists"; mutations come later


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def b64id(text: str) -> str:
    """SharePoint permission ids are base64 claims."""
    return base64.b64encode(text.encode()).decode().rstrip("=")


@dataclass
class User:
    id: str
    display_name: str
    given_name: str
    surname: str
    upn: str
    job_title: str | None = None
    drive_id: str | None = None  # None: the "no mysite" case

    def identity(self) -> dict[str, Any]:
        return {"email": self.upn, "id": self.id, "displayName": self.display_name}


@dataclass
class Group:
    id: str
    display_name: str
    mail: str
    members: list[str]
    site_id: str | None = None
    drive_id: str | None = None

    def identity(self) -> dict[str, Any]:
        return {"email": self.mail, "id": self.id, "displayName": self.display_name}


@dataclass
class Site:
    id: str
    name: str
    display_name: str
    web_url: str
    created: float
    drive_ids: list[str] = field(default_factory=list)
    group_id: str | None = None
    is_root: bool = False


@dataclass
class Version:
    label: str
    content: Content
    modified: float
    modified_by: str


@dataclass(slots=True, eq=False)
class Item:
    id: str
    name: str
    parent_id: str | None
    kind: str  # root | folder | file | package
    created: float
    modified: float
    created_by: str
    modified_by: str
    content: Content | None = None
    enrich_extra: int = 0  # SharePoint "enrichment": extra bytes a download returns (libraries' Office files)
    old_versions: list[Version] = field(default_factory=list)  # oldest first; the current one is not here
    perms: list[dict[str, Any]] = field(default_factory=list)  # unique (non-inherited) permissions
    malware: bool = False
    deleted: bool = False
    seq: int = 0
    etag_n: int = 1
    ctag_n: int = 1
    children: dict[str, Item] = field(default_factory=dict)
    guid: str = ""

    @property
    def is_container(self) -> bool:
        return self.kind in ("root", "folder", "package")

    @property
    def version_label(self) -> str:
        return f"{len(self.old_versions) + 1}.0"


@dataclass
class Drive:
    id: str
    index: int
    name: str
    drive_type: str  # business | documentLibrary
    owner: dict[str, Any]  # identitySet
    web_url: str
    created: float
    site_id: str | None = None
    owner_user: str | None = None
    owner_group: str | None = None
    items: dict[str, Item] = field(default_factory=dict)
    root: Item | None = None
    seq: int = 0
    log_seqs: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)
    log_times: list[float] = field(default_factory=list)
    epoch: int = 0
    rng: random.Random = field(default_factory=random.Random)

    # ---------------------------------------------------------------- change log
    def touch(self, item: Item, when: float | None = None) -> None:
        """Record a change: the item's latest state will be (re)sent by delta after any older token."""
        self.seq += 1
        item.seq = self.seq
        self.log_seqs.append(self.seq)
        self.log_ids.append(item.id)
        self.log_times.append(GEN_TIME if when is None else when)

    def seq_at(self, when: float) -> int:
        """The last sequence number recorded at or before `when` (timestamp delta tokens)."""
        i = bisect.bisect_right(self.log_times, when)
        return self.log_seqs[i - 1] if i else 0

    def changes(self, after: int, upto: int) -> list[Item]:
        """Latest state of every item changed in (after, upto], each once, in change order."""
        lo = bisect.bisect_right(self.log_seqs, after)
        hi = bisect.bisect_right(self.log_seqs, upto)
        out = []
        for k in range(lo, hi):
            it = self.items.get(self.log_ids[k])
            if it is not None and it.seq == self.log_seqs[k]:
                out.append(it)
        return out

    # ---------------------------------------------------------------- paths
    def path_of(self, item: Item) -> str:
        parts = []
        while item.parent_id is not None:
            parts.append(item.name)
            item = self.items[item.parent_id]
        return "/" + "/".join(reversed(parts))

    def ancestors(self, item: Item) -> list[Item]:
        """Parent chain, root first."""
        out = []
        while item.parent_id is not None:
            item = self.items[item.parent_id]
            out.append(item)
        return list(reversed(out))

    def by_path(self, path: str) -> Item | None:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            assert node is not None
            nxt = next((c for c in node.children.values() if c.name.lower() == part.lower()), None)
            if nxt is None:
                return None
            node = nxt
        return node

    def resolve(self, ref: str) -> Item | None:
        """An item id, 'root', or a path starting with '/'."""
        if ref == "root":
            return self.root
        if ref.startswith("/"):
            return self.by_path(ref)
        it = self.items.get(ref)
        return None if it is None or it.deleted else it

    def live_items(self) -> list[Item]:
        """Every live item, parents before children (DFS, children by name)."""
        out: list[Item] = []
        stack = [self.root]
        while stack:
            it = stack.pop()
            assert it is not None
            out.append(it)
            stack.extend(sorted(it.children.values(), key=lambda c: c.name.lower(), reverse=True))
        return out

    # ---------------------------------------------------------------- building blocks
    def new_id(self) -> str:
        return "01" + base64.b32encode(self.rng.randbytes(20)).decode()

    def new_content(self, size: int) -> Content:
        return Content(self.rng.randrange(PERIOD), size)

    def add(self, parent: Item | None, name: str, kind: str, by: str, when: float,
            size: int = 0, log_time: float | None = None) -> Item:
        it = Item(id=self.new_id(), name=name, parent_id=parent.id if parent else None, kind=kind,
                  created=when, modified=when, created_by=by, modified_by=by,
                  content=self.new_content(size) if kind == "file" else None,
                  guid=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper())
        self.items[it.id] = it
        if parent is not None:
            parent.children[it.id] = it
        else:
            self.root = it
        self.touch(it, log_time)
        return it


@dataclass
class Tenant:
    """Everything the sandbox serves; built by `generate.generate(spec)` and changed by `Mutator`."""

    seed: int
    tenant_id: str
    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    drives: dict[str, Drive] = field(default_factory=dict)
    drive_list: list[Drive] = field(default_factory=list)
    user_index: dict[str, User] = field(default_factory=dict)
    guests: list[dict[str, Any]] = field(default_factory=list)
    licences: int = 60_000   # enabled units of the SharePoint SKU `/subscribedSkus` reports (the top RU band)

    def user(self, ref: str) -> User | None:
        return self.user_index.get(ref.lower())

    def group(self, ref: str) -> Group | None:
        return next((g for g in self.groups if g.id == ref), None)

    def site(self, ref: str) -> Site | None:
        if ref == "root":
            return next((s for s in self.sites if s.is_root), None)
        return next((s for s in self.sites if s.id.lower() == ref.lower()), None)

    def user_by_id(self, uid: str) -> User:
        return self.user_index[uid.lower()]

    def identity(self, uid: str) -> dict[str, Any]:
        u = self.user_index.get(uid.lower())
        return u.identity() if u else {"displayName": "System Account"}


def now() -> float:
    return float(int(time.time()))
