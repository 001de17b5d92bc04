"""WebDAV wire helpers shared by the generic and the Nextcloud target: paths, PROPFIND, error classification.

`classify()` is the targets' single `should_retry`: it turns one HTTP answer into None (success) or the typed
error to raise; the Pacer retries what is Transient (423, 429, 503, 5xx, resets) and lets the rest through.
Paths are built here, percent-encoding every segment (`#`, `%`, `?`, spaces, unicode), because webdav4's own
URL joining hands raw segments to httpx, which rejects `?` and `#` and mangles `%`.
"""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from migrate.errors import (
    AuthError,
    TargetError,
    TargetFull,
    TargetItemError,
    TargetLocked,
    TargetRefused,
    Terminal,
    ThrottledError,
    TransientError,
    Unanswered,
)
from migrate.models import RemoteEntry
from migrate.transport.pacer import parse_retry_after

if TYPE_CHECKING:
    import httpx

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
DEFAULT_THROTTLE_PAUSE = 2.0
REFUSED_HINT = ("likely causes: the credentials file row of {who} holds another account's app password, or the "
                "mapping names the wrong account; a proxy or client sending session cookies back (a Nextcloud "
                "session overrides the credentials); an ACL (team folder advanced permissions) or a read-only "
                "share at that path. Check the account's access in the Nextcloud web UI, fix, then rerun")
PLAIN_REFUSED_HINT = ("the WebDAV account may not do this at that path (server permissions), or the server does not "
                      "allow the name; fix the account's rights or the name, then rerun")  # a 429 without Retry-After still pauses every worker for a moment

PLAIN_PROPS = "<d:resourcetype/><d:getetag/><d:getlastmodified/><d:getcontentlength/>"
NC_PROPS = PLAIN_PROPS + "<oc:fileid/><oc:size/><oc:checksums/><nc:mount-type/><oc:permissions/>"


class StreamConsumed(TargetError, Terminal):
    """A one-shot upload body was partly sent when the request failed; only a new read of the source can redo it."""


def encode_path(path: str) -> str:
    """'/'-joined, each segment percent-encoded (nothing is safe inside a segment); empty segments dropped."""
    return "/".join(quote(seg, safe="") for seg in path.split("/") if seg)


def clean_path(path: str) -> str:
    """Normalise a relative target path: no leading/trailing or doubled slashes."""
    return "/".join(seg for seg in path.split("/") if seg)


def parent_of(path: str) -> str:
    return clean_path(path).rpartition("/")[0]


def propfind_body(props: str) -> bytes:
    return (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
        f'xmlns:nc="http://nextcloud.org/ns"><d:prop>{props}</d:prop></d:propfind>'
    ).encode()


def server_message(resp: httpx.Response) -> str:
    """The human text of a Sabre error body (`s:message`, or `o:reason` matched by local name), else the body."""
    text = resp.text[:4000] if resp.content else ""
    if "<" in text:
        try:
            root = ET.fromstring(text)  # noqa: S314 - loopback/target server answer, no entities expanded
        except ET.ParseError:
            return text.strip()[:300]
        found = {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip() for el in root.iter()}
        return found.get("message") or found.get("reason") or found.get("hint") or ""
    return text.strip()[:300]


def classify(resp: httpx.Response, what: str, *, user: str = "") -> BaseException | None:
    """The targets' one decision table from an HTTP answer to an error (None: success)."""
    status = resp.status_code
    if status < 400:
        return None
    msg = server_message(resp)
    detail = f"{what}: HTTP {status}" + (f" ({msg})" if msg else "")
    who = f"user {user!r}" if user else "the WebDAV account"
    if status == 401:
        return AuthError(f"{detail}: the target refused the credentials of {who}",
                         hint="check the app password in the [target] credentials file "
                         "(`occ user:auth-tokens:add <user>` mints a new one)")
    if status == 403:
        hint = REFUSED_HINT.format(who=who) if user else PLAIN_REFUSED_HINT
        return TargetRefused(f"{detail}: the target refused this as {who}", hint=hint)
    if status == 507:
        return TargetFull(f"{detail}: no space left for {who}",
                          hint="raise the user's or team folder's quota (or free disk space), then rerun")
    if status == 423:
        return TargetLocked(detail)
    if status == 429 or (status == 503 and "retry-after" in resp.headers):
        ra = parse_retry_after(resp.headers.get("retry-after"))
        return ThrottledError(detail, retry_after=ra if ra is not None else DEFAULT_THROTTLE_PAUSE)
    if status >= 500:
        return TransientError(detail)
    return TargetItemError(detail)


# Outcomes of a conditional MOVE or DELETE (`sync`): what the server said, in the engine's words.
MOVED, MISSING, CHANGED, TAKEN, NO_PARENT = "done", "missing", "changed", "taken", "no-parent"
CONDITIONAL_OK = (404, 409, 412)


