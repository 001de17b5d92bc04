"""Server-side state of the Nextcloud sandbox: users, groups, file metadata, team folders, locks, counters."""

from __future__ import annotations

import hashlib
import os
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

READ, UPDATE, CREATE, DELETE, SHARE = 1, 2, 4, 8, 16
ALL = 31


@dataclass
class User:
    """One account; `password` is the app password the sandbox minted for it."""

    uid: str
    password: str
    quota: int | None = None            # bytes; None = unlimited
    admin: bool = False
    displayname: str = ""
    email: str = ""


@dataclass
class Meta:
    """What Nextcloud keeps in its file cache beside the bytes (fileid, checksum, times, folder etag)."""

    fileid: int
    checksum: str | None = None
    creation_time: int = 0
    upload_time: int = 0
    generation: int = 0
    author: str = ""                     # who uploaded the current content (nc:version-author, §9.1)


@dataclass
class TeamFolder:
    """A groupfolders-app folder (reference §7)."""

    id: int
    mount_point: str
    groups: dict[str, int] = field(default_factory=dict)
    quota: int = -3
    acl: bool = False
    manage: list[dict[str, str]] = field(default_factory=list)
    rules: dict[str, list[dict[str, object]]] = field(default_factory=dict)   # rel path -> ACL rules


@dataclass
class Node:
    """A path in a user's tree resolved to disk: where it lives and under which mount."""

    uid: str
    rel: str                      # path relative to the user's files root, no leading slash
    real: Path
    folder: TeamFolder | None     # set when the node lives in a team folder
    rel_in_mount: str             # path relative to the storage root (home or team folder)

    @property
    def storage_root(self) -> Path:
        return self.real if not self.rel_in_mount else Path(str(self.real)[: -len(self.rel_in_mount) - 1])


