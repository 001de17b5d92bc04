"""driveItem JSON (as delta returns it) → state-store rows and `models.Item`; no model parsing, no I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

from migrate.models import Item

# What scan asks delta for: everything a migration needs and nothing else (smaller pages, fewer bytes parsed).
DELTA_SELECT = (
    "id,name,size,parentReference,file,folder,package,deleted,fileSystemInfo,lastModifiedDateTime,"
    "createdDateTime,eTag,cTag,shared,malware,root,remoteItem"
)


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time as Graph writes it ('2025-06-14T17:45:00Z', 7-digit fractions)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        try:
            head, _, frac = value.rstrip("Z").partition(".")
            return dt.datetime.fromisoformat(head + "+00:00").timestamp() + (float("0." + frac) if frac else 0.0)
        except ValueError:
            return None


def is_root(d: dict[str, Any]) -> bool:
    return "root" in d


def is_shortcut(d: dict[str, Any]) -> bool:
    """A `remoteItem` lives in another drive ("add shortcut to My files"): it is copied from its owner's drive."""
    return "remoteItem" in d and "deleted" not in d


def delta_row(d: dict[str, Any], generation: int) -> dict[str, Any]:
    """The store row (items table, SOURCE_COLUMNS) for one delta entry.

    Deleted entries carry only what ODB sends for them (id, maybe parentReference): the caller marks the stored
    row deleted. `ctag` is None when delta omitted it (the store keeps the stored value then).
    """
    ref = d.get("parentReference") or {}
    if "deleted" in d:
        return {"item_id": d["id"], "deleted": 1, "scan_generation": generation}
    file = d.get("file")
    fsi = d.get("fileSystemInfo") or {}
    hashes = (file or {}).get("hashes") or {}
    package = d.get("package")
    root = is_root(d)
    return {
        "item_id": d["id"],
        "parent_id": None if root else ref.get("id"),
        "name": "" if root else d.get("name") or "",
        "is_folder": 0 if file is not None else 1 if (root or "folder" in d or package is not None) else 0,
        "size": int(d.get("size") or 0) if file is not None else 0,
        "mtime": parse_time(fsi.get("lastModifiedDateTime") or d.get("lastModifiedDateTime")),
        "ctime": parse_time(fsi.get("createdDateTime") or d.get("createdDateTime")),
        "quick_xor_hash": hashes.get("quickXorHash"),
        "sha1": hashes.get("sha1Hash"),
        "etag": d.get("eTag"),
        "ctag": d.get("cTag"),
        "mime_type": (file or {}).get("mimeType"),
        "package_type": (package or {}).get("type") or ("unknown" if package is not None else None),
        "shared": 1 if "shared" in d else 0,
        "malware": 1 if "malware" in d else 0,
        "deleted": 0,
        "scan_generation": generation,
    }


def to_item(drive_id: str, d: dict[str, Any], path: str | None = None) -> Item:
    """A `models.Item` for one driveItem dict (engine code and tests that want the typed record)."""
    row = delta_row(d, 0)
    if row.get("deleted"):
        return Item(drive_id=drive_id, id=d["id"], parent_id=(d.get("parentReference") or {}).get("id"), name="",
                    is_folder=False, deleted=True)
    return Item(
        drive_id=drive_id, id=row["item_id"], parent_id=row["parent_id"], name=row["name"],
        is_folder=bool(row["is_folder"]), size=row["size"], mtime=row["mtime"], ctime=row["ctime"],
        quick_xor_hash=row["quick_xor_hash"], sha1=row["sha1"], etag=row["etag"], ctag=row["ctag"],
        mime_type=row["mime_type"], package_type=row["package_type"], shared=bool(row["shared"]),
        malware=bool(row["malware"]), path=path,
    )
