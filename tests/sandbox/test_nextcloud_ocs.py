"""OCS, shares, provisioning and team folders of the Nextcloud sandbox (§1.3, §6, §7, §10.1)."""

from __future__ import annotations

import datetime as dt

import requests

from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.fixtures_nextcloud import dav_session, prop_text, propfind

OCS = {"OCS-APIRequest": "true"}
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"


def ocs(s, nc, method, api, data=None, v=2, **params):
    params.setdefault("format", "json")
    url = nc.url + api.replace("/ocs/v2.php/", f"/ocs/v{v}.php/")
    return s.request(method, url, params=params, data=data, headers=OCS)


def share(s, nc, data, v=2):
    return ocs(s, nc, "POST", SHARES, data=data, v=v)


def test_capabilities(nextcloud_sandbox):
    """§10.1: "version {major:32, minor:0, micro:1, string:"32.0.1"}, dav {chunking:"1.0", public_shares_chunking:
    false, bulkupload:"1.0", …}, files.forbidden_* as in §5.1, files.chunked_upload, groupfolders {appVersion:
    "20.1.18", hasGroupFolders:true}"; §5.1: "defaults published are forbidden_filenames [".htaccess"], …
    forbidden_filename_characters ["\\\\","/"], forbidden_filename_extensions [".filepart",".part"]"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    r = ocs(s, nc, "GET", "/ocs/v2.php/cloud/capabilities")
    assert r.status_code == 200
    data = r.json()["ocs"]["data"]
    assert data["version"]["major"] == 32 and data["version"]["string"] == "32.0.1"
    caps = data["capabilities"]
    assert caps["dav"]["chunking"] == "1.0" and caps["dav"]["bulkupload"] == "1.0"
    assert caps["dav"]["public_shares_chunking"] is False
    assert caps["files"]["forbidden_filenames"] == [".htaccess"]
    assert caps["files"]["forbidden_filename_characters"] == ["\\", "/"]
    assert caps["files"]["forbidden_filename_extensions"] == [".filepart", ".part"]
    assert caps["files"]["forbidden_filename_basenames"] == []
    assert caps["files"]["chunked_upload"] == {"max_size": 104857600, "max_parallel_count": 5}
    assert caps["groupfolders"] == {"appVersion": "20.1.18", "hasGroupFolders": False}
    nc.create_team_folder("Projects", groups={"staff": 31})
    caps = ocs(s, nc, "GET", "/ocs/v2.php/cloud/capabilities").json()["ocs"]["data"]["capabilities"]
    assert caps["groupfolders"]["hasGroupFolders"] is True
    xml = s.get(nc.url + "/ocs/v2.php/cloud/capabilities", headers=OCS)
    assert xml.status_code == 200 and xml.text.startswith("<?xml") and "<chunking>1.0</chunking>" in xml.text


def test_csrf_without_ocs_header_is_412(nextcloud_sandbox):
    """§1.3: "without the header → HTTP 412, body {"message":"CSRF check failed"} (shares API and groupfolders
    API)"."""
    nc = nextcloud_sandbox
    alice, admin = dav_session(nc, "alice"), dav_session(nc, "admin")
    r = alice.get(nc.url + SHARES + "?format=json")
    assert r.status_code == 412 and r.json() == {"message": "CSRF check failed"}
    r = admin.post(nc.url + "/index.php/apps/groupfolders/folders?format=json", data={"mountpoint": "X"})
    assert r.status_code == 412 and r.json() == {"message": "CSRF check failed"}


