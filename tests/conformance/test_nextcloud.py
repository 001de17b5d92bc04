"""The Nextcloud extensions the engine uses, on the Nextcloud sandbox and on a real Nextcloud when one is named.

Checksums, mtimes, chunked (and resumed) and bulk uploads, server-side hashing, MOVE/DELETE, shares, team
folders, provisioning reads, and several accounts over one connection pool.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from migrate.backends.nextcloud.bulk import SmallFile
from migrate.backends.nextcloud.target import MIN_MTIME
from migrate.backends.webdav.wire import if_match_headers
from migrate.errors import ChangedAtTarget, TargetItemError
from migrate.models import RemoteEntry
from tests.conformance.rigs import MiB, Rig

GF = "/index.php/apps/groupfolders/folders"


def data_of(size: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) % 256 for i in range(4096))
    return (block * (size // 4096 + 1))[:size]


def test_small_put_keeps_mtime_and_checksum(nc_rig: Rig) -> None:
    t, data = nc_rig.target(), b"checksum me"
    sha = hashlib.sha1(data).hexdigest()
    entry = t.upload(nc_rig.user, nc_rig.p("a.txt"), [data], len(data), mtime=1_600_000_123, sha1=sha)
    st = t.stat(nc_rig.user, nc_rig.p("a.txt"))
    assert entry.size == st.size == len(data)
    assert int(st.mtime) == 1_600_000_123
    assert f"SHA1:{sha}" in st.checksums


def test_an_mtime_nextcloud_refuses_is_clamped_and_noted(nc_rig: Rig) -> None:
    t = nc_rig.target()
    t.upload(nc_rig.user, nc_rig.p("old.txt"), [b"x"], 1, mtime=5, sha1=hashlib.sha1(b"x").hexdigest())
    assert int(t.stat(nc_rig.user, nc_rig.p("old.txt")).mtime) == MIN_MTIME
    assert any("1970" in n for n in t.take_notes(nc_rig.user, nc_rig.p("old.txt")))


def test_touch_sets_the_mtime_without_rewriting_the_file(nc_rig: Rig) -> None:
    """Adoption's PROPPATCH `d:lastmodified` (§3.2): the time changes; the bytes and the stored checksum stay; a time Nextcloud refuses is clamped and noted as on upload."""
    t, data = nc_rig.target(), b"adopt me, do not rewrite me"
    sha = hashlib.sha1(data).hexdigest()
    path = nc_rig.p("touched.txt")
    t.upload(nc_rig.user, path, [data], len(data), mtime=1_600_000_000, sha1=sha)
    entry = t.touch(nc_rig.user, path, 1_700_000_000.6)  # type: ignore[attr-defined]
    assert int(entry.mtime) == 1_700_000_000 and entry.size == len(data)
    assert int(t.stat(nc_rig.user, path).mtime) == 1_700_000_000
    assert f"SHA1:{sha}" in t.stat(nc_rig.user, path).checksums
    assert nc_rig.fetch(path) == data
    t.take_notes(nc_rig.user, path)
    assert int(t.touch(nc_rig.user, path, 5).mtime) == MIN_MTIME  # type: ignore[attr-defined]
    assert any("1970" in n for n in t.take_notes(nc_rig.user, path))


def test_chunked_upload_assembles_the_same_bytes(nc_rig: Rig) -> None:
    t, data = nc_rig.target(), data_of(12 * MiB + 123, 1)
    sha = hashlib.sha1(data).hexdigest()
    assert t.begin_resumable(nc_rig.user, len(data)) is not None, "12 MiB at 5 MiB chunks goes chunked"
    pieces = [data[i:i + MiB] for i in range(0, len(data), MiB)]
    entry = t.upload(nc_rig.user, nc_rig.p("big/c.bin"), iter(pieces), len(data), mtime=1_650_000_000,
                     sha1=lambda: sha)
    assert entry.size == len(data)
    assert nc_rig.sha1_at(nc_rig.p("big/c.bin")) == sha
    st = t.stat(nc_rig.user, nc_rig.p("big/c.bin"))
    assert int(st.mtime) == 1_650_000_000


