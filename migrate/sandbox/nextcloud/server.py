"""`NextcloudSandbox`: the sandbox served by cheroot on 127.0.0.1, usable in-process and from the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .state import State

STATE_FILE = "sandbox-state.json"


class NextcloudSandbox:
    """A loopback Nextcloud 32 stand-in (or, with `plain_webdav=True`, a bare authenticated WebDAV server)."""

    def __init__(self, users: list[str] | None = None, groups: dict[str, list[str]] | None = None,
                 quota_mb: float | None = None, data_dir: str | Path | None = None, *, plain_webdav: bool = False,
                 share_rate_limit: bool | tuple[int, int] = True, bruteforce_max_attempts: int = 10,
                 port: int = 0, numthreads: int = 24, chunking_v2: bool = False, sessions: bool = True) -> None:
        self._tmp: str | None = None
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="nc-sandbox-")
            data_dir = self._tmp
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.plain_webdav = plain_webdav
        self.state = State(self.data_dir, share_rate_limit=share_rate_limit,
                           bruteforce_max_attempts=bruteforce_max_attempts, chunking_v2=chunking_v2,
                           sessions=sessions and not plain_webdav)
        self._state_file = None if self._tmp else self.data_dir / STATE_FILE
        if self._state_file is not None and self._state_file.exists():
            self.state.load(json.loads(self._state_file.read_text()))     # a restart keeps passwords and ids
        if "admin" not in self.state.users:
            self.state.add_user("admin", admin=True)
        self.admin = ("admin", self.state.users["admin"].password)
        self.app_passwords: dict[str, str] = {u.uid: u.password for u in self.state.users.values() if not u.admin}
        for uid in users if users is not None else ["alice", "bob"]:
            if uid not in self.state.users:
                self.add_user(uid, quota_mb=quota_mb)
            elif quota_mb is not None:
                self.set_quota(uid, quota_mb)
        for gid, members in (groups or {}).items():
            self.add_group(gid, members)
        self._port = port
        self._numthreads = numthreads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.app: Any = None

    # --- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> NextcloudSandbox:
        from cheroot import wsgi

        from .app import NextcloudApp

        self.app = NextcloudApp(self.state, plain=self.plain_webdav)
        self._server = wsgi.Server(("127.0.0.1", self._port), self.app, numthreads=self._numthreads,
                                   server_name="nextcloud-sandbox")
        self._server.expiration_interval = 0.05       # select() timeout: makes stop() quick for tests
        self._server.prepare()
        port = self._server.bind_addr[1]
        self.url = f"http://127.0.0.1:{port}"
        self.app.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve, name="nextcloud-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.save()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def save(self) -> None:
        """Write users, app passwords, fileids, checksums, team folders and shares next to the data (not for temp)."""
        if self._state_file is not None:
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state.dump()))
            tmp.replace(self._state_file)

    def __enter__(self) -> NextcloudSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- accounts -------------------------------------------------------------------------------------------
    def add_user(self, uid: str, quota_mb: float | None = None) -> str:
        """Create an account and mint its app password (what `occ user:auth-tokens:add` does)."""
        pw = self.state.add_user(uid, quota_mb=quota_mb)
        self.app_passwords[uid] = pw
        return pw

    def add_group(self, gid: str, members: list[str]) -> None:
        self.state.add_group(gid, members)

    def set_quota(self, uid: str, mb: float | None) -> None:
        self.state.users[uid].quota = None if mb is None else int(mb * 1024 * 1024)

    def create_team_folder(self, mount_point: str, groups: dict[str, int] | None = None, *, acl: bool = False,
                           quota: int = -3) -> int:
        from .groupfolders import create_folder

        folder = create_folder(self.state, mount_point)
        folder.groups.update(groups or {})
        folder.acl = acl
        folder.quota = quota
        return folder.id

    def force_share_accept(self, on: bool = True) -> None:
        """What `occ config:system:set sharing.force_share_accept --value=true --type=boolean` does (§6.5a)."""
        self.state.force_share_accept = on

    def fail_share_acceptance(self, count: int = 1) -> None:
        """The next `count` user/group shares stay pending: their "share created" listener fails (§6.5a)."""
        with self.state.lock:
            self.state.acceptance_failures += count

    def share_states(self, share_id: str | int) -> dict[str, int]:
        """{recipient: 0 pending, 1 accepted, 2 rejected} of one share, as stored."""
        with self.state.lock:
            for share in self.state.shares:
                if str(share["id"]) == str(share_id):
                    return dict(share.get("accepted_by") or {})
        return {}

    def reset_bruteforce(self) -> None:
        """What `occ security:bruteforce:reset <ip>` does (§8.2)."""
        with self.state.lock:
            self.state.failed_logins.clear()

    # --- inspection -----------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, str, int]]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def cookie_requests(self) -> int:
        """How many requests carried a Cookie header (a client of ours must send none)."""
        with self.state.lock:
            return self.state.cookie_requests

    @property
    def shares(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(s) for s in self.state.shares]

    def file_info(self, uid: str, path: str) -> dict[str, Any] | None:
        """Size, mtime, SHA1 of the bytes on disk, stored OC-Checksum, etag and fileid of a file, or None."""
        from .names import nfc

        node = self.state.resolve(uid, nfc(path.strip("/")))
        if not node.real.is_file():
            return None
        sha1 = hashlib.sha1()
        with open(node.real, "rb") as fh:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                sha1.update(block)
        st = os.stat(node.real)
        meta = self.state.meta_for(node.real)
        return {"size": st.st_size, "mtime": int(st.st_mtime), "sha1": sha1.hexdigest(), "checksum": meta.checksum,
                "etag": self.state.etag(node.real, st), "fileid": meta.fileid,
                "creation_time": meta.creation_time, "upload_time": meta.upload_time, "path": str(node.real)}

    def fault(self, method: str, status: int, *, count: int = 1, path_contains: str = "", after: bool = False) -> None:
        """The next `count` `method` requests (path containing `path_contains`) answer `status`; `after=True`
        answers it only once the server has done the work (a proxy timing out a slow chunk assembly)."""
        from .state import Fault

        with self.state.lock:
            self.state.faults.append(Fault(method.upper(), status, count, path_contains, after))

    def before(self, method: str, path_contains: str, action: Callable[[], None]) -> None:
        """Run `action` once, just before the server handles the next `method` request whose path contains
        `path_contains` (a person's write landing between our check and our request)."""
        with self.state.lock:
            self.state.befores.append((method.upper(), path_contains, action))

    def delay(self, method: str, seconds: float) -> None:
        """Every `method` request takes `seconds` longer (a slow server); 0 removes the delay."""
        with self.state.lock:
            self.state.delays[method.upper()] = seconds

    def peak_running(self, method: str) -> int:
        """The most `method` requests served at the same time so far."""
        with self.state.lock:
            return self.state.peak_running.get(method.upper(), 0)

    def reset_peaks(self) -> None:
        """Forget the peaks seen so far, so a test can measure one command alone."""
        with self.state.lock:
            self.state.peak_running.clear()

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def lock(self, uid: str, path: str) -> None:
        """Make writes to `path` (and below) answer 423 Locked, as a concurrent writer would (§8.3)."""
        from .names import nfc

        with self.state.lock:
            self.state.locked.add(str(self.state.resolve(uid, nfc(path.strip("/"))).real))

    def unlock(self, uid: str, path: str) -> None:
        from .names import nfc

        with self.state.lock:
            self.state.locked.discard(str(self.state.resolve(uid, nfc(path.strip("/"))).real))

    def dav_url(self, uid: str, path: str = "") -> str:
        from urllib.parse import quote

        return f"{self.url}/remote.php/dav/files/{uid}/" + quote(path.strip("/"))

    def describe(self) -> dict[str, Any]:
        """The one JSON line the CLI prints."""
        return {"url": self.url, "admin": {"user": self.admin[0], "app_password": self.admin[1]},
                "users": dict(self.app_passwords), "groups": {g: list(m) for g, m in self.state.groups.items()},
                "data_dir": str(self.data_dir), "plain_webdav": self.plain_webdav,
                "webdav_root": f"{self.url}/remote.php/dav/files/{{uid}}/"}
