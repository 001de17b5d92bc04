"""Helpers of the groupware tests: a real Radicale CalDAV/CardDAV server on loopback, and source/target views."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SPEC = dict(seed=21, users=3, sites=0, teams=0, files_per_drive=3, max_depth=1, no_mysite_users=0, malware_files=0,
            onenote=False, shares=False, versions=False, groupware_events=10, groupware_contacts=5,
            groupware_attachment_kb=40)
WINDOW = (dt.datetime(2027, 1, 1, tzinfo=dt.UTC), dt.datetime(2029, 1, 1, tzinfo=dt.UTC))   # two years


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Radicale:
    """`python -m radicale` with htpasswd (plain) users, owner-only rights, filesystem storage under `root`."""

    def __init__(self, root: Path, users: dict[str, str]) -> None:
        self.root, self.users = root, users
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Radicale:
        self.root.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "users"
        htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        self.log = open(self.root / "radicale.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", "", "--server-hosts", f"127.0.0.1:{self.port}",
             "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(htpasswd), "--auth-htpasswd-encryption",
             "plain", "--rights-type", "owner_only", "--storage-filesystem-folder", str(self.root / "collections"),
             "--logging-level", "warning"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/.web/", timeout=1)
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.root / "radicale.log").read_text()) from None
                time.sleep(0.1)
        raise RuntimeError("Radicale did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()

    def __enter__(self) -> Radicale:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def source_view(g: Any, upn: str, cal_name: str) -> list[tuple[str, str]]:
    """The source's own expanded view of one calendar over WINDOW, as (start, end) UTC instants."""
    from migrate.groupware.ical import parse_utc

    u = g.tenant.user(upn)
    with httpx.Client(base_url=g.graph_url, timeout=30, headers={"Authorization": f"Bearer {g.issue_token()}",
                                                                  "Prefer": 'outlook.timezone="UTC"'}) as c:
        cal = next(x for x in c.get(f"/users/{u.id}/calendars").json()["value"] if x["name"] == cal_name)
        view = c.get(f"/users/{u.id}/calendars/{cal['id']}/calendarView", params={
            "startDateTime": WINDOW[0].isoformat(), "endDateTime": WINDOW[1].isoformat(), "$top": 1000}).json()
    return sorted((parse_utc(v["start"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   parse_utc(v["end"]).strftime("%Y-%m-%dT%H:%M:%SZ")) for v in view["value"])


def target_objects(url: str, auth: tuple[str, str]) -> dict[str, bytes]:
    """Every object of a CalDAV/CardDAV collection: name → body (PROPFIND, then GET each)."""
    from urllib.parse import unquote
    from xml.etree import ElementTree as ET

    out = {}
    with httpx.Client(auth=auth, timeout=30) as c:
        r = c.request("PROPFIND", url, headers={"Depth": "1"})
        assert r.status_code == 207, r.text
        for resp in ET.fromstring(r.content).findall("{DAV:}response"):
            href = unquote(resp.findtext("{DAV:}href") or "")
            if href.rstrip("/") == httpx.URL(url).path.rstrip("/"):
                continue
            g = c.get(httpx.URL(url).join(href), headers={"Accept": "text/vcard; version=3.0"})
            out[href.rsplit("/", 1)[-1]] = g.content
    return out


class MailSink:
    """A loopback SMTP server that keeps every message it is given (for a real Nextcloud whose mail settings
    point at it): `with MailSink("127.0.0.1", 25) as sink: ... sink.messages`."""

    def __init__(self, host: str, port: int) -> None:
        import socketserver
        import threading

        self.messages: list[bytes] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 sink ESMTP\r\n")
                data: list[bytes] | None = None
                for line in self.rfile:
                    if data is not None:
                        if line.rstrip(b"\r\n") == b".":
                            sink.messages.append(b"".join(data))
                            data = None
                            self.wfile.write(b"250 queued\r\n")
                        else:
                            data.append(line)
                        continue
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        data = []
                        self.wfile.write(b"354 go on\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MailSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
