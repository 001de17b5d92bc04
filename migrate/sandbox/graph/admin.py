"""The sandbox's admin routes under `/_sandbox/` (no auth, loopback only) and the truth tests compare against."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import perms
from .content import Content
from .faults import error_body
from .http import Request, Response
from .mutate import MutationError
from .render import iso

if TYPE_CHECKING:
    from .app import GraphApp


def _j(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode())


def handle(app: GraphApp, req: Request, what: str) -> Response:
    """stats (GET, DELETE resets), budget and outlook (GET, POST changes), faults, mutate, expire-delta-tokens,
    expire-access-tokens, token, truth."""
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        return Response(400, error_body(400, "invalidRequest", "admin bodies are JSON"))
    post, delete = req.method == "POST", req.method == "DELETE"
    try:
        if what == "stats":
            if delete:
                app.stats.reset()
            return _j(app.books())
        if what == "budget":
            if post:
                app.budget.configure(**body)
            return _j(app.budget.state())
        if what == "outlook":
            if post:
                app.outlook.configure(**body)
            return _j(dict(app.outlook.options.__dict__))
        if what == "faults" and post:
            app.faults.set(**body)
            return _j({"rules": app.faults.rules()})
        if what == "faults" and delete:
            app.faults.clear(body.get("route"))
            return _j({"rules": app.faults.rules()})
        if what == "faults":
            return _j({"rules": app.faults.rules(), "log": app.faults.log})
        if what == "mutate" and post:
            return _j(app.mutator.apply(**body))
        if what == "mail-mutate" and post and app.mail is not None:
            from .mail_mutate import MailMutations

            return _j({"result": MailMutations(app.mail.mb).apply(**body)})
        if what == "expire-delta-tokens" and post:
            app.expire_delta_tokens()
            return _j({"ok": True})
        if what == "expire-access-tokens" and post:
            app.authority.expire_all()
            return _j({"ok": True})
        if what == "token" and post:
            return _j({"access_token": app.authority.issue(body.get("lifetime")), "token_type": "Bearer"})
        if what == "truth":
            return _j({k: [hash_row(r) for r in v] for k, v in truth_rows(app).items()})
    except (MutationError, TypeError, ValueError) as exc:
        return Response(400, error_body(400, "invalidRequest", str(exc)))
    return Response(404, error_body(404, "itemNotFound", f"no admin route {what!r}"))


def truth_rows(app: GraphApp) -> dict[str, list[dict[str, Any]]]:
    """Live items per drive with their served Content (hashing is left to the caller's thread)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for d in app.tenant.drive_list:
        rows = []
        for it in d.live_items():
            if it.kind == "root":
                continue
            row: dict[str, Any] = {"id": it.id, "path": d.path_of(it), "name": it.name,
                                   "is_folder": it.kind == "folder", "is_package": it.kind == "package",
                                   "mtime": it.modified, "mtime_iso": iso(it.modified),
                                   "malware": it.malware, "versions": len(it.old_versions) + 1,
                                   "permissions": [dict(p) for p in it.perms],
                                   "inherited_permissions": [{**p, "inheritedFrom": {}} for p in
                                                             perms.list_for(app.tenant, d, it)
                                                             if "inheritedFrom" in p]}
            if it.content is not None:
                row["_listed"] = it.content
                row["_served"] = app.served(it.content, it.enrich_extra)
            rows.append(row)
        out[d.id] = rows
    return out


def hash_row(row: dict[str, Any]) -> dict[str, Any]:
    listed: Content | None = row.pop("_listed", None)
    served: Content | None = row.pop("_served", None)
    if listed is not None and served is not None:
        row.update(size=served.size, sha1=served.sha1, quickXorHash=served.quick_xor, listed_size=listed.size,
                   listed_quickXorHash=listed.quick_xor, enriched=served.size != listed.size)
    else:
        row.update(size=None, sha1=None, quickXorHash=None)
    return row
