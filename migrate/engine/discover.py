"""Discovery: record users and drives, write mapping suggestions, and give drives their batch from the mappings."""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.models import Drive, DriveKind
from migrate.protocols import DiscoveredUser, Source
from migrate.store import StateStore

log = logging.getLogger(__name__)
FLUSH = 500
_UID_BAD = re.compile(r"[^a-z0-9 _.@'-]")


@dataclass
class DiscoverSummary:
    """What `discover` found and wrote."""

    users: int = 0
    users_without_drive: int = 0
    drives: dict[str, int] = field(default_factory=dict)  # kind -> count
    users_suggested: int = 0
    sites_suggested: int = 0
    batches_assigned: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source_stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"attention": False}


def suggest_uid(upn: str) -> str:
    """The suggested Nextcloud user: the UPN's local part, lower-cased; '' for guests or when nothing usable is left."""
    if "#ext#" in upn.lower() or "@" not in upn:
        return ""
    uid = _UID_BAD.sub("_", upn.rsplit("@", 1)[0].lower()).strip(" ._")[:64]
    return uid


def _folder_name(text: str) -> str:
    name = re.sub(r"[\x00-\x1f/\\]+", "-", text).strip(" .-")
    return name[:100] or "Library"


def site_suggestions(drives: list[dict[str, Any]]) -> list[dict[str, str]]:
    """sites.csv rows: a site with one library by its URL, libraries of multi-library sites and Team drives by id."""
    by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in drives:
        if d["kind"] in (DriveKind.LIBRARY, DriveKind.TEAM):
            by_site[d["site_url"] or d["id"]].append(d)
    rows = []
    for key, libs in by_site.items():
        for d in libs:
            base = d["owner_name"] or d["name"] or "Library"
            if len(libs) == 1 and d["site_url"]:
                rows.append({"source": key, "target": f"groupfolder:{_folder_name(base)}", "batch": ""})
            else:
                name = base if len(libs) == 1 else f"{base} - {d['name']}"
                rows.append({"source": d["id"], "target": f"groupfolder:{_folder_name(name)}", "batch": ""})
    return rows


def assign_batches(store: StateStore, mappings: Any) -> int:
    """drives.batch from users.csv (OneDrives, by owner UPN) and sites.csv (libraries, Team drives), and which
    drives a row with a blank target leaves out (drives.not_migrated); missing files mean no batches.
    `mappings` is config.MappingSettings. Returns how many drives changed batch."""
    from migrate.mapping import load_sites, load_users

    users = load_users(mappings.users, missing_ok=True)
    sites = load_sites(mappings.sites, missing_ok=True)
    if not len(users) and not len(sites):
        return 0
    batches: dict[str, str] = {}
    not_migrated: set[str] = set()
    for d in store.drives():
        if d["kind"] == DriveKind.ONEDRIVE:
            row: Any = users.get(d["owner_upn"]) if d["owner_upn"] else None
        else:
            row = sites.find(drive_id=d["id"], drive_url=d["web_url"] or None, site_id=d["site_id"] or None,
                             site_url=d["site_url"] or None)
        batches[d["id"]] = (row.batch or "") if row else ""
        if row is not None and not row.migrated:
            not_migrated.add(d["id"])
    store.set_not_migrated(not_migrated)
    return store.set_drive_batches(batches)


def discover(store: StateStore, source: Source, mappings: Any, *,
             on_progress: Callable[[str, int], None] | None = None,
             source_stats: Callable[[], dict[str, Any]] | None = None) -> DiscoverSummary:
    """Record every user and drive the source finds, append mapping suggestions, assign batches.

    Rows people edited in users.csv / sites.csv are never changed (mapping.merge_suggestions appends only).
    """
    import time

    from migrate.mapping import merge_suggestions

    started = time.monotonic()
    summary = DiscoverSummary()
    kinds: Counter[str] = Counter()
    users: list[dict[str, Any]] = []
    drives: list[Drive] = []
    user_rows: list[dict[str, str]] = []
    for found in source.discover():
        if on_progress:
            on_progress("user" if isinstance(found, DiscoveredUser) else str(found.kind), 1)
        if isinstance(found, DiscoveredUser):
            summary.users += 1
            summary.users_without_drive += 0 if found.has_drive else 1
            users.append({"id": found.id, "upn": found.upn, "display_name": found.display_name, "mail": found.mail,
                          "has_drive": int(found.has_drive)})
            if found.upn:
                user_rows.append({"source_upn": found.upn, "target_user": suggest_uid(found.upn), "batch": ""})
        else:
            kinds[str(found.kind)] += 1
            drives.append(found)
        if len(users) >= FLUSH:
            store.upsert_users(users)
            users = []
        if len(drives) >= FLUSH:
            store.upsert_drives(drives)
            drives = []
    store.upsert_users(users)
    store.upsert_drives(drives)
    summary.drives = dict(kinds)
    summary.notes = list(getattr(source, "discovery_notes", []) or [])
    summary.users_suggested = merge_suggestions(mappings.users, user_rows, "users")
    summary.sites_suggested = merge_suggestions(mappings.sites, site_suggestions(store.drives()), "sites")
    summary.batches_assigned = assign_batches(store, mappings)
    summary.seconds = time.monotonic() - started
    summary.source_stats = source_stats() if source_stats else {}
    store.record_metric("discover.drives", sum(kinds.values()), "drives")
    store.record_metric("discover.users", summary.users, "users")
    return summary
