"""The mail plan as people read it: mail-plan.html beside mail-plan.md (hostile folder names render as text),
plan.html of `plan --what files,mail` linking to it, `status --what mail` per mailbox and `report plan` rendering
the mail plan again from the state database."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from benchmarks.plan_report_screenshot import MAIL_EVIL, seed_mail_state
from migrate.store import StateStore
from tests.conftest import run_cli

EVIL = MAIL_EVIL
UPN = "adele@example.org"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert run_cli("init", str(tmp_path)).returncode == 0
    cfg = tmp_path / "m365-migrate.toml"
    text = cfg.read_text()
    assert "\nmax_message_size = 0\n" in text
    cfg.write_text(text.replace("\nmax_message_size = 0\n", "\nmax_message_size = 50000000\n"))
    (tmp_path / "state").mkdir(exist_ok=True)
    seed_mail_state(tmp_path / "state" / "migration.db")
    return tmp_path


def _doc(project: Path) -> dict:
    from migrate.config import MailSettings
    from migrate.engine.mail.plan import plan_mail

    with StateStore(project / "state" / "migration.db", readonly=True) as store:
        return plan_mail(store, MailSettings(max_message_size=50_000_000), workers=2)


def test_mail_plan_lists_folders_targets_and_what_is_not_carried(project: Path) -> None:
    doc = _doc(project)
    adele = next(b for b in doc["mailboxes"] if b["user"] == UPN)
    rows = {r["folder"]: r for r in adele["folder_list"]}
    order = list(rows)
    assert order.index("Inbox") < order.index("Inbox / A/B") < order.index("Outbox"), order   # tree order
    assert rows["Inbox"]["target"] == "INBOX" and rows["Inbox"]["messages"] == 3
    assert rows[f"Inbox / {EVIL}"]["messages"] == 2 and rows[f"Inbox / {EVIL}"]["bytes"] == 2000
    assert rows["Sent Items"] == {**rows["Sent Items"], "target": "Sent", "target_state": "placed"}
    assert rows["Inbox / A/B"]["target"] == "INBOX/A_B" and rows["Inbox / A/B"]["target_state"] == "expected"
    assert "'/'" in rows["Inbox / A/B"]["note"]                              # the reason of the rename
    assert rows["Outbox"]["target_state"] == "not carried" and "Outbox" in rows["Outbox"]["note"]
    assert {r["folder"] for r in doc["renames"]} == {"Sent Items", "Inbox / A/B", f"Inbox / {EVIL}"}
    reasons = " | ".join(n["reason"] for n in doc["not_carried"])
    for why in ("hidden folder", "Outbox", "no MIME", "larger than [mail] max_message_size", "online archive",
                "123,456 bytes"):
        assert why in reasons, (why, reasons)
    e = doc["estimate"]
    assert e["mailboxes_in_parallel"] == 2 and e["seconds_all_mailboxes"] >= e["seconds_at_outlook_limit"] > 0
    assert doc["quota"]["needs"][0]["with_margin"] == int(adele["bytes"] * 1.1)


def test_mail_plan_html_escapes_every_tenant_name(project: Path, tmp_path: Path) -> None:
    from migrate.reports.mail_plan import render_mail_markdown, write_mail_plan

    folder = write_mail_plan(_doc(project), tmp_path / "out")
    page = (folder / "mail-plan.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "<link" not in page and "src=" not in page and "http://" not in page   # self-contained
    assert "Content-Security-Policy" in page and "<h2>Not carried, and why (" in page
    heads = re.findall(r"<h2>([^<]*)</h2>", page)
    assert f"{UPN} → adele (6 folders)" in heads and "Folders renamed at the server (3)" in heads, heads
    md = render_mail_markdown(_doc(project))
    assert "<script>" not in md and "&lt;script>alert(1)&lt;/script> & Co" in md
    assert (folder / "mail-plan.md").read_text() == md
    rows = list(csv.DictReader(open(folder / "mail-not-carried.csv", encoding="utf-8")))
    assert {r["folder"] for r in rows} >= {"Hidden stuff", "Outbox", "online archive", "Inbox / A/B"}


def test_plan_status_and_report_through_the_cli(project: Path) -> None:
    r = run_cli("--json", "plan", "--what", "mail", cwd=project)
    assert r.returncode == 3, r.stderr        # things to decide: exit 3 (attention)
    doc = json.loads(r.stdout)
    reports = Path(doc["reports"])
    assert (reports / "mail-plan.html").is_file() and (reports / "mail-plan.md").is_file()
    assert "&lt;script&gt;" in (reports / "mail-plan.html").read_text()

    text = run_cli("plan", "--what", "mail", cwd=project)
    assert "mail-plan.html" in text.stdout and "folder renamed: " in text.stdout, text.stdout

    st = run_cli("--json", "status", "--what", "mail", cwd=project)
    boxes = {b["user"]: b for b in json.loads(st.stdout)["mail"]}
    a = boxes[UPN]
    assert (a["done"], a["left"], a["failed"]) == (3, 2, 1), a   # left: the large one and Sent
    assert a["not_carried"] == 1 + 4 + 1 and a["statuses"]["skipped"] == 1   # no MIME + hidden + Outbox
    assert boxes["bob@example.org"]["left"] == 2
    st = run_cli("status", "--what", "mail", cwd=project)
    assert f"{UPN}: 3 of 7 messages done, 2 left, 1 failed, 6 not carried" in st.stdout, st.stdout
    assert "failed: " in st.stdout and "NO [LIMIT]" in st.stdout
    # plain `status` (files) says mail is there too, and where to look
    plain = run_cli("status", cwd=project)
    assert "mail: 2 mailboxes, 3 of 9 messages done, 4 left, 1 failed, 6 not carried" in plain.stdout, plain.stdout
    assert json.loads(run_cli("--json", "status", cwd=project).stdout)["mail"]["failed"] == 1

    # the mail plan rendered again from the state database, into a fresh folder
    again = run_cli("--json", "report", "plan", "-o", str(project / "again"), cwd=project)
    assert again.returncode == 3, again.stderr
    assert json.loads(again.stdout)["totals"] == doc["totals"]
    assert (project / "again" / "mail-plan.html").read_text().count("<tr>") == \
        (reports / "mail-plan.html").read_text().count("<tr>")


def test_files_plan_html_links_to_the_mail_plan(tmp_path: Path, project: Path) -> None:
    from benchmarks.plan_report_screenshot import sample_doc
    from migrate.reports.plan import render_markdown, write_plan_reports

    doc = sample_doc()
    doc["mail"] = _doc(project)
    folder = write_plan_reports(doc, tmp_path / "reports")
    page = (folder / "plan.html").read_text()
    assert '<a href="mail-plan.html">mail-plan.html</a>' in page and "<h2>Mail (2 mailboxes)</h2>" in page
    assert "<script" not in page.lower()
    latest = tmp_path / "reports" / "plan-latest"
    for name in ("mail-plan.html", "mail-plan.md", "mail-plan.json", "mail-not-carried.csv"):
        assert (folder / name).is_file() and (latest / name).is_file(), name   # the link works in both
    assert "## Mail (2 mailboxes)" in render_markdown(doc) and "(mail-plan.html)" in render_markdown(doc)
    # `report plan` renders a stored files+mail plan again with its mail part
    with StateStore(project / "state" / "migration.db") as store:
        run = store.start_run("plan")
        store.finish_run(run, "attention", {"plan": doc, "attention": True})
    r = run_cli("report", "plan", "-o", str(tmp_path / "again"), cwd=project)
    assert r.returncode == 3 and "mail-plan.html" in r.stdout, r.stdout + r.stderr
    assert unescape((tmp_path / "again" / "mail-plan.html").read_text()).count(EVIL) >= 2
    assert '<a href="mail-plan.html">' in (tmp_path / "again" / "plan.html").read_text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (the Makefile installs it)")
def test_mail_plan_html_opens_in_headless_chromium(project: Path, tmp_path: Path) -> None:
    from migrate.reports.mail_plan import write_mail_plan

    folder = write_mail_plan(_doc(project), tmp_path / "out")
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (folder / "mail-plan.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in dom and "<script>alert" not in dom
