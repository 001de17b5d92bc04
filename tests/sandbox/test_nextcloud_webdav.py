"""Protocol tests of the Nextcloud sandbox's files endpoint, each pinned to a section of reference/nextcloud-api.md."""

from __future__ import annotations

import hashlib
import time

import requests

from tests.fixtures_nextcloud import dav_session, prop_text, propfind


def put(s, nc, uid, path, data=b"x", **headers):
    return s.put(nc.dav_url(uid, path), data=data, headers=headers)


def mkcol(s, nc, uid, path):
    return s.request("MKCOL", nc.dav_url(uid, path))


# --- §1.2 identity and access ------------------------------------------------------------------------------------
def test_other_users_tree_is_an_empty_collection(nextcloud_sandbox):
    """§1.2: "alice on PROPFIND /remote.php/dav/files/bob/ (Depth 0 or 1) → 207 listing only
    /remote.php/dav/files/bob/ itself; PUT …/files/bob/x.txt → 403 …; MKCOL → 403 …; GET of a file that exists in
    bob's tree → 404"."""
    nc = nextcloud_sandbox
    bob, alice = dav_session(nc, "bob"), dav_session(nc, "alice")
    assert put(bob, nc, "bob", "ft.txt", b"bob's").status_code == 201
    for depth in ("0", "1"):
        listing, r = propfind(alice, nc.dav_url("bob"), depth=depth)
        assert r.status_code == 207
        assert list(listing) == ["/remote.php/dav/files/bob/"]
    r = put(alice, nc, "bob", "x.txt")
    assert r.status_code == 403 and "Permission denied to create file (filename x.txt)" in r.text
    r = mkcol(alice, nc, "bob", "d")
    assert r.status_code == 403 and "Permission denied to create directory" in r.text
    r = alice.get(nc.dav_url("bob", "ft.txt"))
    assert r.status_code == 404 and "File not found: ft.txt in 'bob'" in r.text
    assert not (nc.data_dir / "users" / "bob" / "files" / "x.txt").exists()


def test_unknown_uid_and_files_root(nextcloud_sandbox):
    """§1.2: "A uid that does not exist → 404 "Principal with name nosuchuser not found". PROPFIND
    /remote.php/dav/files/ → 405 "Listing members of this collection is disabled"."""
    nc = nextcloud_sandbox
    alice = dav_session(nc, "alice")
    r = alice.request("PROPFIND", nc.dav_url("nosuchuser"), headers={"Depth": "0"})
    assert r.status_code == 404 and "Principal with name nosuchuser not found" in r.text
    r = alice.request("PROPFIND", nc.url + "/remote.php/dav/files/", headers={"Depth": "1"})
    assert r.status_code == 405 and "Listing members of this collection is disabled" in r.text


