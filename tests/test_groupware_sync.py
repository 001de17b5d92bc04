"""`sync --what calendars,contacts` through the CLI into the Nextcloud sandbox: source changes and deletions carried
over, deletions silent towards attendees (§6.5), a changed target object never overwritten, --dry-run writes
nothing, and a rerun after kill -9 applies the rest without duplicates."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import db
from tests.groupware_support import SPEC
from tests.test_groupware_nextcloud import TARGETS, WHAT, _json, setup


@pytest.fixture
def copied(tmp_path):
    with GraphSandbox(TenantSpec(**SPEC)) as g, NextcloudSandbox(users=TARGETS) as nc:
        env = setup(tmp_path, g, nc)
        cfg = tmp_path / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + '\n[policy]\ndeletions = "trash"\n')
        r = run_cli("--json", "copy", "--what", WHAT, cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        yield g, nc, tmp_path, env


def _objects(nc: NextcloudSandbox) -> dict[tuple[str, str, str], bytes]:
    return {(k[0], k[2], n): o.body for k, c in list(nc.app.groupware.collections.items())
            for n, o in list(c.objects.items())}


def _changes(g: GraphSandbox) -> None:
    """Outlook edits between passes: a deleted meeting with attendees, a rename, a cancelled occurrence of a series,
    a deleted and a renamed contact, a renamed calendar."""
    adele = sorted(g.tenant.users, key=lambda u: u.upn)[0]
    m = g.groupware_mutations
    g.call(m.delete_event, adele, "Workshop #7 ✓")
    g.call(m.rename_event, adele, "Arzttermin", "Arzttermin (verschoben)")
    g.call(m.cancel_occurrence, adele, "Jour fixe", _first_occurrence(g, adele, "Jour fixe"))
    g.call(m.delete_contact, adele, "José Núñez")
    g.call(m.rename_contact, adele, "Nur-Nachname", "Nur-Nachname (neu)")
    g.call(m.rename_calendar, adele, "Projekt X / Ünïcødé 会議", "Projekt Y")


def _first_occurrence(g: GraphSandbox, user, subject: str) -> dt.date:
    mb = g.groupware.mailbox(user)
    e = next(e for evs in mb.events.values() for e in evs if e.data.get("subject") == subject)
    return dt.date.fromisoformat(e.instances(dt.date(2029, 1, 1))[1]["originalStart"][:10])


def test_sync_carries_changes_and_deletions_without_mailing_anyone(copied):
    g, nc, tmp, env = copied
    _changes(g)
    before = _objects(nc)
    dry = run_cli("--json", "sync", "--what", WHAT, "--dry-run", cwd=tmp, env=env)
    d = _json(dry)
    assert dry.returncode == 0 and d["dry_run"]
    assert any("Workshop #7" in x for x in d["deleted"]) and any("José" in x for x in d["deleted"])
    assert any("Arzttermin (verschoben)" in x for x in d["changed"]) and any("Jour fixe" in x for x in d["changed"])
    assert any("Projekt Y" in x for x in d["renamed_collections"])
    assert _objects(nc) == before                                      # the dry run wrote nothing

    r = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env)
    s = _json(r)
    assert r.returncode == 0, s
    assert s["removed"] == 2 and s["updated"] >= 3 and s["conflicts"] == [] and s["failed"] == []
    gw = nc.app.groupware
    assert gw.mails == [] and gw.deliveries == []                      # the DELETE of a meeting cancelled nobody
    after = _objects(nc)
    bodies = b"\n".join(v for k, v in after.items() if k[0] == "alice")    # adele's target user
    assert b"Workshop #7" not in bodies and "José".encode() not in bodies
    assert b"Arzttermin (verschoben)" in bodies and b"Nur-Nachname (neu)" in bodies
    jour = next(k for k, b in after.items() if b"SUMMARY:Jour fixe" in b)
    assert after[jour] != before[jour] and after[jour].count(b"EXDATE") > before[jour].count(b"EXDATE")
    assert "Projekt Y" in {c.displayname for c in gw.collections.values()}
    with db(tmp) as st:
        kinds = [a["action"] for a in st.query("SELECT action FROM audit WHERE action='groupware.delete'")]
    assert len(kinds) == 2
    again = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert again["created"] == again["updated"] == again["removed"] == 0 and again["requests"] == 0
    assert len(_objects(nc)) == len(after)


def test_a_target_edit_is_a_conflict_never_overwritten_and_keep_policy_keeps(copied):
    g, nc, tmp, env = copied
    cfg = tmp / "m365-migrate.toml"
    cfg.write_text(cfg.read_text().replace('deletions = "trash"', 'deletions = "keep"'))
    key = next(k for k, b in _objects(nc).items() if k[0] == "alice" and b"SUMMARY:Planung #9" in b)
    url = f"{nc.url}/remote.php/dav/calendars/{key[0]}/{key[1]}/{key[2]}"
    auth = (key[0], nc.app_passwords[key[0]])
    edited = _objects(nc)[key].replace(b"SUMMARY:Planung #9", b"SUMMARY:Edited in Nextcloud #9")
    with httpx.Client(auth=auth) as c:
        assert c.put(url, content=edited, headers={"x-nc-scheduling": "false"}).status_code == 204
    adele = sorted(g.tenant.users, key=lambda u: u.upn)[0]
    g.call(g.groupware_mutations.rename_event, adele, "Planung #9 ✓", "Planung #9 (Outlook)")
    g.call(g.groupware_mutations.delete_event, adele, "Workshop #7 ✓")
    r = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env)
    s = _json(r)
    assert r.returncode == 3 and len(s["conflicts"]) == 1 and "Planung #9" in s["conflicts"][0], s["conflicts"]
    assert _objects(nc)[key] == edited                                 # the person's edit is still there
    assert s["kept"] == 1 and s["removed"] == 0
    assert any(b"Workshop #7" in b for k, b in _objects(nc).items() if k[0] == "alice")     # keep: our copy stays
    assert nc.app.groupware.mails == []


def test_kill_minus_9_mid_sync_then_rerun_applies_the_rest_once(copied):
    g, nc, tmp, env = copied
    adele = sorted(g.tenant.users, key=lambda u: u.upn)[0]
    mb = g.groupware.mailbox(adele)
    subjects = [e.data["subject"] for evs in mb.events.values() for e in evs
                if e.data.get("type") == "singleInstance" and "Invited" not in e.data["subject"]
                and "Someone else" not in e.data["subject"]]   # that calendar belongs to another mailbox
    for sub in subjects:
        g.call(g.groupware_mutations.rename_event, adele, sub, sub + " (v2)")
    exe = Path(sys.executable).with_name("m365-migrate")
    colls = len(nc.app.groupware.collections)
    proc = subprocess.Popen([str(exe), "sync", "--what", WHAT, "--workers", "1"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = sum(b" (v2)" in b for b in _objects(nc).values())
        if done >= 2:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env)
    s = _json(r)
    assert r.returncode == 0, s
    bodies = [b for k, b in _objects(nc).items() if k[0] == "alice"]
    assert sum(b" (v2)" in b for b in bodies) == len(subjects)
    uids = [next(line for line in b.split(b"\r\n") if line.startswith(b"UID:")) for b in bodies]
    assert len(uids) == len(set(uids)) and len(nc.app.groupware.collections) == colls   # no duplicates
    assert nc.app.groupware.mails == []


def test_a_rescan_reads_only_changes_through_delta_and_a_410_falls_back_to_a_full_read(copied):
    g, nc, tmp, env = copied
    first = _json(run_cli("--json", "scan", "--what", WHAT, cwd=tmp, env=env))   # links are there: changes only
    with db(tmp) as st:
        colls = [c for c in st.gw_collections() if not c.skip_reason]
        linked = [c for c in colls if c.delta_link]
    assert first["changed"] == first["deleted"] == 0
    assert len(linked) == len([c for c in colls if c.kind == "calendar" or c.source_id != "contacts"])
    assert first["events"] == 0                                   # no event read again
    adele = sorted(g.tenant.users, key=lambda u: u.upn)[0]
    g.call(g.groupware_mutations.cancel_occurrence, adele, "Jour fixe", _first_occurrence(g, adele, "Jour fixe"))
    g.call(g.groupware_mutations.delete_event, adele, "Workshop #7 ✓")
    g.call(g.groupware_mutations.delete_contact, adele, "Łukasz Żółć")
    second = _json(run_cli("--json", "scan", "--what", WHAT, cwd=tmp, env=env))
    assert second["changed"] == 1 and second["deleted"] == 2 and second["events"] == 1
    with db(tmp) as st:                                            # an expired token: 410, then a full read
        st.db.execute("UPDATE gw_collections SET delta_link = replace(delta_link, '$deltatoken=', "
                      "'$deltatoken=expired') WHERE delta_link IS NOT NULL")
        st.db.conn.commit()
    third = _json(run_cli("--json", "scan", "--what", WHAT, cwd=tmp, env=env))
    assert third["changed"] == third["deleted"] == 0 and third["events"] > 50
    assert third["requests"] > second["requests"]


def _state(tmp: Path) -> tuple[list[str], list[tuple]]:
    """Every row of the real state database as SQL, and the collections' delta links."""
    import sqlite3

    (path,) = [p for p in tmp.rglob("*.db") if "reports" not in p.parts]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        links = conn.execute("SELECT id, delta_link FROM gw_collections ORDER BY id").fetchall()
        return list(conn.iterdump()), links
    finally:
        conn.close()


