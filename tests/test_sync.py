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
    folders,
    loose,
    source_files,
    sync,
    verify_ok,
    waiting,
)


def _writes(nc) -> dict[int, tuple]:
    """fileid → (upload time, etag) of every file in alice's tree: a file written again changes both."""
    out = {}
    for p in _tree(nc):
        info = nc.file_info("alice", p)
        out[info["fileid"]] = (info["upload_time"], info["etag"], info["sha1"])
    return out


def _rewritten(before: dict[int, tuple], after: dict[int, tuple]) -> set[int]:
    return {f for f, v in after.items() if f in before and before[f] != v}


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

    stamps = _writes(nc)
    out = sync(tmp_path, env)
    assert out["counts"]["edit"] == 2 and out["counts"]["new-file"] == 3 and out["counts"]["delete"] == 2
    assert out["counts"]["inside"] >= len(inside) and not out["conflicts"]
    assert out["applied"]["moved_folders"] == 1 and out["applied"]["moved_files"] == 3
    # only the new and edited files were uploaded: the moved folder's files were not sent again
    after = _writes(nc)
    assert len(_rewritten(stamps, after)) == 2 and len(set(after) - set(stamps)) == 3
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


def test_combined_changes_rename_edit_new_folder_folder_delete_case_and_nfd_renames(tmp_path, graph_sandbox_factory,
                                                                                    nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b, c, d = loose(g, drive)[:4]
    subs = sorted(folders(g, drive), key=lambda f: f["path"])
    gone = subs[0]
    moving = next(f for f in subs[1:] if not f["path"].startswith(gone["path"] + "/"))
    assert files_in(g, drive, gone["path"]) and files_in(g, drive, moving["path"])
    g.mutate.rename(drive, a["id"], "renamed and edited.txt")           # rename + edit
    g.mutate.modify(drive, a["id"], size=a["size"] + 3)
    new = g.mutate.add_folder(drive, "/", "New folder")                 # move into a new folder
    g.mutate.move(drive, b["id"], new["path"])
    g.mutate.delete(drive, gone["id"])                                  # delete a folder with files
    g.mutate.move(drive, moving["id"], "/", name="Moved then edited")   # move a folder, then edit inside it
    inner = files_in(g, drive, "/Moved then edited")[0]
    g.mutate.modify(drive, inner["id"], size=inner["size"] + 1)
    g.mutate.rename(drive, c["id"], c["path"].rsplit("/", 1)[1].upper())  # case-only rename
    g.mutate.rename(drive, d["id"], "Cafe\u0301.txt")                    # NFD name: NFC at the target
    out = sync(tmp_path, env)
    assert not out["conflicts"] and not out["failed"]
    assert out["applied"]["deleted"] == 1  # the whole folder in one DELETE, its files with it
    assert_target_equals_source(g, nc, drive)
    assert nc.file_info("alice", "Café.txt") is not None
    verify_ok(tmp_path, env)
    # the NFD twin: renaming to the NFC spelling changes nothing at the target, and nothing waits afterwards
    g.mutate.rename(drive, d["id"], "Café.txt")
    before = len(nc.requests)
    out = sync(tmp_path, env)
    assert not [x for x in nc.requests[before:] if x[0] in ("MOVE", "PUT", "DELETE")]
    assert all(v == 0 for v in waiting(tmp_path).values())


def test_target_side_conflicts_keep_both_and_list_both_versions(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    import httpx

    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b, c, d, e = loose(g, drive)[:5]
    name = lambda t: t["path"].lstrip("/")  # noqa: E731
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as http:
        # edited there, then edited at the source: the person's version stays, ours goes beside it
        assert http.put(nc.dav_url("alice", name(a)), content=b"the person's edit").status_code == 204
        g.mutate.modify(drive, a["id"], size=a["size"] + 5)
        # edited there, then deleted at the source: kept
        assert http.put(nc.dav_url("alice", name(b)), content=b"still needed").status_code == 204
        g.mutate.delete(drive, b["id"])
        # deleted there, then renamed at the source: copied again at the new name
        assert http.delete(nc.dav_url("alice", name(c))).status_code == 204
        g.mutate.rename(drive, c["id"], "renamed after a target delete.txt")
        # a new file at the source where a person already put a file of the same name
        assert http.put(nc.dav_url("alice", "report.txt"), content=b"a person's report").status_code == 201
        g.mutate.add_file(drive, "/", "report.txt", 321)
        # edited there, then moved at the source: the person's file stays, the source's is copied to the new path
        assert http.put(nc.dav_url("alice", name(d)), content=b"edited before the move").status_code == 204
        g.mutate.rename(drive, d["id"], "moved after a target edit.txt")
    out = sync(tmp_path, env, code=3)
    problems = sorted(x["problem"] for x in out["conflicts"])
    assert len(problems) == 5, problems
    assert all(x["target_version"] and x["source_version"] for x in out["conflicts"])
    assert nc.file_info("alice", name(a))["size"] == len(b"the person's edit")
    assert nc.file_info("alice", name(b))["size"] == len(b"still needed")
    assert nc.file_info("alice", "report.txt")["size"] == len(b"a person's report")
    assert nc.file_info("alice", name(d))["size"] == len(b"edited before the move")
    conflict_copies = [p for p in _tree(nc) if "(conflict " in p]
    assert len(conflict_copies) == 2  # a's new version and the new report.txt, beside the persons' files
    src = source_files(g, drive)
    a_copy = next(p for p in conflict_copies if p.startswith(name(a).rsplit(".", 1)[0]))
    assert nc.file_info("alice", a_copy)["sha1"] == src[name(a)]["sha1"]
    assert nc.file_info("alice", "moved after a target edit.txt")["sha1"] == src["moved after a target edit.txt"]["sha1"]
    assert nc.file_info("alice", "renamed after a target delete.txt")["sha1"] == \
        src["renamed after a target delete.txt"]["sha1"]
    # a later plan (which lays every path out again) keeps the conflict names: verify still finds our files
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    verify_ok(tmp_path, env)
    # the conflict copies hold the source's bytes; a later sync leaves everything as it is
    out = sync(tmp_path, env)
    assert not any(out["counts"].values())


def _tree(nc) -> list[str]:
    root = nc.state.home("alice")
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


def test_dry_run_lists_changes_in_every_format_and_writes_nothing(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    import csv
    import json

    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b = loose(g, drive)[:2]
    g.mutate.rename(drive, a["id"], "<script>x.txt")
    g.mutate.delete(drive, b["id"])
    before = len(nc.requests)
    out = sync(tmp_path, env, "--dry-run", "-o", str(tmp_path / "dry"))
    assert out["dry_run"] and out["counts"]["move"] == 1 and out["counts"]["delete"] == 1
    assert not [x for x in nc.requests[before:] if x[0] not in ("PROPFIND", "GET", "OPTIONS")]
    folder = tmp_path / "dry"
    rows = list(csv.DictReader((folder / "changes.csv").open()))
    assert {r["kind"] for r in rows} == {"move", "delete"}
    assert "&lt;script&gt;" in (folder / "sync.html").read_text()
    assert json.loads((folder / "sync.json").read_text())["counts"]["move"] == 1
    assert "| move |" in (folder / "sync.md").read_text()
    assert not waiting(tmp_path).get("deleted")  # the dry run recorded nothing, not even the delta pass
    out = sync(tmp_path, env)
    assert out["counts"]["move"] == 1 and out["applied"]["deleted"] == 1
    assert_target_equals_source(g, nc, drive)


def test_a_410_during_sync_reconciles_without_sending_unchanged_files(tmp_path, graph_sandbox_factory,
                                                                      nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b = loose(g, drive)[:2]
    g.mutate.modify(drive, a["id"], size=a["size"] + 9)
    g.mutate.rename(drive, b["id"], "after the resync.txt")
    g.expire_delta_tokens()
    stamps = _writes(nc)
    out = sync(tmp_path, env)
    assert out["scan"]["drives"][0]["mode"] == "resync"
    assert out["counts"]["edit"] == 1 and out["counts"]["move"] == 1
    after = _writes(nc)
    assert len(_rewritten(stamps, after)) == 1 and set(after) == set(stamps)
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)


def _run_until(tmp_path, env, nc, method: str, n: int):
    """Start `sync`, SIGKILL it as soon as the target has seen `n` more `method` requests; returns when dead."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    start = len(nc.requests)
    exe = Path(sys.executable).with_name("m365-migrate")
    p = subprocess.Popen([str(exe), "sync"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if sum(1 for x in nc.requests[start:] if x[0] == method) >= n:
            break
        time.sleep(0.001)
    assert p.poll() is None, f"sync finished before {n} {method} requests"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(0.3)


def test_kill_9_mid_sync_then_rerun_applies_the_rest_once(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    subs = sorted(folders(g, drive), key=lambda f: f["path"])
    top = [f for f in subs if f["path"].count("/") == 1]
    loose = [t for t in sorted(source_files(g, drive).values(), key=lambda t: t["path"])
             if not t["path"].startswith((top[0]["path"] + "/", top[1]["path"] + "/"))]
    assert len(loose) >= 12
    for i, t in enumerate(loose[:6]):
        g.mutate.rename(drive, t["id"], f"renamed {i}.txt")  # loose files may sit in subfolders: renamed there
    for t in loose[6:9]:
        g.mutate.modify(drive, t["id"], size=t["size"] + 11)
    for t in loose[9:12]:
        g.mutate.delete(drive, t["id"])
    g.mutate.rename(drive, top[0]["id"], "Renamed folder")
    g.mutate.delete(drive, top[1]["id"])
    for i in range(3):
        g.mutate.add_file(drive, "/Renamed folder", f"added {i}.txt", 50 + i)

    _run_until(tmp_path, env, nc, "MOVE", 3)       # among the moves
    _run_until(tmp_path, env, nc, "DELETE", 1)     # among the deletions (the uploads are done by then)
    out = sync(tmp_path, env)
    assert not out["conflicts"] and not out["failed"]
    assert not [p for p in _tree(nc) if "(conflict " in p], "a rerun mistook our own write for a person's"
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)
    assert all(v == 0 for v in waiting(tmp_path).values())
    r = run_cli("audit", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_move_an_earlier_run_made_but_did_not_record_is_recognised_not_a_conflict(tmp_path, graph_sandbox_factory,
                                                                                     nextcloud_sandbox):
    import httpx

    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a = loose(g, drive)[0]
    g.mutate.rename(drive, a["id"], "moved by a killed run.txt")
    # what a run killed right after its MOVE leaves: the file at the new path, the store still at the old one
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as http:
        r = http.request("MOVE", nc.dav_url("alice", a["path"].lstrip("/")),
                         headers={"Destination": nc.dav_url("alice", "moved by a killed run.txt")})
        assert r.status_code == 201
    out = sync(tmp_path, env)
    assert not out["conflicts"] and out["applied"]["moved_files"] == 1
    with db(tmp_path) as s:
        moves = [a for a in s.iter_audit() if a["action"] == "move"]
    assert '"resumed": true' in moves[-1]["detail"]
    assert not [p for p in _tree(nc) if "(conflict " in p]
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)


def test_deletions_keep_leaves_our_copies_and_lists_them(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc, deletions="keep")
    a = loose(g, drive)[0]
    folder = sorted(folders(g, drive), key=lambda f: f["path"])[0]
    inside = [t["path"].lstrip("/") for t in files_in(g, drive, folder["path"])]
    g.mutate.delete(drive, a["id"])
    g.mutate.delete(drive, folder["id"])
    before = len(nc.requests)
    out = sync(tmp_path, env)
    assert not [x for x in nc.requests[before:] if x[0] == "DELETE"]
    assert sorted(k["target_path"].lstrip("/") for k in out["kept"]) == sorted([a["path"].lstrip("/"),
                                                                                   folder["path"].lstrip("/")])
    assert out["applied"]["kept"] == 2 and not out["conflicts"]
    assert_target_equals_source(g, nc, drive, extra={a["path"].lstrip("/"), *inside})
    verify_ok(tmp_path, env)
    assert all(v == 0 for v in waiting(tmp_path).values())
    with db(tmp_path) as s:
        assert [x["action"] for x in s.iter_audit()].count("keep") == 2


def test_a_verify_before_sync_does_not_make_sync_send_moved_files_again(tmp_path, graph_sandbox_factory,
                                                                        nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    folder = max(folders(g, drive), key=lambda f: len(files_in(g, drive, f["path"])))
    g.mutate.rename(drive, folder["id"], "Renamed before verify")
    r = run_cli("scan", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("plan", cwd=tmp_path, env=env)  # lays the new paths out; the files are still at the old ones
    assert r.returncode in (0, 3), r.stderr
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    stamps = _writes(nc)
    out = sync(tmp_path, env)
    assert out["applied"]["moved_folders"] == 1 and out["applied"]["uploaded"] == 0
    after = _writes(nc)
    assert not _rewritten(stamps, after) and set(after) == set(stamps)
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)
