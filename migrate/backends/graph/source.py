"""GraphSource: the `Source` protocol over Microsoft Graph (discovery via the SDK, hot paths as raw JSON)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from migrate.backends.graph.auth import TokenProvider, token_provider
from migrate.backends.graph.client import GraphClient
from migrate.backends.graph.content import ContentReader
from migrate.backends.graph.delta import DEFAULT_PAGE_SIZE, iter_delta
from migrate.backends.graph.permissions import to_grants
from migrate.errors import AuthError, SourceError
from migrate.models import Drive, Grant, RemoteEntry
from migrate.protocols import DeltaPage, DiscoveredUser
from migrate.transport.pacer import Pacer

if TYPE_CHECKING:
    from migrate.config import Settings

log = logging.getLogger(__name__)
PAGE_SIZE_ENV = "M365_GRAPH_PAGE_SIZE"
URL_SELECT = "id,@microsoft.graph.downloadUrl"   # what a pass that only lends download URLs asks for  # delta $top (1..999); smaller pages = more, finer checkpoints


@dataclass(frozen=True, slots=True)
class GraphOptions:
    """Knobs of the Graph source that are not user configuration (tests and benchmarks change them)."""

    page_size: int = DEFAULT_PAGE_SIZE
    workers: int = 8
    max_attempts: int = 12  # 30 % throttling leaves 0.3^12 ≈ 5e-7 of requests failing for good
    timeout: float = 100.0


class GraphSource:
    """Reads one tenant. Thread-safe: drives may be scanned in parallel; all calls share one Pacer.

    Use as a context manager, or call close(). Construction makes no request; the first call signs in.
    """

    def __init__(self, graph_url: str, tokens: TokenProvider, *, ca_bundle: str | None = None, org: str = "Unknown",
                 pacer: Pacer | None = None, options: GraphOptions = GraphOptions()) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.tokens = tokens
        self.options = options
        self.pacer = pacer or Pacer("graph", max_attempts=options.max_attempts)
        self.ca_bundle = ca_bundle
        self.org = org
        conns = max(8, options.workers * 2)
        self.client = GraphClient(self.graph_url, tokens, self.pacer, ca_bundle=ca_bundle, org=org,
                                  max_connections=conns, timeout=options.timeout)
        self._content: ContentReader | None = None
        self._sdk: Any = None
        self._domains: frozenset[str] | None = None
        self._lock = threading.Lock()
        self.discovery_notes: list[str] = []
        self.source_settings: Any = None

    # lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> GraphSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        if self._content is not None:
            self._content.close()
        if self._sdk is not None:
            self._sdk[0].close()
        self.tokens.close()

    def stats(self) -> dict[str, Any]:
        """Requests by kind, pacer counters and token refreshes (for summaries, metrics and benchmarks)."""
        s = self.pacer.stats
        counts = dict(self.client.counts)
        if self._sdk is not None:
            counts["sdk"] = self._sdk[0].requests
        return {"requests": counts, "calls": s.calls, "retries": s.retries, "throttled": s.throttled,
                "waited_s": round(s.waited, 3), "retry_afters": list(s.retry_afters),
                "token_refreshes": self.tokens.refreshes, "books": self.client.books.snapshot()}

    def check_access(self) -> None:
        """Sign in and read one user: AuthError (exit 4) with what to check when the credentials are wrong."""
        self.client.get_json("users", params={"$top": "1", "$select": "id"}, kind="users", what="sign-in check")

    # Source protocol ---------------------------------------------------------------------------------
    def _sdk_parts(self) -> tuple[Any, Any]:
        with self._lock:
            if self._sdk is None:
                from migrate.backends.graph.sdk import SdkRunner, build_service_client

                client = build_service_client(self.graph_url, self.tokens, ca_bundle=self.ca_bundle, org=self.org,
                                              timeout=self.options.timeout, reserve=self.client.reserve)
                self._sdk = (SdkRunner(self.pacer, self.tokens), client)
            return self._sdk

    def discover(self, on_progress: Callable[[str, int], None] | None = None) -> Iterator[Drive | DiscoveredUser]:
        from migrate.backends.graph.discovery import Discovery

        runner, client = self._sdk_parts()
        d = Discovery(runner, client, workers=self.options.workers, on_progress=on_progress)
        domains: set[str] = set()
        for found in d.run():
            if isinstance(found, DiscoveredUser) and "#ext#" not in found.upn.lower() and "@" in found.upn:
                domains.add(found.upn.rsplit("@", 1)[1].lower())
            yield found
        self.discovery_notes = d.notes
        if domains and self._domains is None:
            self._domains = frozenset(domains)

    def delta(self, drive_id: str, link: str | None) -> Iterator[DeltaPage]:
        return iter_delta(self.client, drive_id, link, page_size=self.options.page_size)

    def delta_start(self, drive_id: str) -> str:
        """The link a full enumeration starts from (what `delta(drive, None)` requests first)."""
        from migrate.backends.graph.delta import start_url

        return start_url(self.client, drive_id, self.options.page_size)

    def _reader(self) -> ContentReader:
        with self._lock:
            if self._content is None:
                self._content = ContentReader(self.client, ca_bundle=self.ca_bundle, org=self.org,
                                              max_connections=max(8, self.options.workers * 2))
            return self._content

    def open_content(self, drive_id: str, item_id: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self._reader().open(drive_id, item_id, offset)

    def urls_by_delta(self, drive_id: str) -> Iterator[list[str]]:
        """A fresh enumeration that asks for nothing but ids and download URLs: per page (2 RU for the first,
        1 RU after, up to `page_size` items each) the ids of the files whose URL is now held for their first
        download. The state database is not touched: this pass only lends URLs to `copy`."""
        url = self.client.url(f"drives/{quote(drive_id, safe='!')}/root/delta?$select={URL_SELECT}"
                              f"&$top={self.options.page_size}")
        reader = self._reader()
        for page in iter_delta(self.client, drive_id, url, page_size=self.options.page_size):
            yield reader.offer(drive_id, page.items)

    def current_listing(self, drive_id: str) -> Iterator[RemoteEntry]:
        """Every file of the drive as Graph lists it now (a fresh delta pass asked for ids, sizes and hashes): for
        `verify --source`, at 1–2 RU a page instead of one request per file. `path` carries the item id."""
        url = self.client.url(f"drives/{quote(drive_id, safe='!')}/root/delta?$select=id,size,file,deleted"
                              f"&$top={self.options.page_size}")
        for page in iter_delta(self.client, drive_id, url, page_size=self.options.page_size):
            for it in page.items:
                if it.get("deleted") or "file" not in it or not it.get("id"):
                    continue
                qx = ((it.get("file") or {}).get("hashes") or {}).get("quickXorHash") or ""
                yield RemoteEntry(path=str(it["id"]), is_folder=False, size=int(it.get("size") or 0),
                                  checksums=(f"QuickXorHash:{qx}",))

    def urls_by_listing(self, drive_id: str, folder_id: str) -> Iterator[list[str]]:
        """One folder's children asked for ids and download URLs only (2 RU a page): the ids per page."""
        path = (f"drives/{quote(drive_id, safe='!')}/items/{quote(folder_id, safe='')}/children"
                f"?$select={URL_SELECT}&$top={self.options.page_size}")
        reader = self._reader()
        data = self.client.get_json(path, kind="children", what=f"listing of {drive_id}/{folder_id}")
        while True:
            yield reader.offer(drive_id, data.get("value") or ())
            nxt = data.get("@odata.nextLink")
            if not nxt:
                return
            data = self.client.get_json(nxt, kind="children", what=f"listing of {drive_id}/{folder_id}")

    def prefetch_download_urls(self, items: Sequence[tuple[str, str]]) -> int:
        """Fetch the download URLs of many files ahead, 20 per `$batch` request (see ContentReader.prefetch)."""
        return self._reader().prefetch(items)

    def current_hash(self, drive_id: str, item_id: str) -> str | None:
        """The item's QuickXorHash as Graph lists it now (for `verify --source`); None when it is gone, '' when
        Graph lists no hash (0-byte files, some files right after upload)."""
        from migrate.errors import ItemNotFound

        path = f"drives/{quote(drive_id, safe='!')}/items/{quote(item_id, safe='')}"
        try:
            data = self.client.get_json(path, params={"$select": "id,file,deleted"}, kind="item",
                                        what=f"item {drive_id}/{item_id}")
        except ItemNotFound:
            return None
        if data.get("deleted"):
            return None
        return ((data.get("file") or {}).get("hashes") or {}).get("quickXorHash") or ""

    def permissions(self, drive_id: str, item_id: str) -> list[Grant]:
        path = f"drives/{quote(drive_id, safe='!')}/items/{quote(item_id, safe='')}/permissions"
        values = list(self.client.get_pages(path, kind="permissions", what=f"permissions of {drive_id}/{item_id}"))
        return to_grants(drive_id, item_id, values, self.internal_domains())

    # helpers -----------------------------------------------------------------------------------------
    def set_internal_domains(self, domains: set[str] | frozenset[str]) -> None:
        """The tenant's own mail domains (addresses elsewhere are guests); found by discover when not set."""
        self._domains = frozenset(d.lower() for d in domains)

    def internal_domains(self) -> frozenset[str]:
        """Verified domains from /organization, else the domains of the first page of member UPNs."""
        with self._lock:
            if self._domains is not None:
                return self._domains
        found: set[str] = set()
        try:
            org = self.client.get_json("organization", params={"$select": "verifiedDomains"}, kind="organization")
            for o in org.get("value") or ():
                found |= {str(v.get("name", "")).lower() for v in o.get("verifiedDomains") or () if v.get("name")}
        except (SourceError, AuthError) as exc:
            log.debug("no /organization (%s); taking domains from user names", str(exc).splitlines()[0])
            data = self.client.get_json("users", params={"$select": "userPrincipalName", "$top": "999"}, kind="users")
            for u in data.get("value") or ():
                upn = str(u.get("userPrincipalName") or "")
                if "@" in upn and "#ext#" not in upn.lower():
                    found.add(upn.rsplit("@", 1)[1].lower())
        with self._lock:
            self._domains = frozenset(found)
            return self._domains


def open_source(settings: Settings, *, workers: int | None = None, env: Any = None,
                options: GraphOptions | None = None) -> GraphSource:
    """The Graph source described by `settings.source`; the secret is read from env/secrets file here."""
    import os

    src = settings.source
    environ = os.environ if env is None else env
    page = environ.get(PAGE_SIZE_ENV, "").strip()
    opts = options or GraphOptions(workers=workers or settings.transfer.workers,
                                   page_size=max(1, min(999, int(page))) if page.isdigit() else DEFAULT_PAGE_SIZE)
    from migrate.connect import fault_budget

    pacer = Pacer("graph", max_attempts=opts.max_attempts,
                  faults=fault_budget(settings, "Microsoft Graph", src.graph_url, "[source] graph_url"))
    source = GraphSource(src.graph_url, token_provider(settings, env), ca_bundle=str(src.ca_bundle) if src.ca_bundle
                         else None, org=src.org, options=opts, pacer=pacer)
    source.source_settings = src   # the budget figures a Run paces this source to (engine/meter.py)
    return source
