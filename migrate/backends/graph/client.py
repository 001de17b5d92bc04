"""Raw-JSON Graph calls over httpx: one classifier from responses to migrate.errors, every call through the pacer.

`classify()` is the backend's single `should_retry`: it decides which answers are transient (429/503/504 with
their Retry-After, 5xx, resets), which mean "refresh the token once" (401 expired), and which are final
(403 → AuthError, 404 → ItemNotFound, 410 → DeltaExpired). The SDK path (discovery) feeds its ODataError
through the same function.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from migrate.backends.graph.cost import OUTLOOK_KINDS, GraphBooks
from migrate.errors import (
    AuthError,
    DeltaExpired,
    ItemNotFound,
    SourceError,
    Terminal,
    ThrottledError,
    TransientError,
    Unanswered,
)
from migrate.transport.budget import parse_ratelimit
from migrate.transport.pacer import Pacer, parse_retry_after

if TYPE_CHECKING:
    import httpx

    from migrate.backends.graph.auth import TokenProvider

log = logging.getLogger(__name__)

RESYNC_CODES = {"resyncrequired", "syncstatenotfound", "resyncapplydifferences", "resyncuploaddifferences",
                "syncstateinvalid"}
EXPIRED_TOKEN_CODES = {"invalidauthenticationtoken", "expiredauthenticationtoken", "tokenexpired"}
DEFAULT_429_PAUSE = 1.0  # a 429 without Retry-After still pauses every worker for a moment


class SourceRefused(SourceError, Terminal):
    """Graph answered a request with a final error for this item or drive (not retried)."""


class MalwareBlocked(SourceRefused):
    """The item is flagged as malware; the service refuses its download (reported, never retried)."""


class _TokenExpired(Exception):
    """Internal: the access token expired; the client refreshes it once and re-sends."""


def error_codes(body: Any) -> list[str]:
    """Every `code` in the error envelope, outer first, walking `innerError`/`innererror`, lower-cased."""
    out: list[str] = []
    node = body.get("error") if isinstance(body, dict) else None
    while isinstance(node, dict):
        code = node.get("code")
        if isinstance(code, str):
            out.append(code.lower())
        node = node.get("innerError") or node.get("innererror")
    return out


def error_message(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    return str(err.get("message") or "")[:300] if isinstance(err, dict) else ""


def classify(status: int, body: Any, headers: Mapping[str, str], what: str) -> BaseException | None:
    """The backend's one decision table: None for success, else the error to raise (the pacer retries Transients)."""
    if status < 400:
        return None
    codes = error_codes(body)
    msg = error_message(body)
    detail = f"{what}: HTTP {status}" + (f" {codes[0]}" if codes else "") + (f" ({msg})" if msg else "")
    if status == 429 or (status in (503, 509) and "retry-after" in headers):
        ra = parse_retry_after(headers.get("retry-after"))
        return ThrottledError(detail, retry_after=ra if ra is not None else (DEFAULT_429_PAUSE if status == 429 else None))
    if status in (500, 502, 503, 504) or "cannotsnapshottree" in codes:
        return TransientError(detail)
    if status == 401:
        if set(codes) & EXPIRED_TOKEN_CODES or "expired" in msg.lower():
            return _TokenExpired(detail)
        return AuthError(detail, hint="the access token was refused: check [source] tenant_id and client_id, and "
                         "that the app registration has admin consent")
    if status == 410 or set(codes) & RESYNC_CODES:
        return DeltaExpired(detail, restart_url=headers.get("location"))
    if status == 403:
        if {"malwaredetected", "virussuspicious"} & set(codes):
            return MalwareBlocked(detail + " — blocked by policy, not downloaded")
        return AuthError(detail, hint="the app lacks a Graph application permission: grant Files.Read.All, "
                         "Sites.Read.All and User.Read.All (with admin consent), or check Sites.Selected")
    if status == 404 or {"itemnotfound", "resourcenotfound"} & set(codes):
        return ItemNotFound(detail)
    return SourceRefused(detail)


