"""`share` through the real CLI against the Graph sandbox tenant and the Nextcloud sandbox (OCS shares, NC 32 rules)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import db, nextcloud_target, setup_migration

# Two OneDrives with the sandbox's share set: user shares, organisation links (→ group staff), an anonymous
# link with a password and an expiry (→ public link with password), a guest (report), a folder shared for write.
SPEC = dict(seed=5, users=2, sites=0, teams=0, files_per_drive=30, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=True, versions=False)
POLICY = '\n[policy]\nanonymous_links = "public-link-with-password"\norganization_links = "group:staff"\n'
SHARES_API = "/ocs/v2.php/apps/files_sharing/api/v1/shares"


def _prepare(tmp_path: Path, g: Any, nc: Any, *, share_rate: str = "20/600", copy: bool = True) -> dict[str, str]:
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc) + f'share_rate = "{share_rate}"\n')
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + POLICY)
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    if copy:
        r = run_cli("copy", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    return env


def _share(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    r = run_cli("share", "--json", *args, cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return r.returncode, json.loads(r.stdout), r.stdout + r.stderr


def _planned(tmp_path: Path) -> list[dict[str, Any]]:
    """The planned shares (one per item and recipient) with what `share` recorded for each."""
    with db(tmp_path) as s:
        return s.query("SELECT * FROM planned_shares WHERE planned != 0 ORDER BY id")


def _creates(nc: Any, start: int = 0) -> list[tuple[str, str, int]]:
    return [r for r in nc.requests[start:] if r[0] == "POST" and r[1].startswith(SHARES_API)]


def _assert_matches_plan(rows: list[dict[str, Any]], nc: Any) -> None:
    """Every planned share exists exactly once, created by the owner, same type and recipient, with exactly the
    planned permissions (+16 on links), and the target holds no other share."""
    by_id = {str(s["id"]): s for s in nc.shares}
    for r in rows:
        assert r["status"] == "created", r
        s = by_id[r["share_id"]]
        assert s["uid_owner"] == r["owner"] and s["share_type"] == r["share_type"]
        got = s["permissions"] & ~(16 if r["share_type"] == 3 else 0)
        assert got == r["permissions"], (r["path"], r["share_with"], s["permissions"], r["permissions"])
        if r["share_type"] in (0, 1):
            assert s["share_with"] == r["share_with"]
        else:
            assert s["password"] and s["mail_send"] in (0, 1)
            if r["expire_date"]:
                assert s["expiration"].startswith(r["expire_date"])
    keys = [(s["uid_owner"], s["file_source"], s["share_type"], s["share_with"] if s["share_type"] != 3 else "")
            for s in nc.shares]
    assert len(keys) == len(set(keys)), "one share per item and recipient"
    assert sorted(by_id) == sorted(r["share_id"] for r in rows), "the target holds exactly the planned shares"


def _password_ok(stored: str, password: str) -> bool:
    """Check a clear-text password against the sandbox's stored `$scrypt$n=4096,r=8,p=1$salt$digest`."""
    _, _, _params, salt, digest = stored.split("$")
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**12, r=8, p=1).hex() == digest


@pytest.fixture
def tenant(graph_sandbox_factory):
    return graph_sandbox_factory(TenantSpec(**SPEC))


