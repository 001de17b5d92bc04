"""Plain data records shared by the engine, the backends and the store: drives, items, grants, features."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ItemStatus(enum.StrEnum):
    """Where one item stands in the copy state machine (see migrate.store.states for the legal moves)."""

    PENDING = "pending"
    TRANSFERRING = "transferring"
    UPLOADED = "uploaded"
    VERIFIED = "verified"
    FAILED = "failed"
    SKIPPED = "skipped"
    CONFLICT = "conflict"


class DriveKind(enum.StrEnum):
    """Which Microsoft 365 container a drive belongs to; it decides the default target layout."""

    ONEDRIVE = "onedrive"
    LIBRARY = "library"
    TEAM = "team"


@dataclass(frozen=True, slots=True)
class Drive:
    """A source drive as discovered: a user's OneDrive, a site's library, or a Team's (group) drive."""

    id: str
    kind: DriveKind
    name: str
    web_url: str = ""
    owner_id: str = ""
    owner_upn: str = ""
    owner_name: str = ""
    site_id: str = ""
    site_url: str = ""
    group_id: str = ""
    quota_used: int | None = None
    quota_total: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """A driveItem reduced to what migration needs; `path` is relative to the drive root, '/'-separated."""

    drive_id: str
    id: str
    parent_id: str | None
    name: str
    is_folder: bool
    size: int = 0
    mtime: float | None = None
    ctime: float | None = None
    quick_xor_hash: str | None = None
    sha1: str | None = None
    etag: str | None = None
    ctag: str | None = None
    mime_type: str | None = None
    package_type: str | None = None
    shared: bool = False
    malware: bool = False
    deleted: bool = False
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """One source permission entry, normalised: who gets which roles on an item, and how."""

    drive_id: str
    item_id: str
    perm_id: str
    kind: str  # owner | user | group | link | external
    roles: tuple[str, ...]
    grantee_id: str = ""
    grantee_email: str = ""
    grantee_name: str = ""
    link_scope: str = ""  # anonymous | organization | users | existingAccess
    link_type: str = ""  # view | edit | embed | blocksDownload ...
    expires: str | None = None
    has_password: bool = False
    inherited: bool = False


@dataclass(frozen=True, slots=True)
class PlannedShare:
    """One share the plan wants at the target: every grant of an item that reaches the same recipient, merged.

    The first block is the plan (rebuilt by every `plan`); the second is what `share` did about it (kept by the
    store across plans). `grants` lists the contributing source grants, for the report.
    """

    drive_id: str
    item_id: str
    share_type: int  # 0 user, 1 group, 3 public link
    share_with: str  # uid or gid; "" for a public link
    owner: str
    path: str
    permissions: int
    expire_date: str | None = None
    password: bool = False
    hide_download: bool = False
    grants: tuple[dict[str, Any], ...] = ()
    note: str = ""
    id: int = 0
    planned: bool = True  # False: no source grant asks for it any more; a share we made for it is to be removed
    status: str | None = None
    share_id: str | None = None
    share_permissions: int | None = None
    made_by_us: bool = False
    error: str | None = None
    item_status: str | None = None
    visible: bool | None = None  # None: not checked as its recipients yet; False: some recipient does not see it
    not_visible: tuple[dict[str, Any], ...] = ()  # {"user", "reason"} per recipient who does not see it

    @property
    def key(self) -> tuple[str, str, int, str]:
        return self.drive_id, self.item_id, self.share_type, self.share_with


@dataclass(frozen=True, slots=True)
class Features:
    """What a target can do; the engine asks this record, never the backend's type."""

    set_mtime: bool = False
    stored_checksum: bool = False
    chunked_upload: bool = False
    bulk_upload: bool = False
    shares: bool = False
    group_folders: bool = False
    auto_mkcol: bool = False
    max_name_bytes: int = 255
    forbidden_names: frozenset[str] = field(default_factory=frozenset)
    forbidden_chars: frozenset[str] = field(default_factory=frozenset)
    forbidden_basenames: frozenset[str] = field(default_factory=frozenset)
    forbidden_extensions: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """What the target reports about one path (PROPFIND), used by plan, resume and verify."""

    path: str
    is_folder: bool
    size: int = 0
    mtime: float | None = None
    etag: str | None = None
    checksums: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SmallFile:
    """One small file for a target's bulk upload (`upload_many`); held in memory, so only small files belong here."""

    path: str
    data: bytes
    mtime: float | None = None
    sha1: str | None = None
