"""Generic WebDAV behaviour (RFC 4918) that the fallback target relies on, against the sandbox in plain mode and
against Apache httpd mod_dav (reference §10.2 "Apache mod_dav / nginx dav" column), plus the webdav4 client."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from urllib.parse import quote, unquote
from xml.etree import ElementTree as ET

import pytest
import requests

SERVERS = ["plain", "apache"]


@pytest.fixture(params=SERVERS)
def dav(request):
    """(collection URL ending in '/', session) on a fresh, empty collection of the selected server."""
    if request.param == "plain":
        nc = request.getfixturevalue("plain_webdav_sandbox")
        base, auth = nc.dav_url("alice"), ("alice", nc.app_passwords["alice"])
    else:
        ap = request.getfixturevalue("apache_dav")
        base, auth = ap.url, ap.auth
    s = requests.Session()
    s.auth = auth
    url = base + f"t-{uuid.uuid4().hex[:8]}/"
    assert s.request("MKCOL", url).status_code == 201
    yield url, s
    s.delete(url)


def children(s, url, depth="1"):
    r = s.request("PROPFIND", url, headers={"Depth": depth, "Content-Type": "application/xml"},
                  data=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
                       b"<d:getcontentlength/><d:getetag/><d:getlastmodified/></d:prop></d:propfind>")
    assert r.status_code == 207
    out = {}
    for resp in ET.fromstring(r.content).findall("{DAV:}response"):
        href = unquote(resp.findtext("{DAV:}href"))
        props = {}
        for ps in resp.findall("{DAV:}propstat"):
            if " 200 " in ps.findtext("{DAV:}status"):
                for el in ps.find("{DAV:}prop"):
                    props[el.tag] = el
        out[href.rstrip("/").rsplit("/", 1)[-1]] = props
    return out


def test_put_get_overwrite(dav):
    """RFC 4918 §9.7: PUT creates (201) and replaces (204 or 201); GET returns the bytes."""
    url, s = dav
    assert s.put(url + "a.txt", data=b"hello").status_code == 201
    assert s.put(url + "a.txt", data=b"hello again").status_code in (201, 204)
    r = s.get(url + "a.txt")
    assert r.status_code == 200 and r.content == b"hello again"


def test_put_into_missing_collection_is_409(dav):
    """RFC 4918 §9.7.1: a PUT without an existing parent collection fails with 409 (Nextcloud answers 404, §2.2)."""
    url, s = dav
    assert s.put(url + "missing/a.txt", data=b"x").status_code == 409


def test_mkcol_codes(dav):
    """§2.2 / RFC 4918 §9.3.1: 201 created, 405 exists, 409 missing parent."""
    url, s = dav
    assert s.request("MKCOL", url + "d").status_code == 201
    assert s.request("MKCOL", url + "d").status_code == 405
    assert s.request("MKCOL", url + "x/y").status_code == 409


def test_propfind_depth(dav):
    """§2.1 / RFC 4918 §9.1: Depth 1 lists the members with getcontentlength, resourcetype, getetag."""
    url, s = dav
    s.request("MKCOL", url + "sub")
    s.put(url + "f.bin", data=b"12345")
    listing = children(s, url)
    assert {"sub", "f.bin"} <= set(listing)
    assert listing["f.bin"]["{DAV:}getcontentlength"].text == "5"
    assert listing["sub"]["{DAV:}resourcetype"].find("{DAV:}collection") is not None
    assert listing["f.bin"]["{DAV:}getetag"].text
    assert listing["f.bin"]["{DAV:}getlastmodified"].text.endswith("GMT")
    only = children(s, url + "f.bin", depth="0")
    assert list(only) == ["f.bin"]


def test_move_copy(dav, request):
    """§2.4 / RFC 4918 §9.8-9.9: MOVE/COPY 201 new, 204 overwrite, 412 with Overwrite: F. A MOVE into a missing
    folder is 409 on the sandbox (as Nextcloud, §2.4) but 500 "Could not rename resource" on Apache 2.4 mod_dav_fs,
    so a generic client must treat any failure there as "parent missing"."""
    url, s = dav
    server = request.node.callspec.params["dav"]
    s.put(url + "a.txt", data=b"A")
    s.put(url + "b.txt", data=b"B")
    assert s.request("MOVE", url + "a.txt", headers={"Destination": url + "b.txt", "Overwrite": "F"}
                     ).status_code == 412
    assert s.request("COPY", url + "a.txt", headers={"Destination": url + "c.txt"}).status_code == 201
    assert s.request("MOVE", url + "a.txt", headers={"Destination": url + "b.txt"}).status_code == 204
    assert s.get(url + "b.txt").content == b"A" and s.get(url + "a.txt").status_code == 404
    expected = 500 if server == "apache" else 409
    assert s.request("MOVE", url + "c.txt", headers={"Destination": url + "no/c.txt"}).status_code == expected
    s.request("MKCOL", url + "dir")
    s.put(url + "dir/in.txt", data=b"in")
    assert s.request("MOVE", url + "dir", headers={"Destination": url + "dir2"}).status_code == 201
    assert s.get(url + "dir2/in.txt").content == b"in"


def test_delete(dav):
    """§2.5 / RFC 4918 §9.6: DELETE 204, then 404; collections are removed recursively."""
    url, s = dav
    s.request("MKCOL", url + "d")
    s.put(url + "d/f.txt", data=b"x")
    assert s.delete(url + "d/f.txt").status_code == 204
    assert s.delete(url + "d/f.txt").status_code == 404
    s.put(url + "d/g.txt", data=b"x")
    assert s.delete(url + "d").status_code == 204
    assert s.get(url + "d/g.txt").status_code == 404


def test_range_get(dav):
    """RFC 7233: Range GET answers 206 with Content-Range (resume of downloads/verification)."""
    url, s = dav
    data = os.urandom(100_000)
    s.put(url + "r.bin", data=data)
    r = s.get(url + "r.bin", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]
    assert r.headers["Content-Range"] == "bytes 1000-1999/100000"
    r = s.get(url + "r.bin", headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]


def test_large_streamed_put_and_unicode_names(dav):
    """A streamed 16 MiB PUT arrives intact; non-ASCII names round-trip."""
    url, s = dav
    data = os.urandom(16 * 1024 * 1024)

    def gen():
        for i in range(0, len(data), 1024 * 1024):
            yield data[i:i + 1024 * 1024]

    r = s.put(url + quote("große Datei.bin"), data=gen())
    assert r.status_code == 201
    got = s.get(url + quote("große Datei.bin"))
    assert hashlib.sha1(got.content).hexdigest() == hashlib.sha1(data).hexdigest()
    assert "große Datei.bin" in children(s, url)


def test_wrong_password_is_401(dav):
    """Basic auth is enforced."""
    url, s = dav
    assert requests.get(url, auth=(s.auth[0], "wrong")).status_code == 401


# --- the webdav4 client, unchanged, against every server -------------------------------------------------------
@pytest.fixture(params=["plain", "apache", "nextcloud"])
def any_dav(request):
    if request.param == "apache":
        ap = request.getfixturevalue("apache_dav")
        yield ap.url, ap.auth
        return
    nc = request.getfixturevalue("plain_webdav_sandbox" if request.param == "plain" else "nextcloud_sandbox")
    yield nc.dav_url("alice"), ("alice", nc.app_passwords["alice"])


def test_webdav4_client_works(any_dav):
    """webdav4.client.Client needs nothing server-specific: mkdir, upload, ls, info, download, copy, move,
    remove. (Not isdir/isfile/get_props: they send PROPFIND without Depth, see the next test.)"""
    from webdav4.client import Client

    base, auth = any_dav
    client = Client(base, auth=auth)
    root = f"w4-{uuid.uuid4().hex[:8]}"
    client.mkdir(root)
    client.mkdir(f"{root}/sub")
    payload = os.urandom(300_000)
    client.upload_fileobj(io.BytesIO(payload), f"{root}/sub/f.bin", overwrite=True)
    names = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in client.ls(f"{root}/sub", detail=True)}
    assert names == {"f.bin"}
    info = client.info(f"{root}/sub/f.bin")
    assert info["content_length"] == len(payload) and info["etag"]
    out = io.BytesIO()
    client.download_fileobj(f"{root}/sub/f.bin", out)
    assert out.getvalue() == payload
    client.copy(f"{root}/sub/f.bin", f"{root}/copy.bin")
    client.move(f"{root}/copy.bin", f"{root}/moved.bin")
    assert client.exists(f"{root}/moved.bin") and not client.exists(f"{root}/copy.bin")
    assert client.info(f"{root}/sub")["type"] == "directory"
    assert client.info(f"{root}/moved.bin")["type"] == "file"
    client.remove(root)
    assert not client.exists(root)


def test_depth_infinity_refused_by_default_apache(apache_dav):
    """§2.1 "Do not rely on Depth: infinity": Apache's default (DavDepthInfinity Off) answers 403, and a PROPFIND
    without a Depth header means infinity — which is what webdav4's isdir()/isfile()/get_props() send."""
    from webdav4.client import Client, HTTPError

    s = requests.Session()
    s.auth = apache_dav.auth
    r = s.request("PROPFIND", apache_dav.url, headers={"Depth": "infinity"})
    assert r.status_code == 403
    assert s.request("PROPFIND", apache_dav.url).status_code == 403
    with pytest.raises(HTTPError):
        Client(apache_dav.url, auth=apache_dav.auth).isdir("")
