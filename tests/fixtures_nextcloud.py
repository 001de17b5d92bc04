"""Pytest plugin: the Nextcloud sandbox (full and plain WebDAV) and Apache httpd mod_dav on loopback."""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

APACHE = Path("/usr/sbin/apache2")
MODULES = Path("/usr/lib/apache2/modules")


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


@dataclass
class ApacheDav:
    """A running Apache mod_dav: `url` is a writable collection (ends with '/'), `auth` its Basic credentials."""

    url: str
    auth: tuple[str, str]
    root: Path
    error_log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, port: int, docroot: Path, run_as: str | None) -> str:
    modules = ["mpm_event", "authz_core", "authn_core", "auth_basic", "authn_file", "authz_user", "dav", "dav_fs",
               "mime"]
    lines = [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in modules]
    if run_as:
        lines += [f"User {run_as}", f"Group {run_as}"]
    lines += [
        f"ServerRoot {tmp}", "ServerName 127.0.0.1", f"Listen 127.0.0.1:{port}",
        f"PidFile {tmp}/httpd.pid", f"DefaultRuntimeDir {tmp}/run", f"ErrorLog {tmp}/error.log", "LogLevel warn",
        "TypesConfig /dev/null", "StartServers 1", "ServerLimit 2", "ThreadsPerChild 32", "MaxRequestWorkers 64",
        "LimitRequestBody 0", "KeepAlive On", f"DavLockDB {tmp}/lock/DavLock", f"DocumentRoot {docroot}",
        f'<Directory "{docroot}">', "  Dav On", "  Options None", "  AllowOverride None", "  AuthType Basic",
        '  AuthName "dav"', f"  AuthUserFile {tmp}/htpasswd", "  Require valid-user", "</Directory>",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def apache_dav() -> Iterator[ApacheDav]:
    """Apache httpd + mod_dav_fs on a free loopback port with a generated config, root and htpasswd.

    Installs nothing. Skips only when /usr/sbin/apache2 is missing and CI is unset; under CI that fails.
    As root the workers run as www-data (Apache refuses to serve as root) and own the temporary root.
    """
    if not APACHE.exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but /usr/sbin/apache2 is missing (install Debian's apache2 package)")
        pytest.skip("Apache httpd (/usr/sbin/apache2) is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="apache-dav-"))
    docroot = tmp / "htdocs"
    (docroot / "dav").mkdir(parents=True)
    (tmp / "run").mkdir()
    (tmp / "lock").mkdir()
    user, password = "davuser", "dav-" + base64.b32encode(os.urandom(10)).decode().lower()
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    (tmp / "htpasswd").write_text(f"{user}:{{SHA}}{digest}\n")
    run_as = None
    if os.geteuid() == 0:
        run_as = "www-data"
        try:
            entry = pwd.getpwnam(run_as)
        except KeyError:
            pytest.fail("running as root needs the www-data account for Apache's workers")
        tmp.chmod(0o755)
        for path in [tmp, *tmp.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    conf = tmp / "httpd.conf"
    conf.write_text(_config(tmp, port, docroot, run_as))
    proc = subprocess.Popen([str(APACHE), "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                         "LANG": "C"})
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                proc.kill()
                pytest.fail(f"Apache did not start: {err}\n{log}")
            time.sleep(0.05)
    try:
        yield ApacheDav(f"http://127.0.0.1:{port}/dav/", (user, password), docroot / "dav", tmp / "error.log")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(tmp, ignore_errors=True)


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