def test_a_resumed_chunked_upload_sends_only_the_rest(nc_rig: Rig) -> None:
    t, size, chunk = nc_rig.target(), 16 * MiB, 5 * MiB
    data = data_of(size, 2)
    first = t.begin_resumable(nc_rig.user, size)
    up = f"{nc_rig.url}/remote.php/dav/uploads/{nc_rig.user}/{first.transfer_id}"
    with nc_rig.http() as c:
        auth = nc_rig.auth()
        assert c.request("MKCOL", up, auth=auth).status_code == 201
        assert c.put(f"{up}/00001", content=data[:chunk], auth=auth).status_code == 201
        assert c.put(f"{up}/00002", content=data[chunk:2 * chunk], auth=auth).status_code == 201
        assert c.put(f"{up}/00003", content=data[2 * chunk:2 * chunk + 999], auth=auth).status_code == 201
    resume = t.begin_resumable(nc_rig.user, size, {"transfer_id": first.transfer_id, "chunk_size": chunk})
    assert resume is not None and resume.transfer_id == first.transfer_id and resume.offset == 2 * chunk
    rest = [data[i:i + MiB] for i in range(resume.offset, size, MiB)]
    entry = t.upload(nc_rig.user, nc_rig.p("resumed.bin"), iter(rest), size, sha1=None, resume=resume)
    assert entry.size == size
    sha = hashlib.sha1(data).hexdigest()
    assert nc_rig.sha1_at(nc_rig.p("resumed.bin")) == sha
    assert f"SHA1:{sha}" in t.confirm(nc_rig.user, nc_rig.p("resumed.bin"), size, sha).checksums


def test_bulk_upload_writes_every_file_with_its_mtime(nc_rig: Rig) -> None:
    t = nc_rig.target()
    t.ensure_folder(nc_rig.user, nc_rig.p("bulk/sub"))
    files = [SmallFile(nc_rig.p(f"bulk/{'sub/' if i % 2 else ''}f{i:02d}.txt"), data_of(100 + i, i),
                       1_600_000_000 + i, hashlib.sha1(data_of(100 + i, i)).hexdigest()) for i in range(30)]
    results = t.upload_many(nc_rig.user, files)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    walked = {e.path: e for e in t.walk(nc_rig.user, nc_rig.p("bulk"))}
    for f in files:
        assert walked[f.path].size == len(f.data) and int(walked[f.path].mtime) == f.mtime
    for f in files[:3]:
        assert nc_rig.fetch(f.path) == f.data


def test_the_server_hashes_the_stored_bytes(nc_rig: Rig) -> None:
    t, data = nc_rig.target(), data_of(3000, 3)
    t.upload(nc_rig.user, nc_rig.p("h.bin"), [data], len(data), sha1=None)
    assert t.dav.recalculate_sha1(nc_rig.user, nc_rig.p("h.bin")).lower() == \
        "sha1:" + hashlib.sha1(data).hexdigest()


def test_move_and_delete(nc_rig: Rig) -> None:
    t, u = nc_rig.target(), nc_rig.user
    for name in ("a.txt", "b.txt"):
        t.upload(u, nc_rig.p(f"m/{name}"), [name.encode()], 5, sha1=None)
    t.dav.move(u, nc_rig.p("m/a.txt"), nc_rig.p("m/moved.txt"))
    assert t.stat(u, nc_rig.p("m/a.txt")) is None and nc_rig.fetch(nc_rig.p("m/moved.txt")) == b"a.txt"
    with pytest.raises(TargetItemError, match="412"):
        t.dav.move(u, nc_rig.p("m/moved.txt"), nc_rig.p("m/b.txt"), overwrite=False)
    assert nc_rig.fetch(nc_rig.p("m/b.txt")) == b"b.txt"
    t.dav.move(u, nc_rig.p("m"), nc_rig.p("m2"))                      # a whole folder in one MOVE
    assert {e.path for e in t.walk(u, nc_rig.p("m2"))} == {nc_rig.p("m2/moved.txt"), nc_rig.p("m2/b.txt")}
    t.delete(u, nc_rig.p("m2"))
    assert t.stat(u, nc_rig.p("m2")) is None


