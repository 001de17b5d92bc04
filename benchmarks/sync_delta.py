"""Delta pass cost: `sync` after 1% of a pre-staged tenant changed, against the full `copy` of it.

A sandbox tenant of ≥ 200,000 items (small files in folders of 100, across several OneDrives) is copied whole to
the Nextcloud sandbox with `m365-migrate copy`; then 1% of the items change in the issue's mix (edits, renames,
deletions, file moves, new files, whole folders moved), and `m365-migrate sync` applies them. Both commands run
as child processes, like a user runs them; Graph requests are counted by the sandbox. A second `sync` with no
change measures the fixed cost per pass. Goals (issue 12): sync ≤ 5% of the full copy's time, Graph requests
≤ 2 × the changed items. From the measured rates the final delta for 1,200 users at 1% daily change is
extrapolated (the assumption is written next to it). Figures go to benchmarks/results/sync_delta.json.

Usage: .venv/bin/python benchmarks/sync_delta.py [items] [users]
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).parent / "results"
EXE = Path(sys.executable).with_name("m365-migrate")


def cli(work: Path, env: dict[str, str], *args: str) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    r = subprocess.run([str(EXE), "-q", "--json", *args], cwd=work, env=env, capture_output=True, text=True,
                       check=False)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"{args[0]} failed ({r.returncode}): {r.stderr[-3000:]}")
    return (json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}), wall


def graph_requests(g: Any) -> int:
    return sum(g.stats()["requests"].values())


def populate(g: Any, drives: list[str], items: int, size: int) -> int:
    """Folders of 100 files of `size` bytes, spread over the drives; returns the items created."""
    made, f = 0, 0
    per_drive = items // len(drives) + 1
    for d in drives:
        n = 0
        while n < per_drive:
            g.mutate.add_folder(d, "/", f"folder {f:05d}")
            made += 1
            for i in range(100):
                g.mutate.add_file(d, f"/folder {f:05d}", f"file {i:03d}.txt", size)
                made += 1
                n += 1
            f += 1
    return made


def change(g: Any, drives: list[str], target: int, rng: random.Random) -> dict[str, int]:
    """About `target` changed items in the issue's mix (of 15 changes: 4 edits, 3 renames, 3 deletions, 1 move,
    3 new files, and 1 folder of files moved); returns the count of each kind."""
    truth = g.truth()
    files = [(d, t) for d in drives for t in truth[d] if not t["is_folder"]]
    folders = [(d, t) for d in drives for t in truth[d] if t["is_folder"] and t["path"] not in ("", "/")]
    rng.shuffle(files)
    rng.shuffle(folders)
    counts = {"edit": 0, "rename": 0, "delete": 0, "move": 0, "new": 0, "folder_move": 0, "in_moved_folders": 0}
    moved_folders = set()
    folder_items = max(1, target // 15)  # ~1/15 of the changed items are a moved folder's contents
    while counts["in_moved_folders"] < folder_items and folders:
        d, fo = folders.pop()
        g.mutate.rename(d, fo["id"], fo["path"].strip("/") + " (moved)")
        moved_folders.add(fo["path"])
        counts["folder_move"] += 1
        counts["in_moved_folders"] += sum(1 for t in truth[d] if t["path"].startswith(fo["path"] + "/"))
    rest = target - counts["in_moved_folders"] - counts["folder_move"]
    plan = [("edit", 4), ("rename", 3), ("delete", 3), ("move", 1), ("new", 3)]
    pool = [(d, t) for d, t in files if t["path"].rsplit("/", 1)[0] not in moved_folders]
    for kind, share in plan:
        for _ in range(rest * share // 14):
            if kind == "new":
                d, t = pool[-1]
                g.mutate.add_file(d, t["path"].rsplit("/", 1)[0], f"new {counts['new']:05d}.txt", 900)
            else:
                d, t = pool.pop()
                if kind == "edit":
                    g.mutate.modify(d, t["id"], size=t["size"] + 17)
                elif kind == "rename":
                    g.mutate.rename(d, t["id"], "renamed " + t["path"].rsplit("/", 1)[1])
                elif kind == "delete":
                    g.mutate.delete(d, t["id"])
                else:
                    dest = next(fo for dd, fo in folders if dd == d)
                    g.mutate.move(d, t["id"], dest["path"], name=f"moved {counts['move']:05d}.txt")
            counts[kind] += 1
    return counts


def main(items: int = 200_000, users: int = 8, size: int = 1024, workers: int = 8) -> dict[str, Any]:
    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    from migrate.sandbox.nextcloud import NextcloudSandbox
    from migrate.store import StateStore
    from tests.copy_support import nextcloud_target, write_users
    from tests.inventory_support import write_config

    spec = TenantSpec(seed=3, users=users, sites=0, teams=0, files_per_drive=0, max_depth=1, awkward_names=False,
                      shares=False, versions=False, onenote=False, no_mysite_users=0, malware_files=0)
    targets = [f"u{i:02d}" for i in range(users)]
    out: dict[str, Any] = {"benchmark": "sync_delta", "date": time.strftime("%Y-%m-%d"),
                           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "note": "2-core machine shared with other engineers' test runs; the "
                                               "sandboxes and the CLI compete for the same cores"}}
    with GraphSandbox(spec) as g, NextcloudSandbox(users=targets) as nc, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        drives = sorted(g.truth())
        t0 = time.perf_counter()
        made = populate(g, drives, items, size)
        out["tenant"] = {"drives": len(drives), "items": made + len(drives), "file_size": size,
                         "generation_s": round(time.perf_counter() - t0, 1)}
        env = write_config(work, g, workers=workers)
        cfg = work / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + "\n[target]\n" + nextcloud_target(work, nc) +
                       '\n[policy]\ndeletions = "trash"\n')
        cli(work, env, "discover")
        with StateStore(work / "state" / "migration.db") as s:
            upns = sorted(d["owner_upn"] for d in s.drives())
        write_users(work, dict(zip(upns, targets, strict=True)))
        r0 = graph_requests(g)
        scan, scan_wall = cli(work, env, "scan", "--workers", "4")
        r1 = graph_requests(g)
        copy, copy_wall = cli(work, env, "copy")
        r2 = graph_requests(g)
        full_s = scan_wall + copy_wall
        out["full"] = {"scan_wall_s": round(scan_wall, 1), "copy_wall_s": round(copy_wall, 1),
                       "wall_s": round(full_s, 1), "files_verified": copy.get("files_verified"),
                       "graph_requests": r2 - r0, "graph_requests_scan": r1 - r0, "graph_requests_copy": r2 - r1}
        rng = random.Random(12)
        target_changes = out["tenant"]["items"] // 100
        counts = change(g, drives, target_changes, rng)
        changed = sum(v for k, v in counts.items() if k != "folder_move") + counts["folder_move"]
        r3 = graph_requests(g)
        sync, sync_wall = cli(work, env, "sync")
        r4 = graph_requests(g)
        idle, idle_wall = cli(work, env, "sync")
        r5 = graph_requests(g)
        out["changes"] = {**counts, "changed_items": changed, "share_of_items": round(changed / out["tenant"]["items"], 4)}
        out["sync"] = {"wall_s": round(sync_wall, 1), "seconds": round(sync.get("seconds", 0), 1),
                       "graph_requests": r4 - r3, "counts": sync.get("counts"), "applied": sync.get("applied"),
                       "conflicts": len(sync.get("conflicts") or []), "failed": len(sync.get("failed") or [])}
        out["sync_without_changes"] = {"wall_s": round(idle_wall, 1), "seconds": round(idle.get("seconds", 0), 2),
                                       "graph_requests": r5 - r4,
                                       "changes_found": sum((idle.get("counts") or {}).values())}
    out["ratios"] = {"sync_time_vs_full": round(sync_wall / full_s, 4),
                     "sync_time_vs_copy": round(sync_wall / copy_wall, 4),
                     "graph_requests_per_changed_item": round(out["sync"]["graph_requests"] / changed, 3)}
    out["goals"] = {"sync_time_vs_full": 0.05, "graph_requests_per_changed_item": 2.0}
    out["meets_goals"] = {"sync_time_vs_full": out["ratios"]["sync_time_vs_full"] <= 0.05,
                          "graph_requests_per_changed_item": out["ratios"]["graph_requests_per_changed_item"] <= 2.0}
    # Extrapolation: fixed cost per drive from the pass without changes, cost per change from the difference.
    # (engine seconds, as each command reports them: process start-up, ~1 s, is paid once per pass, not per drive)
    fixed_per_drive = (idle.get("seconds") or 0.0) / len(drives)
    per_change = max(0.0, (sync.get("seconds") or 0.0) - (idle.get("seconds") or 0.0)) / changed
    req_per_change = max(0, out["sync"]["graph_requests"] - out["sync_without_changes"]["graph_requests"]) / changed
    req_per_drive = out["sync_without_changes"]["graph_requests"] / len(drives)
    assumed_items_per_user = 5000
    daily = int(1200 * assumed_items_per_user * 0.01)
    out["extrapolation_1200_users"] = {
        "assumption": f"{assumed_items_per_user} items per OneDrive (1,200 users = {1200 * assumed_items_per_user} "
                      "items), 1% of them changed since the last pass (one day), the same change mix and the same "
                      "machine; Graph throttling at this volume (≈ 1 request per changed file) is not reached",
        "changed_items": daily,
        "fixed_s_per_drive": round(fixed_per_drive, 4), "s_per_changed_item": round(per_change, 5),
        "estimated_sync_s": round(1200 * fixed_per_drive + daily * per_change + idle_wall - (idle.get("seconds") or 0.0),
                                  0),
        "estimated_graph_requests": int(1200 * req_per_drive + daily * req_per_change),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sync_delta.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps(main(int(a[0]) if a else 200_000, int(a[1]) if len(a) > 1 else 8), indent=2))
