"""Every multistatus of the Nextcloud sandbox is written as Sabre writes it on NC 32: `d:`, `s:`, `oc:`, `nc:`.

Some WebDAV clients match prefixed names (`d:href`) instead of namespaces; a sandbox that answered `ns0:` (what
ElementTree makes of WsgiDAV's output) would hide such a client's bug from every test.
"""

from __future__ import annotations

import re

import httpx
import pytest

from migrate.sandbox.nextcloud import NextcloudSandbox

ROOT = re.compile(rb'^<\?xml version="1\.0"\?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav\.org/ns" '
                  rb'xmlns:oc="http://owncloud\.org/ns" xmlns:nc="http://nextcloud\.org/ns">')
TAG = re.compile(rb"</?([A-Za-z_][\w.-]*)(?::([\w.-]+))?[\s/>]")
PROPS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
         'xmlns:nc="http://nextcloud.org/ns" xmlns:z="urn:example:other"><d:prop><d:getetag/><d:resourcetype/>'
         "<oc:fileid/><oc:permissions/><oc:checksums/><nc:mount-type/><z:unknown/></d:prop></d:propfind>")


def assert_nextcloud_prefixes(resp: httpx.Response, *, adhoc: bool = False) -> None:
    """A 207 whose root declares the four prefixes and whose every element uses one of them (or `x1` …)."""
    assert resp.status_code == 207, resp.text
    body = resp.content
    assert ROOT.match(body), body[:200]
    assert b"ns0" not in body and b"ns1:" not in body
    prefixes = {m.group(1).decode() for m in TAG.finditer(body) if m.group(2) and m.group(1) != b"?xml"}
    allowed = {"d", "s", "oc", "nc"} | ({"x1"} if adhoc else set())
    assert prefixes <= allowed, prefixes - allowed
    assert "d" in prefixes


@pytest.fixture
def nc():
    with NextcloudSandbox(users=["alice", "bob"], groups={"staff": ["alice", "bob"]}) as sandbox:
        sandbox.create_team_folder("Projects", {"staff": 31})
        yield sandbox


def test_every_multistatus_uses_nextclouds_prefixes(nc) -> None:
    alice = ("alice", nc.app_passwords["alice"])
    files = f"{nc.url}/remote.php/dav/files/alice/"
    with httpx.Client(auth=alice) as c:
        assert c.request("MKCOL", files + "docs").status_code == 201
        put = c.put(files + "docs/a.txt", content=b"one", headers={"OC-Checksum": "SHA1:" + "0" * 40})
        assert put.status_code == 201
        assert c.put(files + "docs/a.txt", content=b"two").status_code == 204   # a version
        assert c.put(files + "gone.txt", content=b"x").status_code == 201
        assert c.delete(files + "gone.txt").status_code == 204                   # a trash entry
        fileid = nc.file_info("alice", "docs/a.txt")["fileid"]

        # the files endpoint (WsgiDAV underneath): named props with a foreign namespace, allprop, depths 0 and 1
        named = c.request("PROPFIND", files + "docs", headers={"Depth": "1"}, content=PROPS)
        assert_nextcloud_prefixes(named, adhoc=True)
        assert b'<x1:unknown xmlns:x1="urn:example:other"/>' in named.content
        assert_nextcloud_prefixes(c.request("PROPFIND", files, headers={"Depth": "1"}))
        assert_nextcloud_prefixes(c.request("PROPFIND", files + "docs/a.txt", headers={"Depth": "0"}))
        patch = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                 "<d:lastmodified>1700000000</d:lastmodified></d:prop></d:set></d:propertyupdate>")
        assert_nextcloud_prefixes(c.request("PROPPATCH", files + "docs/a.txt", content=patch))
        # answered through the session cookie the first answer set (the case the issue saw)
        assert c.cookies, "the sandbox sets a session on every answer"
        via_session = c.request("PROPFIND", files + "docs", headers={"Depth": "1"}, auth=None)
        assert_nextcloud_prefixes(via_session)
        # hand-written answers: a *.part phantom, another user's home, uploads, trash, versions, team folders
        assert_nextcloud_prefixes(c.request("PROPFIND", files + "docs/x.part", headers={"Depth": "0"}))
        assert_nextcloud_prefixes(c.request("PROPFIND", f"{nc.url}/remote.php/dav/files/bob/",
                                            headers={"Depth": "0"}))
        uploads = f"{nc.url}/remote.php/dav/uploads/alice/"
        assert c.request("MKCOL", uploads + "up-1").status_code == 201
        assert c.put(uploads + "up-1/00001", content=b"chunk").status_code == 201
        assert_nextcloud_prefixes(c.request("PROPFIND", uploads + "up-1", headers={"Depth": "1"}))
        assert_nextcloud_prefixes(c.request("PROPFIND", f"{nc.url}/remote.php/dav/trashbin/alice/trash/",
                                            headers={"Depth": "1"}))
        versions = f"{nc.url}/remote.php/dav/versions/alice/versions/{fileid}"
        assert_nextcloud_prefixes(c.request("PROPFIND", versions, headers={"Depth": "1"}))
        assert_nextcloud_prefixes(c.request("PROPFIND", f"{nc.url}/remote.php/dav/groupfolders/alice/",
                                            headers={"Depth": "1"}))
        assert_nextcloud_prefixes(c.request("PROPFIND", files + "Projects", headers={"Depth": "0"},
                                            content=PROPS), adhoc=True)


def test_plain_webdav_mode_keeps_a_generic_servers_xml() -> None:
    """Plain mode stands for any WebDAV server, so it keeps WsgiDAV's own output (the client must not care)."""
    with NextcloudSandbox(users=["alice"], plain_webdav=True) as nc:
        r = httpx.request("PROPFIND", f"{nc.url}/remote.php/dav/files/alice/", headers={"Depth": "0"},
                          auth=("alice", nc.app_passwords["alice"]))
        assert r.status_code == 207 and b"<d:multistatus" not in r.content
