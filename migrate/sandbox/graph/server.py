"""GraphSandbox: the tenant served on three loopback listeners (Graph, downloads, token endpoint) in a thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .admin import hash_row, truth_rows
from .app import GraphApp
from .auth import Authority, TLSMaterial
from .calendars import Groupware, GroupwareMutations
from .faults import Faults
from .generate import TenantSpec, generate
from .groupware_routes import GroupwareRoutes
from .http import HTTPServer
from .mail import Mailboxes
from .mail_mutate import MailMutations
from .mail_routes import MailRoutes
from .outlook import OutlookOptions
from .tenant import Tenant

T = TypeVar("T")


class _Mutate:
    """`g.mutate.add_file(...)` etc.: runs Mutator methods in the server's loop thread."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        self._g = sandbox

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        fn = getattr(self._g.app.mutator, name)
        return lambda *a, **kw: self._g.call(fn, *a, **kw)


class GraphSandbox:
    """A faithful local Microsoft Graph (see the package docstring for the API); a context manager."""

    def __init__(self, spec: TenantSpec | None = None, *, tls: bool = False, port: int = 0, download_port: int = 0,
                 auth_port: int = 0, token_lifetime: int = 3600, shuffle_delta: bool = False,
                 empty_pages: bool = False, enrichment: bool = False, download_url_ttl: float = 300,
                 page_size: int = 200, delta_token_ttl: float | None = None, resync_code: str = "resyncRequired",
                 resync_inner: str | None = None, mysite_error: str = "404", ru_per_minute: float | None = None,
                 ru_per_day: float | None = None, block_after: int = 100, block_seconds: float = 60.0,
                 mailbox_requests_per_10_minutes: int = 10_000, mailbox_concurrency: int = 4,
                 outlook_delay: float = 0.0, licences: int | None = None,
                 ignore_range: bool = False, require_auth: bool = True, client_secret: str | None = None,
                 workdir: Path | None = None, faults: list[dict[str, Any]] | None = None) -> None:
        self.spec = spec or TenantSpec()
        self.tls, self.ports = tls, (port, download_port, auth_port)
        self.tenant: Tenant = generate(self.spec)
        ids = random.Random(f"client:{self.spec.seed}")
        self.tenant_id = self.tenant.tenant_id
        self.client_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
        self.client_secret = client_secret or "sbx~" + secrets.token_urlsafe(24)
        self.faults = Faults()
        for rule in faults or []:          # faults from the start (e.g. the token endpoint's first answer)
            self.faults.set(**rule)
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="graph-sandbox-")) if workdir is None else Path(workdir)
        self.tls_material = TLSMaterial(self.workdir)
        self.ca_path = str(self.tls_material.ca_path)
        self.client_cert_path = str(self.tls_material.client_cert_path)
        self.authority_obj = Authority(self.tenant_id, self.client_id, self.client_secret, token_lifetime,
                                       self.tls_material)
        self.app = GraphApp(self.tenant, self.authority_obj, self.faults, page_size=page_size,
                            shuffle_delta=shuffle_delta, empty_pages=empty_pages, enrichment=enrichment,
                            download_url_ttl=download_url_ttl, delta_token_ttl=delta_token_ttl,
                            resync_code=resync_code, resync_inner=resync_inner, mysite_error=mysite_error,
                            ru_per_minute=ru_per_minute, ru_per_day=ru_per_day, block_after=block_after,
                            block_seconds=block_seconds, licences=licences,
                            outlook=OutlookOptions(mailbox_requests_per_10_minutes, mailbox_concurrency, outlook_delay),
                            ignore_range=ignore_range, require_auth=require_auth)
        self.groupware = Groupware(self.tenant, self.spec)
        self.groupware_mutations = GroupwareMutations(self.groupware)
        self.app.groupware = GroupwareRoutes(self.groupware)
        self.mailboxes = Mailboxes(self.tenant, self.spec)
        self.mail_mutations = MailMutations(self.mailboxes)
        self.app.mail = MailRoutes(self.mailboxes)
        self.mutate = _Mutate(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[HTTPServer] = []
        self.graph_url = self.authority = self.download_url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> GraphSandbox:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="graph-sandbox", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    async def _listen(self) -> None:
        ctx = self.tls_material.server_context()
        graph = HTTPServer(self.app.handle_graph, "graph", ctx if self.tls else None)
        dl = HTTPServer(self.app.handle_download, "download", ctx if self.tls else None)
        auth = HTTPServer(self.app.handle_auth, "auth", ctx)
        gp = await graph.start(self.ports[0])
        dp = await dl.start(self.ports[1])
        ap = await auth.start(self.ports[2])
        self._servers = [graph, dl, auth]
        scheme = "https" if self.tls else "http"
        self.graph_url = f"{scheme}://127.0.0.1:{gp}/v1.0"
        self.admin_url = f"{scheme}://127.0.0.1:{gp}/_sandbox"
        self.download_url = f"{scheme}://127.0.0.1:{dp}"
        self.app.download_base = self.download_url
        self.authority = f"https://127.0.0.1:{ap}"

    async def _close(self) -> None:
        for s in self._servers:
            await s.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> GraphSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until interrupted (the CLI)."""
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass

    # ------------------------------------------------------------------ thread hop
    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn in the loop thread (the tenant is only ever touched there)."""
        if self._loop is None or threading.current_thread() is self._thread:
            return fn(*args, **kwargs)

        async def job() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(job(), self._loop).result(timeout=120)

    # ------------------------------------------------------------------ the API tests and demo use
    def info(self) -> dict[str, Any]:
        """The CLI's JSON line."""
        out = {"graph_url": self.graph_url, "authority": self.authority, "tenant_id": self.tenant_id,
               "client_id": self.client_id, "client_secret": self.client_secret,
               "download_url": self.download_url, "admin_url": self.admin_url,
               "client_certificate_path": self.client_cert_path, "ca_path": self.ca_path}
        return out

    def stats(self) -> dict[str, Any]:
        """The books: requests, statuses, RU (total, per route, refused), throttling (429/503, blocked), Outlook
        per mailbox, and the budget's state (see `budget.py`)."""
        return self.call(self.app.books)

    def reset_stats(self) -> None:
        self.call(self.app.stats.reset)

    def set_budget(self, **changes: Any) -> dict[str, Any]:
        """per_minute, per_day (0/None = unlimited), block_after, block_seconds, reset: only those given change."""
        def apply() -> dict[str, Any]:
            self.app.budget.configure(**changes)
            return self.app.budget.state()
        return self.call(apply)

    def set_outlook(self, **changes: Any) -> None:
        """per_10_minutes, concurrency, delay, retry_after of the per-mailbox Outlook limits."""
        self.call(self.app.outlook.configure, **changes)

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        """Per drive id: live items (not the root) with path, downloaded size, SHA1 and QuickXorHash of the
        downloaded bytes (listed_* when enrichment makes them differ), mtime and permissions."""
        rows = self.call(truth_rows, self.app)
        return {k: [hash_row(r) for r in v] for k, v in rows.items()}

    def expire_delta_tokens(self) -> None:
        self.call(self.app.expire_delta_tokens)

    def mail_truth(self, user: str) -> list[dict[str, Any]]:
        """Every message of a user's mailbox (id or UPN): id, folder path, well_known, hidden (also inside a hidden
        folder), internet_message_id, subject, received, is_read, is_draft, flag, categories, last_verb,
        icon_index, size and sha256 of the MIME `$value` serves in the stable mode."""
        from .mail import hash_truth, truth_rows

        u = self.tenant.user(user)
        if u is None:
            raise KeyError(f"no user {user!r}")
        rows = self.call(lambda: truth_rows(self.mailboxes.mailbox(u)))
        return [hash_truth(r) for r in rows]

    def mail_mutate(self, op: str, **kwargs: Any) -> Any:
        """A mail change in the loop thread: see `mail_mutate.MailMutations` for the ops."""
        return self.call(self.mail_mutations.apply, op, **kwargs)

    def expire_access_tokens(self) -> None:
        self.call(self.authority_obj.expire_all)

    def issue_token(self, lifetime: float | None = None) -> str:
        """A bearer token without the OAuth2 dance (static-credential tests, benchmarks)."""
        return self.call(self.authority_obj.issue, lifetime)

    def warm(self) -> int:
        """Pre-render and hash every item (benchmarks: measure the client, not the first-touch cost)."""
        return self.call(self.app.warm)

    def set_option(self, **options: Any) -> None:
        """Change app options at runtime, e.g. shuffle_delta, empty_pages, enrichment, download_url_ttl."""
        def apply() -> None:
            for k, v in options.items():
                if not hasattr(self.app, k) or k in ("tenant", "authority", "faults", "stats", "mutator"):
                    raise ValueError(f"unknown option {k!r}")
                setattr(self.app, k, v)
        self.call(apply)
