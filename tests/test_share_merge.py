"""`share` makes exactly one share per item and recipient, with the union of the grants reaching that recipient;
counts, status and reports speak of shares; grants not carried over are listed; pacing shows itself (issue 14).

Through the real CLI against the Graph sandbox (its sharing mix has a people link and a direct write grant to the
same person, in both orders, and an organisation link beside a write grant to the group the organisation maps
to) and the Nextcloud sandbox (duplicate user/group shares answer 200 with the existing share, §6.3).
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from migrate.reports.text import permission_words
from migrate.sandbox.graph import TenantSpec
from tests import test_share
from tests.conftest import REPO, run_cli
from tests.copy_support import db, nextcloud_target, setup_migration

SPEC = {**test_share.SPEC, "teams": 1}  # test_share's two OneDrives, plus a Team: its group maps to staff
# the scenario: anonymous links and guests reported, the organisation → group staff
POLICY = '\n[policy]\nanonymous_links = "report"\norganization_links = "group:staff"\nexternal_guests = "report"\n'
SHARES_API = test_share.SHARES_API


def _prepare(tmp_path: Path, g: Any, nc: Any, *, share_rate: str = "20/600", policy: str = POLICY) -> dict[str, str]:
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc) + f'share_rate = "{share_rate}"\n')
    (tmp_path / "mappings" / "groups.csv").write_text(
        "source_group,target_group\n" + f"{g.tenant.groups[0].display_name},staff\n")
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + policy)
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return env


def _planned(tmp_path: Path) -> list[dict[str, Any]]:
    with db(tmp_path) as s:
        rows = s.query("SELECT * FROM planned_shares WHERE planned != 0 ORDER BY id")
    for r in rows:
        r["grants"] = json.loads(r["grants"])
    return rows


def _creates(nc: Any, start: int = 0) -> list[tuple[str, str, int]]:
    return [r for r in nc.requests[start:] if r[0] == "POST" and r[1].startswith(SHARES_API)]


def _share_keys(nc: Any) -> list[tuple[Any, ...]]:
    return [(s["uid_owner"], s["file_source"], s["share_type"], s["share_with"] if s["share_type"] != 3 else "")
            for s in nc.shares]


def _shared_perms(nc: Any, owner: str, path: str, share_type: int, share_with: str) -> list[int]:
    """The permissions of every share of owner's file or folder to that recipient (the target's own records)."""
    from migrate.sandbox.nextcloud.names import nfc

    node = nc.state.resolve(owner, nfc(path.strip("/")))
    fileid = nc.state.meta_for(node.real).fileid
    return [int(s["permissions"]) for s in nc.shares if s["file_source"] == fileid
            and s["share_type"] == share_type and s["share_with"] == share_with]


@pytest.fixture
def tenant(graph_sandbox_factory):
    return graph_sandbox_factory(TenantSpec(**SPEC))


def test_one_share_per_item_and_recipient_with_the_union_and_honest_counts(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    planned = _planned(tmp_path)
    keys = {(r["drive_id"], r["item_id"], r["share_type"], r["share_with"]) for r in planned}
    assert len(keys) == len(planned)
    # the sharing mix merges grants: a read people-link + a write grant to one person (both orders), and an
    # organisation view link + a write grant to the group it maps to
    merged = [r for r in planned if len({g["permissions"] for g in r["grants"]}) > 1]
    users = [r for r in merged if r["share_type"] == 0]
    groups = [r for r in merged if r["share_type"] == 1 and r["share_with"] == "staff"]
    assert len(users) >= 4 and groups, [(r["path"], r["grants"]) for r in merged]
    for r in merged:
        assert r["permissions"] == max(g["permissions"] for g in r["grants"]) > 1, r
    with db(tmp_path) as s:
        grants = s.scalar("SELECT count(*) FROM permissions WHERE plan_action = 'create'")
    assert grants > len(planned), "several grants became one share"

    # the dry run lists each share once, with the permissions the run will make
    r = run_cli("share", "--dry-run", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    plus = [line for line in r.stdout.splitlines() if line.startswith("  + ")]
    assert len(plus) == len(set(plus)) == len(planned)
    assert f"{len(planned)} planned shares" in r.stdout
    for row in users:  # in the words of Nextcloud's sharing dialog, not its bitmask
        words = permission_words(row["permissions"])
        assert words.startswith("read, edit") and "permissions " not in r.stdout
        assert f"→ user {row['share_with']} ({words}; from {len(row['grants'])} grants)" in r.stdout

    # the first run makes exactly the plan and exits 0: nothing "already there" on an empty target
    start = len(nc.requests)
    r = run_cli("--json", "share", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    assert summary["created"] == len(planned) == len(nc.shares) == len(_creates(nc, start))
    assert summary["already"] == summary["found"] == 0 and summary["refused_broader"] == [] == summary["narrower"]
    assert len(set(_share_keys(nc))) == len(nc.shares)
    for row in merged:  # never narrower than the union: 3 on files, 15 on the folder
        assert _shared_perms(nc, row["owner"], row["path"], row["share_type"], row["share_with"]) == \
            [row["permissions"]], row
    for row in _planned(tmp_path):
        assert row["status"] == "created" and row["made_by_us"] == 1

    # a rerun creates nothing, calls nothing "there before", and exits 0
    start = len(nc.requests)
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _creates(nc, start) == [] and "there before" not in r.stdout
    assert f"already in place (recorded by an earlier run): {len(planned)}" in r.stdout
    assert "found as planned (made by someone else before): 0" in r.stdout

    # status counts what Nextcloud holds, and points nowhere but verify
    st = run_cli("status", cwd=tmp_path, env=env)
    assert f"shares: {len(nc.shares)} planned: created {len(nc.shares)}" in st.stdout
    assert "m365-migrate share" not in st.stdout.split("next:")[-1]

    # a share made by this tool whose record was lost (an earlier version, a run killed before recording) is
    # recognised by its note: recorded as ours, never as "made by someone else", and never made twice
    with db(tmp_path) as s, s.atomic():
        s.db.execute("UPDATE planned_shares SET status = NULL, share_id = NULL, made_by_us = 0")
    start = len(nc.requests)
    r = run_cli("--json", "share", cwd=tmp_path, env=env)
    again = json.loads(r.stdout)
    assert r.returncode == 0 and _creates(nc, start) == [], r.stdout
    assert again["already"] == len(planned) and again["found"] == 0 and again["created"] == 0
    assert {x["made_by_us"] for x in _planned(tmp_path)} == {1} and len(nc.shares) == len(planned)


def test_grants_not_carried_over_are_listed_in_status_and_the_plan_report(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    with db(tmp_path) as s:
        lost = s.query("SELECT p.*, json_extract(p.plan_detail, '$.reason') AS reason, "
                       "json_extract(p.plan_detail, '$.category') AS category FROM permissions p "
                       "WHERE plan_action IN ('drop', 'report')")
    kinds = {(r["kind"], r["link_scope"]) for r in lost}
    assert ("link", "anonymous") in kinds and ("external", "") in kinds, kinds
    assert all(r["reason"] for r in lost)

    st = run_cli("status", cwd=tmp_path, env=env)
    report = tmp_path / "state" / "reports" / "grants-not-carried-over.csv"
    assert f"grants not carried over: {len(lost)} (" in st.stdout and str(report) in st.stdout, st.stdout
    categories = {c: sum(1 for r in lost if r["category"] == c) for c in {r["category"] for r in lost}}
    assert categories.get("anonymous link") and categories.get("guest"), categories
    for category, n in categories.items():
        assert f"{category} {n}" in st.stdout, (category, n, st.stdout)
    data = json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)["grants_not_carried_over"]
    assert data["count"] == len(lost) and data["report"] == str(report)
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert sorted(r["perm_id"] for r in rows) == sorted(r["perm_id"] for r in lost)
    assert {r["category"] for r in rows} >= {"anonymous link", "guest"} and all(r["reason"] for r in rows)
    # the same list is in the plan report, and the plan's summary counts it
    latest = tmp_path / "state" / "reports" / "plan-latest"
    plan_rows = list(csv.DictReader((latest / "grants-not-carried-over.csv").open(encoding="utf-8")))
    assert plan_rows == rows and "link_type" in plan_rows[0]  # one list, one name, the same columns
    assert not list(latest.glob("not_carried_over.*")) and len(plan_rows) == len(lost)
    assert "see grants-not-carried-over.csv" in (latest / "plan.md").read_text(encoding="utf-8")
    md = (tmp_path / "state" / "reports" / "plan-latest" / "plan.md").read_text(encoding="utf-8")
    assert f"## Grants not carried over, and why ({len(lost)})" in md
    # `share` says where the list is
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 0 and f"{len(lost)} source grants are not carried over" in r.stdout and str(report) in r.stdout


def test_a_narrower_share_made_by_a_person_is_reported_or_widened_by_policy(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    row = next(r for r in _planned(tmp_path) if r["share_type"] == 0 and r["permissions"] == 3)
    with httpx.Client(auth=(row["owner"], nc.app_passwords[row["owner"]]), headers={"OCS-APIRequest": "true"}) as c:
        res = c.post(f"{nc.url}{SHARES_API}?format=json", data={"path": row["path"], "shareType": 0,
                                                                "shareWith": row["share_with"], "permissions": 1})
        assert res.status_code == 200, res.text
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "narrower than planned, left as they are: 1" in r.stdout and "narrower_shares" in r.stdout
    assert _shared_perms(nc, row["owner"], row["path"], 0, row["share_with"]) == [1]
    assert "left as it is" in run_cli("status", cwd=tmp_path, env=env).stdout.split("needs attention:")[1]
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text().replace('external_guests = "report"\n',
                                           'external_guests = "report"\nnarrower_shares = "widen"\n'))
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "widened (made by someone else, narrower than planned): 1" in r.stdout
    assert _shared_perms(nc, row["owner"], row["path"], 0, row["share_with"]) == [3]
    with db(tmp_path) as s:
        assert any(a["action"] == "share-widened" for a in s.iter_audit())


def test_pacing_shows_owner_progress_and_when_the_window_opens(tmp_path, tenant):
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice", "bob", "carol"], groups={"staff": ["alice", "bob"]},
                          share_rate_limit=(3, 10)) as nc:
        env = _prepare(tmp_path, tenant, nc, share_rate="50/10")  # wider than the server's window: 429s come
        per_owner: dict[str, int] = {}
        for row in _planned(tmp_path):
            per_owner[row["owner"]] = per_owner.get(row["owner"], 0) + 1
        r = run_cli("--json", "share", cwd=tmp_path, env=env)  # --json keeps stdout for the summary, not silence
        assert r.returncode == 0, r.stdout
        waits = re.findall(r"share: (\w+): (\d+)/(\d+) shares done; the server answered 429 \(createShare rate "
                           r"limit\); the window opens in (\d+) s \(at \d\d:\d\d:\d\d UTC\)", r.stderr)
        assert waits, r.stderr
        for owner, _done, total, _left in waits:
            assert int(total) == per_owner[owner]
        # a wait is not silent: the same owner and progress is shown again while it lasts
        seen: dict[tuple[str, str], int] = {}
        for owner, done, _total, _left in waits:
            seen[owner, done] = seen.get((owner, done), 0) + 1
        assert max(seen.values()) >= 2, r.stderr
        assert json.loads(r.stdout)["rate_limited"] > 0


def test_readme_policy_example_matches_the_defaults() -> None:
    from migrate.config.schema import _SCHEMA

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[policy]" in b)
    policy = tomllib.loads(block[block.index("[policy]"):])["policy"]
    for key, value in policy.items():
        assert _SCHEMA["policy"][key].default == value, (key, value)
    assert set(policy) >= {"anonymous_links", "organization_links", "external_guests", "narrower_shares"}


def test_grants_removed_at_the_source_narrow_or_remove_only_the_shares_we_made(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    assert run_cli("share", cwd=tmp_path, env=env).returncode == 0
    # a file shared to one person by a read people-link and a direct write grant (and nothing else): one share, 3
    def only_grants(r: dict[str, Any]) -> bool:
        with db(tmp_path) as s:
            return s.scalar("SELECT count(*) FROM permissions WHERE drive_id = ? AND item_id = ? AND kind != 'owner' "
                            "AND inherited = 0", (r["drive_id"], r["item_id"])) == 2

    row = next(r for r in _planned(tmp_path) if r["share_type"] == 0 and len(r["grants"]) == 2
               and {g["permissions"] for g in r["grants"]} == {1, 3} and only_grants(r))
    write = next(g for g in row["grants"] if g["permissions"] == 3)
    read = next(g for g in row["grants"] if g["permissions"] == 1)
    # a person also shared it with carol; that share is theirs and must survive everything below
    with httpx.Client(auth=(row["owner"], nc.app_passwords[row["owner"]]), headers={"OCS-APIRequest": "true"}) as c:
        assert c.post(f"{nc.url}{SHARES_API}?format=json", data={"path": row["path"], "shareType": 0,
                                                                 "shareWith": "carol", "permissions": 1}).status_code == 200

    # the write grant goes: our share is narrowed to what the people link still gives
    tenant.mutate.remove_permission(drive_id=row["drive_id"], item_id=row["item_id"], permission_id=write["perm_id"])
    assert run_cli("scan", cwd=tmp_path, env=env).returncode in (0, 3)
    start = len(nc.requests)
    r = run_cli("--json", "share", cwd=tmp_path, env=env)
    summary = json.loads(r.stdout)
    assert r.returncode == 0 and summary["updated"] == 1 and summary["created"] == 0, r.stdout
    assert _creates(nc, start) == []
    assert _shared_perms(nc, row["owner"], row["path"], 0, row["share_with"]) == [1]

    # the link goes too: no grant reaches that person any more, so the share we made is removed; carol's stays
    tenant.mutate.remove_permission(drive_id=row["drive_id"], item_id=row["item_id"],
                                    permission_id=read["perm_id"].split("/")[0])
    assert run_cli("scan", cwd=tmp_path, env=env).returncode in (0, 3)
    r = run_cli("--json", "share", cwd=tmp_path, env=env)
    summary = json.loads(r.stdout)
    assert r.returncode == 0 and summary["removed"] == 1, r.stdout
    assert _shared_perms(nc, row["owner"], row["path"], 0, row["share_with"]) == []
    assert _shared_perms(nc, row["owner"], row["path"], 0, "carol") == [1]
    with db(tmp_path) as s:
        assert not s.query("SELECT * FROM planned_shares WHERE item_id = ?", (row["item_id"],))
        assert [a for a in s.iter_audit() if a["action"] == "share-removed"]
        assert s.verify_audit().ok
    st = json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)
    assert set(st["shares"]) == {"created"} and st["shares"]["created"] == len(nc.shares) - 1  # carol's is not ours
