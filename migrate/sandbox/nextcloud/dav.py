"""WsgiDAV filesystem provider with Nextcloud's live properties, mounts and metadata bookkeeping (§2, §7)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wsgidav import util
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.fs_dav_provider import FileResource, FilesystemProvider, FolderResource
from wsgidav.util import etree

from .state import State

OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
SHARE = "/remote.php/dav/files"

FILE_PROPS = [OC + "fileid", OC + "id", OC + "permissions", OC + "size", OC + "checksums",
              NC + "creation_time", NC + "upload_time", NC + "mount-type"]
FOLDER_PROPS = [OC + "fileid", OC + "id", OC + "permissions", OC + "size",
                NC + "creation_time", NC + "upload_time", NC + "mount-type"]
ACL_PROPS = [NC + "acl-list", NC + "inherited-acl-list", NC + "acl-enabled", NC + "acl-can-manage",
             NC + "group-folder-id"]


class _NCMixin:
    """Shared property logic of files and folders; `self` is a WsgiDAV FileResource or FolderResource."""

    _file_path: str
    path: str
    environ: dict[str, Any]
    is_collection: bool

    @property
    def state(self) -> State:
        return self.provider.state  # type: ignore[attr-defined]

    def _node(self):
        uid, _, rel = self.path.strip("/").partition("/")
        return self.state.resolve(uid, rel)

    def get_etag(self) -> str:
        return self.state.etag(self._file_path)

    def _nc_names(self) -> list[str]:
        if self.provider.plain:  # type: ignore[attr-defined]
            return []
        names = list(FOLDER_PROPS if self.is_collection else FILE_PROPS)
        node = self._node()
        if node.folder is not None:
            names += ACL_PROPS
        return names

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        extra = self._nc_names()
        if is_allprop:
            extra = [n for n in extra if n not in (OC + "checksums", NC + "acl-list", NC + "inherited-acl-list")]
        return names + [n for n in extra if n not in names]

    def get_property_value(self, name: str) -> Any:
        if name == "{DAV:}getetag":
            return f'"{self.get_etag()}"'
        if self.provider.plain or not (name.startswith(OC) or name.startswith(NC)):  # type: ignore[attr-defined]
            return super().get_property_value(name)  # type: ignore[misc]
        st = self.state
        meta = st.meta_for(self._file_path)
        node = self._node()
        is_dir = self.is_collection
        if name == OC + "fileid":
            return str(meta.fileid)
        if name == OC + "id":
            return st.oc_id(meta.fileid)
        if name == OC + "size":
            return str(st.tree_size(Path(self._file_path)) if is_dir else os.path.getsize(self._file_path))
        if name == OC + "permissions":
            perms = st.permissions(node, is_dir)
            return st.perm_string(perms, is_dir=is_dir, mounted=node.folder is not None)
        if name == OC + "checksums" and not is_dir and meta.checksum:
            el = etree.Element(name)
            for token in meta.checksum.split():
                etree.SubElement(el, OC + "checksum").text = token
            return el
        if name == NC + "creation_time":
            return str(meta.creation_time)
        if name == NC + "upload_time":
            return str(meta.upload_time)
        if name == NC + "mount-type":
            return "group" if node.folder is not None else ""
        if node.folder is not None:
            folder = node.folder
            if name == NC + "group-folder-id":
                return str(folder.id)
            if name == NC + "acl-enabled":
                return "1" if folder.acl else "0"
            if name == NC + "acl-can-manage":
                return "1" if st.can_manage_acl(node.uid, folder) else ""
            if name == NC + "acl-list" and folder.rules.get(node.rel_in_mount):
                return self._acl_element(name, folder.rules[node.rel_in_mount], node)
            if name == NC + "inherited-acl-list":
                parts = node.rel_in_mount.split("/") if node.rel_in_mount else []
                inherited = []
                for i in range(len(parts)):
                    inherited += folder.rules.get("/".join(parts[:i]), [])
                return self._acl_element(name, inherited, node)
        raise DAVError(HTTP_NOT_FOUND)

    def _acl_element(self, name: str, rules: list[dict[str, Any]], node) -> Any:
        groups = set(self.state.user_groups(node.uid))
        can_manage = node.folder is not None and self.state.can_manage_acl(node.uid, node.folder)
        el = etree.Element(name)
        for r in rules:
            if not can_manage and not ((r["type"] == "user" and r["id"] == node.uid)
                                       or (r["type"] == "group" and r["id"] in groups)):
                continue
            acl = etree.SubElement(el, NC + "acl")
            etree.SubElement(acl, NC + "acl-mapping-type").text = str(r["type"])
            etree.SubElement(acl, NC + "acl-mapping-id").text = str(r["id"])
            etree.SubElement(acl, NC + "acl-mapping-display-name").text = str(r["id"]).capitalize()
            etree.SubElement(acl, NC + "acl-mask").text = str(r["mask"])
            etree.SubElement(acl, NC + "acl-permissions").text = str(r["permissions"])
        return el

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        """PROPPATCH: `{DAV:}lastmodified`, creation times and ACLs are live; `getlastmodified` is protected (§3.2)."""
        if self.provider.plain:  # type: ignore[attr-defined]
            return super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        text = (value.text or "").strip() if value is not None else ""
        if name == "{DAV:}lastmodified":
            if not dry_run:
                secs = int(float(text))
                os.utime(self._file_path, (secs, secs))
            return None
        if name == NC + "creation_time":
            if not dry_run:
                self.state.meta_for(self._file_path).creation_time = int(float(text))
            return None
        if name == "{DAV:}creationdate":
            if not dry_run:
                self.state.meta_for(self._file_path).creation_time = int(util.parse_time_string(text) or 0) \
                    if not text[:4].isdigit() else _iso_to_unix(text)
            return None
        if name in ("{DAV:}getlastmodified", "{DAV:}displayname", "{DAV:}getetag", "{DAV:}getcontentlength"):
            raise DAVError(HTTP_FORBIDDEN)
        if name == NC + "acl-list":
            node = self._node()
            if node.folder is None:
                raise DAVError(HTTP_FORBIDDEN)
            if not dry_run:
                node.folder.rules[node.rel_in_mount] = parse_acl(value)
            return None
        return super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]

    # --- keep metadata in step with the file system ---------------------------------------------------------
    def delete(self) -> None:
        """Nextcloud mode: the node goes to the trash bin with its fileid (§2.5); plain mode: gone."""
        if self.provider.plain:  # type: ignore[attr-defined]
            super().delete()  # type: ignore[misc]
            self.state.forget(self._file_path)
            return
        from .trash import move_to_trash

        uid = self.environ.get("wsgidav.auth.user_name") or self.path.strip("/").partition("/")[0]
        move_to_trash(self.state, self._node(), uid)
        self.remove_all_properties(recursive=True)  # type: ignore[attr-defined]
        self.remove_all_locks(recursive=True)  # type: ignore[attr-defined]

    def move_recursive(self, dest_path: str) -> None:
        dest_fp = self.provider._loc_to_file_path(dest_path, self.environ)  # type: ignore[attr-defined]
        super().move_recursive(dest_path)  # type: ignore[misc]
        self.state.rekey(self._file_path, dest_fp)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        dest_fp = self.provider._loc_to_file_path(dest_path, self.environ)  # type: ignore[attr-defined]
        super().copy_move_single(dest_path, is_move=is_move)  # type: ignore[misc]
        if is_move:
            self.state.rekey(self._file_path, dest_fp)


def _iso_to_unix(text: str) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def parse_acl(value: Any) -> list[dict[str, Any]]:
    """Read `<nc:acl-list>` into rule dicts (type, id, mask, permissions)."""
    rules = []
    if value is None:
        return rules
    for acl in value:
        fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in acl}
        rules.append({"type": fields.get("acl-mapping-type", "user"), "id": fields.get("acl-mapping-id", ""),
                      "mask": int(fields.get("acl-mask") or 0), "permissions": int(fields.get("acl-permissions") or 0)})
    return rules


class NCFile(_NCMixin, FileResource):
    """A file with Nextcloud properties."""


class NCFolder(_NCMixin, FolderResource):
    """A folder with Nextcloud properties; a user's root also lists the team folders mounted for them."""

    def support_recursive_delete(self) -> bool:
        return True          # one delete() per folder, so it lands in the trash as one item

    def get_member_names(self) -> list[str]:
        names = super().get_member_names()
        uid, _, rel = self.path.strip("/").partition("/")
        if not rel:
            for folder in self.state.visible_folders(uid):
                if folder.mount_point not in names:
                    names.append(folder.mount_point)
        return names


