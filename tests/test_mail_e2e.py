"""The mail journey through the CLI: Graph sandbox mailboxes into a real Dovecot on loopback.

scan → plan → copy → verify, every message byte for byte (CRLF form) with its flags and INTERNALDATE; a kill -9
mid-copy and a rerun leave no duplicate and no gap; Outlook-side changes carried by sync; verify exit 3 after
the target was damaged.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.dovecot_support import SMALL_QUOTA
from tests.mail_e2e_support import (
    BackgroundCopy,
    as_json,
    assert_one_copy_each,
    crlf_digest,
    expected_flags,
    graph_mime,
    received_text,
    server_messages,
    setup_mail,
)
from tests.mail_graph_support import spec

LARGE_MB = 6


@pytest.fixture(scope="module")
def journey(tmp_path_factory, dovecot):
    tmp = tmp_path_factory.mktemp("mail")
    users = [dovecot.fresh_user() for _ in range(3)]
    with GraphSandbox(spec(mail_large_mb=LARGE_MB)) as g:
        env, upns = setup_mail(tmp, g, dovecot, users)
        steps = {step: run_cli("--json", step, "--what", "mail", cwd=tmp, env=env) for step in ("scan", "plan", "copy")}
        yield {"g": g, "tmp": tmp, "env": env, "upns": upns, "users": users, "steps": steps, "dovecot": dovecot}


def _db(tmp: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{tmp / 'state' / 'migration.db'}?mode=ro", uri=True)


def test_scan_plan_copy_say_what_they_did(journey):
    scan = as_json(journey["steps"]["scan"])
    assert journey["steps"]["scan"].returncode == 0, scan
    assert scan["mailboxes"] == 3 and scan["messages"] > 30 and scan["new"] == scan["messages"]
    assert any("Sync Issues" in n for n in scan["not_carried"])        # Outlook's artefacts: listed, not read
    assert any("hidden folder" in n for n in scan["not_carried"])
    plan = as_json(journey["steps"]["plan"])
    assert plan["totals"]["messages"] == scan["messages"] and plan["totals"]["mailboxes"] == 3
    assert (Path(plan["reports"]) / "mail-plan.md").read_text().count("## Not carried") == 1
    copy = as_json(journey["steps"]["copy"])
    assert journey["steps"]["copy"].returncode in (0, 3), copy
    assert copy["appended"] + len(copy["skipped"]) == scan["messages"] and copy["failed"] == []
    assert copy["bytes"] > LARGE_MB * 1024 * 1024
    # maildir++ (Dovecot's default layout) refuses '.' in a name: renamed by the name rules, and listed;
    # a '/' inside an Outlook folder name is not taken as a level
    assert any("Projekt 2.0 → INBOX/Projekt 2_0" in x and "refused" in x for x in copy["renamed"]), copy["renamed"]
    assert any("'/'" in x for x in copy["renamed"]), copy["renamed"]
    status = as_json(run_cli("--json", "status", "--what", "mail", cwd=journey["tmp"], env=journey["env"]))
    assert sum(r.get("done", 0) for r in status["mail"]) == copy["appended"] and len(status["mail"]) == 3


def test_every_message_is_byte_exact_with_flags_and_internaldate(journey):
    g, dovecot = journey["g"], journey["dovecot"]
    db = _db(journey["tmp"])
    rows = db.execute("SELECT m.user_id, m.message_id, f.target_name, m.uid, m.internet_message_id FROM mail_messages m "
                      "JOIN mail_folders f ON f.id = m.target_folder_id WHERE m.status='done'").fetchall()
    imap_user = dict(db.execute("SELECT DISTINCT user_id, imap_user FROM mail_folders").fetchall())
    assert len(rows) > 30
    checked = large = 0
    sessions: dict[str, object] = {}
    try:
        for user_id, mid, folder, uid, _imid in rows:
            user = imap_user[user_id]
            sess = sessions.setdefault(user, dovecot.session(user, master=True))
            want = crlf_digest(graph_mime(g, user_id, mid))
            assert sess.fetch_digest(folder, uid) == want, (user, folder, uid)
            large += want[0] > LARGE_MB * 1024 * 1024
            checked += 1
    finally:
        for s in sessions.values():
            s.close()
    assert checked == len(rows) and large == 1
    # flags and INTERNALDATE from the server's own view (doveadm), against the sandbox's Graph properties
    for user_id, user in imap_user.items():
        box = g.call(lambda uid=user_id: g.mailboxes.mailbox(g.tenant.user_by_id(uid)))
        on_server = server_messages(dovecot, user)
        uid_of = {(f, str(u)): m for owner, m, f, u, _ in rows if owner == user_id}
        seen = 0
        for folder, msgs in on_server.items():
            for row in msgs:
                mid = uid_of.get((folder, row["uid"]))
                if mid is None:
                    continue
                src = box.messages[mid]
                got = set(row["flags"].split()) - {"\\Recent"}
                want = expected_flags(src.data, src.props)
                assert want <= got, (folder, src.data.get("subject"), want, got)
                assert got - want <= {k for k in got if not k.startswith("\\") and not k.startswith("$")}, got
                assert row["received"] == received_text(src.data), (folder, src.data.get("subject"))
                seen += 1
        assert seen > 5
    # Sent Items went into the server's \Sent folder: no parallel "Sent Items"
    for user in imap_user.values():
        assert "Sent Items" not in server_messages(dovecot, user)


def test_rerun_sends_nothing_and_verify_passes(journey):
    again = run_cli("--json", "copy", "--what", "mail", cwd=journey["tmp"], env=journey["env"])
    data = as_json(again)
    assert data["appended"] == 0 and data["adopted"] == 0, data
    v = run_cli("--json", "verify", "--what", "mail", cwd=journey["tmp"], env=journey["env"])
    ver = as_json(v)
    assert v.returncode == 0, ver
    assert ver["verified"] == ver["checked"] > 30 and not ver["missing"] and not ver["differ"]


def test_a_kill_between_append_and_record_is_found_not_appended_again(journey):
    """The ledger row of an appended message back in `appending` without its UID (what a kill -9 right after the
    APPEND leaves): the rerun finds it by Message-ID and digest; nothing is appended twice."""
    tmp, env, dovecot = journey["tmp"], journey["env"], journey["dovecot"]
    db = sqlite3.connect(tmp / "state" / "migration.db")
    ids = [r[0] for r in db.execute("SELECT id FROM mail_messages WHERE status='done' ORDER BY id LIMIT 3")]
    db.execute(f"UPDATE mail_messages SET status='appending', uid=NULL WHERE id IN ({','.join('?' * len(ids))})", ids)
    db.commit()
    db.close()
    data = as_json(run_cli("--json", "copy", "--what", "mail", cwd=tmp, env=env))
    assert data["adopted"] == 3 and data["appended"] == 0, data
    assert sum(assert_one_copy_each(tmp / "state" / "migration.db", dovecot, u) for u in journey["users"]) > 30


def test_sync_carries_outlook_changes_and_leaves_a_persons_flags(journey):
    g, tmp, env, dovecot = journey["g"], journey["tmp"], journey["env"], journey["dovecot"]
    upn, user = journey["upns"][0], journey["users"][0]
    box = g.call(lambda: g.mailboxes.mailbox(g.tenant.user(upn)))
    inbox = g.call(lambda: [(m.id, m.data) for m in box.in_folder(box.folder("inbox").id)])
    db = _db(tmp)
    uid_of = dict(db.execute("SELECT message_id, uid FROM mail_messages WHERE status='done'").fetchall())
    plain = [i for i, d in inbox if i in uid_of and not d.get("isRead") and d["flag"]["flagStatus"] == "notFlagged"]
    flagged, person = plain[:2]
    moved, deleted = [i for i, _ in inbox if i in uid_of and i not in plain[:2]][:2]
    new_id = g.mail_mutate("deliver", user=upn, folder="inbox", subject="Nach dem Kopieren")
    g.mail_mutate("set_flags", user=upn, message_id=flagged, is_read=True, flag="flagged")
    g.mail_mutate("move_message", user=upn, message_id=moved, folder="archive")
    g.mail_mutate("delete_message", user=upn, message_id=deleted)
    g.mail_mutate("set_flags", user=upn, message_id=person, flag="flagged")
    dovecot.doveadm("flags", "add", "-u", user, "$PersonalTag", "mailbox", "INBOX", "uid", str(uid_of[person]))
    g.mail_mutate("expire_delta", user=upn, folder="archive")   # one folder is read again from the start
    before = server_messages(dovecot, user)
    dry = run_cli("--json", "sync", "--what", "mail", "--dry-run", cwd=tmp, env=env)
    d = as_json(dry)
    assert dry.returncode == 0 and d["scan"]["new"] >= 1 and d["appended"] == 0, d
    assert server_messages(dovecot, user) == before   # a dry run writes nothing (nor advances the real state)
    r = run_cli("--json", "sync", "--what", "mail", cwd=tmp, env=env)
    s = as_json(r)
    assert r.returncode == 3, s   # the person's change is a conflict: reported, exit 3
    assert s["appended"] == 1 and s["moved"] == 1 and s["flags"] == 1, s
    assert any(person in c or "flags changed" in c for c in s["conflicts"]), s["conflicts"]
    assert len(s["kept"]) == 1   # [policy] deletions = keep
    server = server_messages(dovecot, user)
    db = _db(tmp)
    row = dict(zip(("uid", "folder"), db.execute(
        "SELECT m.uid, f.target_name FROM mail_messages m JOIN mail_folders f ON f.id=m.target_folder_id "
        "WHERE m.message_id=?", (moved,)).fetchone(), strict=True))
    assert row["folder"] == "Archive" and str(row["uid"]) in {m["uid"] for m in server["Archive"]}
    assert str(uid_of[moved]) not in {m["uid"] for m in server["INBOX"]}
    fl = next(m for m in server["INBOX"] if m["uid"] == str(uid_of[flagged]))
    assert {"\\Seen", "\\Flagged"} <= set(fl["flags"].split())
    pf = next(m for m in server["INBOX"] if m["uid"] == str(uid_of[person]))
    assert "$PersonalTag" in pf["flags"] and "\\Flagged" not in pf["flags"]   # the target's flags are kept
    assert str(uid_of[deleted]) in {m["uid"] for m in server["INBOX"]}         # kept
    new_uid = db.execute("SELECT uid FROM mail_messages WHERE message_id=?", (new_id,)).fetchone()[0]
    assert str(new_uid) in {m["uid"] for m in server["INBOX"]}
    # the archive was read again after its delta link expired: nothing doubled there (nor anywhere)
    assert_one_copy_each(tmp / "state" / "migration.db", dovecot, user)
    again = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp, env=env))
    assert (again["appended"], again["moved"], again["flags"], again["kept"]) == (0, 0, 0, []), again
    v = run_cli("--json", "verify", "--what", "mail", cwd=tmp, env=env)
    assert v.returncode == 0, v.stdout
    audit = run_cli("audit", "export", "--format", "jsonl", cwd=tmp, env=env).stdout
    assert '"mail.move"' in audit and '"mail.flags"' in audit and '"mail.append"' in audit


def test_verify_exit_3_after_the_target_was_damaged(journey):
    tmp, env, dovecot = journey["tmp"], journey["env"], journey["dovecot"]
    user = journey["users"][1]
    uid = server_messages(dovecot, user)["INBOX"][0]["uid"]
    dovecot.doveadm("expunge", "-u", user, "mailbox", "INBOX", "uid", uid)
    r = run_cli("verify", "--what", "mail", cwd=tmp, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "MISSING" in r.stdout and f"(UID {uid})" in r.stdout and "Traceback" not in r.stderr
    # the next copy carries it again, and verify is whole again
    assert as_json(run_cli("--json", "copy", "--what", "mail", cwd=tmp, env=env))["appended"] == 1
    assert run_cli("verify", "--what", "mail", cwd=tmp, env=env).returncode == 0


def test_kill_9_mid_copy_then_rerun_no_duplicate_no_gap(tmp_path, dovecot):
    """A real kill -9 of `copy` while it appends; the rerun completes with every message once."""
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1, mail_bulk=300), outlook_delay=0.01) as g:
        env, upns = setup_mail(tmp_path, g, dovecot, [user])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        bg = BackgroundCopy(tmp_path, env)
        bg.wait_done(40)
        os.kill(bg.proc.pid, signal.SIGKILL)
        bg.finish(10)
        left = bg.count("status NOT IN ('done','skipped') AND folder_id IN (SELECT id FROM mail_folders WHERE "
                        "skip_reason IS NULL)")
        assert left > 100, "the kill came after the copy had finished: nothing was tested"
        r = run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env)
        data = as_json(r)
        assert r.returncode in (0, 3) and data["failed"] == [], data
        db = sqlite3.connect(bg.db_path)
        total, done = db.execute("SELECT COUNT(*), SUM(status IN ('done','skipped')) FROM mail_messages m JOIN "
                                 "mail_folders f ON f.id=m.folder_id WHERE f.skip_reason IS NULL").fetchone()
        assert total == done   # no gap
        appended = db.execute("SELECT COUNT(*) FROM mail_messages WHERE status='done'").fetchone()[0]
        assert assert_one_copy_each(bg.db_path, dovecot, user) == appended > 300   # no duplicate
        assert run_cli("verify", "--what", "mail", cwd=tmp_path, env=env).returncode == 0


def test_bad_input_gives_a_clear_message_and_exit_code(tmp_path, dovecot):
    with GraphSandbox(spec(users=2)) as g:
        small = dovecot.fresh_user(SMALL_QUOTA)
        env, upns = setup_mail(tmp_path, g, dovecot, [small, "nosuchuser"])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        # no master password anywhere: exit 2, saying where it goes
        r = run_cli("copy", "--what", "mail", cwd=tmp_path, env={**env, "M365_MIGRATE_IMAP_MASTER_PASSWORD": ""})
        assert r.returncode == 2 and "M365_MIGRATE_IMAP_MASTER_PASSWORD" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        # a 100K quota: that mailbox stops with exit 5 and what to do; the unknown user is named (exit 4
        # is outranked by the full mailbox, but both are listed)
        r = run_cli("copy", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 5, r.stdout + r.stderr
        assert "raise the quota" in r.stderr and small in r.stderr and "Traceback" not in r.stderr
        assert "nosuchuser" in r.stdout
        write_only = tmp_path / "mappings" / "users.csv"
        write_only.write_text(write_only.read_text().replace(f"{upns[0]},{small},wave1\n", ""))
        r = run_cli("copy", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 4 and "nosuchuser" in r.stderr and "Traceback" not in r.stderr, r.stderr
        r = run_cli("scan", "--what", "mail", "--user", "nobody@example.org", cwd=tmp_path, env=env)
        assert r.returncode == 2 and "nobody@example.org" in r.stderr and "Traceback" not in r.stderr
