"""`sync`'s round trips at the target: one Depth-1 listing for a folder receiving several new files, no MKCOL
before a MOVE into an existing folder, and a MOVE answered 409 (parent missing) makes the parent and moves again.
Through the real CLI against the Graph and Nextcloud sandboxes."""

from __future__ import annotations

from urllib.parse import unquote

import httpx

from tests.sync_support import (
    assert_target_equals_source,
    copied,
    folders,
    loose,
    source_files,
    sync,
    target_files,
    verify_ok,
)


def _since(nc, before: int) -> list[tuple[str, str, int]]:
    return [(m, unquote(p), s) for m, p, s in nc.requests[before:]]


def test_new_files_in_one_folder_are_looked_up_with_one_listing(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    busy, quiet = sorted(folders(g, drive), key=lambda f: f["path"])[:2]
    for i in range(4):
        g.mutate.add_file(drive, busy["path"], f"batch-{i}.txt", 50 + i)
    g.mutate.add_file(drive, quiet["path"], "alone.txt", 10)
    # a person's file already where one of the new files goes: the listing must find it, and ours goes beside
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as http:
        taken = busy["path"].strip("/") + "/batch-3.txt"
        assert http.put(nc.dav_url("alice", taken), content=b"a person's file").status_code == 201
    before = len(nc.requests)
    out = sync(tmp_path, env, code=3)
    assert out["counts"]["new-file"] == 5
    assert [c["problem"] for c in out["conflicts"]] == ["a file or folder not written by us is at this name"]
    reqs = _since(nc, before)
    # before the copy pool writes them: no stat per file in the busy folder, one for the lone file
    first_put = next(i for i, (m, _, _) in enumerate(reqs) if m in ("PUT", "MKCOL", "POST"))
    stats = [p for m, p, _ in reqs[:first_put] if m == "PROPFIND"]
    assert not [p for p in stats if "/batch-" in p], stats
    assert sum(p.rstrip("/").endswith(busy["path"].rstrip("/")) for p in stats) == 1, stats
    assert sum(p.endswith("/alone.txt") for p in stats) == 1, stats
    assert nc.file_info("alice", taken)["size"] == len(b"a person's file")
    src = source_files(g, drive)
    (ours,) = [p for p in target_files(nc, "alice") if "(conflict " in p]
    assert nc.file_info("alice", ours)["sha1"] == src[taken]["sha1"]
    for i in range(3):
        p = busy["path"].strip("/") + f"/batch-{i}.txt"
        assert nc.file_info("alice", p)["sha1"] == src[p]["sha1"]


def test_a_move_into_an_existing_folder_sends_no_mkcol(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    dest = sorted(folders(g, drive), key=lambda f: f["path"])[0]
    a, b = loose(g, drive)[:2]
    g.mutate.move(drive, a["id"], dest["path"])
    g.mutate.rename(drive, b["id"], "renamed in place.txt")
    before = len(nc.requests)
    out = sync(tmp_path, env)
    assert out["applied"]["moved_files"] == 2
    reqs = _since(nc, before)
    assert [m for m, _, _ in reqs].count("MOVE") == 2
    assert "MKCOL" not in [m for m, _, _ in reqs]
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)


def test_a_move_whose_parent_is_missing_makes_it_and_moves_again(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    dest = sorted(folders(g, drive), key=lambda f: f["path"])[0]
    (a,) = loose(g, drive)[:1]
    g.mutate.move(drive, a["id"], dest["path"])
    nc.fault("MOVE", 409)  # as Nextcloud answers a MOVE into a folder that is not there
    before = len(nc.requests)
    out = sync(tmp_path, env)
    assert out["applied"]["moved_files"] == 1 and not out["failed"] and not out["conflicts"]
    reqs = [(m, s) for m, _, s in _since(nc, before) if m in ("MOVE", "MKCOL")]
    assert reqs[0] == ("MOVE", 409) and reqs[-1][0] == "MOVE" and reqs[-1][1] in (201, 204)
    assert ("MKCOL", 405) in reqs or ("MKCOL", 201) in reqs  # the parent made (or found there) before the retry
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)
