"""`--plain-webdav` mode: the fallback target has none of the Nextcloud extensions (reference §10.2, WebDAV column)."""

from __future__ import annotations

import requests

from tests.fixtures_nextcloud import dav_session, propfind


def test_plain_mode_has_no_nextcloud_extensions(plain_webdav_sandbox):
    """§10.2: a generic server has "no" mtime on upload, "no" stored checksum, "single PUT only", no bulk, no
    shares; §10.1: detection starts at /status.php and capabilities, which must be absent here."""
    nc = plain_webdav_sandbox
    s = dav_session(nc, "alice")
    assert requests.get(nc.url + "/status.php").status_code == 404
    r = s.get(nc.url + "/ocs/v2.php/cloud/capabilities?format=json", headers={"OCS-APIRequest": "true"})
    assert r.status_code == 404
    r = s.put(nc.dav_url("alice", "m.txt"), data=b"x", headers={"X-OC-MTime": "1500000000", "OC-Checksum": "SHA1:ab"})
    assert r.status_code == 201 and "X-OC-MTime" not in r.headers and "OC-FileId" not in r.headers
    info = nc.file_info("alice", "m.txt")
    assert info["mtime"] != 1500000000 and info["checksum"] is None
    listing, r = propfind(s, nc.dav_url("alice", "m.txt"), depth="0")
    entry = listing["/remote.php/dav/files/alice/m.txt"]
    assert entry["oc:fileid"][0] == 404 and entry["oc:checksums"][0] == 404 and entry["d:getcontentlength"][0] == 200
    assert s.request("MKCOL", nc.url + "/remote.php/dav/uploads/alice/x").status_code == 404
    r = s.post(nc.url + "/remote.php/dav/bulk", data=b"", headers={"Content-Type": "multipart/related; boundary=b"})
    assert r.status_code == 404
    assert "nextcloud-checksum-update" not in s.options(nc.dav_url("alice")).headers.get("DAV", "")
    assert s.put(nc.dav_url("alice", "missing/x.txt"), data=b"x").status_code == 409   # RFC, not NC's 404


def test_plain_mode_still_isolates_users(plain_webdav_sandbox):
    """§1.2 (auth by app password per user): in plain mode another user's tree is simply forbidden."""
    nc = plain_webdav_sandbox
    s = dav_session(nc, "alice")
    assert s.put(nc.dav_url("bob", "x.txt"), data=b"x").status_code == 403
    assert s.request("PROPFIND", nc.dav_url("bob"), headers={"Depth": "0"}).status_code == 403
    r = s.request("MOVE", nc.dav_url("alice", "a"), headers={"Destination": nc.dav_url("bob", "a")})
    assert r.status_code == 403
    assert requests.get(nc.dav_url("alice"), auth=("alice", "wrong")).status_code == 401
