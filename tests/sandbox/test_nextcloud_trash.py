"""Trash bin of the Nextcloud sandbox (reference §2.4, §2.5, §9.3)."""

from __future__ import annotations

from tests.fixtures_nextcloud import dav_session, prop_text, propfind

TPROPS = ("nc:trashbin-filename", "nc:trashbin-original-location", "nc:trashbin-deletion-time",
          "nc:trashbin-deleted-by-id", "oc:fileid", "d:getcontentlength")


def trash_url(nc, uid, item=""):
    return f"{nc.url}/remote.php/dav/trashbin/{uid}/trash/" + item


def items(s, nc, uid):
    listing, r = propfind(s, trash_url(nc, uid), props=TPROPS)
    assert r.status_code == 207
    base = f"/remote.php/dav/trashbin/{uid}/trash/"
    return {h[len(base):]: e for h, e in listing.items() if h != base}


def test_delete_goes_to_trash_and_restores(nextcloud_sandbox):
    """§2.5/§9.3: "the item shows in trashbin/alice/trash as b.txt.d<deletion-time> with nc:trashbin-original-location
    t8/b.txt"; "nc:trashbin-filename, nc:trashbin-original-location, nc:trashbin-deletion-time, plus
    nc:trashbin-deleted-by-id and oc:fileid"; "Restore by MOVE to …/trashbin/alice/restore/<name> → 201; when the
    original name is taken, the restored file is called y (restored).txt"; DELETE of an item purges it."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "t8"))
    s.put(nc.dav_url("alice", "t8/b.txt"), data=b"bee", headers={"X-OC-MTime": "1600000000"})
    fileid = nc.file_info("alice", "t8/b.txt")["fileid"]
    assert s.delete(nc.dav_url("alice", "t8/b.txt")).status_code == 204
    assert s.get(nc.dav_url("alice", "t8/b.txt")).status_code == 404
    trashed = items(s, nc, "alice")
    (name, entry), = trashed.items()
    assert name.startswith("b.txt.d") and name[len("b.txt.d"):].isdigit()
    assert prop_text(entry, "nc:trashbin-filename") == "b.txt"
    assert prop_text(entry, "nc:trashbin-original-location") == "t8/b.txt"
    assert prop_text(entry, "nc:trashbin-deleted-by-id") == "alice"
    assert prop_text(entry, "oc:fileid") == str(fileid)
    s.put(nc.dav_url("alice", "t8/b.txt"), data=b"new")
    r = s.request("MOVE", trash_url(nc, "alice", name),
                  headers={"Destination": f"{nc.url}/remote.php/dav/trashbin/alice/restore/b.txt"})
    assert r.status_code == 201
    restored = nc.file_info("alice", "t8/b (restored).txt")
    assert restored["fileid"] == fileid and restored["mtime"] == 1600000000
    assert items(s, nc, "alice") == {}
    s.delete(nc.dav_url("alice", "t8"))
    (name, entry), = items(s, nc, "alice").items()
    assert prop_text(entry, "nc:trashbin-original-location") == "t8"
    assert s.delete(trash_url(nc, "alice", name)).status_code == 204 and items(s, nc, "alice") == {}


def test_long_names_can_be_trashed(nextcloud_sandbox):
    """§5.2 "250-byte names upload by PUT": such a file can be deleted to the trash; as on 32.0.1 its trash name
    is cut to 250 bytes, a DELETE of the item answers 204 but keeps it, and a restore puts the cut name at the root."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    name = "a" * 246 + ".txt"
    s.request("MKCOL", nc.dav_url("alice", "deep"))
    s.put(nc.dav_url("alice", f"deep/{name}"), data=b"x")
    assert s.delete(nc.dav_url("alice", f"deep/{name}")).status_code == 204
    (item,) = items(s, nc, "alice")
    assert s.delete(trash_url(nc, "alice", item)).status_code == 204
    assert list(items(s, nc, "alice")) == [item], "a cut trash item cannot be purged over WebDAV"
    r = s.request("MOVE", trash_url(nc, "alice", item),
                  headers={"Destination": f"{nc.url}/remote.php/dav/trashbin/alice/restore/x"})
    cut = item.rsplit(".d", 1)[0]
    assert r.status_code == 201 and len(cut.encode()) == 238
    assert nc.file_info("alice", cut)["size"] == 1 and nc.file_info("alice", f"deep/{name}") is None


