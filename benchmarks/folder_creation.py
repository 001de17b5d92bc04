"""Creating a drive's folders: the copy engine's `create_folders` (parents before children, siblings at once)
against the old way, one MKCOL after the other, parents first (the same `target.ensure_folder` calls, serially).

A tree of 10 × 10 × 10 folders (1,110) is recorded as planned folders in a state database and created on the
Nextcloud sandbox (own process) and, when M365_MIGRATE_BENCH_NEXTCLOUD names one, on the real Nextcloud as a `scale-` user. The
two ways alternate, each in a fresh top folder and with a fresh target object, best of `--runs`. Then the
server's own ceiling: raw MKCOLs (httpx, no engine) of `--ceiling` sibling folders at 1, 4, 8 and 16 at a time,
alternating twice, whose best rate over the serial one is the most any client's parallelism gains on that server.
Writes benchmarks/results/folder_creation.json. Goal: ≥ 4 × faster than serial.
Usage: .venv/bin/python benchmarks/folder_creation.py [--runs 3] [--workers 8] [--ceiling 60] [--no-real]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from target_support import Server, header, run_servers, state_with, tree_paths

NAME = "folder_creation"


def ceiling(server: Server, count: int, rounds: int = 2) -> dict[str, Any]:
    """MKCOLs/s of `count` fresh sibling folders, raw, at each concurrency (the server's limit, not ours); the
    concurrencies alternate, `rounds` times, best of each, as the load on a shared machine comes and goes."""
    from concurrent.futures import ThreadPoolExecutor

    http = server.http()
    rates: dict[str, list[float]] = {}
    try:
        for r in range(rounds):
            for conc in (1, 4, 8, 16):
                top = f"ceiling-{r}-{conc}"
                http.request("MKCOL", server.dav(top, folder=True))
                t0 = time.perf_counter()
                with ThreadPoolExecutor(conc) as pool:
                    codes = set(pool.map(lambda i, top=top: http.request(
                        "MKCOL", server.dav(f"{top}/d{i:04d}", folder=True)).status_code, range(count)))
                assert codes == {201}, codes
                rates.setdefault(f"conc{conc}", []).append(round(count / (time.perf_counter() - t0), 1))
    finally:
        http.close()
    best = {k: max(v) for k, v in rates.items()}
    top_conc = max(best, key=lambda k: best[k])
    return {"folders_each": count, "mkcol_per_s_best": best, "mkcol_per_s_runs": rates, "best": top_conc,
            "most_speedup_any_client": round(best[top_conc] / best["conc1"], 2)}


def measure(server: Server, tmp: Path, runs: int, workers: int, ceiling_count: int) -> dict[str, Any]:
    from migrate.engine.files.pool import create_folders
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
            "meets_goal_speedup_ge_4": s / p >= 4, "server_ceiling": ceiling(server, ceiling_count)}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--ceiling", type=int, default=60)
    ap.add_argument("--no-real", action="store_true")
    a = ap.parse_args()
    out = header("folders", {"speedup": 4}, __doc__ or "")
    run_servers(NAME, out, lambda server, tmp: measure(server, tmp, a.runs, a.workers, a.ceiling), a.no_real)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
