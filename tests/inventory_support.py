"""Helpers shared by the inventory tests: a config file pointing at a Graph sandbox, and truth comparisons."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from migrate.sandbox.graph import GraphSandbox


def write_config(workdir: Path, g: GraphSandbox, *, workers: int = 4) -> dict[str, str]:
    """m365-migrate.toml for `g` in `workdir`; returns the environment carrying the secret (never in the file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "m365-migrate.toml").write_text(
        f"""[source]
tenant_id = "{g.tenant_id}"
client_id = "{g.client_id}"
auth = "client-secret"
graph_url = "{g.graph_url}"
authority = "{g.authority}"
ca_bundle = "{g.ca_path or ''}"
org = "Inventory Tests"

[transfer]
workers = {workers}

[state]
path = "state/migration.db"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("M365_MIGRATE_")}
    env["M365_CLIENT_SECRET"] = g.client_secret
    return env


def settings_for(workdir: Path, env: dict[str, str]):
    from migrate.config import load_settings

    return load_settings(workdir / "m365-migrate.toml", {}, env=env)


def stored(store: Any, drive_id: str) -> dict[str, dict[str, Any]]:
    """Live stored items of a drive (without the root), by item id."""
    return {r["item_id"]: r for r in store.iter_items(drive_id) if not (r["parent_id"] is None and r["path"] == "")}


def truth_view(truth: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, tuple]]:
    """drive -> item id -> (path, is_folder, size, quickXorHash) as the listing shows them."""
    out: dict[str, dict[str, tuple]] = {}
    for drive_id, rows in truth.items():
        view = {}
        for r in rows:
            folder = r["is_folder"] or r.get("is_package", False)
            size = 0 if folder else r.get("listed_size", r.get("size"))
            qxh = None if folder else (r.get("listed_quickXorHash", r.get("quickXorHash")) if size else None)
            view[r["id"]] = (r["path"].lstrip("/"), bool(folder), size, qxh)
        out[drive_id] = view
    return out


def store_view(store: Any, drive_ids: list[str]) -> dict[str, dict[str, tuple]]:
    return {d: {i: (r["path"], bool(r["is_folder"]), r["size"], r["quick_xor_hash"]) for i, r in stored(store, d).items()}
            for d in drive_ids}


def assert_matches_truth(store: Any, g: GraphSandbox, drive_ids: list[str] | None = None) -> int:
    """The stored inventory equals the sandbox's truth (paths, kinds, sizes, hashes); returns the item count."""
    truth = truth_view(g.truth())
    ids = drive_ids if drive_ids is not None else list(truth)
    got = store_view(store, ids)
    n = 0
    for d in ids:
        want = truth[d]
        have = got[d]
        missing = sorted(want.keys() - have.keys())[:5]
        extra = sorted(have.keys() - want.keys())[:5]
        assert not missing and not extra, f"drive {d}: missing {missing}, extra {extra}"
        diff = [(i, have[i], want[i]) for i in want if have[i] != want[i]][:5]
        assert not diff, f"drive {d}: stored != truth: {diff}"
        n += len(want)
    return n
