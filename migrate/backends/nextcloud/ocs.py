"""OCS calls (reference §1.3): `OCS-APIRequest: true` always, JSON, v2 status passed through; the team-folder API
answers with a v1 envelope (HTTP 200 + `meta.statuscode`) or, for some errors, a plain `{"message": …}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from migrate.backends.nextcloud.dav import NextcloudDav

HEADERS = {"OCS-APIRequest": "true", "Accept": "application/json"}
_CLIENT_ERRORS = tuple(range(400, 429)) + tuple(range(430, 500))  # 429 stays a ThrottledError


@dataclass(frozen=True, slots=True)
class OcsResult:
    """HTTP status, the OCS status code (v1: 100 = OK), the message and the data of one OCS answer."""

    http_status: int
    status: int
    message: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.http_status < 300 and self.status in (100, 200)


def call(dav: NextcloudDav, user: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
         form: Mapping[str, Any] | None = None, ok: tuple[int, ...] = _CLIENT_ERRORS) -> OcsResult:
    """`path` starts with /ocs/v2.php/… or /index.php/apps/…; answers with an `ok` status (by default the 4xx
    but 429, which the pacer retries) are returned, not raised."""
    query = {"format": "json", **(params or {})}
    url = f"{dav.base}{path}?{urlencode(query)}"
    headers = dict(HEADERS)
    body = None
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode({k: v for k, v in form.items() if v is not None}).encode()
    resp = dav.send(user, method, url, f"{method} {path} as {user}", headers=headers, body=body, ok=ok)
    try:
        doc = json.loads(resp.content) if resp.content else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict) and isinstance(doc.get("ocs"), dict):
        meta = doc["ocs"].get("meta") or {}
        return OcsResult(resp.status_code, int(meta.get("statuscode") or resp.status_code),
                         str(meta.get("message") or ""), doc["ocs"].get("data"))
    message = str(doc.get("message") or "") if isinstance(doc, dict) else ""
    return OcsResult(resp.status_code, resp.status_code, message, doc)
