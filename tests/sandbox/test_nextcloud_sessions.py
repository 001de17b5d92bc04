"""The sandbox keeps PHP sessions the way Nextcloud 32.0.1 does (reference §1.2 "Sessions win over Basic auth").

Each test uses a cookie-keeping client on purpose: that is the client mistake these sessions exist to expose.
"""

from __future__ import annotations

import httpx
import pytest

from migrate.sandbox.nextcloud import NextcloudSandbox


@pytest.fixture
def nc():
    with NextcloudSandbox(users=["alice", "bob", "carol"], groups={"staff": ["alice", "bob"]}) as sandbox:
        yield sandbox


def _files(nc, uid: str, path: str = "") -> str:
    return f"{nc.url}/remote.php/dav/files/{uid}/{path}"


def _pw(nc, uid: str) -> str:
    return nc.admin[1] if uid == "admin" else nc.app_passwords[uid]


def _names(resp: httpx.Response) -> list[str]:
    from urllib.parse import unquote
    from xml.etree import ElementTree as ET

    return [unquote(r.findtext("{DAV:}href") or "") for r in ET.fromstring(resp.content).findall("{DAV:}response")]


def test_every_basic_auth_answer_sets_session_cookies(nc) -> None:
    with httpx.Client() as c:
        ok = c.request("PROPFIND", _files(nc, "alice"), auth=("alice", _pw(nc, "alice")), headers={"Depth": "0"})
        names = {h.split("=", 1)[0] for h in ok.headers.get_list("set-cookie")}
        assert {nc.state.instance_id, "oc_sessionPassphrase", "nc_sameSiteCookielax",
                "nc_sameSiteCookiestrict"} <= names
        ocs = c.get(f"{nc.url}/ocs/v2.php/cloud/user?format=json",
                    auth=("bob", _pw(nc, "bob")), headers={"OCS-APIRequest": "true"})
        # carried alice's session: no new cookie, and the answer is alice's, not bob's
        assert ocs.headers.get_list("set-cookie") == []
        assert ocs.json()["ocs"]["data"]["id"] == "alice"
    with httpx.Client() as fresh:
        bad = fresh.request("PROPFIND", _files(nc, "alice"), auth=("alice", "wrong"), headers={"Depth": "0"})
        assert bad.status_code == 401
        assert bad.headers.get_list("set-cookie"), "a failed login gets a (not logged-in) session too"
        anonymous = fresh.request("PROPFIND", _files(nc, "bob"), headers={"Depth": "0"})
        assert anonymous.status_code == 401, "a session that never logged in lets nobody in"
    with httpx.Client() as other:
        anonymous = other.request("PROPFIND", _files(nc, "alice"), headers={"Depth": "0"})
        assert anonymous.status_code == 401 and anonymous.headers.get_list("set-cookie")
        # the id is regenerated at the end of the answer: the last instance cookie is the live one
        ids = [h.split(";")[0].split("=", 1)[1] for h in anonymous.headers.get_list("set-cookie")
               if h.startswith(nc.state.instance_id + "=")]
        assert len(ids) == 2 and ids[0] != ids[1] and ids[1] in nc.state.sessions


def test_session_wins_over_basic_auth_of_another_account(nc) -> None:
    with httpx.Client() as c:
        c.request("PROPFIND", _files(nc, "admin"), auth=nc.admin, headers={"Depth": "0"})
        refused = c.request("MKCOL", _files(nc, "alice", "Q2"), auth=("alice", _pw(nc, "alice")))
        assert refused.status_code == 403
        assert "Permission denied to create directory" in refused.text
    with httpx.Client() as clean:
        assert clean.request("MKCOL", _files(nc, "alice", "Q2"), auth=("alice", _pw(nc, "alice"))).status_code == 201


def test_wrong_password_beside_a_valid_cookie_succeeds_and_counts_no_failure(nc) -> None:
    with httpx.Client() as c:
        c.request("PROPFIND", _files(nc, "carol"), auth=("carol", _pw(nc, "carol")), headers={"Depth": "0"})
        alone = c.request("PROPFIND", _files(nc, "carol"), headers={"Depth": "1"})
        assert alone.status_code == 207
        wrong = c.request("PROPFIND", _files(nc, "carol"), auth=("carol", "not-the-password"), headers={"Depth": "1"})
        assert wrong.status_code == 207
    assert nc.state.failed_logins == {}


def test_foreign_tree_through_a_session_is_empty_and_read_only(nc) -> None:
    bob = ("bob", _pw(nc, "bob"))
    with httpx.Client(cookies=None) as owner:
        owner.cookies.clear()
        assert owner.put(_files(nc, "bob", "secret.txt"), content=b"bob's", auth=bob).status_code == 201
    with httpx.Client() as c:
        c.request("PROPFIND", _files(nc, "carol"), auth=("carol", _pw(nc, "carol")), headers={"Depth": "0"})
        listing = c.request("PROPFIND", _files(nc, "bob"), auth=bob, headers={"Depth": "1"})
        assert listing.status_code == 207
        assert _names(listing) == ["/remote.php/dav/files/bob/"]
        assert c.request("MKCOL", _files(nc, "bob", "x"), auth=bob).status_code == 403
        assert c.put(_files(nc, "bob", "y.txt"), content=b"y", auth=bob).status_code == 403
        assert c.get(_files(nc, "bob", "secret.txt"), auth=bob).status_code == 404


def test_sessions_can_be_switched_off_and_plain_webdav_has_none() -> None:
    with NextcloudSandbox(users=["alice"], sessions=False) as nc, httpx.Client() as c:
        r = c.request("PROPFIND", _files(nc, "alice"), auth=("alice", _pw(nc, "alice")), headers={"Depth": "0"})
        assert r.status_code == 207 and r.headers.get_list("set-cookie") == []
    with NextcloudSandbox(users=["alice"], plain_webdav=True) as nc, httpx.Client() as c:
        r = c.request("PROPFIND", _files(nc, "alice"), auth=("alice", _pw(nc, "alice")), headers={"Depth": "0"})
        assert r.status_code == 207 and r.headers.get_list("set-cookie") == []


def test_a_made_up_session_cookie_is_ignored(nc) -> None:
    with httpx.Client() as c:
        c.cookies.set(nc.state.instance_id, "forged")
        c.cookies.set("oc_sessionPassphrase", "forged")
        r = c.request("PROPFIND", _files(nc, "alice"), auth=("alice", "wrong"), headers={"Depth": "0"})
        assert r.status_code == 401
    assert sum(nc.state.failed_logins.values()) == 1
