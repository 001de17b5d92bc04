"""Calendar attachments over the inline limit, through the CLI from the Graph sandbox into the Nextcloud sandbox
(reference groupware.md §4.8): a 6.3 MB file and an attached mail land in the owner's Files, the event links
them by file id, the mapped attendee of the meeting gets a read-only share, verify checks it all, a rerun sends
nothing, sync carries an added and a removed attachment, and the download never sits in memory whole."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import db
from tests.groupware_support import SPEC
from tests.test_groupware_nextcloud import TARGETS, _json, setup

BIG_KB = 6451                      # 6,605,824 bytes: over the 6 MiB inlined per event
WHAT = "calendars"


@pytest.fixture
def pair(tmp_path):
    with GraphSandbox(TenantSpec(**{**SPEC, "groupware_attachment_kb": BIG_KB})) as g, \
            NextcloudSandbox(users=TARGETS) as nc:
        yield g, nc, tmp_path


def _owner(g):
    return sorted(g.tenant.users, key=lambda u: u.upn)[0]


def _event(g, subject):
    mb = g.groupware.mailbox(_owner(g))
    return next(e for evs in mb.events.values() for e in evs if e.data["subject"] == subject)


def _object(tmp, subject):
    with db(tmp) as s:
        for c in s.gw_collections(("calendar",)):
            for o in s.iter_gw_objects(c.id):
                if o.title == subject and c.upn == _owner_upn(tmp):
                    return c, o, s.gw_attachments(o.id)
    raise AssertionError(subject)


def _owner_upn(tmp):
    with db(tmp) as s:
        return sorted(u["upn"] for u in s.users())[0]


def _body(nc, coll, obj) -> str:
    url = f"{nc.url}/remote.php/dav/calendars/{coll.target_user}/{coll.target_uri}/{obj.href}"
    return httpx.get(url, auth=(coll.target_user, nc.app_passwords[coll.target_user])).text.replace("\r\n ", "")


def test_a_large_attachment_goes_to_files_linked_shared_and_verified(pair):
    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    ev = _event(g, "Mit Anhang")
    big = next(a for a in ev.attachments if a["name"] == "Plan groß.pdf")
    assert big["size"] > 6 * 1024 * 1024
    scanned = g.stats()["requests"].get("attachment", 0)
    assert scanned == 3 * 2      # per mailbox: the list ($select, no bytes) and the small file's $value only

    plan = _json(run_cli("--json", "plan", "--what", WHAT, cwd=tmp, env=env))
    notes = [n["note"] for n in plan["notes"] if n["title"] == "Mit Anhang"]
    assert any("'Plan groß.pdf' (6,605,824 bytes) goes to the owner's Files" in n for n in notes), notes
    assert any("'Budget.xlsx' (reference) is not carried" in n for n in notes), notes
    assert not any("Protokoll" in n and "not carried" in n for n in notes)          # the attached mail goes too
    to_files = sum(a["size"] for u in g.tenant.users for evs in g.groupware.mailbox(u).events.values() for e in evs
                   for a in e.attachments if a["name"] in ("Plan groß.pdf", "Protokoll letzte Woche"))
    assert plan["totals"]["attachment_files"] == 6                                  # what the quotas must hold
    assert plan["totals"]["attachment_file_bytes"] == to_files > 3 * big["size"]
    text = run_cli("plan", "--what", WHAT, cwd=tmp, env=env).stdout
    assert f"6 attachments ({to_files:,} bytes) go to their owners' Files" in text, text

    r = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env)
    copy = _json(r)
    assert r.returncode == 0 and copy["failed"] == [], copy
    assert copy["attachments"] == {"carried": 6, "shared": 6}, copy   # 3 mailboxes × (the PDF + the mail)
    assert g.stats()["requests"]["attachment"] == scanned + 6         # each carried one downloaded once
    books = copy["graph"]["requests_by_kind"]                         # the run's books: kind="attachment"
    assert books["attachment"] == 6 and set(books) <= {"attachment", "licences"}, books

    coll, obj, rows = _object(tmp, "Mit Anhang")
    owner = coll.target_user
    by_name = {r.name: r for r in rows}
    pdf, mail = by_name["Plan groß.pdf"], by_name["Protokoll letzte Woche"]
    assert pdf.target_path.startswith("Calendar/Mit Anhang (") and pdf.target_path.endswith("/Plan groß.pdf")
    assert mail.target_path.endswith("/Protokoll letzte Woche.eml")
    info = nc.file_info(owner, pdf.target_path)
    import base64

    assert info["sha1"] == hashlib.sha1(base64.b64decode(big["contentBytes"])).hexdigest() == pdf.sha1
    assert info["size"] == big["size"] and str(info["fileid"]) in (pdf.file_id, pdf.file_id.lstrip("0"))
    assert b"Subject: Protokoll letzte Woche" in Path(nc.file_info(owner, mail.target_path)["path"]).read_bytes()

    body = _body(nc, coll, obj)
    attach = [line for line in body.splitlines() if line.startswith("ATTACH")]
    linked = [a for a in attach if "VALUE=URI" in a]
    assert len(attach) == 3 and len(linked) == 2          # the small text file inline, the two others linked
    assert any(f"X-NC-FILE-ID={pdf.file_id}" in a and a.endswith(f":{nc.url}/index.php/f/{pdf.file_id}")
               and f"FILENAME=/{pdf.target_path};" in a.replace('"', '') for a in linked), linked
    assert len(body.encode()) < 1024 * 1024                # the 6.3 MB are not in the event

    colleague = ev.data["attendees"][0]["emailAddress"]["address"]
    sharee = dict(zip(sorted(u.upn for u in g.tenant.users), TARGETS, strict=True))[colleague]
    shares = [s for s in nc.shares if s["uid_owner"] == owner]
    assert {(s["share_with"], s["permissions"], s["share_type"]) for s in shares} == {(sharee, 1, 0)}
    assert len(shares) == 2 and pdf.shared_with == (sharee,)
    assert nc.app.groupware.mails == [] and nc.app.groupware.deliveries == []

    again = _json(run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env))
    assert again["created"] == again["updated"] == again["requests"] == 0 and again["attachments"] == {}
    v = run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env)
    ver = _json(v)
    assert v.returncode == 0, ver
    assert ver["attachments"]["verified"] == ver["attachments"]["checked"] == 6
    with db(tmp) as s:
        actions = [a["action"] for a in s.iter_audit()]
    assert actions.count("groupware.attachment") == 6 and actions.count("groupware.attachment-share") == 6
    st = run_cli("status", "--what", WHAT, cwd=tmp, env=env)
    assert st.returncode == 0 and "attachments in Files: verified 6" in st.stdout, st.stdout


def test_verify_sees_a_deleted_file_and_copy_puts_it_back(pair):
    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    assert run_cli("copy", "--what", WHAT, cwd=tmp, env=env).returncode == 0
    coll, obj, rows = _object(tmp, "Mit Anhang")
    pdf = next(r for r in rows if r.name == "Plan groß.pdf")
    url = f"{nc.url}/remote.php/dav/files/{coll.target_user}/{pdf.target_path}"
    assert httpx.delete(url, auth=(coll.target_user, nc.app_passwords[coll.target_user])).status_code == 204
    v = run_cli("verify", "--what", WHAT, cwd=tmp, env=env)
    assert v.returncode == 3 and "MISSING attachment" in v.stdout and "Plan groß.pdf" in v.stdout, v.stdout
    r = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env)
    data = _json(r)
    assert r.returncode == 0 and data["attachments"]["carried"] == 1, data
    _, obj2, rows2 = _object(tmp, "Mit Anhang")
    pdf2 = next(r for r in rows2 if r.name == "Plan groß.pdf")
    assert f"X-NC-FILE-ID={pdf2.file_id}" in _body(nc, coll, obj2)     # the event links the file that is there
    assert run_cli("verify", "--what", WHAT, cwd=tmp, env=env).returncode == 0
    (share,) = [s for s in nc.shares if s["uid_owner"] == coll.target_user and s["file_source"] == int(pdf2.file_id)]
    api = f"{nc.url}/ocs/v2.php/apps/files_sharing/api/v1/shares/{share['id']}"
    assert httpx.delete(api, auth=(coll.target_user, nc.app_passwords[coll.target_user]),
                        headers={"OCS-APIRequest": "true"}).status_code == 200           # the owner unshares it
    v = run_cli("verify", "--what", WHAT, cwd=tmp, env=env)
    assert v.returncode == 3 and f"not shared with {share['share_with']}" in v.stdout, v.stdout
    again = _json(run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env))
    assert again["attachments"] == {"shared": 1} and again["updated"] == 0, again
    assert run_cli("verify", "--what", WHAT, cwd=tmp, env=env).returncode == 0


def test_sync_carries_an_added_and_a_removed_attachment(pair):
    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    cfg = tmp / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + '\n[policy]\ndeletions = "trash"\n')
    assert run_cli("copy", "--what", WHAT, cwd=tmp, env=env).returncode == 0
    coll, _, rows = _object(tmp, "Mit Anhang")
    old_pdf = next(r for r in rows if r.name == "Plan groß.pdf")
    user = _owner(g)
    g.call(g.groupware_mutations.remove_attachment, user, "Mit Anhang", "Plan groß.pdf")
    g.call(g.groupware_mutations.add_attachment, user, "Arzttermin", "Befund.bin", 7 * 1024 * 1024)
    r = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env)
    s = _json(r)
    assert r.returncode == 0 and s["failed"] == [] and s["conflicts"] == [], s
    assert s["updated"] == 2 and s["attachments"] == {"carried": 1, "removed": 1}, s
    assert nc.file_info(coll.target_user, old_pdf.target_path) is None          # deleted ([policy] trash)
    acoll, aobj, arows = _object(tmp, "Arzttermin")
    (befund,) = arows
    assert nc.file_info(acoll.target_user, befund.target_path)["size"] == 7 * 1024 * 1024
    assert befund.shared_with == ()                # no attendees: shared with nobody
    assert f"X-NC-FILE-ID={befund.file_id}" in _body(nc, acoll, aobj)
    _, mobj, _ = _object(tmp, "Mit Anhang")
    assert "Plan groß.pdf" not in _body(nc, coll, mobj)
    v = _json(run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env))
    assert v["attention"] is False and v["attachments"]["verified"] == 6, v
    again = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert again["updated"] == again["created"] == again["requests"] == 0 and again["attachments"] == {}
    mail = next(r for r in _object(tmp, "Mit Anhang")[2] if r.name == "Protokoll letzte Woche")
    g.call(g.groupware_mutations.delete_event, user, "Mit Anhang")          # the event goes, its files with it
    gone = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert gone["removed"] == 1 and gone["attachments"] == {"removed": 1} and gone["failed"] == [], gone
    assert nc.file_info(coll.target_user, mail.target_path) is None


HARNESS = """
import sys, tracemalloc
from migrate.engine.groupware import attach as ga
peaks = []
carry = ga.Carrier.carry
def measured(self, coll, obj, summary):
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        return carry(self, coll, obj, summary)
    finally:
        peaks.append(tracemalloc.get_traced_memory()[1] - base)