def test_v1_and_v2_envelopes(nextcloud_sandbox):
    """§1.3: "v1 share to an unknown user → HTTP 200, statuscode 404; v2 → HTTP 404"; v1 OK is statuscode 100."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "f.txt"), data=b"x")
    body = {"path": "/f.txt", "shareType": 0, "shareWith": "nosuchuser"}
    r1, r2 = share(s, nc, body, v=1), share(s, nc, body, v=2)
    assert r1.status_code == 200 and r1.json()["ocs"]["meta"]["statuscode"] == 404
    assert r2.status_code == 404 and r2.json()["ocs"]["meta"]["statuscode"] == 404
    assert r2.json()["ocs"]["meta"]["message"] == "Please specify a valid account to share with"
    r = share(s, nc, {"path": "/f.txt", "shareType": 0, "shareWith": "bob"}, v=1)
    assert r.status_code == 200 and r.json()["ocs"]["meta"]["statuscode"] == 100


def test_user_share_fields_and_duplicate(nextcloud_sandbox):
    """§6.1: "path=/t6/file.txt&shareType=0&shareWith=bob&permissions=1&sendMail=false&note=Migrated → HTTP 200,
    {…"share_type":0,"share_with":"bob","permissions":1,"item_permissions":27,"item_type":"file","path":
    "/t6/file.txt","file_target":"/file.txt","uid_owner":"alice","uid_file_owner":"alice","mail_send":0,…}";
    §6.3: duplicate → "HTTP 200 … returning the existing share (same id); requested permissions/note are
    ignored"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "t6"))
    s.put(nc.dav_url("alice", "t6/file.txt"), data=b"x")
    r = share(s, nc, {"path": "/t6/file.txt", "shareType": 0, "shareWith": "bob", "permissions": 1,
                      "sendMail": "false", "note": "Migrated"})
    assert r.status_code == 200
    d = r.json()["ocs"]["data"]
    assert isinstance(d["id"], str)
    expected = {"share_type": 0, "share_with": "bob", "permissions": 1, "item_permissions": 27, "item_type": "file",
                "path": "/t6/file.txt", "file_target": "/file.txt", "uid_owner": "alice", "uid_file_owner": "alice",
                "mail_send": 0, "note": "Migrated"}
    assert {k: d[k] for k in expected} == expected
    again = share(s, nc, {"path": "/t6/file.txt", "shareType": 0, "shareWith": "bob", "permissions": 3,
                          "note": "changed"})
    assert again.status_code == 200
    a = again.json()["ocs"]["data"]
    assert (a["id"], a["permissions"], a["note"]) == (d["id"], 1, "Migrated")
    assert len(nc.shares) == 1
    r = share(s, nc, {"path": "/t6/file.txt", "shareType": 0, "shareWith": "carol", "sendMail": "true"})
    assert r.json()["ocs"]["data"]["mail_send"] == 1


def test_permission_rules(nextcloud_sandbox):
    """§6.2: "user share permissions=1 on a file → 1 (item_permissions 27) and on a folder → 1 (31); no permissions
    on a file → 19; permissions=2 on a file → 3 (read OR-ed in); permissions=15 on a file → 3 …; group share
    (shareType=1, staff, 31) on a folder → 31; link permissions=1 on a file and on a folder → 17; link 15 on a folder
    → 31; link 4 on a folder → 4 (file drop); link 4 on a file → 400 "Share must at least have READ or CREATE
    permissions""."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.request("MKCOL", nc.dav_url("alice", "dir"))
    for name in ["f1", "f2", "f3", "f4"]:
        s.put(nc.dav_url("alice", name), data=b"x")
    cases = [({"path": "/f1", "shareType": 0, "shareWith": "bob", "permissions": 1}, 1, 27),
             ({"path": "/dir", "shareType": 0, "shareWith": "bob", "permissions": 1}, 1, 31),
             ({"path": "/f2", "shareType": 0, "shareWith": "bob"}, 19, 27),
             ({"path": "/f3", "shareType": 0, "shareWith": "bob", "permissions": 2}, 3, 27),
             ({"path": "/f4", "shareType": 0, "shareWith": "carol", "permissions": 15}, 3, 27),
             ({"path": "/dir", "shareType": 1, "shareWith": "staff", "permissions": 31}, 31, 31),
             ({"path": "/f1", "shareType": 3, "permissions": 1}, 17, 27),
             ({"path": "/dir", "shareType": 3, "permissions": 1}, 17, 31),
             ({"path": "/dir", "shareType": 3, "permissions": 15}, 31, 31),
             ({"path": "/dir", "shareType": 3, "permissions": 4}, 4, 31)]
    for body, perms, item in cases:
        r = share(s, nc, body)
        assert r.status_code == 200, (body, r.text)
        d = r.json()["ocs"]["data"]
        assert (d["permissions"], d["item_permissions"]) == (perms, item), body
    r = share(s, nc, {"path": "/f1", "shareType": 3, "permissions": 4})
    assert r.status_code == 400
    assert r.json()["ocs"]["meta"]["message"] == "Share must at least have READ or CREATE permissions"


def test_cannot_increase_permissions(nextcloud_sandbox):
    """§6.2: "The requested bits must be a subset of the sharer's own permissions on the node, otherwise "Cannot
    increase permissions of %s" (404)" — a team folder granted read+share only."""
    nc = nextcloud_sandbox
    nc.create_team_folder("RO", groups={"staff": 17})
    s = dav_session(nc, "alice")
    r = share(s, nc, {"path": "/RO", "shareType": 0, "shareWith": "carol", "permissions": 15})
    assert r.status_code == 404 and r.json()["ocs"]["meta"]["message"] == "Cannot increase permissions of RO"
    r = share(s, nc, {"path": "/RO", "shareType": 0, "shareWith": "carol", "permissions": 17})
    assert r.status_code == 200 and r.json()["ocs"]["data"]["permissions"] == 17


def test_share_errors(nextcloud_sandbox):
    """§6.3: "no path → 404 "Please specify a file or folder path"; /t6/nope.txt → 404 "Wrong path, file/folder does
    not exist"; … nosuchgroup → 404 "Please specify a valid group"; shareType=99 → 400 "Unknown share type"; path=/ →
    403 "You cannot share your root folder"; shareWith=alice by alice → 403 "Cannot share with yourself"";
    "Expiration date is in the past" 404; "password=a → 400 "Password is among the 1,000,000 most common ones.
    Please make it unique. Password needs to be at least 10 characters long.""; an admin cannot reach alice's
    file (§6.5)."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "f.txt"), data=b"x")
    past = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    cases = [({"shareType": 0, "shareWith": "bob"}, 404, "Please specify a file or folder path"),
             ({"path": "/t6/nope.txt", "shareType": 0, "shareWith": "bob"}, 404,
              "Wrong path, file/folder does not exist"),
             ({"path": "/f.txt", "shareType": 1, "shareWith": "nosuchgroup"}, 404, "Please specify a valid group"),
             ({"path": "/f.txt", "shareType": 99, "shareWith": "bob"}, 400, "Unknown share type"),
             ({"path": "/", "shareType": 0, "shareWith": "bob"}, 403, "You cannot share your root folder"),
             ({"path": "/f.txt", "shareType": 0, "shareWith": "alice"}, 403, "Cannot share with yourself"),
             ({"path": "/f.txt", "shareType": 0, "shareWith": "bob", "expireDate": past}, 404,
              "Expiration date is in the past"),
             ({"path": "/f.txt", "shareType": 3, "password": "a"}, 400,
              "Password is among the 1,000,000 most common ones. Please make it unique. Password needs to be at "
              "least 10 characters long.")]
    for body, code, message in cases:
        r = share(s, nc, body)
        assert (r.status_code, r.json()["ocs"]["meta"]["message"]) == (code, message), body
    r = share(dav_session(nc, "admin"), nc, {"path": "/f.txt", "shareType": 0, "shareWith": "bob"})
    assert r.status_code == 404


