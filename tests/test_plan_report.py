"""Plan report renderers: hostile names are escaped everywhere, and the HTML opens in headless Chromium."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from html import unescape as html_unescape
from pathlib import Path

import pytest

from benchmarks.plan_report_screenshot import sample_doc
from migrate.reports.plan import render_html, render_markdown, write_plan_reports

EVIL = "<script>alert(1)</script>.txt"


def test_hostile_names_render_as_text(tmp_path: Path) -> None:
    doc = sample_doc()
    html = render_html(doc)
    assert "<script>" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.txt" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external assets
    assert "<link" not in html and "src=" not in html
    md = render_markdown(doc)
    assert "<script>" not in md and "&lt;script>" in md
    folder = write_plan_reports(doc, tmp_path / "reports")
    latest = tmp_path / "reports" / "plan-latest"
    assert (latest / "plan.html").read_text() == (folder / "plan.html").read_text()
    rows = list(csv.reader(open(folder / "renames.csv", encoding="utf-8")))
    assert any(EVIL in cell for r in rows for cell in r)
    assert any(cell.startswith("'=") for r in rows for cell in r)  # no spreadsheet formula injection
    assert json.loads((folder / "conflicts.json").read_text()) == doc["conflicts"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (the Makefile installs it)")
def test_html_opens_in_headless_chromium(tmp_path: Path) -> None:
    folder = write_plan_reports(sample_doc(), tmp_path, output=tmp_path / "out")
    png = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,2000",
           (folder / "plan.html").as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    assert png.exists() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_short_durations_read_in_seconds_never_as_0_0_min() -> None:
    from migrate.engine.groupware.run import estimate_text
    from migrate.reports.text import human_duration

    text = estimate_text({"rescan_seconds_at_outlook_limit": 0.4, "rescan_minutes_at_outlook_limit": 0.0,
                          "rescan_graph_requests": 7, "copy_seconds": 95.0, "copy_minutes": 1.6,
                          "copy_objects_per_second_measured": 12.0})
    assert "a rescan takes at least 1 s (7 Graph requests" in text and "copy: about 1 min 35 s" in text, text
    assert "0.0" not in text
    assert human_duration(0) == "0 s" and human_duration(7200) == "2 h 0 min"
    # a plan stored by an earlier version (minutes only) still reads
    assert "a rescan takes at least 6 s" in estimate_text({"rescan_minutes_at_outlook_limit": 0.1,
                                                           "rescan_graph_requests": 3})


def _team_folder_doc() -> dict:
    from migrate.engine.files.teamfolders import FolderPlan, GroupGrant

    doc = sample_doc()
    doc["team_folders"] = [FolderPlan(
        "Archive", ["sites.csv:3"], ["the library Archive"], "admin", exists=True, seen_as="team folder",
        writable=True, current_groups={"staff": 31}).as_dict(), FolderPlan(
        "Projects", ["sites.csv:2"], ["the library Documents of https://x.sharepoint.com/sites/Projects"], "admin",
        seen_as="nothing", action="create", changes=["create team folder 'Projects'",
                                                    "give 'admin' access through group 'm365-migration'"],
        grants=[GroupGrant("projects-staff", 15, False, ["Projects Members"])],
        not_carried=["group 'Projects Visitors' has no row in groups.csv"],
        notes=["the site's owners group manages the folder's ACLs"]).as_dict()]
    doc["quota"] = [{"target_user": "alice", "planned_bytes": 10, "free": -3, "total": -3, "verdict": "unlimited"},
                    {"target_user": "bob", "planned_bytes": 10, "free": 5 * 2**30, "total": 6 * 2**30,
                     "verdict": "fits"},
                    {"target_user": "carol", "planned_bytes": 10, "free": None, "total": None, "verdict": "unknown"}]
    return doc


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}")
    return html[start:html.index("</table>", start)]


def test_team_folders_and_quota_tables_read_as_words() -> None:
    html = render_html(_team_folder_doc())
    team = _section(html, "Team folders")
    heads = re.findall(r"<th>([^<]*)</th>", team)
    assert heads == ["team folder", "sites.csv rows", "written by", "what the writer sees", "copy will", "changes",
                     "groups and rights", "not carried over", "notes"], heads
    assert "writer_sees" not in html and "not_carried<" not in html
    assert "<td>staff: read write share delete</td>" in team  # the folder's groups in words, not 31
    quota = _section(html, "Quota")
    cells = re.findall(r"<td(?: class=n)?>([^<]*)</td>", quota)
    assert ["alice", "10 B", "unlimited", "unlimited"] == cells[0:4], cells
    assert cells[4:8] == ["bob", "10 B", "5.0 GiB", "fits"] and cells[8:12] == ["carol", "10 B", "unknown", "unknown"]
    md = render_markdown(_team_folder_doc())
    assert "| team folder | sites.csv rows | written by | what the writer sees |" in md
    assert "| alice | 10 B | unlimited | unlimited |" in md


MEASURE = """<script>
const broken = [];
for (const th of document.querySelectorAll('th')) {
  const node = th.firstChild; if (!node) continue;
  let at = 0;
  for (const word of node.textContent.split(' ')) {
    const r = document.createRange(); r.setStart(node, at); r.setEnd(node, at + word.length);
    if (r.getClientRects().length > 1) broken.push(node.textContent + ' | ' + word);
    at += word.length + 1;
  }
}
document.body.setAttribute('data-broken', JSON.stringify(broken));
document.body.setAttribute('data-headings', String(document.querySelectorAll('th').length));
</script></body>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (the Makefile installs it)")
def test_no_heading_breaks_inside_a_word_in_chromium(tmp_path: Path) -> None:
    """Rendered at a narrow window, as a laptop shows it: each heading wraps between words, never inside one."""
    page = render_html(_team_folder_doc())
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)  # let the measuring script run
    (tmp_path / "plan.html").write_text(page.replace("</body>", MEASURE), encoding="utf-8")
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1200", "--dump-dom",
           (tmp_path / "plan.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-broken="([^"]*)"', dom)
    assert found and int(re.search(r'data-headings="(\d+)"', dom).group(1)) > 40, dom[:2000]
    assert json.loads(html_unescape(found.group(1))) == []


def test_share_permissions_read_as_words_for_people_and_as_the_bitmask_for_scripts(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["shares"] = [{"owner": "alice", "path": "/Budget.xlsx", "kind": "user", "share_with": "bob",
                      "permissions": 3, "expire_date": None, "password": None, "grants": 2, "from_grants": "",
                      "note": "", "drive_id": "b!drive0", "item_id": "i9"}]
    assert "<td>read, edit</td>" in _section(render_html(doc), "Share plan")
    assert "| bob | read, edit |" in render_markdown(doc)
    folder = write_plan_reports(doc, tmp_path / "reports")
    rows = list(csv.DictReader(open(folder / "shares.csv", encoding="utf-8")))
    assert rows[0]["permissions"] == "3"
