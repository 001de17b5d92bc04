"""Graph v1.0 mail routes over the sandbox mailboxes (reference mail.md §1.2–1.9, §5.2, §6).

Folders (`mailFolders`, `childFolders`, hidden ones only with `includeHiddenFolders=true`, well-known names in
place of ids), messages per folder (`$select`, `$top`, `$skip` paging, extended properties only when `$expand`ed
with a filter, values as strings), `/messages/{id}/$value` (`text/plain`, the MIME bytes, streamed; the folder
form answers 405), the per-folder message delta (pages by `Prefer: odata.maxpagesize`, links opaque with the
query frozen in, later rounds give changed items and `@removed`, expired tokens answer 410 SyncStateNotFound),
ids immutable with `Prefer: IdType="ImmutableId"` and ordinary (changing on a move) without it.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
from collections.abc import Callable
from typing import Any

from . import mail_mime
from .faults import error_body
from .groupware_routes import _EXPAND_IDS, _ID_EQ, skip_link
from .http import Request, Response
from .mail import Folder, Mailboxes, MailStore, Message
from .tenant import User

Handler = Callable[[], Response]
SEGMENTS = {"mailFolders", "messages"}
DEFAULT_PAGE, MAX_PAGE = 10, 1000
_PROP = re.compile(r"^\s*(\w+)\s+0x([0-9a-f]+)\s*$", re.I)
NOT_FOUND = "The specified object was not found in the store."


def _j(status: int, obj: Any) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode())


def _err(status: int, code: str, message: str) -> Response:
    return Response(status, error_body(status, code, message))


def _tok(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _untok(text: str) -> dict[str, Any] | None:
    try:
        out = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    return out if isinstance(out, dict) else None


def prop_key(ident: str) -> tuple[str, int] | None:
    """'Integer 0x0E08' and 'integer 0xe08' name the same property."""
    m = _PROP.match(ident)
    return (m.group(1).lower(), int(m.group(2), 16)) if m else None


def ordinary_id(message_id: str, folder_id: str) -> str:
    """The id without `IdType="ImmutableId"`: it names the item in its current folder, so a move changes it."""
    return "AAMkAD" + base64.urlsafe_b64encode(f"{message_id}|{folder_id}".encode()).decode()


class MailRoutes:
    """Dispatch `/users/{id}/mailFolders/…` and `/users/{id}/messages/…`; read-only over HTTP."""

    def __init__(self, mailboxes: Mailboxes) -> None:
        self.mb = mailboxes

    # ------------------------------------------------------------------ rendering
    def folder_json(self, box: MailStore, f: Folder) -> dict[str, Any]:
        msgs = box.in_folder(f.id)
        return {"id": f.id, "displayName": f.name, "parentFolderId": f.parent_id or "",
                "childFolderCount": len(box.children(f.id)),
                "unreadItemCount": sum(1 for m in msgs if not m.data.get("isRead")),
                "totalItemCount": len(msgs) + f.other_items,
                "sizeInBytes": sum(m.size for m in msgs), "isHidden": f.hidden}

    def message_json(self, req: Request, m: Message, q: dict[str, str] | None = None) -> dict[str, Any]:
        q = req.query if q is None else q
        immutable = 'idtype="immutableid"' in req.headers.get("prefer", "").lower()
        out: dict[str, Any] = {"@odata.etag": m.data["@odata.etag"], "id": m.id if immutable else ordinary_id(m.id, m.folder)}
        if m.data["@odata.type"] != "#microsoft.graph.message":
            out["@odata.type"] = m.data["@odata.type"]
        fields = [f.strip() for f in (q.get("$select") or "").split(",") if f.strip()]
        for k, v in m.data.items():
            if not k.startswith("@") and (not fields or k in fields):
                out[k] = v
        if not fields or "parentFolderId" in fields:
            out["parentFolderId"] = m.folder
        ex = _EXPAND_IDS.search(q.get("$expand") or "")
        if ex:
            wanted = {prop_key(i) for i in _ID_EQ.findall(ex.group(1))}
            svp = [{"id": k, "value": v} for k, v in m.props.items() if prop_key(k) in wanted]
            if svp:
                out["singleValueExtendedProperties"] = svp
        return out

    def _message(self, box: MailStore, ref: str) -> Message | None:
        m = box.messages.get(ref)
        if m is not None:
            return m
        if ref.startswith("AAMkAD"):
            try:
                mid, _, fid = base64.urlsafe_b64decode(ref[6:]).decode().partition("|")
            except (ValueError, UnicodeDecodeError):
                return None
            m = box.messages.get(mid)
            return m if m is not None and m.folder == fid else None
        return None

    # ------------------------------------------------------------------ dispatch
    def route(self, req: Request, base: str, user: User, segs: list[str]) -> tuple[str, Handler]:
        if not self.mb.enabled(user):
            return segs[0], lambda: _err(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, "
                                         "soft-deleted, or is hosted on-premise.")
        box = self.mb.mailbox(user)
        if segs[0] == "messages":
            if len(segs) == 1:
                every = sorted(box.messages.values(), key=lambda m: m.order)
                return "messages", lambda: self._paged(req, base, every, lambda m: self.message_json(req, m))
            m = self._message(box, segs[1])
            if m is None:
                return "message", lambda: _err(404, "ErrorItemNotFound", NOT_FOUND)
            if len(segs) == 2:
                return "message", lambda: _j(200, self.message_json(req, m))
            if segs[2:] == ["$value"]:
                return "mime", lambda: self._mime(box, m)
            return "message", lambda: _err(400, "BadRequest", f"Resource not found for the segment '{segs[-1]}'.")
        # mailFolders
        if segs[1:] == ["delta"]:
            return "mailFolderDelta", lambda: self._folder_delta(req, base, user, box)
        if len(segs) == 1:
            top = self._visible(req, box.children(box.root))
            return "mailFolders", lambda: self._paged(req, base, top, lambda f: self.folder_json(box, f))
        f = box.folder(segs[1])
        if f is None:
            return "mailFolder", lambda: _err(404, "ErrorItemNotFound", NOT_FOUND)
        rest = segs[2:]
        if not rest:
            return "mailFolder", lambda: _j(200, self._select(req, self.folder_json(box, f)))
        if rest == ["childFolders"]:
            kids = self._visible(req, box.children(f.id))
            return "mailFolders", lambda: self._paged(req, base, kids, lambda x: self.folder_json(box, x))
        if rest == ["messages"]:
            msgs = box.in_folder(f.id)
            return "messages", lambda: self._paged(req, base, msgs, lambda m: self.message_json(req, m))
        if rest == ["messages", "delta"]:
            return "messageDelta", lambda: self._delta(req, base, user, box, f)
        if len(rest) >= 2 and rest[0] == "messages":
            m = self._message(box, rest[1])
            if m is None or m.folder != f.id:
                return "message", lambda: _err(404, "ErrorItemNotFound", NOT_FOUND)
            if len(rest) == 2:
                return "message", lambda: _j(200, self.message_json(req, m))
            if rest[2:] == ["$value"]:   # documented, but the service refuses it (mail.md §6)
                return "mime", lambda: _err(405, "ErrorInvalidRequest", "The OData request is not supported.")
        return "mailFolder", lambda: _err(400, "BadRequest", f"Resource not found for the segment '{segs[-1]}'.")

    @staticmethod
    def _visible(req: Request, folders: list[Folder]) -> list[Folder]:
        hidden = (req.query.get("includeHiddenFolders") or "").lower() == "true"
        return [f for f in folders if hidden or not f.hidden]

    @staticmethod
    def _select(req: Request, obj: dict[str, Any]) -> dict[str, Any]:
        fields = [f.strip() for f in (req.query.get("$select") or "").split(",") if f.strip()]
        return {k: v for k, v in obj.items() if not fields or k in fields or k == "id"}

    def _paged(self, req: Request, base: str, values: list[Any], render: Callable[[Any], dict[str, Any]]
               ) -> Response:
        """`$top` (1–1000, default 10) and `$skip`; only the page is rendered; the nextLink repeats the query."""
        try:
            top = int(req.query.get("$top", DEFAULT_PAGE))
            skip = int(req.query.get("$skip", "0"))
        except ValueError:
            return _err(400, "ErrorInvalidUrlQueryParameter", "Invalid $top or $skip.")
        if not 1 <= top <= MAX_PAGE or skip < 0:
            return _err(400, "ErrorInvalidUrlQueryParameter", f"The value of $top must be between 1 and {MAX_PAGE}.")
        page = [self._select(req, render(v)) if "$select" in req.query and not isinstance(v, Message)
                else render(v) for v in values[skip:skip + top]]
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Collection", "value": page}
        if skip + top < len(values):
            body["@odata.nextLink"] = skip_link(req, base, top, skip + top)
        return _j(200, body)

    # ------------------------------------------------------------------ $value
    def _mime(self, box: MailStore, m: Message) -> Response:
        mode = self.mb.options.mime_mode
        variant = 0
        if mode == "regenerate":
            box.calls += 1
            variant = box.calls
        if m.env.kind == "big":
            return Response(200, content_type="text/plain", stream=mail_mime.big_chunks(m.env, variant),  # type: ignore[arg-type]
                            length=mail_mime.big_length(m.env, variant))
        return Response(200, mail_mime.render(m.env, variant=variant, lf=mode == "lf"), content_type="text/plain")

    # ------------------------------------------------------------------ delta
    def _epoch(self, box: MailStore, f: Folder) -> list[int]:
        return [self.mb.epoch, box.epochs.get(f.id, 0)]

    def _delta(self, req: Request, base: str, user: User, box: MailStore, f: Folder) -> Response:
        tok = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        if tok:
            state = _untok(tok)
            if state is None or state.get("f") != f.id:
                return _err(400, "ErrorInvalidUrlQuery", "The delta token is not valid for this folder.")
            if state.get("e") != self._epoch(box, f):
                return _err(410, "SyncStateNotFound", f"The sync state generation is not found; generation="
                            f"{state.get('e', [0, 0])[1]};[highest={box.epochs.get(f.id, 0)}]")
            if state["r"] == 1 and "$deltatoken" in req.query:   # a deltaLink: a new round up to now
                state = {**state, "n": box.seq, "k": 0}
        else:
            q = {k: v for k, v in req.query.items() if k in ("$select", "$expand", "changeType")}
            if "$filter" in req.query or "$orderby" in req.query:
                return _err(400, "ErrorInvalidUrlQuery", "The sandbox supports no $filter or $orderby on delta.")
            state = {"f": f.id, "r": 0, "s": 0, "n": box.seq, "k": 0, "e": self._epoch(box, f), "q": q}
        m = re.search(r"odata\.maxpagesize=(\d+)", req.headers.get("prefer", ""))
        size = max(1, min(MAX_PAGE, int(m.group(1)))) if m else DEFAULT_PAGE
        q = state["q"]
        if state["r"] == 0:
            every = box.in_folder(f.id)
            start = bisect.bisect_right(every, state["k"], key=lambda x: x.order)
            chunk, more = every[start:start + size], len(every) > start + size
            values = [self.message_json(req, x, q) for x in chunk]
            nxt = {**state, "k": chunk[-1].order} if more else None
        else:
            entries: list[str] = []
            seen: set[str] = set()
            for _seq, fid, mid in box.changed(state["s"], state["n"]):
                if fid == f.id and mid not in seen:
                    seen.add(mid)
                    entries.append(mid)
            part = entries[state["k"]:state["k"] + size]
            values = []
            for mid in part:
                x = box.messages.get(mid)
                if x is not None and x.folder == f.id:
                    values.append(self.message_json(req, x, q))
                else:
                    immutable = 'idtype="immutableid"' in req.headers.get("prefer", "").lower()
                    rid = mid if immutable else ordinary_id(mid, f.id)
                    values.append({"@odata.type": "#microsoft.graph.message", "id": rid,
                                   "@removed": {"reason": "deleted"}})
            more = state["k"] + size < len(entries)
            nxt = {**state, "k": state["k"] + size} if more else None
        path = f"/users/{user.id}/mailFolders/{f.id}/messages/delta"
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Collection(message)", "value": values}
        if nxt is not None:
            body["@odata.nextLink"] = f"{base}{path}?$skiptoken={_tok(nxt)}"
        else:
            body["@odata.deltaLink"] = f"{base}{path}?$deltatoken={_tok({**state, 'r': 1, 's': state['n'], 'k': 0})}"
        return _j(200, body)

    def _folder_delta(self, req: Request, base: str, user: User, box: MailStore) -> Response:
        """`/mailFolders/delta`: every folder of the mailbox (hidden ones too) on the first round, then the
        added, renamed or moved ones and `@removed` for deleted ones; same link mechanics as the message delta."""
        epoch = [self.mb.epoch, box.folder_epoch]
        tok = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        if tok:
            state = _untok(tok)
            if state is None or state.get("fd") != 1:
                return _err(400, "ErrorInvalidUrlQuery", "The delta token is not valid for folders.")
            if state.get("e") != epoch:
                return _err(410, "SyncStateNotFound", "The sync state generation is not found.")
            if state["r"] == 1 and "$deltatoken" in req.query:
                state = {**state, "n": box.seq, "k": 0}
        else:
            state = {"fd": 1, "r": 0, "s": 0, "n": box.seq, "k": 0, "e": epoch}
        m = re.search(r"odata\.maxpagesize=(\d+)", req.headers.get("prefer", ""))
        size = max(1, min(MAX_PAGE, int(m.group(1)))) if m else DEFAULT_PAGE
        if state["r"] == 0:
            ids = [f.id for f in box.tree()]
        else:
            ids, seen = [], set()
            for seq, fid in box.folder_log:
                if state["s"] < seq <= state["n"] and fid not in seen:
                    seen.add(fid)
                    ids.append(fid)
        values: list[dict[str, Any]] = []
        for fid in ids[state["k"]:state["k"] + size]:
            f = box.folders.get(fid)
            values.append(self.folder_json(box, f) if f is not None else
                          {"@odata.type": "#microsoft.graph.mailFolder", "id": fid, "@removed": {"reason": "deleted"}})
        path = f"/users/{user.id}/mailFolders/delta"
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Collection(mailFolder)", "value": values}
        if state["k"] + size < len(ids):
            body["@odata.nextLink"] = f"{base}{path}?$skiptoken={_tok({**state, 'k': state['k'] + size})}"
        else:
            body["@odata.deltaLink"] = f"{base}{path}?$deltatoken={_tok({**state, 'r': 1, 's': state['n'], 'k': 0})}"
        return _j(200, body)


# ---------------------------------------------------------------------------------------------- usage report
REPORT_COLUMNS = ["Report Refresh Date", "User Principal Name", "Display Name", "Is Deleted", "Deleted Date",
                  "Created Date", "Last Activity Date", "Item Count", "Storage Used (Byte)",
                  "Issue Warning Quota (Byte)", "Prohibit Send Quota (Byte)", "Prohibit Send/Receive Quota (Byte)",
                  "Deleted Item Count", "Deleted Item Size (Byte)", "Deleted Item Quota (Byte)", "Has Archive",
                  "Report Period"]


def usage_report_csv(mb: Mailboxes) -> bytes:
    """`getMailboxUsageDetail` as the CSV its download URL gives (with a BOM); UPNs and names hashed when the
    tenant conceals user names in reports. Sizes are the primary mailbox's; the archive's is not in the report."""
    import csv
    import hashlib
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    for u in mb.tenant.users:
        if not mb.enabled(u):
            continue
        box = mb.mailbox(u)
        deleted = [m for m in box.messages.values() if box.folders[m.folder].well_known == "deleteditems"]
        upn, name = u.upn, u.display_name
        if mb.options.conceal_reports:
            upn = hashlib.md5(u.upn.encode()).hexdigest().upper()
            name = hashlib.md5(u.display_name.encode()).hexdigest().upper()
        w.writerow(["2026-12-05", upn, name, "False", "", "2024-01-15", "2026-12-04", len(box.messages),
                    sum(m.size for m in box.messages.values()), 105226698752, 106300440576, 107374182400,
                    len(deleted), sum(m.size for m in deleted), 32212254720,
                    "True" if mb.has_archive(u) else "False", "7"])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