def test_link_share_password_expiry(nextcloud_sandbox):
    """§6.1: "expireDate=2027-06-30 → "expiration":"2027-06-30 00:00:00"; a non-ISO 30.06.2027 was also accepted";
    "A password-protected link share returns the … hash in both password and share_with ("3|$argon2id$…"), never
    the clear text"; "link shares report mail_send: 1 whatever is sent"."""
    nc = nextcloud_sandbox
    s = dav_session(nc, "alice")
    s.put(nc.dav_url("alice", "f.txt"), data=b"x")
    year = dt.date.today().year + 1
    r = share(s, nc, {"path": "/f.txt", "shareType": 3, "expireDate": f"{year}-06-30",
                      "password": "Correct-Horse-Battery-9", "sendMail": "false"})
    d = r.json()["ocs"]["data"]
    assert r.status_code == 200 and d["expiration"] == f"{year}-06-30 00:00:00"
    assert d["mail_send"] == 1 and d["token"] and d["url"].endswith("/index.php/s/" + d["token"])
    assert "Correct-Horse" not in r.text and d["share_with"] == f"{d['id']}|{d['password']}"
    r = share(s, nc, {"path": "/f.txt", "shareType": 3, "expireDate": f"30.06.{year}"})
    assert r.json()["ocs"]["data"]["expiration"] == f"{year}-06-30 00:00:00"
    assert r.json()["ocs"]["data"]["id"] != d["id"]         # link shares are never duplicates


