"""Mail beyond the first copy, through the CLI against the Graph sandbox and a real Dovecot: what is not carried
(and why), doctor's IMAP checks, deletions by [policy] deletions = trash, and cutover --what mail."""

from __future__ import annotations

import json

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.mail_e2e_support import as_json, server_messages, setup_mail
from tests.mail_graph_support import spec


def test_not_carried_doctor_trash_and_cutover(tmp_path, dovecot):
    users = [dovecot.fresh_user(), dovecot.fresh_user()]
    with GraphSandbox(spec(users=2, mail_large_mb=1, mail_archive_users=1)) as g:
        env, upns = setup_mail(tmp_path, g, dovecot, users,
                               extra='max_message_size = "512KiB"\n\n[policy]\ndeletions = "trash"')
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        # doctor: the server, its special-use folders, every mapped mailbox signs in
        r = run_cli("--json", "doctor", cwd=tmp_path, env=env)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        assert checks["IMAP server"]["ok"] and "signed in as" in checks["IMAP server"]["detail"], checks
        assert checks["IMAP special-use folders"]["ok"] and "\\Sent = Sent" in checks["IMAP special-use folders"]["detail"]
        assert checks["IMAP mailboxes"]["ok"] and "2 mailboxes sign in" in checks["IMAP mailboxes"]["detail"]

        # a message deleted in Outlook after the scan: listed by copy, never fatal
        box = g.call(lambda: g.mailboxes.mailbox(g.tenant.user(upns[1])))
        gone = g.call(lambda: next(m.id for m in box.in_folder(box.folder("inbox").id)))
        g.mail_mutate("delete_message", user=upns[1], message_id=gone)
        plan = as_json(run_cli("--json", "plan", "--what", "mail", cwd=tmp_path, env=env))
        reasons = [n["reason"] for n in plan["not_carried"]]
        assert any("max_message_size" in x for x in reasons), reasons        # the 1 MB message, over 512 KiB
        assert any(x.startswith("online archive") for x in reasons), reasons  # the first user has one
        assert any("hidden folder" in x for x in reasons) and any("Outbox" in x for x in reasons)
        r = run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env)
        copy = as_json(r)
        assert r.returncode == 3 and copy["failed"] == [], copy   # not everything carried: listed, exit 3
        assert any("no longer in the mailbox at the source" in x for x in copy["skipped"]), copy["skipped"]
        assert any("max_message_size" in x for x in copy["skipped"])

        # deleted in Outlook with deletions = trash: our copy moves into the server's Trash, nothing is expunged
        inbox = g.call(lambda: [m.id for m in box.in_folder(box.folder("inbox").id)])
        victim = inbox[0]
        g.mail_mutate("delete_message", user=upns[1], message_id=victim)
        before = {f: len(m) for f, m in server_messages(dovecot, users[1]).items()}
        s = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert s["trashed"] == 1 and s["conflicts"] == [], s
        after = {f: len(m) for f, m in server_messages(dovecot, users[1]).items()}
        assert after["INBOX"] == before["INBOX"] - 1 and after["Trash"] == before["Trash"] + 1

        # a whole folder deleted in Outlook: its messages go to the server's Trash, then the emptied folder goes
        import sqlite3

        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'migration.db'}?mode=ro", uri=True)
        leaf, name, n = db.execute(
            "SELECT f.source_id, f.target_name, COUNT(*) FROM mail_folders f JOIN mail_messages m ON m.folder_id=f.id "
            "WHERE f.upn=? AND f.skip_reason IS NULL AND f.well_known IS NULL AND m.status='done' AND NOT EXISTS "
            "(SELECT 1 FROM mail_folders c WHERE c.parent_id=f.source_id) GROUP BY f.id ORDER BY COUNT(*) DESC",
            (upns[1],)).fetchone()
        g.mail_mutate("delete_folder", user=upns[1], folder=leaf)
        s = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert s["trashed"] == n and s["scan"]["removed"] == n and s["conflicts"] == [], s
        final = {f: len(m) for f, m in server_messages(dovecot, users[1]).items()}
        assert name not in final and final["Trash"] == after["Trash"] + n
        assert [x.split(": ")[-1] for x in s["folders_deleted"]] == [f"{name} (deleted in Outlook; empty at the server)"]

        # cutover: final sync carries the last mail, verify is whole, the second pass is empty → exit 0
        new_id = g.mail_mutate("deliver", user=upns[0], folder="inbox", subject="Letzte Nachricht vor dem Umzug")
        r = run_cli("--json", "cutover", "--batch", "wave1", "--what", "mail", cwd=tmp_path, env=env)
        cut = json.loads(r.stdout[r.stdout.index("{"):])
        assert r.returncode == 0 and cut["whole"], cut
        assert cut["sync"]["appended"] == 1 and cut["late_changes"] == {"new": 0, "changed": 0, "removed": 0}
        subjects = dovecot.doveadm("-f", "tab", "fetch", "-u", users[0], "hdr.subject", "mailbox", "INBOX", "all")
        assert "Letzte Nachricht vor dem Umzug" in subjects
        import sqlite3

        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'migration.db'}?mode=ro", uri=True)
        assert db.execute("SELECT status FROM mail_messages WHERE message_id=?", (new_id,)).fetchone() == ("done",)
        # run again (mail still arriving in Exchange until the MX switch): the final sync carries it, still whole
        g.mail_mutate("deliver", user=upns[0], folder="inbox", subject="Nachzügler")
        r = run_cli("cutover", "--batch", "wave1", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 0 and "WHOLE" in r.stdout and "appended 1" in r.stdout, r.stdout + r.stderr
        r = run_cli("cutover", "--batch", "nosuchbatch", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 2 and "no mailbox belongs to batch 'nosuchbatch'" in r.stderr, r.stderr


def test_files_and_mail_in_one_journey_with_imap_user_column(tmp_path, dovecot, nextcloud_sandbox):
    from tests.copy_support import nextcloud_target, setup_migration
    from tests.dovecot_support import MASTER_PASSWORD, MASTER_USER

    with GraphSandbox(spec(users=1)) as g:
        env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox),
                                    targets=("alice",), scan=False)
        mailbox = dovecot.fresh_user()
        cfg = tmp_path / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + f'\n[mail]\nurl = "{dovecot.settings().url}"\nmaster_user = "{MASTER_USER}"\n')
        env["M365_MIGRATE_IMAP_MASTER_PASSWORD"] = MASTER_PASSWORD
        (tmp_path / "mappings" / "users.csv").write_text(f"source_upn,target_user,batch,imap_user\n"
                                                         f"{upns[0]},alice,wave1,{mailbox}\n")
        assert run_cli("scan", "--what", "files,mail", cwd=tmp_path, env=env).returncode == 0
        r = run_cli("--json", "plan", "--what", "files,mail", cwd=tmp_path, env=env)
        doc = json.loads(r.stdout[r.stdout.index("{"):])
        reports = doc["reports"]
        import pathlib

        assert (pathlib.Path(reports) / "mail-plan.md").is_file() and (pathlib.Path(reports) / "plan.md").is_file()
        # one report for the cutover: plan.html links to mail-plan.html beside it, and `report plan` renders both
        assert '<a href="mail-plan.html">' in (pathlib.Path(reports) / "plan.html").read_text()
        page = (pathlib.Path(reports) / "mail-plan.html").read_text()
        assert f"{upns[0]} → {mailbox} (" in page and "<td>INBOX</td>" in page, page[:3000]
        again = run_cli("report", "plan", "-o", str(tmp_path / "again"), cwd=tmp_path, env=env)
        assert (tmp_path / "again" / "mail-plan.html").read_text().count("<tr>") == page.count("<tr>"), again.stderr
        r = run_cli("--json", "copy", "--what", "files,mail", cwd=tmp_path, env=env)
        doc = json.loads(r.stdout[r.stdout.index("{"):])
        assert r.returncode in (0, 3) and doc["groupware"]["mail"]["appended"] > 5, r.stdout + r.stderr
        assert doc["files_verified"] > 0 and doc["failed"] == []   # the files part ran in the same command
        assert server_messages(dovecot, mailbox)["INBOX"]   # the mail went to the imap_user, not to "alice"
