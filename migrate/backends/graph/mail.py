"""Reading a mailbox's mail through Graph v1.0 (reference mail.md §1): folders, per-folder message delta, MIME.

Every request goes through the client's pacer (pass a mailbox's view of the client, one with its own `pacer`, to
pace per mailbox as Outlook limits it) and asks for immutable ids (`Prefer: IdType="ImmutableId"`), so a message
keeps its id when it moves between folders. `$value` is read as it arrives, never whole. Online archives cannot be
read through the v1.0 mail API (§1.10); `archive_mailboxes` only says which mailboxes have one, from the usage
report.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from migrate.errors import ItemNotFound, SourceError, TransientError

PREFER = 'IdType="ImmutableId"'
PAGE = 200                 # delta page size (Prefer: odata.maxpagesize)
FOLDER_PAGE = 100
FOLDER_SELECT = "id,displayName,parentFolderId,childFolderCount,totalItemCount,unreadItemCount,isHidden"
MESSAGE_SELECT = ("id,internetMessageId,receivedDateTime,sentDateTime,createdDateTime,lastModifiedDateTime,isRead,"
                  "isDraft,flag,categories,parentFolderId,changeKey")
LAST_VERB, ICON_INDEX, MESSAGE_SIZE = 0x1081, 0x1080, 0x0E08
EXPAND = ("singleValueExtendedProperties($filter=id eq 'Integer 0x1081' or id eq 'Integer 0x1080' "
          "or id eq 'Integer 0x0E08')")
# Resolved by addressing them by name (wellKnownName is beta only); names a mailbox lacks answer 404 and are skipped.
WELL_KNOWN = ("inbox", "sentitems", "drafts", "deleteditems", "junkemail", "archive", "outbox",
              "conversationhistory", "syncissues", "conflicts", "localfailures", "serverfailures", "clutter",
              "scheduled")
REPORT = "reports/getMailboxUsageDetail(period='D7')"


@dataclass(frozen=True)
class MailFolder:
    id: str
    parent_id: str | None       # None for a top-level folder (its parent is the mailbox root)
    name: str
    path: tuple[str, ...]       # display names from the top, this folder's last
    well_known: str | None      # "inbox", "sentitems", ... (see WELL_KNOWN), None for a user's own folder
    hidden: bool                # isHidden, or inside a hidden folder
    total: int                  # totalItemCount: every item, also ones that are not messages
    unread: int
    child_count: int


@dataclass(frozen=True)
class MessageMeta:
    id: str                     # immutable id
    folder_id: str
    internet_message_id: str | None
    received: dt.datetime | None
    sent: dt.datetime | None
    created: dt.datetime | None
    modified: dt.datetime | None
    is_read: bool
    is_draft: bool
    flag_status: str            # notFlagged | flagged | complete
    categories: tuple[str, ...]
    last_verb: int | None       # PidTagLastVerbExecuted: 102 reply, 103 reply all, 104 forward
    icon_index: int | None      # PidTagIconIndex: 261 replied, 262 forwarded (fallback for last_verb)
    size: int | None            # PidTagMessageSize: approximate, a plausibility check only
    odata_type: str             # "#microsoft.graph.message", "#microsoft.graph.eventMessageRequest", ...
    change_key: str | None

    @property
    def answered(self) -> bool:
        return self.last_verb in (102, 103) if self.last_verb is not None else self.icon_index == 261

    @property
    def forwarded(self) -> bool:
        return self.last_verb == 104 if self.last_verb is not None else self.icon_index == 262


@dataclass(frozen=True)
class MessageDeltaPage:
    messages: list[MessageMeta]
    removed: list[str]          # immutable ids reported `@removed` (deleted, or moved to another folder)
    next_link: str | None
    delta_link: str | None      # on the last page of a round: store it for the next round


@dataclass(frozen=True)
class FolderChange:
    """A folder as the folder delta gives it: no path (the caller rebuilds paths from its stored tree)."""

    id: str
    parent_id: str | None       # None: a top-level folder
    name: str
    hidden: bool                # the folder's own isHidden
    total: int
    unread: int
    child_count: int


@dataclass(frozen=True)
class FolderDeltaPage:
    folders: list[FolderChange]
    removed: list[str]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class ArchiveInfo:
    upn: str                    # as the report gives it: a hash when the tenant conceals user names in reports
    has_archive: bool
    primary_bytes: int | None   # "Storage Used (Byte)" of the primary mailbox
    items: int | None           # "Item Count" of the primary mailbox
    report_date: str
    concealed: bool             # the UPN is not readable (the admin centre's "concealed names" setting)


class NoMailbox(ItemNotFound):
    """The user has no Exchange Online mailbox Graph can read (unlicensed, inactive, soft-deleted, on-premises)."""


def q(ident: str) -> str:
    return quote(ident, safe="")


def _graph(client: Any) -> Any:
    """The GraphClient behind a mailbox's view of it (or the client itself)."""
    return getattr(client, "client", client)