def test_shares_are_made_by_the_owner_and_duplicates_return_the_existing_one(nc_rig: Rig) -> None:
    t, u = nc_rig.target(), nc_rig.user
    t.upload(u, nc_rig.p("s/doc.txt"), [b"doc"], 3, sha1=None)
    made = t.shares.create(u, nc_rig.p("s/doc.txt"), 0, nc_rig.other, permissions=1)
    assert made["uid_owner"] == u and made["share_with"] == nc_rig.other and made["permissions"] & 1
    again = t.shares.create(u, nc_rig.p("s/doc.txt"), 0, nc_rig.other, permissions=3)
    assert str(again["id"]) == str(made["id"]) and again["permissions"] == made["permissions"]
    link = t.shares.create(u, nc_rig.p("s"), 3, permissions=1, password="Conformance-Link-Pass-2026!")
    assert link["token"] and link["share_type"] == 3
    listed = {str(s["id"]) for s in t.shares.list(u, nc_rig.p("s/doc.txt"))}
    assert str(made["id"]) in listed
    for s in (made, link):
        t.shares.delete(u, s["id"])
    assert t.shares.list(u, nc_rig.p("s/doc.txt")) == []
    t.shares.delete(u, made["id"])                                       # already gone is fine


def test_a_share_pending_for_its_recipient_is_accepted_as_them(nc_rig: Rig) -> None:
    """§6.5a: a share waits for its recipient with force_share_accept on (on the sandbox turned on here; on a real
    server run the suite with `sharing.force_share_accept` true to see the pending side): the owner's createShare
    says nothing of it, only the recipient's views do; accepting as the recipient makes it theirs. Either way,
    after `accept` the recipient sees it, and no one else can accept it."""
    t, u, other = nc_rig.target(), nc_rig.user, nc_rig.other
    if nc_rig.server is not None:
        nc_rig.server.force_share_accept()
    t.upload(u, nc_rig.p("p/doc.txt"), [b"doc"], 3, sha1=None)
    made = t.shares.create(u, nc_rig.p("p/doc.txt"), 0, other, permissions=1)
    sid = str(made["id"])
    pending = {str(s["id"]): s for s in t.shares.pending(other)}
    seen = {str(s["id"]) for s in t.shares.shared_with_me(other)}
    assert (sid in pending) != (sid in seen), "a share is either pending for its recipient or theirs"
    if nc_rig.server is not None:
        assert sid in pending
    if sid in pending:
        assert pending[sid]["permissions"] == 0 and pending[sid]["path"] == "/doc.txt"
        with pytest.raises(TargetItemError, match="404"):
            t.shares.accept(nc_rig.admin or u, sid)                    # not theirs to accept
    t.shares.accept(other, sid)
    assert sid in {str(s["id"]) for s in t.shares.shared_with_me(other)}
    assert sid not in {str(s["id"]) for s in t.shares.pending(other)}
    t.shares.accept(other, sid)                                        # accepting again is harmless
    t.shares.delete(u, sid)


def test_provisioning_reads(nc_rig: Rig) -> None:
    prov = nc_rig.target().provisioning()
    assert prov.user_exists(nc_rig.user) and prov.user_exists(nc_rig.other)
    assert not prov.user_exists(f"nobody-{nc_rig.base}")
    groups = nc_rig.ocs("GET", f"/ocs/v2.php/cloud/users/{nc_rig.user}?format=json", as_user=nc_rig.admin
                        ).json()["ocs"]["data"]["groups"]
    assert groups, "the suite's user should be in a group (the sandbox: staff)"
    assert prov.group_exists(groups[0]) and not prov.group_exists(f"nogroup-{nc_rig.base}")


