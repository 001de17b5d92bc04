"""Routing and handlers: Graph routes (checklist §10), the pre-authenticated download host and admin routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from . import admin, perms
from . import delta as delta_engine
from .auth import Authority
from .budget import Budget, ru_cost
from .content import Content
from .faults import Faults, Rule, Stats, error_body
from .groupware_routes import SEGMENTS as GW_SEGMENTS
from .groupware_routes import GroupwareRoutes
from .http import Request, Response, parse_query
from .mail_routes import SEGMENTS as MAIL_SEGMENTS
from .mail_routes import MailRoutes
from .mutate import Mutator
from .outlook import MailboxLimits, OutlookOptions
from .render import (
    drive_json,
    group_json,
    iso,
    item_json,
    item_text,
    organization_json,
    select,
    site_json,
    skus_json,
    user_json,
    user_view,
)
from .tenant import Drive, Item, Tenant

BATCH_MAX = 20  # steps per JSON batch (Graph's limit)

_SLASHES = re.compile(r"/{2,}")
_ROOT_PATH = re.compile(r"^(?P<pre>.*?/(?:root|items/[^/:]+)):(?P<p>[^:]*):?(?P<post>/.*)?$")
_DELTA = re.compile(r"^(?:microsoft\.graph\.)?delta(?:\((?:token=)?'?(?P<tok>[^')]*)'?\))?$")
_ALL_SITES = {"getAllSites", "getAllSites()", "oneDrive.getAllSites", "microsoft.graph.getAllSites",
              "microsoft.graph.getAllSites()"}
WWW_AUTH = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
            'client_id="00000003-0000-0000-c000-000000000000"')
MYSITE_ERRORS = {"404": (404, "ResourceNotFound", "User's mysite not found."),
                 "404-file": (404, "UnknownError", "404 FILE NOT FOUND"),
                 "400": (400, "UnknownError", "Unable to retrieve user's mysite URL.")}

Handler = Callable[[], Response]


def jresp(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode(), headers or [])


def err(status: int, code: str | None = None, message: str | None = None) -> Response:
    return Response(status, error_body(status, code, message))


class GraphApp:
    """All request handling; runs only in the server's event-loop thread."""

    def __init__(self, tenant: Tenant, authority: Authority, faults: Faults, *, page_size: int = 200,
                 shuffle_delta: bool = False, empty_pages: bool = False, enrichment: bool = False,
                 download_url_ttl: float = 300, delta_token_ttl: float | None = None,
                 resync_code: str = "resyncRequired", resync_inner: str | None = None, mysite_error: str = "404",
                 ru_per_minute: float | None = None, ru_per_day: float | None = None, block_after: int = 100,
                 block_seconds: float = 60.0, outlook: OutlookOptions | None = None, ignore_range: bool = False,
                 require_auth: bool = True, licences: int | None = None) -> None:
        self.tenant, self.authority, self.faults = tenant, authority, faults
        self.seed = tenant.seed
        self.page_size, self.shuffle_delta, self.empty_pages = page_size, shuffle_delta, empty_pages
        self.enrichment, self.download_url_ttl, self.delta_token_ttl = enrichment, download_url_ttl, delta_token_ttl
        self.resync_code, self.resync_inner = resync_code, resync_inner
        if mysite_error not in MYSITE_ERRORS:
            raise ValueError(f"mysite_error must be one of {sorted(MYSITE_ERRORS)}")
        self.mysite_error = mysite_error
        self.ignore_range, self.require_auth = ignore_range, require_auth
        self.budget = Budget(ru_per_minute, ru_per_day, block_after=block_after, block_seconds=block_seconds,
                             seed=tenant.seed)
        self.outlook = MailboxLimits(outlook)
        self.licences = tenant.licences if licences is None else licences
        self._mailbox: str | None = None   # the mailbox of the groupware request being routed
        self.stats = Stats()
        self.mutator = Mutator(tenant)
        self.secret = secrets.token_bytes(32)
        self.download_base = ""
        self._sizes: dict[str, tuple[int, dict[str, int]]] = {}
        self._urls: dict[tuple[int, str, int, int, int], str] = {}
        self.current_prefer = ""      # the Prefer header of the request being handled (lower case)
        self._paths: dict[str, tuple[int, dict[str, str]]] = {}
        self._texts: dict[str, tuple[int, dict[tuple[str, bool], tuple[str, bool]]]] = {}
        self.groupware: GroupwareRoutes | None = None   # mailboxes (calendars, contacts), set by GraphSandbox
        self.mail: MailRoutes | None = None             # mailboxes (mail folders, messages), set by GraphSandbox

    # ------------------------------------------------------------------ helpers used by render/delta
    def folder_size(self, d: Drive, it: Item) -> int:
        cached = self._sizes.get(d.id)
        if cached is None or cached[0] != d.seq:
            sizes: dict[str, int] = {}
            for x in reversed(d.live_items()):
                sizes[x.id] = x.content.size if x.content is not None else sum(sizes.get(c, 0) for c in x.children)
            cached = (d.seq, sizes)
            self._sizes[d.id] = cached
        return cached[1].get(it.id, 0)

    def warm(self) -> int:
        """Render (and hash) every live item once, so the first enumeration runs at cached speed."""
        n = 0
        for d in self.tenant.drive_list:
            for it in d.live_items():
                item_text(self, d, it, delta=True)
                item_text(self, d, it)
                n += 1
        return n

    def quoted_path(self, d: Drive, it: Item) -> str:
        """Percent-encoded drive path ('' for the root), memoised per drive until its next change."""
        cached = self._paths.get(d.id)
        if cached is None or cached[0] != d.seq:
            cached = self._paths[d.id] = (d.seq, {})
        memo = cached[1]
        got = memo.get(it.id)
        if got is None:
            if it.parent_id is None:
                got = ""
            else:
                got = self.quoted_path(d, d.items[it.parent_id]) + "/" + quote(it.name, safe="")
            memo[it.id] = got
        return got

    def render_cache(self, d: Drive) -> dict[tuple[str, bool], tuple[str, bool]]:
        cached = self._texts.get(d.id)
        if cached is None or cached[0] != d.seq:
            cached = self._texts[d.id] = (d.seq, {})
        return cached[1]

    def served(self, c: Content, extra: int) -> Content:
        """What a download returns: with enrichment on, Office files in libraries come back longer."""
        return Content(c.offset, c.size + extra) if self.enrichment and extra else c

    def download_url(self, d: Drive, item_id: str, c: Content, extra: int = 0) -> str:
        served = self.served(c, extra)
        key = (d.index, item_id, served.offset, served.size, int(time.time() + self.download_url_ttl))
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 8192:
                self._urls.clear()
            url = self._urls[key] = self._signed(*key)
        return url

    def _signed(self, index: int, item_id: str, offset: int, size: int, exp: int) -> str:
        raw = f"{index}.{offset}.{size}.{exp}".encode()
        sig = hashlib.blake2s(raw, key=self.secret, digest_size=16).digest()
        tok = base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + base64.urlsafe_b64encode(sig).decode()
        return f"{self.download_base}/_layouts/15/download.aspx?UniqueId={quote(item_id)}&tempauth={tok}"

    # ------------------------------------------------------------------ entry points
    def handle_auth(self, req: Request) -> Response:
        self.stats.requests["token"] = self.stats.requests.get("token", 0) + 1
        rule = self.faults.draw("token")
        resp = self._fault(rule) if rule and rule.status else self.authority.handle(req)
        if rule and not rule.status:
            self._shape(resp, rule)
        return self._count(resp)

    def handle_download(self, req: Request) -> Response:
        """The pre-authenticated URL: no bearer token, but SharePoint charges it (1 RU) against the budget."""
        if req.path.startswith("/reports/data/download/"):
            return self._count(self._report(req))
        self.stats.requests["download"] = self.stats.requests.get("download", 0) + 1
        cost = ru_cost("download")
        self.stats.charge("download", cost)
        rule = self.faults.draw("download")
        if rule and rule.status:
            return self._count(self._fault(rule, cost))
        refused, rl_headers = self._admit(cost)
        if refused is not None:
            return refused
        resp = self._download(req)
        resp.headers.extend(rl_headers)
        if rule:
            self._shape(resp, rule)
        return self._count(resp)

    def handle_graph(self, req: Request) -> Response:
        path = _SLASHES.sub("/", req.path)
        if path.startswith("/_sandbox/"):
            return admin.handle(self, req, path[len("/_sandbox/"):])
        for prefix in ("/v1.0", "/beta"):
            if path == prefix or path.startswith(prefix + "/"):
                rest, version = path[len(prefix):], prefix
                break
        else:
            return self._count(err(404, "BadRequest", f"Invalid version in {path!r}: use /v1.0"))
        base = f"{req.scheme}://{req.host}{version}"
        if unquote(rest).rstrip("/") == "/$batch":
            return self._batch(req, version)
        self.current_prefer = req.headers.get("prefer", "").lower()
        self._mailbox = None
        route, handler = self._route(req, rest, base)
        mailbox = self._mailbox
        self.stats.requests[route] = self.stats.requests.get(route, 0) + 1
        refused = self._unauthorised(req)
        if refused is not None:
            return refused
        cost = ru_cost(route, req.query, with_token="token" in req.query or "token=" in rest,
                       sharepoint=mailbox is None)
        self.stats.charge(route, cost)
        if mailbox is not None:
            return self._outlook(mailbox, handler, route)
        rule = self.faults.draw(route)
        if rule and rule.status:
            return self._count(self._fault(rule, cost))
        refused, rl_headers = self._admit(cost)
        if refused is not None:
            return refused
        resp = handler()
        resp.headers.extend(rl_headers)
        if rule:
            self._shape(resp, rule)
        return self._count(resp)

    def _admit(self, cost: int) -> tuple[Response | None, list[tuple[str, str]]]:
        """(the 429/503 the per-app budget answers, or None; the RateLimit-* headers for a passing answer).
        Free requests (directory, Outlook, batch envelopes) are never refused."""
        if not cost:
            return None, []
        v = self.budget.admit(cost)
        if v.status is None:
            return None, v.headers
        self.stats.refused(v.status, cost, blocked=v.blocked)
        headers = [("Retry-After", v.retry_after or "1"), *v.headers]
        return self._count(Response(v.status, error_body(v.status), headers)), []

    def _outlook(self, mailbox: str, handler: Handler, route: str) -> Response:
        """A groupware request under Outlook's per-mailbox limits (checked before injected faults, so every
        request counts); it stays in flight until its answer is out."""
        books = self.stats.mailbox(mailbox)
        refused = self.outlook.admit(mailbox, books)
        if refused is not None:
            self.stats.refused(429)
            return self._count(refused)
        rule = self.faults.draw(route)
        try:
            resp = self._fault(rule) if rule and rule.status else handler()
        except BaseException:
            self.outlook.release(mailbox)
            raise
        resp.delay = max(resp.delay, self.outlook.options.delay)
        resp.on_done = lambda: self.outlook.release(mailbox)
        if rule and not rule.status:
            self._shape(resp, rule)
        return self._count(resp)

    # ------------------------------------------------------------------ JSON batching
    def _batch(self, req: Request, version: str) -> Response:
        """`POST /$batch`: up to 20 sub-requests, each routed, authorised, faulted and charged like a request of
        its own; the envelope answers 200 with one entry per id (a throttled step is a 429 entry with its own
        Retry-After), in an order of the server's choosing (here: reversed), so clients must match by id."""
        self.stats.requests["batch"] = self.stats.requests.get("batch", 0) + 1
        if req.method != "POST":
            return self._count(err(405, "BadRequest", "Batch requests must be POSTed."))
        refused = self._unauthorised(req)
        if refused is not None:
            return refused
        rule = self.faults.draw("batch")
        if rule and rule.status:
            return self._count(self._fault(rule))
        try:
            doc = json.loads(req.body or b"null")
        except ValueError:
            doc = None
        steps = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(steps, list) or not steps or not all(isinstance(r, dict) for r in steps):
            return self._count(err(400, "BadRequest", "Invalid batch payload format."))
        if len(steps) > BATCH_MAX:
            return self._count(err(400, "BadRequest",
                                   f"Number of batch request steps exceeds the maximum of {BATCH_MAX}."))
        ids = [r.get("id") for r in steps]
        if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
            return self._count(err(400, "BadRequest", "Batch request step IDs must be unique, non-empty strings."))
        answers = []
        held = 0.0
        for r in steps:
            url = str(r.get("url") or "")
            if not url or url.startswith(("http://", "https://")):
                answers.append({"id": r["id"], "status": 400, "body": json.loads(error_body(
                    400, "BadRequest", "A batch step url must be relative to the service root."))})
                continue
            path, _, qs = url.lstrip("/").partition("?")
            step_headers = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
            sub = Request(str(r.get("method") or "GET").upper(), url, f"{version}/{path}", parse_query(qs),
                          {**req.headers, **step_headers}, b"", req.listener, req.scheme, req.host)
            resp = self.handle_graph(sub)
            if resp.on_done:                 # steps run one after another here: each is done once answered
                resp.on_done()
            held += resp.delay
            entry: dict[str, Any] = {"id": r["id"], "status": resp.status, "headers": dict(resp.headers)}
            if resp.body:
                try:
                    entry["body"] = json.loads(resp.body)
                except ValueError:
                    entry["body"] = resp.body.decode("utf-8", "replace")
            answers.append(entry)
        answers.reverse()
        out = jresp(200, {"responses": answers})
        out.delay = held / 4             # Graph runs up to 4 steps at once (groupware.md §1.4)
        return self._count(out)

    def _unauthorised(self, req: Request) -> Response | None:
        """The 401 a request without a valid bearer token gets (None when it may pass)."""
        problem = self.authority.check(req.headers.get("authorization")) if self.require_auth else None
        if not problem:
            return None
        return self._count(Response(401, error_body(401, "InvalidAuthenticationToken", problem),
                                    [("WWW-Authenticate", WWW_AUTH)]))

    # ------------------------------------------------------------------ bookkeeping
    def _count(self, resp: Response) -> Response:
        key = str(resp.status)
        self.stats.status[key] = self.stats.status.get(key, 0) + 1
        if resp.stream is None:
            self.stats.bytes_sent += len(resp.body)
        else:
            prev = resp.on_sent

            def sent(n: int) -> None:
                self.stats.bytes_sent += n
                if prev:
                    prev(n)

            resp.on_sent = sent
        return resp

    def _fault(self, rule: Rule, cost: int = 0) -> Response:
        assert rule.status is not None
        self.stats.faults += 1
        if rule.status in (429, 503):
            self.stats.refused(rule.status, cost)
        headers = [("Retry-After", rule.retry_after)] if rule.retry_after is not None else []
        if rule.status == 401:
            headers.append(("WWW-Authenticate", WWW_AUTH))
        return Response(rule.status, error_body(rule.status), headers, delay=rule.delay)

    def _shape(self, resp: Response, rule: Rule) -> None:
        self.stats.faults += 1
        resp.reset_after, resp.delay, resp.rate = rule.reset_after, rule.delay, rule.bytes_per_second

    # ------------------------------------------------------------------ routing
    def _route(self, req: Request, rest: str, base: str) -> tuple[str, Handler]:
        if req.method not in ("GET", "HEAD"):
            # a write costs SharePoint 2 RU whatever the answer; on directory resources it costs none
            head = next((s for s in rest.split("/") if s), "")
            route = "write" if head in ("drives", "sites") or re.search(r"/drives?(/|$)", rest) else "user"
            return route, lambda: err(405, "notSupported", "The sandbox tenant is read-only; use /_sandbox/mutate.")
        item_path = None
        m = _ROOT_PATH.match(rest)
        if m:
            item_path = unquote(m.group("p")) or "/"
            rest = m.group("pre") + ":" + (m.group("post") or "")
        segs = [unquote(s) for s in rest.split("/") if s]
        if not segs:
            return "item", lambda: jresp(200, {"@odata.context": f"{base}/$metadata"})
        head, q = segs[0], req.query
        if head == "users":
            if len(segs) == 1:
                return "users", lambda: self._paged(req, base, "/users", [user_view(u, _fields(q)) for u in
                                                                          self.tenant.users], "users", 100)
            u = self.tenant.user(segs[1])
            if u is None:
                return "user", lambda: err(404, "Request_ResourceNotFound", f"Resource '{segs[1]}' does not exist.")
            if len(segs) == 2:
                return "user", lambda: jresp(200, select(user_json(u), _fields(q)))
            if segs[2] in GW_SEGMENTS and self.groupware is not None:
                self._mailbox = u.id
                return self.groupware.route(req, base, u, segs[2:])
            if segs[2] in MAIL_SEGMENTS and self.mail is not None:
                self._mailbox = u.id
                return self.mail.route(req, base, u, segs[2:])
            if segs[2] in ("drive", "drives") and u.drive_id is None:
                status, code, msg = MYSITE_ERRORS[self.mysite_error]
                return ("drive" if segs[2] == "drive" else "drives"), lambda: err(status, code, msg)
            if segs[2] == "drives" and len(segs) == 3:
                d = self.tenant.drives[u.drive_id]  # type: ignore[index]
                return "drives", lambda: self._list(base, "drives", [self._drive(d)])
            if segs[2] == "drive":
                return self._drive_routes(req, base, self.tenant.drives[u.drive_id], segs[3:], item_path)  # type: ignore[index]
        elif head == "reports" and len(segs) == 2 and segs[1].startswith("getMailboxUsageDetail"):
            return "report", self._report_link
        elif head == "groups":
            if len(segs) == 1:
                return "groups", lambda: self._paged(req, base, "/groups", [select(group_json(g), _fields(q))
                                                                            for g in self.tenant.groups], "groups", 100)
            g = self.tenant.group(segs[1])
            if g is None:
                return "group", lambda: err(404, "Request_ResourceNotFound", f"Resource '{segs[1]}' does not exist.")
            if len(segs) == 2:
                return "group", lambda: jresp(200, select(group_json(g), _fields(q)))
            if segs[2] == "members" and len(segs) == 3:
                return "users", lambda: self._list(base, "directoryObjects", [
                    {"@odata.type": "#microsoft.graph.user", **user_view(self.tenant.user_by_id(m), _fields(q))}
                    for m in g.members])
            if segs[2] == "drives" and len(segs) == 3:
                return "drives", lambda: self._list(base, "drives", [self._drive(self.tenant.drives[g.drive_id])])  # type: ignore[index]
            if segs[2] == "drive" and g.drive_id:
                return self._drive_routes(req, base, self.tenant.drives[g.drive_id], segs[3:], item_path)
            if segs[2:] == ["sites", "root"] and g.site_id:
                return "site", lambda: jresp(200, site_json(self.tenant.site(g.site_id)))  # type: ignore[arg-type]
        elif head == "sites":
            if len(segs) == 1:
                return "sites", lambda: self._search_sites(req, base)
            if segs[1] in _ALL_SITES and len(segs) == 2:
                if "$search" in q:
                    return "sites", lambda: err(400, "invalidRequest", "$search is not supported on getAllSites.")
                return "sites", lambda: self._paged(req, base, "/sites/oneDrive.getAllSites",
                                                    [site_json(s) for s in self.tenant.sites], "sites", 200)
            s = self.tenant.site(segs[1])
            if s is None and segs[1].endswith(":") and len(segs) >= 3:     # /sites/{host}:/sites/{name}[:]
                web = "https://" + segs[1][:-1] + "/" + "/".join(segs[2:]).split(":")[0]
                s = next((x for x in self.tenant.sites if x.web_url.lower() == web.lower().rstrip("/")), None)
                tail = "/".join(segs[2:]).split(":", 1)
                segs = [segs[0], s.id if s else segs[1]] + ([p for p in tail[1].split("/") if p]
                                                            if len(tail) > 1 else [])
            if s is None:
                return "site", lambda: err(404, "itemNotFound", "Requested site could not be found")
            if len(segs) == 2:
                return "site", lambda: jresp(200, select(site_json(s), _fields(q)))
            if segs[2] == "drives" and len(segs) == 3:
                return "drives", lambda: self._list(base, "drives", [self._drive(self.tenant.drives[i])
                                                                     for i in s.drive_ids])
            if segs[2] == "drive":
                return self._drive_routes(req, base, self.tenant.drives[s.drive_ids[0]], segs[3:], item_path)
        elif head == "drives" and len(segs) >= 2:
            d = self.tenant.drives.get(segs[1])
            if d is None:
                return "drive", lambda: err(404, "itemNotFound", "The resource could not be found.")
            return self._drive_routes(req, base, d, segs[2:], item_path)
        elif head == "subscribedSkus" and len(segs) == 1:
            return "subscribedSkus", lambda: self._list(base, "subscribedSkus", skus_json(self.tenant, self.licences))
        elif head == "organization" and len(segs) == 1:
            return "organization", lambda: self._list(base, "organization", [organization_json(self.tenant)])
        elif head == "me":
            return "user", lambda: err(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        return "item", lambda: err(400, "BadRequest", f"Resource not found for the segment '{segs[-1]}'.")

    def _drive_routes(self, req: Request, base: str, d: Drive, rest: list[str], item_path: str | None
                      ) -> tuple[str, Handler]:
        if not rest:
            return "drive", lambda: jresp(200, select(self._drive(d), _fields(req.query)))
        if rest[0] == "root:" and item_path is not None:
            it = d.by_path(item_path)
            return self._item_routes(req, base, d, it, rest[1:], item_path)
        if rest[0] == "root":
            return self._item_routes(req, base, d, d.root, rest[1:], "root")
        if rest[0] == "items" and len(rest) == 1:
            return "children", lambda: err(400, "invalidRequest", "The 'filter' query option must be provided.")
        if rest[0] == "items":
            ref = rest[1].rstrip(":")
            it = d.resolve(ref)
            if item_path is not None and rest[1].endswith(":") and it is not None:
                it = d.by_path(d.path_of(it).rstrip("/") + "/" + item_path.lstrip("/"))
            return self._item_routes(req, base, d, it, rest[2:], ref)
        return "item", lambda: err(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")

    def _item_routes(self, req: Request, base: str, d: Drive, it: Item | None, rest: list[str], ref: str
                     ) -> tuple[str, Handler]:
        q = req.query
        m = _DELTA.match(rest[0]) if rest else None
        route = ("delta" if m else "children" if rest[:1] == ["children"] else "content" if rest[:1] == ["content"]
                 else "permissions" if rest[:1] == ["permissions"] else
                 ("version_content" if rest[2:3] == ["content"] else "versions") if rest[:1] == ["versions"]
                 else "item")
        if it is None:
            return route, lambda: err(404, "itemNotFound", "The resource could not be found.")
        if not rest:
            return "item", lambda: self._etag_guard(req, it) or jresp(200, select(item_json(self, d, it),
                                                                                  _fields(q)))
        if m:
            if it is not d.root:
                return "delta", lambda: err(400, "invalidRequest", "Delta is only supported on the root of a drive.")
            token = m.group("tok") if m.group("tok") else q.get("token")
            return "delta", lambda: delta_engine.delta(self, base, d, token, q)[0]
        if rest == ["children"]:
            return "children", lambda: self._children(req, base, d, it)
        if rest == ["content"]:
            return "content", lambda: self._content(req, d, it)
        if rest[0] == "permissions":
            if len(rest) == 1:
                return "permissions", lambda: self._list(base, "permissions", [
                    select(p, _fields(q)) for p in perms.list_for(self.tenant, d, it)])
            found = [p for p in perms.list_for(self.tenant, d, it) if p["id"] == rest[1]]
            return "permissions", lambda: (jresp(200, found[0]) if found else err(404, "itemNotFound"))
        if rest[0] == "versions":
            route = "versions" if len(rest) == 1 else route if route == "version_content" else "version"
            return route, lambda: self._versions(base, d, it, rest[1:])
        return route, lambda: err(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")

    # ------------------------------------------------------------------ handlers
    def _drive(self, d: Drive) -> dict[str, Any]:
        return drive_json(self.tenant, d, self.folder_size(d, d.root))  # type: ignore[arg-type]

    def _list(self, base: str, what: str, values: list[Any]) -> Response:
        return jresp(200, {"@odata.context": f"{base}/$metadata#{what}", "value": values})

    def _paged(self, req: Request, base: str, path: str, values: list[Any], what: str, default: int) -> Response:
        top = max(1, min(int(req.query.get("$top") or default), 999))
        start = _skip(req.query.get("$skiptoken"))
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{what}", "value": values[start:start + top]}
        if start + top < len(values):
            keep = "".join(f"{k}={quote(v, safe=',')}&" for k, v in req.query.items() if k in ("$select", "$top"))
            body["@odata.nextLink"] = f"{base}{path}?{keep}$skiptoken={_skiptoken(start + top)}"
        return jresp(200, body)

    def _search_sites(self, req: Request, base: str) -> Response:
        term = req.query.get("search", req.query.get("$search"))
        if term is None:
            return self._paged(req, base, "/sites", [site_json(s) for s in self.tenant.sites if s.is_root],
                               "sites", 200)
        term = term.strip().strip('"').lower()
        hits = [s for s in self.tenant.sites
                if term in ("*", "") or term in s.name.lower() or term in s.display_name.lower()]
        return self._paged(req, base, "/sites", [select(site_json(s), _fields(req.query)) for s in hits], "sites", 200)

    def _etag_guard(self, req: Request, it: Item) -> Response | None:
        inm = req.headers.get("if-none-match")
        if inm and inm in (f'"{{{it.guid}}},{it.etag_n}"', f'"c:{{{it.guid}}},{it.ctag_n}"'):
            return Response(304, b"", content_type="")
        return None

    def _children(self, req: Request, base: str, d: Drive, it: Item) -> Response:
        if not it.is_container:
            return err(400, "invalidRequest", "The item is not a folder.")
        cache = self.render_cache(d)
        kids = cache.get(("children", it.id))  # type: ignore[call-overload]
        if kids is None:
            kids = cache[("children", it.id)] = sorted(it.children.values(),  # type: ignore[index]
                                                       key=lambda c: (c.name.lower(), c.id))
        top = max(1, min(int(req.query.get("$top") or self.page_size), 5000))
        start = _skip(req.query.get("$skiptoken"))
        fields = _fields(req.query)
        page = kids[start:start + top]
        if fields:
            values = json.dumps([select(item_json(self, d, c), fields) for c in page], ensure_ascii=False)
        else:
            values = "[" + ",".join(item_text(self, d, c) for c in page) + "]"
        nxt = ""
        if start + top < len(kids):
            keep = "".join(f"{k}={quote(v, safe=',')}&" for k, v in req.query.items() if k in ("$select", "$top"))
            nxt = ',"@odata.nextLink":' + json.dumps(f"{base}/drives/{d.id}/items/{it.id}/children?{keep}"
                                                      f"$skiptoken={_skiptoken(start + top)}")
        ctx = json.dumps(f"{base}/$metadata#Collection(driveItem)")
        return Response(200, f'{{"@odata.context":{ctx},"value":{values}{nxt}}}'.encode())

    def _content(self, req: Request, d: Drive, it: Item) -> Response:
        if it.kind != "file" or it.content is None:
            return err(400, "notSupported", "Only items with a file facet can be downloaded.")
        if it.malware:
            return err(403, "malwareDetected", "Malware detected in the file. Download is blocked.")
        guard = self._etag_guard(req, it)
        if guard:
            return guard
        return Response(302, b"", [("Location", self.download_url(d, it.id, it.content, it.enrich_extra))],
                        content_type="")

    def _versions(self, base: str, d: Drive, it: Item, rest: list[str]) -> Response:
        if it.content is None:
            return err(400, "invalidRequest", "Versions are only available for files.")
        current = {"id": it.version_label, "lastModifiedDateTime": iso(it.modified), "size": it.content.size,
                   "lastModifiedBy": {"user": self.tenant.identity(it.modified_by)}}
        if not it.malware:
            current["@microsoft.graph.downloadUrl"] = self.download_url(d, it.id, it.content, it.enrich_extra)
        olds = [({"id": v.label, "lastModifiedDateTime": iso(v.modified), "size": v.content.size,
                  "lastModifiedBy": {"user": self.tenant.identity(v.modified_by)},
                  "@microsoft.graph.downloadUrl": self.download_url(d, it.id, v.content)}, v)
                for v in reversed(it.old_versions)]
        if not rest:
            return self._list(base, "driveItemVersion", [current] + [o for o, _ in olds])
        if rest[0] == it.version_label:
            if rest[1:] == ["content"]:
                return err(400, "invalidRequest", "You cannot get the content of the current version.")
            return jresp(200, current)
        for o, v in olds:
            if o["id"] == rest[0]:
                if rest[1:] == ["content"]:
                    return Response(302, b"", [("Location", self.download_url(d, it.id, v.content))],
                                    content_type="")
                return jresp(200, o)
        return err(404, "itemNotFound", f"Version {rest[0]} does not exist.")

    def _report_link(self) -> Response:
        """A usage report answers 302 to a pre-authenticated download URL valid for a few minutes."""
        exp = str(int(time.time()) + 300)
        sig = hashlib.blake2s(f"report:{exp}".encode(), key=self.secret, digest_size=16).hexdigest()
        return Response(302, headers=[("Location", f"{self.download_base}/reports/data/download/{exp}.{sig}")],
                        content_type="text/plain")

    def _report(self, req: Request) -> Response:
        exp, _, sig = req.path.rsplit("/", 1)[-1].partition(".")
        good = hashlib.blake2s(f"report:{exp}".encode(), key=self.secret, digest_size=16).hexdigest()
        if not hmac.compare_digest(sig, good) or not exp.isdigit() or int(exp) < time.time() or self.mail is None:
            return err(401, "unauthenticated", "Invalid or expired report link.")
        from .mail_routes import usage_report_csv

        return Response(200, usage_report_csv(self.mail.mb), content_type="application/octet-stream")

    def _download(self, req: Request) -> Response:
        tok = req.query.get("tempauth", "")
        raw_b64, _, sig_b64 = tok.partition(".")
        try:
            raw = base64.urlsafe_b64decode(raw_b64 + "=" * (-len(raw_b64) % 4))
            sig = base64.urlsafe_b64decode(sig_b64)
            _, offset, size, exp = (int(x) for x in raw.decode().split("."))
        except (ValueError, UnicodeDecodeError):
            return err(401, "unauthenticated", "Invalid or missing tempauth.")
        if not hmac.compare_digest(sig, hashlib.blake2s(raw, key=self.secret, digest_size=16).digest()):
            return err(401, "unauthenticated", "Invalid tempauth signature.")
        if exp < time.time():
            return err(401, "unauthenticated", "The download URL has expired.")
        c = Content(offset, size)
        headers = [("Accept-Ranges", "bytes"), ("ETag", f'"{offset:x}-{size:x}"')]
        rng = req.headers.get("range")
        if rng and not self.ignore_range:
            span = _parse_range(rng, size)
            if span == "bad":
                return Response(416, b"", [("Content-Range", f"bytes */{size}")], content_type="")
            if span is not None:
                a, b = span
                return Response(206, headers=headers + [("Content-Range", f"bytes {a}-{b - 1}/{size}")],
                                content_type="application/octet-stream", stream=c.chunks(a, b), length=b - a)
        return Response(200, headers=headers, content_type="application/octet-stream", stream=c.chunks(),
                        length=size)

    # ------------------------------------------------------------------ books (the admin routes are in admin.py)
    def books(self) -> dict[str, Any]:
        """The stats with the budget's state (limits and RU used in the current windows)."""
        return {**self.stats.snapshot(), "budget": self.budget.state()}

    def expire_delta_tokens(self) -> None:
        for d in self.tenant.drive_list:
            d.epoch += 1
        if self.mail is not None:
            self.mail.mb.epoch += 1


def _fields(q: dict[str, str]) -> list[str] | None:
    sel = q.get("$select")
    return [f.strip() for f in sel.split(",") if f.strip()] if sel else None


def _skiptoken(n: int) -> str:
    return base64.urlsafe_b64encode(f"RDoc{n}#sbx".encode()).decode().rstrip("=")


def _skip(tok: str | None) -> int:
    if not tok:
        return 0
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode()
        return int(raw[4:].split("#")[0])
    except (ValueError, UnicodeDecodeError):
        return 0


def _parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """A single `bytes=` range as [a, b); None to ignore the header (multi-range), 'bad' for 416."""
    if not value.startswith("bytes=") or "," in value:
        return None
    a, _, b = value[6:].strip().partition("-")
    try:
        if a == "":
            n = int(b)
            return (max(0, size - n), size) if n > 0 and size else "bad"
        start = int(a)
        end = min(int(b) + 1, size) if b else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return "bad"
    return start, end
