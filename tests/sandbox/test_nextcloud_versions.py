"""File versions of the Nextcloud sandbox (reference §9.1, §9.2)."""

from __future__ import annotations

from tests.fixtures_nextcloud import dav_session, prop_text, propfind

VPROPS = ("d:getlastmodified", "d:getcontentlength", "d:getetag", "nc:version-author", "nc:version-label")


def versions_url(nc, uid, fileid, ts=""):
    return f"{nc.url}/remote.php/dav/versions/{uid}/versions/{fileid}" + (f"/{ts}" if ts else "")


def replay(s, nc, uid, path):
    """Three versions oldest-first, each PUT with its own X-OC-MTime (§9.2 point 3)."""
    codes = []
    for i, mtime in enumerate((1600000000, 1650000000, 1700000000), 1):
        r = s.put(nc.dav_url(uid, path), data=f"version {i}".encode() + b"." * i, headers={"X-OC-MTime": str(mtime)})
        codes.append(r.status_code)
    return codes


def test_replayed_versions_are_named_by_their_mtimes(nextcloud_sandbox):
    """§9.2: "three PUTs of t7/doc.txt with X-OC-MTime 1600000000, 1650000000, 1700000000 (201, 204, 204) → versions
    1600000000 (…"version 1"), 1650000000 …, 1700000000 (…, current)"; §9.1: "the listing includes the current content
    as the newest entry …, each with d:getlastmodified, d:getcontentlength, d:getetag (= the timestamp) and
    nc:version-author (alice); nc:version-label is a 404 propstat until set. GET of older entries returns their
    content; GET of the current entry → 404 in a home folder"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "t7"))
    assert replay(s, nc, "alice", "t7/doc.txt") == [201, 204, 204]
    fileid = nc.file_info("alice", "t7/doc.txt")["fileid"]
    listing, r = propfind(s, versions_url(nc, "alice", fileid), props=VPROPS)
    assert r.status_code == 207
    base = f"/remote.php/dav/versions/alice/versions/{fileid}/"
    names = sorted(h[len(base):] for h in listing if h.startswith(base) and h != base)
    assert names == ["1600000000", "1650000000", "1700000000"]
    first = listing[base + "1600000000"]
    assert prop_text(first, "d:getetag") == '"1600000000"' and prop_text(first, "nc:version-author") == "alice"
    assert prop_text(first, "d:getcontentlength") == str(len(b"version 1."))
    assert first["nc:version-label"][0] == 404
    assert s.get(versions_url(nc, "alice", fileid, "1600000000")).content == b"version 1."
    assert s.get(versions_url(nc, "alice", fileid, "1700000000")).status_code == 404
    assert dav_session(nc, "bob").request("PROPFIND", versions_url(nc, "bob", fileid)).status_code == 404


def test_same_mtime_keeps_one_row_and_label_and_restore(nextcloud_sandbox):
    """§9.2: "Re-PUTting the same size with the same X-OC-MTime leaves a single version row"; §9.1: "PROPPATCH
    nc:version-label on …/versions/333/1600000000 → 207/200 and is read back. MOVE …/versions/238/1600000000 →
    Destination: …/versions/alice/restore/target → 201; the file then has version 1's content and mtime … and the
    replaced content appears as version 1700000000"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    for _ in range(2):
        s.put(nc.dav_url("alice", "same.txt"), data=b"abc", headers={"X-OC-MTime": "1600000000"})
    fileid = nc.file_info("alice", "same.txt")["fileid"]
    listing, _ = propfind(s, versions_url(nc, "alice", fileid), props=VPROPS)
    assert len(listing) == 2     # the collection and one version
    replay(s, nc, "alice", "doc.txt")
    fileid = nc.file_info("alice", "doc.txt")["fileid"]
    body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:set><d:prop>'
            "<nc:version-label>v1 by J. Doe</nc:version-label></d:prop></d:set></d:propertyupdate>")
    r = s.request("PROPPATCH", versions_url(nc, "alice", fileid, "1600000000"), data=body.encode())
    assert r.status_code == 207 and "200 OK" in r.text
    entry = propfind(s, versions_url(nc, "alice", fileid), props=VPROPS)[0][
        f"/remote.php/dav/versions/alice/versions/{fileid}/1600000000"]
    assert prop_text(entry, "nc:version-label") == "v1 by J. Doe"
    r = s.request("MOVE", versions_url(nc, "alice", fileid, "1600000000"),
                  headers={"Destination": f"{nc.url}/remote.php/dav/versions/alice/restore/target"})
    assert r.status_code == 201
    info = nc.file_info("alice", "doc.txt")
    assert info["mtime"] == 1600000000 and s.get(nc.dav_url("alice", "doc.txt")).content == b"version 1."
    assert s.get(versions_url(nc, "alice", fileid, "1700000000")).content == b"version 3..."


