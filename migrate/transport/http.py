"""One factory for HTTP clients, so TLS verification, timeouts, cookies and the User-Agent are set the same everywhere.

No client of ours keeps cookies. Nextcloud answers every Basic-auth request with session cookies, and a request
that carries them runs as the session's user whatever its Authorization header says (reference §1.2): one jar
shared by several accounts would write as, or be refused for, the wrong user. Graph needs none either.
"""

from __future__ import annotations

import http.cookiejar
from typing import TYPE_CHECKING, Any

from migrate import __version__

if TYPE_CHECKING:
    import httpx


def user_agent(org: str = "Unknown") -> str:
    """The form Microsoft asks ISV-less tools to send: NONISV|<organisation>|<app>/<version>."""
    return f"NONISV|{org}|m365-migrate/{__version__}"


class _RefuseAll(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class NoCookieJar(http.cookiejar.CookieJar):
    """A jar that stores nothing and sends nothing, whatever a caller or a library tries.

    Give it to httpx as the jar itself (`cookies=NoCookieJar()`): httpx keeps a `CookieJar` it is given, but
    copies an `httpx.Cookies` into a new default jar, which would drop this refusal.
    """

    def __init__(self) -> None:
        super().__init__(policy=_RefuseAll())

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def make_client(
    *,
    ca_bundle: str | None = None,
    timeout: float = 100.0,
    connect_timeout: float = 30.0,
    base_url: str = "",
    org: str = "Unknown",
    max_connections: int = 32,
    follow_redirects: bool = False,
) -> httpx.Client:
    """A sync httpx client; verification is never off (`ca_bundle` only adds trust); cookies are never kept."""
    import ssl

    import httpx

    verify: ssl.SSLContext | bool = True
    if ca_bundle:
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=ca_bundle)
        verify = ctx
    return httpx.Client(
        base_url=base_url,
        verify=verify,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": user_agent(org)},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=follow_redirects,
        cookies=NoCookieJar(),
    )
