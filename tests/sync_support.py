"""Helpers for the sync tests: a copied migration, the source tree by path, and target-equals-source checks."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import db, nextcloud_target, setup_migration

# One OneDrive (alice), plain names, so paths at the target equal paths at the source.
SPEC = dict(seed=5, users=1, sites=0, teams=0, files_per_drive=30, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=False, versions=False, awkward_names=False)


def copied(tmp_path: Path, g_factory: Any, nc: Any, *, deletions: str = "trash", spec: dict | None = None
           ) -> tuple[Any, dict[str, str], str]:
    """A sandbox tenant copied whole to alice; returns (graph sandbox, env, drive id)."""
    g = g_factory(TenantSpec(**(spec or SPEC)))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",))
    cfg = tmp_path / "m365-migrate.toml"
    text = cfg.read_text()
    text = text.replace("[policy]\n", f'[policy]\ndeletions = "{deletions}"\n', 1) if "[policy]\n" in text \
        else text + f'\n[policy]\ndeletions = "{deletions}"\n'
    cfg.write_text(text)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    (drive,) = sorted(g.truth())
    return g, env, drive


def source_files(g: Any, drive: str) -> dict[str, dict[str, Any]]:
    """Live source files by NFC path (no leading slash)."""
    return {unicodedata.normalize("NFC", t["path"].lstrip("/")): t for t in g.truth()[drive]
            if not t["is_folder"] and t["path"] and t["path"] != "/"}


def target_files(nc: Any, user: str) -> dict[str, dict[str, Any]]:
    """Every file in the user's tree at the sandbox target, by path."""
    root = nc.state.home(user)
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            info = nc.file_info(user, rel)
            if info is not None:
                out[unicodedata.normalize("NFC", rel)] = info
    return out


def assert_target_equals_source(g: Any, nc: Any, drive: str, user: str = "alice", *,
                                extra: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Byte for byte with mtimes: every source file at its path, and nothing else but `extra`."""
    src, tgt = source_files(g, drive), target_files(nc, user)
    missing = sorted(set(src) - set(tgt))
    stale = sorted(set(tgt) - set(src) - set(extra))
    differ = [p for p in set(src) & set(tgt) if tgt[p]["sha1"] != src[p]["sha1"] or tgt[p]["size"] != src[p]["size"]
              or int(tgt[p]["mtime"]) != max(int(src[p]["mtime"]), 86401)]
    assert not (missing or stale or differ), f"missing {missing[:5]}, stale {stale[:5]}, differ {differ[:5]}"


def loose(g: Any, drive: str) -> list[dict[str, Any]]:
    """Files directly below the root, by path."""
    return sorted((t for t in source_files(g, drive).values() if t["path"].count("/") == 1), key=lambda t: t["path"])


def files_in(g: Any, drive: str, folder: str) -> list[dict[str, Any]]:
    return [t for t in g.truth()[drive] if not t["is_folder"] and t["path"].startswith(folder.rstrip("/") + "/")]


def folders(g: Any, drive: str) -> list[dict[str, Any]]:
    return [t for t in g.truth()[drive] if t["is_folder"] and t["path"] not in ("/", "")]


def sync(tmp_path: Path, env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    r = run_cli("--json", "sync", *args, cwd=tmp_path, env=env)
    assert r.returncode == code, r.stdout + r.stderr
    return json.loads(r.stdout)


def verify_ok(tmp_path: Path, env: dict[str, str]) -> None:
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def waiting(tmp_path: Path) -> dict[str, int]:
    with db(tmp_path) as s:
        out: dict[str, int] = {}
        for d in s.drives():
            for k, v in s.waiting_changes(d["id"]).items():
                out[k] = out.get(k, 0) + v
        return out
