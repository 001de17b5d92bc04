"""`cutover --batch`: final sync, verify, share, a second delta that must be empty, and the batch's report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.copy_support import db
from tests.sync_support import assert_target_equals_source, copied, loose, source_files


def test_cutover_applies_the_final_changes_and_reports_the_batch_whole(tmp_path, graph_sandbox_factory,
                                                                       nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b, c = loose(g, drive)[:3]
    g.mutate.modify(drive, a["id"], size=a["size"] + 1)
    g.mutate.rename(drive, b["id"], "final name.txt")
    g.mutate.delete(drive, c["id"])
    r = run_cli("--json", "cutover", "--batch", "wave1", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["whole"] and not out["problems"]
    assert [s["step"] for s in out["steps"]] == ["final sync", "verify", "share", "second delta pass (must be empty)"]
    assert out["sync"]["applied"]["moved_files"] == 1 and out["sync"]["applied"]["deleted"] == 1
    assert out["verify"]["gaps"] == 0 and out["files"] == len(source_files(g, drive))
    assert_target_equals_source(g, nc, drive)
    folder = Path(out["reports"])
    assert folder.parent == tmp_path / "state" / "reports" and folder.name.startswith("cutover-wave1-")
    for name in ("cutover.md", "cutover.html", "cutover.json", "steps.csv", "conflicts.csv", "gaps.csv"):
        assert (folder / name).is_file(), name
    with db(tmp_path) as s:
        head = s.audit_head()
    assert head["hash"] and head["hash"] in (folder / "cutover.md").read_text()
    assert "WHOLE" in (folder / "cutover.html").read_text()


def test_a_change_after_the_freeze_is_reported_loudly_and_the_batch_is_not_whole(tmp_path, graph_sandbox_factory,
                                                                                  nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    late = loose(g, drive)[0]
    seen = g.stats()["requests"].get("delta", 0)
    exe = Path(sys.executable).with_name("m365-migrate")
    p = subprocess.Popen([str(exe), "cutover", "--batch", "wave1"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while g.stats()["requests"].get("delta", 0) <= seen and time.monotonic() < deadline:
        time.sleep(0.005)
    g.mutate.modify(drive, late["id"], size=late["size"] + 2)  # someone still had write access
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 3, stdout + stderr
    assert "CHANGED AFTER THE FREEZE" in stdout and late["path"].lstrip("/") in stdout
    report = next((tmp_path / "state" / "reports").glob("cutover-wave1-*"))
    data = json.loads((report / "cutover.json").read_text())
    assert not data["whole"] and data["late_changes"]["edited"] == 1
    assert any(i["path"] == late["path"].lstrip("/") for i in data["late_items"])
    # once the source is frozen for real, a rerun applies the late change and the batch is whole
    r = run_cli("cutover", "--batch", "wave1", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_target_equals_source(g, nc, drive)
