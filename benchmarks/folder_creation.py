"""Creating a drive's folders: the copy engine's `create_folders` (parents before children, siblings at once)
against the old way, one MKCOL after the other, parents first (the same `target.ensure_folder` calls, serially).

A tree of 10 × 10 × 10 folders (1,110) is recorded as planned folders in a state database and created on the
Nextcloud sandbox (own process) and, when M365_MIGRATE_BENCH_NEXTCLOUD names one, on the real Nextcloud as a `scale-` user. The
two ways alternate, each in a fresh top folder and with a fresh target object, best of `--runs`.
Writes benchmarks/results/folder_creation.json. Goal: ≥ 4 × faster than serial.
Usage: .venv/bin/python benchmarks/folder_creation.py [--runs 3] [--workers 8] [--no-real]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from target_support import Server, header, run_servers, state_with, tree_paths

NAME = "folder_creation"


def measure(server: Server, tmp: Path, runs: int, workers: int) -> dict[str, Any]:
    from migrate.engine.pool import create_folders
    from migrate.store import StateStore

    tree = list(tree_paths(10, 10, 3))
    serial, parallel = [], []
    for k in range(runs):
        target = server.target()
        t0 = time.perf_counter()
        for p in tree:  # parents first: tree_paths yields level by level
            target.ensure_folder(server.user, f"old-{k}/{p}")
        serial.append(time.perf_counter() - t0)
        target.close()

        drive = f"run-{k}"
        planned_db = tmp / f"state-{server.kind}-{k}.db"
        state_with(planned_db, drive, server.user, [f"new-{k}/{p}" for p in tree], folders=True)
        store = StateStore(planned_db)
        target = server.target()
        t0 = time.perf_counter()
        n = create_folders(store, target, drive, workers=workers)
        parallel.append(time.perf_counter() - t0)
        assert n == len(tree), n
        target.close()
        store.close()
    s, p = min(serial), min(parallel)
    return {"server": server.kind, "folders": len(tree), "workers": workers,
            "serial_s": round(s, 3), "parallel_s": round(p, 3), "speedup": round(s / p, 2),
            "serial_ms_per_folder": round(1000 * s / len(tree), 2),
            "runs": {"serial_s": [round(x, 3) for x in serial], "parallel_s": [round(x, 3) for x in parallel]},
            "meets_goal_speedup_ge_4": s / p >= 4}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--no-real", action="store_true")
    a = ap.parse_args()
    out = header("folders", {"speedup": 4}, __doc__ or "")
    run_servers(NAME, out, lambda server, tmp: measure(server, tmp, a.runs, a.workers), a.no_real)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