def test_wrong_password_is_401_with_basic_challenge(nextcloud_sandbox):
    """§8.2: "attempts 1–11 → 401 …, WWW-Authenticate: Basic realm="Nextcloud", charset="UTF-8""."""
    nc = nextcloud_sandbox
    r = requests.request("PROPFIND", nc.dav_url("alice"), auth=("alice", "wrong"), headers={"Depth": "0"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Nextcloud", charset="UTF-8"'
    assert requests.get(nc.dav_url("alice", "x"), auth=("alice", nc.app_passwords["alice"])).status_code == 404


def test_bruteforce_blocks_every_login_from_the_address(nextcloud_sandbox):
    """§8.2: "From the 12th request on (attempts > 10) → 429 … While blocked, valid app passwords … of other
    users from that IP also got 429 (WebDAV and OCS: {"ocs":{"meta":{"statuscode":429,"message":"Reached maximum
    delay"}}}); /status.php still 200. … occ security:bruteforce:reset 127.0.0.1 lifts it at once"."""
    nc = nextcloud_sandbox
    codes = [requests.request("PROPFIND", nc.dav_url("alice"), auth=("alice", "bad"), headers={"Depth": "0"}
                              ).status_code for _ in range(12)]
    assert codes == [401] * 11 + [429]
    good = dav_session(nc, "bob")
    r = good.request("PROPFIND", nc.dav_url("bob"), headers={"Depth": "0"})
    assert r.status_code == 429 and "too many requests" in r.text
    r = good.get(nc.url + "/ocs/v2.php/cloud/capabilities?format=json", headers={"OCS-APIRequest": "true"})
    assert r.status_code == 429
    assert r.json()["ocs"]["meta"]["statuscode"] == 429
    assert r.json()["ocs"]["meta"]["message"] == "Reached maximum delay"
    assert requests.get(nc.url + "/status.php").status_code == 200
    nc.reset_bruteforce()
    assert good.request("PROPFIND", nc.dav_url("bob"), headers={"Depth": "0"}).status_code == 207


# --- §2.1 PROPFIND -----------------------------------------------------------------------------------------------
def test_propfind_properties(nextcloud_sandbox):
    """§2.1: oc:fileid integer; oc:id = sprintf('%08d', fileid) . instanceid; "home file RGDNVW, home folder
    RGDNVCK"; oc:size recursive for folders; "absent [checksums] = listed in a second <d:propstat> with HTTP/1.1
    404 Not Found"; "creation_time 0 without X-OC-CTime"; files get 32-hex etags, folders 13-hex."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    assert mkcol(s, nc, "alice", "P").status_code == 201
    assert put(s, nc, "alice", "P/a.txt", b"12345", **{"X-OC-MTime": "1700000000"}).status_code == 201
    assert put(s, nc, "alice", "P/b.txt", b"123").status_code == 201
    listing, r = propfind(s, nc.dav_url("alice", "P"))
    folder = listing["/remote.php/dav/files/alice/P/"]
    f = listing["/remote.php/dav/files/alice/P/a.txt"]
    fileid = int(prop_text(f, "oc:fileid"))
    assert prop_text(f, "oc:id").startswith(f"{fileid:08d}oc")
    assert prop_text(f, "oc:permissions") == "RGDNVW"
    assert prop_text(folder, "oc:permissions") == "RGDNVCK"
    assert prop_text(f, "oc:size") == "5" and prop_text(folder, "oc:size") == "8"
    assert prop_text(f, "d:getcontentlength") == "5"
    assert prop_text(f, "d:getlastmodified") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert f["oc:checksums"][0] == 404
    assert prop_text(f, "nc:creation_time") == "0"
    assert int(prop_text(f, "nc:upload_time")) >= int(time.time()) - 60
    assert prop_text(f, "nc:mount-type") == ""
    etag = prop_text(f, "d:getetag")
    assert etag.startswith('"') and len(etag.strip('"')) == 32
    assert len(prop_text(folder, "d:getetag").strip('"')) == 13
    assert folder["d:resourcetype"][1].find("{DAV:}collection") is not None


def test_depth_infinity_returns_subtree(nextcloud_sandbox):
    """§2.1: "PROPFIND with Depth: infinity on files/alice/t4 returned the whole subtree (3 levels) with 207"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = put(s, nc, "alice", "t4/a/b/c.txt", **{"X-NC-WebDAV-Auto-Mkcol": "1"})
    assert r.status_code == 201
    listing, r = propfind(s, nc.dav_url("alice", "t4"), depth="infinity")
    assert r.status_code == 207
    assert "/remote.php/dav/files/alice/t4/a/b/c.txt" in listing


def test_etag_rules(nextcloud_sandbox):
    """§2.1: "A folder's etag changes whenever anything below it changes"; "an overwrite that keeps the size and
    the mtime keeps the old ETag (… repeated PUTs with the same X-OC-MTime)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    mkcol(s, nc, "alice", "E")
    r1 = put(s, nc, "alice", "E/f.txt", b"aaaa", **{"X-OC-MTime": "1600000000"})
    r2 = put(s, nc, "alice", "E/f.txt", b"bbbb", **{"X-OC-MTime": "1600000000"})
    assert r1.headers["ETag"] == r2.headers["ETag"] and r2.status_code == 204
    r3 = put(s, nc, "alice", "E/f.txt", b"ccccc", **{"X-OC-MTime": "1600000000"})
    assert r3.headers["ETag"] != r2.headers["ETag"]
    before = prop_text(propfind(s, nc.dav_url("alice", "E"), depth="0")[0]["/remote.php/dav/files/alice/E/"],
                       "d:getetag")
    put(s, nc, "alice", "E/g.txt", b"new")
    after = prop_text(propfind(s, nc.dav_url("alice", "E"), depth="0")[0]["/remote.php/dav/files/alice/E/"],
                      "d:getetag")
    assert before != after


# --- §2.2 MKCOL --------------------------------------------------------------------------------------------------
def test_mkcol_status_codes(nextcloud_sandbox):
    """§2.2: "201 (with OC-FileId); 405 "The resource you tried to create already exists"; 409 "Parent node does
    not exist"; … 400 for d\\x, a 251-byte name and zz9.filepart"; "MKCOL of any name ending in .part → 405"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = mkcol(s, nc, "alice", "A")
    assert r.status_code == 201 and r.headers.get("OC-FileId")
    r = mkcol(s, nc, "alice", "A")
    assert r.status_code == 405 and "already exists" in r.text
    assert mkcol(s, nc, "alice", "nope/B").status_code == 409
    for bad in ("d\\x", "x" * 251, "zz9.filepart"):
        r = mkcol(s, nc, "alice", bad)
        assert r.status_code == 400, bad
    assert mkcol(s, nc, "alice", "anything.part").status_code == 405


def _six_at_once(nc, request):
    """Six requests released together while a folder takes 0.3 s to make (how the races below are provoked)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    nc.delay("MKCOL", 0.3)
    bar = threading.Barrier(6)

    def one(k):
        bar.wait()
        return request(k)

    try:
        with ThreadPoolExecutor(6) as pool:
            return list(pool.map(one, range(6)))
    finally:
        nc.delay("MKCOL", 0)


def test_simultaneous_mkcols_of_one_path_lose_as_32_0_1_does(nextcloud_sandbox):
    """Six MKCOLs of one path at once on 32.0.1 (fifteen rounds): one 201, one 403 "Could not create directory
    /race/x" (it passed the exists check with the winner), the rest 423 '"/race/x" is locked' while the winner
    holds the path (or 405 once it is done)."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    assert mkcol(s, nc, "alice", "race").status_code == 201
    rs = _six_at_once(nc, lambda _: mkcol(dav_session(nc, "alice"), nc, "alice", "race/x"))
    assert sorted(r.status_code for r in rs) == [201, 403, 423, 423, 423, 423]
    by = {r.status_code: r.text for r in rs}
    assert "<s:message>Could not create directory /race/x</s:message>" in by[403]
    assert "FileLocked" in by[423] and '<s:message>"/race/x" is locked</s:message>' in by[423]
    assert mkcol(s, nc, "alice", "race/x").status_code == 405


def test_auto_mkcol_puts_racing_for_one_folder_lose_as_32_0_1_does(nextcloud_sandbox):
    """Six PUTs with X-NC-WebDAV-Auto-Mkcol: 1 into one missing folder at once on 32.0.1 (ten rounds): 17 201,
    41 423 '"/auto0" is locked', 2 403 "Could not create directory /auto5/x". The sandbox: the PUT making the
    folder 201, one 403, the rest 423 while it is being made (the MKCOL delay is how long that takes)."""
    import re

    nc = nextcloud_sandbox
    rs = _six_at_once(nc, lambda k: put(dav_session(nc, "alice"), nc, "alice", f"new/f{k}.txt",
                                        **{"X-NC-WebDAV-Auto-Mkcol": "1"}))
    assert sorted(r.status_code for r in rs) == [201, 403, 423, 423, 423, 423]
    msg = {r.status_code: re.findall(r"<s:message>(.*?)</s:message>", r.text) for r in rs}
    assert msg[403] == ["Could not create directory /new"] and msg[423] == ['"/new" is locked']
    home = nc.data_dir / "users" / "alice" / "files" / "new"
    assert sorted(p.name for p in home.iterdir()) == [f"f{k}.txt" for k in range(6) if rs[k].status_code == 201]


def test_mkcol_quota_counts_4096(nextcloud_sandbox):
    """§2.2: "quota 3 KB → 507 "Insufficient space in /. 3072 available. Cannot create directory"; quota 10 KB →
    201"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    nc.set_quota("alice", 3 / 1024)
    r = mkcol(s, nc, "alice", "q")
    assert r.status_code == 507 and "3072 available. Cannot create directory" in r.text
    nc.set_quota("alice", 10 / 1024)
    assert mkcol(s, nc, "alice", "q").status_code == 201


def test_auto_mkcol_header(nextcloud_sandbox):
    """§2.2: "PUT …/t4/a/b/c.txt with X-NC-WebDAV-Auto-Mkcol: 1 → 201 … creating t4, t4/a, t4/a/b. The same PUT
    with X-NC-WebDAV-AutoMkcol: 1, with no header, or with X-NC-WebDAV-Auto-Mkcol: true → 404"; "Invalid parent
    name (bad.part/…) → 400; a parent that is a file → 404"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    assert put(s, nc, "alice", "t4/a/b/c.txt").status_code == 404
    assert put(s, nc, "alice", "t4/a/b/c.txt", **{"X-NC-WebDAV-AutoMkcol": "1"}).status_code == 404
    assert put(s, nc, "alice", "t4/a/b/c.txt", **{"X-NC-WebDAV-Auto-Mkcol": "true"}).status_code == 404
    r = put(s, nc, "alice", "t4/a/b/c.txt", **{"X-NC-WebDAV-Auto-Mkcol": "1", "X-OC-MTime": "1700000000"})
    assert r.status_code == 201 and r.headers["X-OC-MTime"] == "accepted"
    assert (nc.data_dir / "users/alice/files/t4/a/b/c.txt").is_file()
    assert put(s, nc, "alice", "bad.part/y.txt", **{"X-NC-WebDAV-Auto-Mkcol": "1"}).status_code == 400
    assert put(s, nc, "alice", "t4/a/b/c.txt/d.txt", **{"X-NC-WebDAV-Auto-Mkcol": "1"}).status_code == 404


# --- §2.3 PUT -----------------------------------------------------------------------------------------------------
def test_put_headers_and_overwrite(nextcloud_sandbox):
    """§2.3: "PUT … with X-OC-MTime: 1700000000, X-OC-CTime: 1600000000 → 201 Created, headers X-OC-MTime:
    accepted, X-OC-CTime: accepted, OC-FileId …, ETag/OC-ETag (same value), Content-Length: 0; overwrite → 204.
    … no X-NC-OwnerId / X-NC-Permissions"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = put(s, nc, "alice", "m1.txt", b"one", **{"X-OC-MTime": "1700000000", "X-OC-CTime": "1600000000"})
    assert r.status_code == 201
    assert r.headers["X-OC-MTime"] == "accepted" and r.headers["X-OC-CTime"] == "accepted"
    assert r.headers["ETag"] == r.headers["OC-ETag"] and r.headers["Content-Length"] == "0"
    assert "X-NC-OwnerId" not in r.headers and "X-NC-Permissions" not in r.headers
    fid = r.headers["OC-FileId"]
    info = nc.file_info("alice", "m1.txt")
    assert info["mtime"] == 1700000000 and info["creation_time"] == 1600000000
    assert fid == f"{info['fileid']:08d}" + fid[8:]
    r = put(s, nc, "alice", "m1.txt", b"two")
    assert r.status_code == 204 and r.headers["OC-FileId"] == fid


def test_put_if_none_match_and_x_hash(nextcloud_sandbox):
    """§2.3: "If-None-Match: * on an existing file → 412 …; on a new one → 201. X-Hash: all → X-Hash-MD5,
    X-Hash-SHA1, X-Hash-SHA256 response headers"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = put(s, nc, "alice", "h.txt", b"data", **{"If-None-Match": "*", "X-Hash": "all"})
    assert r.status_code == 201
    assert r.headers["X-Hash-SHA1"] == hashlib.sha1(b"data").hexdigest()
    assert r.headers["X-Hash-MD5"] == hashlib.md5(b"data").hexdigest()
    assert r.headers["X-Hash-SHA256"] == hashlib.sha256(b"data").hexdigest()
    r = put(s, nc, "alice", "h.txt", b"again", **{"If-None-Match": "*"})
    assert r.status_code == 412 and "If-None-Match" in r.text
    assert nc.file_info("alice", "h.txt")["size"] == 4


def test_put_if_match(nextcloud_sandbox):
    """§2.3 conditional PUT (SabreDAV preconditions, as `If-None-Match: *` above): `If-Match` with the current ETag
    → 204, with a stale one → 412, on a missing file → 412 — how a delta pass avoids overwriting target edits."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    etag = put(s, nc, "alice", "im.txt", b"v1").headers["ETag"]
    assert put(s, nc, "alice", "im.txt", b"v2!", **{"If-Match": etag}).status_code == 204
    r = put(s, nc, "alice", "im.txt", b"v3", **{"If-Match": etag})
    assert r.status_code == 412 and "none of the specified ETags matched" in r.text
    assert s.get(nc.dav_url("alice", "im.txt")).content == b"v2!"
    assert put(s, nc, "alice", "new.txt", b"x", **{"If-Match": "*"}).status_code == 412


def test_put_into_missing_folder_is_404(nextcloud_sandbox):
    """§2.2: "(so a PUT into a missing folder is 404, not 409)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = put(s, nc, "alice", "missing/x.txt")
    assert r.status_code == 404 and "<s:message>File with name //missing could not be located</s:message>" in r.text
    # 32.0.1 names the first folder missing, not the file's parent
    assert mkcol(s, nc, "alice", "top").status_code == 201 and mkcol(s, nc, "alice", "top/have").status_code == 201
    r = put(s, nc, "alice", "top/have/nope/deeper/f.txt")
    assert r.status_code == 404 and "File with name /top/have/nope could not be located" in r.text


def test_put_short_body_is_400(nextcloud_sandbox):
    """§2.3: "Content-Length: 100, 10 bytes sent, client half-close → 400 "Expected filesize of 100 bytes but
    read … and wrote … 0 bytes."" (the sandbox reports the bytes it did read)."""
    import socket

    nc = nextcloud_sandbox
    import base64
    cred = base64.b64encode(f"alice:{nc.app_passwords['alice']}".encode()).decode()
    port = int(nc.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((f"PUT /remote.php/dav/files/alice/short.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Basic {cred}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
                      ).encode() + b"0123456789")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b"Expected filesize of 100 bytes" in data
    assert nc.file_info("alice", "short.bin") is None


def test_put_locked_path_is_423(nextcloud_sandbox):
    """§2.3/§8.3: "second PUT to a path while a slow PUT to it is running → 423 FileLocked"; the sandbox's
    nc.lock() stands in for the concurrent writer."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    put(s, nc, "alice", "locked.bin", b"v1")
    nc.lock("alice", "locked.bin")
    r = put(s, nc, "alice", "locked.bin", b"v2")
    assert r.status_code == 423 and "is locked" in r.text and "FileLocked" in r.text
    nc.unlock("alice", "locked.bin")
    assert put(s, nc, "alice", "locked.bin", b"v2").status_code == 204


def test_concurrent_put_to_same_path_is_423(nextcloud_sandbox):
    """§8.3: "a PUT while another PUT to the same path was streaming → 423 …; the slow PUT then finished with
    201"."""
    import threading

    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    started, release = threading.Event(), threading.Event()

    def slow_body():
        yield b"a" * 1024
        started.set()
        release.wait(10)
        yield b"b" * 1024

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", s.put(nc.dav_url("alice", "slow.bin"),
                                                                     data=slow_body())))
    t.start()
    assert started.wait(10)
    deadline = time.monotonic() + 10
    while not nc.state.busy and time.monotonic() < deadline:     # the server is inside the first PUT's body
        time.sleep(0.01)
    r = dav_session(nc, "alice").put(nc.dav_url("alice", "slow.bin"), data=b"fast")
    release.set()
    t.join(10)
    assert r.status_code == 423
    assert result["r"].status_code == 201 and nc.file_info("alice", "slow.bin")["size"] == 2048


