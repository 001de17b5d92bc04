"""The plan engine on rows inserted into a StateStore, a fake read-only target and a fake directory."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pytest

from migrate.engine.plan import PlanOptions, estimate, run_plan
from migrate.engine.shares.plan import SharePolicy
from migrate.errors import MappingError
from migrate.mapping import load_mappings
from migrate.models import Drive, DriveKind, Features, Grant, RemoteEntry
from migrate.names import short_hash
from migrate.session import Selection


class FakeTeamFolders:
    """Team folder HR exists and the service account sees it mounted, writable; only reads are allowed."""

    def list(self):
        from migrate.backends.nextcloud.teamfolders import TeamFolder

        return [TeamFolder(1, "HR", {"hr": 31, "m365-migration": 31})]

    def mount(self, user: str, mount_point: str):
        from migrate.backends.nextcloud.teamfolders import Mount

        return Mount(user, mount_point, exists=True, mount_type="group", folder_id=1, permissions="RMGDNVCK")


class FakeTarget:
    """Read-only target: records every call; any write method fails the test."""

    def __init__(self, entries: dict[tuple[str, str], list[RemoteEntry]] | None = None) -> None:
        self.features = Features(stored_checksum=True, max_name_bytes=250, group_folders=True)
        self.entries = entries or {}
        self.calls: list[tuple[str, str, str]] = []
        self.users = {"anna", "bob", "svc"}
        self.groups = {"staff", "hr"}

    def stat(self, user: str, path: str) -> RemoteEntry | None:
        self.calls.append(("stat", user, path))
        return RemoteEntry(path, True) if (user, path) in self.entries else None

    def walk(self, user: str, path: str):
        self.calls.append(("walk", user, path))
        yield from self.entries.get((user, path), [])

    def user_exists(self, uid: str) -> bool:
        return uid in self.users

    def group_exists(self, gid: str) -> bool:
        return gid in self.groups

    def user_quota(self, uid: str):
        return {"free": 1000, "total": 2000} if uid == "bob" else {"free": -3, "total": -3}

    def team_folders(self) -> FakeTeamFolders:
        return FakeTeamFolders()

    def __getattr__(self, name: str):
        raise AssertionError(f"plan called {name} on the target")


def write_mappings(tmp: Path, users: str, sites: str = "", groups: str = "") -> object:
    m = tmp / "mappings"
    m.mkdir(exist_ok=True)
    (m / "users.csv").write_text("source_upn,target_user,batch\n" + users)
    (m / "sites.csv").write_text("source,target,batch\n" + sites)
    (m / "groups.csv").write_text("source_group,target_group\n" + groups)

    class P:
        pass

    p = P()
    p.users, p.sites, p.groups = m / "users.csv", m / "sites.csv", m / "groups.csv"  # type: ignore[attr-defined]
    return load_mappings(p)  # type: ignore[arg-type]


def seed(store) -> None:
    store.upsert_drives([
        Drive("d-anna", DriveKind.ONEDRIVE, "OneDrive", owner_upn="anna@example.org"),
        Drive("d-bob", DriveKind.ONEDRIVE, "OneDrive", owner_upn="bob@example.org"),
        Drive("d-carl", DriveKind.ONEDRIVE, "OneDrive", owner_upn="carl@example.org"),
        Drive("b!libraryHR01", DriveKind.LIBRARY, "Documents", site_url="https://x.sharepoint.com/sites/HR",
              web_url="https://x.sharepoint.com/sites/HR/Shared Documents"),
    ])
    nfd = unicodedata.normalize("NFD", "Café")
    rows = [
        dict(item_id="root", parent_id=None, name="root", path="/", is_folder=1),
        dict(item_id="f1", parent_id="root", name="Bad:Folder.part", path="/Bad:Folder.part", is_folder=1),
        dict(item_id="a1", parent_id="f1", name="inner.txt", path="/Bad:Folder.part/inner.txt", size=10),
        dict(item_id="a2", parent_id="root", name="a\\b.txt", path="/a\\b.txt", size=20),
        dict(item_id="a3", parent_id="root", name="a_b.txt", path="/a_b.txt", size=30, sha1="aa"),
        dict(item_id="a4", parent_id="root", name=nfd + ".txt", path=f"/{nfd}.txt", size=5),
        dict(item_id="a5", parent_id="root", name="virus.exe", path="/virus.exe", size=7, malware=1),
        dict(item_id="nb", parent_id="root", name="Notes", path="/Notes", is_folder=1, package_type="oneNote"),
        dict(item_id="nb1", parent_id="nb", name="S.one", path="/Notes/S.one", size=3),
        dict(item_id="same", parent_id="root", name="same.txt", path="/same.txt", size=4, sha1="abc"),
        dict(item_id="gone", parent_id="root", name="gone.txt", path="/gone.txt", size=4, deleted=1),
    ]
    store.upsert_items("d-anna", rows)
    store.upsert_items("d-bob", [dict(item_id="r", parent_id=None, name="root", path="/", is_folder=1),
                                 dict(item_id="big", parent_id="r", name="big.bin", path="/big.bin", size=5000)])
    store.upsert_items("d-carl", [dict(item_id="c", parent_id=None, name="root", path="/", is_folder=1),
                                  dict(item_id="c1", parent_id="c", name="x.txt", path="/x.txt", size=1)])
    store.upsert_items("b!libraryHR01", [dict(item_id="lr", parent_id=None, name="root", path="/", is_folder=1),
                                         dict(item_id="l1", parent_id="lr", name="policy.pdf", path="/policy.pdf",
                                              size=100, shared=1)])
    store.replace_permissions("b!libraryHR01", "l1", [
        Grant("b!libraryHR01", "l1", "p1", "user", ("write",), grantee_email="anna@example.org"),
        Grant("b!libraryHR01", "l1", "p2", "link", ("read",), link_scope="anonymous", link_type="view"),
        Grant("b!libraryHR01", "l1", "p3", "external", ("read",), grantee_email="guest@other.org"),
        Grant("b!libraryHR01", "l1", "p4", "group", ("read",), grantee_name="HR Team", grantee_id="g1"),
        Grant("b!libraryHR01", "l1", "p5", "owner", ("owner",), grantee_email="bob@example.org"),
        Grant("b!libraryHR01", "l1", "p6", "user", ("read",), grantee_email="zed@example.org"),
        Grant("b!libraryHR01", "l1", "p7", "user", ("read",), grantee_email="anna@example.org", inherited=True),
        Grant("b!libraryHR01", "l1", "p8", "link", ("write",), link_scope="organization", link_type="edit",
              expires="2027-03-04T10:00:00Z"),
    ])


USERS = "anna@example.org,anna,w1\nbob@example.org,bob,w2\ncarl@example.org,,\n"
SITES = "https://x.sharepoint.com/sites/HR,groupfolder:HR,w1\n"
GROUPS = "HR Team,hr\n"


def options(**kw) -> PlanOptions:
    return PlanOptions(service_account="svc", **kw)


def test_layout_renames_unsupported_and_share_plan(store, tmp_path: Path) -> None:
    seed(store)
    m = write_mappings(tmp_path, USERS, SITES, GROUPS)
    target = FakeTarget({("anna", "/"): [RemoteEntry("/same.txt", False, 4, checksums=("SHA1:ABC",))]})
    doc = run_plan(store, target, m, Selection(), options(), directory=target, today=dt.date(2026, 11, 29))

    def tp(drive: str, item: str):
        r = store.item(drive, item)
        return r["target_user"], r["target_path"]

    assert tp("d-anna", "root") == ("anna", "/")
    assert tp("d-anna", "f1") == ("anna", "/Bad:Folder_part")
    assert tp("d-anna", "a1") == ("anna", "/Bad:Folder_part/inner.txt")  # folder rename propagates
    assert tp("d-anna", "a3") == ("anna", "/a_b.txt")  # the valid name keeps its place
    assert tp("d-anna", "a2") == ("anna", f"/a_b ({short_hash('a2')}).txt")
    assert tp("d-anna", "a4") == ("anna", "/" + unicodedata.normalize("NFC", "Café") + ".txt")
    assert tp("d-anna", "a5") == (None, None)  # malware: never copied
    assert tp("d-anna", "nb1") == (None, None)  # OneNote under policy report
    assert tp("d-carl", "c1") == (None, None)  # not migrated
    assert tp("b!libraryHR01", "l1") == ("svc", "/HR/policy.pdf")
    assert store.drive("b!libraryHR01")["batch"] == "w1"

    renamed = {r["item_id"] for r in doc["renames"]}
    assert renamed == {"f1", "a2", "a4"}
    reasons = {u["item_id"]: u["reason"] for u in doc["unsupported"]}
    assert "malware" in reasons["a5"] and "OneNote" in reasons["nb"] and "nb1" not in reasons
    assert {u["drive_id"] for u in doc["unmapped"]} == {"d-carl"}
    assert doc["summary"]["already_files"] == 1  # same.txt: same size and SHA1
    assert doc["conflicts"] == []

    shares = {s["item_id"] + s["grantee"]: s for s in doc["grants"]}
    by_perm = {r["perm_id"]: r for r in store.iter_permissions("b!libraryHR01")}
    assert by_perm["p1"]["plan_action"] == "create" and '"permissions": 3' in by_perm["p1"]["plan_detail"]
    assert by_perm["p2"]["plan_action"] == "report"  # anonymous link under policy report: never a public link
    assert by_perm["p3"]["plan_action"] == "report"
    assert by_perm["p4"]["plan_action"] == "create" and '"share_with": "hr"' in by_perm["p4"]["plan_detail"]
    assert by_perm["p5"]["plan_action"] == "none"
    assert by_perm["p6"]["plan_action"] == "drop" and "not mapped" in by_perm["p6"]["plan_detail"]
    assert by_perm["p7"]["plan_action"] == "none" and "inherited" in by_perm["p7"]["plan_detail"]
    assert by_perm["p8"]["plan_action"] == "report"  # organisation link, default policy report
    assert len(shares) >= 6
    # quota: bob has 1000 bytes free, 5000 planned
    q = {r["target_user"]: r["verdict"] for r in doc["quota"]}
    assert q == {"anna": "unlimited", "bob": "over quota"}
    # the target was only read
    assert {c[0] for c in target.calls} <= {"stat", "walk"}


def test_public_links_only_by_policy_and_never_broader(store, tmp_path: Path) -> None:
    seed(store)
    m = write_mappings(tmp_path, USERS, SITES, GROUPS)
    target = FakeTarget()
    pol = SharePolicy(anonymous_links="public-link-with-password", organization_links="group:staff")
    run_plan(store, target, m, Selection(), options(share_policy=pol), directory=target, today=dt.date(2026, 11, 29))
    by_perm = {r["perm_id"]: r for r in store.iter_permissions("b!libraryHR01")}
    import json

    p2 = json.loads(by_perm["p2"]["plan_detail"])
    assert by_perm["p2"]["plan_action"] == "create" and p2["share_type"] == 3 and p2["password"] is True
    assert p2["permissions"] == 1  # a view link stays read-only
    p8 = json.loads(by_perm["p8"]["plan_detail"])
    assert p8["share_with"] == "staff" and p8["permissions"] == 3 and p8["expire_date"] == "2027-03-04"
    for r in by_perm.values():
        d = json.loads(r["plan_detail"])
        if r["plan_action"] == "create":
            assert not d["permissions"] & 16  # never the re-share bit
            if "read" in r["roles"] and "write" not in r["roles"]:
                assert d["permissions"] == 1


def test_expired_source_grant_is_dropped(store, tmp_path: Path) -> None:
    seed(store)
    m = write_mappings(tmp_path, USERS, SITES, GROUPS)
    target = FakeTarget()
    pol = SharePolicy(organization_links="group:staff")
    run_plan(store, target, m, Selection(), options(share_policy=pol), directory=target, today=dt.date(2027, 5, 1))
    row = next(r for r in store.iter_permissions("b!libraryHR01") if r["perm_id"] == "p8")
    assert row["plan_action"] == "drop" and "expired" in row["plan_detail"]


@pytest.mark.parametrize("policy", ["skip", "rename", "overwrite-if-ours"])
def test_conflicts_follow_the_policy_and_reset(store, tmp_path: Path, policy: str) -> None:
    seed(store)
    m = write_mappings(tmp_path, USERS, SITES, GROUPS)
    target = FakeTarget({("anna", "/"): [RemoteEntry("/a_b.txt", False, 99),
                                         RemoteEntry("/inner", True)]})
    doc = run_plan(store, target, m, Selection(), options(on_conflict=policy), directory=target,
                   today=dt.date(2026, 11, 29))
    (c,) = doc["conflicts"]
    assert c["item_id"] == "a3" and "size differs" in c["problem"] and c["policy"] == policy
    row = store.item("d-anna", "a3")
    if policy == "rename":
        assert row["status"] == "pending" and row["target_path"] == f"/a_b ({short_hash('a3')}).txt"
    else:
        assert row["status"] == "conflict" and row["last_error"].startswith("plan: ")
    # the clash disappears: a new plan puts the file back in the queue
    target.entries = {}
    doc2 = run_plan(store, target, m, Selection(), options(on_conflict=policy), directory=target,
                    today=dt.date(2026, 11, 29))
    assert doc2["conflicts"] == []
    row = store.item("d-anna", "a3")
    assert row["status"] == "pending" and row["target_path"] == "/a_b.txt"


def test_missing_target_users_and_groups_name_file_and_line(store, tmp_path: Path) -> None:
    seed(store)
    m = write_mappings(tmp_path, "anna@example.org,anna,\nbob@example.org,nobody,\n",
                       "https://x.sharepoint.com/sites/HR,user:ghost:/HR,\n", "HR Team,nogroup\n")
    target = FakeTarget()
    with pytest.raises(MappingError) as e:
        run_plan(store, target, m, Selection(), options(), directory=target)
    msg = str(e.value)
    assert "users.csv:3" in msg and "'nobody'" in msg
    assert "sites.csv:2" in msg and "'ghost'" in msg
    assert "groups.csv:2" in msg and "'nogroup'" in msg


def test_two_sources_one_folder_names_both_rows(store, tmp_path: Path) -> None:
    seed(store)
    m = write_mappings(tmp_path, USERS, "https://x.sharepoint.com/sites/HR,user:anna:/,\n", GROUPS)
    target = FakeTarget()
    with pytest.raises(MappingError) as e:
        run_plan(store, target, m, Selection(), options(), directory=target)
    assert "sites.csv:2" in str(e.value) and "users.csv:2" in str(e.value)


def test_estimate_is_honest_about_its_basis() -> None:
    e = estimate(3600, 400 * 10**9, 10, None)
    assert e["basis"] == "graph-limits" and "LOWER BOUND" in e["assumption"]
    assert e["seconds"] == pytest.approx(3600.0)  # 400 GB at 400 GB/h: egress, not RU, is the bound here
    assert e["resource_units"] == 3600 + 2 + 3   # a download each, and the delta pages that lend the URLs
    assert e["permission_ru"] == 50              # read by scan already: not part of the copy's duration
    m = estimate(10, 10**9, 0, 10**7)
    assert m["basis"] == "measured" and m["seconds"] == pytest.approx(100.0)


def test_estimate_follows_the_budget_and_the_measured_ru_per_file() -> None:
    from migrate.engine.estimate import PlanBudget

    b = PlanBudget(per_minute=2_500, per_day=2_400_000, share=0.8, source="test")
    e = estimate(100_000, 10**9, 0, None, budget=b, drives=10)
    # 100,000 downloads + 2 RU per drive + the further pages, at 2,000 RU/min
    assert e["resource_units"] == 100_000 + 20 + 91
    assert e["seconds"] == pytest.approx(e["resource_units"] / 2_000 * 60, rel=1e-3)
    assert e["budget_days"] == pytest.approx(e["resource_units"] / 1_920_000, abs=0.01)
    assert e["final_sync"]["fits"] and e["final_sync"]["ru"] == 10 + 1_000
    # a measured 1.3 RU per file, and more work than a day's budget: paced to the daily rate past the first day
    slow = PlanBudget(per_minute=1_250, per_day=1_200_000, share=0.8, source="test", ru_per_file=1.3,
                      switchover_hours=0.25)
    big = estimate(2_000_000, 10**9, 0, None, budget=slow, drives=1)
    assert big["resource_units"] == 2_600_000 and "days of budget" in big["warning"]
    first_day = 960_000 / 1_000 * 60
    assert big["seconds"] == pytest.approx(first_day + (2_600_000 - 960_000) / 960_000 * 86400, rel=1e-3)
    assert not big["final_sync"]["fits"]   # 26,001 RU at 1,000 RU/min: 26 min, over a 15-minute window


def test_selection_by_batch_and_paging(store, tmp_path: Path) -> None:
    seed(store)
    many = [dict(item_id="root2", parent_id=None, name="root", path="/", is_folder=1)]
    many += [dict(item_id=f"x{i:05d}", parent_id="root2", name=f"file {i % 50}.txt" if i % 2 else f"FILE {i % 50}.txt",
                  path=f"/f{i}", size=1) for i in range(6000)]
    store.upsert_items("d-bob", many)
    m = write_mappings(tmp_path, USERS, SITES, GROUPS)
    target = FakeTarget()
    doc = run_plan(store, target, m, Selection(batches=("w2",)), options(), directory=target)
    assert [d["drive_id"] for d in doc["drives"]] == ["d-bob"]
    paths = [r["target_path"] for r in store.iter_items("d-bob", files_only=True) if r["item_id"].startswith("x")]
    assert len(paths) == 6000 and len({p.casefold() for p in paths}) == 6000