def _mailbox_of(url: str) -> str | None:
    """The mailbox (user id or UPN) an Outlook request reads, from its path `/users/{id}/...`."""
    parts = urlsplit(url).path.split("/")
    try:
        return parts[parts.index("users") + 1].lower() or None
    except (ValueError, IndexError):
        return None


def _batch_steps(body: Any) -> list[tuple[str, str]]:
    """(kind, url) of each step of a `$batch` body: every step is charged as the request it stands for."""
    out = []
    for step in (body or {}).get("requests") or ():
        url = str(step.get("url") or "")
        path = urlsplit(url).path.rstrip("/")
        kind = ("permissions" if path.endswith("/permissions") else "children" if path.endswith("/children")
                else "content" if path.endswith("/content") else "item")
        out.append((kind, url))
    return out


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


class GraphClient:
    """Authenticated JSON calls to one Graph endpoint; bearer tokens go only to that endpoint's host.

    `request_once` makes one attempt (a 401 'expired' answer refreshes the token and re-sends once);
    `get_json` wraps it in the shared pacer. Counters per kind of request are kept in `counts`.
    """

    def __init__(self, base_url: str, tokens: TokenProvider, pacer: Pacer, *, ca_bundle: str | None = None,
                 org: str = "Unknown", max_connections: int = 32, timeout: float = 100.0) -> None:
        from migrate.transport.http import make_client

        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.netloc.lower())
        self.tokens = tokens
        self.pacer = pacer
        self.http = make_client(ca_bundle=ca_bundle, org=org, max_connections=max_connections, timeout=timeout)
        self.counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self.books = GraphBooks()

    def close(self) -> None:
        self.http.close()

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path, or the given link after checking it points at our Graph host."""
        if path_or_url.startswith(("https://", "http://")):
            parts = urlsplit(path_or_url)
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise SourceRefused(
                    f"Graph returned a link to another host ({parts.scheme}://{parts.netloc}); not following it "
                    "with our token", hint="check [source] graph_url")
            return path_or_url
        return self.base_url + "/" + path_or_url.lstrip("/")

    def charge(self, kind: str, url: str = "", *, steps: int = 1) -> int:
        """Book `steps` requests of `kind` (counts, RU, the mailbox they read); returns their RU."""
        with self._count_lock:
            self.counts[kind] += steps
        mailbox = _mailbox_of(url) if kind in OUTLOOK_KINDS else None
        return self.books.charge(kind, url, steps=steps, mailbox=mailbox)

    def reserve(self, kind: str, url: str = "", *, steps: int = 1) -> float:
        """`charge`, and book the RU in the budget; the seconds to wait before sending (for the SDK's event loop,
        which must not block)."""
        cost = self.charge(kind, url, steps=steps)
        budget = self.pacer.budget
        return budget.reserve(cost) if budget is not None and cost else 0.0

    def count(self, kind: str, url: str = "", *, steps: int = 1) -> None:
        """`charge`, then wait until the budget has paid for it (the pacer's one wait)."""
        self.pacer.spend(self.charge(kind, url, steps=steps))

    def observe(self, kind: str, resp: httpx.Response) -> None:
        """What an answer says about the budget: throttled (counted), or Graph's RateLimit-* view of it."""
        if resp.status_code in (429, 503):
            self.books.throttle(kind)
        budget = self.pacer.budget
        if budget is not None and "ratelimit-remaining" in resp.headers:
            budget.observe(*parse_ratelimit(resp.headers))

    def request_once(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                     kind: str = "other", what: str = "", headers: Mapping[str, str] | None = None,
                     json_body: Any = None) -> httpx.Response:
        """One attempt (plus one re-send after a token refresh); raises the classified error."""
        import httpx

        url = self.url(path_or_url)
        what = what or f"{method} {urlsplit(url).path}"
        token = self.tokens.get()
        steps = len(json_body.get("requests") or ()) if kind == "batch" and isinstance(json_body, dict) else 0
        for attempt in (1, 2):
            self.count(kind, url)
            for step_kind, step_url in _batch_steps(json_body) if steps else ():
                self.count(step_kind, step_url)
            try:
                resp = self.http.request(method, url, params=params, json=json_body,
                                         headers={**(headers or {}), "Authorization": f"Bearer {token}"})
            except httpx.TimeoutException as exc:
                raise Unanswered(f"{what}: timed out ({type(exc).__name__})", reason=type(exc).__name__) from None
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise Unanswered(f"{what}: connection failed ({reason})", reason=reason) from None
            self.observe(kind, resp)
            err = classify(resp.status_code, _body(resp) if resp.status_code >= 400 else None, resp.headers, what)
            if err is None:
                return resp
            if isinstance(err, _TokenExpired) and attempt == 1:
                log.info("Graph access token expired; getting a new one")
                token = self.tokens.refresh(token)
                continue
            if isinstance(err, _TokenExpired):
                raise AuthError(f"{what}: a freshly issued access token was refused ({err})",
                                hint="check the clock of this machine, [source] authority and tenant_id") from None
            raise err
        raise AssertionError("unreachable")  # pragma: no cover

    def open_stream(self, path_or_url: str, *, kind: str, what: str = "", pacer: Pacer | None = None,
                    headers: Mapping[str, str] | None = None) -> httpx.Response:
        """A GET whose body is read as it arrives (`iter_bytes`, then `close`): an attachment's `$value` is sent
        with our token and can be large. The start goes through the pacer; the caller reads and closes it."""
        import httpx

        url = self.url(path_or_url)
        what = what or f"GET {urlsplit(url).path}"

        def call() -> httpx.Response:
            token = self.tokens.get()
            for attempt in (1, 2):
                self.count(kind, url)   # booked to its mailbox (Outlook's per-mailbox limits)
                try:
                    resp = self.http.send(self.http.build_request("GET", url, headers={
                        **(headers or {}), "Authorization": f"Bearer {token}"}), stream=True)
                except httpx.TimeoutException as exc:
                    raise TransientError(f"{what}: timed out ({type(exc).__name__})") from None
                except httpx.TransportError as exc:
                    raise TransientError(f"{what}: connection failed ({type(exc).__name__})") from None
                self.observe(kind, resp)
                if resp.status_code < 400:
                    return resp
                try:
                    resp.read()
                    body = _body(resp)
                finally:
                    resp.close()
                err = classify(resp.status_code, body, resp.headers, what)
                if isinstance(err, _TokenExpired) and attempt == 1:
                    token = self.tokens.refresh(token)
                    continue
                raise err if err is not None and not isinstance(err, _TokenExpired) else AuthError(
                    f"{what}: a freshly issued access token was refused")
            raise AssertionError("unreachable")  # pragma: no cover

        return (pacer or self.pacer).call(call, what=what)

    def get_json(self, path_or_url: str, *, params: Mapping[str, Any] | None = None, kind: str = "other",
                 what: str = "", headers: Mapping[str, str] | None = None, pacer: Pacer | None = None
                 ) -> dict[str, Any]:
        """GET through the pacer (or the given one, e.g. a mailbox's) and return the JSON body."""
        def call() -> dict[str, Any]:
            resp = self.request_once("GET", path_or_url, params=params, kind=kind, what=what, headers=headers)
            try:
                data = resp.json()
            except ValueError:
                raise TransientError(f"{what or path_or_url}: the answer was not JSON (truncated?)") from None
            return data if isinstance(data, dict) else {"value": data}

        return (pacer or self.pacer).call(call, what=what or kind)

    def get_pages(self, path: str, *, params: Mapping[str, Any] | None = None, kind: str = "list",
                  what: str = "") -> Iterator[dict[str, Any]]:
        """Every `value` entry of a paged collection, following `@odata.nextLink` (empty pages included)."""
        data = self.get_json(path, params=params, kind=kind, what=what)
        while True:
            yield from data.get("value") or ()
            nxt = data.get("@odata.nextLink")
            if not nxt:
                return
            data = self.get_json(nxt, kind=kind, what=what)
