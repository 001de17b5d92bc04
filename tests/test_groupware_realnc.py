"""The calendar/contact journey against a real Nextcloud named by M365_MIGRATE_TEST_NEXTCLOUD (as the conformance
suite: "URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW"). Two mailboxes go to USER and OTHER_USER,
whose e-mail addresses are set to the mailboxes' for the test (so Nextcloud would schedule if we let it) and put
back afterwards; the collections the test creates are removed without going through the trash bin. After the
copy, Outlook-side changes (a deleted meeting with attendees, a rename, a cancelled occurrence, a deleted and a
renamed contact, a renamed calendar) are carried by `sync` with `[policy] deletions = "trash"`. The event "Mit
Anhang" carries a 6.3 MB file and an attached mail: they go to the owner's Files, linked from the event and
shared with its attendee when that attendee is the other mapped user; the test's files are removed afterwards.

M365_MIGRATE_TEST_MAIL_SINK ("HOST:PORT", where that server sends its mail, e.g. 127.0.0.1:25 for a Nextcloud with
default mail settings) adds a loopback SMTP sink: a plain PUT of a meeting must reach it first (the control), then
the whole journey must send it nothing."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from urllib.parse import quote

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from tests.conformance.rigs import OCS, real_server
from tests.conftest import run_cli
from tests.copy_support import db, write_credentials, write_users
from tests.groupware_support import SPEC, WINDOW, MailSink, source_view, target_objects
from tests.inventory_support import write_config
from tests.test_groupware_sync import _changes

REAL = real_server()
BIG_KB = 6451      # "Plan groß.pdf" of the event "Mit Anhang": 6,605,824 bytes, over the 6 MiB inlined per event
WHAT = "calendars,contacts"
MAIL_SINK = os.environ.get("M365_MIGRATE_TEST_MAIL_SINK", "")
CONTROL = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//m365-migrate tests//EN\r\nBEGIN:VEVENT\r\n"
           "UID:m365-migrate-mail-control\r\nDTSTAMP:20261205T000000Z\r\nDTSTART:20270110T090000Z\r\n"
           "DTEND:20270110T100000Z\r\nSUMMARY:mail control\r\nORGANIZER:mailto:{organizer}\r\n"
           "ATTENDEE;RSVP=TRUE:mailto:someone@example.invalid\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


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
    with GraphSandbox(TenantSpec(**{**SPEC, "groupware_attachment_kb": BIG_KB})) as g, ExitStack() as stack:
        host, _, port = MAIL_SINK.rpartition(":")
        sink = stack.enter_context(MailSink(host, int(port))) if MAIL_SINK else None
        upns = sorted(u.upn for u in g.tenant.users)[:2]
        saved = {u: _email(u) for u in users}
        before = {u: _homes(u, pw) for u, pw in users.items()}
        try:
            for uid, upn in zip(users, upns, strict=True):
                _email(uid, upn)
            control = _mail_control(users, upns[0], sink) if sink else None
            env = write_config(tmp, g)
            creds = write_credentials(tmp, users)
            cfg = tmp / "m365-migrate.toml"
            cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{REAL["url"]}"\n'
                           f'credentials = "{creds}"\n\n[policy]\ndeletions = "trash"\n')
            assert run_cli("discover", cwd=tmp, env=env).returncode == 0
            write_users(tmp, dict(zip(upns, users, strict=True)))
            steps = {"scan": run_cli("--json", "scan", "--what", WHAT, cwd=tmp, env=env, timeout=1800)}
            steps["copies"] = _copy_until_done(tmp, env)
            steps["verify"] = run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env, timeout=1800)
            steps["again"] = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env, timeout=1800)
            _changes(g)
            steps["sync"] = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env, timeout=1800)
            steps["verify_after_sync"] = run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env, timeout=1800)
            yield {"g": g, "tmp": tmp, "steps": steps, "users": users, "before": before, "control": control,
                   "mails": list(sink.messages) if sink else None}
        finally:
            colls, folders = [], set()
            if (tmp / "state" / "migration.db").exists():
                with db(tmp) as s:
                    colls = [c for c in s.gw_collections() if c.created]
                    folders = {(r["target_user"], r["target_path"].rsplit("/", 1)[0])
                               for r in s.gw_attachment_rows(("uploaded", "verified", "failed", "kept"))
                               if r["target_path"]}
            for user, folder in folders:     # the attachment files (their shares go with them)
                _retry("DELETE", f"{REAL['url']}/remote.php/dav/files/{user}/{quote(folder)}", (user, users[user]))
            for c in colls:
                kind = "calendars" if c.kind == "calendar" else "addressbooks/users"
                _retry("DELETE", f"{REAL['url']}/remote.php/dav/{kind}/{c.target_user}/{c.target_uri}/",
                       (c.target_user, users[c.target_user]),
                       headers={"X-NC-CalDAV-No-Trashbin": "1", "Schedule-Reply": "F"})
            for uid, mail in saved.items():
                _email(uid, mail)


def _mail_control(users: dict[str, str], organizer: str, sink: MailSink) -> bytes:
    """A plain PUT of a meeting (no header that stops scheduling) in a calendar of our own: the server must mail
    the attendee, or the sink is not where its mail goes. The calendar is then removed, the sink emptied."""
    assert REAL is not None
    user = REAL["user"]
    base = f"{REAL['url']}/remote.php/dav/calendars/{user}/m365-migrate-mail-control/"
    auth = (user, users[user])
    assert _retry("MKCALENDAR", base, auth).status_code == 201
    try:
        _retry("PUT", base + "control.ics", auth, content=CONTROL.format(organizer=organizer),
               headers={"Content-Type": "text/calendar"})
        deadline = time.monotonic() + 30
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        _retry("DELETE", base, auth, headers={"X-NC-CalDAV-No-Trashbin": "1", "Schedule-Reply": "F"})
    time.sleep(1)
    got = b"".join(sink.messages)
    sink.messages.clear()
    return got


def _copy_until_done(tmp, env) -> list:
    """`copy`, run again (as the runbook says) while its only failures are collections stopped by the sqlite
    rig's "database is locked" outlasting the retries (§6.14); any other failure ends the loop."""
    runs = [run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env, timeout=1800)]
    while runs[-1].returncode == 3 and len(runs) < 5 and all(
            "database is locked" in f and "run again to resume" in f for f in _json(runs[-1])["failed"]):
        runs.append(run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env, timeout=1800))
    return runs