def test_a_dry_run_writes_nothing_to_the_state_database_and_lists_what_the_real_run_applies(copied):
    """The dry run rescans into a scratch copy: the real database (rows, delta links, runs) is untouched, a second
    dry run lists the same changes (it would list none had the first stored the delta), and the real run agrees."""
    g, nc, tmp, env = copied
    _changes(g)
    before, links = _state(tmp)
    assert any(link for _, link in links)                   # the copy stored delta links a dry run could consume
    targets = _objects(nc)
    lists = ("new", "changed", "deleted", "new_collections", "renamed_collections")
    dries = []
    for _ in range(2):
        r = run_cli("--json", "sync", "--what", WHAT, "--dry-run", cwd=tmp, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        dries.append({k: sorted(_json(r)[k]) for k in lists})
        assert _state(tmp) == (before, links)                 # not a row, link or run record written
        assert _objects(nc) == targets
    assert dries[0] == dries[1]
    d = dries[0]
    titles = {k: sorted(x.rsplit(": ", 1)[1].strip("'") for x in d[k]) for k in ("new", "changed", "deleted")}
    assert titles == {"new": [], "changed": ["Arzttermin (verschoben)", "Jour fixe", "Nur-Nachname (neu)"],
                      "deleted": ["José Núñez", "Workshop #7 ✓"]}, d
    assert d["new_collections"] == [] and len(d["renamed_collections"]) == 1 and "Projekt Y" in d["renamed_collections"][0]
    real = _json(run_cli("--json", "sync", "--what", WHAT, cwd=tmp, env=env))
    assert {k: sorted(real[k]) for k in lists} == d
    assert real["removed"] == 2 and real["updated"] == 3 and real["conflicts"] == real["failed"] == []
    assert _state(tmp)[1] != links                            # the real run does move the delta links on