# --- §2.4 / §2.5 MOVE, COPY, DELETE ------------------------------------------------------------------------------
def test_move_copy_status_codes(nextcloud_sandbox):
    """§2.4: "MOVE and COPY with Overwrite: F onto an existing file → 412 …; COPY to a new name → 201, the copy
    keeps the source mtime and gets a new fileid; MOVE into a missing folder → 409 …; path-absolute Destination …
    → 201; Destination in another user's tree → 403; MOVE to moved.part / COPY to .htaccess → 400. Overwriting
    … → 204 … (MOVE: the source's id)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    base = nc.url + "/remote.php/dav/files/alice/"
    put(s, nc, "alice", "a.txt", b"A", **{"X-OC-MTime": "1500000000"})
    put(s, nc, "alice", "b.txt", b"B")
    assert s.request("MOVE", base + "a.txt", headers={"Destination": base + "b.txt", "Overwrite": "F"}
                     ).status_code == 412
    assert s.request("COPY", base + "a.txt", headers={"Destination": base + "b.txt", "Overwrite": "F"}
                     ).status_code == 412
    r = s.request("COPY", base + "a.txt", headers={"Destination": base + "c.txt"})
    assert r.status_code == 201
    a, c = nc.file_info("alice", "a.txt"), nc.file_info("alice", "c.txt")
    assert c["mtime"] == 1500000000 and c["fileid"] != a["fileid"]
    assert s.request("MOVE", base + "a.txt", headers={"Destination": base + "nope/a.txt"}).status_code == 409
    assert s.request("MOVE", base + "a.txt", headers={"Destination": "/remote.php/dav/files/alice/d.txt"}
                     ).status_code == 201
    assert nc.file_info("alice", "d.txt")["fileid"] == a["fileid"]
    assert s.request("MOVE", base + "d.txt", headers={"Destination": nc.url + "/remote.php/dav/files/bob/d.txt"}
                     ).status_code == 403
    assert s.request("MOVE", base + "d.txt", headers={"Destination": base + "moved.part"}).status_code == 400
    assert s.request("COPY", base + "d.txt", headers={"Destination": base + ".htaccess"}).status_code == 400
    r = s.request("MOVE", base + "d.txt", headers={"Destination": base + "b.txt", "Overwrite": "T"})
    assert r.status_code == 204 and nc.file_info("alice", "b.txt")["fileid"] == a["fileid"]


def test_delete(nextcloud_sandbox):
    """§2.5: "DELETE → 204, again → 404; root → 403 "Permission denied to delete home folder""."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    put(s, nc, "alice", "del.txt")
    assert s.delete(nc.dav_url("alice", "del.txt")).status_code == 204
    assert s.delete(nc.dav_url("alice", "del.txt")).status_code == 404
    r = s.delete(nc.dav_url("alice"))
    assert r.status_code == 403 and "Permission denied to delete home folder" in r.text


