"""Issue: within Microsoft's budget. What each copy costs in SharePoint resource units, and pacing to a budget.

The Graph sandbox keeps Microsoft's books (its own RU count per request kind, its own per-app budget with 429s);
the product keeps its own books with each run. Both are read here, through the real CLI.
"""

from __future__ import annotations

import json
import time

import httpx

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import db, file_rows, nextcloud_target, setup_migration

# Two OneDrives of many small files in folders of a few files each: what a real OneDrive looks like.
MANY = dict(seed=23, users=2, sites=0, teams=0, files_per_drive=700, max_depth=3, no_mysite_users=0,
            malware_files=0, onenote=False, shares=False, versions=False, groupware_events=0, groupware_contacts=0)


def _last_run(tmp_path, command: str) -> dict:
    with db(tmp_path) as s:
        run = next(r for r in s.runs(50) if r["command"] == command)
    return json.loads(run["summary"])


def test_a_whole_copy_costs_at_most_1_05_ru_per_file(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**MANY))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = file_rows(tmp_path)
    files = sum(1 for x in rows if x["status"] == "verified")
    assert files == len(rows) >= 1000
    stats = g.stats()
    # Microsoft's books (the sandbox's), all Graph traffic of discover, scan and copy: about one RU per file
    assert stats["ru"] / files <= 1.05, stats
    asked = stats["requests"]
    assert asked.get("content", 0) == 0 and asked.get("item", 0) == 0, asked   # never a request per file for a URL
    assert asked["download"] == files
    # our own books, kept with each run, agree with Microsoft's
    ours = sum(_last_run(tmp_path, c).get("graph", {}).get("ru", 0) for c in ("discover", "scan", "copy"))
    assert ours == stats["ru"], (ours, stats["ru"])
    copy = _last_run(tmp_path, "copy")["graph"]
    assert json.loads(r.stdout)["graph"] == copy   # what `copy --json` printed is what the run record keeps
    assert copy["files"] == files and copy["ru_per_file"] <= 1.02
    assert copy["budget"]["ru_per_minute"] == 6_250 and "60,000 licences" in copy["budget"]["from"]


def test_a_resumed_copy_costs_no_more_per_file(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**MANY))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    g.faults.set(route="download", status=404, rate=0.5, seed=1)   # half the files fail: a copy to resume
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    g.faults.clear()
    before = g.stats()
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    after = g.stats()
    resent = json.loads(r.stdout)["files_verified"]
    assert 400 <= resent <= 1000
    ru = after["ru"] - before["ru"]
    assert ru / resent <= 1.05, (ru, resent)
    assert after["requests"].get("content", 0) == before["requests"].get("content", 0)


def test_few_files_left_ask_for_their_own_urls_not_a_whole_pass(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """Three files to send in drives of 700 (pages of 100 items): a delta pass of several pages would cost more
    than asking for three URLs; the cost model picks the requests per file."""
    g = graph_sandbox_factory(TenantSpec(**MANY))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    nc = nextcloud_sandbox
    rows = file_rows(tmp_path)[::300][:3]
    for x in rows:   # gone at the target, so they must be sent again (not found whole and adopted)
        user = x["target_user"]
        assert httpx.delete(nc.dav_url(user, x["target_path"].lstrip("/")),
                            auth=(user, nc.app_passwords[user])).status_code == 204
    with db(tmp_path) as s:
        some = [x["item_id"] for x in rows]
        with s.atomic():
            s.db.execute(f"UPDATE items SET status = 'pending' WHERE item_id IN ({', '.join('?' for _ in some)})",
                         some)
    before = g.stats()
    r = run_cli("--json", "copy", cwd=tmp_path, env={**env, "M365_GRAPH_PAGE_SIZE": "100"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["files_verified"] == len(some)
    after = g.stats()
    assert after["requests"].get("delta", 0) == before["requests"].get("delta", 0)
    assert after["ru"] - before["ru"] <= 2 * len(some), (after["ru"] - before["ru"])


def test_copy_is_paced_to_the_budget_before_graph_says_no(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """The sandbox enforces 900 RU/min for the app; we are told the same and spend all of it (share 1.0): every
    request is charged before it leaves, so no 429 comes back, and the copy takes as long as the budget says."""
    spec = {**MANY, "files_per_drive": 200}
    g = graph_sandbox_factory(TenantSpec(**spec), ru_per_minute=900)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox),
                             source="ru_per_minute = 900\nru_per_day = 1200000\nru_share = 1.0")
    time.sleep(10)   # the sandbox's bucket refills from discover and scan
    before = g.stats()
    started = time.monotonic()
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stdout + r.stderr
    after = g.stats()
    ru = after["ru"] - before["ru"]
    assert after["throttled"] == before["throttled"], "Graph had to say no"
    # the client holds a second of the budget (15 RU); the rest flows at what a minute leaves after it: 14.75 RU/s
    assert took >= (ru - 15) / 14.75 * 0.95, (took, ru)
    copy = _last_run(tmp_path, "copy")["graph"]
    assert copy["budget"]["ru_per_minute"] == 900 and copy["budget"]["waited_s"] > 0
    assert copy["throttled"] == 0


def test_verify_source_reads_hashes_by_listing_not_per_file(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**MANY))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    rows = [x for x in file_rows(tmp_path) if x["size"] > 0]
    g.mutate.modify(rows[5]["drive_id"], rows[5]["item_id"], size=rows[5]["size"] + 3)
    before = g.stats()
    r = run_cli("--json", "verify", "--source", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert [x["item_id"] for x in json.loads(r.stdout)["gaps"]] == [rows[5]["item_id"]]
    after = g.stats()
    assert after["requests"].get("item", 0) == before["requests"].get("item", 0)   # no request per file
    assert (after["ru"] - before["ru"]) / len(rows) <= 0.05
    books = _last_run(tmp_path, "verify")["graph"]
    assert books["ru"] == after["ru"] - before["ru"]
    r = run_cli("--json", "status", cwd=tmp_path, env=env)
    status = json.loads(r.stdout)["graph"]
    assert status["ru_last_24h"] == after["ru"] and status["last_ru_per_file"] <= 1.02
    assert status["budget"]["ru_per_minute"] == 6_250
