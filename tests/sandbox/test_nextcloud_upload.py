"""Chunked upload (§4.1) and bulk upload (§4.2) of the Nextcloud sandbox, spoken over HTTP."""

from __future__ import annotations

import hashlib
import json
import os

from tests.fixtures_nextcloud import dav_session, prop_text, propfind

MiB = 1024 * 1024


def uploads(nc, uid, *parts):
    return nc.url + f"/remote.php/dav/uploads/{uid}/" + "/".join(parts)


def chunked(s, nc, uid, dest, chunks, *, upload_id="mig-1", total=None, move_headers=None):
    """Run the v2 request sequence; returns (mkcol, [chunk PUTs], MOVE) responses."""
    dest_url = nc.dav_url(uid, dest)
    common = {"Destination": dest_url}
    if total is not None:
        common["OC-Total-Length"] = str(total)
    mk = s.request("MKCOL", uploads(nc, uid, upload_id), headers=common)
    puts = [s.put(uploads(nc, uid, upload_id, name), data=data, headers=common) for name, data in chunks]
    mv = s.request("MOVE", uploads(nc, uid, upload_id, ".file"), headers={**common, **(move_headers or {})})
    return mk, puts, mv


def test_chunked_upload_full_run(nextcloud_sandbox):
    """§4.1: "MKCOL …/uploads/alice/mig-6796 with Destination + OC-Total-Length … → 201; PUT …/00001, 00002 (5 MiB
    each), 00003 … → 201 each; PROPFIND of the upload folder lists .file … and the chunks; MOVE …/.file with
    Destination, OC-Total-Length, X-OC-MTime: 1500000000, OC-Checksum: SHA1:<hex> → 201, X-OC-MTime: accepted,
    OC-FileId, ETag; the file has mtime 14 Jul 2017, the SHA1 in oc:checksums, identical content; the upload folder
    is gone (404)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "dest"))
    data = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1400 * 1024)]
    whole = b"".join(data)
    sha1 = hashlib.sha1(whole).hexdigest()
    dest_url = nc.dav_url("alice", "dest/big.bin")
    hdr = {"Destination": dest_url, "OC-Total-Length": str(len(whole))}
    assert s.request("MKCOL", uploads(nc, "alice", "mig-6796"), headers=hdr).status_code == 201
    for i, part in enumerate(data, 1):
        assert s.put(uploads(nc, "alice", "mig-6796", f"{i:05d}"), data=part, headers=hdr).status_code == 201
    listing, r = propfind(s, uploads(nc, "alice", "mig-6796"), props=("d:getcontentlength", "d:resourcetype"))
    assert r.status_code == 207
    assert prop_text(listing["/remote.php/dav/uploads/alice/mig-6796/.file"], "d:getcontentlength") == str(len(whole))
    assert "/remote.php/dav/uploads/alice/mig-6796/00003" in listing
    r = s.request("MOVE", uploads(nc, "alice", "mig-6796", ".file"),
                  headers={**hdr, "X-OC-MTime": "1500000000", "OC-Checksum": f"SHA1:{sha1}"})
    assert r.status_code == 201 and r.headers["X-OC-MTime"] == "accepted"
    assert r.headers["OC-FileId"] and r.headers["ETag"]
    info = nc.file_info("alice", "dest/big.bin")
    assert info["sha1"] == sha1 and info["size"] == len(whole) and info["mtime"] == 1500000000
    assert info["checksum"] == f"SHA1:{sha1}"
    assert s.request("PROPFIND", uploads(nc, "alice", "mig-6796"), headers={"Depth": "0"}).status_code == 404
    # overwrite through a second chunked upload answers 204
    _, _, mv = chunked(s, nc, "alice", "dest/big.bin", [("00001", b"small")], upload_id="mig-2")
    assert mv.status_code == 204 and nc.file_info("alice", "dest/big.bin")["checksum"] is None


def test_chunk_names_and_order_v1_path(nextcloud_sandbox):
    """§4.1: "chunk names are not checked (abc and 10001 → 201) and every file in the upload folder is assembled in
    natural name order (chunks 2, 10, 1, abc → content 1,2,10,abc); GET of a chunk → 200 with its bytes; a 1 MiB
    non-last chunk is accepted"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    chunks = [("2", b"2,"), ("10", b"10,"), ("1", b"1,"), ("abc", b"abc"), ]
    mk, puts, mv = chunked(s, nc, "alice", "order.txt", chunks, upload_id="ord")
    assert mk.status_code == 201 and [p.status_code for p in puts] == [201] * 4 and mv.status_code == 201
    assert s.get(nc.dav_url("alice", "order.txt")).content == b"1,2,10,abc"
    s.request("MKCOL", uploads(nc, "alice", "g"))
    assert s.put(uploads(nc, "alice", "g", "10001"), data=b"x" * MiB).status_code == 201
    r = s.get(uploads(nc, "alice", "g", "10001"))
    assert r.status_code == 200 and len(r.content) == MiB


