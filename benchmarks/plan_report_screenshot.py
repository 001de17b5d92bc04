"""Render a sample plan report and screenshot it with headless Chromium into benchmarks/results/plan_report.png."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from migrate.engine.plan import estimate
from migrate.store import StateStore
from migrate.store.mail import MessageFacts

RESULTS = Path(__file__).resolve().parent / "results"


def sample_doc() -> dict[str, Any]:
    """A plan document with hostile names in every list (also used by tests/test_plan_report.py)."""
    evil = "<script>alert(1)</script>.txt"
    drives = []
    for i, (kind, name, owner, size, status) in enumerate([
        ("onedrive", "OneDrive", "adele.vance@example.org", 7_400_000_000, "mapped"),
        ("onedrive", "OneDrive", "alex.wilber@example.org", 2_100_000_000, "mapped"),
        ("library", "Documents", "https://x.sharepoint.com/sites/HR", 12_900_000_000, "mapped"),
        ("team", "<b>Team</b> & Co", "https://x.sharepoint.com/sites/Team", 900_000_000, "mapped"),
        ("onedrive", "OneDrive", "diego@example.org", 3_300_000_000, "not-migrated"),
    ]):
        drives.append({"drive_id": f"b!drive{i}", "kind": kind, "name": name, "owner": owner, "batch": "wave1",
                       "status": status, "target_user": "alice" if status == "mapped" else None,
                       "target_root": "/" if status == "mapped" else None, "mapping_row": f"users.csv:{i + 2}",
                       "reason": "", "target_kind": "user", "files": 1000 + i, "bytes": size, "folders": 10,
                       "shared": 3, "largest": 10**8, "planned_files": 990 + i if status == "mapped" else 0,
                       "planned_bytes": size if status == "mapped" else 0, "renames": 2, "conflicts": 1,
                       "unsupported": 1, "already_files": 0, "already_bytes": 0})
    mapped = [d for d in drives if d["status"] == "mapped"]
    files, bytes_ = sum(d["planned_files"] for d in mapped), sum(d["planned_bytes"] for d in mapped)
    return {
        "generated_at": "2026-11-29 10:00:00 UTC", "state": "state/migration.db",
        "drives": drives,
        "renames": [{"drive_id": "b!drive0", "item_id": "i1", "source_path": f"Awkward/{evil}.part",
                     "source_name": f"{evil}.part", "target_name": f"{evil}_part", "target_path": f"/Awkward/{evil}_part",
                     "target_user": "alice", "reasons": ["forbidden extension '.part'"]},
                    {"drive_id": "b!drive0", "item_id": "i2", "source_path": "=HYPERLINK(\"x\")|a\\b",
                     "source_name": "=cmd|a\\b", "target_name": "=cmd|a_b", "target_path": "/=cmd|a_b",
                     "target_user": "alice", "reasons": ["forbidden character(s): '\\\\'"]}],
        "conflicts": [{"drive_id": "b!drive0", "item_id": "i3", "path": evil, "target_user": "alice",
                       "target_path": "/" + evil, "kind": "file", "source_size": 10, "target_size": 11,
                       "problem": "size differs (target 11 bytes, source 10 bytes)", "policy": "skip",
                       "action": "skip: left as it is, not copied", "renamed_to": None}],
        "unsupported": [{"drive_id": "b!drive0", "item_id": "i4", "path": "virus.exe", "kind": "file", "size": 7,
                         "reason": "flagged as malware by Microsoft 365: the download is blocked",
                         "action": "not copied"}],
        "unmapped": [{**drives[4], "files": 1004, "bytes": 3_300_000_000}],
        "shares": [],
        "not_carried_over": [{"category": "anonymous link", "action": "report", "owner": "alice", "source_path": evil,
                              "grant": "link", "link_scope": "anonymous", "roles": "read", "grantee": "",
                              "expires": None, "drive_id": "b!drive2", "item_id": "i5", "perm_id": "p5",
                              "reason": "anonymous link (policy anonymous_links = report)"}],
        "grants": [{"drive_id": "b!drive2", "item_id": "i5", "source_path": evil, "grant": "link",
                    "link_scope": "anonymous", "roles": "read", "grantee": "", "expires": None, "action": "report",
                    "share_type": None, "share_with": None, "permissions": None, "expire_date": None,
                    "password": None, "owner": "alice", "path": "/" + evil,
                    "reason": "anonymous link (policy anonymous_links = report)"}],
        "warnings": ["sample warning with <i>markup</i>"], "too_long_paths": [],
        "quota": [{"target_user": "alice", "planned_bytes": bytes_, "free": -3, "total": -3, "verdict": "unlimited"}],
        "batches": [{"batch": "wave1", "drives": 4, "files": files, "bytes": bytes_, "shared": 12,
                     "estimate": estimate(files, bytes_, 12, None)}],
        "estimate": estimate(files, bytes_, 12, None),
        "name_rules": {"max_name_bytes": 250}, "policies": {"on_conflict": "skip"},
        "checks": {"users_and_groups_checked": True},
        "summary": {"drives": 5, "drives_mapped": 4, "drives_unmapped": 1, "files": 5010,
                    "bytes": sum(d["bytes"] for d in drives), "files_mapped": 4006, "bytes_mapped": bytes_,
                    "planned_files": files, "planned_bytes": bytes_, "already_files": 0, "already_bytes": 0,
                    "renames": 2, "conflicts": 1, "unsupported": 1, "grants": 1, "shares_planned": 0,
                    "grants_shared": 0, "grants_not_carried_over": 1, "grants_dropped": 0, "grants_reported": 1,
                    "grants_not_needed": 0, "attention": True},
    }


MAIL_EVIL = "<script>alert(1)</script> & Co"


def seed_mail_state(state: Path) -> None:
    """Two mailboxes as a scan and a partial copy leave them: folders to any depth with a hostile name, a hidden
    folder, Outlook's Outbox, a message without MIME, one over the size limit, and an online archive."""
    with StateStore(state) as store:
        def folder(upn, sid, parent, path, wk=None, hidden=False, total=0, imap="adele"):
            return store.upsert_mail_folder(user_id=f"u-{upn}", upn=upn, source_id=sid, parent_id=parent,
                                            path=json.dumps(path), well_known=wk, hidden=hidden, total=total,
                                            unread=0, imap_user=imap)

        inbox = folder("adele@example.org", "f-in", None, ["Inbox"], "inbox", total=3)
        evil = folder("adele@example.org", "f-ev", "f-in", ["Inbox", MAIL_EVIL], total=2)
        slash = folder("adele@example.org", "f-sl", "f-in", ["Inbox", "A/B"], total=1)
        sent = folder("adele@example.org", "f-se", None, ["Sent Items"], "sentitems", total=1)
        hid = folder("adele@example.org", "f-hi", None, ["Hidden stuff"], hidden=True, total=4)
        out = folder("adele@example.org", "f-ob", None, ["Outbox"], "outbox", total=1)
        store.set_mail_folder(hid.id, skip_reason="hidden folder ([mail] hidden_folders = false)")
        store.set_mail_folder(out.id, skip_reason="Outbox (unsent items; nothing is ever sent by the migration)")
        store.set_mail_folder(sent.id, target_name="Sent", rename_reason="the server's \\Sent folder", created=1)
        bob = folder("bob@example.org", "b-in", None, ["Inbox"], "inbox", total=2, imap="bob")
        n = 0

        def msgs(f, count, size=1000, status=None, reason=None):
            nonlocal n
            facts = []
            for _ in range(count):
                n += 1
                facts.append(MessageFacts(f"m{n}", f"<m{n}@x>", None, "", size, "message", None))
            store.upsert_mail_messages(f.id, f.user_id, 1, facts)
            if status:
                for r in store.iter_mail_messages(folder_id=f.id):
                    if r.message_id in {x.message_id for x in facts}:
                        store.set_mail_message(r.id, status=status, reason=reason)

        msgs(inbox, 2, status="done")
        msgs(inbox, 1, size=80_000_000)                     # over [mail] max_message_size
        msgs(evil, 1, status="done")
        msgs(evil, 1, status="failed", reason="APPEND refused: NO [LIMIT]")
        msgs(slash, 1, status="skipped", reason="no MIME: Graph returned no content for this item")
        msgs(sent, 1)
        msgs(bob, 2)
        run = store.start_run("scan-mail")
        store.finish_run(run, "ok", {"archives": [{"user": "adele@example.org", "primary_bytes": 123_456, "items": 9}]})