ga.Carrier.carry = measured
tracemalloc.start()
from migrate.cli import main
sys.argv = ["m365-migrate", "--json", "copy", "--what", "calendars", "--workers", "1"]
try:
    main()
finally:
    print("PEAKS", *peaks, file=sys.stderr)
"""


def test_the_download_is_streamed_never_held_whole(pair):
    """Copy in a child process that measures (tracemalloc) the memory each event's attachment carrying takes:
    the 6.3 MB attachment is never held once, let alone twice (download → spool → upload in pieces)."""
    import os

    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    r = subprocess.run([sys.executable, "-c", HARNESS], cwd=tmp, env={**os.environ, **env}, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    peaks = [int(x) for x in re.search(r"PEAKS ([\d ]+)", r.stderr).group(1).split()]
    assert len(peaks) == 3 and json.loads(r.stdout[r.stdout.index("{"):])["attachments"]["carried"] == 6
    # Each event carries the 6,605,824-byte PDF; the first also pays for the Graph credential's first token
    # (imports, a few MB whatever the attachment): the others show what carrying takes.
    assert max(peaks[1:]) < 1536 * 1024, peaks


def test_a_download_that_breaks_or_is_throttled_is_read_again(pair):
    """Graph drops the connection in the middle of the 6.3 MB body, then answers 503 with Retry-After: the pacer
    and the carrier read it again from the start, and exactly the source's bytes land, once."""
    import base64

    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    g.faults.set(route="attachment", reset_after=3 * 1024 * 1024, count=1)
    r = run_cli("--json", "copy", "--what", WHAT, "--workers", "1", cwd=tmp, env=env)
    data = _json(r)
    assert r.returncode == 0 and data["failed"] == [] and data["attachments"]["carried"] == 6, data
    assert any(action.startswith("reset@") for _, _, action in g.faults.log)
    g.faults.set(route="attachment", status=503, retry_after="0.1", count=2)
    coll, _, rows = _object(tmp, "Mit Anhang")
    pdf = next(x for x in rows if x.name == "Plan groß.pdf")
    url = f"{nc.url}/remote.php/dav/files/{coll.target_user}/{pdf.target_path}"
    assert httpx.delete(url, auth=(coll.target_user, nc.app_passwords[coll.target_user])).status_code == 204
    assert run_cli("verify", "--what", WHAT, cwd=tmp, env=env).returncode == 3
    r = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env)
    assert r.returncode == 0 and _json(r)["attachments"] == {"carried": 1, "shared": 1}, r.stdout
    big = next(a for a in _event(g, "Mit Anhang").attachments if a["name"] == "Plan groß.pdf")
    assert nc.file_info(coll.target_user, pdf.target_path)["sha1"] == \
        hashlib.sha1(base64.b64decode(big["contentBytes"])).hexdigest()
    assert [a for _, _, a in g.faults.log].count("status 503") == 2