def test_list_update_delete_shares(nextcloud_sandbox):
    """§6.4: "?path=/t6/file.txt&reshares=true → 200 with the user share and each link share of that file;
    subfiles=true on a file → 400 "Not a directory"; bob's shared_with_me=true lists incoming user and group shares
    with path relative to bob (/file.txt)"; "one PUT …/shares/20 with permissions=1&note=updated&expireDate=… → 200
    with all three applied; bob's PUT on it → 403"; "owner DELETE → 200 data: []; again → 404 "Wrong share ID,
    share does not exist". A user-share recipient (bob) may DELETE the share id too"."""
    nc = nextcloud_sandbox
    alice, bob = dav_session(nc, "alice"), dav_session(nc, "bob")
    alice.request("MKCOL", nc.dav_url("alice", "t6"))
    alice.put(nc.dav_url("alice", "t6/file.txt"), data=b"x")
    u = share(alice, nc, {"path": "/t6/file.txt", "shareType": 0, "shareWith": "bob", "permissions": 19}
              ).json()["ocs"]["data"]
    link = share(alice, nc, {"path": "/t6/file.txt", "shareType": 3}).json()["ocs"]["data"]
    g = share(alice, nc, {"path": "/t6", "shareType": 1, "shareWith": "staff"}).json()["ocs"]["data"]
    listed = ocs(alice, nc, "GET", SHARES, path="/t6/file.txt", reshares="true").json()["ocs"]["data"]
    assert {x["id"] for x in listed} == {u["id"], link["id"]}
    r = ocs(alice, nc, "GET", SHARES, path="/t6/file.txt", subfiles="true")
    assert r.status_code == 400 and r.json()["ocs"]["meta"]["message"] == "Not a directory"
    sub = ocs(alice, nc, "GET", SHARES, path="/t6", subfiles="true").json()["ocs"]["data"]
    assert {x["id"] for x in sub} == {u["id"], link["id"]}
    incoming = ocs(bob, nc, "GET", SHARES, shared_with_me="true").json()["ocs"]["data"]
    assert {x["id"] for x in incoming} == {u["id"], g["id"]}
    assert {x["path"] for x in incoming} == {"/file.txt", "/t6"}
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = ocs(alice, nc, "PUT", SHARES + f"/{u['id']}", data={"permissions": 1, "note": "updated", "expireDate": until})
    d = r.json()["ocs"]["data"]
    assert r.status_code == 200 and (d["permissions"], d["note"], d["expiration"]) == (1, "updated",
                                                                                      until + " 00:00:00")
    r = ocs(bob, nc, "PUT", SHARES + f"/{u['id']}", data={"permissions": 19})
    assert r.status_code == 403 and r.json()["ocs"]["meta"]["message"] == "You are not allowed to edit incoming shares"
    r = ocs(alice, nc, "DELETE", SHARES + f"/{link['id']}")
    assert r.status_code == 200 and r.json()["ocs"]["data"] == []
    r = ocs(alice, nc, "DELETE", SHARES + f"/{link['id']}")
    assert r.status_code == 404 and r.json()["ocs"]["meta"]["message"] == "Wrong share ID, share does not exist"
    assert ocs(bob, nc, "DELETE", SHARES + f"/{u['id']}").status_code == 200
    assert [x["id"] for x in nc.shares] == [g["id"]]


def test_create_share_rate_limit():
    """§6.3/§8.2: "429, empty text/html body, no Retry-After, on v1 and v2, from the 21st createShare call by one
    user within 600 s — failed calls count too"; "GET …/shares unaffected"; configurable (off → no limit)."""
    with NextcloudSandbox(users=["alice", "bob"]) as nc:
        s = dav_session(nc, "alice")
        s.put(nc.dav_url("alice", "f.txt"), data=b"x")
        codes = [share(s, nc, {"path": "/f.txt", "shareType": 3}).status_code for _ in range(15)]
        codes += [share(s, nc, {"path": "/missing", "shareType": 3}).status_code for _ in range(5)]
        assert codes == [200] * 15 + [404] * 5
        for v in (2, 1):
            r = share(s, nc, {"path": "/f.txt", "shareType": 3}, v=v)
            assert r.status_code == 429 and r.text == "" and r.headers["Content-Type"].startswith("text/html")
            assert "Retry-After" not in r.headers
        assert ocs(s, nc, "GET", SHARES).status_code == 200
        assert share(dav_session(nc, "bob"), nc, {"path": "/f.txt", "shareType": 3}).status_code == 404
    with NextcloudSandbox(users=["alice"], share_rate_limit=False) as nc:
        s = dav_session(nc, "alice")
        s.put(nc.dav_url("alice", "f.txt"), data=b"x")
        assert {share(s, nc, {"path": "/f.txt", "shareType": 3}).status_code for _ in range(25)} == {200}


def test_provisioning_reads(nextcloud_sandbox):
    """§6.6: "users/details?search=ali (admin) → 200, data.users.alice with quota {"free":-3,…,"total":-3,
    "relative":0,"quota":-3}"; "with a 50 MB quota: {"free":…,"total":52428800,…,"quota":52428800}";
    "users/nosuchuser → 404 "User does not exist"; cloud/users as a non-admin → 403 "Logged in account must be at
    least a sub admin""; §1.2: "GET /ocs/v2.php/cloud/user returns data.id = the uid"."""
    nc = nextcloud_sandbox
    admin, alice = dav_session(nc, "admin"), dav_session(nc, "alice")
    r = ocs(admin, nc, "GET", "/ocs/v2.php/cloud/users/details", search="ali")
    user = r.json()["ocs"]["data"]["users"]["alice"]
    assert r.status_code == 200 and user["quota"]["free"] == -3 and user["quota"]["quota"] == -3
    assert user["quota"]["total"] == -3 and user["quota"]["relative"] == 0 and "staff" in user["groups"]
    nc.set_quota("alice", 50)
    alice.put(nc.dav_url("alice", "used.bin"), data=b"x" * 1000)
    q = ocs(admin, nc, "GET", "/ocs/v2.php/cloud/users/alice").json()["ocs"]["data"]["quota"]
    assert q == {"free": 52428800 - 1000, "used": 1000, "total": 52428800, "relative": 0.0, "quota": 52428800}
    assert ocs(admin, nc, "GET", "/ocs/v2.php/cloud/users").json()["ocs"]["data"]["users"] == [
        "admin", "alice", "bob", "carol"]
    r = ocs(admin, nc, "GET", "/ocs/v2.php/cloud/users/nosuchuser")
    assert r.status_code == 404 and r.json()["ocs"]["meta"]["message"] == "User does not exist"
    r = ocs(alice, nc, "GET", "/ocs/v2.php/cloud/users")
    assert r.status_code == 403 and r.json()["ocs"]["meta"]["message"] == "Logged in account must be at least a sub admin"
    assert ocs(alice, nc, "GET", "/ocs/v2.php/cloud/user").json()["ocs"]["data"]["id"] == "alice"
    assert "staff" in ocs(admin, nc, "GET", "/ocs/v2.php/cloud/groups").json()["ocs"]["data"]["groups"]
    members = ocs(admin, nc, "GET", "/ocs/v2.php/cloud/groups/staff/users").json()["ocs"]["data"]["users"]
    assert members == ["alice", "bob"]


