"""Writing calendar and contact objects over CalDAV/CardDAV, silently towards attendees.

Every write carries `x-nc-scheduling: false` and `Schedule-Reply: F` (reference groupware.md §6.5: the first
stops Nextcloud's invitations on PUT, only the second also stops cancellations on DELETE in 32.0.1); the mapper
puts SCHEDULE-AGENT=CLIENT on every attendee as the third guard. Creates use `If-None-Match: *`, updates
`If-Match`, so a rerun never duplicates and never overwrites a change made at the target. All calls go through
one pacer; `classify` is this backend's single decision table from answers to typed errors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from migrate.errors import (
    AuthError,
    TargetError,
    TargetFull,
    TargetItemError,
    ThrottledError,
    TransientError,
    Unanswered,
)
from migrate.transport.pacer import Pacer, parse_retry_after

if TYPE_CHECKING:
    import httpx

    from migrate.config import Settings

log = logging.getLogger(__name__)
SILENT = {"x-nc-scheduling": "false", "Schedule-Reply": "F"}
CONTENT_TYPE = {"calendar": "text/calendar; charset=utf-8", "addressbook": "text/vcard; charset=utf-8"}
NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "card": "urn:ietf:params:xml:ns:carddav"}
NC_CALDAV = "/remote.php/dav/calendars/{user}/"
NC_CARDDAV = "/remote.php/dav/addressbooks/users/{user}/"


class PreconditionFailed(TargetItemError):
    """412: the object exists (If-None-Match) or changed since we wrote it (If-Match)."""


class UidExists(TargetItemError):
    """400: the collection already holds this UID under another resource name."""


class UidInTrash(TargetItemError):
    """500 UNIQUE constraint on Nextcloud 32.0.1: a deleted copy of this UID sits in the trash bin (§6.9)."""


@dataclass(frozen=True, slots=True)
class PutResult:
    status: int
    etag: str | None
    created: bool


def classify(resp: httpx.Response, what: str) -> BaseException | None:
    """None for success; else the typed error (Transient ones are retried by the pacer)."""
    code = resp.status_code
    if code < 400:
        return None
    text = resp.text[:2000] if resp.content else ""
    msg = _message(text) or text[:200]
    detail = f"{what}: HTTP {code}" + (f" ({msg})" if msg else "")
    if code in (429, 503):
        return ThrottledError(detail, retry_after=parse_retry_after(resp.headers.get("retry-after")) or 1.0)
    if code == 401:
        return AuthError(detail, hint="check the user's app password in the [target] credentials file")
    if code == 412:
        return PreconditionFailed(detail)
    if code == 507:
        return TargetFull(detail, hint="free space or raise the user's quota, then run again")
    if code == 500 and "UNIQUE constraint" in text:
        return UidInTrash(detail)
    if code == 400 and "uid already exists" in text.lower():
        return UidExists(detail)
    if code >= 500:
        return TransientError(detail)
    return TargetItemError(detail)


def _message(text: str) -> str:
    start = text.find("<s:message>")
    if start < 0:
        return ""
    return text[start + 11:text.find("</s:message>", start)][:300]


def href_for(uid: str, ext: str) -> str:
    """A resource name from the UID: stable across runs, only [0-9a-f] (ids hold '/', '+', '=', §4.1)."""
    return hashlib.sha1(uid.encode()).hexdigest() + "." + ext


class DavTarget:
    """Per-user calendar and address-book homes on one server; thread-safe (httpx client + pacer)."""

    def __init__(self, caldav_home: str, carddav_home: str, passwords: Mapping[str, Any], *,
                 ca_bundle: str | None = None, org: str = "Unknown", pacer: Pacer | None = None,
                 nextcloud: bool = False) -> None:
        from migrate.transport.http import make_client

        self.homes = {"calendar": caldav_home, "addressbook": carddav_home}
        self.passwords: dict[str, Any] = dict(passwords)
        self.nextcloud = nextcloud
        self.pacer = pacer or Pacer("dav", max_attempts=8)
        self.http = make_client(ca_bundle=ca_bundle, org=org, max_connections=16)
        self.requests = 0

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ plumbing
    def home(self, kind: str, user: str) -> str:
        return self.homes[kind].replace("{user}", quote(user, safe=""))

    def collection_url(self, kind: str, user: str, uri: str) -> str:
        return self.home(kind, user).rstrip("/") + "/" + quote(uri, safe="") + "/"

    def _auth(self, user: str) -> tuple[str, str]:
        if user not in self.passwords:
            raise AuthError(f"no app password for target user {user!r}",
                            hint="add a line for this user to the [target] credentials file")
        pw = self.passwords[user]
        return user, pw.reveal() if hasattr(pw, "reveal") else str(pw)

    def request(self, method: str, url: str, user: str, *, what: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, ok: tuple[int, ...] = ()) -> httpx.Response:
        """One paced request as `user`; statuses in `ok` are returned instead of raised."""
        import httpx

        def call() -> httpx.Response:
            self.requests += 1
            try:
                resp = self.http.request(method, url, content=body, headers=dict(headers or {}),
                                         auth=self._auth(user))
            except httpx.TimeoutException as exc:
                raise Unanswered(f"{what}: timed out ({type(exc).__name__})", reason=type(exc).__name__) from None
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise Unanswered(f"{what}: connection failed ({reason})", reason=reason) from None
            if resp.status_code in ok:
                return resp
            err = classify(resp, what)
            if err is not None:
                raise err
            return resp

        return self.pacer.call(call, what=what)

    # ------------------------------------------------------------------ collections
    def ensure_collection(self, kind: str, user: str, uri: str, name: str, *, color: str = "",
                          description: str = "Imported from Exchange Online") -> bool:
        """Create the calendar (MKCALENDAR) or address book (extended MKCOL); False when it already existed."""
        from xml.sax.saxutils import escape

        url = self.collection_url(kind, user, uri)
        if kind == "calendar":
            color_xml = f"<a:calendar-color>{escape(color)}</a:calendar-color>" if color else ""
            body = ('<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" '
                    'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop>'
                    f"<d:displayname>{escape(name)}</d:displayname>{color_xml}"
                    f"<c:calendar-description>{escape(description)}</c:calendar-description>"
                    '<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>'
                    "</d:prop></d:set></c:mkcalendar>")
            method = "MKCALENDAR"
        else:
            body = ('<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" '
                    'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/>'
                    f"<card:addressbook/></d:resourcetype><d:displayname>{escape(name)}</d:displayname>"
                    f"<card:addressbook-description>{escape(description)}</card:addressbook-description>"
                    "</d:prop></d:set></d:mkcol>")
            method = "MKCOL"
        resp = self.request(method, url, user, what=f"{method} {kind} {uri!r} of {user}", body=body.encode(),
                            headers={"Content-Type": "application/xml; charset=utf-8"}, ok=(405, 409))
        if resp.status_code in (405, 409):
            if self.exists(url, user):
                return False
            raise TargetItemError(f"{method} {uri!r} of {user}: HTTP {resp.status_code}")
        return True

    def set_display_name(self, kind: str, user: str, uri: str, name: str) -> None:
        """PROPPATCH the collection's display name (a calendar or contact folder renamed at the source)."""
        from xml.sax.saxutils import escape

        body = ('<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                f"<d:displayname>{escape(name)}</d:displayname></d:prop></d:set></d:propertyupdate>")
        self.request("PROPPATCH", self.collection_url(kind, user, uri), user, what=f"rename {kind} {uri!r} of {user}",
                     body=body.encode(), headers={"Content-Type": "application/xml; charset=utf-8"})

    def exists(self, url: str, user: str) -> bool:
        resp = self.request("PROPFIND", url, user, what=f"PROPFIND {url}", headers={"Depth": "0"},
                            body=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
                                 b"</d:prop></d:propfind>", ok=(404,))
        return resp.status_code == 207

    def listing(self, kind: str, user: str, uri: str) -> dict[str, str]:
        """Resource name → ETag of every object in the collection (one Depth-1 PROPFIND)."""
        url = self.collection_url(kind, user, uri)
        resp = self.request("PROPFIND", url, user, what=f"list {kind} {uri!r} of {user}", headers={"Depth": "1"},
                            body=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/>'
                                 b"<d:resourcetype/></d:prop></d:propfind>", ok=(404,))
        if resp.status_code == 404:
            return {}
        from defusedxml import ElementTree as ET

        out: dict[str, str] = {}
        base = urlsplit(url).path.rstrip("/")
        for r in ET.fromstring(resp.content).findall("d:response", NS):
            href = unquote(r.findtext("d:href", "", NS)).rstrip("/")
            etag = r.findtext(".//d:getetag", None, NS)
            if href == base or etag is None:
                continue
            out[href.rsplit("/", 1)[-1]] = etag
        return out

    # ------------------------------------------------------------------ objects
    def object_url(self, kind: str, user: str, uri: str, name: str) -> str:
        return self.collection_url(kind, user, uri) + quote(name, safe="")

    def put(self, kind: str, user: str, uri: str, name: str, body: bytes, *, etag: str | None) -> PutResult:
        """Create (If-None-Match: *) or update (If-Match: etag), never inviting anyone; raises PreconditionFailed."""
        headers = {"Content-Type": CONTENT_TYPE[kind], **SILENT}
        headers.update({"If-Match": etag} if etag else {"If-None-Match": "*"})
        if self.nextcloud:
            headers["Prefer"] = "handling=strict"   # refuse instead of silently repairing our data (§6.4)
        url = self.object_url(kind, user, uri, name)
        resp = self.request("PUT", url, user, what=f"PUT {uri}/{name} of {user}", body=body, headers=headers)
        return PutResult(resp.status_code, resp.headers.get("etag"), resp.status_code == 201)

    def get(self, kind: str, user: str, uri: str, name: str) -> tuple[bytes, str | None] | None:
        headers = {"Accept": "text/vcard; version=3.0"} if kind == "addressbook" else {}
        resp = self.request("GET", self.object_url(kind, user, uri, name), user, what=f"GET {uri}/{name} of {user}",
                            headers=headers, ok=(404,))
        if resp.status_code == 404:
            return None
        return resp.content, resp.headers.get("etag")

    def delete(self, kind: str, user: str, uri: str, name: str, *, etag: str | None = None) -> bool:
        headers = dict(SILENT)
        if etag:
            headers["If-Match"] = etag
        resp = self.request("DELETE", self.object_url(kind, user, uri, name), user,
                            what=f"DELETE {uri}/{name} of {user}", headers=headers, ok=(404,))
        return resp.status_code != 404

    def purge_trashed_uid(self, user: str, uid: str) -> int:
        """Nextcloud: permanently delete trashed calendar objects with this UID (they block its re-import, §6.9)."""
        if not self.nextcloud:
            return 0
        from xml.sax.saxutils import escape

        from defusedxml import ElementTree as ET

        trash = self.home("calendar", user).rstrip("/") + "/trashbin/objects/"
        body = ('<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                '<d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
                f'<c:prop-filter name="UID"><c:text-match collation="i;octet">{escape(uid)}</c:text-match>'
                "</c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>")
        resp = self.request("REPORT", trash, user, what=f"search the trash bin of {user}", body=body.encode(),
                            headers={"Depth": "1", "Content-Type": "application/xml"}, ok=(404, 501))
        if resp.status_code != 207:
            return 0
        n = 0
        for r in ET.fromstring(resp.content).findall("d:response", NS):
            href = r.findtext("d:href", "", NS)
            if href and href.rstrip("/") != urlsplit(trash).path.rstrip("/"):
                self.request("DELETE", urljoin(trash, href), user, what=f"purge {href}", ok=(404,))
                n += 1
        return n


def homes_for(settings: Settings) -> tuple[str, str]:
    t = settings.target
    base = t.url.rstrip("/")
    cal = t.caldav_url or (base + NC_CALDAV if t.kind == "nextcloud" else "")
    card = t.carddav_url or (base + NC_CARDDAV if t.kind == "nextcloud" else "")
    return cal, card


def open_dav_target(settings: Settings, *, need: tuple[str, ...] = ("calendar", "addressbook"),
                    pacer: Pacer | None = None, **_: Any) -> DavTarget:
    """The CalDAV/CardDAV target of `settings`: Nextcloud's homes unless [target] caldav_url/carddav_url say else."""
    from migrate.config import load_app_passwords, require_settings
    from migrate.errors import ConfigError

    require_settings(settings, "target")
    cal, card = homes_for(settings)
    for kind, home, key in (("calendar", cal, "caldav_url"), ("addressbook", card, "carddav_url")):
        if kind in need and not home:
            raise ConfigError(f"[target] {key} is not set: a {settings.target.kind} target needs the {kind} home URL",
                              hint=f'add e.g. {key} = "https://dav.example.org/{{user}}/" to [target]')
    t = settings.target
    if pacer is None:
        from migrate.connect import fault_budget

        pacer = Pacer("dav", max_attempts=8, faults=fault_budget(settings, "CalDAV/CardDAV target", cal or card,
                                                                 "[target] url (or caldav_url/carddav_url)"))
    return DavTarget(cal, card, load_app_passwords(settings), ca_bundle=str(t.ca_bundle) if t.ca_bundle else None,
                     org=settings.source.org if settings.source else "Unknown", pacer=pacer,
                     nextcloud=t.kind == "nextcloud")


def body_etag_md5(body: bytes) -> str:
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


__all__ = ["DavTarget", "PreconditionFailed", "PutResult", "TargetError", "UidExists", "UidInTrash", "href_for",
           "open_dav_target"]
