"""A contact photo is requested only where the contact has one: the listing carries PidLidHasPicture, delta rounds
get the flags from one id listing per folder; every photo still arrives in the state database."""

from __future__ import annotations

import base64

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import db
from tests.groupware_support import SPEC
from tests.test_groupware_nextcloud import TARGETS, setup


def test_photos_are_asked_for_only_where_there_is_one(tmp_path):
    spec = {**SPEC, "groupware_contacts": 48, "groupware_events": 2}     # 12+ per folder: delta pages use the flags
    # answers held 20 ms each: the client's requests really overlap, and must stay within Outlook's 4 per mailbox
    with GraphSandbox(TenantSpec(**spec), outlook_delay=0.02) as g, NextcloudSandbox(users=TARGETS) as nc:
        env = setup(tmp_path, g, nc, scan=False)
        g.reset_stats()
        r = run_cli("scan", "--what", "contacts", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        books = g.stats()
        mailboxes = [g.groupware.mailbox(u) for u in g.tenant.users]
    photos = {cid: data for mb in mailboxes for cid, data in mb.photos.items()}
    contacts = sum(len(f) for mb in mailboxes for f in mb.contacts.values())
    assert contacts >= 3 * 49 and len(photos) < contacts / 3
    assert books["requests"]["photo"] == len(photos)                 # was one per contact, most of them 404
    assert books["status"].get("404", 0) == 0
    per_mailbox = books["mailboxes"].values()
    assert all(m["over_concurrency"] == 0 and m["over_rate"] == 0 for m in per_mailbox)
    with db(tmp_path) as s:
        stored = {o.source_id: o.payload for b in s.gw_collections(("addressbook",))
                  for o in s.iter_gw_objects(b.id)}
    assert len(stored) == contacts
    got = {k: base64.b64decode(p["photo"]) for k, p in stored.items() if p["photo"]}
    assert got == photos
    assert all("singleValueExtendedProperties" not in p["contact"] for p in stored.values())