# --- §2.6 / §3.2 folder mtimes ------------------------------------------------------------------------------------
def test_proppatch_lastmodified_and_propagation(nextcloud_sandbox):
    """§3.2/§2.6: "on folder t5/sub, d:lastmodified 1500000000 + nc:creation_time 1400000000 → 207 with both props
    200 OK, read back as 14 Jul 2017 / 1400000000. d:getlastmodified → 207 with that prop 403; d:displayname → 207
    with 403 …; d:lastmodified 5 → HTTP 500"; "a PUT into it … moved t5/sub and t5 to the current time"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    mkcol(s, nc, "alice", "t5")
    mkcol(s, nc, "alice", "t5/sub")

    def patch(path, inner):
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns">'
                f"<d:set><d:prop>{inner}</d:prop></d:set></d:propertyupdate>")
        return s.request("PROPPATCH", nc.dav_url("alice", path), data=body.encode())

    r = patch("t5/sub", "<d:lastmodified>1500000000</d:lastmodified><nc:creation_time>1400000000</nc:creation_time>")
    assert r.status_code == 207 and "403" not in r.text
    patch("t5", "<d:lastmodified>1500000000</d:lastmodified>")
    entry = propfind(s, nc.dav_url("alice", "t5/sub"), depth="0")[0]["/remote.php/dav/files/alice/t5/sub/"]
    assert prop_text(entry, "d:getlastmodified") == "Fri, 14 Jul 2017 02:40:00 GMT"
    assert prop_text(entry, "nc:creation_time") == "1400000000"
    r = patch("t5/sub", "<d:getlastmodified>Wed, 20 Jul 2022 05:12:23 GMT</d:getlastmodified>")
    assert r.status_code == 207 and "403 Forbidden" in r.text
    r = patch("t5/sub", "<d:displayname>x</d:displayname>")
    assert r.status_code == 207 and "403 Forbidden" in r.text
    assert patch("t5/sub", "<d:lastmodified>5</d:lastmodified>").status_code == 500
    assert patch("t5/sub", "<d:lastmodified>Wed, 20 Jul 2022 05:12:23 GMT</d:lastmodified>").status_code == 500
    put(s, nc, "alice", "t5/sub/f.txt", b"x", **{"X-OC-MTime": "1600000000"})
    listing = propfind(s, nc.dav_url("alice", "t5"), depth="1")[0]
    for href in ("/remote.php/dav/files/alice/t5/", "/remote.php/dav/files/alice/t5/sub/"):
        assert "2017" not in prop_text(listing[href], "d:getlastmodified")


# --- §3 timestamps and checksums ---------------------------------------------------------------------------------
def test_bad_mtime_is_500_after_the_write(nextcloud_sandbox):
    """§3.1: "X-OC-MTime: 86400, 1, -5 → 500 … "greater than one day, got "86400"."; 0x6553F100, abc → 500 … "must
    be a valid integer (unix timestamp), got "abc"." In every case the file was stored anyway (… mtime = server
    time, upload_time 0, no X-OC-MTime: accepted). 86401 → 201 … 1700000000.75 → 201, mtime truncated"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    for value, text in (("86400", "greater than one day"), ("1", "greater than one day"),
                        ("-5", "greater than one day"), ("0x6553F100", "must be a valid integer"),
                        ("abc", "must be a valid integer")):
        r = put(s, nc, "alice", "bad-mtime.txt", value.encode(), **{"X-OC-MTime": value})
        assert r.status_code == 500 and text in r.text and f'got "{value}"' in r.text, value
        assert "X-OC-MTime" not in r.headers
        info = nc.file_info("alice", "bad-mtime.txt")
        assert info["size"] == len(value) and info["upload_time"] == 0 and info["mtime"] > time.time() - 60
    assert put(s, nc, "alice", "ok.txt", **{"X-OC-MTime": "86401"}).status_code == 201
    assert nc.file_info("alice", "ok.txt")["mtime"] == 86401
    assert put(s, nc, "alice", "frac.txt", **{"X-OC-MTime": "1700000000.75"}).status_code == 201
    assert nc.file_info("alice", "frac.txt")["mtime"] == 1700000000