# --- §7 team folders ---------------------------------------------------------------------------------------------
GF = "/index.php/apps/groupfolders/folders"


def gf(s, nc, method, path="", data=None):
    return s.request(method, nc.url + GF + path, params={"format": "json"}, data=data, headers=OCS)


def test_groupfolders_api(nextcloud_sandbox):
    """§7.1: "POST …/folders?format=json mountpoint=Finance with an admin app password → HTTP 200 {"ocs":{"meta":
    {"status":"ok","statuscode":100,…},"data":{"id":2,"mount_point":"Finance","quota":-3,"acl":false,"size":0,
    "groups":[],…,"manage":[]}}}"; "As non-admin alice → HTTP 200 with statuscode 403"; "duplicate mount point →
    HTTP 400 {"message":"Mount point already exists"}, group already assigned → HTTP 400 …, DELETE /folders/99 →
    HTTP 404 {"message":"Groupfolder not found"}"; "group=nosuchgroup → accepted (listed with permissions 31)"."""
    nc = nextcloud_sandbox
    admin, alice = dav_session(nc, "admin"), dav_session(nc, "alice")
    r = gf(admin, nc, "POST", data={"mountpoint": "Finance"})
    meta, data = r.json()["ocs"]["meta"], r.json()["ocs"]["data"]
    assert r.status_code == 200 and meta["statuscode"] == 100 and meta["status"] == "ok"
    assert {k: data[k] for k in ("mount_point", "quota", "acl", "size", "groups", "manage")} == {
        "mount_point": "Finance", "quota": -3, "acl": False, "size": 0, "groups": [], "manage": []}
    fid = data["id"]
    r = gf(alice, nc, "POST", data={"mountpoint": "Other"})
    assert r.status_code == 200 and r.json()["ocs"]["meta"]["statuscode"] == 403
    r = gf(admin, nc, "POST", data={"mountpoint": "Finance"})
    assert r.status_code == 400 and r.json() == {"message": "Mount point already exists"}
    r = gf(admin, nc, "POST", f"/{fid}/groups", data={"group": "staff"})
    assert r.status_code == 200 and r.json()["ocs"]["data"]["folder"]["groups"] == {"staff": 31}
    r = gf(admin, nc, "POST", f"/{fid}/groups", data={"group": "staff"})
    assert r.status_code == 400 and r.json() == {"message": "Group already assigned to this Groupfolder"}
    r = gf(admin, nc, "POST", f"/{fid}/groups", data={"group": "nosuchgroup"})
    assert r.json()["ocs"]["data"]["folder"]["groups"]["nosuchgroup"] == 31
    r = gf(admin, nc, "POST", f"/{fid}/acl", data={"acl": 1})
    assert r.json()["ocs"]["meta"]["statuscode"] == 100
    r = gf(admin, nc, "POST", f"/{fid}/manageACL", data={"mappingType": "user", "mappingId": "alice",
                                                           "manageAcl": 1})
    assert r.json()["ocs"]["data"]["folder"]["manage"] == [{"type": "user", "id": "alice", "displayname": "Alice"}]
    assert str(fid) in gf(admin, nc, "GET").json()["ocs"]["data"]
    r = gf(admin, nc, "DELETE", "/99")
    assert r.status_code == 404 and r.json() == {"message": "Groupfolder not found"}
    r = gf(admin, nc, "DELETE", f"/{fid}")
    assert r.status_code == 200 and r.json()["ocs"]["data"] == {"success": True}