def _json(r) -> dict:
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_real_nextcloud_lands_everything_expands_equal_and_delivers_nothing(real_journey):
    steps, g, users = real_journey["steps"], real_journey["g"], real_journey["users"]
    assert steps["scan"].returncode == 0 and steps["copies"][-1].returncode == 0 and steps["verify"].returncode == 0
    copies, ver = [_json(r) for r in steps["copies"]], _json(steps["verify"])
    assert copies[-1]["failed"] == [] and ver["verified"] == ver["checked"] == sum(c["created"] + c["adopted"]
                                                                                   for c in copies)
    assert ver["extra"] == 0                                  # nothing was delivered into a migrated calendar
    again = _json(steps["again"])
    assert again["created"] == again["updated"] == again["requests"] == 0
    sync, after = _json(steps["sync"]), _json(steps["verify_after_sync"])   # expansions below: after the sync
    assert steps["sync"].returncode == 0 and sync["failed"] == [] and sync["conflicts"] == [], sync
    assert sync["removed"] == 2 and sync["updated"] >= 3 and len(sync["renamed_collections"]) == 1
    assert steps["verify_after_sync"].returncode == 0 and after["extra"] == 0
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


if MAIL_SINK:
    def test_real_nextcloud_mails_nobody_during_copy_and_sync(real_journey):
        assert b"someone@example.invalid" in real_journey["control"]     # the sink does receive this server's mail
        assert real_journey["mails"] == []


def test_real_nextcloud_keeps_the_large_attachment_in_files_linked_and_shared(real_journey):
    """What a real 32.0.1 makes of it: the file is there with its bytes and the id the event's ATTACH names (the
    URI ATTACH stored as sent), and the attendee who is a mapped user sees the share (accepted, not pending)."""
    import hashlib

    steps, g, users = real_journey["steps"], real_journey["g"], real_journey["users"]
    ver = _json(steps["verify"])
    assert ver["attachments"]["verified"] == ver["attachments"]["checked"] >= 4, ver["attachments"]
    with db(real_journey["tmp"]) as s:
        rows = [r for r in s.gw_attachment_rows(("uploaded", "verified")) if r["title"] == "Mit Anhang"]
        colls = {c.id: c for c in s.gw_collections(("calendar",))}
        objs = {o.id: (c, o) for c in colls.values() for o in s.iter_gw_objects(c.id) if o.title == "Mit Anhang"}
    pdf = next(r for r in rows if r["name"] == "Plan groß.pdf")
    owner, path = pdf["target_user"], pdf["target_path"]
    auth = (owner, users[owner])
    got = httpx.get(f"{REAL['url']}/remote.php/dav/files/{owner}/{quote(path)}", auth=auth, timeout=120)
    big = next(a for evs in g.groupware.mailbox(g.tenant.user(pdf["upn"])).events.values() for e in evs
               if e.data["subject"] == "Mit Anhang" for a in e.attachments if a["name"] == "Plan groß.pdf")
    import base64

    assert got.status_code == 200 and hashlib.sha1(got.content).hexdigest() == \
        hashlib.sha1(base64.b64decode(big["contentBytes"])).hexdigest() == pdf["sha1"]
    coll, obj = objs[pdf["object_id"]]
    body = httpx.get(f"{REAL['url']}/remote.php/dav/calendars/{coll.target_user}/{coll.target_uri}/{obj.href}",
                     auth=auth, timeout=60).text.replace("\r\n ", "")
    linked = [x for x in body.splitlines() if x.startswith("ATTACH") and f"X-NC-FILE-ID={pdf['file_id']}" in x]
    assert len(linked) == 1 and linked[0].endswith(f"/index.php/f/{pdf['file_id']}"), body
    for sharee in json.loads(pdf["shared_with"] or "[]"):
        mine = httpx.get(f"{REAL['url']}/ocs/v2.php/apps/files_sharing/api/v1/shares",
                         params={"shared_with_me": "true", "format": "json"}, auth=(sharee, users[sharee]),
                         headers=OCS, timeout=60).json()["ocs"]["data"]
        assert any(str(x.get("item_source")) == pdf["file_id"] for x in mine), mine