def test_team_folder_versions(nextcloud_sandbox):
    """§9.2 point 6: "the same three-step replay into Projects/doc.txt (team folder) gives the same version names …
    Differences: GET of the current entry works"."""
    nc = nextcloud_sandbox
    nc.create_team_folder("Projects", groups={"staff": 31})
    s = dav_session(nc, "alice")
    replay(s, nc, "alice", "Projects/doc.txt")
    fileid = nc.file_info("alice", "Projects/doc.txt")["fileid"]
    listing, _ = propfind(dav_session(nc, "bob"), versions_url(nc, "bob", fileid), props=VPROPS)
    assert len(listing) == 4
    assert s.get(versions_url(nc, "alice", fileid, "1700000000")).content == b"version 3..."


def _hourly(s, nc, uid, path, label_first: str | None = None):
    """Five PUTs one hour apart with September 2020 mtimes (the rig's check of §9.2 point 4)."""
    for k in range(5):
        s.put(nc.dav_url(uid, path), data=b"v" * (k + 1), headers={"X-OC-MTime": str(1600000000 + 3600 * k)})
    fileid = nc.file_info(uid, path)["fileid"]
    if label_first:
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:set>'
                f"<d:prop><nc:version-label>{label_first}</nc:version-label></d:prop></d:set></d:propertyupdate>")
        assert s.request("PROPPATCH", versions_url(nc, uid, fileid, "1600000000"), data=body.encode()).status_code == 207
    return fileid


def _names(s, nc, uid, fileid):
    listing, _ = propfind(s, versions_url(nc, uid, fileid), props=VPROPS)
    base = f"/remote.php/dav/versions/{uid}/versions/{fileid}/"
    return sorted(h[len(base):] for h in listing if h.startswith(base) and h != base)


def test_retention_job_thins_old_unlabelled_versions_never_labelled_ones(nextcloud_sandbox):
    """§9.2 point 4 (corrected on 32.0.1): "Five PUTs one hour apart with September 2020 mtimes were all listed
    right after the upload (home and team folder); the next cron.php run thinned the home file to 1600010800 +
    current 1600014400; the team-folder file was thinned the same way only by occ groupfolders:expire … A version
    labelled before the cron run survived (1600000000 kept with its label, 1600003600 expired)"."""
    nc = nextcloud_sandbox
    nc.create_team_folder("Projects", groups={"staff": 31})
    s = dav_session(nc, "alice")
    home = _hourly(s, nc, "alice", "h.txt")
    labelled = _hourly(s, nc, "alice", "l.txt", label_first="v1 by J. Doe")
    team = _hourly(s, nc, "alice", "Projects/t.txt")
    every = [str(1600000000 + 3600 * k) for k in range(5)]
    assert _names(s, nc, "alice", home) == _names(s, nc, "alice", team) == every   # nothing thinned at upload
    nc.expire_versions()                                                           # cron.php: homes only
    assert _names(s, nc, "alice", home) == ["1600010800", "1600014400"]
    assert _names(s, nc, "alice", labelled) == ["1600000000", "1600010800", "1600014400"]
    assert _names(s, nc, "alice", team) == every
    nc.expire_versions(team_folders=True)                                          # occ groupfolders:expire
    assert _names(s, nc, "alice", team) == ["1600010800", "1600014400"]


def test_recent_versions_are_kept_one_per_interval():
    """files_versions' auto intervals: within a day one per hour, counted from the last version kept."""
    from migrate.sandbox.nextcloud.versions import auto_expire_list

    now = 2_000_000_000
    assert auto_expire_list([now - 7200, now - 7300, now - 7400, now - 11000], now) == [now - 7300, now - 7400]
    assert auto_expire_list([now - 7200, now - 11000], now) == []
