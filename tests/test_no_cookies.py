"""No client of ours stores or sends a cookie (reference §1.2: a Nextcloud session wins over Basic auth).

Each test talks to a loopback server that sets cookies on every answer and reports the Cookie header it was sent;
on the code before the fix the jar kept the session cookie and sent it back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _CookieServer(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self) -> None:
        _CookieServer.seen.append(self.headers.get("Cookie", ""))
        body = b"<ok/>"
        self.send_response(207 if self.command == "PROPFIND" else 200)
        self.send_header("Set-Cookie", "oc1234abcd=sessionid; path=/; HttpOnly; SameSite=Lax")
        self.send_header("Set-Cookie", "oc_sessionPassphrase=secret; path=/; HttpOnly")
        self.send_header("Set-Cookie", "nc_sameSiteCookielax=true; path=/; expires=Fri, 31-Dec-2100 23:59:59 GMT")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PROPFIND = do_MKCOL = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def cookie_server() -> Iterator[str]:
    _CookieServer.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _CookieServer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_project_client_neither_stores_nor_sends_cookies(cookie_server: str) -> None:
    from migrate.transport.http import make_client

    with make_client() as client:
        for _ in range(3):
            assert client.get(cookie_server + "/x", auth=("admin", "pw")).status_code == 200
        assert len(client.cookies.jar) == 0
        client.cookies.set("planted", "1")  # even a cookie set by hand is neither kept nor sent
        client.get(cookie_server + "/y")
        assert len(client.cookies.jar) == 0
    assert _CookieServer.seen == ["", "", "", ""]


def test_target_session_sends_no_cookie_between_accounts(cookie_server: str) -> None:
    from migrate.backends.webdav.session import DavSession, make_http
    from migrate.transport.pacer import Pacer

    s = DavSession(make_http(), Pacer("test"))
    try:
        s.send("PROPFIND", cookie_server + "/remote.php/dav/files/admin/", auth=("admin", "a"), what="p", ok=(207,))
        s.send("MKCOL", cookie_server + "/remote.php/dav/files/alice/Q2", auth=("alice", "b"), what="m")
        assert len(s.http.cookies.jar) == 0
    finally:
        s.close()
    assert _CookieServer.seen == ["", ""]


def test_graph_sdk_client_keeps_no_cookie(cookie_server: str) -> None:
    """The msgraph-sdk's httpx client (discovery) gets the same refusing jar."""
    import httpx

    from migrate.transport.http import NoCookieJar

    async def go() -> int:
        async with httpx.AsyncClient(cookies=NoCookieJar()) as client:
            await client.get(cookie_server + "/a")
            await client.get(cookie_server + "/b")
            return len(client.cookies.jar)

    assert asyncio.run(go()) == 0
    assert _CookieServer.seen == ["", ""]