def test_checksum_stored_verbatim_and_cleared(nextcloud_sandbox):
    """§3.3: "PUT … with OC-Checksum: SHA1:0ef5… → 201; PROPFIND <oc:checksums><oc:checksum>SHA1:…; GET response
    header OC-Checksum …. A wrong value … is stored as sent (no validation). A second PUT without the header → 204
    and oc:checksums is gone (404 propstat)"; "a header SHA1:… MD5:… ADLER32:… comes back as three <oc:checksum>
    elements" (§2.1)."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    wrong = "SHA1:" + "0" * 40
    assert put(s, nc, "alice", "ck.txt", b"abc", **{"OC-Checksum": wrong}).status_code == 201
    entry = propfind(s, nc.dav_url("alice", "ck.txt"), depth="0")[0]["/remote.php/dav/files/alice/ck.txt"]
    assert [c.text for c in entry["oc:checksums"][1]] == [wrong]
    assert s.get(nc.dav_url("alice", "ck.txt")).headers["OC-Checksum"] == wrong
    assert nc.file_info("alice", "ck.txt")["checksum"] == wrong
    assert put(s, nc, "alice", "ck.txt", b"abc").status_code == 204
    entry = propfind(s, nc.dav_url("alice", "ck.txt"), depth="0")[0]["/remote.php/dav/files/alice/ck.txt"]
    assert entry["oc:checksums"][0] == 404 and nc.file_info("alice", "ck.txt")["checksum"] is None
    put(s, nc, "alice", "ck.txt", b"abc", **{"OC-Checksum": "SHA1:aa MD5:bb ADLER32:cc"})
    entry = propfind(s, nc.dav_url("alice", "ck.txt"), depth="0")[0]["/remote.php/dav/files/alice/ck.txt"]
    assert [c.text for c in entry["oc:checksums"][1]] == ["SHA1:aa", "MD5:bb", "ADLER32:cc"]


def test_recalculate_hash(nextcloud_sandbox):
    """§3.3: "PATCH + X-Recalculate-Hash: sha1 → 204 with OC-Checksum: SHA1:…, then visible in oc:checksums"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    put(s, nc, "alice", "rh.txt", b"hash me")
    r = s.patch(nc.dav_url("alice", "rh.txt"), headers={"X-Recalculate-Hash": "sha1"})
    assert r.status_code == 204 and r.headers["OC-Checksum"] == "SHA1:" + hashlib.sha1(b"hash me").hexdigest()
    assert nc.file_info("alice", "rh.txt")["checksum"] == r.headers["OC-Checksum"]