def test_chunked_total_length_mismatch_is_400_and_retryable(nextcloud_sandbox):
    """§4.1: "MOVE with OC-Total-Length: 999 → 400 "Chunks on server do not sum up to 999 but to 2098152 bytes"
    (chunks kept, the MOVE can be retried)"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    _, _, mv = chunked(s, nc, "alice", "sum.bin", [("00001", b"a" * 10), ("00002", b"b" * 5)], upload_id="sum",
                       move_headers={"OC-Total-Length": "999"})
    assert mv.status_code == 400 and "Chunks on server do not sum up to 999 but to 15 bytes" in mv.text
    r = s.request("MOVE", uploads(nc, "alice", "sum", ".file"),
                  headers={"Destination": nc.dav_url("alice", "sum.bin"), "OC-Total-Length": "15"})
    assert r.status_code == 201 and nc.file_info("alice", "sum.bin")["size"] == 15


def test_chunked_quota_507_at_first_chunk(nextcloud_sandbox):
    """§4.1/§8.1: "MKCOL with OC-Total-Length: 104857600 → 201 (no quota check at MKCOL); first chunk PUT with
    Destination + OC-Total-Length: 104857600 → 507 "Insufficient space in /t1, 104857600 required, … available" …;
    chunk PUT without OC-Total-Length (or without Destination) → 201; … then MOVE → 507 … and nothing is created"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "t1"))
    nc.set_quota("alice", 2)
    dest = nc.dav_url("alice", "t1/q.bin")
    hdr = {"Destination": dest, "OC-Total-Length": "104857600"}
    assert s.request("MKCOL", uploads(nc, "alice", "q"), headers=hdr).status_code == 201
    r = s.put(uploads(nc, "alice", "q", "00001"), data=b"x" * 1000, headers=hdr)
    assert r.status_code == 507 and "Insufficient space in /t1, 104857600 required, 2097152 available" in r.text
    assert s.put(uploads(nc, "alice", "q", "00001"), data=b"x" * (MiB + 1),
                 headers={"Destination": dest}).status_code == 201
    assert s.put(uploads(nc, "alice", "q", "00002"), data=b"x" * (MiB + 1)).status_code == 201
    r = s.request("MOVE", uploads(nc, "alice", "q", ".file"), headers={"Destination": dest})
    assert r.status_code == 507 and f"{2 * MiB + 2} required, 2097152 available" in r.text
    assert nc.file_info("alice", "t1/q.bin") is None


