"""Folder changes in Outlook between two passes, carried by `sync --what mail` through the CLI (Graph sandbox and a
real Dovecot): a rename, a move under another folder, a parent's rename (children follow), a new folder, deletions
by [policy] deletions (keep, then trash), and a person's rename at the server respected."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.mail_e2e_support import as_json, assert_one_copy_each, server_messages, setup_mail
from tests.mail_graph_support import spec


def _folder_id(g, upn: str, path: str) -> str:
    return g.call(lambda: g.mailboxes.mailbox(g.tenant.user(upn)).by_path(path).id)


def _uidvalidity(dovecot, user: str, folder: str) -> str:
    out = dovecot.doveadm("-f", "tab", "mailbox", "status", "-u", user, "uidvalidity", folder)
    return out.splitlines()[-1].split("\t")[-1].strip()


def test_folder_renames_moves_new_and_deleted_folders(tmp_path, dovecot):
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1)) as g:
        env, (upn,) = setup_mail(tmp_path, g, dovecot, [user])
        for step in ("scan", "copy"):
            assert run_cli(step, "--what", "mail", cwd=tmp_path, env=env).returncode in (0, 3)
        db_path = tmp_path / "state" / "migration.db"
        first = server_messages(dovecot, user)
        child = "INBOX/Projekte/Größe & Übersicht"
        assert {"INBOX/Projekte", child, "INBOX/Kunden_Lieferanten", "Einkauf ✓ 2026/Angebote/Ältere Angebote",
                "Leer"} <= set(first), sorted(first)
        validity = _uidvalidity(dovecot, user, child)
        child_uids = [m["uid"] for m in first[child]]

        # in Outlook: a parent renamed, a folder moved under the archive (with its subfolder), a new folder with
        # mail, an empty folder deleted; at the server a person renamed a folder that Outlook renames too
        g.mail_mutate("rename_folder", user=upn, folder=_folder_id(g, upn, "Inbox/Projekte"), name="Projekte 2027")
        g.mail_mutate("move_folder", user=upn, folder=_folder_id(g, upn, "Einkauf ✓ 2026/Angebote"), parent="archive")
        g.mail_mutate("rename_folder", user=upn, folder=_folder_id(g, upn, "Einkauf ✓ 2026"), name="trash")
        new = g.mail_mutate("add_folder", user=upn, parent="msgfolderroot", name="Neu & Ünicode")
        g.mail_mutate("deliver", user=upn, folder=new, subject="Im neuen Ordner")
        g.mail_mutate("delete_folder", user=upn, folder=_folder_id(g, upn, "Leer"))
        kunden = g.call(lambda: next(f.id for f in g.mailboxes.mailbox(g.tenant.user(upn)).folders.values()
                                     if f.name == "Kunden/Lieferanten"))
        g.mail_mutate("rename_folder", user=upn, folder=kunden, name="Lieferanten")
        g.mail_mutate("deliver", user=upn, folder=kunden, subject="Neue Lieferung")
        dovecot.doveadm("mailbox", "rename", "-u", user, "INBOX/Kunden_Lieferanten", "Kunden (meine)")

        before = server_messages(dovecot, user)
        dry = run_cli("--json", "sync", "--what", "mail", "--dry-run", cwd=tmp_path, env=env)
        d = as_json(dry)
        assert dry.returncode == 0 and d["appended"] == 0, d
        assert f"{upn}: trash: Einkauf ✓ 2026 → trash (" in " ".join(d["folders_renamed"]), d
        assert sorted(x for x in d["folders_renamed"] if "Einkauf ✓ 2026 →" not in x) == [
            f"{upn}: Archive / Angebote: Einkauf ✓ 2026/Angebote → Archive/Angebote (would be renamed)",
            f"{upn}: Inbox / Lieferanten: INBOX/Kunden_Lieferanten → INBOX/Lieferanten (would be renamed)",
            f"{upn}: Inbox / Projekte 2027: INBOX/Projekte → INBOX/Projekte 2027 (would be renamed)"], d
        assert d["folders_created"] == [f"{upn}: Neu & Ünicode (would be created)"]
        assert any("Leer" in x and "would be kept" in x for x in d["folders_kept"]), d
        assert server_messages(dovecot, user) == before   # a dry run changes nothing at the server

        r = run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env)
        s = as_json(r)
        assert r.returncode == 3, s   # the person's rename is a conflict: reported
        # a name taken by a special-use folder gets the mapping's collision suffix; Trash itself is never touched
        renamed_top = [x for x in s["folders_renamed"] if "Einkauf ✓ 2026 →" in x]
        assert len(renamed_top) == 1 and renamed_top[0].split(" → ")[1].startswith("trash"), s["folders_renamed"]
        assert renamed_top[0].split(" → ")[1] != "trash", renamed_top
        suffixed = renamed_top[0].split(" → ")[1]   # the parent went first (top-down), then its child moved
        assert sorted(x for x in s["folders_renamed"] if "Einkauf ✓ 2026 →" not in x) == sorted([
            f"{upn}: Inbox / Projekte 2027: INBOX/Projekte → INBOX/Projekte 2027",
            f"{upn}: Archive / Angebote: {suffixed}/Angebote → Archive/Angebote",
        ]), s["folders_renamed"]
        assert any("Neu & Ünicode" in x for x in s["folders_created"]) and s["appended"] == 2, s
        assert any("Kunden (meine)" in c and "renamed at the server by a person" in c for c in s["conflicts"]), s
        assert any("Leer" in x and "deletions = keep" in x for x in s["folders_kept"]), s["folders_kept"]
        now = server_messages(dovecot, user)
        assert "INBOX/Projekte" not in now and child not in now and "Einkauf ✓ 2026/Angebote" not in now
        moved = "INBOX/Projekte 2027/Größe & Übersicht"
        # the subfolder followed its parent, with its UIDVALIDITY and UIDs: nothing appended again
        assert [m["uid"] for m in now[moved]] == child_uids and _uidvalidity(dovecot, user, moved) == validity
        assert len(now["Archive/Angebote/Ältere Angebote"]) == len(first["Einkauf ✓ 2026/Angebote/Ältere Angebote"])
        assert len(now["Neu & Ünicode"]) == 1 and "Leer" in now
        assert suffixed in now and len(now["Trash"]) == len(first["Trash"]) and "Einkauf ✓ 2026" not in now
        assert any("a person renamed it at the server" in c for c in s["conflicts"]), s["conflicts"]
        # the person's name stays; the new message of that folder went there
        assert "INBOX/Lieferanten" not in now and len(now["Kunden (meine)"]) == len(first["INBOX/Kunden_Lieferanten"]) + 1
        assert_one_copy_each(db_path, dovecot, user)
        v = run_cli("--json", "verify", "--what", "mail", cwd=tmp_path, env=env)
        assert v.returncode == 0, v.stdout

        again = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert (again["folders_renamed"], again["folders_created"], again["folders_kept"], again["conflicts"],
                again["appended"]) == ([], [], [], [], 0), again

        # [policy] deletions = trash: a deleted folder's messages go to Trash and the emptied folders are deleted;
        # a folder holding a message a person put there stays
        cfg = tmp_path / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + '\n[policy]\ndeletions = "trash"\n')
        with dovecot.session(user, master=True) as imap:
            mine = b"From: p@example.org\r\nSubject: meine Notiz\r\nMessage-ID: <notiz@example.org>\r\n\r\nHallo\r\n"
            imap.append("INBOX/Projekte 2027", io.BytesIO(mine), len(mine), [], datetime(2026, 1, 1, tzinfo=UTC))
        g.mail_mutate("delete_folder", user=upn, folder=_folder_id(g, upn, "Archive/Angebote"))
        g.mail_mutate("delete_folder", user=upn, folder=_folder_id(g, upn, "Inbox/Projekte 2027"))
        trash_before = len(now.get("Trash", []))
        gone_msgs = sum(len(now[f]) for f in ("Archive/Angebote", "Archive/Angebote/Ältere Angebote",
                                               "INBOX/Projekte 2027", moved))
        r = run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env)
        s = as_json(r)
        assert r.returncode == 0, s
        assert s["trashed"] == gone_msgs and sorted(x.split(": ")[-1].split(" (")[0] for x in s["folders_deleted"]) \
            == ["Archive/Angebote", "Archive/Angebote/Ältere Angebote", moved], s
        assert any("INBOX/Projekte 2027 still holds 1 messages" in x for x in s["folders_kept"]), s["folders_kept"]
        final = server_messages(dovecot, user)
        assert not {"Archive/Angebote", "Archive/Angebote/Ältere Angebote", moved} & set(final)
        assert [m["message_id"] for m in final["INBOX/Projekte 2027"]] == ["<notiz@example.org>"]
        assert len(final["Trash"]) == trash_before + gone_msgs
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        assert db.execute("SELECT COUNT(*) FROM mail_folders WHERE target_name=? AND created=1",
                          (moved,)).fetchone() == (0,)
        audit = run_cli("audit", "export", "--format", "jsonl", cwd=tmp_path, env=env).stdout
        for kind in ("mail.folder-rename", "mail.folder-followed", "mail.folder-delete", "mail.create"):
            assert f'"{kind}"' in audit, kind
        last = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert (last["folders_deleted"], last["folders_kept"], last["trashed"], last["conflicts"]) == ([], [], 0, []), last


def test_a_folder_deleted_at_the_server_waits_and_one_moved_out_of_reach_is_trashed(tmp_path, dovecot):
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1)) as g:
        env, (upn,) = setup_mail(tmp_path, g, dovecot, [user], extra='\n[policy]\ndeletions = "trash"')
        for step in ("scan", "copy"):
            assert run_cli(step, "--what", "mail", cwd=tmp_path, env=env).returncode in (0, 3)
        first = server_messages(dovecot, user)
        kunden_name, punkt = "INBOX/Kunden_Lieferanten", "INBOX/Projekt 2_0"
        assert first[kunden_name] and first[punkt]
        # a person deletes a folder at the server; Outlook keeps delivering into it
        dovecot.doveadm("mailbox", "delete", "-u", user, kunden_name)
        kunden = g.call(lambda: next(f.id for f in g.mailboxes.mailbox(g.tenant.user(upn)).folders.values()
                                     if f.name == "Kunden/Lieferanten"))
        g.mail_mutate("deliver", user=upn, folder=kunden, subject="Neue Lieferung")
        # in Outlook a folder moves into a hidden one (not carried): like a deletion, by the policy
        g.mail_mutate("move_folder", user=upn, folder=_folder_id(g, upn, "Inbox/Projekt 2.0"),
                      parent=_folder_id(g, upn, "Archive/Privat (versteckt)"))
        r = run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env)
        s = as_json(r)
        assert r.returncode == 3 and s["failed"] == [], s
        assert [c for c in s["conflicts"] if "deleted at the server by a person" in c and kunden_name in c], s
        assert s["appended"] == 0 and s["trashed"] == len(first[punkt]), s
        assert [x.split(": ")[-1] for x in s["folders_deleted"]] == [
            f"{punkt} (moved in Outlook into a folder that is not carried; empty at the server)"], s
        now = server_messages(dovecot, user)
        assert kunden_name not in now and punkt not in now   # the person's deletion is not undone
        assert len(now["Trash"]) == len(first["Trash"]) + len(first[punkt])
        quiet = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert (quiet["conflicts"], quiet["failed"], quiet["appended"], quiet["trashed"]) == ([], [], 0, 0), quiet
        # the person makes the folder again: its messages are carried again (the old ones and the new one)
        dovecot.doveadm("mailbox", "create", "-u", user, kunden_name)
        back = as_json(run_cli("--json", "sync", "--what", "mail", cwd=tmp_path, env=env))
        assert back["appended"] == len(first[kunden_name]) + 1 and back["failed"] == [], back
        assert len(server_messages(dovecot, user)[kunden_name]) == len(first[kunden_name]) + 1
        assert_one_copy_each(tmp_path / "state" / "migration.db", dovecot, user)
        assert run_cli("verify", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