# --- §5 names -----------------------------------------------------------------------------------------------------
def test_invalid_names_are_400(nextcloud_sandbox):
    """§5.1: "400 InvalidPath: a\\b.txt …; a%01b, a%09b (TAB), a%0Ab (LF), a%1Fb …; .htaccess and .HTACCESS …;
    x.part, x.PART …; x.filepart …; %20%20%20 → "Empty filename is not allowed"; 251-byte names → "Filename is too
    long"" and §1.4: o:reason re-declares xmlns:o="o:"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    cases = {"a\\b.txt": '"\\" is not allowed', "a\x01b": "invalid character", "a\tb": "invalid character",
             "a\nb": "invalid character", "a\x1fb": "invalid character", ".htaccess": "reserved word",
             ".HTACCESS": "reserved word", "x.part": '".part" is a forbidden file type.',
             "x.PART": '".part" is a forbidden file type.', "x.filepart": '".filepart" is a forbidden file type.',
             "   ": "Empty filename is not allowed", "x" * 247 + ".txt": "Filename is too long",
             "é" * 123 + "x.txt": "Filename is too long", "日" * 83 + ".txt": "Filename is too long"}
    for name, message in cases.items():
        r = put(s, nc, "alice", name)
        assert r.status_code == 400, name
        assert message in r.text, (name, r.text)
        assert '<o:reason xmlns:o="o:">' in r.text
    assert "Filename is too long" in mkcol(s, nc, "alice", "x" * 251).text


def test_accepted_names(nextcloud_sandbox):
    """§5.1: "Accepted (201): a%7Fb.txt (DEL), x.part.txt, trailing dot a., trailing space "a ", leading space
    " a.txt" (stored exactly, not trimmed), w<>:"|?*.txt, CON.txt, emoji"; §5.2: "250-byte names upload by PUT
    (x×246+.txt, é×123+.txt …, 日×82+.txt …)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    for name in ("a\x7fb.txt", "x.part.txt", "a.", "a ", " a.txt", 'w<>:"|?*.txt', "CON.txt", "😀.txt",
                 "x" * 246 + ".txt", "é" * 123 + ".txt", "日" * 82 + ".txt"):
        assert put(s, nc, "alice", name).status_code == 201, name
        assert nc.file_info("alice", name) is not None
    assert (nc.data_dir / "users/alice/files/ a.txt").exists()


