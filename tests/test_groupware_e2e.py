"""Calendars and contacts through the CLI, from the Graph sandbox into a real CalDAV/CardDAV server (Radicale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from tests.conftest import run_cli
from tests.copy_support import db, write_credentials, write_users
from tests.groupware_support import SPEC, WINDOW, Radicale, source_view, target_objects
from tests.inventory_support import write_config

PASSWORDS = {"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}
WHAT = "calendars,contacts"


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """Sandbox tenant + Radicale + a configured folder after discover, scan, plan and copy."""
    tmp = tmp_path_factory.mktemp("gw")
    with GraphSandbox(TenantSpec(**SPEC)) as g, Radicale(tmp / "radicale", PASSWORDS) as dav:
        env = write_config(tmp, g)
        creds = write_credentials(tmp, PASSWORDS)
        cfg = tmp / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "webdav"\nurl = "{dav.url}"\ncredentials = "{creds}"\n'
                       f'caldav_url = "{dav.url}/{{user}}/"\ncarddav_url = "{dav.url}/{{user}}/"\n')
        r = run_cli("discover", cwd=tmp, env=env)
        assert r.returncode == 0, r.stderr
        upns = sorted(u.upn for u in g.tenant.users)
        write_users(tmp, dict(zip(upns, ["alice", "bob", "carol"], strict=True)))
        steps = {}
        for step in ("scan", "plan", "copy"):
            steps[step] = run_cli("--json", step, "--what", WHAT, cwd=tmp, env=env)
        yield {"g": g, "dav": dav, "tmp": tmp, "env": env, "upns": upns, "steps": steps}


def _json(r):
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_scan_plan_copy_report_what_they_did(journey):
    scan = _json(journey["steps"]["scan"])
    assert journey["steps"]["scan"].returncode == 0
    assert scan["mailboxes"] == 3 and scan["calendars"] == 6 and scan["address_books"] == 12
    assert len(scan["skipped_calendars"]) == 3          # each mailbox shows a colleague's calendar: not copied
    plan = _json(journey["steps"]["plan"])
    assert journey["steps"]["plan"].returncode == 3      # something cannot be carried: listed, exit 3
    reasons = {u["title"]: u["reason"] for u in plan["unsupported"]}
    assert "every occurrence" in reasons["Series with every occurrence cancelled"]
    notes = " ".join(n["note"] for n in plan["notes"])
    assert "no IANA equivalent" in notes and "RDATE" in notes and "'Budget.xlsx' (reference) is not carried" in notes
    # a plain CalDAV server has no Files: the attached mail is listed as not carried, saying why
    assert "'Protokoll letzte Woche' (item) is not carried" in notes and "not Nextcloud" in notes
    assert (Path(plan["reports"]) / "groupware-plan.md").read_text().count("Cannot be carried") == 1
    assert plan["estimate"]["rescan_graph_requests"] == scan["requests"] and plan["estimate"]["writes"] > 80
    copy = _json(journey["steps"]["copy"])
    assert journey["steps"]["copy"].returncode == 0, copy
    assert copy["created"] == plan["totals"]["puts"] and copy["failed"] == []
    # Both files of "Mit Anhang" are small: per mailbox the metadata, then one list with their bytes (not a
    # `$value` each); both are inlined, byte for byte
    assert journey["g"].stats()["requests"]["attachment"] == 3 * 2
    import base64

    import icalendar

    g, dav = journey["g"], journey["dav"]
    with db(journey["tmp"]) as s:
        cal = next(c for c in s.gw_collections(("calendar",)) if c.upn == journey["upns"][0] and c.name == "Calendar")
    body = next(b for b in target_objects(f"{dav.url}/{cal.target_user}/{cal.target_uri}/",
                                          (cal.target_user, PASSWORDS[cal.target_user])).values()
                if b"SUMMARY:Mit Anhang" in b)
    ev = next(c for c in icalendar.Calendar.from_ical(body).walk("VEVENT"))
    got = {a.params["X-FILENAME"]: base64.b64decode(a.to_ical()) for a in ev.get("attach")}
    src = next(e for evs in g.groupware.mailbox(g.tenant.user(journey["upns"][0])).events.values() for e in evs
               if e.data["subject"] == "Mit Anhang")
    assert got == {a["name"]: base64.b64decode(a["contentBytes"]) for a in src.attachments if a.get("contentBytes")}


def test_every_occurrence_expands_to_the_source_instants(journey):
    from migrate.groupware.expand import expand_utc

    g, dav = journey["g"], journey["dav"]
    with db(journey["tmp"]) as s:
        colls = [c for c in s.gw_collections(("calendar",)) if not c.skip_reason]
    assert len(colls) == 6
    total = 0
    for c in colls:
        objs = target_objects(f"{dav.url}/{c.target_user}/{c.target_uri}/", (c.target_user, PASSWORDS[c.target_user]))
        expected = source_view(g, c.upn, c.name)
        got = expand_utc(objs.values(), *WINDOW)
        assert got == expected, (c.upn, c.name, sorted(set(expected) ^ set(got))[:6])
        total += len(got)
    assert total > 150


def test_contacts_round_trip_with_photos_and_nested_folders(journey):
    from migrate.groupware.vcard import birthday_date, card_fields

    g, dav = journey["g"], journey["dav"]
    with db(journey["tmp"]) as s:
        books = s.gw_collections(("addressbook",))
    names = {b.name for b in books}
    assert "Contacts / Kunden / 2024" in names and "Contacts / Privat ♥" in names
    seen = 0
    for b in books:
        u = g.tenant.user(b.upn)
        mb = g.groupware.mailbox(u)
        folder = next(f for f in mb.folders if b.name.endswith(f["displayName"]))
        objs = {card_fields(body.decode())["uid"]: card_fields(body.decode()) for body in
                target_objects(f"{dav.url}/{b.target_user}/{b.target_uri}/", (b.target_user, PASSWORDS[b.target_user])).values()}
        for c in mb.contacts[folder["id"]]:
            got = objs[c["id"]]
            assert got["fn"] == c["displayName"]
            assert got["email"] == sorted(e["address"] for e in c["emailAddresses"])
            assert got["tel"] == sorted(c["businessPhones"] + c["homePhones"] + [c["mobilePhone"]])
            assert got["n"][:2] == (c["surname"], c["givenName"] or "")
            assert got["bday"] == ([birthday_date(c["birthday"]).isoformat()] if c["birthday"] else [])
            assert got["photo"] == ([mb.photos[c["id"]]] if c["id"] in mb.photos else [])
            if c.get("businessAddress"):
                a = c["businessAddress"]
                assert got["adr"] == [(a["street"], a["city"], a["postalCode"], a["countryOrRegion"])]
                assert got["note"] == [c["personalNotes"].replace("\r\n", "\n")]
                assert got["org"] == [(c["companyName"], c["department"])]
            seen += 1
    assert seen >= 3 * 6


def test_rerun_creates_nothing_and_verify_passes_with_an_audit_record_per_put(journey):
    tmp, env = journey["tmp"], journey["env"]
    again = run_cli("--json", "copy", "--what", WHAT, cwd=tmp, env=env)
    data = _json(again)
    assert again.returncode == 0 and data["created"] == 0 and data["updated"] == 0 and data["adopted"] == 0
    assert data["requests"] == 0
    v = run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env)
    ver = _json(v)
    assert v.returncode == 0, ver
    assert ver["verified"] == ver["checked"] > 0 and ver["missing"] == [] and ver["differ"] == []
    with db(tmp) as s:
        puts = [a for a in s.iter_audit() if a["action"] == "groupware.put"]
        assert len(puts) == ver["checked"]
        assert s.verify_audit().ok
    again_plan = _json(run_cli("--json", "plan", "--what", WHAT, cwd=tmp, env=env))
    assert again_plan["estimate"]["copy_objects_per_second_measured"] > 0     # measured by the first copy
    st = run_cli("status", "--what", WHAT, cwd=tmp, env=env)
    assert st.returncode == 0 and "verified" in st.stdout


def test_sync_carries_changes_and_deletions_into_radicale(journey):
    """Runs last (it changes the source): sync with `deletions = trash` against a real CalDAV/CardDAV server."""
    g, dav, tmp, env = journey["g"], journey["dav"], journey["tmp"], journey["env"]
    cfg = tmp / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + '\n[policy]\ndeletions = "trash"\n')
    adele = g.tenant.user(journey["upns"][0])
    g.call(g.groupware_mutations.delete_event, adele, "Workshop #7 ✓")
    g.call(g.groupware_mutations.rename_event, adele, "Arzttermin", "Arzttermin (verschoben)")
    g.call(g.groupware_mutations.delete_contact, adele, "Łukasz Żółć")
    r = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env)
    s = _json(r)
    assert r.returncode == 0 and s["removed"] == 2 and s["updated"] == 1 and s["conflicts"] == [], s
    with db(tmp) as st:
        colls = [c for c in st.gw_collections() if c.upn == journey["upns"][0] and not c.skip_reason]
    bodies = b"".join(b for c in colls for b in target_objects(
        f"{dav.url}/alice/{c.target_uri}/", ("alice", PASSWORDS["alice"])).values())
    assert b"Workshop #7" not in bodies and "Łukasz".encode() not in bodies
    assert b"Arzttermin (verschoben)" in bodies
    again = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert again["removed"] == again["updated"] == again["created"] == again["requests"] == 0
    v = _json(run_cli("--json", "verify", "--what", WHAT, cwd=tmp, env=env))
    assert v["missing"] == v["differ"] == [] and v["extra"] == 0
