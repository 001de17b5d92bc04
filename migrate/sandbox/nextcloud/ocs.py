"""OCS layer of the sandbox: envelopes (v1/v2, JSON/XML), CSRF rule, capabilities, provisioning reads (§1.3, §6.6, §10.1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import names
from .state import State
from .wire import Environ, StartResponse, json_body, read_body, respond

VERSION = {"major": 32, "minor": 0, "micro": 1, "string": "32.0.1", "edition": "", "extendedSupport": False}
STATUS = {"installed": True, "maintenance": False, "needsDbUpgrade": False, "version": "32.0.1.2",
          "versionstring": "32.0.1", "edition": "", "productname": "Nextcloud", "extendedSupport": False}


class OCSError(Exception):
    """An OCS failure: `status` is the OCS statuscode (v2 passes it through as HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """What an OCS handler needs: caller, method, path below the API root, merged query+form params."""

    def __init__(self, environ: Environ, user: str, subpath: str) -> None:
        self.environ = environ
        self.user = user
        self.method = environ["REQUEST_METHOD"]
        self.path = subpath
        self.params: dict[str, str] = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                                                     keep_blank_values=True).items()}
        if self.method in ("POST", "PUT", "DELETE"):
            body = read_body(environ)
            ctype = environ.get("CONTENT_TYPE", "")
            if body and "json" in ctype:
                import json
                self.params.update({k: str(v).lower() if isinstance(v, bool) else str(v)
                                    for k, v in json.loads(body).items()})
            elif body:
                self.params.update({k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})


def wants_json(environ: Environ) -> bool:
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    if "format" in qs:
        return qs["format"][-1] == "json"
    return "application/json" in environ.get("HTTP_ACCEPT", "")


def _xml(value: Any, tag: str) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(v, k if not str(k)[:1].isdigit() else "element") for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml(v, "element") for v in value)
    elif value is None:
        inner = ""
    elif isinstance(value, bool):
        inner = "1" if value else ""
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"


def envelope(environ: Environ, start_response: StartResponse, version: int, data: Any, status: int = 100,
             message: str = "OK") -> Iterable[bytes]:
    """v1: HTTP 200, statuscode 100 = OK; v2: statuscode 200 and the real HTTP status (§1.3)."""
    ok = status in (100, 200)
    if version == 2:
        code = 200 if ok else status
        ocs_code = 200 if ok else status
        # V2Response: 997 → 401, 998 → 404, 996/999 → 500, other codes below 200 (101, 102, …) → 400
        http = {997: 401, 998: 404, 996: 500, 999: 500}.get(code, code if 200 <= code < 600 else 400)
    else:
        ocs_code = 100 if ok else status
        http = 401 if status == 997 else 200
    meta = {"status": "ok" if ok else "failure", "statuscode": ocs_code, "message": message,
            "totalitems": "", "itemsperpage": ""}
    body = {"ocs": {"meta": meta, "data": data}}
    if wants_json(environ):
        return json_body(start_response, http, body)
    xml = '<?xml version="1.0"?>\n' + _xml(body["ocs"], "ocs")
    return respond(start_response, http, xml.encode(), "application/xml; charset=utf-8")


def csrf_failed(start_response: StartResponse) -> Iterable[bytes]:
    return json_body(start_response, 412, {"message": "CSRF check failed"})


def capabilities(state: State, user: str, plain_sharing: bool = True) -> dict[str, Any]:
    """The capability tree 32.0.1 publishes, limited to what the tool reads (§10.1)."""
    files: dict[str, Any] = {"bigfilechunking": True, "chunked_upload": {"max_size": 104857600, "max_parallel_count": 5},
                             "undelete": True, "versioning": True, "version_labeling": True, "version_deletion": True}
    files.update(names.capabilities())
    return {
        "version": VERSION,
        "capabilities": {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav", "reference-api": True},
            "dav": {"chunking": "1.0", "public_shares_chunking": False, "bulkupload": "1.0",
                    "absence-supported": True, "absence-replacement": True},
            "files": files,
            "files_sharing": {
                "api_enabled": True, "resharing": True, "group_sharing": True, "sharebymail": {"enabled": False},
                "public": {"enabled": True, "password": {"enforced": False, "askForOptionalPassword": False},
                           "expire_date": {"enabled": False}, "multiple_links": True, "upload": True,
                           "upload_files_drop": True},
                "user": {"send_mail": False, "expire_date": {"enabled": True}},
                "group": {"enabled": True, "expire_date": {"enabled": True}},
                "federation": {"outgoing": True, "incoming": True},
                "default_permissions": 31,
            },
            "groupfolders": {"appVersion": "20.1.18", "hasGroupFolders": bool(state.visible_folders(user))},
        },
    }


def quota_record(state: State, uid: str) -> dict[str, Any]:
    """Unlimited quota is reported as -3 in free/total/quota (§6.6)."""
    user = state.users[uid]
    used = state.tree_size(state.home(uid))
    if user.quota is None:
        return {"free": -3, "used": used, "total": -3, "relative": 0, "quota": -3}
    return {"free": max(0, user.quota - used), "used": used, "total": user.quota,
            "relative": round(used / user.quota * 100, 2) if user.quota else 0, "quota": user.quota}