def test_where_each_attachment_goes_is_decided_from_the_metadata():
    """Inline while the 6 MiB budget lasts (in order), Files for the rest and for attached items on Nextcloud,
    listed with the reason elsewhere; links to cloud files never; an attached item is named by what it is."""
    from migrate.groupware.attachments import FILES, INLINE, NOT_CARRIED, file_name, placements

    mb = 1024 * 1024
    atts = [{"@odata.type": "#microsoft.graph.fileAttachment", "id": "a", "name": "a.pdf", "size": 4 * mb},
            {"@odata.type": "#microsoft.graph.fileAttachment", "id": "b", "name": "b.pdf", "size": 3 * mb},
            {"@odata.type": "#microsoft.graph.fileAttachment", "id": "c", "name": "c.txt", "size": 2 * mb},
            {"@odata.type": "#microsoft.graph.itemAttachment", "id": "d", "name": "Termin", "size": 900},
            {"@odata.type": "#microsoft.graph.referenceAttachment", "id": "e", "name": "x.xlsx", "size": 300}]
    assert [p.where for p in placements(atts, files=True)] == [INLINE, FILES, INLINE, FILES, NOT_CARRIED]
    plain = placements(atts, files=False)
    assert [p.where for p in plain] == [INLINE, NOT_CARRIED, INLINE, NOT_CARRIED, NOT_CARRIED]
    assert "not Nextcloud" in plain[1].reason and "Graph v1.0 gives neither" in plain[4].reason
    item = placements(atts, files=True)[3]
    assert file_name(item, "", b"BEGIN:VCALENDAR\r\n") == "Termin.ics"
    assert file_name(item, "application/octet-stream", b"Received: from") == "Termin.eml"
    assert file_name(item, "text/vcard; charset=utf-8", b"") == "Termin.vcf"
    assert file_name(placements(atts, files=True)[1], "application/pdf", b"%PDF") == "b.pdf"


