"""Earlier versions of a file: `GET …/items/{i}/versions` (newest first, the current one included, §7) and their bytes.

A listing costs 2 RU (`kind="versions"`); each entry carries a pre-authenticated `@microsoft.graph.downloadUrl`,
used first (1 RU for the bytes, counted as "download"), so no request per version is needed. When that URL has
expired (401 on it) or is absent, `…/versions/{id}/content` (1 RU, `kind="version_content"`) answers a 302 to a
fresh one. Graph refuses `/content` of the current version by design: the current bytes come from the item.
URLs are held in memory only and never logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from migrate.backends.graph.client import GraphClient, SourceRefused, classify
from migrate.backends.graph.items import parse_time
from migrate.errors import ItemNotFound, TransientError
from migrate.models import SourceVersion


def _item_path(drive_id: str, item_id: str) -> str:
    return f"drives/{quote(drive_id, safe='!')}/items/{quote(item_id, safe='')}"


def author_of(identity: Any) -> str:
    """A readable name from an identitySet: the user's (or application's) display name, else their email."""
    if not isinstance(identity, dict):
        return ""
    for kind in ("user", "application", "device"):
        who = identity.get(kind)
        if isinstance(who, dict):
            return str(who.get("displayName") or who.get("email") or who.get("id") or "")
    return ""


def list_versions(client: GraphClient, drive_id: str, item_id: str) -> list[SourceVersion]:
    """Every version Graph lists for the file, newest first (the first is the current version)."""
    values = client.get_pages(f"{_item_path(drive_id, item_id)}/versions", kind="versions",
                              what=f"versions of {drive_id}/{item_id}")
    out = []
    for v in values:
        if not isinstance(v, dict) or not v.get("id"):
            continue
        url = v.get("@microsoft.graph.downloadUrl")
        out.append(SourceVersion(id=str(v["id"]), mtime=parse_time(v.get("lastModifiedDateTime")),
                                 size=int(v.get("size") or 0), author=author_of(v.get("lastModifiedBy")),
                                 url=url if isinstance(url, str) and url.startswith(("https://", "http://")) else None))
    return out


class VersionReader:
    """Streams earlier versions with the content reader's plain (token-less) client, through the shared pacer."""

    def __init__(self, client: GraphClient, http: Any, read_size: int = 1 << 20) -> None:
        self.client = client
        self.http = http
        self.read_size = read_size

    def _fresh_url(self, drive_id: str, item_id: str, version_id: str) -> str:
        path = f"{_item_path(drive_id, item_id)}/versions/{quote(version_id, safe='')}/content"
        resp = self.client.request_once("GET", path, kind="version_content",
                                        what=f"version {version_id} of {drive_id}/{item_id}")
        location = resp.headers.get("location")
        if resp.status_code in (301, 302, 303, 307, 308) and location:
            return location
        raise SourceRefused(f"version {version_id} of {drive_id}/{item_id}: expected a redirect, got HTTP "
                            f"{resp.status_code}")

    def _open(self, drive_id: str, item_id: str, version: SourceVersion, offset: int, state: dict[str, bool]) -> Any:
        import httpx

        what = f"download of version {version.id} of {drive_id}/{item_id}"
        url = version.url if (version.url and not state.get("expired")) else None
        if url is None:
            url = self._fresh_url(drive_id, item_id, version.id)
        self.client.count("download")
        try:
            resp = self.http.send(self.http.build_request("GET", url, headers={"Range": f"bytes={offset}-"}
                                                          if offset else {}), stream=True)
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: connection failed ({type(exc).__name__})") from None
        self.client.observe("download", resp)
        if resp.status_code == 401:
            resp.close()
            state["expired"] = True  # the listing's URL expired: the retry asks …/versions/{id}/content
            raise TransientError(f"{what}: the download URL expired; asking for a new one")
        if resp.status_code == 416:
            resp.close()
            raise ItemNotFound(f"{what}: the version is shorter than {offset} bytes")
        if resp.status_code >= 400:
            resp.read()
            resp.close()
            try:
                body = resp.json()
            except ValueError:
                body = None
            err = classify(resp.status_code, body, resp.headers, what)
            raise err if err is not None else SourceRefused(what)
        return resp

    @contextmanager
    def open(self, drive_id: str, item_id: str, version: SourceVersion, offset: int = 0) -> Iterator[Iterator[bytes]]:
        """The version's bytes from `offset` (a server ignoring Range has the skipped bytes dropped)."""
        import httpx

        state: dict[str, bool] = {}
        resp = self.client.pacer.call(lambda: self._open(drive_id, item_id, version, offset, state),
                                      what=f"version {version.id} of {drive_id}/{item_id}")
        skip = offset if (offset and resp.status_code == 200) else 0

        def chunks() -> Iterator[bytes]:
            nonlocal skip
            try:
                for chunk in resp.iter_bytes(self.read_size):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    yield chunk
            except httpx.TransportError as exc:
                raise TransientError(f"version {version.id} of {drive_id}/{item_id} broke: "
                                     f"{type(exc).__name__}") from None

        try:
            yield chunks()
        finally:
            resp.close()