def test_chunked_move_into_locked_target_is_423(nextcloud_sandbox):
    """§2.3/§8.3: "Locked → 423"; the final MOVE onto a locked target answers 423 and keeps the chunks."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "lk.bin"), data=b"old")
    nc.lock("alice", "lk.bin")
    _, _, mv = chunked(s, nc, "alice", "lk.bin", [("00001", b"new")], upload_id="lk")
    assert mv.status_code == 423
    nc.unlock("alice", "lk.bin")
    r = s.request("MOVE", uploads(nc, "alice", "lk", ".file"), headers={"Destination": nc.dav_url("alice", "lk.bin")})
    assert r.status_code == 204 and s.get(nc.dav_url("alice", "lk.bin")).content == b"new"


def test_chunked_bad_mtime_and_long_name(nextcloud_sandbox):
    """§3.1: "Chunked MOVE with X-OC-MTime: 5 → 500 after the assembled file was written, and the upload folder
    with its chunks was left behind"; §4.1: "a 251-byte one accepts all chunks and fails only at the MOVE (400
    "Filename is too long")"; Overwrite: F onto an existing file → 412."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    _, _, mv = chunked(s, nc, "alice", "m5.bin", [("00001", b"abc")], upload_id="m5",
                       move_headers={"X-OC-MTime": "5"})
    assert mv.status_code == 500 and "greater than one day" in mv.text
    assert nc.file_info("alice", "m5.bin")["size"] == 3
    assert s.request("PROPFIND", uploads(nc, "alice", "m5"), headers={"Depth": "1"}).status_code == 207
    long_name = "x" * 247 + ".txt"
    _, puts, mv = chunked(s, nc, "alice", long_name, [("00001", b"a"), ("00002", b"b")], upload_id="long")
    assert [p.status_code for p in puts] == [201, 201]
    assert mv.status_code == 400 and "Filename is too long" in mv.text
    _, _, mv = chunked(s, nc, "alice", "m5.bin", [("00001", b"zz")], upload_id="ow",
                       move_headers={"Overwrite": "F"})
    assert mv.status_code == 412
    assert s.delete(uploads(nc, "alice", "ow")).status_code == 204
    assert s.request("PROPFIND", uploads(nc, "alice", "ow"), headers={"Depth": "0"}).status_code == 404


# --- §4.2 bulk upload -------------------------------------------------------------------------------------------
def multipart(parts, boundary="b7e1"):
    """parts: list of (headers dict, body bytes)."""
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        for k, v in headers.items():
            out += f"{k}: {v}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out


def part(path, body, *, md5=True, sha1=False, mtime=None, length=True, checksum=None):
    h = {"X-File-Path": path}
    if md5:
        h["X-File-MD5"] = hashlib.md5(body).hexdigest()
    if sha1:
        h["OC-Checksum"] = "SHA1:" + hashlib.sha1(body).hexdigest()
    if checksum:
        h["OC-Checksum"] = checksum
    if mtime:
        h["X-File-Mtime"] = str(mtime)
    if length:
        h["Content-Length"] = str(len(body))
    return h, body


def bulk(s, nc, parts, content_type="multipart/related; boundary=b7e1"):
    return s.post(nc.url + "/remote.php/dav/bulk", data=multipart(parts), headers={"Content-Type": content_type})


