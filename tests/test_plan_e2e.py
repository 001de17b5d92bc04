"""`plan` and `report plan` through the real CLI against the Graph sandbox tenant and the Nextcloud sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from migrate.names import is_valid
from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.inventory_support import write_config

SPEC = dict(seed=7, users=4, sites=2, teams=1, files_per_drive=25, max_depth=3, no_mysite_users=1)
READS = {"PROPFIND", "GET", "OPTIONS", "HEAD"}


def _setup(tmp_path: Path, g, nc) -> dict[str, str]:
    env = write_config(tmp_path, g)
    cfg = tmp_path / "m365-migrate.toml"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    creds = secrets / "pw.csv"
    creds.write_text("user,app_password\n" + "".join(f"{u},{p}\n" for u, p in
                                                     {**nc.app_passwords, "admin": nc.admin[1]}.items()))
    os.chmod(creds, 0o600)
    cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{nc.url}"\ncredentials = "{creds}"\n'
                   'service_account = "admin"\n')
    assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
    r = run_cli("scan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stderr
    return env


def _map(tmp_path: Path, users: dict[str, str], sites: str = "") -> None:
    m = tmp_path / "mappings"
    (m / "users.csv").write_text("source_upn,target_user,batch\n" + "".join(f"{k},{v},wave1\n" for k, v in users.items()))
    (m / "sites.csv").write_text("source,target,batch\n" + sites)
    (m / "groups.csv").write_text("source_group,target_group\n")


def _db(tmp_path: Path):
    from migrate.store import StateStore

    return StateStore(tmp_path / "state" / "migration.db", create=False)


@pytest.fixture
def world(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    env = _setup(tmp_path, g, nextcloud_sandbox)
    with _db(tmp_path) as s:
        onedrives = [d for d in s.drives() if d["kind"] == "onedrive"]
        libs = [d for d in s.drives() if d["kind"] != "onedrive"]
    upns = sorted(d["owner_upn"] for d in onedrives)
    users = {upns[0]: "alice", upns[1]: "bob"}
    users.update({u: "" for u in upns[2:]})
    _map(tmp_path, users, f"{libs[0]['id']},user:carol:/Library,wave2\n")
    return g, nextcloud_sandbox, env, users, libs[0]


def _plan(tmp_path: Path, env, *args: str) -> dict:
    r = run_cli("--json", "plan", *args, cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return json.loads((tmp_path / "state" / "reports" / "plan-latest" / "plan.json").read_text())


def test_plan_reads_only_counts_match_truth_and_renames_are_stable(tmp_path, world):
    g, nc, env, users, lib = world
    before = len(nc.requests)
    doc = _plan(tmp_path, env)
    sent = nc.requests[before:]
    assert sent, "plan must look at the target"
    writes = [r for r in sent if r[0] not in READS]
    assert writes == [], writes
    assert all(not p.startswith("/remote.php/dav/uploads") for _m, p, _s in sent)

    truth = g.truth()
    for d in doc["drives"]:
        rows = [r for r in truth[d["drive_id"]] if not r["is_folder"] and not r.get("is_package")]
        assert d["files"] == len(rows), d["name"]
        assert d["bytes"] == sum(r.get("listed_size", r.get("size")) or 0 for r in rows), d["name"]
    assert doc["summary"]["files"] == sum(d["files"] for d in doc["drives"])

    # every awkward name of a migrated drive is renamed per the rules, and the rename is stable
    with _db(tmp_path) as s:
        mapped = [d["drive_id"] for d in doc["drives"] if d["status"] == "mapped"]
        bad = {(r["drive_id"], r["item_id"]) for dr in mapped for r in s.iter_items(dr)
               if r["parent_id"] and not is_valid(r["name"]) and r["target_path"]}
        first = {(r["drive_id"], r["item_id"]): r["target_path"] for dr in mapped for r in s.iter_items(dr)}
    renamed = {(r["drive_id"], r["item_id"]) for r in doc["renames"]}
    assert bad and bad <= renamed
    doc2 = _plan(tmp_path, env)
    assert doc2["renames"] == doc["renames"]
    with _db(tmp_path) as s:
        second = {(r["drive_id"], r["item_id"]): r["target_path"] for dr in mapped for r in s.iter_items(dr)}
    assert first == second

    # unmapped users are listed; the unmapped library and the OneNote/malware items too
    listed = {u["owner"] for u in doc["unmapped"]}
    assert {u for u, t in users.items() if not t} <= listed
    assert any("malware" in u["reason"] for u in doc["unsupported"])
    # anonymous links are never planned as public links under the default policy
    anon = [s for s in doc["grants"] if s["link_scope"] == "anonymous"]
    assert all(s["action"] != "create" for s in anon)
    assert not any(s["share_type"] == 3 for s in doc["shares"])
    ext = [s for s in doc["grants"] if s["grant"] == "external"]
    assert all(s["action"] in ("report", "drop", "none") for s in ext)

    # report plan re-renders the same plan from the store, contacting no server
    n = len(nc.requests)
    r = run_cli("--json", "report", "plan", "--output", str(tmp_path / "again"), cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stderr
    assert json.loads((tmp_path / "again" / "plan.json").read_text())["summary"] == doc2["summary"]
    assert len(nc.requests) == n


def test_conflicts_after_preseeding_the_target(tmp_path, world):
    g, nc, env, users, lib = world
    _plan(tmp_path, env)
    with _db(tmp_path) as s:
        alice = next(d for d in s.drives() if d["target_user"] == "alice")
        item = next(r for r in s.iter_items(alice["id"], files_only=True) if r["target_path"] and r["size"] > 0)
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:
        parts = item["target_path"].strip("/").split("/")
        for i in range(1, len(parts)):
            c.request("MKCOL", nc.dav_url("alice", "/".join(parts[:i])))
        assert c.put(nc.dav_url("alice", item["target_path"].strip("/")), content=b"x" * (item["size"] + 1)).status_code in (201, 204)
    before = len(nc.requests)
    doc = _plan(tmp_path, env)
    assert [r for r in nc.requests[before:] if r[0] not in READS] == []
    (c,) = [c for c in doc["conflicts"] if c["item_id"] == item["item_id"]]
    assert c["policy"] == "skip" and "size differs" in c["problem"]
    with _db(tmp_path) as s:
        assert s.item(alice["id"], item["item_id"])["status"] == "conflict"


def test_missing_target_user_exits_2_naming_file_and_line(tmp_path, world):
    g, nc, env, users, lib = world
    upns = list(users)
    _map(tmp_path, {upns[0]: "alice", upns[1]: "nosuchuser"})
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert "users.csv:3" in r.stderr and "nosuchuser" in r.stderr


def test_two_sources_one_path_exits_2(tmp_path, world):
    g, nc, env, users, lib = world
    upns = list(users)
    _map(tmp_path, {upns[0]: "alice"}, f"{lib['id']},user:alice:/,\n")
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert "sites.csv:2" in r.stderr and "users.csv:2" in r.stderr
