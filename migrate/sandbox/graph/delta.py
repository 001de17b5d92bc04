"""The delta engine (reference §3.2): change log → latest state, ancestors re-sent, 410 resync, empty pages."""

from __future__ import annotations

import base64
import bisect
import json
import random
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from .faults import error_body
from .http import Response
from .render import item_json, item_text, select
from .tenant import Drive, Item

if TYPE_CHECKING:
    from .app import GraphApp

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T")


class Cursor:
    """What a delta token means: changes in (start, snap] after `pos`; snap < 0 marks a deltaLink."""

    __slots__ = ("drive", "start", "snap", "pos", "epoch", "issued", "empty_done", "top")

    def __init__(self, drive: int, start: int, snap: int, pos: int, epoch: int, issued: int,
                 empty_done: int = 0, top: int = 0) -> None:
        self.drive, self.start, self.snap, self.pos = drive, start, snap, pos
        self.epoch, self.issued, self.empty_done, self.top = epoch, issued, empty_done, top

    def encode(self) -> str:
        raw = ".".join(str(v) for v in (self.drive, self.start, self.snap, self.pos, self.epoch, self.issued,
                                        self.empty_done, self.top))
        return "aHR" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor | None:
        try:
            raw = base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)).decode()
            return cls(*(int(v) for v in raw.split(".")))
        except (ValueError, TypeError, UnicodeDecodeError):
            return None


def _link(app: GraphApp, base: str, d: Drive, cur: Cursor, sel: str | None) -> str:
    q = f"$select={quote(sel, safe=',')}&" if sel else ""
    return f"{base}/drives/{d.id}/root/delta?{q}token={cur.encode()}"


def _gone(app: GraphApp, base: str, d: Drive, sel: str | None) -> Response:
    fresh = f"{base}/drives/{d.id}/root/delta" + (f"?$select={quote(sel, safe=',')}" if sel else "")
    inner = {"code": app.resync_inner} if app.resync_inner else {}
    body = error_body(410, app.resync_code,
                      "Resync required. Replace any local items with the server's version (including deletes) if "
                      "you're sure that the service was up to date with your local changes when you last sync'd. "
                      "Upload any local changes that the server doesn't know about.", inner)
    return Response(410, body, [("Location", fresh)])


def delta(app: GraphApp, base: str, d: Drive, token: str | None, query: dict[str, str]) -> tuple[Response, bool]:
    """One delta page; the bool says whether this was a tokenless (2 RU) enumeration."""
    sel = query.get("$select")
    fields = [f.strip() for f in sel.split(",")] if sel else None
    now = int(time.time())
    top = int(query.get("$top") or 0)
    if token is None or token == "":
        cur = Cursor(d.index, 0, d.seq, 0, d.epoch, now, 0, top)
    elif token == "latest":
        cur = Cursor(d.index, d.seq, -1, d.seq, d.epoch, now, 0, top)
        return _page(app, base, d, [], None, _link(app, base, d, cur, sel), fields), False
    elif _TS.match(token):
        try:
            when = datetime.fromisoformat(token.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return Response(400, error_body(400, "invalidRequest", "Invalid timestamp token.")), False
        start = d.seq_at(when)
        cur = Cursor(d.index, start, d.seq, start, d.epoch, now, 0, top)
    else:
        dec = Cursor.decode(token)
        if dec is None or dec.drive != d.index:
            return Response(400, error_body(400, "invalidRequest", "Invalid delta token.")), False
        if dec.epoch != d.epoch or (app.delta_token_ttl and now - dec.issued > app.delta_token_ttl):
            return _gone(app, base, d, sel), False
        cur = dec
        if cur.snap < 0:   # a deltaLink: everything since its snapshot, up to now
            cur = Cursor(d.index, cur.start, d.seq, cur.start, d.epoch, now, 0, cur.top or top)
    full = cur.start == 0
    size = min(cur.top or top or app.page_size, 2000)
    if app.empty_pages and not cur.empty_done:
        nxt = Cursor(d.index, cur.start, cur.snap, cur.pos, cur.epoch, cur.issued, 1, cur.top)
        return _page(app, base, d, [], _link(app, base, d, nxt, sel), None, fields), full
    exclude_parents = "deltaexcludeparent" in app.current_prefer
    items, pos, done = _collect(d, cur, size, exclude_parents)
    if app.shuffle_delta:
        random.Random(f"{app.seed}:{d.index}:{cur.start}:{cur.pos}").shuffle(items)
    if done:
        link = Cursor(d.index, cur.snap, -1, cur.snap, d.epoch, now, 0, cur.top)
        return _page(app, base, d, items, None, _link(app, base, d, link, sel), fields), full
    nxt = Cursor(d.index, cur.start, cur.snap, pos, cur.epoch, cur.issued, 0, cur.top)
    return _page(app, base, d, items, _link(app, base, d, nxt, sel), None, fields), full


def _collect(d: Drive, cur: Cursor, size: int, exclude_parents: bool = False) -> tuple[list[Item], int, bool]:
    """Up to `size` changed items after cur.pos (each at its latest state), their live ancestors first
    (only the root with `Prefer: deltaExcludeParent`, as reported for the real service)."""
    seqs, ids = d.log_seqs, d.log_ids
    k = bisect.bisect_right(seqs, cur.pos)
    end = bisect.bisect_right(seqs, cur.snap)
    picked: list[Item] = []
    in_page: set[str] = set()
    pos = cur.pos
    while k < end and len(picked) < size:
        it = d.items.get(ids[k])
        pos = seqs[k]
        k += 1
        if it is None or it.seq != pos or (cur.start == 0 and it.deleted):
            continue   # superseded by a later change (coalescing) or deleted before we ever sent it
        for anc in d.ancestors(it)[:1] if exclude_parents else d.ancestors(it):
            if anc.id not in in_page and not anc.deleted and (cur.start > 0 or anc.seq > cur.snap):
                in_page.add(anc.id)
                picked.append(anc)
        if it.id not in in_page:
            in_page.add(it.id)
            picked.append(it)
    return picked, pos, k >= end


def _page(app: GraphApp, base: str, d: Drive, items: list[Item], next_link: str | None, delta_link: str | None,
          fields: list[str] | None) -> Response:
    if fields:
        values = json.dumps([select(item_json(app, d, it, delta=True), fields) if not it.deleted
                             else item_json(app, d, it, delta=True) for it in items], ensure_ascii=False)
    else:
        values = "[" + ",".join(item_text(app, d, it, delta=True) for it in items) + "]"
    link = f'"@odata.nextLink":{json.dumps(next_link)}' if next_link else \
        f'"@odata.deltaLink":{json.dumps(delta_link)}'
    ctx = json.dumps(f"{base}/$metadata#Collection(driveItem)")
    return Response(200, f'{{"@odata.context":{ctx},"value":{values},{link}}}'.encode())
