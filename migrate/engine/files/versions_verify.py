"""`verify` for version history: every carried version at the target with its time, bytes and label.

One PROPFIND of the file's version list per file that has carried versions, then one GET per earlier version
to hash its bytes against the SHA1 recorded when it was sent (the target keeps no checksum of versions). The
current version's bytes are checked by the file's own check; here only its label. Files run `workers` at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.errors import Fatal, MigrateError


def _problems(store: Any, target: Any, item: dict[str, Any]) -> tuple[int, list[str]]:
    """(versions checked, what is wrong with them) for one file."""
    user, path = item["target_user"] or "", item["target_path"]
    rows = [r for r in store.versions_of(item["drive_id"], item["item_id"]) if r["status"] == "carried"]
    try:
        fid = target.file_id(user, path)
        there = {v.timestamp: v for v in target.list_versions(user, fid)} if fid else {}
    except MigrateError as exc:
        if isinstance(exc, Fatal):
            raise
        return len(rows), [f"version list not readable: {str(exc).splitlines()[0]}"]
    out = []
    for r in rows:
        name = f"version {r['version_id']} ({r['target_mtime']})"
        v = there.get(int(r["target_mtime"] or 0))
        if v is None:
            out.append(f"{name} is not at the target")
            continue
        if (v.label or "") != (r["label"] or ""):
            out.append(f"{name} has the label {v.label!r}, expected {r['label']!r}")
        if r["current"]:
            continue
        if v.size != r["size"]:
            out.append(f"{name} holds {v.size} bytes, expected {r['size']}")
            continue
        if r["sha1"]:
            h = hashlib.sha1()  # noqa: S324 - a content checksum, as Nextcloud's own
            with target.open_version(user, fid, v.timestamp) as chunks:
                for chunk in chunks:
                    h.update(chunk)
            if h.hexdigest() != r["sha1"]:
                out.append(f"{name}: SHA1 {h.hexdigest()}, expected {r['sha1']}")
    return len(rows), out


def verify_versions(store: Any, target: Any, drives: list[dict[str, Any]], *, workers: int = 8
                    ) -> Iterator[tuple[dict[str, Any], int, list[str]]]:
    """(item, versions checked, problems) for every file of `drives` with carried versions."""
    if not callable(getattr(target, "list_versions", None)):
        return
    items = (it for d in drives for it in store.items_with_versions(d["id"], ("carried",)) if it["status"] == "verified")
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="versions") as pool:
        batch: list[dict[str, Any]] = []
        for it in items:
            batch.append(it)
            if len(batch) >= 4 * workers:
                yield from zip(batch, *_unzip(pool.map(lambda i: _problems(store, target, i), batch)), strict=True)
                batch = []
        if batch:
            yield from zip(batch, *_unzip(pool.map(lambda i: _problems(store, target, i), batch)), strict=True)


def _unzip(results: Any) -> tuple[list[int], list[list[str]]]:
    got = list(results)
    return [n for n, _ in got], [p for _, p in got]
