"""Team folders management API `/index.php/apps/groupfolders/folders…` (OCS v1 envelope, plain-JSON errors, §7.1)."""

from __future__ import annotations

import shutil
from typing import Any

from .ocs import OCSError, Request
from .state import State, TeamFolder


class PlainError(Exception):
    """Errors that 32.0.1 sends as HTTP 400/404 with `{"message": …}` instead of the envelope (§7.1)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def folder_json(state: State, folder: TeamFolder) -> dict[str, Any]:
    groups: Any = dict(folder.groups) if folder.groups else []
    details: Any = ({g: {"displayName": g, "permissions": p, "type": "group"} for g, p in folder.groups.items()}
                    if folder.groups else [])
    return {"id": folder.id, "mount_point": folder.mount_point, "groups": groups, "group_details": details,
            "quota": folder.quota, "size": state.tree_size(state.folder_root(folder)), "acl": folder.acl,
            "manage": [{"type": m["type"], "id": m["id"], "displayname": m["id"].capitalize()} for m in folder.manage]}


def create_folder(state: State, mount_point: str) -> TeamFolder:
    mount = mount_point.strip().strip("/")
    if not mount or ".." in mount.split("/"):
        raise PlainError(400, "Invalid mount point")
    with state.lock:
        if any(f.mount_point == mount for f in state.folders.values()):
            raise PlainError(400, "Mount point already exists")
        fid = max(state.folders, default=0) + 1
        folder = TeamFolder(fid, mount)
        state.folders[fid] = folder
    state.folder_root(folder).mkdir(parents=True, exist_ok=True)
    return folder


class GroupFolders:
    """Admin-only mutations; a non-admin gets HTTP 200 with statuscode 403 (§7.1)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def handle(self, req: Request) -> Any:
        st = self.state
        if not st.users[req.user].admin:
            raise OCSError(403, "Logged in user must be an admin, a sub admin or gotten special right to access "
                                "this setting")
        parts = [p for p in req.path.strip("/").split("/") if p]
        if parts == ["folders"]:
            if req.method == "GET":
                return {str(f.id): folder_json(st, f) for f in st.folders.values()}
            if req.method == "POST":
                return folder_json(st, create_folder(st, req.params.get("mountpoint", "")))
        if len(parts) < 2 or parts[0] != "folders" or not parts[1].isdigit():
            raise OCSError(998, "Invalid query")
        folder = st.folders.get(int(parts[1]))
        if folder is None:
            raise PlainError(404, "Groupfolder not found")
        action = parts[2:]
        if not action:
            if req.method == "GET":
                return folder_json(st, folder)
            if req.method == "DELETE":
                with st.lock:
                    del st.folders[folder.id]
                shutil.rmtree(st.folder_root(folder).parent, ignore_errors=True)
                return {"success": True}
        elif action == ["groups"] and req.method == "POST":
            group = req.params.get("group", "")
            if group in folder.groups:
                raise PlainError(400, "Group already assigned to this Groupfolder")
            folder.groups[group] = 31                   # the group's existence is not checked (§7.1)
            return {"success": True, "folder": folder_json(st, folder)}
        elif len(action) == 2 and action[0] == "groups":
            if req.method == "POST" and action[1] in folder.groups:
                # 32.0.1 / groupfolders 20.1.2: for a group not assigned to the folder this answers success and
                # changes nothing (an UPDATE that matches no row)
                folder.groups[action[1]] = int(req.params.get("permissions", "31"))
            elif req.method == "DELETE":
                folder.groups.pop(action[1], None)
            return {"success": True, "folder": folder_json(st, folder)}
        elif action == ["quota"]:
            folder.quota = int(req.params.get("quota", "-3"))
            return {"success": True}
        elif action == ["acl"]:
            folder.acl = req.params.get("acl", "0") in ("1", "true")
            return {"success": True}
        elif action == ["manageACL"]:
            entry = {"type": req.params.get("mappingType", "user"), "id": req.params.get("mappingId", "")}
            if req.params.get("manageAcl", "0") in ("1", "true"):
                if entry in folder.manage:  # seen on 32.0.1 with groupfolders 20.1.2: a plain HTTP 500
                    raise PlainError(500, "An exception occurred while executing a query: SQLSTATE[23000]: "
                                          "Integrity constraint violation: 19 UNIQUE constraint failed: "
                                          "oc_group_folders_manage.folder_id, oc_group_folders_manage.mapping_type, "
                                          "oc_group_folders_manage.mapping_id")
                folder.manage.append(entry)
            else:
                folder.manage = [m for m in folder.manage if m != entry]
            return {"success": True, "folder": folder_json(st, folder)}
        elif action == ["mountpoint"]:
            folder.mount_point = req.params.get("mountpoint", folder.mount_point).strip("/")
            return {"success": True}
        raise OCSError(998, "Invalid query")