def test_nfc_nfd_twins_collide(nextcloud_sandbox):
    """§5.3: "PUT …/t3/Cafe%CC%81.txt (NFD) → 201, fileid 180, stored on disk and listed as NFC Caf%c3%a9.txt;
    then PUT …/t3/Caf%C3%A9.txt (NFC) with other content → 204, same fileid 180 (overwrote it); GET through either
    spelling returns the NFC file's content"; case stays significant ("Report.docx and report.docx → both 201")."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    mkcol(s, nc, "alice", "t3")
    r1 = put(s, nc, "alice", "t3/Cafe\u0301.txt", b"nfd")
    r2 = put(s, nc, "alice", "t3/Caf\u00e9.txt", b"nfc!")
    assert (r1.status_code, r2.status_code) == (201, 204)
    assert r1.headers["OC-FileId"] == r2.headers["OC-FileId"]
    assert [p.name for p in (nc.data_dir / "users/alice/files/t3").iterdir()] == ["Caf\u00e9.txt"]
    assert s.get(nc.dav_url("alice", "t3/Cafe\u0301.txt")).content == b"nfc!"
    listing = propfind(s, nc.dav_url("alice", "t3"))[0]
    assert "/remote.php/dav/files/alice/t3/Caf\u00e9.txt" in listing
    assert put(s, nc, "alice", "t3/Report.docx", b"1").status_code == 201
    assert put(s, nc, "alice", "t3/report.docx", b"2").status_code == 201


def test_part_paths_look_present(nextcloud_sandbox):
    """§5.1: "any path whose name ends in .part looks present: PROPFIND of a non-existent anything.part → 207 with
    getcontentlength 0 and an empty ETag, MKCOL → 405 "already exists", GET → 503 "Could not open file: …, file
    doesn't seem to exist", DELETE → 204"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    listing, r = propfind(s, nc.dav_url("alice", "anything.part"), depth="0")
    entry = listing["/remote.php/dav/files/alice/anything.part"]
    assert r.status_code == 207 and prop_text(entry, "d:getcontentlength") == "0"
    assert prop_text(entry, "d:getetag") == ""
    assert mkcol(s, nc, "alice", "anything.part").status_code == 405
    r = s.get(nc.dav_url("alice", "anything.part"))
    assert r.status_code == 503 and "file doesn't seem to exist" in r.text
    assert s.delete(nc.dav_url("alice", "anything.part")).status_code == 204


# --- §8.1 quota ---------------------------------------------------------------------------------------------------
def test_put_over_quota_is_507(nextcloud_sandbox):
    """§8.1: "plain PUT of 5 MiB with OC-Total-Length: 104857600 → 507 "Insufficient space in /t1/q-plain.bin,
    104857600 required, 14330534 available"; same with X-Expected-Entity-Length"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    mkcol(s, nc, "alice", "t1")
    nc.set_quota("alice", 1)
    for hdr in ("OC-Total-Length", "X-Expected-Entity-Length"):
        r = put(s, nc, "alice", "t1/q-plain.bin", b"x" * 1000, **{hdr: "104857600"})
        assert r.status_code == 507
        assert "Insufficient space in /t1/q-plain.bin, 104857600 required, 1048576 available" in r.text
    assert put(s, nc, "alice", "t1/big.bin", b"x" * (1024 * 1024 + 1)).status_code == 507
    assert put(s, nc, "alice", "t1/ok.bin", b"x" * 1000).status_code == 201


# --- §10.1 detection ------------------------------------------------------------------------------------------------
def test_status_php_and_options(nextcloud_sandbox):
    """§10.1: "/status.php … {"installed":true,"maintenance":false,"needsDbUpgrade":false,"version":"32.0.1.2",
    "versionstring":"32.0.1",…,"productname":"Nextcloud"…}"; "OPTIONS … DAV: 1, 3, extended-mkcol, … nextcloud-
    checksum-update"."""
    nc = nextcloud_sandbox
    st = requests.get(nc.url + "/status.php").json()
    assert st["installed"] is True and st["maintenance"] is False and st["versionstring"] == "32.0.1"
    assert st["productname"] == "Nextcloud"
    r = dav_session(nc, "alice").options(nc.dav_url("alice"))
    assert r.status_code == 200 and "nextcloud-checksum-update" in r.headers["DAV"]


