"""[mail] settings, IMAP secrets, users.csv's imap_user, the folder mapping and the message ledger (no server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migrate.config import load_settings, render_config_template
from migrate.credentials import load_imap_master_password, load_imap_passwords
from migrate.engine.mail.folders import FolderIn, map_folders, skip_reason
from migrate.errors import ConfigError, MappingError, SecretsError
from migrate.mapping import load_users
from migrate.store import StateStore
from migrate.store.mail import MessageFacts

SPECIAL = {"\\Sent": "Sent", "\\Drafts": "Drafts", "\\Trash": "Trash", "\\Junk": "Junk", "\\Archive": "Archive"}


def _settings(tmp_path: Path, body: str, env: dict[str, str] | None = None):
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(body, encoding="utf-8")
    return load_settings(cfg, {}, env=env or {})


def test_mail_section_is_validated_with_the_key_named(tmp_path):
    s = _settings(tmp_path, '[mail]\nurl = "imaps://mail.example.org"\nmaster_user = "migrator"\nconnections = 4\n')
    assert s.mail.url == "imaps://mail.example.org" and s.mail.connections == 4 and s.mail.login == "master"
    assert s.mail.credentials == tmp_path / "secrets" / "imap-passwords.csv"
    with pytest.raises(ConfigError, match=r"m365-migrate.toml:2: \[mail\] connections = 5: expected a whole number "
                                          r"from 1 to 4"):
        _settings(tmp_path, '[mail]\nconnections = 5\n')
    with pytest.raises(ConfigError, match=r"\[mail\] url = \"https://mail.example.org\": expected an IMAP URL"):
        _settings(tmp_path, '[mail]\nurl = "https://mail.example.org"\n')
    with pytest.raises(ConfigError, match=r"\[mail\] login = \"oauth\": expected \"master\" \| \"credentials\""):
        _settings(tmp_path, '[mail]\nlogin = "oauth"\n')


def test_a_password_in_the_toml_is_refused_and_the_environment_is_the_place(tmp_path):
    with pytest.raises(SecretsError, match=r"\[mail\] master_password: secrets are never read") as exc:
        _settings(tmp_path, '[mail]\nmaster_password = "x"\n')
    assert "M365_MIGRATE_IMAP_MASTER_PASSWORD" in str(exc.value)
    env = {"M365_MIGRATE_IMAP_MASTER_PASSWORD": "s3cret"}
    s = _settings(tmp_path, '[mail]\nurl = "imap://127.0.0.1:1"\nmaster_user = "migrator"\n', env)
    assert load_imap_master_password(s, env).reveal() == "s3cret"
    with pytest.raises(SecretsError, match="no password for the IMAP master user 'migrator'"):
        load_imap_master_password(s, {})


def test_imap_passwords_file_must_be_private_and_well_formed(tmp_path):
    creds = tmp_path / "imap.csv"
    creds.write_text("user,password\nalice,pw-a\nbob,\n")
    os.chmod(creds, 0o644)
    s = _settings(tmp_path, f'[mail]\nlogin = "credentials"\ncredentials = "{creds}"\n')
    with pytest.raises(SecretsError, match="mode 0644"):
        load_imap_passwords(s)
    os.chmod(creds, 0o600)
    with pytest.raises(SecretsError, match=r"imap.csv:3:\d+: password is empty") as exc:
        load_imap_passwords(s)
    assert "pw-a" not in str(exc.value)
    creds.write_text("user,password\nalice,pw-a\n")
    assert load_imap_passwords(s)["alice"].reveal() == "pw-a"


def test_init_template_has_the_mail_section_and_it_loads(tmp_path):
    text = render_config_template()
    assert "[mail]" in text and 'login = "master"' in text and "M365_MIGRATE_IMAP_MASTER_PASSWORD" in text
    s = _settings(tmp_path, text)
    assert s.mail.url == "" and s.mail.hidden_folders is False and s.mail.junk is True


def test_users_csv_imap_user_column(tmp_path):
    p = tmp_path / "users.csv"
    p.write_text("source_upn,target_user,batch,imap_user\na@x.org,alice,w1,alice@mail.x.org\nb@x.org,bob,w1,\n")
    users = load_users(p)
    assert users.get("a@x.org").mail_user == "alice@mail.x.org"
    assert users.get("b@x.org").mail_user == "bob"
    p.write_text("source_upn,target_user,batch,imap_user\na@x.org,alice,w1,al ice\n")
    with pytest.raises(MappingError, match=r"users.csv:2:18: imap_user 'al ice'"):
        load_users(p)


def test_folder_mapping_uses_special_use_and_keeps_names_apart():
    fs = [FolderIn("in", None, "Inbox", "inbox", True), FolderIn("se", None, "Sent Items", "sentitems", True),
          FolderIn("c1", "in", "Kunden/A", None, True), FolderIn("c2", "c1", "2024", None, True),
          FolderIn("u1", None, "Sent", None, True), FolderIn("u2", None, "projekte", None, True),
          FolderIn("u3", None, "Projekte", None, True), FolderIn("h", None, "Hidden", None, False),
          FolderIn("hc", "h", "Child", None, True), FolderIn("dot", None, "Projekt 2.0", None, True)]
    out = {k: v.target for k, v in map_folders(fs, SPECIAL, "/").items()}
    assert out["in"] == "INBOX" and out["se"] == "Sent"       # never a parallel "Sent Items"
    assert out["c1"] == "INBOX/Kunden_A" and out["c2"] == "INBOX/Kunden_A/2024"
    assert out["u1"].startswith("Sent (") and {out["u2"], out["u3"]} - {"projekte"} == {out["u3"]}
    assert "h" not in out and "hc" not in out                # inside a folder not carried
    assert out["dot"] == "Projekt 2.0"
    strict = map_folders(fs, SPECIAL, "/", strict=frozenset({"dot"}))["dot"]
    assert strict.target == "Projekt 2_0" and "refused" in (strict.reason or "")
    # a server without \Archive: Outlook's Archive becomes an ordinary folder named as in Outlook
    assert map_folders([FolderIn("a", None, "Archive", "archive", True)], {}, ".")["a"].target == "Archive"
    assert skip_reason(well_known=None, hidden=True, hidden_folders=False, deleted_items=True, junk=True)
    assert skip_reason(well_known="outbox", hidden=False, hidden_folders=True, deleted_items=True, junk=True)
    assert skip_reason(well_known="junkemail", hidden=False, hidden_folders=False, deleted_items=True, junk=False)


def test_ledger_reconciles_a_reread_and_moves_in_either_order(tmp_path):
    s = StateStore(tmp_path / "m.db")
    a = s.upsert_mail_folder(user_id="u", upn="a@x", source_id="A", parent_id=None, path='["A"]', well_known=None,
                             hidden=False, total=2, unread=0, imap_user="alice")
    b = s.upsert_mail_folder(user_id="u", upn="a@x", source_id="B", parent_id=None, path='["B"]', well_known=None,
                             hidden=False, total=0, unread=0, imap_user="alice")

    def fact(i: str, flags: str = "") -> MessageFacts:
        return MessageFacts(i, f"<{i}@x>", "2020-01-01T00:00:00Z", flags, 10, "message", None)

    g = s.begin_mail_folder_scan(a.id)
    assert s.upsert_mail_messages(a.id, "u", g, [fact("m1"), fact("m2")]) == (2, 0)
    s.finish_mail_folder_scan(a.id, g, "link")
    # an expired link: the folder is read again; the same ids refresh their rows, one flag changed
    g = s.begin_mail_folder_scan(a.id)
    assert s.upsert_mail_messages(a.id, "u", g, [fact("m1", "\\Seen"), fact("m2")]) == (0, 1)
    assert s.finish_mail_folder_scan(a.id, g, "link2") == 0
    assert s.scalar("SELECT COUNT(*) FROM mail_messages") == 2
    # a move: B's addition first, then A's removal must not mark it gone
    assert s.upsert_mail_messages(b.id, "u", b.scan_generation, [fact("m2")]) == (0, 1)
    assert s.mark_mail_removed(a.id, ["m2"]) == 0
    m2 = next(s.iter_mail_messages(folder_id=b.id))
    assert m2.folder_id == b.id and not m2.gone
    assert s.mark_mail_removed(a.id, ["m1"]) == 1
    s.close()