def test_bulk_upload_success(nextcloud_sandbox):
    """§4.2: "two parts with X-File-MD5 + OC-Checksum: SHA1:… + X-File-Mtime → HTTP 200, Content-Type: text/html;
    charset=UTF-8 (not JSON!), body {"\\/t1\\/bulk\\/a.txt":{"error":false,"etag":…,"fileid":…,"permissions":
    "RGDNVW"},…} (slashes escaped, keys exactly as sent …); mtimes applied"; "checksum not stored"; "A part for an
    existing path overwrites it (same fileid)"; "Empty part (Content-Length: 0) → created"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "t1"))
    s.request("MKCOL", nc.dav_url("alice", "t1/bulk"))
    r = bulk(s, nc, [part("/t1/bulk/a.txt", b"Coucou\n", sha1=True, mtime=1700000000),
                     part("t1/bulk/b.txt", b"second", mtime=1600000000), part("/t1/bulk/empty.txt", b"")])
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert '"\\/t1\\/bulk\\/a.txt"' in r.text
    result = json.loads(r.text)
    assert set(result) == {"/t1/bulk/a.txt", "t1/bulk/b.txt", "/t1/bulk/empty.txt"}
    assert all(v["error"] is False and v["permissions"] == "RGDNVW" for v in result.values())
    a = nc.file_info("alice", "t1/bulk/a.txt")
    assert a["mtime"] == 1700000000 and a["checksum"] is None and a["sha1"] == hashlib.sha1(b"Coucou\n").hexdigest()
    assert nc.file_info("alice", "t1/bulk/b.txt")["mtime"] == 1600000000
    assert nc.file_info("alice", "t1/bulk/empty.txt")["size"] == 0
    r = bulk(s, nc, [part("/t1/bulk/a.txt", b"replaced", md5=False, sha1=True)])
    assert r.status_code == 200 and nc.file_info("alice", "t1/bulk/a.txt")["fileid"] == a["fileid"]


def test_bulk_parse_errors_abort(nextcloud_sandbox):
    """§4.2: "neither → 400 []"; "wrong SHA1 in part 2 of 3 → 400, body lists only part 1 …, part 3 not processed;
    missing Content-Length in part 2 → same; SHA1: with upper-case hex → 400 …; sha1:, SHA256:, ADLER32: → accepted;
    Content-Type: multipart/form-data → 400 "Content-Type must be multipart/related""."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = bulk(s, nc, [part("/n.txt", b"x", md5=False)])
    assert r.status_code == 400 and r.text == "[]"
    for bad in (part("/w2.txt", b"two", md5=False, checksum="SHA1:" + "0" * 40), part("/w2.txt", b"two", length=False),
                part("/w2.txt", b"two", md5=False, checksum="SHA1:" + hashlib.sha1(b"two").hexdigest().upper())):
        r = bulk(s, nc, [part("/w1.txt", b"one"), bad, part("/w3.txt", b"three")])
        assert r.status_code == 400 and list(json.loads(r.text)) == ["/w1.txt"]
        assert nc.file_info("alice", "w3.txt") is None and nc.file_info("alice", "w2.txt") is None
    import zlib
    body = b"algos"
    for checksum in ("sha1:" + hashlib.sha1(body).hexdigest(), "SHA256:" + hashlib.sha256(body).hexdigest(),
                     f"ADLER32:{zlib.adler32(body):08x}"):
        r = bulk(s, nc, [part("/alg.txt", body, md5=False, checksum=checksum)])
        assert r.status_code == 200 and json.loads(r.text)["/alg.txt"]["error"] is False, checksum
    r = bulk(s, nc, [part("/f.txt", b"x")], content_type="multipart/form-data; boundary=b7e1")
    assert r.status_code == 400 and "Content-Type must be multipart/related" in r.text


def test_bulk_500_cases(nextcloud_sandbox):
    """§4.2: "an unknown algorithm (FOO:…) → HTTP 500 … "hash_init(): Argument #1 ($algo) must be a valid hashing
    algorithm", and a part named x.part → HTTP 500 … — in both cases the JSON list is lost, earlier parts may be
    written, later parts are not"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = bulk(s, nc, [part("/e1.txt", b"1"), part("/e2.txt", b"2", md5=False, checksum="FOO:abc"),
                     part("/e3.txt", b"3")])
    assert r.status_code == 500 and "must be a valid hashing algorithm" in r.text
    assert nc.file_info("alice", "e1.txt") is not None and nc.file_info("alice", "e3.txt") is None
    r = bulk(s, nc, [part("/p1.txt", b"1"), part("/x.part", b"2"), part("/p3.txt", b"3")])
    assert r.status_code == 500 and "getETag() on null" in r.text
    assert nc.file_info("alice", "p1.txt") is not None and nc.file_info("alice", "p3.txt") is None


def test_bulk_per_part_errors_continue(nextcloud_sandbox):
    """§4.2: "missing parent → error:true Could not create path "/alice/files/t1/bulk/nope/p1.txt"; .htaccess →
    "Invalid path: files/t1/bulk/.htaccess"; X-File-Mtime: 5 → the sanitizer message, file not written; a backslash
    name a\\b.txt is turned into the path a/b.txt (… when a exists the part succeeds and creates a/b.txt), reported
    under the key as sent; a 251-byte name → error:true with an empty message"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    for d in ("t1", "t1/bulk", "t1/bulk/a"):
        s.request("MKCOL", nc.dav_url("alice", d))
    long_name = "/t1/bulk/" + "x" * 247 + ".txt"
    r = bulk(s, nc, [part("/t1/bulk/nope/p1.txt", b"1"), part("/t1/bulk/.htaccess", b"2"),
                     part("/t1/bulk/m.txt", b"3", mtime=5), part("/t1/bulk/a\\b.txt", b"4"),
                     part(long_name, b"5"), part("/t1/bulk/ok.txt", b"6")])
    assert r.status_code == 200
    res = json.loads(r.text)
    assert res["/t1/bulk/nope/p1.txt"] == {"error": True,
                                           "message": 'Could not create path "/alice/files/t1/bulk/nope/p1.txt"'}
    assert res["/t1/bulk/.htaccess"] == {"error": True, "message": "Invalid path: files/t1/bulk/.htaccess"}
    assert res["/t1/bulk/m.txt"]["error"] is True and "greater than one day" in res["/t1/bulk/m.txt"]["message"]
    assert nc.file_info("alice", "t1/bulk/m.txt") is None
    assert res["/t1/bulk/a\\b.txt"]["error"] is False and nc.file_info("alice", "t1/bulk/a/b.txt")["size"] == 1
    assert res[long_name] == {"error": True, "message": ""}
    assert res["/t1/bulk/ok.txt"]["error"] is False


