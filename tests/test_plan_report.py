"""Plan report renderers: hostile names are escaped everywhere, and the HTML opens in headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
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
    from migrate.engine.groupware_run import estimate_text
    from migrate.reports.text import human_duration

    text = estimate_text({"rescan_seconds_at_outlook_limit": 0.4, "rescan_minutes_at_outlook_limit": 0.0,
                          "rescan_graph_requests": 7, "copy_seconds": 95.0, "copy_minutes": 1.6,
                          "copy_objects_per_second_measured": 12.0})
    assert "a rescan takes at least 1 s (7 Graph requests" in text and "copy: about 1 min 35 s" in text, text
    assert "0.0" not in text
    assert human_duration(0) == "0 s" and human_duration(7200) == "2 h 0 min"