def test_team_folders_are_seen_by_members_only(nc_rig: Rig) -> None:
    t = nc_rig.target()
    group = nc_rig.ocs("GET", f"/ocs/v2.php/cloud/users/{nc_rig.user}?format=json", as_user=nc_rig.admin
                       ).json()["ocs"]["data"]["groups"][0]
    made = nc_rig.ocs("POST", GF + "?format=json", as_user=nc_rig.admin, data={"mountpoint": nc_rig.base})
    assert made.status_code == 200, made.text
    fid = made.json()["ocs"]["data"]["id"]
    try:
        tf = t.team_folders()
        assert tf.find(nc_rig.base) is not None
        assert not tf.visible_to(nc_rig.user, nc_rig.base), "no group yet: nobody sees it"
        assert nc_rig.ocs("POST", f"{GF}/{fid}/groups?format=json", as_user=nc_rig.admin,
                          data={"group": group}).status_code == 200
        assert tf.visible_to(nc_rig.user, nc_rig.base)
        t.upload(nc_rig.user, f"{nc_rig.base}/in-team.txt", [b"team"], 4, sha1=None)
        assert nc_rig.fetch(f"{nc_rig.base}/in-team.txt") == b"team"
    finally:
        assert nc_rig.ocs("DELETE", f"{GF}/{fid}?format=json", as_user=nc_rig.admin).status_code == 200


def test_mount_tells_the_team_folder_from_a_lookalike(nc_rig: Rig) -> None:
    """Issue 16, reference §7.3: a plain folder of the same name in the writer's home is `exists` but not the team
    folder; once the writer's group is on the folder its mount shows `nc:mount-type` group, the folder id and the
    group's rights (read only: not writable), and the plain folder is renamed `<name> (1)`. Setting permissions of
    a group not yet on the folder changes nothing (32.0.1, groupfolders 20.1.2): a group is added first."""
    t = nc_rig.target()
    tf = t.team_folders()
    group = nc_rig.ocs("GET", f"/ocs/v2.php/cloud/users/{nc_rig.user}?format=json", as_user=nc_rig.admin
                       ).json()["ocs"]["data"]["groups"][0]
    t.upload(nc_rig.user, nc_rig.p("lookalike.txt"), [b"x"], 1, sha1=None)   # a plain folder in the home
    made = nc_rig.ocs("POST", GF + "?format=json", as_user=nc_rig.admin, data={"mountpoint": nc_rig.base})
    assert made.status_code == 200, made.text
    fid = made.json()["ocs"]["data"]["id"]
    try:
        plain = tf.mount(nc_rig.user, nc_rig.base)
        assert plain.exists and not plain.is_team_folder and plain.folder_id is None and plain.writable
        tf.set_group(fid, group, 1, assigned=True)        # not on the folder yet: a no-op, not an error
        assert group not in tf.find(nc_rig.base).groups  # type: ignore[union-attr]
        tf.set_group(fid, group, 1, assigned=False)
        ro = tf.mount(nc_rig.user, nc_rig.base)
        assert ro.is_team_folder and ro.folder_id == fid and not ro.writable and ro.permissions == "MG"
        tf.set_group(fid, group, 15, assigned=True)
        rw = tf.mount(nc_rig.user, nc_rig.base)
        assert rw.writable and rw.permissions == "MGDNVCK"
        assert tf.find(nc_rig.base).groups == {group: 15}  # type: ignore[union-attr]
        # the plain folder that was in the way was renamed when the mount appeared, and stays renamed
        moved = f"{nc_rig.base} (1)"
        assert nc_rig.fetch(f"{moved}/lookalike.txt") == b"x"
    finally:
        assert nc_rig.ocs("DELETE", f"{GF}/{fid}?format=json", as_user=nc_rig.admin).status_code == 200
    assert tf.mount(nc_rig.user, nc_rig.base).exists is False
    assert not tf.mount(nc_rig.user, moved).is_team_folder
    t.delete(nc_rig.user, moved)


