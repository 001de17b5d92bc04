"""`verify` by folder listings against (a) one bare Depth-1 walk of the same tree and (b) the old one-stat-per-file.

A tree of folders (4 at the root, 5 below each, 3 levels: 124 folders) holding N small files is written to the
Nextcloud sandbox (own process) and, when M365_MIGRATE_BENCH_NEXTCLOUD names one, to the real Nextcloud as a `scale-` user. A
state database records every file as verified. Then, alternating and best of `--runs` each:
  walk     one serial Depth-1 PROPFIND walk of the tree with raw httpx (NC props, parsed): the floor;
  verify   `verify_drives` (the library call behind `m365-migrate verify`), 8 workers;
  stat     the old way: one Depth-0 PROPFIND per file, serially (`target.stat`).
Writes benchmarks/results/verify_listing.json. Goal: verify ≤ 1.2 × walk, and ≥ 5 × faster than stat.
Usage: .venv/bin/python benchmarks/verify_listing.py [--files 1000] [--runs 3] [--no-real]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from target_support import Server, best, header, run_servers, seed, state_with, tree_paths

NAME = "verify_listing"


def bare_walk(server: Server) -> int:
    """Serial Depth-1 walk of the user's tree, nothing but the requests and the parsing."""
    from migrate.backends.webdav.wire import NC_PROPS, parse_multistatus, propfind_body, walk_breadth_first

    http = server.http()
    root = f"/remote.php/dav/files/{server.user}/"
    body = propfind_body(NC_PROPS)

    def listing(folder: str) -> list[Any]:
        r = http.request("PROPFIND", server.dav(folder, folder=True), content=body, headers={"Depth": "1"})
        r.raise_for_status()
        return list(parse_multistatus(r.content, root))

    n = sum(1 for _ in walk_breadth_first("", listing))
    http.close()
    return n


def measure(server: Server, tmp: Path, files: int, runs: int, workers: int) -> dict[str, Any]:
    from migrate.engine.files.verify import verify_drives
    from migrate.store import StateStore

    folders = list(tree_paths(4, 5, 3))
    per = max(1, files // len(folders))
    t0 = time.perf_counter()
    paths = seed(server, folders, per)
    seed_s = time.perf_counter() - t0
    db = tmp / f"state-{server.kind}.db"
    state_with(db, "drive1", server.user, paths)
    target = server.target()
    store = StateStore(db)
    drives = [store.drive("drive1")]
    result: dict[str, Any] = {}

    def run_verify() -> None:
        s = verify_drives(store, target, drives, workers=workers)
        assert s.checked == len(paths) and not s.gaps, (s.checked, s.gaps[:3])
        result["folders_listed"] = s.folders_listed

    def run_stat() -> None:
        for p in paths:
            assert target.stat(server.user, p) is not None

    walks, verifies, stats = [], [], []
    for _ in range(runs):  # alternate: the machine is shared, each figure is the best of its runs
        walks.append(best(lambda: bare_walk(server), 1)[0])
        verifies.append(best(run_verify, 1)[0])
        stats.append(best(run_stat, 1)[0])
    store.close()
    target.close()
    w, v, s = min(walks), min(verifies), min(stats)
    return {"server": server.kind, "files": len(paths), "folders": len(folders), "seed_s": round(seed_s, 1),
            "workers": workers, "folders_listed": result.get("folders_listed"),
            "bare_walk_s": round(w, 3), "verify_s": round(v, 3), "stat_per_file_s": round(s, 3),
            "ratio_vs_bare_walk": round(v / w, 3), "speedup_vs_stat_per_file": round(s / v, 2),
            "runs": {"bare_walk_s": [round(x, 3) for x in walks], "verify_s": [round(x, 3) for x in verifies],
                     "stat_per_file_s": [round(x, 3) for x in stats]},
            "meets_goals": {"ratio_vs_bare_walk_le_1_2": v / w <= 1.2, "speedup_vs_stat_ge_5": s / v >= 5}}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--no-real", action="store_true")
    a = ap.parse_args()
    out = header("verify", {"ratio_vs_bare_walk": 1.2, "speedup_vs_stat_per_file": 5}, __doc__ or "")
    run_servers(NAME, out, lambda server, tmp: measure(server, tmp, a.files, a.runs, a.workers), a.no_real)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