def conditional_outcome(resp: httpx.Response) -> str:
    """done / missing (404) / changed (412 on If-Match) / taken (412: destination exists) / no-parent (409).

    Sabre checks `If-Match` before the method runs, and names the header in its message; on a missing resource
    that is a 412 too ("… and the resource did not exist"), which means missing. The other 412 of a MOVE is
    `Overwrite: F` meeting an existing destination.
    """
    code = resp.status_code
    if code == 404:
        return MISSING
    if code == 409:
        return NO_PARENT
    if code == 412:
        msg = server_message(resp).lower()
        if "did not exist" in msg:  # Sabre: If-Match on a missing resource (verified on NC 32.0.1)
            return MISSING
        return CHANGED if "if-match" in msg or "If-Match" in resp.text else TAKEN
    return MOVED


def if_match_headers(etag: str | None) -> dict[str, str]:
    """`If-Match` with the etag as the server gave it (quoted), or nothing when we hold none."""
    if not etag:
        return {}
    return {"If-Match": etag if etag.startswith(('"', "W/")) else f'"{etag}"'}


def raise_for(resp: httpx.Response, what: str, *, user: str = "", ok: tuple[int, ...] = ()) -> httpx.Response:
    """Return `resp` when it succeeded (or its status is in `ok`), else raise the classified error."""
    if resp.status_code in ok:
        return resp
    err = classify(resp, what, user=user)
    if err is not None:
        raise err
    return resp


def transport_error(exc: Exception, what: str) -> Unanswered:
    """Connection refused or reset, timeouts and the like: no answer (transient, bounded by the fault budget)."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Unanswered(f"{what}: {reason}", reason=reason)


def _mtime(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def parse_multistatus(body: bytes, root_path: str) -> Iterator[RemoteEntry]:
    """Entries of a PROPFIND answer; `root_path` is the decoded URL path of the user's root (ends with '/').

    Only properties in a 200 propstat count ('absent' checksums come in a 404 propstat on Nextcloud).
    Entry paths are relative to `root_path`, decoded, as the server names them (Nextcloud answers in NFC).
    """
    tree = ET.fromstring(body)  # noqa: S314
    for resp in tree.iter(f"{DAV}response"):
        href = resp.findtext(f"{DAV}href") or ""
        path = unquote(urlsplit(href).path)
        if not path.startswith(root_path.rstrip("/")):
            continue
        rel = clean_path(path[len(root_path.rstrip("/")):])
        props: dict[str, ET.Element] = {}
        for ps in resp.iter(f"{DAV}propstat"):
            status = ps.findtext(f"{DAV}status") or ""
            if status.split()[1:2] != ["200"]:
                continue
            prop = ps.find(f"{DAV}prop")
            if prop is not None:
                for el in prop:
                    props[el.tag] = el
        rt = props.get(f"{DAV}resourcetype")
        is_folder = rt is not None and rt.find(f"{DAV}collection") is not None
        size_el = props.get(f"{DAV}getcontentlength")
        if size_el is None or not (size_el.text or "").strip():
            size_el = props.get(f"{OC}size")
        try:
            size = int((size_el.text or "0").strip()) if size_el is not None and not is_folder else 0
        except ValueError:
            size = 0
        etag_el = props.get(f"{DAV}getetag")
        etag = (etag_el.text or "").strip().strip('"') or None if etag_el is not None else None
        mt = props.get(f"{DAV}getlastmodified")
        sums_el = props.get(f"{OC}checksums")
        sums: tuple[str, ...] = ()
        if sums_el is not None:
            sums = tuple(c for el in sums_el.iter(f"{OC}checksum") for c in (el.text or "").split() if c)
        yield RemoteEntry(path=rel, is_folder=is_folder, size=size, mtime=_mtime(mt.text if mt is not None else None),
                          etag=etag, checksums=sums)


def header_map(headers: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in headers.items() if v is not None}


WALK_WORKERS = 8  # Depth-1 listings in flight during a walk: each costs a PHP request on Nextcloud (~45 ms)


def walk_breadth_first(path: str, listing: Callable[[str], Iterable[RemoteEntry] | None],
                       workers: int = WALK_WORKERS) -> Iterator[RemoteEntry]:
    """Every entry below `path` from Depth-1 listings, folders listed `workers` at a time: cheaper than
    Depth: infinity on large trees, and allowed where a server refuses infinite depth (Apache's default).

    Entries come in the order listings finish (parents always before their children); at most `workers`
    listings are held, and the folders still to list are paths only, so memory stays that of the serial walk."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    queue = deque([clean_path(path)])
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="walk") as pool:
        pending: dict[Any, str] = {}
        try:
            while queue or pending:
                while queue and len(pending) < max(1, workers):
                    folder = queue.popleft()
                    pending[pool.submit(listing, folder)] = folder
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    folder = pending.pop(fut)
                    for entry in fut.result() or []:
                        if entry.path == folder:
                            continue
                        yield entry
                        if entry.is_folder:
                            queue.append(entry.path)
        finally:
            for fut in pending:
                fut.cancel()
