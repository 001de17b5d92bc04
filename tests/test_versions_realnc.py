"""Issue 24's acceptance journey against a real Nextcloud named by M365_MIGRATE_TEST_NEXTCLOUD (as the conformance
suite: "URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW"), with the Graph sandbox as the source.

A OneDrive with versioned files goes to USER below a prefix folder of its own: `copy` with versions = "all" is
killed -9 in the middle of the replay, run again (exit 0); every file then has exactly the source's versions at
the server, in order, with their bytes, times and labels; `verify` exits 0; a further `copy` reads and sends
nothing. The prefix folder and what the test put in the trash are removed afterwards.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import urlsplit

import httpx

from migrate.backends import open_target
from migrate.engine.files.transfer import expected_mtime
from migrate.engine.files.versions import label_for
from migrate.sandbox.graph import GraphSandbox, TenantSpec
from tests.conformance.rigs import real_server
from tests.conftest import run_cli
from tests.copy_support import SPEC, kill_copy_after, write_credentials, write_users
from tests.inventory_support import write_config

REAL = real_server()


class _Requests:
    """What the kill helper watches: the copy's writes are not visible on a real server, so the kill waits for
    the Graph sandbox's first version download instead (as ('PROPPATCH', …) entries)."""

    def __init__(self, g: GraphSandbox) -> None:
        self.g = g

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        n = self.g.stats()["requests"].get("versions", 0)
        return [("PROPPATCH", "", 0)] * n


def test_real_nextcloud_copy_killed_and_resumed_has_exactly_the_source_history(tmp_path):
    assert REAL is not None
    user, pw = REAL["user"], REAL["user_pw"]
    prefix = f"m365-versions-{uuid.uuid4().hex[:8]}"
    spec = {**SPEC, "users": 1, "files_per_drive": 40, "awkward_names": False, "versions": True}
    with GraphSandbox(TenantSpec(**spec)) as g:
        env = write_config(tmp_path, g, workers=2)
        creds = write_credentials(tmp_path, {user: pw, REAL["admin"]: REAL["admin_pw"]})
        cfg = tmp_path / "m365-migrate.toml"
        cfg.write_text(cfg.read_text().replace("[transfer]\n", '[transfer]\nversions = "all"\n', 1)
                       + f'\n[target]\nkind = "nextcloud"\nurl = "{REAL["url"]}"\ncredentials = "{creds}"\n'
                       f'service_account = "{REAL["admin"]}"\nprefix = "{prefix}"\n')
        try:
            for step in ("discover", "scan"):
                r = run_cli(step, cwd=tmp_path, env=env)
                assert r.returncode == 0, r.stdout + r.stderr
            write_users(tmp_path, {g.tenant.users[0].upn: user})
            g.faults.set(route="download", bytes_per_second=150_000)
            kill_copy_after(tmp_path, env, _Requests(g), ("PROPPATCH",), 2.0)
            g.faults.clear()
            r = run_cli("--json", "copy", cwd=tmp_path, env=env, timeout=1800)
            assert r.returncode == 0, r.stdout + r.stderr
            t = open_target("nextcloud", REAL["url"], {user: pw})
            drive = next(iter(g.tenant.drives.values()))
            checked = 0
            for it in drive.items.values():
                if it.kind != "file" or not it.old_versions:
                    continue
                path = f"{prefix}/{drive.path_of(it).lstrip('/')}"
                fid = t.file_id(user, path)
                got = t.list_versions(user, fid)
                who = g.tenant.identity
                want = [(expected_mtime(v.modified), v.content.size,
                         label_for(v.label, who(v.modified_by)["displayName"], v.modified)) for v in it.old_versions]
                want.append((expected_mtime(it.modified), it.content.size,
                             label_for(it.version_label, who(it.modified_by)["displayName"], it.modified)))
                assert [(v.timestamp, v.size, v.label) for v in got] == want, path
                for v, src in zip(got, it.old_versions, strict=False):
                    with t.open_version(user, fid, v.timestamp) as chunks:
                        assert hashlib.sha1(b"".join(chunks)).hexdigest() == src.content.sha1
                checked += 1
            assert checked >= 3
            r = run_cli("verify", cwd=tmp_path, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
            before = dict(g.stats()["requests"])
            r = run_cli("--json", "copy", cwd=tmp_path, env=env)
            assert r.returncode == 0 and json.loads(r.stdout)["files_verified"] == 0, r.stdout + r.stderr
            after = g.stats()["requests"]
            assert [after.get(k, 0) - before.get(k, 0) for k in ("versions", "version_content", "download")] == [0, 0, 0]
            t.close()
        finally:
            base = urlsplit(REAL["url"])
            with httpx.Client(auth=(user, pw), timeout=120) as c:
                c.request("DELETE", f"{REAL['url']}/remote.php/dav/files/{user}/{prefix}")
                trash = c.request("PROPFIND", f"{REAL['url']}/remote.php/dav/trashbin/{user}/trash",
                                  headers={"Depth": "1"})
                for href in trash.text.split("<d:href>")[2:]:
                    h = href.split("</d:href>")[0]
                    if prefix in h:
                        c.request("DELETE", f"{base.scheme}://{base.netloc}{h}")
