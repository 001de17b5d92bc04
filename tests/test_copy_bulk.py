"""`copy` of many small files through the real CLI: bulk upload to the Nextcloud sandbox, every guarantee kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.inventory_support import write_config

SPEC = dict(seed=11, users=2, sites=0, teams=0, files_per_drive=120, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=False, versions=False)
SMALL = 1024 * 1024


def _db(tmp_path: Path):
    from migrate.store import StateStore

    return StateStore(tmp_path / "state" / "migration.db", create=False)


@pytest.fixture
def world(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    nc = nextcloud_sandbox
    env = write_config(tmp_path, g)
    creds = tmp_path / "pw.csv"
    creds.write_text("user,app_password\n" + "".join(f"{u},{p}\n" for u, p in
                                                     {**nc.app_passwords, "admin": nc.admin[1]}.items()))
    os.chmod(creds, 0o600)
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{nc.url}"\ncredentials = "{creds}"\n'
                   'service_account = "admin"\n')
    assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
    r = run_cli("scan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stderr
    with _db(tmp_path) as s:
        upns = sorted(d["owner_upn"] for d in s.drives() if d["kind"] == "onedrive")
    m = tmp_path / "mappings"
    (m / "users.csv").write_text("source_upn,target_user,batch\n" + "".join(
        f"{u},{t},wave1\n" for u, t in zip(upns, ("alice", "bob"), strict=True)))
    (m / "sites.csv").write_text("source,target,batch\n")
    (m / "groups.csv").write_text("source_group,target_group\n")
    return g, nc, env


def _files(tmp_path: Path) -> list[dict]:
    with _db(tmp_path) as s:
        return [dict(r) for d in s.drives() for r in s.iter_items(d["id"], files_only=True) if r["target_path"]]


def test_small_files_go_in_bulk_requests_and_every_sha1_matches_the_source(tmp_path, world):
    g, nc, env = world
    before = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    sent = nc.requests[before:]
    bulk = [x for x in sent if x[0] == "POST" and x[1].rstrip("/") == "/remote.php/dav/bulk"]
    puts = [x for x in sent if x[0] == "PUT"]
    rows = _files(tmp_path)
    small = [x for x in rows if x["size"] <= SMALL]
    assert len(small) >= 150
    assert bulk and all(x[2] == 200 for x in bulk)
    assert len(bulk) <= len(small) // 20 + 4          # ≤ 100 files per request, a few partial batches per user
    # large files, and names a part header cannot carry (trailing blanks are stripped from header values)
    single = [x for x in rows if x["size"] > SMALL or x["target_path"] != x["target_path"].rstrip()]
    assert any(x["size"] <= SMALL for x in single)
    assert sorted(p for _m, p, _s in puts) == sorted(f"/remote.php/dav/files/{x['target_user']}{x['target_path']}"
                                                     for x in single)
    assert len(puts) < len(rows) // 10
    assert nc.file_info("alice", "Awkward/trailing space.txt") is None, "a stray file without the blank"
    assert summary["files_verified"] == len(rows) and not summary["failed"]

    truth = {(d, t["id"]): t for d, items in g.truth().items() for t in items}
    users = {"alice", "bob"}
    for row in rows:
        assert row["status"] == "verified", row
        want = truth[(row["drive_id"], row["item_id"])]["sha1"].lower()
        assert row["sha1"].lower() == want
        user = row["target_user"]
        assert user in users
        info = nc.file_info(user, row["target_path"])
        assert info is not None and info["sha1"].lower() == want and info["size"] == row["size"], row["path"]
        assert abs(info["mtime"] - int(row["mtime"])) <= 1
    with _db(tmp_path) as s:
        audits = [a for a in s.iter_audit() if a["action"] == "upload"]
    assert len(audits) == len(rows)
    assert sum(1 for a in audits if json.loads(a["detail"]).get("bulk")) == len(rows) - len(single)
    # every download URL came with a listing of many files (a delta pass asked for ids and URLs only), never
    # with a request per file: no `/content` redirect, no `$batch` of item requests
    asked = g.stats()["requests"]
    assert asked.get("content", 0) == 0 and asked.get("batch", 0) == 0, asked
    assert asked.get("download", 0) == len(rows), asked


def test_download_urls_fall_back_to_one_request_per_file_when_batch_fails(tmp_path, world):
    g, nc, env = world
    g.faults.set(route="delta", status=404)  # the pass that lends URLs fails at once: the files ask for their own
    g.faults.set(route="batch", status=500)  # every $batch fails
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = _files(tmp_path)
    assert all(x["status"] == "verified" for x in rows)
    assert g.stats()["requests"].get("content", 0) >= len(rows) - 5


def test_a_name_the_server_refuses_fails_alone_inside_its_batch(tmp_path, world, monkeypatch):
    g, nc, env = world
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    rows = _files(tmp_path)
    victim = next(x for x in rows if 0 < x["size"] <= SMALL and x["target_user"] == "alice"
                  and x["target_path"] == x["target_path"].rstrip())
    refused = victim["target_path"].rsplit("/", 1)[-1]

    from migrate.sandbox.nextcloud import names

    original = names.check_name

    def strict(name: str, *, own: bool = True) -> str | None:
        # The server refuses a name the published capabilities allow (an admin rule the client cannot know).
        return '"secret" is a forbidden file or folder name.' if name == refused else original(name, own=own)

    monkeypatch.setattr(names, "check_name", strict)
    before = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    assert [f["item_id"] for f in summary["failed"]] == [victim["item_id"]]
    sent = nc.requests[before:]
    assert any(x[0] == "POST" and x[1].rstrip("/") == "/remote.php/dav/bulk" for x in sent)

    after = {(x["drive_id"], x["item_id"]): x for x in _files(tmp_path)}
    bad = after[(victim["drive_id"], victim["item_id"])]
    assert bad["status"] == "failed"
    assert "forbidden file or folder name" in bad["last_error"], bad["last_error"]
    assert nc.file_info("alice", victim["target_path"]) is None
    others = [x for k, x in after.items() if k != (victim["drive_id"], victim["item_id"])]
    assert others and all(x["status"] == "verified" for x in others)
    truth = {(d, t["id"]): t["sha1"].lower() for d, items in g.truth().items() for t in items if t["sha1"]}
    for x in others:
        info = nc.file_info(x["target_user"], x["target_path"])
        assert info is not None and info["sha1"].lower() == truth[(x["drive_id"], x["item_id"])]


def test_a_name_a_part_header_cannot_carry_goes_one_by_one() -> None:
    """Control characters (and trailing blanks) do not survive a multipart header: such files are not batched."""
    from types import SimpleNamespace

    from migrate.engine.files.batch import Batcher

    target = SimpleNamespace(features=SimpleNamespace(bulk_upload=True), upload_many=None)
    b = Batcher(SimpleNamespace(target=target))  # type: ignore[arg-type]

    def item(path: str) -> dict[str, object]:
        return {"target_path": path, "size": 10, "name": path.rpartition("/")[2], "placed_path": None}

    assert b.eligible(item("a/plain name.txt"), "onedrive")
    for bad in ("a/tab\there.txt", "a/x\x1f.txt", "a/\x00", "a/blank.txt "):
        assert not b.eligible(item(bad), "onedrive"), bad
    assert b.eligible(item("a/del\x7f.txt"), "onedrive")  # only 0-31 are refused
