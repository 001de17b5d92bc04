"""`sync` through the real CLI against the Graph and Nextcloud sandboxes: every change kind, alone and combined.

After each sequence the target equals the source byte for byte with mtimes (minus the documented policies), no
byte of a moved file is sent again, and `verify` exits 0.
"""

from __future__ import annotations

from tests.conftest import run_cli
from tests.copy_support import db
from tests.sync_support import (
    assert_target_equals_source,
    copied,
    files_in,
    find,
    folders,
    source_files,
    sync,
    verify_ok,
    waiting,
)


def _puts(nc) -> list[str]:
    return [p for m, p, _c in nc.requests if m == "PUT"]


def test_the_issue_journey_edits_renames_moves_deletes_and_a_moved_folder(tmp_path, graph_sandbox_factory,
                                                                          nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    files = sorted(source_files(g, drive).values(), key=lambda t: t["path"])
    top = [t for t in files if t["path"].count("/") == 1]
    deep = [t for t in files if t["path"].count("/") >= 2]
    folder = max(folders(g, drive), key=lambda f: len(files_in(g, drive, f["path"])))
    inside = {t["id"] for t in files_in(g, drive, folder["path"])}
    loose = [t for t in files if t["id"] not in inside]
    edited, renamed, deleted, moved = loose[0:2], loose[2:4], loose[4:6], loose[6]
    for t in edited:
        g.mutate.modify(drive, t["id"], size=t["size"] + 7)
    for i, t in enumerate(renamed):
        g.mutate.rename(drive, t["id"], f"renamed-{i}.txt")
    for t in deleted:
        g.mutate.delete(drive, t["id"])
    g.mutate.move(drive, moved["id"], "/" if moved["path"].count("/") > 1 else folders(g, drive)[0]["path"])
    for i in range(3):
        g.mutate.add_file(drive, "/", f"new-{i}.txt", 100 + i)
    g.mutate.move(drive, folder["id"], "/", name="moved-folder")
    assert top and deep and len(inside) >= 3

    r = run_cli("scan", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    w = waiting(tmp_path)
    assert w["new"] == 3 and w["deleted"] == 2 and w["edited"] == 2 and w["moved"] >= 3 + len(inside)
    r = run_cli("--json", "status", cwd=tmp_path, env=env)
    assert '"waiting"' in r.stdout and "sync" in r.stdout

    puts_before = len(_puts(nc))
    out = sync(tmp_path, env)
    assert out["counts"]["edit"] == 2 and out["counts"]["new-file"] == 3 and out["counts"]["delete"] == 2
    assert out["counts"]["inside"] >= len(inside) and not out["conflicts"]
    assert out["applied"]["moved_folders"] == 1 and out["applied"]["moved_files"] == 3
    # only the new and edited files were uploaded: the moved folder's files were not sent again
    assert len(_puts(nc)) - puts_before <= 5
    assert_target_equals_source(g, nc, drive)
    assert all(v == 0 for v in waiting(tmp_path).values())
    verify_ok(tmp_path, env)
    # nothing left: a second sync finds nothing and writes nothing
    before = len(nc.requests)
    out = sync(tmp_path, env)
    assert not any(out["counts"].values())
    assert not [x for x in nc.requests[before:] if x[0] not in ("PROPFIND", "GET", "OPTIONS")]
    with db(tmp_path) as s:
        actions = {a["action"] for a in s.iter_audit()}
    assert {"move", "delete", "upload"} <= actions