def test_team_folder_visible_to_members_only(nextcloud_sandbox):
    """§7.3: "A folder is mounted at /remote.php/dav/files/{uid}/{mount_point} only for users in its applicable
    groups"; "uploads as alice to …/files/alice/Projects/… work (PUT, chunked, bulk) and keep X-OC-MTime and
    OC-Checksum"; §2.1: "team-folder items RMGDNVW/RMGDNVCK", nc:mount-type group with nc:group-folder-id."""
    nc = nextcloud_sandbox
    fid = nc.create_team_folder("Projects", groups={"staff": 31})
    alice, bob, carol = dav_session(nc, "alice"), dav_session(nc, "bob"), dav_session(nc, "carol")
    r = alice.put(nc.dav_url("alice", "Projects/doc.txt"), data=b"team",
                  headers={"X-OC-MTime": "1600000000", "OC-Checksum": "SHA1:abc"})
    assert r.status_code == 201
    assert (nc.data_dir / f"__groupfolders/{fid}/files/doc.txt").read_bytes() == b"team"
    assert bob.get(nc.dav_url("bob", "Projects/doc.txt")).content == b"team"
    assert carol.get(nc.dav_url("carol", "Projects/doc.txt")).status_code == 404
    listing = propfind(alice, nc.dav_url("alice"))[0]
    root = listing["/remote.php/dav/files/alice/Projects/"]
    assert prop_text(root, "oc:permissions") == "RMGDNVCK" and prop_text(root, "nc:mount-type") == "group"
    assert prop_text(root, "nc:group-folder-id") == str(fid)
    entry = propfind(bob, nc.dav_url("bob", "Projects/doc.txt"), depth="0")[0][
        "/remote.php/dav/files/bob/Projects/doc.txt"]
    assert prop_text(entry, "oc:permissions") == "RMGDNVW"
    assert entry["oc:checksums"][1][0].text == "SHA1:abc"
    assert nc.file_info("bob", "Projects/doc.txt")["mtime"] == 1600000000
    assert "/remote.php/dav/files/carol/Projects/" not in propfind(carol, nc.dav_url("carol"))[0]
    r = share(alice, nc, {"path": "/Projects/doc.txt", "shareType": 0, "shareWith": "carol"})
    assert r.status_code == 200 and r.json()["ocs"]["data"]["uid_file_owner"] == "alice"
    assert alice.delete(nc.dav_url("alice", "Projects")).status_code == 403
    r = alice.request("MOVE", nc.dav_url("alice", "Projects/doc.txt"), headers={"Destination": nc.dav_url("alice",
                                                                                                       "home.txt")})
    assert r.status_code == 201 and nc.file_info("alice", "home.txt")["size"] == 4
    assert bob.get(nc.dav_url("bob", "Projects/doc.txt")).status_code == 404


def test_team_folder_acl_proppatch(nextcloud_sandbox):
    """§7.2: "alice PROPPATCH …/files/alice/Finance/Payroll with two rules (user alice 31/31, group staff 31/1) →
    207 …; PROPFIND returns both rules, each with an extra <nc:acl-mapping-display-name>. bob (staff) then sees
    oc:permissions MG …; his PUT there → 403, his bulk part → error:true"; "bob's own PROPPATCH of nc:acl-list (not
    a manager) → HTTP 500"; "alice setting user alice mask 1 permissions 0 → HTTP 400 … "You cannot remove your own
    read permission.""; "A path with no rules returns nc:acl-list in a 404 propstat"."""
    nc = nextcloud_sandbox
    fid = nc.create_team_folder("Finance", groups={"staff": 31}, acl=True)
    nc.state.folders[fid].manage.append({"type": "user", "id": "alice"})
    alice, bob = dav_session(nc, "alice"), dav_session(nc, "bob")
    assert alice.request("MKCOL", nc.dav_url("alice", "Finance/Payroll")).status_code == 201

    def acl(s, uid, rules):
        inner = "".join(f"<nc:acl><nc:acl-mapping-type>{t}</nc:acl-mapping-type><nc:acl-mapping-id>{i}"
                        f"</nc:acl-mapping-id><nc:acl-mask>{m}</nc:acl-mask><nc:acl-permissions>{p}"
                        "</nc:acl-permissions></nc:acl>" for t, i, m, p in rules)
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:set>'
                f"<d:prop><nc:acl-list>{inner}</nc:acl-list></d:prop></d:set></d:propertyupdate>")
        return s.request("PROPPATCH", nc.dav_url(uid, "Finance/Payroll"), data=body.encode())

    props = ("oc:permissions", "nc:acl-list", "nc:acl-enabled", "nc:acl-can-manage")
    entry = propfind(alice, nc.dav_url("alice", "Finance/Payroll"), props=props, depth="0")[0][
        "/remote.php/dav/files/alice/Finance/Payroll/"]
    assert entry["nc:acl-list"][0] == 404
    r = acl(alice, "alice", [("user", "alice", 31, 31), ("group", "staff", 31, 1)])
    assert r.status_code == 207 and "200 OK" in r.text
    entry = propfind(alice, nc.dav_url("alice", "Finance/Payroll"), props=props, depth="0")[0][
        "/remote.php/dav/files/alice/Finance/Payroll/"]
    rules = entry["nc:acl-list"][1]
    assert len(rules) == 2 and all(r.find("{http://nextcloud.org/ns}acl-mapping-display-name") is not None
                                   for r in rules)
    assert prop_text(entry, "nc:acl-can-manage") == "1"
    bentry = propfind(bob, nc.dav_url("bob", "Finance/Payroll"), props=props, depth="0")[0][
        "/remote.php/dav/files/bob/Finance/Payroll/"]
    assert prop_text(bentry, "oc:permissions") == "MG" and len(bentry["nc:acl-list"][1]) == 1
    assert bob.put(nc.dav_url("bob", "Finance/Payroll/x.txt"), data=b"x").status_code == 403
    body = (b"--b\r\nX-File-Path: /Finance/Payroll/y.txt\r\nX-File-MD5: 9dd4e461268c8034f5c8564e155c67a6\r\n"
            b"Content-Length: 1\r\n\r\nx\r\n--b--\r\n")
    r = bob.post(nc.url + "/remote.php/dav/bulk", data=body, headers={"Content-Type": "multipart/related; boundary=b"})
    assert r.status_code == 200 and r.json()["/Finance/Payroll/y.txt"]["error"] is True
    assert acl(bob, "bob", [("group", "staff", 31, 31)]).status_code == 500
    r = acl(alice, "alice", [("user", "alice", 1, 0)])
    assert r.status_code == 400 and "You cannot remove your own read permission." in r.text
    assert alice.put(nc.dav_url("alice", "Finance/Payroll/a.txt"), data=b"x").status_code == 201