def test_a_removed_attachment_is_kept_in_files_by_default(pair):
    """`[policy] deletions = "keep"` (the default): the event no longer links the file, the file stays, and the
    summary and `status` say it was kept."""
    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    assert run_cli("copy", "--what", WHAT, cwd=tmp, env=env).returncode == 0
    coll, _, rows = _object(tmp, "Mit Anhang")
    pdf = next(r for r in rows if r.name == "Plan groß.pdf")
    g.call(g.groupware_mutations.remove_attachment, _owner(g), "Mit Anhang", "Plan groß.pdf")
    s = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert s["attachments"] == {"kept": 1} and s["updated"] == 1 and s["failed"] == [], s
    assert nc.file_info(coll.target_user, pdf.target_path)["size"] == pdf.size
    _, obj, _ = _object(tmp, "Mit Anhang")
    assert f"X-NC-FILE-ID={pdf.file_id}" not in _body(nc, coll, obj)
    st = run_cli("status", "--what", WHAT, cwd=tmp, env=env)
    assert "kept 1" in st.stdout and "verified" not in st.stdout.split("attachments in Files:")[1], st.stdout
    assert run_cli("verify", "--what", WHAT, cwd=tmp, env=env).returncode == 0


def test_an_attendee_removed_in_outlook_loses_the_share(pair):
    """Never broader than the source: when the colleague is no longer invited, `sync` deletes their shares."""
    g, nc, tmp = pair
    env = setup(tmp, g, nc)
    assert run_cli("copy", "--what", WHAT, cwd=tmp, env=env).returncode == 0
    coll, _, _ = _object(tmp, "Mit Anhang")
    assert len([s for s in nc.shares if s["uid_owner"] == coll.target_user]) == 2
    colleague = _event(g, "Mit Anhang").data["attendees"][0]["emailAddress"]["address"]
    g.call(g.groupware_mutations.remove_attendee, _owner(g), "Mit Anhang", colleague)
    s = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert s["failed"] == [] and s["updated"] == 1, s
    assert [s for s in nc.shares if s["uid_owner"] == coll.target_user] == []
    assert all(r.shared_with == () for r in _object(tmp, "Mit Anhang")[2])
    assert run_cli("verify", "--what", WHAT, cwd=tmp, env=env).returncode == 0