def test_bulk_streams_large_part(nextcloud_sandbox):
    """§4.2 "each part is read into a PHP string (keep batches small in bytes)": the sandbox streams parts to disk;
    a 20 MiB part arrives intact."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    body = os.urandom(20 * MiB)
    r = bulk(s, nc, [part("/large.bin", body)])
    assert r.status_code == 200 and json.loads(r.text)["/large.bin"]["error"] is False
    assert nc.file_info("alice", "large.bin")["sha1"] == hashlib.sha1(body).hexdigest()


def test_chunking_v2_object_store_rules():
    """§4.1: with an object store and Redis "bad chunk name → 400 "Invalid chunk name, must be numeric between 1 and
    10000"; GET of an intermediate upload → 405"; §3.3: "the v2 beforeMove still writes only mtime/creation_time/
    mimetype, so on S3 + Redis it [OC-Checksum] would be lost"; §3.1: "the v2 MOVE (sanitizeMtime) only checks
    is_numeric and runs before assembly, so … a small positive value would be accepted". Sandbox option
    chunking_v2=True; without Destination the same requests take the v1 path."""
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice"], chunking_v2=True) as nc:
        s = dav_session(nc, "alice")
        dest = {"Destination": nc.dav_url("alice", "v2.bin")}
        assert s.request("MKCOL", uploads(nc, "alice", "v2"), headers=dest).status_code == 201
        r = s.put(uploads(nc, "alice", "v2", "abc"), data=b"x", headers=dest)
        assert r.status_code == 400 and "Invalid chunk name, must be numeric between 1 and 10000" in r.text
        assert s.put(uploads(nc, "alice", "v2", "10001"), data=b"x", headers=dest).status_code == 400
        assert s.put(uploads(nc, "alice", "v2", "00001"), data=b"hello", headers=dest).status_code == 201
        assert s.get(uploads(nc, "alice", "v2", "00001")).status_code == 405
        r = s.request("MOVE", uploads(nc, "alice", "v2", ".file"),
                      headers={**dest, "X-OC-MTime": "5", "OC-Checksum": "SHA1:abc"})
        assert r.status_code == 201 and r.headers["X-OC-MTime"] == "accepted"
        info = nc.file_info("alice", "v2.bin")
        assert info["checksum"] is None and info["mtime"] == 5
        s.request("MKCOL", uploads(nc, "alice", "nodest"))
        assert s.put(uploads(nc, "alice", "nodest", "abc"), data=b"v1").status_code == 201
        r = s.request("MOVE", uploads(nc, "alice", "nodest", ".file"),
                      headers={"Destination": nc.dav_url("alice", "v1.bin"), "OC-Checksum": "SHA1:abc"})
        assert r.status_code == 201 and nc.file_info("alice", "v1.bin")["checksum"] == "SHA1:abc"
