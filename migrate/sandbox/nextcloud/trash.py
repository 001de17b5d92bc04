"""Trash bin: DELETE (and overwriting COPY/MOVE) keep the node; `/remote.php/dav/trashbin/{uid}/…` (§2.4, §2.5, §9.3)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse
from xml.sax.saxutils import escape

from .state import Node, State
from .wire import MULTISTATUS, Environ, StartResponse, header, respond, sabre_error

TRASH_PREFIX = "/remote.php/dav/trashbin/"


def trash_item_name(name: str, timestamp: int) -> str:
    """`<name>.d<time>`, cut in the middle to 250 bytes when longer (Trashbin::getTrashFilename on 32.0.1)."""
    item = f"{name}.d{timestamp}".encode()
    if len(item) > 250:
        item = item[:125] + item[125 + len(item) - 250:]
    return item.decode("utf-8", "replace")


def move_to_trash(state: State, node: Node, deleted_by: str) -> None:
    """A home item goes to its owner's trash, a team-folder item to the folder's (seen by every member)."""
    now = int(time.time())
    name = node.real.name
    if node.folder is None:
        scope, owner, location = "user", node.uid, node.rel_in_mount
    else:
        scope, owner, location = "folder", str(node.folder.id), node.rel_in_mount
    box = state.data_dir / "trash" / scope / owner
    box.mkdir(parents=True, exist_ok=True)
    fileid = state.meta_for(node.real).fileid
    with state.lock:
        taken = {t["item"] for t in state.trash}
        item, n = trash_item_name(name, now), 1
        while item in taken:
            n += 1
            item = f"{name}.d{now}-{n}"
        if item != f"{name}.d{now}" and n == 1:
            # Verified on 32.0.1: a cut name no longer finds its location row, so the item reports the cut name
            # alone (its folder lost) as filename and original location, a restore puts it at the root under
            # the cut name, and a DELETE of the item answers 204 but leaves it in the trash.
            name = location = item.rsplit(".d", 1)[0]
        stored = f"{fileid}-{now}-{n}"            # on disk by id: a 250-byte name plus ".d<time>" would not fit
    cut = name != node.real.name
    target = box / stored
    shutil.move(str(node.real), str(target))
    state.rekey(node.real, target)
    with state.lock:
        state.trash.append({"item": item, "stored": stored, "scope": scope, "owner": owner, "name": name,
                            "original_location": location, "deletion_time": now, "deleted_by": deleted_by,
                            "fileid": fileid, "cut": cut})


class Trash:
    """List (PROPFIND), restore (MOVE to `restore/`), purge (DELETE) trashed items."""

    def __init__(self, state: State) -> None:
        self.state = state

    def visible(self, uid: str) -> list[dict[str, Any]]:
        folders = {str(f.id): f for f in self.state.visible_folders(uid)}
        with self.state.lock:
            return [t for t in self.state.trash if (t["scope"] == "user" and t["owner"] == uid)
                    or (t["scope"] == "folder" and t["owner"] in folders)]

    def stored(self, entry: dict[str, Any]) -> Path:
        return self.state.data_dir / "trash" / entry["scope"] / entry["owner"] / entry["stored"]

    def location(self, entry: dict[str, Any]) -> str:
        """Original location as the user sees it (team-folder items carry the mount point)."""
        if entry["scope"] == "folder":
            folder = self.state.folders.get(int(entry["owner"]))
            return f"{folder.mount_point}/{entry['original_location']}" if folder else entry["original_location"]
        return entry["original_location"]

    def handle(self, environ: Environ, start_response: StartResponse, user: str, path: str) -> Iterable[bytes]:
        parts = [unquote(p) for p in path[len(TRASH_PREFIX):].split("/") if p]
        method = environ["REQUEST_METHOD"]
        if not parts or parts[0] != user:
            return sabre_error(start_response, 404 if parts and parts[0] not in self.state.users else 403,
                               "Permission denied")
        if len(parts) < 2 or parts[1] != "trash":
            return sabre_error(start_response, 404, "File not found")
        entries = {t["item"]: t for t in self.visible(user)}
        if len(parts) == 2:
            if method == "PROPFIND":
                return self.propfind(start_response, user, list(entries.values()), environ.get("HTTP_DEPTH", "1"))
            if method == "DELETE":
                for entry in [t for t in entries.values() if t["scope"] == "user"]:
                    self.purge(entry)
                return respond(start_response, 204)
            return sabre_error(start_response, 405, "Method not allowed")
        entry = entries.get(parts[2])
        if entry is None:
            return sabre_error(start_response, 404, f"File not found: {parts[2]}")
        if method == "DELETE":
            if not entry.get("cut"):     # 32.0.1: a cut item answers 204 and stays (only occ trashbin:cleanup)
                self.purge(entry)
            return respond(start_response, 204)
        if method == "MOVE":
            dest = unquote(urlparse(header(environ, "Destination") or "").path)
            if not dest.startswith(f"{TRASH_PREFIX}{user}/restore/"):
                return sabre_error(start_response, 403, "Items can only be moved to the restore folder")
            return self.restore(start_response, user, entry)
        if method == "PROPFIND":
            return self.propfind(start_response, user, [entry], "0")
        return sabre_error(start_response, 405, "Method not allowed")

    def purge(self, entry: dict[str, Any]) -> None:
        stored = self.stored(entry)
        if stored.is_dir():
            shutil.rmtree(stored, ignore_errors=True)
        else:
            stored.unlink(missing_ok=True)
        self.state.forget(stored)
        with self.state.lock:
            if entry in self.state.trash:
                self.state.trash.remove(entry)

    def restore(self, start_response: StartResponse, user: str, entry: dict[str, Any]) -> Iterable[bytes]:
        """Back to the original location; when the name is taken, `y (restored).txt` (§9.3)."""
        location = self.location(entry)
        parent_rel, _, name = location.rpartition("/")
        parent = self.state.resolve(user, parent_rel)
        if not parent.real.is_dir():
            parent_rel, parent = "", self.state.resolve(user, "")
        stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
        target_name = name
        if (parent.real / name).exists():
            target_name = f"{stem} (restored){dot}{ext}"
        target = self.state.resolve(user, f"{parent_rel}/{target_name}".strip("/"))
        stored = self.stored(entry)
        shutil.move(str(stored), str(target.real))
        self.state.rekey(stored, target.real)
        self.state.propagate(target.real, target.storage_root)
        with self.state.lock:
            self.state.trash.remove(entry)
        return respond(start_response, 201)

    def propfind(self, start_response: StartResponse, user: str, entries: list[dict[str, Any]], depth: str
                 ) -> Iterable[bytes]:
        base = f"{TRASH_PREFIX}{user}/trash/"
        out = [MULTISTATUS + "<d:response><d:href>" + escape(base) + "</d:href><d:propstat>"
               "<d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK"
               "</d:status></d:propstat></d:response>"]
        if depth != "0":
            for t in entries:
                stored = self.stored(t)
                is_dir = stored.is_dir()
                size = self.state.tree_size(stored) if is_dir else (stored.stat().st_size if stored.exists() else 0)
                kind = "<d:collection/>" if is_dir else ""
                out.append(
                    f"<d:response><d:href>{escape(base + quote(t['item']))}</d:href><d:propstat><d:prop>"
                    f"<d:resourcetype>{kind}</d:resourcetype><d:getcontentlength>{size}</d:getcontentlength>"
                    f"<nc:trashbin-filename>{escape(t['name'])}</nc:trashbin-filename>"
                    f"<nc:trashbin-original-location>{escape(self.location(t))}</nc:trashbin-original-location>"
                    f"<nc:trashbin-deletion-time>{t['deletion_time']}</nc:trashbin-deletion-time>"
                    f"<nc:trashbin-deleted-by-id>{escape(t['deleted_by'])}</nc:trashbin-deleted-by-id>"
                    f"<oc:fileid>{t['fileid']}</oc:fileid></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
                    "</d:propstat></d:response>")
        out.append("</d:multistatus>")
        return respond(start_response, 207, "".join(out).encode(), "application/xml; charset=utf-8")
