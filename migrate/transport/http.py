"""One factory for HTTP clients, so TLS verification, timeouts and the User-Agent are set the same everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrate import __version__

if TYPE_CHECKING:
    import httpx


def user_agent(org: str = "Unknown") -> str:
    """The form Microsoft asks ISV-less tools to send: NONISV|<organisation>|<app>/<version>."""
    return f"NONISV|{org}|m365-migrate/{__version__}"


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
    """A sync httpx client; verification is never off: `ca_bundle` only adds trust (proxies, the sandbox)."""
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
    )
