"""What the server at the target URL is and can do (reference §10.1): status.php, OCS capabilities, OPTIONS.

`detect()` makes three reads and no writes; `features_from_capabilities()` turns the answers into the frozen
`Features` record the engine and the name rules consult (forbidden names, characters, basenames and extensions
come from the live capability lists, plus the rules Nextcloud enforces without publishing them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from migrate.backends.webdav.session import DavSession
from migrate.errors import ConfigError, Fatal, TargetError
from migrate.models import Features

OCS_HEADERS = {"OCS-APIRequest": "true", "Accept": "application/json"}
CONTROL_CHARS = frozenset(chr(i) for i in range(32))  # enforced by NC, not published (§5.1)
NC_NAME_BYTES = 250  # filecache.name; 251 bytes → 400 "Filename is too long" (§5.2)
AUTO_MKCOL_MAJOR = 32  # X-NC-WebDAV-Auto-Mkcol verified present in 32.0.1 (§11.1)
_CLIENT_ERRORS = tuple(range(400, 500))


class TargetUnavailable(TargetError, Fatal):
    """The server is in maintenance mode, not installed, or not a WebDAV server at all."""


@dataclass(frozen=True)
class ServerInfo:
    """The detection result: which kind of server, its version, raw capabilities, DAV classes and Features."""

    kind: str  # "nextcloud" | "webdav"
    features: Features
    version: str = ""
    major: int = 0
    capabilities: dict[str, Any] = field(default_factory=dict)
    dav: frozenset[str] = frozenset()
    checksum_update: bool = False

    @property
    def chunk_parallel(self) -> int | None:
        """How many chunks of one upload the server welcomes at once (`files.chunked_upload.max_parallel_count`,
        advertised by newer servers; None when not said)."""
        value = ((self.capabilities.get("files") or {}).get("chunked_upload") or {}).get("max_parallel_count")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def not_preserved(self) -> tuple[str, ...]:
        """What this target cannot keep, in the words the plan report uses."""
        f = self.features
        out = []
        if not f.set_mtime:
            out.append("modification times")
        if not f.stored_checksum:
            out.append("checksums")
        if not f.shares:
            out.append("shares")
        if self.kind != "nextcloud":
            out.append("versions")
        return tuple(out)


def _lower_set(values: Any) -> frozenset[str]:
    if isinstance(values, dict):
        values = list(values.values())
    if not isinstance(values, list):
        return frozenset()
    return frozenset(str(v).lower() for v in values if isinstance(v, str))


def _version_at_least(value: Any, want: str = "1.0") -> bool:
    try:
        return tuple(int(x) for x in str(value).split(".")) >= tuple(int(x) for x in want.split("."))
    except ValueError:
        return False


def features_from_capabilities(caps: dict[str, Any], dav: frozenset[str] | set[str] = frozenset()) -> Features:
    """Nextcloud Features from `GET /ocs/v2.php/cloud/capabilities` data (`ocs.data.capabilities`)."""
    files = caps.get("files") or {}
    davcaps = caps.get("dav") or {}
    major = int((caps.get("_version") or {}).get("major") or 0)
    chunking = bool(davcaps.get("chunking")) and files.get("bigfilechunking", True) is not False
    sharing = caps.get("files_sharing") or {}
    names = _lower_set(files.get("forbidden_filenames")) | _lower_set(files.get("blacklisted_files")) | {".htaccess"}
    chars = (frozenset(str(c) for c in files.get("forbidden_filename_characters") or [] if isinstance(c, str))
             | {"/", "\\"} | CONTROL_CHARS)
    exts = _lower_set(files.get("forbidden_filename_extensions")) | {".part"}
    return Features(
        set_mtime=True,
        stored_checksum=True,
        chunked_upload=chunking,
        bulk_upload=_version_at_least(davcaps.get("bulkupload")),
        shares=bool(sharing.get("api_enabled", bool(sharing))),
        group_folders="groupfolders" in caps,
        auto_mkcol=major >= AUTO_MKCOL_MAJOR,
        versions=bool(files.get("versioning")) and bool(files.get("version_labeling")),
        max_name_bytes=NC_NAME_BYTES,
        forbidden_names=names,
        forbidden_chars=chars,
        forbidden_basenames=_lower_set(files.get("forbidden_filename_basenames")),
        forbidden_extensions=exts,
    )


def plain_features() -> Features:
    from migrate.backends.webdav.target import plain_features as pf

    return pf()


def _dav_classes(header: str) -> frozenset[str]:
    return frozenset(p.strip() for p in header.split(",") if p.strip())


def detect(session: DavSession, url: str, auth: tuple[str, str] | None) -> ServerInfo:
    """Reference §10.1 steps 1–3. `auth` is one account's (uid, app password), used for steps 2 and 3.

    Raises TargetUnavailable (maintenance, not installed, no WebDAV) and AuthError (401 on capabilities).
    """
    base = url.rstrip("/")
    status = session.send("GET", f"{base}/status.php", auth=None, what="GET status.php", ok=_CLIENT_ERRORS)
    info: Any = None
    if status.status_code == 200:
        try:
            info = json.loads(status.content)
        except ValueError:
            info = None
    if not (isinstance(info, dict) and "installed" in info and "version" in info):
        resp = session.send("OPTIONS", base + "/", auth=auth, what="OPTIONS", ok=_CLIENT_ERRORS)
        classes = _dav_classes(resp.headers.get("DAV", ""))
        if "1" not in classes:
            raise TargetUnavailable(f"{base} answers neither as Nextcloud (status.php) nor as WebDAV (no DAV: 1 in "
                                    f"OPTIONS, HTTP {resp.status_code})", hint="check [target] url and kind")
        return ServerInfo(kind="webdav", features=plain_features(), dav=classes)
    if info.get("maintenance") or not info.get("installed") or info.get("needsDbUpgrade"):
        raise TargetUnavailable(f"Nextcloud at {base} is not ready (maintenance={info.get('maintenance')}, "
                                f"installed={info.get('installed')}, needsDbUpgrade={info.get('needsDbUpgrade')})",
                                hint="wait until the administrator ends maintenance mode, then rerun")
    if auth is None:
        raise ConfigError("Nextcloud detection needs one user's app password (none given)")
    resp = session.send("GET", f"{base}/ocs/v2.php/cloud/capabilities?format=json", auth=auth, user=auth[0],
                        what="GET capabilities", headers=OCS_HEADERS)
    data = (json.loads(resp.content).get("ocs") or {}).get("data") or {}
    caps = dict(data.get("capabilities") or {})
    version = data.get("version") or {}
    caps["_version"] = version
    opts = session.send("OPTIONS", f"{base}/remote.php/dav/files/{auth[0]}/", auth=auth, user=auth[0],
                        what="OPTIONS files", ok=_CLIENT_ERRORS)
    classes = _dav_classes(opts.headers.get("DAV", ""))
    return ServerInfo(kind="nextcloud", features=features_from_capabilities(caps, classes),
                      version=str(version.get("string") or info.get("versionstring") or ""),
                      major=int(version.get("major") or 0), capabilities=caps, dav=classes,
                      checksum_update="nextcloud-checksum-update" in classes)
