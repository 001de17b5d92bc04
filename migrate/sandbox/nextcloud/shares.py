"""OCS Share API of the sandbox (`apps/files_sharing/api/v1/shares`), with 32.0.1's rules and quirks (§6)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import time
from typing import Any

from .ocs import OCSError, Request
from .state import CREATE, DELETE, READ, SHARE, UPDATE, State

USER, GROUP, LINK, EMAIL = 0, 1, 3, 4
COMMON_PASSWORDS = {"a", "password", "123456", "12345678", "123456789", "qwerty", "secret", "letmein", "admin",
                    "password1", "111111", "abc123", "nextcloud"}


class RateLimited(Exception):
    """createShare's UserRateLimit tripped: HTTP 429, empty text/html body, v1 and v2 alike (§6.3)."""


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return f"$scrypt$n=4096,r=8,p=1${salt.hex()}${digest.hex()}"


def _parse_date(text: str) -> dt.date:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise OCSError(404, "Invalid date. Format must be YYYY-MM-DD")


class Shares:
    """Create, list, read, update, delete shares; every share is created as the caller on their own tree."""

    def __init__(self, state: State, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def handle(self, req: Request) -> Any:
        parts = [p for p in req.path.strip("/").split("/") if p]
        if parts[:2] == ["shares", "pending"]:
            if req.method == "GET" and len(parts) == 2:
                return self.pending(req.user)
            if req.method == "POST" and len(parts) == 3:
                return self.accept(parts[2], req.user)
        if parts == ["shares"]:
            if req.method == "POST":
                if not self.state.share_call_allowed(req.user):
                    raise RateLimited()
                return self.create(req)
            if req.method == "GET":
                return self.list(req)
        if len(parts) == 2 and parts[0] == "shares":
            share = self._find(parts[1], req.user)
            if req.method == "GET":
                return [self.format(share, req.user)]
            if req.method == "PUT":
                return self.update(share, req)
            if req.method == "DELETE":
                if share["uid_owner"] != req.user and share["share_with"] != req.user:
                    raise OCSError(404, "Wrong share ID, share does not exist")
                with self.state.lock:
                    self.state.shares.remove(share)
                return []
        raise OCSError(998, "Invalid query")

    # --- helpers --------------------------------------------------------------------------------------------
    def _find(self, share_id: str, user: str) -> dict[str, Any]:
        with self.state.lock:
            for share in self.state.shares:
                if str(share["id"]) == share_id and (share["uid_owner"] == user or self._receives(share, user)):
                    return share
        raise OCSError(404, "Wrong share ID, share does not exist")

    def _receives(self, share: dict[str, Any], user: str) -> bool:
        if share["share_type"] == USER:
            return share["share_with"] == user
        if share["share_type"] == GROUP:
            return user in self.state.groups.get(str(share["share_with"]), [])
        return False

    def _node(self, user: str, path: str):
        rel = path.strip("/")
        node = self.state.resolve(user, rel)
        if not node.real.exists():
            raise OCSError(404, "Wrong path, file/folder does not exist")
        return node

    # --- create ---------------------------------------------------------------------------------------------
    def create(self, req: Request) -> Any:
        st, p = self.state, req.params
        path = p.get("path")
        if not path:
            raise OCSError(404, "Please specify a file or folder path")
        node = self._node(req.user, path)
        if not node.rel:
            raise OCSError(403, "You cannot share your root folder")
        is_dir = node.real.is_dir()
        try:
            share_type = int(p.get("shareType", "-1"))
        except ValueError:
            share_type = -1
        if share_type not in (USER, GROUP, LINK):
            raise OCSError(400, "Unknown share type")
        share_with = p.get("shareWith", "")
        if share_type == USER:
            if share_with not in st.users:
                raise OCSError(404, "Please specify a valid account to share with")
            if share_with == req.user:
                raise OCSError(403, "Cannot share with yourself")
        elif share_type == GROUP and share_with not in st.groups:
            raise OCSError(404, "Please specify a valid group")
        node_perms = st.permissions(node, is_dir)
        if not node_perms & SHARE:
            raise OCSError(404, f"You are not allowed to share {node.rel.rpartition('/')[2]}")
        perms = self._permissions(p.get("permissions"), share_type, is_dir)
        if perms & ~node_perms:
            raise OCSError(404, f"Cannot increase permissions of {node.rel.rpartition('/')[2]}")
        fileid = st.meta_for(node.real).fileid
        if share_type in (USER, GROUP):
            with st.lock:
                for share in st.shares:
                    if (share["file_source"] == fileid and share["share_type"] == share_type
                            and share["share_with"] == share_with):
                        return self.format(share, req.user)          # duplicate: 200 with the existing (§6.3)
        expiration = None
        if p.get("expireDate"):
            day = _parse_date(p["expireDate"])
            if day < dt.date.today():
                raise OCSError(404, "Expiration date is in the past")
            expiration = day.strftime("%Y-%m-%d 00:00:00")
        password_hash = None
        if share_type == LINK and p.get("password"):
            self._check_password(p["password"])
            password_hash = _hash_password(p["password"])
        label = p.get("label", "")
        if share_type == LINK and len(label.encode()) > 255:
            raise OCSError(400, "Maximum label length is 255 characters")
        send_mail = p.get("sendMail", "false").lower() == "true"
        with st.lock:
            share: dict[str, Any] = {
                "id": str(st.next_share_id), "share_type": share_type, "uid_owner": req.user,
                "uid_file_owner": req.user, "permissions": perms, "stime": int(time.time()),
                "expiration": expiration, "token": None, "note": p.get("note", ""), "label": label,
                "file_source": fileid, "share_with": share_with if share_type != LINK else None,
                "mail_send": 1 if share_type == LINK or send_mail else 0, "password": password_hash,
                "hide_download": 0, "item_type": "folder" if is_dir else "file",
            }
            st.next_share_id += 1
            if share_type == LINK:
                share["token"] = secrets.token_urlsafe(11)[:15]
                if password_hash:
                    share["share_with"] = f"{share['id']}|{password_hash}"
            st.shares.append(share)
            if share_type in (USER, GROUP):
                recipients = [share_with] if share_type == USER else list(st.groups.get(share_with, []))
                failed = st.acceptance_failures > 0
                if failed:
                    st.acceptance_failures -= 1
                    share["acceptance_failed"] = True   # the listener never ran: every recipient stays pending
                accept = not (st.force_share_accept or failed)
                share["accepted_by"] = {uid: 1 if accept else 0 for uid in recipients if uid != req.user}
        return self.format(share, req.user)

    @staticmethod
    def _permissions(raw: str | None, share_type: int, is_dir: bool) -> int:
        """§6.2: read OR-ed in for user/group; files lose create/delete; links +16 with federation."""
        if share_type in (USER, GROUP):
            perms = 31 if raw in (None, "") else int(raw)
            perms |= READ
            if not is_dir:
                perms &= ~(CREATE | DELETE)
            return perms
        perms = READ if raw in (None, "") else int(raw)
        if not is_dir:
            perms &= ~(CREATE | DELETE)
        if not perms & (READ | CREATE):
            raise OCSError(400, "Share must at least have READ or CREATE permissions")
        if perms & (UPDATE | DELETE) and not perms & READ:
            raise OCSError(400, "Share must have READ permission if UPDATE or DELETE permission is set")
        if perms & READ:
            perms |= SHARE
        return perms

    @staticmethod
    def _check_password(password: str) -> None:
        problems = []
        if password.lower() in COMMON_PASSWORDS:
            problems.append("Password is among the 1,000,000 most common ones. Please make it unique.")
        if len(password) < 10:
            problems.append("Password needs to be at least 10 characters long.")
        if problems:
            raise OCSError(400, " ".join(problems))

    # --- read / update --------------------------------------------------------------------------------------
    def list(self, req: Request) -> Any:
        st, p = self.state, req.params
        with st.lock:
            shares = list(st.shares)
        if p.get("shared_with_me", "false") == "true":     # only what the recipient accepted is theirs (§6.5a)
            return [self.format(s, req.user) for s in shares if self._receives(s, req.user)
                    and s["uid_owner"] != req.user and st.share_state(s, req.user) == 1]   # not one's own
        mine = [s for s in shares if s["uid_owner"] == req.user]
        if "path" in p:
            node = self._node(req.user, p["path"])
            if p.get("subfiles", "false") == "true":
                if not node.real.is_dir():
                    raise OCSError(400, "Not a directory")
                ids = {st.meta_for(node.real / name).fileid for name in os.listdir(node.real)}
                mine = [s for s in mine if s["file_source"] in ids]
            else:
                fileid = st.meta_for(node.real).fileid
                mine = [s for s in mine if s["file_source"] == fileid]
        return [self.format(s, req.user) for s in mine]

    def pending(self, user: str) -> Any:
        """`GET shares/pending`: the user and group shares the caller has not accepted, rejected ones too, with
        `permissions` 0 and `path` the node's name (as `pendingShares()` formats them)."""
        st = self.state
        with st.lock:
            shares = [s for s in st.shares if s["share_type"] in (USER, GROUP) and self._receives(s, user)
                      and s["uid_owner"] != user and st.share_state(s, user) != 1]
        out = []
        for s in shares:
            item = self.format(s, user)
            item.update({"permissions": 0, "path": item["file_target"]})
            out.append(item)
        return out

    def accept(self, share_id: str, user: str) -> Any:
        """`POST shares/pending/{id}` as a recipient: the share is theirs from now on; 404 for anyone else."""
        share = self._find(share_id, user)
        if share["share_type"] not in (USER, GROUP) or not self._receives(share, user):
            raise OCSError(404, "Wrong share ID, share does not exist")
        self.state.set_share_state(share, user, 1)
        return []

    def update(self, share: dict[str, Any], req: Request) -> Any:
        if share["uid_owner"] != req.user:
            raise OCSError(403, "You are not allowed to edit incoming shares")
        p = req.params
        path = self.state.path_of(int(share["file_source"]))
        is_dir = bool(path and path.is_dir())
        if "permissions" in p:
            share["permissions"] = self._permissions(p["permissions"], int(share["share_type"]), is_dir)
        if "note" in p:
            share["note"] = p["note"]
        if "label" in p:
            share["label"] = p["label"]
        if "expireDate" in p:
            if p["expireDate"] == "":
                share["expiration"] = None
            else:
                day = _parse_date(p["expireDate"])
                if day < dt.date.today():
                    raise OCSError(404, "Expiration date is in the past")
                share["expiration"] = day.strftime("%Y-%m-%d 00:00:00")
        if "password" in p and share["share_type"] == LINK:
            self._check_password(p["password"])
            share["password"] = _hash_password(p["password"])
        if "hideDownload" in p:
            share["hide_download"] = 1 if p["hideDownload"] == "true" else 0
        return self.format(share, req.user)

    def format(self, share: dict[str, Any], viewer: str) -> dict[str, Any]:
        """`formatShare()`: the fields §6.1 lists, `path` relative to the viewer."""
        st = self.state
        real = st.path_of(int(share["file_source"]))
        owner_rel = st.rel_for(str(share["uid_owner"]), real) if real else None
        is_dir = bool(real and real.is_dir())
        name = (owner_rel or "").rpartition("/")[2] if owner_rel else (real.name if real else "")
        node = st.resolve(str(share["uid_owner"]), owner_rel or "")
        item_perms = st.permissions(node, is_dir) if real else 0
        viewer_is_owner = viewer == share["uid_owner"]
        out = {k: v for k, v in share.items() if k not in ("accepted_by", "acceptance_failed")}
        out.update({
            "parent": None, "displayname_owner": st.users[str(share["uid_owner"])].displayname,
            "displayname_file_owner": st.users[str(share["uid_owner"])].displayname,
            "item_permissions": item_perms, "item_source": share["file_source"], "file_parent": None,
            "path": ("/" + owner_rel) if viewer_is_owner and owner_rel is not None else "/" + name,
            "file_target": "/" + name, "mimetype": "httpd/unix-directory" if is_dir else "application/octet-stream",
            "storage_id": f"home::{share['uid_owner']}" if node.folder is None
            else f"local::{st.data_dir}/__groupfolders/{node.folder.id}/",
            "storage": 1, "share_with_displayname": share["share_with"] or "",
            "attributes": None, "can_edit": viewer_is_owner, "can_delete": viewer_is_owner,
            "url": f"{self.base_url}/index.php/s/{share['token']}" if share["token"] else None,
            "has_preview": False, "item_size": 0, "item_mtime": 0, "is-mount-root": False, "mount-type": "",
        })
        if share["share_type"] == LINK and share.get("password"):
            out["password"] = share["password"]
        else:
            out.pop("password", None)
        return out
