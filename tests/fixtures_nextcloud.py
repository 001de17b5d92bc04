"""Pytest plugin: the Nextcloud sandbox (full and plain WebDAV) and Apache httpd mod_dav on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def nextcloud_sandbox() -> Iterator:
    """A fresh sandbox: users alice, bob, carol; group staff = alice, bob; no quota; rate limit on."""
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice", "bob", "carol"], groups={"staff": ["alice", "bob"]}) as nc:
        yield nc


@pytest.fixture
def plain_webdav_sandbox() -> Iterator:
    """The same server in `--plain-webdav` mode (no Nextcloud extensions)."""
    from migrate.sandbox.nextcloud import NextcloudSandbox

    with NextcloudSandbox(users=["alice", "bob"], plain_webdav=True) as nc:
        yield nc


@pytest.fixture(scope="session")
def apache_dav() -> Iterator:
    """Apache httpd + mod_dav_fs on a free loopback port with a generated config, root and htpasswd.

    Yields `migrate.sandbox.nextcloud.apache.ApacheDav` (url, auth, root, error_log). Installs nothing. Skips only
    when /usr/sbin/apache2 is missing and CI is unset; under CI a missing Apache fails.
    """
    from migrate.sandbox.nextcloud.apache import APACHE, ApacheDav, ApacheError

    if not APACHE.exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but /usr/sbin/apache2 is missing (install Debian's apache2 package)")
        pytest.skip("Apache httpd (/usr/sbin/apache2) is not installed")
    server = ApacheDav()
    try:
        server.start()
    except ApacheError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


# --- helpers shared by the Nextcloud sandbox tests ------------------------------------------------------------
NS = {"d": "DAV:", "oc": "http://owncloud.org/ns", "nc": "http://nextcloud.org/ns"}
NC_PROPS = ("d:resourcetype", "d:getetag", "d:getlastmodified", "d:getcontentlength", "oc:fileid", "oc:id",
            "oc:permissions", "oc:size", "oc:checksums", "nc:creation_time", "nc:upload_time", "nc:mount-type",
            "nc:group-folder-id")


def dav_session(nc, uid: str):
    """A requests.Session authenticated as `uid` with its app password."""
    import requests

    s = requests.Session()
    s.auth = (uid, nc.admin[1] if uid == "admin" else nc.app_passwords[uid])
    return s


def propfind(session, url: str, props=NC_PROPS, depth: str = "1"):
    """PROPFIND and parse: {decoded href: {"prefix:name": (status code, element)}}, plus the raw response."""
    from urllib.parse import unquote
    from xml.etree import ElementTree as ET

    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
            'xmlns:nc="http://nextcloud.org/ns"><d:prop>' + "".join(f"<{p}/>" for p in props) +
            "</d:prop></d:propfind>")
    r = session.request("PROPFIND", url, data=body.encode(), headers={"Depth": depth,
                                                                      "Content-Type": "application/xml"})
    out: dict[str, dict[str, tuple[int, object]]] = {}
    if r.status_code == 207:
        rev = {v: k for k, v in NS.items()}
        for resp in ET.fromstring(r.content).findall("d:response", NS):
            href = unquote(resp.findtext("d:href", namespaces=NS) or "")
            entry: dict[str, tuple[int, object]] = {}
            for ps in resp.findall("d:propstat", NS):
                code = int((ps.findtext("d:status", namespaces=NS) or "HTTP/1.1 0").split()[1])
                for el in ps.find("d:prop", NS) or []:
                    uri, _, local = el.tag[1:].partition("}")
                    entry[f"{rev.get(uri, uri)}:{local}"] = (code, el)
            out[href] = entry
    return out, r


def prop_text(entry, name: str):
    """The text of a 200 property, or None when it came back in a non-200 propstat."""
    code, el = entry[name]
    return (el.text or "") if code == 200 else None