def user_record(state: State, uid: str) -> dict[str, Any]:
    user = state.users[uid]
    return {"enabled": True, "storageLocation": str(state.home(uid).parent), "id": uid, "lastLogin": 0,
            "backend": "Database", "subadmin": [], "quota": quota_record(state, uid), "email": user.email,
            "displayname": user.displayname, "display-name": user.displayname, "phone": "", "address": "",
            "website": "", "twitter": "", "groups": state.user_groups(uid), "language": "en", "locale": "",
            "backendCapabilities": {"setDisplayName": True, "setPassword": True}}


def edit_user(state: State, req: Request, uid: str, is_admin: bool) -> Any:
    """`PUT cloud/users/{uid}` with key=quota or key=email (the edits the tool's tests make). Verified on 32.0.1: a
    non-admin gets 404/998, a bad quota 400/101 "Invalid quota value: X", bytes or "none" (unlimited) 200."""
    if not is_admin or uid not in state.users:
        raise OCSError(998, "")
    key, value = req.params.get("key", ""), req.params.get("value", "").strip()
    if key == "email":   # the groupware tests make the NC address the M365 one (organizer detection, §6.1)
        if value and "@" not in value:
            raise OCSError(101, "Invalid email address")   # Nextcloud's own wording not re-checked on 32.0.1
        with state.lock:
            state.users[uid].email = value
        return []
    if key != "quota":
        raise OCSError(103, "Unknown action")
    units = {"": 1, "b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4}
    number, _, unit = value.partition(" ")
    if value.lower() in ("none", "default"):
        quota = None
    elif number.replace(".", "", 1).isdigit() and unit.lower() in units:
        quota = int(float(number) * units[unit.lower()])
    else:
        raise OCSError(101, f"Invalid quota value: {value}")
    with state.lock:
        state.users[uid].quota = quota
    return []


def provisioning(state: State, req: Request) -> Any:
    """`cloud/user`, `cloud/users…`, `cloud/groups…` reads (§6.6), and the two writes a migration may make:
    create a group, add a user to a group (admin only; answers as GroupsController/UsersController do)."""
    parts = req.path.strip("/").split("/")
    is_admin = state.users[req.user].admin
    if req.method == "POST":
        return _provisioning_write(state, req, parts, is_admin)
    if parts == ["user"]:
        return user_record(state, req.user)
    if parts[0] == "users" and len(parts) == 2 and req.method == "PUT":
        return edit_user(state, req, parts[1], is_admin)
    if parts[0] == "users":
        if len(parts) == 2 and parts[1] not in ("details",):
            uid = parts[1]
            if uid not in state.users:
                raise OCSError(404, "User does not exist")
            if not is_admin and uid != req.user:
                raise OCSError(403, "Logged in account must be at least a sub admin")
            return user_record(state, uid)
        if not is_admin:
            raise OCSError(403, "Logged in account must be at least a sub admin")
        search = req.params.get("search", "").lower()
        uids = sorted(u for u, rec in state.users.items()
                      if search in u.lower() or search in rec.email.lower() or search in rec.displayname.lower())
        offset = int(req.params.get("offset") or 0)
        limit = req.params.get("limit")
        uids = uids[offset: offset + int(limit)] if limit else uids[offset:]
        if len(parts) == 2:
            return {"users": {u: user_record(state, u) for u in uids}}
        return {"users": uids}
    if parts[0] == "groups":
        if not is_admin:
            raise OCSError(403, "Logged in account must be at least a sub admin")
        if len(parts) == 1:
            search = req.params.get("search", "").lower()
            return {"groups": sorted(g for g in state.groups if search in g.lower())}
        gid = parts[1]
        if gid not in state.groups:
            raise OCSError(404, "The requested group could not be found")
        return {"users": list(state.groups[gid])}
    raise OCSError(998, "Invalid query, please check the syntax. API specifications are here: "
                        "http://www.freedesktop.org/wiki/Specifications/open-collaboration-services.")


def _provisioning_write(state: State, req: Request, parts: list[str], is_admin: bool) -> Any:
    if not is_admin:
        raise OCSError(403, "Logged in account must be at least a sub admin")
    gid = req.params.get("groupid", "")
    if parts == ["groups"]:
        if not gid:
            raise OCSError(101, "Invalid group name")
        if gid in state.groups:
            raise OCSError(102, "group exists")
        state.add_group(gid, [])
        return []
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "groups":
        if not gid:
            raise OCSError(101, "")
        if gid not in state.groups:
            raise OCSError(102, "")  # 32.0.1 sends no message here
        if parts[1] not in state.users:
            raise OCSError(103, "User does not exist")
        state.add_group(gid, [parts[1]])
        return []
    raise OCSError(998, "Invalid query, please check the syntax. API specifications are here: "
                        "http://www.freedesktop.org/wiki/Specifications/open-collaboration-services.")
