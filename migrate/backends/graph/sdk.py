"""The msgraph-sdk client for discovery: our base URL, our token cache, no SDK retries, calls run on one loop.

The SDK is asynchronous; discovery is not. `SdkRunner` owns an event loop in a background thread, so worker
threads can each submit a coroutine through the shared pacer (`run`) while the loop multiplexes them. The SDK's
RetryHandler is left out of the middleware: the pacer is the only retry policy, and ODataErrors are mapped by
`client.classify` like raw responses.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from migrate import __version__
from migrate.backends.graph.auth import TokenProvider
from migrate.backends.graph.client import classify
from migrate.errors import TransientError, Unanswered
from migrate.transport.pacer import Pacer

T = TypeVar("T")


def _token_auth(tokens: TokenProvider) -> Any:
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )

    class _Provider(AccessTokenProvider):
        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            return tokens.get()

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator([])

    return BaseBearerTokenAuthenticationProvider(_Provider())


def build_service_client(base_url: str, tokens: TokenProvider, *, ca_bundle: str | None, org: str,
                         timeout: float = 100.0, reserve: Callable[[str, str], float] | None = None) -> Any:
    """A GraphServiceClient over a GraphRequestAdapter whose base URL is `base_url` (national cloud, sandbox).

    `reserve(kind, url)` charges each request the SDK sends to the run's books and budget (see cost.py) and
    returns how long to wait: the wait is awaited, so the loop serving other discovery requests never blocks."""
    import ssl

    import httpx
    from kiota_http.kiota_client_factory import KiotaClientFactory
    from kiota_http.middleware import RetryHandler
    from msgraph import GraphServiceClient
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_request_adapter import options as graph_options
    from msgraph_core import GraphClientFactory

    from migrate.transport.http import NoCookieJar, user_agent

    verify: Any = True
    if ca_bundle:
        verify = ssl.create_default_context()
        verify.load_verify_locations(cafile=ca_bundle)
    hooks: dict[str, list[Any]] = {}
    if reserve is not None:
        from migrate.backends.graph.cost import kind_of

        async def charge(request: httpx.Request) -> None:
            url = str(request.url)
            wait = reserve(kind_of(url), url)
            if wait > 0:
                await asyncio.sleep(wait)

        hooks["request"] = [charge]
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=30), verify=verify,
                             headers={"User-Agent": user_agent(org)}, cookies=NoCookieJar(), event_hooks=hooks)
    middleware = [m for m in KiotaClientFactory.get_default_middleware(graph_options)
                  if not isinstance(m, RetryHandler)]
    middleware.append(GraphClientFactory._get_telemetry_handler(graph_options))
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
    adapter = GraphRequestAdapter(_token_auth(tokens), client=http)
    adapter.base_url = base_url.rstrip("/")
    client = GraphServiceClient(request_adapter=adapter)
    client._m365_version = __version__  # noqa: SLF001 - marks clients we built (debugging aid)
    return client


class SdkRunner:
    """Runs SDK coroutines on a private event loop; `call` goes through the pacer and maps SDK errors."""

    def __init__(self, pacer: Pacer, tokens: TokenProvider) -> None:
        self.pacer = pacer
        self.tokens = tokens
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="graph-sdk", daemon=True)
        self._thread.start()
        self.requests = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)

    def _once(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        from kiota_abstractions.api_error import APIError

        with self._lock:
            self.requests += 1
        for attempt in (1, 2):
            token = self.tokens.get()
            fut = asyncio.run_coroutine_threadsafe(make(), self.loop)  # type: ignore[arg-type]
            try:
                return fut.result()
            except APIError as exc:
                err = error_from_api(exc, what)
                if type(err).__name__ == "_TokenExpired" and attempt == 1:
                    self.tokens.refresh(token)
                    continue
                raise err from None
            except Exception as exc:  # httpx/ssl errors from inside the SDK
                import httpx

                if isinstance(exc, httpx.TransportError):
                    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    raise Unanswered(f"{what}: connection failed ({reason})", reason=reason) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        """Await `make()` on the loop, through the pacer (retries, shared Retry-After pauses)."""
        return self.pacer.call(lambda: self._once(make, what), what=what)


def error_from_api(exc: Any, what: str) -> BaseException:
    """Feed an SDK APIError/ODataError through the backend's one classifier."""
    status = int(getattr(exc, "response_status_code", 0) or 0)
    headers: dict[str, str] = {}
    for k, v in (getattr(exc, "response_headers", None) or {}).items():
        headers[str(k).lower()] = v if isinstance(v, str) else ",".join(v) if isinstance(v, (set, list)) else str(v)
    body: dict[str, Any] = {}
    err = getattr(exc, "error", None)
    if err is not None:
        node: dict[str, Any] = {"code": getattr(err, "code", None), "message": getattr(err, "message", None)}
        inner = getattr(err, "inner_error", None) or getattr(err, "innerError", None)
        if inner is not None:
            extra = getattr(inner, "additional_data", None) or {}
            if extra.get("code"):
                node["innerError"] = {"code": extra.get("code")}
        body = {"error": node}
    result = classify(status, body, headers, what)
    return result if result is not None else TransientError(f"{what}: unexpected SDK error {exc}")