def test_share_creates_the_plan_never_broader_and_a_rerun_creates_nothing(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    rows = _planned(tmp_path)
    assert {r["share_type"] for r in rows} == {0, 1, 3}, "the tenant must plan user, group and link"

    # --dry-run lists exactly the planned shares and writes nothing to the target
    start = len(nc.requests)
    code, dry, _ = _share(tmp_path, env, "--dry-run")
    assert code == 0 and dry["dry_run"] and len(dry["would_create"]) == len(rows) and dry["created"] == 0
    assert [r for r in nc.requests[start:] if r[0] not in ("PROPFIND", "GET", "OPTIONS", "HEAD")] == []
    assert nc.shares == []

    start = len(nc.requests)
    r = run_cli("-vv", "share", cwd=tmp_path, env=env)  # -vv: the HTTP traffic is logged too
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"created: {len(rows)}" in r.stdout and "POST" in r.stderr
    assert len(nc.shares) == len(rows) == len(_creates(nc, start))
    rows = _planned(tmp_path)
    _assert_matches_plan(rows, nc)
    with db(tmp_path) as s:
        audited = [a for a in s.iter_audit() if a["action"] == "share"]
        assert s.verify_audit().ok
    assert sorted(json.loads(a["detail"])["share_id"] for a in audited) == sorted(r["share_id"] for r in rows)

    # link passwords: a 0600 CSV, the password opens the share, and it is nowhere else
    links = [r for r in rows if r["share_type"] == 3]
    pw_file = tmp_path / "state" / "link-passwords.csv"
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    entries = list(csv.DictReader(pw_file.open(encoding="utf-8")))
    assert len(entries) == len(links) > 0
    by_token = {s["token"]: s for s in nc.shares if s["token"]}
    for e in entries:
        share = by_token[e["share_url"].rsplit("/", 1)[1]]
        (row,) = [r for r in links if r["share_id"] == str(share["id"])]
        assert e["owner"] == row["owner"] and e["path"] == "/" + row["path"].lstrip("/")
        assert len(e["password"]) >= 20 and _password_ok(share["password"], e["password"])
    out = r.stdout + r.stderr
    for f in (tmp_path / "state").rglob("*"):
        if f.is_file() and f != pw_file:
            blob = f.read_bytes()
            assert not any(e["password"].encode() in blob for e in entries), f
    assert not any(e["password"] in out for e in entries)
    assert f"{len(links)} link passwords are in {pw_file}" in r.stdout

    # a rerun is idempotent: no createShare call, everything counted as already there
    start = len(nc.requests)
    code, again, _ = _share(tmp_path, env)
    assert code == 0 and again["created"] == 0 and again["already"] == len(rows)
    assert _creates(nc, start) == [] and len(nc.shares) == len(rows)


def test_share_before_copy_waits_and_exits_3(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc, copy=False)
    rows = _planned(tmp_path)
    assert rows
    start = len(nc.requests)
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"waiting for copy: {len(rows)}" in r.stdout and "m365-migrate copy" in r.stdout
    assert _creates(nc, start) == [] and nc.shares == []
    assert {r["status"] for r in _planned(tmp_path)} == {"waiting"}
    st = run_cli("--json", "status", cwd=tmp_path, env=env)
    assert json.loads(st.stdout)["shares"] == {"waiting": len(rows)}
    # after copy, status points at `share` until every planned share is made
    assert run_cli("copy", cwd=tmp_path, env=env).returncode in (0, 3)
    st = json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)
    assert "m365-migrate share" in st["next_step"], st["next_step"]
    assert run_cli("share", cwd=tmp_path, env=env).returncode == 0
    st = run_cli("status", cwd=tmp_path, env=env)
    assert f"shares: {len(rows)} planned: created {len(rows)}" in st.stdout
    assert "m365-migrate share" not in st.stdout.split("next:")[-1]


@pytest.mark.parametrize("share_rate, expect_429", [("3/2", False), ("50/2", True)])
def test_rate_limit_is_paced_per_owner_and_429_waits_for_the_window(tmp_path, tenant, share_rate, expect_429):
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice", "bob", "carol"], groups={"staff": ["alice", "bob"]},
                          share_rate_limit=(3, 2)) as nc:
        env = _prepare(tmp_path, tenant, nc, share_rate=share_rate)
        rows = _planned(tmp_path)
        per_owner: dict[str, int] = {}
        for row in rows:
            per_owner[row["owner"]] = per_owner.get(row["owner"], 0) + 1
        assert max(per_owner.values()) > 3, "the test needs more shares per owner than the server's window"
        start = len(nc.requests)
        code, summary, _ = _share(tmp_path, env)
        assert code == 0 and summary["failed"] == [] and summary["created"] == len(rows)
        rejected = [c for c in _creates(nc, start) if c[2] == 429]
        if expect_429:
            # our window was wider than the server's: the 429 was answered, waited out and the call retried
            assert rejected and summary["rate_limited"] == len(rejected)
        else:
            # matching the server's limit, the pacing alone kept every call inside the window
            assert rejected == [] and summary["paced_seconds"] > 0
        _assert_matches_plan(_planned(tmp_path), nc)