def _get(client: Any, path: str, params: Mapping[str, Any] | None = None, *, kind: str, what: str = "",
         page: int | None = None) -> dict[str, Any]:
    prefer = PREFER + (f", odata.maxpagesize={page}" if page else "")
    return client.get_json(path, params=params, kind=kind, what=what, headers={"Prefer": prefer})


def _when(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _ext(entry: Mapping[str, Any]) -> dict[int, str]:
    """singleValueExtendedProperties by property tag ("Integer 0x0E08" and "integer 0xe08" are the same one)."""
    out: dict[int, str] = {}
    for p in entry.get("singleValueExtendedProperties") or ():
        ident = str(p.get("id") or "").split()
        if len(ident) == 2 and ident[1].lower().startswith("0x"):
            try:
                out[int(ident[1], 16)] = str(p.get("value"))
            except ValueError:
                continue
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def message_meta(entry: Mapping[str, Any], folder_id: str) -> MessageMeta:
    """A message as listed (list, get or delta with MESSAGE_SELECT and EXPAND)."""
    ext = _ext(entry)
    flag = (entry.get("flag") or {}).get("flagStatus") or "notFlagged"
    return MessageMeta(
        id=str(entry["id"]), folder_id=str(entry.get("parentFolderId") or folder_id),
        internet_message_id=entry.get("internetMessageId") or None,
        received=_when(entry.get("receivedDateTime")), sent=_when(entry.get("sentDateTime")),
        created=_when(entry.get("createdDateTime")), modified=_when(entry.get("lastModifiedDateTime")),
        is_read=bool(entry.get("isRead")), is_draft=bool(entry.get("isDraft")), flag_status=str(flag),
        categories=tuple(str(c) for c in entry.get("categories") or ()),
        last_verb=_int(ext.get(LAST_VERB)), icon_index=_int(ext.get(ICON_INDEX)), size=_int(ext.get(MESSAGE_SIZE)),
        odata_type=str(entry.get("@odata.type") or "#microsoft.graph.message"), change_key=entry.get("changeKey"))


# ------------------------------------------------------------------------------------------------------ folders
def well_known_ids(client: Any, user_id: str) -> dict[str, str]:
    """{folder id: well-known name} of the names this mailbox has (one small request per name)."""
    from migrate.errors import ItemNotFound

    out: dict[str, str] = {}
    for name in WELL_KNOWN:
        try:
            data = _get(client, f"/users/{q(user_id)}/mailFolders/{name}", {"$select": "id"}, kind="mail_folder",
                        what=f"well-known folder {name} of {user_id}")
        except ItemNotFound:
            continue
        if data.get("id"):
            out.setdefault(str(data["id"]), name)
    return out


def _folder_pages(client: Any, path: str, hidden: bool, what: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"$top": FOLDER_PAGE, "$select": FOLDER_SELECT}
    if hidden:
        params["includeHiddenFolders"] = "true"
    data = _get(client, path, params, kind="mail_folders", what=what)
    while True:
        yield from data.get("value") or ()
        nxt = data.get("@odata.nextLink")
        if not nxt:
            return
        data = _get(client, nxt, kind="mail_folders", what=what)


def _folder(f: Mapping[str, Any], parent: MailFolder | None, wk: dict[str, str]) -> MailFolder:
    name = str(f.get("displayName") or "")
    return MailFolder(id=str(f["id"]), parent_id=parent.id if parent else None, name=name,
                      path=(*(parent.path if parent else ()), name), well_known=wk.get(str(f["id"])),
                      hidden=(parent.hidden if parent else False) or bool(f.get("isHidden")),
                      total=int(f.get("totalItemCount") or 0), unread=int(f.get("unreadItemCount") or 0),
                      child_count=int(f.get("childFolderCount") or 0))


def mail_folders(client: Any, user_id: str, *, hidden: bool = True) -> Iterator[MailFolder]:
    """The whole folder tree, depth-first (a folder, then its subtree, then the next one), children asked of
    every folder (the child count is not trusted). `hidden=False` leaves hidden folders and all under them out.
    An explicit stack: no recursion limit on deep trees. NoMailbox when the user has no mailbox Graph can read."""
    base = f"/users/{q(user_id)}/mailFolders"
    what = f"mail folders of {user_id}"
    try:
        top = list(_folder_pages(client, base, hidden, what))
    except ItemNotFound as exc:
        if "mailboxnotenabledforrestapi" in str(exc).lower():
            raise NoMailbox(f"{user_id} has no Exchange Online mailbox Graph can read ({exc})",
                            hint="the user needs an Exchange Online licence and a cloud mailbox; leave the user "
                            "out of the mail migration, or move the mailbox to Exchange Online first") from None
        raise
    wk = well_known_ids(client, user_id)

    def level(path: str, parent: MailFolder | None) -> list[MailFolder]:
        out = [_folder(f, parent, wk) for f in _folder_pages(client, path, hidden, what)]
        return [f for f in out if hidden or not f.hidden]

    stack = list(reversed([f for f in (_folder(x, None, wk) for x in top) if hidden or not f.hidden]))
    while stack:
        mf = stack.pop()
        yield mf
        stack.extend(reversed(level(f"{base}/{q(mf.id)}/childFolders", mf)))


def folder_delta(client: Any, user_id: str, link: str | None, *, page_size: int = PAGE) -> Iterator[FolderDeltaPage]:
    """A round of `/mailFolders/delta` (the whole mailbox, hidden folders too): every folder on the first round,
    then added, renamed and moved ones, and removed ids. For a final pass that catches folder changes; messages
    come from the per-folder delta. DeltaExpired on 410 (start without a link)."""
    root = str(_get(client, f"/users/{q(user_id)}/mailFolders/msgfolderroot", {"$select": "id"}, kind="mail_folder",
                    what=f"root folder of {user_id}").get("id") or "")
    url = link or f"/users/{q(user_id)}/mailFolders/delta?$select={FOLDER_SELECT}"
    what = f"folder delta of {user_id}"
    while True:
        data = _get(client, url, kind="mail_delta", what=what, page=page_size)
        nxt, dlink = data.get("@odata.nextLink"), data.get("@odata.deltaLink")
        folders, removed = [], []
        for f in data.get("value") or ():
            if "@removed" in f:
                removed.append(str(f["id"]))
                continue
            parent = str(f.get("parentFolderId") or "")
            folders.append(FolderChange(id=str(f["id"]), parent_id=None if parent in ("", root) else parent,
                                        name=str(f.get("displayName") or ""), hidden=bool(f.get("isHidden")),
                                        total=int(f.get("totalItemCount") or 0),
                                        unread=int(f.get("unreadItemCount") or 0),
                                        child_count=int(f.get("childFolderCount") or 0)))
        yield FolderDeltaPage(folders, removed, nxt, None if nxt else dlink)
        if not nxt:
            return
        url = nxt


# ------------------------------------------------------------------------------------------------------ messages
def delta_start(user_id: str, folder_id: str) -> str:
    """The path of a first delta round of a folder (the query is frozen into the links Graph returns)."""
    return (f"/users/{q(user_id)}/mailFolders/{q(folder_id)}/messages/delta?$select={MESSAGE_SELECT}"
            f"&$expand={quote(EXPAND, safe='$(),=')}")


def message_delta(client: Any, user_id: str, folder_id: str, link: str | None, *, page_size: int = PAGE
                  ) -> Iterator[MessageDeltaPage]:
    """Pages of a delta round of one folder, from `link` (a stored nextLink or deltaLink) or from the start.

    The first round lists every message; later rounds give changed and new ones and `removed` ids (deleted or
    moved out: a move is a removal here and an addition, same immutable id, in the other folder's delta).
    Raises DeltaExpired (410 SyncStateNotFound: start the folder over without a link) and ItemNotFound (the folder
    is gone) from the request that meets them; the caller stores each page's link before asking for the next."""
    url = link or delta_start(user_id, folder_id)
    what = f"message delta of folder {folder_id} of {user_id}"
    while True:
        data = _get(client, url, kind="mail_delta", what=what, page=page_size)
        nxt, dlink = data.get("@odata.nextLink"), data.get("@odata.deltaLink")
        if nxt and dlink:
            raise SourceError(f"{what}: a page carried both a nextLink and a deltaLink")
        messages, removed = [], []
        for entry in data.get("value") or ():
            if "@removed" in entry:
                removed.append(str(entry["id"]))
            else:
                messages.append(message_meta(entry, folder_id))
        yield MessageDeltaPage(messages, removed, nxt, dlink)
        if not nxt:
            return
        url = nxt


def get_message(client: Any, user_id: str, message_id: str) -> MessageMeta | None:
    """One message's metadata now; None when it is gone."""
    from migrate.errors import ItemNotFound

    try:
        data = _get(client, f"/users/{q(user_id)}/messages/{q(message_id)}",
                    {"$select": MESSAGE_SELECT, "$expand": EXPAND}, kind="mail_messages")
    except ItemNotFound:
        return None
    return message_meta(data, str(data.get("parentFolderId") or ""))


@contextmanager
def message_mime(client: Any, user_id: str, message_id: str) -> Iterator[Iterator[bytes]]:
    """The message's MIME (`/users/{u}/messages/{id}/$value`: the folder form answers 405) as chunks as they
    arrive; never read whole. ItemNotFound when the message is gone; a broken transfer raises TransientError
    from the chunk iterator (start over: the bytes may differ between two exports)."""
    graph = _graph(client)
    what = f"MIME of message {message_id} of {user_id}"
    resp = graph.open_stream(f"/users/{q(user_id)}/messages/{q(message_id)}/$value", kind="mail_mime", what=what,
                             pacer=getattr(client, "pacer", None), headers={"Prefer": PREFER})

    def chunks() -> Iterator[bytes]:
        import httpx

        try:
            yield from resp.iter_bytes()   # the body as sent (a gzip transfer is undone; nothing else is decoded)
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: the download broke ({type(exc).__name__})") from None

    try:
        yield chunks()
    finally:
        resp.close()


# ------------------------------------------------------------------------------------------------------ archives
def archive_mailboxes(client: Any) -> list[ArchiveInfo]:
    """Which mailboxes have an online archive, from the mailbox usage report (`Reports.Read.All`): its "Has
    Archive" column. The report gives the primary mailbox's size, not the archive's; it is a few days old; and
    with the tenant's "conceal user names in reports" setting on, the UPNs are hashes (`concealed`)."""
    from migrate.errors import AuthError, SignInRefused

    graph = _graph(client)
    try:
        resp = graph.pacer.call(lambda: graph.request_once("GET", REPORT, kind="mail_report",
                                                           what="mailbox usage report"), what="mailbox usage report")
    except AuthError as exc:
        if isinstance(exc, SignInRefused):
            raise
        raise AuthError(f"mailbox usage report: {exc}", hint="grant the app the Graph application permission "
                        "Reports.Read.All (admin consent) to list online archives, or list them in the Exchange "
                        "admin centre") from exc
    location = resp.headers.get("location")
    if resp.status_code in (301, 302, 303, 307, 308) and location:
        def download() -> bytes:
            import httpx

            try:   # a pre-authenticated URL on another host: never send our token there
                r = graph.http.get(location)
            except httpx.TransportError as exc:
                raise TransientError(f"mailbox usage report: download failed ({type(exc).__name__})") from None
            if r.status_code >= 500 or r.status_code == 429:
                raise TransientError(f"mailbox usage report: download answered HTTP {r.status_code}")
            if r.status_code >= 400:
                raise SourceError(f"mailbox usage report: download answered HTTP {r.status_code}")
            return r.content
        raw = graph.pacer.call(download, what="mailbox usage report")
    else:
        raw = resp.content
    return parse_usage_report(raw.decode("utf-8-sig", errors="replace"))


def parse_usage_report(text: str) -> list[ArchiveInfo]:
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        upn = (row.get("User Principal Name") or "").strip()
        if not upn or (row.get("Is Deleted") or "").strip().lower() == "true":
            continue
        out.append(ArchiveInfo(upn=upn, has_archive=(row.get("Has Archive") or "").strip().lower() == "true",
                               primary_bytes=_int((row.get("Storage Used (Byte)") or "").strip() or None),
                               items=_int((row.get("Item Count") or "").strip() or None),
                               report_date=(row.get("Report Refresh Date") or "").strip(), concealed="@" not in upn))
    return out
