"""The servers the target conformance suite runs against, and the HTTP-only helpers it needs from them.

Every helper speaks HTTP (WebDAV, OCS) so the same test runs on the Nextcloud sandbox, the sandbox in plain
WebDAV mode, Apache mod_dav and a real Nextcloud named by `M365_MIGRATE_TEST_NEXTCLOUD`:

    M365_MIGRATE_TEST_NEXTCLOUD="URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW"

On a real server each test works in a folder of its own and leaves the server as it found it: files, shares,
trash and upload folders are compared before and after every test.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from migrate.backends import open_target
from migrate.protocols import Target
from migrate.transport.pacer import Pacer

ENV_REAL = "M365_MIGRATE_TEST_NEXTCLOUD"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
OCS = {"OCS-APIRequest": "true", "Accept": "application/json"}
MiB = 1024 * 1024


def fast_pacer(attempts: int = 6) -> Pacer:
    return Pacer("conformance", base_delay=0.05, max_delay=0.5, max_attempts=attempts)


def real_server() -> dict[str, str] | None:
    """The real Nextcloud named by the environment, or None (then only the local rigs run)."""
    raw = os.environ.get(ENV_REAL, "").split()
    if not raw:
        return None
    if len(raw) != 7:
        raise RuntimeError(f"{ENV_REAL} needs 7 words: URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW")
    keys = ("url", "admin", "admin_pw", "user", "user_pw", "other", "other_pw")
    return dict(zip(keys, raw, strict=True))


@dataclass
class Rig:
    """One server under test. `user` is the tree written ('' on plain WebDAV); `base` a fresh folder in it."""

    name: str                      # nextcloud | plain | apache | real
    kind: str                      # the target kind: nextcloud | webdav
    url: str                       # Nextcloud: the server; WebDAV: the collection the account writes to
    passwords: dict[str, str]
    user: str
    other: str = ""
    admin: str = ""
    server: Any = None             # the sandbox object, where a test may look inside or inject faults
    base: str = field(default_factory=lambda: f"m365-conformance-{uuid.uuid4().hex[:10]}")
    opened: list[Any] = field(default_factory=list)

    @property
    def nextcloud(self) -> bool:
        return self.kind == "nextcloud"

    @property
    def real(self) -> bool:
        return self.name == "real"

    def p(self, rel: str = "") -> str:
        return f"{self.base}/{rel}".rstrip("/")

    def target(self, passwords: dict[str, str] | None = None, **options: Any) -> Target:
        """A new target over this rig (its own connection pool); closed at the end of the test."""
        pw = passwords if passwords is not None else self.passwords
        pacer = options.pop("pacer", None) or fast_pacer()
        if self.nextcloud:
            options.setdefault("chunk_size", 5 * MiB)
            t = open_target("nextcloud", self.url, pw, pacer=pacer, service_account=self.admin or None, **options)
        else:
            t = open_target("webdav", self.url, pw, pacer=pacer, **options)
        self.opened.append(t)
        return t

    # --- raw HTTP, no cookies (the same client factory as the product) ---------------------------------------
    def http(self) -> httpx.Client:
        from migrate.transport.http import make_client

        return make_client(timeout=60)

    def auth(self, user: str | None = None) -> tuple[str, str]:
        login = self.user if user is None else user
        if not login:                                   # plain WebDAV: the one account
            login = next(iter(self.passwords))
        return login, self.passwords[login]

    def file_url(self, path: str, user: str | None = None) -> str:
        enc = "/".join(quote(s, safe="") for s in path.split("/") if s)
        if not self.nextcloud:
            return self.url.rstrip("/") + "/" + enc
        return f"{self.url}/remote.php/dav/files/{quote(user or self.user, safe='')}/{enc}"

    def fetch(self, path: str, user: str | None = None) -> bytes:
        with self.http() as c:
            r = c.get(self.file_url(path, user), auth=self.auth(user))
            r.raise_for_status()
            return r.content

    def sha1_at(self, path: str, user: str | None = None) -> str:
        return hashlib.sha1(self.fetch(path, user)).hexdigest()

    def ocs(self, method: str, path: str, *, as_user: str | None = None, data: dict[str, Any] | None = None
            ) -> httpx.Response:
        with self.http() as c:
            return c.request(method, self.url + path, auth=self.auth(as_user), headers=OCS, data=data)

    # --- what the server holds for an account (the before/after check on a real server) ---------------------
    def propfind(self, url: str, user: str, props: str = "<d:resourcetype/>") -> list[dict[str, str]]:
        body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:prop>'
                f"{props}</d:prop></d:propfind>")
        with self.http() as c:
            r = c.request("PROPFIND", url, auth=self.auth(user), headers={"Depth": "1"}, content=body.encode())
        if r.status_code == 404:
            return []
        r.raise_for_status()
        out = []
        own = urlsplit(url).path.rstrip("/")
        for resp in ET.fromstring(r.content).findall("{DAV:}response"):
            href = resp.findtext("{DAV:}href") or ""
            if unquote(href).rstrip("/") == unquote(own):
                continue
            entry = {"href": href}
            for el in resp.iter():
                if el.text and el.tag.startswith("{http://nextcloud.org/ns}"):
                    entry[el.tag.rsplit("}", 1)[1]] = el.text
            out.append(entry)
        return out

    @contextmanager
    def team_folder(self) -> Iterator[int]:
        """A team folder mounted at `base` for the suite user's first group; removed afterwards."""
        gf = "/index.php/apps/groupfolders/folders"
        groups = self.ocs("GET", f"/ocs/v2.php/cloud/users/{self.user}?format=json", as_user=self.admin
                          ).json()["ocs"]["data"]["groups"]
        made = self.ocs("POST", gf + "?format=json", as_user=self.admin, data={"mountpoint": self.base})
        assert made.status_code == 200, made.text
        folder = made.json()["ocs"]["data"]["id"]
        try:
            assert self.ocs("POST", f"{gf}/{folder}/groups?format=json", as_user=self.admin,
                            data={"group": groups[0]}).status_code == 200
            yield folder
        finally:
            assert self.ocs("DELETE", f"{gf}/{folder}?format=json", as_user=self.admin).status_code == 200

    def snapshot(self) -> dict[str, Any]:
        """Root entries, shares, trash and upload folders of the rig's accounts."""
        snap: dict[str, Any] = {}
        for uid in (self.user, self.other):
            root = sorted(e["href"] for e in self.propfind(self.file_url("", uid), uid))
            trash = sorted(e["href"] for e in self.propfind(f"{self.url}/remote.php/dav/trashbin/{uid}/trash", uid))
            uploads = sorted(e["href"] for e in self.propfind(f"{self.url}/remote.php/dav/uploads/{uid}/", uid))
            shares = sorted(str(s["id"]) for s in self.ocs("GET", SHARES + "?format=json", as_user=uid)
                            .json()["ocs"]["data"])
            snap[uid] = {"root": root, "trash": trash, "uploads": uploads, "shares": shares}
        return snap

    def clean(self, before: dict[str, Any]) -> None:
        """Remove what a test added to the suite's own accounts: shares, its folder, trash entries, upload folders.

        Trash entries are told apart by the `before` snapshot, not by their original location: a deleted file
        whose name is near 250 bytes reports a cut name with no folder (verified on 32.0.1).
        """
        for uid in (self.user, self.other):
            was = before[uid]
            for s in self.ocs("GET", SHARES + "?format=json", as_user=uid).json()["ocs"]["data"]:
                if str(s["id"]) not in was["shares"]:
                    self.ocs("DELETE", f"{SHARES}/{s['id']}", as_user=uid)
            with self.http() as c:
                c.request("DELETE", self.file_url(self.base, uid), auth=self.auth(uid))
                for kind, url in (("trash", f"{self.url}/remote.php/dav/trashbin/{uid}/trash"),
                                  ("uploads", f"{self.url}/remote.php/dav/uploads/{uid}/")):
                    for e in self.propfind(url, uid):
                        if e["href"] not in was[kind]:
                            c.request("DELETE", self.url + e["href"], auth=self.auth(uid))