def test_request_log(nextcloud_sandbox):
    """The in-process API's `requests` log (for the plan's "no writes to the target" check)."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    put(s, nc, "alice", "logged.txt")
    assert ("PUT", "/remote.php/dav/files/alice/logged.txt", 201) in nc.requests


def test_parallel_writers(nextcloud_sandbox):
    """§8.3 "limit concurrent writers per folder" is the client's job; the sandbox itself is threaded (≥ 16 workers)
    and keeps fileids unique under 16 parallel writers across folders."""
    from concurrent.futures import ThreadPoolExecutor

    nc = nextcloud_sandbox
    sessions = [dav_session(nc, "alice") for _ in range(16)]
    for w in range(16):
        assert mkcol(sessions[w], nc, "alice", f"par{w}").status_code == 201

    def work(i):
        s = sessions[i % 16]
        return put(s, nc, "alice", f"par{i % 16}/f{i}.bin", str(i).encode() * 100,
                   **{"X-OC-MTime": str(1600000000 + i)}).headers.get("OC-FileId")

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(work, range(320)))
    assert len(set(ids)) == 320 and None not in ids
    assert nc.file_info("alice", "par7/f23.bin")["mtime"] == 1600000023
    listing, _ = propfind(sessions[0], nc.dav_url("alice", "par3"))
    assert len(listing) == 1 + 20


def test_restart_on_same_data_dir_keeps_state(tmp_path):
    """A restarted `--data DIR` sandbox is the same server: app passwords, fileids (§2.1 "unique per instance"),
    stored checksums (§3.3), team folders (§7) and shares (§6) survive; new users are added."""
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice", "bob"], groups={"staff": ["alice", "bob"]}, data_dir=tmp_path) as nc:
        s = dav_session(nc, "alice")
        r = put(s, nc, "alice", "keep.txt", b"kept", **{"OC-Checksum": "SHA1:abc"})
        fid = nc.create_team_folder("Projects", groups={"staff": 31})
        s.post(nc.url + "/ocs/v2.php/apps/files_sharing/api/v1/shares", data={"path": "/keep.txt", "shareType": 0,
               "shareWith": "bob"}, headers={"OCS-APIRequest": "true"})
        passwords, admin, file_id = dict(nc.app_passwords), nc.admin, r.headers["OC-FileId"]
    with NextcloudSandbox(users=["alice", "bob", "carol"], data_dir=tmp_path) as nc:
        assert nc.admin == admin and {k: nc.app_passwords[k] for k in passwords} == passwords
        assert "carol" in nc.app_passwords
        s = dav_session(nc, "alice")
        entry = propfind(s, nc.dav_url("alice", "keep.txt"), depth="0")[0]["/remote.php/dav/files/alice/keep.txt"]
        assert prop_text(entry, "oc:id") == file_id and entry["oc:checksums"][1][0].text == "SHA1:abc"
        assert put(s, nc, "alice", "Projects/x.txt").status_code == 201
        assert (tmp_path / f"__groupfolders/{fid}/files/x.txt").exists()
        assert [x["share_with"] for x in nc.shares] == ["bob"]


def test_move_and_delete_honour_if_match_like_sabre(nextcloud_sandbox):
    """Sabre checks If-Match before every method (verified on NC 32.0.1): a stale etag → 412 naming If-Match, a
    missing resource → 412 "… did not exist", the right one → the MOVE (201, file etag kept) or DELETE (204)."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    url = nc.dav_url("alice")
    r = s.put(url + "im-a.txt", data=b"abc")
    assert r.status_code == 201
    etag = r.headers["ETag"]
    move = {"Destination": url + "im-b.txt", "Overwrite": "F"}
    r = s.request("MOVE", url + "im-a.txt", headers={**move, "If-Match": '"stale"'})
    assert r.status_code == 412 and "If-Match header was specified, but none" in r.text
    r = s.request("MOVE", url + "im-nothing.txt", headers={**move, "If-Match": etag})
    assert r.status_code == 412 and "did not exist" in r.text
    assert s.request("MOVE", url + "im-a.txt", headers={**move, "If-Match": etag}).status_code == 201
    assert nc.file_info("alice", "im-b.txt")["etag"] == etag.strip('"')  # a MOVE keeps the file's etag
    r = s.request("DELETE", url + "im-b.txt", headers={"If-Match": '"stale"'})
    assert r.status_code == 412 and "If-Match" in r.text
    assert s.request("DELETE", url + "im-b.txt", headers={"If-Match": etag}).status_code == 204


def test_tagged_if_headers_on_put_move_delete_and_the_chunk_move(nextcloud_sandbox):
    """Sabre evaluates `If: <url> (["etag"])` before PUT, MOVE and DELETE (412 naming the If header when no list
    holds); on the final chunk MOVE `If-Match` is judged against the upload's `.file` (always 412, 32.0.1) while a
    tagged `If` naming the destination is judged against the destination."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    url = nc.dav_url("alice", "t.txt")
    etag = put(s, nc, "alice", "t.txt", b"one").headers["ETag"]
    stale = '"0000"'
    r = s.put(url, data=b"two", headers={"If": f"<{url}> ([{stale}])"})
    assert r.status_code == 412 and "<s:header>If</s:header>" in r.text
    assert "Failed to find a valid token/etag combination for files/alice/t.txt" in r.text
    r = s.put(url, data=b"two", headers={"If": f"<{url}> ([{etag.strip(chr(34))}])"})  # unquoted: no match
    assert r.status_code == 412
    r = s.put(url, data=b"two!", headers={"If": f"<{url}> ([{etag}])"})
    assert r.status_code == 204
    etag = r.headers["ETag"]
    dest = nc.dav_url("alice", "u.txt")
    assert s.request("MOVE", url, headers={"Destination": dest, "If": f"([{stale}])"}).status_code == 412
    assert s.request("MOVE", url, headers={"Destination": dest, "If": f"([{etag}])"}).status_code == 201
    assert s.request("DELETE", dest, headers={"If": f"<{dest}> ([{stale}])"}).status_code == 412
    up = f"{nc.url}/remote.php/dav/uploads/alice/cond-1"
    assert s.request("MKCOL", up, headers={"Destination": dest}).status_code == 201
    assert s.put(f"{up}/00001", data=b"assembled", headers={"Destination": dest}).status_code == 201
    r = s.request("MOVE", f"{up}/.file", headers={"Destination": dest, "If-Match": etag})
    assert r.status_code == 412 and "If-Match" in r.text
    r = s.request("MOVE", f"{up}/.file", headers={"Destination": dest, "If": f"<{dest}> ([{stale}])"})
    assert r.status_code == 412
    r = s.request("MOVE", f"{up}/.file", headers={"Destination": dest, "If": f"<{dest}> ([{etag}])"})
    assert r.status_code == 204
    assert s.get(dest).content == b"assembled"