def sample_mail_doc(folder: Path) -> dict[str, Any]:
    """The mail plan of the seeded state (plan_mail on a real state database in `folder`)."""
    from migrate.config import MailSettings
    from migrate.engine.mail.plan import plan_mail

    seed_mail_state(folder / "migration.db")
    with StateStore(folder / "migration.db", readonly=True) as store:
        return plan_mail(store, MailSettings(max_message_size=50_000_000), workers=2)


def _shot(page: Path, png: Path, profile: Path) -> None:
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,2000", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)


def main() -> None:
    from migrate.reports.plan import write_plan_reports

    RESULTS.mkdir(parents=True, exist_ok=True)
    png, mail_png = RESULTS / "plan_report.png", RESULTS / "mail_plan_report.png"
    with tempfile.TemporaryDirectory() as tmp:
        doc = sample_doc()
        doc["mail"] = sample_mail_doc(Path(tmp))   # plan --what files,mail: mail-plan.html beside plan.html
        folder = write_plan_reports(doc, Path(tmp), output=Path(tmp) / "out")
        _shot(folder / "plan.html", png, Path(tmp) / "profile")
        _shot(folder / "mail-plan.html", mail_png, Path(tmp) / "profile")
    ok = all(p.exists() and p.stat().st_size > 20_000 for p in (png, mail_png))
    (RESULTS / "plan_report_screenshot.json").write_text(json.dumps(
        {"png": str(png), "bytes": png.stat().st_size if png.exists() else 0, "mail_png": str(mail_png),
         "mail_bytes": mail_png.stat().st_size if mail_png.exists() else 0, "ok": ok}, indent=2))
    print(f"{png} {mail_png}" if ok else "screenshot failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