def test_refusals_are_item_level_and_a_broader_existing_share_is_reported_not_touched(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    rows = _planned(tmp_path)
    users = [r for r in rows if r["share_type"] == 0 and r["permissions"] == 1]
    files = [r for r in users if nc.file_info(r["owner"], r["path"])]
    gone, broad = files[0], files[1]
    # 1. the file vanished at the target after copy: the server refuses with "Wrong path"
    d = gone
    with httpx.Client(auth=(d["owner"], nc.app_passwords[d["owner"]])) as c:
        assert c.delete(nc.dav_url(d["owner"], d["path"])).status_code == 204
    # 2. someone already shared a file more widely (update bit) with the same recipient: that share is not ours
    #    to take away; it is left as it is and reported as broader than the source
    b = broad
    assert b["permissions"] == 1
    fileid = nc.file_info(b["owner"], b["path"])["fileid"]
    with httpx.Client(auth=(b["owner"], nc.app_passwords[b["owner"]]), headers={"OCS-APIRequest": "true"}) as c:
        res = c.post(f"{nc.url}{SHARES_API}?format=json", data={"path": b["path"], "shareType": 0,
                                                                "shareWith": b["share_with"], "permissions": 3})
        assert res.status_code == 200, res.text
    code, summary, out = _share(tmp_path, env)
    assert code == 3
    (failed,) = summary["failed"]
    assert failed["item_id"] == gone["item_id"] and "Wrong path, file/folder does not exist" in failed["reason"]
    (refused,) = summary["refused_broader"]
    assert refused["item_id"] == broad["item_id"] and "left as it is" in refused["reason"]
    assert summary["created"] == len(rows) - 2
    status = {r["id"]: r["status"] for r in _planned(tmp_path)}
    assert status[gone["id"]] == "failed" and status[broad["id"]] == "existing-broader"
    assert sum(v == "created" for v in status.values()) == len(rows) - 2
    # the pre-existing wide share is untouched, and no second share was made next to it
    (kept,) = [s for s in nc.shares if s["file_source"] == fileid]
    assert int(kept["permissions"]) == 3
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 3 and "failed: 1" in r.stdout and "next:" in r.stdout
    # `status` names both, with the reason, long after the run's own summary scrolled away
    st = run_cli("status", cwd=tmp_path, env=env).stdout
    attention = st.split("needs attention:")[1]
    assert "Wrong path, file/folder does not exist" in attention and "left as it is" in attention
    assert json.loads(run_cli("--json", "status", cwd=tmp_path, env=env).stdout)["shares"]["failed"] == 1


def test_owner_window_paces_each_owner_alone_and_a_429_waits_for_the_oldest_call() -> None:
    from migrate.engine.shares.apply import OwnerWindows, is_broader

    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    w = OwnerWindows(3, 10, clock=lambda: now[0], sleep=sleep)
    assert [w.acquire("alice") for _ in range(3)] == [0, 0, 0] and w.acquire("bob") == 0
    now[0] += 4
    assert w.acquire("alice") == pytest.approx(6) and slept == [pytest.approx(6)]  # until the first call is 10 s old
    assert w.acquire("bob") == 0  # bob's window is his own
    # a call counts from its end (the server saw it somewhere between send and answer)
    now[0] += 1
    w.finished("alice")  # alice's last call (sent at 110) took 1 s: it leaves her window at 121, not 120
    w.acquire("alice"), w.acquire("alice")
    assert w.acquire("alice") == pytest.approx(10)
    # no pacing configured, but the server says 429: wait out the oldest known call's 600 s window
    free = OwnerWindows(0, 0, clock=lambda: now[0], sleep=sleep)
    free.acquire("carol")
    now[0] += 100
    free.acquire("carol")
    assert free.wait_full("carol") == pytest.approx(500)
    # the +16 Nextcloud adds to read links is expected; any other extra bit is broader
    assert not is_broader(17, 1, 3) and is_broader(3, 1, 0) and is_broader(17, 1, 0) and not is_broader(1, 3, 0)


def test_a_refused_owner_login_stops_before_any_share(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, tenant, nc)
    creds = tmp_path / "pw.csv"
    creds.write_text(creds.read_text().replace(nc.app_passwords["bob"], "wrong-app-password-0000"))
    start = len(nc.requests)
    r = run_cli("share", cwd=tmp_path, env=env)
    assert r.returncode == 4 and "bob" in r.stderr and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert _creates(nc, start) == [] and nc.shares == []
    assert not [x for x in _planned(tmp_path) if x["status"] == "created"]


def test_a_visible_wait_lasts_the_whole_window_and_speaks_while_it_lasts() -> None:
    from migrate.engine.shares.pace import OwnerWindows, visible_wait

    now = [0.0]
    lines: list[str] = []

    def pause(s: float) -> None:
        now[0] += s * 0.999  # a timer that wakes a hair early must not end the wait early

    hook = visible_wait(lines.append, lambda owner: (3, 8), lambda: now[0], pause, lambda: False)
    w = OwnerWindows(3, 10, clock=lambda: now[0], wait=hook)
    for _ in range(3):
        w.acquire("alice")
        w.finished("alice")
    assert w.acquire("alice") == pytest.approx(10) and now[0] >= 10
    assert len(lines) >= 2 and all("alice: 3/8 shares done; paced to 3 new shares per 10 s" in x for x in lines)
    assert "the window opens in 10 s" in lines[0] and "the window opens in 5 s" in lines[1]


def test_remove_our_shares_takes_away_only_what_this_tool_made(store) -> None:
    """The library call `sync` uses for items deleted at the source: our shares go, a person's stay."""
    from migrate.engine.shares.apply import remove_our_shares
    from migrate.models import PlannedShare

    store.save_planned_shares([PlannedShare("d", "i1", 0, "bob", "alice", "/a.txt", 1),
                               PlannedShare("d", "i1", 1, "staff", "alice", "/a.txt", 3),
                               PlannedShare("d", "i2", 0, "bob", "alice", "/b.txt", 1)])
    rows = {(s.item_id, s.share_with): s for s in store.iter_planned_shares(["d"])}
    store.record_planned_share(rows["i1", "bob"].id, "created", share_id="7", made_by_us=True)
    store.record_planned_share(rows["i1", "staff"].id, "created", share_id="8", made_by_us=False)
    deleted: list[tuple[str, str]] = []

    class Shares:
        def delete(self, owner: str, share_id: str) -> None:
            deleted.append((owner, share_id))

    class Target:
        shares = Shares()

    summary = remove_our_shares(store, Target(), [("d", "i1")])  # type: ignore[arg-type]
    assert deleted == [("alice", "7")] and summary.removed == 1
    assert [(s.item_id, s.share_with) for s in store.iter_planned_shares(["d"])] == [("i2", "bob")]
    assert [a["action"] for a in store.iter_audit()] == ["share-removed"] and store.verify_audit().ok


def test_sync_shares_added_grants_and_removes_only_shares_it_made(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """After `share`: a grant added at the source becomes a share at the next `sync`; a removed grant removes
    our share; a share a person made is never touched."""
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    nc = nextcloud_sandbox
    env = _prepare(tmp_path, g, nc)
    code, summary, out = _share(tmp_path, env)
    ours = [r for r in _planned(tmp_path) if r["status"] == "created" and r["made_by_us"] and r["share_type"] == 0
            and len(json.loads(r["grants"])) == 1]
    assert ours, out
    gone = ours[0]
    gone_perm = json.loads(gone["grants"])[0]["perm_id"]
    with db(tmp_path) as s:
        item = s.item(gone["drive_id"], gone["item_id"])
        owner_upn = s.drive(gone["drive_id"])["owner_upn"]
        other = next(d for d in s.drives() if d["owner_upn"] != owner_upn)
        unshared = next(r for r in s.iter_items(gone["drive_id"], statuses=("verified",), files_only=True)
                        if not r["shared"])
    g.mutate.remove_permission(gone["drive_id"], gone["item_id"], gone_perm)
    added = g.mutate.add_permission(gone["drive_id"], unshared["item_id"], "user", user=other["owner_upn"],
                                    roles=["read"])
    # a person shares another file by hand at the target
    owner = gone["owner"]
    person_path = "/" + unshared["target_path"].strip("/")
    with httpx.Client(auth=(owner, nc.app_passwords[owner]), headers={"OCS-APIRequest": "true"}) as http:
        r = http.post(nc.url + SHARES_API, data={"path": person_path, "shareType": 3, "permissions": 1},
                      params={"format": "json"})
        assert r.status_code == 200, r.text
    person_share = str(r.json()["ocs"]["data"]["id"])
    before = {str(s["id"]) for s in nc.shares}

    r = run_cli("--json", "sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)["shares"]
    assert [x["share_id"] for x in res["removed"]] == [gone["share_id"]] and res["created"] == 1
    now = {str(s["id"]): s for s in nc.shares}
    assert gone["share_id"] not in now and person_share in now
    new = set(now) - before
    made = nc.file_info(owner, unshared["target_path"])
    assert len(new) == 1 and now[next(iter(new))]["file_source"] == made["fileid"]
    assert now[next(iter(new))]["share_type"] == 0
    assert item is not None and added["permission"]
    with db(tmp_path) as s:
        actions = [a["action"] for a in s.iter_audit()]
    assert "share-removed" in actions


def persons_share_before_share(tmp_path: Path, g: Any, nc: Any) -> tuple[dict[str, str], dict[str, Any],
                                                                           dict[str, Any], str]:
    """Copied; a person shares one planned user share by hand exactly as planned, then `share` runs. Returns
    (env, that planned share, another single-grant planned share, the person's share id)."""
    env = _prepare(tmp_path, g, nc)
    with db(tmp_path) as s:
        rows = s.query("SELECT * FROM planned_shares WHERE planned != 0 AND share_type = 0 ORDER BY id")
    single = [r for r in rows if len(json.loads(r["grants"])) == 1]
    person = single[0]
    other = next(r for r in single if r["item_id"] != person["item_id"])
    with httpx.Client(auth=(person["owner"], nc.app_passwords[person["owner"]]),
                      headers={"OCS-APIRequest": "true"}) as http:
        r = http.post(nc.url + SHARES_API, params={"format": "json"},
                      data={"path": person["path"], "shareType": 0, "shareWith": person["share_with"],
                            "permissions": person["permissions"]})
        assert r.status_code == 200, r.text
    _share(tmp_path, env)
    return env, person, other, str(r.json()["ocs"]["data"]["id"])


def test_sync_leaves_and_lists_a_persons_share_whose_grant_was_removed(tmp_path, graph_sandbox_factory,
                                                                        nextcloud_sandbox):
    """A share a person made before `share` (found exactly as planned, so not ours) stays at the target when its
    grant is removed at the source, and `sync` lists it; our share of another removed grant goes."""
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    nc = nextcloud_sandbox
    env, person, mine, person_share = persons_share_before_share(tmp_path, g, nc)
    with db(tmp_path) as s:
        got = {r["id"]: r for r in s.query("SELECT * FROM planned_shares")}
    assert got[person["id"]]["share_id"] == person_share and not got[person["id"]]["made_by_us"]
    assert got[mine["id"]]["made_by_us"] and got[mine["id"]]["status"] == "created"
    my_share = got[mine["id"]]["share_id"]
    for r in (person, mine):
        g.mutate.remove_permission(r["drive_id"], r["item_id"], json.loads(r["grants"])[0]["perm_id"])

    r = run_cli("--json", "sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)["shares"]
    assert [x["share_id"] for x in res["removed"]] == [my_share]
    assert [x["share_id"] for x in res["left"]] == [person_share]
    now = {str(s["id"]) for s in nc.shares}
    assert person_share in now and my_share not in now
    with db(tmp_path) as s:
        audit = [(a["action"], json.loads(a["detail"]).get("share_id") if isinstance(a["detail"], str)
                  else a["detail"].get("share_id")) for a in s.iter_audit()]
    assert ("share-removed", my_share) in audit and ("unshare-left", person_share) in audit