def test_several_accounts_over_one_connection_pool(nc_rig: Rig) -> None:
    """Writes as two users interleaved on one client: each lands in its owner's tree, no cookie is ever sent."""
    t = nc_rig.target()
    jobs = [(nc_rig.user if i % 2 else nc_rig.other, nc_rig.p(f"pool/{i:02d}.txt"), f"file {i}".encode())
            for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda j: t.upload(j[0], j[1], [j[2]], len(j[2]), sha1=None), jobs))
    for uid, path, data in jobs:
        assert nc_rig.fetch(path, uid) == data
        assert t.stat(nc_rig.other if uid == nc_rig.user else nc_rig.user, path) is None
    assert len(t.session.http.cookies.jar) == 0
    if nc_rig.server is not None:
        assert nc_rig.server.cookie_requests == 0 and nc_rig.server.state.sessions


@pytest.mark.parametrize("name", [".htaccess", "notes.part", "back\\slash.txt", "ctrl\x01char.txt", "a" * 251])
def test_names_nextcloud_refuses_are_item_errors_with_its_message(nc_rig: Rig, name: str) -> None:
    """Reference §5.1/§5.2, verified on 32.0.1: each gives 400 (a `.part` name looks present but cannot be
    written); the message says why and nothing is stored."""
    t = nc_rig.target()
    t.ensure_folder(nc_rig.user, nc_rig.p())
    with pytest.raises(TargetItemError) as err:
        t.upload(nc_rig.user, nc_rig.p(name), [b"n"], 1, sha1=None)
    assert str(err.value)
    assert name not in {e.path.rsplit("/", 1)[-1] for e in t.walk(nc_rig.user, nc_rig.p())}


def test_a_conditional_upload_replaces_our_file_only_while_it_is_ours(nc_rig: Rig) -> None:
    """What `sync` sends for an edit: `If-Match` on a single PUT, a tagged `If` on the final chunk MOVE. Over our
    own file both write; once a person wrote there, both answer 412 (ChangedAtTarget) and leave the person's
    file as it is."""
    t, u = nc_rig.target(), nc_rig.user
    for name, size in (("small.txt", 11), ("big.bin", 11 * MiB + 5)):
        path = nc_rig.p(f"cond/{name}")
        first, second = data_of(size, 3), data_of(size, 4)
        # (another mtime: Nextcloud keeps the etag through an overwrite of the same size and mtime, §2.1)
        ours = t.upload(u, path, [first], size, mtime=1_600_000_000, sha1=hashlib.sha1(first).hexdigest())
        pieces = [second[i:i + MiB] for i in range(0, size, MiB)]
        entry = t.upload(u, path, iter(pieces), size, mtime=1_600_000_100, sha1=hashlib.sha1(second).hexdigest(),
                         if_match=ours.etag)
        assert nc_rig.fetch(path) == second and entry.etag != ours.etag, name
        with nc_rig.http() as c:
            assert c.put(nc_rig.file_url(path), content=b"a person's edit", auth=nc_rig.auth()).status_code == 204
        with pytest.raises(ChangedAtTarget):
            t.upload(u, path, iter(pieces), size, sha1=hashlib.sha1(second).hexdigest(), if_match=entry.etag)
        assert nc_rig.fetch(path) == b"a person's edit", name