def test_overwriting_move_trashes_old_target(nextcloud_sandbox):
    """§2.4: "Overwriting (COPY/MOVE with Overwrite: T or no header) → 204, the old target goes to the trash and the
    path gets a different fileid"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "a.txt"), data=b"A")
    s.put(nc.dav_url("alice", "b.txt"), data=b"B")
    old = nc.file_info("alice", "b.txt")["fileid"]
    r = s.request("COPY", nc.dav_url("alice", "a.txt"), headers={"Destination": nc.dav_url("alice", "b.txt")})
    assert r.status_code == 204 and nc.file_info("alice", "b.txt")["fileid"] != old
    (entry,) = items(s, nc, "alice").values()
    assert prop_text(entry, "oc:fileid") == str(old)


def test_team_folder_trash_seen_by_every_member(nextcloud_sandbox):
    """§2.5: "a deleted team-folder file shows in the trash listing of every member (bob saw alice's
    Projects/deleteme.txt), with nc:trashbin-deleted-by-id alice"."""
    nc = nextcloud_sandbox
    nc.create_team_folder("Projects", groups={"staff": 31})
    alice, bob = dav_session(nc, "alice"), dav_session(nc, "bob")
    alice.put(nc.dav_url("alice", "Projects/deleteme.txt"), data=b"x")
    assert alice.delete(nc.dav_url("alice", "Projects/deleteme.txt")).status_code == 204
    (entry,) = items(bob, nc, "bob").values()
    assert prop_text(entry, "nc:trashbin-original-location") == "Projects/deleteme.txt"
    assert prop_text(entry, "nc:trashbin-deleted-by-id") == "alice"
    assert items(dav_session(nc, "carol"), nc, "carol") == {}


def test_plain_mode_delete_is_final(plain_webdav_sandbox):
    """§10.2: a generic WebDAV server has no trash; plain mode deletes for good."""
    nc = plain_webdav_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "gone.txt"), data=b"x")
    assert s.delete(nc.dav_url("alice", "gone.txt")).status_code == 204
    assert not list((nc.data_dir / "trash").rglob("*"))


def test_a_long_name_is_cut_in_the_trash_and_loses_its_folder() -> None:
    """Verified on 32.0.1: `<name>.d<time>` over 250 bytes is cut in the middle, and the item then reports the
    cut name alone as its original location (its folder is lost); shorter names keep folder and name."""
    import httpx

    from migrate.sandbox.nextcloud import NextcloudSandbox
    from migrate.sandbox.nextcloud.trash import trash_item_name

    assert trash_item_name("a" * 200 + ".txt", 1_700_000_000) == "a" * 200 + ".txt.d1700000000"
    cut = trash_item_name("a" * 240 + ".txt", 1_700_000_000)
    assert len(cut.encode()) == 250 and cut.endswith(".txt.d1700000000")
    with NextcloudSandbox(users=["alice"]) as nc, httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:
        long_name, short = "b" * 240 + ".txt", "short.txt"
        c.request("MKCOL", nc.dav_url("alice", "f"))
        for n in (long_name, short):
            assert c.put(nc.dav_url("alice", f"f/{n}"), content=b"x").status_code == 201
            assert c.delete(nc.dav_url("alice", f"f/{n}")).status_code == 204
        r = c.request("PROPFIND", f"{nc.url}/remote.php/dav/trashbin/alice/trash", headers={"Depth": "1"})
        locations = sorted(e.split("</nc:trashbin-original-location>")[0]
                           for e in r.text.split("<nc:trashbin-original-location>")[1:])
        assert locations[1] == "f/short.txt"
        assert "/" not in locations[0] and len(locations[0].encode()) == 238