def test_team_folder_quota_507(nextcloud_sandbox):
    """§7.3: "Quota is per folder"; §8.1: 507 "Insufficient space in …, N required, M available"."""
    nc = nextcloud_sandbox
    fid = nc.create_team_folder("Small", groups={"staff": 31})
    admin = dav_session(nc, "admin")
    assert gf(admin, nc, "POST", f"/{fid}/quota", data={"quota": 1000}).status_code == 200
    alice = dav_session(nc, "alice")
    assert alice.put(nc.dav_url("alice", "Small/a.bin"), data=b"x" * 600).status_code == 201
    r = alice.put(nc.dav_url("alice", "Small/b.bin"), data=b"x" * 600)
    assert r.status_code == 507 and "600 required, 400 available" in r.text


def test_unauthenticated_ocs_is_401():
    """§1.3: "v1 always answers HTTP 200 (except 401 …)"."""
    with NextcloudSandbox(users=["alice"]) as nc:
        r = requests.get(nc.url + "/ocs/v1.php/cloud/capabilities?format=json", headers=OCS)
        assert r.status_code == 401 and r.json()["ocs"]["meta"]["statuscode"] == 997


def test_non_member_write_makes_a_lookalike_and_groupfolders_dav_lists_mounts(nextcloud_sandbox):
    """§7.3, and as NC 32.0.1 (groupfolders 20.1.2) answered on the rig (2026-12-04): a non-member's
    PUT to `/Projects/x.txt` (with X-NC-WebDAV-Auto-Mkcol) → 201 into an ordinary folder of its own home, whose
    root then shows `oc:permissions` RGDNVCK, an empty `nc:mount-type` and `nc:group-folder-id` in a 404 propstat;
    `PROPFIND /remote.php/dav/groupfolders/{uid}/` lists the user's folders with `nc:mount-point` `/<name>`,
    `nc:mount-type` group, permissions as held (read only: MG; 15: MGDNVCK); another user's → 403."""
    nc = nextcloud_sandbox
    fid = nc.create_team_folder("Projects", groups={"staff": 31, "readers": 1})
    nc.add_group("readers", ["carol"])
    nc.create_team_folder("Other", groups={"editors": 15})
    nc.add_group("editors", ["carol"])
    lone = nc.add_user("dave")
    dave = dav_session(nc, "dave")
    dave.auth = ("dave", lone)
    r = dave.put(nc.dav_url("dave", "Projects/x.txt"), data=b"x", headers={"X-NC-WebDAV-Auto-Mkcol": "1"})
    assert r.status_code == 201
    assert (nc.data_dir / "users/dave/files/Projects/x.txt").exists()
    assert not (nc.data_dir / f"__groupfolders/{fid}/files/x.txt").exists()
    root = propfind(dave, nc.dav_url("dave", "Projects"), depth="0")[0]["/remote.php/dav/files/dave/Projects/"]
    assert prop_text(root, "oc:permissions") == "RGDNVCK" and prop_text(root, "nc:mount-type") == ""
    assert prop_text(root, "nc:group-folder-id") is None
    carol = dav_session(nc, "carol")
    props = ("d:resourcetype", "oc:permissions", "nc:mount-point", "nc:mount-type", "nc:group-folder-id")
    listing = propfind(carol, nc.url + "/remote.php/dav/groupfolders/carol/", props=props)[0]
    projects = listing["/remote.php/dav/groupfolders/carol/Projects/"]
    assert prop_text(projects, "nc:mount-point") == "/Projects" and prop_text(projects, "nc:mount-type") == "group"
    assert prop_text(projects, "oc:permissions") == "MG" and prop_text(projects, "nc:group-folder-id") == str(fid)
    assert prop_text(listing["/remote.php/dav/groupfolders/carol/Other/"], "oc:permissions") == "MGDNVCK"
    r = propfind(carol, nc.url + "/remote.php/dav/groupfolders/alice/", props=props)[1]
    assert r.status_code == 403
    assert list(propfind(dave, nc.url + "/remote.php/dav/groupfolders/dave/", props=props)[0]) == [
        "/remote.php/dav/groupfolders/dave/"]