def test_an_if_match_on_the_final_chunk_move_never_matches(nc_rig: Rig) -> None:
    """Why the final chunk MOVE carries a tagged `If` instead: its `If-Match` is judged against the upload's
    `.file`, so even the destination's current etag answers 412."""
    t, u = nc_rig.target(), nc_rig.user
    path = nc_rig.p("cond/ifmatch.bin")
    t.upload(u, path, [b"ours"], 4, sha1=None)
    etag = if_match_headers(t.stat(u, path).etag)["If-Match"]  # quoted, as the server gave it
    up = f"{nc_rig.url}/remote.php/dav/uploads/{u}/m365-migrate-cond-{abs(hash(path)) % 10**8}"
    with nc_rig.http() as c:
        auth, dest = nc_rig.auth(), nc_rig.file_url(path)
        assert c.request("MKCOL", up, auth=auth, headers={"Destination": dest}).status_code == 201
        assert c.put(f"{up}/00001", content=b"new bytes", auth=auth, headers={"Destination": dest}).status_code == 201
        r = c.request("MOVE", f"{up}/.file", auth=auth, headers={"Destination": dest, "If-Match": etag})
        assert r.status_code == 412 and "If-Match" in r.text, r.text
        stale = f"<{dest}> ([\"0{etag.strip(chr(34))}\"])"
        r = c.request("MOVE", f"{up}/.file", auth=auth, headers={"Destination": dest, "If": stale})
        assert r.status_code == 412 and "Failed to find a valid token/etag combination for files/" in r.text, r.text
        r = c.request("MOVE", f"{up}/.file", auth=auth, headers={"Destination": dest, "If": f"<{dest}> ([{etag}])"})
        assert r.status_code in (201, 204), r.text
    assert nc_rig.fetch(path) == b"new bytes"


def test_a_bulk_upload_never_creates_folders(nc_rig: Rig) -> None:
    """Checked on 32.0.1: a bulk part whose folder is missing is `error: true` "Could not create path" (HTTP 200,
    the other parts written), even one level down and with `X-NC-WebDAV-Auto-Mkcol: 1` (that header is for PUT
    only); no folder is made. So every folder of a bulk batch needs its MKCOL first."""
    from migrate.backends.nextcloud.bulk import encode

    t, u = nc_rig.target(), nc_rig.user
    t.ensure_folder(u, nc_rig.p("bk"))
    paths = [nc_rig.p("bk/new/a.txt"), nc_rig.p("bk/x/y/b.txt"), nc_rig.p("bk/c.txt")]
    body, boundary = encode([SmallFile(p, p.encode(), 1_700_000_000, None) for p in paths])
    with nc_rig.http() as c:
        r = c.post(f"{nc_rig.url}/remote.php/dav/bulk", content=body, auth=nc_rig.auth(),
                   headers={"Content-Type": f"multipart/related; boundary={boundary}", "X-NC-WebDAV-Auto-Mkcol": "1"})
    assert r.status_code == 200, r.text
    got = {k.strip("/"): v for k, v in r.json().items()}
    for p in paths[:2]:
        assert got[p] == {"error": True, "message": f'Could not create path "/{u}/files/{p}"'}
    assert got[paths[2]]["error"] is False and nc_rig.fetch(paths[2]) == paths[2].encode()
    for folder in ("bk/new", "bk/x"):
        assert t.stat(u, nc_rig.p(folder)) is None


def test_simultaneous_mkcols_of_one_path(nc_rig: Rig) -> None:
    """Checked on 32.0.1 (six at once, fifteen rounds): one 201; of the others, one 403 "Could not create
    directory" (it passed the exists check with the winner), the rest 423 "is locked" while the winner holds the
    path or 405 after. Our `mkcol` turns every loser into 405 (a 423 is retried), never an error."""
    import threading

    t, u, n = nc_rig.target(), nc_rig.user, 6
    t.ensure_folder(u, nc_rig.p("race"))
    if nc_rig.server is not None:
        nc_rig.server.delay("MKCOL", 0.2)  # a sandbox MKCOL takes ~1 ms: widen the window a PHP request has
    codes: list[int] = []
    bar = threading.Barrier(n)
    with nc_rig.http() as c:
        def raw(_: int) -> int:
            bar.wait()
            return c.request("MKCOL", nc_rig.file_url(nc_rig.p("race/raw")) + "/", auth=nc_rig.auth()).status_code

        with ThreadPoolExecutor(n) as pool:
            for _round in range(3):
                codes += sorted(pool.map(raw, range(n)))
                assert codes.count(201) == 1, codes
                if 403 in codes or 423 in codes:
                    break
                c.request("DELETE", nc_rig.file_url(nc_rig.p("race/raw")), auth=nc_rig.auth())
                codes.clear()
    assert set(codes) <= {201, 403, 405, 423} and {403, 423} & set(codes), codes
    targets = [nc_rig.target() for _ in range(n)]  # fresh targets: nothing known ahead of the MKCOL
    with ThreadPoolExecutor(n) as pool:
        ours = list(pool.map(lambda k: (bar.wait(), targets[k].dav.mkcol(u, nc_rig.p("race/ours")))[1], range(n)))
    if nc_rig.server is not None:
        nc_rig.server.delay("MKCOL", 0)
    assert sorted(ours) == [201] + [405] * (n - 1), ours
    assert t.stat(u, nc_rig.p("race/ours")).is_folder