def _token(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class Fault:
    """An injected failure: the next `remaining` requests of `method` (whose path contains `path_contains`) answer
    `status`. `after=True` lets the server do the work first, as when a proxy times out a slow MOVE that the
    server then completes (the client sees 504, the file is there)."""

    method: str
    status: int
    remaining: int = 1
    path_contains: str = ""
    after: bool = False


class State:
    """All mutable sandbox state behind one re-entrant lock; the WSGI layers read and change it."""

    def __init__(self, data_dir: Path, *, share_rate_limit: bool | tuple[int, int] = True,
                 bruteforce_max_attempts: int = 10, chunking_v2: bool = False, sessions: bool = True) -> None:
        self.data_dir = data_dir
        self.chunking_v2 = chunking_v2          # emulate S3 + Redis: ChunkingV2Plugin rules (§4.1)
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.groups: dict[str, list[str]] = {}
        self.meta: dict[str, Meta] = {}
        self.by_id: dict[int, str] = {}
        self.kids: dict[str, set[str]] = {}     # path -> child paths with metadata below it (moves walk the subtree)
        self.next_fileid = 100
        self.instance_id = "oc" + _token(10).lower()
        self.locked: set[str] = set()
        self.busy: set[str] = set()
        self.folders: dict[int, TeamFolder] = {}
        self.shares: list[dict[str, object]] = []
        self.next_share_id = 1
        # §6.5a: a user or group share is pending (0), accepted (1) or rejected (2) per recipient. A new share is
        # accepted for its recipients by a "share created" listener unless `sharing.force_share_accept` is on;
        # `acceptance_failures` makes that listener fail for the next shares (as "database is locked" did on
        # 32.0.1), leaving them pending although createShare answered 200.
        self.force_share_accept = False
        self.acceptance_failures = 0
        self.failed_logins: dict[str, int] = {}
        self.sessions_enabled = sessions        # Set-Cookie on Basic-auth answers; a session wins over Basic (§1.2)
        self.sessions: dict[str, Any] = {}      # session id -> sessions.Session
        self.cookie_requests = 0                # requests that carried any Cookie header
        self.session_logins = 0                 # requests that ran as a session's user
        self.bruteforce_max_attempts = bruteforce_max_attempts
        if share_rate_limit is True:
            share_rate_limit = (20, 600)
        self.share_rate_limit: tuple[int, int] | None = share_rate_limit or None
        self.share_calls: dict[str, deque[float]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.delays: dict[str, float] = {}      # method -> seconds each such request takes (slow-server tests)
        self.running: dict[str, int] = {}       # method -> requests being served now
        self.peak_running: dict[str, int] = {}  # method -> most served at once
        self.mkcol_running: dict[str, int] = {}  # path a MKCOL is creating now -> MKCOLs that lost (mkcol_race)
        self.faults: list[Fault] = []
        self.befores: list[tuple[str, str, Callable[[], None]]] = []
        self.versions: dict[int, dict[str, dict[str, object]]] = {}    # fileid -> {timestamp: {author, label}}
        self.trash: list[dict[str, Any]] = []
        for sub in ("users", "__groupfolders", "uploads", "tmp", "versions", "trash"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def in_flight(self, method: str) -> Iterator[None]:
        """Count the request as being served (its configured delay included), for `peak_running`."""
        with self.lock:
            self.running[method] = now = self.running.get(method, 0) + 1
            self.peak_running[method] = max(self.peak_running.get(method, 0), now)
        try:
            if self.delays.get(method):
                time.sleep(self.delays[method])
            yield
        finally:
            with self.lock:
                self.running[method] -= 1

    @contextmanager
    def mkcol_race(self, method: str, path: str, hold: float = 0.0) -> Iterator[int]:
        """0, or the status real Nextcloud 32.0.1 gives a MKCOL of a path another MKCOL is creating right now:
        the first such one passed the exists check with the winner, so its mkdir fails once the winner's is
        done: 403 "Could not create directory" (not 405); any more at that moment find the winner's lock on
        the path: 423 "is locked". (Six at once, fifteen rounds on 32.0.1: one 201 and one 403 each round,
        the rest 423 or, once the winner was done, 405.) `hold`: seconds the winner's mkdir takes (a folder an
        Auto-Mkcol PUT makes; a MKCOL's own delay is the request's)."""
        if method != "MKCOL":
            yield 0
            return
        key = path.rstrip("/")
        with self.lock:
            losers = self.mkcol_running.get(key)
            if losers is None:
                self.mkcol_running[key] = 0
            else:
                self.mkcol_running[key] = losers + 1
        if losers:
            yield 423
            return
        deadline = time.monotonic() + 30
        while losers == 0 and time.monotonic() < deadline:  # the 403 comes once the winner's mkdir is done
            with self.lock:
                if key not in self.mkcol_running:
                    break
            time.sleep(0.005)
        try:
            if losers is None and hold:
                time.sleep(hold)
            yield 0 if losers is None else 403
        finally:
            if losers is None:
                with self.lock:
                    self.mkcol_running.pop(key, None)

    def run_before(self, method: str, path: str) -> None:
        """Run (once) the first test action armed for this request, before the server handles it."""
        with self.lock:
            hit = next((b for b in self.befores if b[0] == method and b[1] in path), None)
            if hit is not None:
                self.befores.remove(hit)
        if hit is not None:
            hit[2]()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, used up by one."""
        with self.lock:
            for f in self.faults:
                if f.remaining > 0 and f.method == method and f.path_contains in path:
                    f.remaining -= 1
                    return f
        return None

    # --- persistence (only for a caller-provided data directory) ------------------------------------------------
    def dump(self) -> dict[str, object]:
        """Everything beside the bytes, with paths relative to the data directory."""
        root = str(self.data_dir) + "/"
        with self.lock:
            return {
                "instance_id": self.instance_id, "next_fileid": self.next_fileid, "next_share_id": self.next_share_id,
                "users": [asdict(u) for u in self.users.values()], "groups": self.groups,
                "meta": {k[len(root):]: asdict(m) for k, m in self.meta.items() if k.startswith(root)},
                "folders": [asdict(f) for f in self.folders.values()], "shares": self.shares,
                "versions": {str(k): v for k, v in self.versions.items()}, "trash": self.trash,
            }

    def load(self, saved: dict[str, Any]) -> None:
        with self.lock:
            self.instance_id = saved["instance_id"]
            self.next_fileid = saved["next_fileid"]
            self.next_share_id = saved["next_share_id"]
            self.users = {u["uid"]: User(**u) for u in saved["users"]}
            self.groups = {g: list(m) for g, m in saved["groups"].items()}
            self.meta = {str(self.data_dir / k): Meta(**m) for k, m in saved["meta"].items()}
            self.by_id = {m.fileid: k for k, m in self.meta.items()}
            self.kids = {}
            for k in self.meta:
                self._link(k)
            self.folders = {f["id"]: TeamFolder(**f) for f in saved["folders"]}
            self.shares = list(saved["shares"])
            self.versions = {int(k): v for k, v in saved.get("versions", {}).items()}
            self.trash = list(saved.get("trash", []))

    # --- accounts -------------------------------------------------------------------------------------------
    def add_user(self, uid: str, *, quota_mb: float | None = None, admin: bool = False,
                 password: str | None = None) -> str:
        with self.lock:
            pw = password or "-".join(_token(5) for _ in range(5))
            quota = None if quota_mb is None else int(quota_mb * 1024 * 1024)
            self.users[uid] = User(uid, pw, quota, admin, displayname=uid.capitalize(),
                                   email=f"{uid}@sandbox.invalid")
            self.home(uid).mkdir(parents=True, exist_ok=True)
            if admin:
                self.groups.setdefault("admin", [])
                if uid not in self.groups["admin"]:
                    self.groups["admin"].append(uid)
            return pw

    def add_group(self, gid: str, members: list[str]) -> None:
        with self.lock:
            current = self.groups.setdefault(gid, [])
            for m in members:
                if m not in current:
                    current.append(m)

    def user_groups(self, uid: str) -> list[str]:
        with self.lock:
            return [g for g, members in self.groups.items() if uid in members]

    def home(self, uid: str) -> Path:
        return self.data_dir / "users" / uid / "files"

    # --- path resolution ------------------------------------------------------------------------------------
    def visible_folders(self, uid: str) -> list[TeamFolder]:
        """The team folders mounted for `uid` (member of one of their groups); setting them up makes room (below)."""
        groups = set(self.user_groups(uid))
        with self.lock:
            folders = [f for f in self.folders.values() if groups & set(f.groups)]
            for f in folders:
                self._make_room(uid, f.mount_point)
            return folders

    def _make_room(self, uid: str, mount_point: str) -> None:
        """As 32.0.1 does (seen on the rig, 2026-12-04): a team folder mounted where the user's home already holds
        an entry of that name renames the entry to `<name> (1)` (the first free number); it keeps that name after
        the team folder is gone."""
        home = self.home(uid)
        spot = home / mount_point
        if not os.path.lexists(spot):
            return
        n = 1
        while os.path.lexists(home / f"{mount_point} ({n})"):
            n += 1
        moved = home / f"{mount_point} ({n})"
        os.rename(spot, moved)
        self.rekey(spot, moved)

    def folder_root(self, folder: TeamFolder) -> Path:
        return self.data_dir / "__groupfolders" / str(folder.id) / "files"

    def resolve(self, uid: str, rel: str) -> Node:
        """Map `files/{uid}/{rel}` to disk, following team-folder mounts (reference §7.3)."""
        rel = rel.strip("/")
        parts = rel.split("/") if rel else []
        if parts:
            for folder in self.visible_folders(uid):
                if folder.mount_point == parts[0]:
                    inner = "/".join(parts[1:])
                    root = self.folder_root(folder)
                    return Node(uid, rel, root / inner if inner else root, folder, inner)
        root = self.home(uid)
        return Node(uid, rel, root / rel if rel else root, None, rel)

    def rel_for(self, uid: str, real: Path) -> str | None:
        """The path of a disk location inside `uid`'s tree, or None when the user cannot see it."""
        text = str(real)
        home = str(self.home(uid))
        if text == home or text.startswith(home + "/"):
            return text[len(home) + 1:]
        for folder in self.visible_folders(uid):
            root = str(self.folder_root(folder))
            if text == root or text.startswith(root + "/"):
                return (folder.mount_point + "/" + text[len(root) + 1:]).rstrip("/")
        return None

    # --- metadata -------------------------------------------------------------------------------------------
    def meta_for(self, real: Path | str) -> Meta:
        key = str(real)
        with self.lock:
            m = self.meta.get(key)
            if m is None:
                m = Meta(self.next_fileid)
                self.next_fileid += 1
                self.meta[key] = m
                self.by_id[m.fileid] = key
                self._link(key)
            return m

    def path_of(self, fileid: int) -> Path | None:
        with self.lock:
            key = self.by_id.get(fileid)
        return Path(key) if key and os.path.exists(key) else None

    def oc_id(self, fileid: int) -> str:
        return f"{fileid:08d}{self.instance_id}"

    def etag(self, real: Path | str, st: os.stat_result | None = None) -> str:
        """Files: 32 hex, stable while fileid, size and mtime second are; folders: 13 hex (reference §2.1)."""
        st = st or os.stat(real)
        m = self.meta_for(real)
        if os.path.isdir(real):
            return hashlib.md5(f"d{m.fileid}-{m.generation}-{int(st.st_mtime)}".encode()).hexdigest()[:13]
        return hashlib.md5(f"f{m.fileid}-{st.st_size}-{int(st.st_mtime)}".encode()).hexdigest()

    def _link(self, key: str) -> None:
        """Index `key` under each ancestor path, so a MOVE or DELETE walks only its subtree (not all metadata)."""
        child, parent = key, os.path.dirname(key)
        while parent and parent != child:
            kids = self.kids.setdefault(parent, set())
            if child in kids:
                return
            kids.add(child)
            child, parent = parent, os.path.dirname(parent)

    def _subtree(self, s: str) -> list[str]:
        """Metadata keys at `s` and below it, found through the path index."""
        out, stack = [], [s]
        while stack:
            cur = stack.pop()
            if cur in self.meta:
                out.append(cur)
            stack.extend(self.kids.get(cur, ()))
        return out

    def _unlink(self, s: str) -> None:
        stack = [s]
        while stack:
            stack.extend(self.kids.pop(stack.pop(), ()))
        parent = self.kids.get(os.path.dirname(s))
        if parent is not None:
            parent.discard(s)

    def rekey(self, src: Path | str, dst: Path | str) -> None:
        """A move keeps fileids and metadata (reference §2.4: MOVE keeps the source's id)."""
        s, d = str(src), str(dst)
        with self.lock:
            self.forget(d)
            keys = self._subtree(s)
            self._unlink(s)
            for key in keys:
                m = self.meta.pop(key)
                new = d + key[len(s):]
                self.meta[new] = m
                self.by_id[m.fileid] = new
                self._link(new)
            for coll in (self.locked,):
                for key in [k for k in coll if k == s or k.startswith(s + "/")]:
                    coll.discard(key)
                    coll.add(d + key[len(s):])

    def forget(self, real: Path | str) -> None:
        s = str(real)
        with self.lock:
            for key in self._subtree(s):
                m = self.meta.pop(key)
                self.by_id.pop(m.fileid, None)
            self._unlink(s)

    def propagate(self, real: Path, root: Path) -> None:
        """Ancestors get mtime = max(mtime, now) and a new etag (reference §2.6)."""
        now = time.time()
        cur = real.parent
        root_s = str(root)
        while str(cur).startswith(root_s):
            try:
                st = os.stat(cur)
                if st.st_mtime < now:
                    os.utime(cur, (now, now))
            except OSError:
                break
            self.meta_for(cur).generation += 1
            if str(cur) == root_s:
                break
            cur = cur.parent

    # --- permissions ----------------------------------------------------------------------------------------
    def permissions(self, node: Node, is_dir: bool) -> int:
        """Bitmask the user holds on a node: home = all, team folder = group grant narrowed by ACL (§7.2)."""
        if node.folder is None:
            perms = ALL
        else:
            groups = self.user_groups(node.uid)
            perms = 0
            for g, p in node.folder.groups.items():
                if g in groups:
                    perms |= p
            if node.folder.acl:
                perms = self.apply_acl(node, perms)
        if not is_dir:
            perms &= ~CREATE
        return perms

    def apply_acl(self, node: Node, perms: int) -> int:
        assert node.folder is not None
        groups = set(self.user_groups(node.uid))
        parts = node.rel_in_mount.split("/") if node.rel_in_mount else []
        levels = [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for level in levels:
            rules = [r for r in node.folder.rules.get(level, [])
                     if (r["type"] == "user" and r["id"] == node.uid) or (r["type"] == "group" and r["id"] in groups)]
            for bit in (READ, UPDATE, CREATE, DELETE, SHARE):
                deciding = [r for r in rules if int(r["mask"]) & bit]
                if deciding:
                    allowed = any(int(r["permissions"]) & bit for r in deciding)
                    perms = (perms | bit) if allowed else (perms & ~bit)
        return perms

    def can_manage_acl(self, uid: str, folder: TeamFolder) -> bool:
        user = self.users.get(uid)
        if user and user.admin:
            return True
        groups = set(self.user_groups(uid))
        return any((m["type"] == "user" and m["id"] == uid) or (m["type"] == "group" and m["id"] in groups)
                   for m in folder.manage)

    @staticmethod
    def perm_string(perms: int, *, is_dir: bool, mounted: bool) -> str:
        """`oc:permissions` letters as DavUtil::getDavPermissions builds them (reference §2.1)."""
        out = ""
        if perms & SHARE:
            out += "R"
        if mounted:
            out += "M"
        if perms & READ:
            out += "G"
        if perms & DELETE:
            out += "D"
        if perms & UPDATE:
            out += "NV"
            if not is_dir:
                out += "W"
        if is_dir and perms & CREATE:
            out += "CK"
        return out

    # --- quota ----------------------------------------------------------------------------------------------
    @staticmethod
    def tree_size(root: Path) -> int:
        total = 0
        stack = [str(root)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat().st_size
            except OSError:
                continue
        return total

    def free_space(self, node: Node) -> int | None:
        """Free bytes for the storage holding `node`, or None when unlimited (negative in NC, §6.6)."""
        if node.folder is not None:
            if node.folder.quota < 0:
                return None
            return node.folder.quota - self.tree_size(self.folder_root(node.folder))
        user = self.users.get(node.uid)
        if user is None or user.quota is None:
            return None
        return max(0, user.quota - self.tree_size(self.home(node.uid)))

    # --- locks and brute force ------------------------------------------------------------------------------
    def is_locked(self, real: Path) -> bool:
        key = str(real)
        with self.lock:
            return any(k == key or key.startswith(k + "/") for k in self.locked) or key in self.busy

    def record_failed_login(self, addr: str) -> None:
        with self.lock:
            self.failed_logins[addr] = self.failed_logins.get(addr, 0) + 1

    def is_blocked(self, addr: str) -> bool:
        with self.lock:
            return self.failed_logins.get(addr, 0) > self.bruteforce_max_attempts

    def share_state(self, share: dict[str, Any], uid: str) -> int:
        """0 pending, 1 accepted, 2 rejected: the recipient's view of a user or group share (§6.5a)."""
        with self.lock:
            states = share.setdefault("accepted_by", {})
            if uid not in states:        # a member who joined the group later: what the listener would decide
                return 0 if self.force_share_accept or share.get("acceptance_failed") else 1
            return int(states[uid])

    def set_share_state(self, share: dict[str, Any], uid: str, value: int) -> None:
        with self.lock:
            share.setdefault("accepted_by", {})[uid] = value

    def share_call_allowed(self, uid: str) -> bool:
        """createShare's UserRateLimit: 20 calls per user per 600 s, failed calls count too (§8.2)."""
        if self.share_rate_limit is None:
            return True
        limit, period = self.share_rate_limit
        now = time.monotonic()
        with self.lock:
            calls = self.share_calls.setdefault(uid, deque())
            while calls and calls[0] <= now - period:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True
