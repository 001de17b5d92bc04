"""The calendar/contact journey against a real Nextcloud named by M365_MIGRATE_TEST_NEXTCLOUD (as the conformance
suite: "URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW"). Two mailboxes go to USER and OTHER_USER,
whose e-mail addresses are set to the mailboxes' for the test (so Nextcloud would schedule if we let it) and put
back afterwards; the collections the test creates are removed without going through the trash bin."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from tests.conformance.rigs import OCS, real_server
from tests.conftest import run_cli
from tests.copy_support import db, write_credentials, write_users
from tests.groupware_support import SPEC, WINDOW, source_view, target_objects
from tests.inventory_support import write_config

REAL = real_server()
WHAT = "calendars,contacts"


def _retry(method: str, url: str, auth: tuple[str, str], **kw) -> httpx.Response:
    for _ in range(10):     # sqlite rigs answer 500 "database is locked" under load (§6.14); OCS words it
        r = httpx.request(method, url, auth=auth, timeout=60, **kw)   # "Internal Server Error" (statuscode 996)
        if r.status_code != 500 or not ("locked" in r.text or '"statuscode":996' in r.text):
            return r
        time.sleep(2)
    return r


def _email(uid: str, value: str | None = None) -> str:
    assert REAL is not None
    url = f"{REAL['url']}/ocs/v2.php/cloud/users/{uid}"
    admin = (REAL["admin"], REAL["admin_pw"])
    if value is None:
        return (httpx.get(url, auth=admin, headers=OCS).json()["ocs"]["data"].get("email") or "")
    r = _retry("PUT", url, admin, headers=OCS, data={"key": "email", "value": value})
    assert r.status_code == 200, r.text
    return value


def _homes(user: str, pw: str) -> list[str]:
    assert REAL is not None
    out = []
    for home in (f"/remote.php/dav/calendars/{user}/", f"/remote.php/dav/addressbooks/users/{user}/"):
        r = _retry("PROPFIND", REAL["url"] + home, (user, pw), headers={"Depth": "1"})
        out += [h for h in r.text.split("<d:href>")[2:]]
    return sorted(h.split("</d:href>")[0] for h in out)


@pytest.fixture(scope="module")
def real_journey(tmp_path_factory):
    assert REAL is not None
    tmp = tmp_path_factory.mktemp("gw-real")
    users = {REAL["user"]: REAL["user_pw"], REAL["other"]: REAL["other_pw"]}
    with GraphSandbox(TenantSpec(**SPEC)) as g:
        upns = sorted(u.upn for u in g.tenant.users)[:2]
        saved = {u: _email(u) for u in users}
        before = {u: _homes(u, pw) for u, pw in users.items()}
        try:
            for uid, upn in zip(users, upns, strict=True):
                _email(uid, upn)
            env = write_config(tmp, g)
            creds = write_credentials(tmp, users)
            cfg = tmp / "m365-migrate.toml"
            cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{REAL["url"]}"\n'
                           f'credentials = "{creds}"\n')
            assert run_cli("discover", cwd=tmp, env=env).returncode == 0
            write_users(tmp, dict(zip(upns, users, strict=True)))
            steps = {s: run_cli("--json", s, "--what", WHAT, cwd=tmp, env=env, timeout=1800)
                     for s in ("scan", "copy", "verify")}
            steps["again"] = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env, timeout=1800)
            yield {"g": g, "tmp": tmp, "steps": steps, "users": users, "before": before}
        finally:
            colls = []
            if (tmp / "state" / "migration.db").exists():
                with db(tmp) as s:
                    colls = [c for c in s.gw_collections() if c.created]
            for c in colls:
                kind = "calendars" if c.kind == "calendar" else "addressbooks/users"
                _retry("DELETE", f"{REAL['url']}/remote.php/dav/{kind}/{c.target_user}/{c.target_uri}/",
                       (c.target_user, users[c.target_user]),
                       headers={"X-NC-CalDAV-No-Trashbin": "1", "Schedule-Reply": "F"})
            for uid, mail in saved.items():
                _email(uid, mail)


def _json(r) -> dict:
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_real_nextcloud_lands_everything_expands_equal_and_delivers_nothing(real_journey):
    steps, g, users = real_journey["steps"], real_journey["g"], real_journey["users"]
    assert steps["scan"].returncode == 0 and steps["copy"].returncode == 0 and steps["verify"].returncode == 0
    copy, ver = _json(steps["copy"]), _json(steps["verify"])
    assert copy["failed"] == [] and ver["verified"] == ver["checked"] == copy["created"] + copy["adopted"]
    assert ver["extra"] == 0                                  # nothing was delivered into a migrated calendar
    again = _json(steps["again"])
    assert again["created"] == again["updated"] == again["requests"] == 0
    with db(real_journey["tmp"]) as s:
        cals = [c for c in s.gw_collections(("calendar",)) if c.created]
        ours = {f"/remote.php/dav/{'calendars' if c.kind == 'calendar' else 'addressbooks/users'}/{c.target_user}/"
                f"{c.target_uri}/" for c in s.gw_collections() if c.created}
    for c in cals:
        objs = target_objects(f"{REAL['url']}/remote.php/dav/calendars/{c.target_user}/{c.target_uri}/",
                              (c.target_user, users[c.target_user]))
        from migrate.groupware.expand import expand_utc

        assert expand_utc(objs.values(), *WINDOW) == source_view(g, c.upn, c.name), (c.upn, c.name)
    for u, pw in users.items():       # no calendar appeared besides ours (no `personal` made by a delivery)
        new = set(_homes(u, pw)) - set(real_journey["before"][u]) - ours
        assert not {h for h in new if "contact_birthdays" not in h}, new