def test_a_child_mkcol_racing_its_parent(nc_rig: Rig) -> None:
    """Checked on 32.0.1: MKCOL of a folder and, 10 ms later, of its child: the parent 201, the child mostly 409
    "Parent node does not exist" (not queued behind its parent: a PHP request takes ~40 ms), sometimes 201. The
    sandbox answers in ~1 ms, so there the child mostly finds its parent made. Nothing else: parents strictly first."""
    import re
    import threading

    t, u = nc_rig.target(), nc_rig.user
    t.ensure_folder(u, nc_rig.p("dep"))
    bar = threading.Barrier(2)
    with nc_rig.http() as c:
        def mk(rel: str) -> tuple[int, str]:
            bar.wait()
            if rel.endswith("child"):
                time.sleep(0.01)  # the parent's request leaves first
            r = c.request("MKCOL", nc_rig.file_url(nc_rig.p(rel)) + "/", auth=nc_rig.auth())
            return r.status_code, "".join(re.findall(r"<s:message>(.*?)</s:message>", r.text))

        with ThreadPoolExecutor(2) as pool:
            parent, child = pool.map(mk, ["dep/p", "dep/p/child"])
    assert parent[0] == 201
    assert child in ((409, "Parent node does not exist"), (201, "")), child
    assert t.stat(u, nc_rig.p("dep/p")).is_folder
    assert (t.stat(u, nc_rig.p("dep/p/child")) is not None) == (child[0] == 201)


def test_uploads_racing_to_make_one_new_folder_all_land(nc_rig: Rig) -> None:
    """Six PUTs with `X-NC-WebDAV-Auto-Mkcol` into one missing folder at once: on 32.0.1 most lose the race with
    423 "is locked", some with 403 "Could not create directory". Every file must still land, none fail."""
    import threading

    u, n = nc_rig.user, 6
    t0 = nc_rig.target()
    t0.ensure_folder(u, nc_rig.p("auto"))
    if nc_rig.server is not None:
        nc_rig.server.delay("MKCOL", 0.2)  # the sandbox makes a folder in ~1 ms: give it a PHP request's time
        before = len(nc_rig.server.requests)
    targets = [nc_rig.target() for _ in range(n)]  # fresh: the new folder unknown to each
    bar = threading.Barrier(n)

    def up(k: int) -> RemoteEntry:
        data = f"file {k}".encode()
        bar.wait()
        return targets[k].upload(u, nc_rig.p(f"auto/new/deeper/f{k}.txt"), [data], len(data),
                                 sha1=hashlib.sha1(data).hexdigest())

    try:
        with ThreadPoolExecutor(n) as pool:
            entries = list(pool.map(up, range(n)))
    finally:
        if nc_rig.server is not None:
            nc_rig.server.delay("MKCOL", 0)
    assert [e.size for e in entries] == [len(f"file {k}") for k in range(n)]
    for k in range(n):
        assert nc_rig.fetch(nc_rig.p(f"auto/new/deeper/f{k}.txt")) == f"file {k}".encode()
    if nc_rig.server is not None:
        lost = [st for m, _p, st in nc_rig.server.requests[before:] if m == "PUT" and st in (403, 423)]
        assert lost, "no race happened"