class NCProvider(FilesystemProvider):
    """Maps `/remote.php/dav/files/{uid}/…` to `data/users/{uid}/files/…` or a team folder's storage."""

    def __init__(self, state: State, *, plain: bool) -> None:
        super().__init__(str(state.data_dir), fs_opts={})
        self.state = state
        self.plain = plain

    def _loc_to_file_path(self, path: str, environ: dict | None = None) -> str:
        uid, _, rel = path.strip("/").partition("/")
        if not uid:
            return str(self.state.data_dir / "users")
        return str(self.state.resolve(uid, rel).real)

    def get_resource_inst(self, path: str, environ: dict) -> Any:
        self._count_get_resource_inst += 1
        fp = self._loc_to_file_path(path, environ)
        if os.path.isdir(fp):
            return NCFolder(path, environ, fp)
        if os.path.isfile(fp):
            return NCFile(path, environ, fp)
        return None


def build_wsgidav(state: State, *, plain: bool) -> Any:
    """The WsgiDAV application that serves PROPFIND, GET/Range, MKCOL, MOVE, COPY, DELETE, PROPPATCH, LOCK."""
    from wsgidav.error_printer import ErrorPrinter
    from wsgidav.request_resolver import RequestResolver
    from wsgidav.wsgidav_app import WsgiDAVApp

    config = {
        "provider_mapping": {SHARE: NCProvider(state, plain=plain)},
        "middleware_stack": [ErrorPrinter, RequestResolver],
        "simple_dc": {"user_mapping": {"*": True}},
        "http_authenticator": {"accept_digest": False, "default_to_digest": False},
        "property_manager": True,
        "lock_storage": True,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "hotfixes": {"re_encode_path_info": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": False,
        "block_size": 1024 * 1024,          # GET and plain-mode PUT stream in 1 MiB blocks
    }
    return WsgiDAVApp(config)