def _ids(resp) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {str(x["id"]) for x in resp.json()["ocs"]["data"]}


def test_pending_shares_with_force_accept_and_a_failed_acceptance(nextcloud_sandbox):
    """§6.5a: a pending share is not in the recipient's "shared with me", only in `shares/pending` (with
    permissions 0), until they accept it; with force_share_accept every new user and group share waits, and a
    failed "share created" listener leaves one waiting although createShare answered 200."""
    nc = nextcloud_sandbox
    alice, bob, carol = (dav_session(nc, u) for u in ("alice", "bob", "carol"))
    for name in ("a.txt", "b.txt", "c.txt"):
        assert alice.put(f"{nc.url}/remote.php/dav/files/alice/{name}", data=b"x").status_code == 201

    # default: accepted at once
    auto = share(alice, nc, {"path": "/a.txt", "shareType": 0, "shareWith": "bob", "permissions": 1}).json()
    assert str(auto["ocs"]["data"]["id"]) in _ids(ocs(bob, nc, "GET", SHARES, shared_with_me="true"))
    assert _ids(ocs(bob, nc, "GET", SHARES + "/pending")) == set()

    # a failed acceptance listener: 200 for the owner, pending for the recipient
    nc.fail_share_acceptance(1)
    lost = share(alice, nc, {"path": "/b.txt", "shareType": 0, "shareWith": "bob", "permissions": 1})
    assert lost.status_code == 200 and lost.json()["ocs"]["meta"]["statuscode"] == 200
    lost_id = str(lost.json()["ocs"]["data"]["id"])
    assert lost_id not in _ids(ocs(bob, nc, "GET", SHARES, shared_with_me="true"))
    pending = ocs(bob, nc, "GET", SHARES + "/pending").json()["ocs"]["data"]
    assert [(str(p["id"]), p["permissions"], p["path"]) for p in pending] == [(lost_id, 0, "/b.txt")]
    assert "accepted_by" not in pending[0] and "acceptance_failed" not in pending[0]

    # force_share_accept: a group share waits for every member; each accepts for themselves only
    nc.force_share_accept()
    group = share(alice, nc, {"path": "/c.txt", "shareType": 1, "shareWith": "staff", "permissions": 1}).json()
    gid = str(group["ocs"]["data"]["id"])
    assert gid in _ids(ocs(bob, nc, "GET", SHARES + "/pending"))
    assert gid not in _ids(ocs(bob, nc, "GET", SHARES, shared_with_me="true"))
    refused = ocs(carol, nc, "POST", f"{SHARES}/pending/{gid}")          # not a recipient
    assert refused.status_code == 404 and refused.json()["ocs"]["meta"]["message"] == \
        "Wrong share ID, share does not exist"
    for sid in (lost_id, gid):
        ok = ocs(bob, nc, "POST", f"{SHARES}/pending/{sid}")
        assert ok.status_code == 200 and ok.json()["ocs"]["data"] == []
    assert {lost_id, gid} <= _ids(ocs(bob, nc, "GET", SHARES, shared_with_me="true"))
    assert _ids(ocs(bob, nc, "GET", SHARES + "/pending")) == set()
    assert nc.share_states(gid) == {"bob": 1}
    assert gid not in _ids(ocs(alice, nc, "GET", SHARES, shared_with_me="true")), "her own group share is not for her"
    # the owner's view never tells
    assert ocs(alice, nc, "GET", SHARES, path="/b.txt").json()["ocs"]["data"][0]["share_with"] == "bob"
