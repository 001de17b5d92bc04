"""`/remote.php/dav/groupfolders/{uid}/`: the team folders one user sees, with `nc:mount-point` (reference §7.3).

As on 32.0.1: PROPFIND of one's own collection lists the visible folders (permissions as that user holds them,
mount point, mount type `group`, folder id, fileid); another user's collection is 403 with an empty message.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from .state import State
from .wire import MULTISTATUS, Environ, StartResponse, respond, sabre_error

GF_DAV_PREFIX = "/remote.php/dav/groupfolders/"
_OK = "<d:status>HTTP/1.1 200 OK</d:status>"


def handle(state: State, environ: Environ, start_response: StartResponse, user: str, path: str) -> Iterable[bytes]:
    parts = [unquote(p) for p in path[len(GF_DAV_PREFIX):].split("/") if p]
    if not parts or parts[0] != user:
        return sabre_error(start_response, 403, "", exception="Sabre\\DAV\\Exception\\Forbidden")
    if environ["REQUEST_METHOD"] != "PROPFIND":
        return sabre_error(start_response, 403, "Permission denied")
    folders = {f.mount_point: f for f in state.visible_folders(user)}
    base = f"{GF_DAV_PREFIX}{quote(user)}/"
    out = [MULTISTATUS]
    if len(parts) == 1:
        out.append(f"<d:response><d:href>{escape(base)}</d:href><d:propstat><d:prop><d:resourcetype>"
                   f"<d:collection/></d:resourcetype></d:prop>{_OK}</d:propstat></d:response>")
        shown = list(folders.values()) if environ.get("HTTP_DEPTH", "1") != "0" else []
    else:
        name = "/".join(parts[1:])
        if name not in folders:
            return sabre_error(start_response, 404, f"File with name {name} could not be located")
        shown = [folders[name]]
    for f in shown:
        node = state.resolve(user, f.mount_point)
        perms = state.perm_string(state.permissions(node, True), is_dir=True, mounted=True)
        fileid = state.meta_for(state.folder_root(f)).fileid
        out.append(f"<d:response><d:href>{escape(base + quote(f.mount_point))}/</d:href><d:propstat><d:prop>"
                   f"<d:resourcetype><d:collection/></d:resourcetype><oc:permissions>{perms}</oc:permissions>"
                   f"<nc:mount-point>/{escape(f.mount_point)}</nc:mount-point><nc:mount-type>group</nc:mount-type>"
                   f"<nc:group-folder-id>{f.id}</nc:group-folder-id><oc:fileid>{fileid}</oc:fileid></d:prop>"
                   f"{_OK}</d:propstat></d:response>")
    out.append("</d:multistatus>")
    return respond(start_response, 207, "".join(out).encode(), "application/xml; charset=utf-8")
