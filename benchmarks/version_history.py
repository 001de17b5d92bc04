"""Version history (issue 24): the real `m365-migrate copy` with `versions = "all"` against the bare transfers.

One OneDrive of `--files` files (64-256 KiB); a share of them (`--share`, 30 %) is edited 2-10 times at the
source before the scan, so it has 2-10 earlier versions. Each sandbox runs in its own process.
  copy   `m365-migrate copy` with versions = "all" (8 workers): wall time, peak RSS (psutil), Graph RU (the
         sandbox's own accounting), versions carried;
  bare   the same downloads and uploads with raw httpx, 8 files at a time, nothing else: per file the version
         list (only for the edited files), each earlier version from the listing's URL then PUT with its
         X-OC-MTime, oldest first, then the current bytes (`/content`) and PUT; no labels, no records, no checks.
Alternating, best of `--runs` each (the machine is shared). Figures: time ratio copy / bare (also without the
fixed cost of any copy: a rerun with nothing to do, which must send nothing), seconds and RU per carried version,
peak RSS against the 200 MB goal.
Writes benchmarks/results/version_history.json. Usage: .venv/bin/python benchmarks/version_history.py [--files 300]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from copy_transfer import RESULTS, Sandboxes, prepare, run_copy  # noqa: I001 - the benchmarks folder is on sys.path

NAME = "version_history"


def build(sb: Sandboxes, files: int, share: float, seed: int) -> tuple[int, int]:
    """Files in folders of 50; `share` of them edited 2-10 times. Returns (edited files, earlier versions)."""
    rng = random.Random(seed)
    edited = versions = 0
    for f in range(0, files, 50):
        sb.mutate(op="add_folder", drive_id=sb.drive_id, parent_path="root", name=f"d{f // 50:02d}")
        for i in range(f, min(files, f + 50)):
            it = sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path=f"/d{f // 50:02d}", name=f"f{i:04d}.bin",
                           size=rng.randrange(64 << 10, 256 << 10))
            if rng.random() < share:
                k = rng.randint(2, 10)
                for _ in range(k):
                    sb.mutate(op="modify", drive_id=sb.drive_id, item_id=it["id"],
                              size=rng.randrange(64 << 10, 256 << 10))
                edited += 1
                versions += k
    return edited, versions


def bare(sb: Sandboxes, user: str, tag: str, workers: int) -> dict[str, Any]:
    """The same reads and writes with raw httpx: listing, each version's bytes and PUT, the current bytes."""
    import httpx

    token = sb.admin.post("/token", json={}).json()["access_token"]
    ca = sb.g.get("ca_path") or True
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    graph = httpx.Client(base_url=sb.g["graph_url"], verify=ca, timeout=120, limits=limits,
                         headers={"Authorization": f"Bearer {token}"})
    dl = httpx.Client(verify=ca, timeout=120, limits=limits, follow_redirects=True)
    nc = httpx.Client(auth=(user, sb.nc["users"][user]), timeout=120, limits=limits)
    base = f"{sb.nc['url']}/remote.php/dav/files/{user}/{tag}"
    rows = [r for r in sb.admin.get("/truth").json()[sb.drive_id] if not r["is_folder"]]
    for folder in sorted({r["path"].rsplit("/", 1)[0] for r in rows}):
        nc.request("MKCOL", base)
        nc.request("MKCOL", base + folder)
    drive = sb.drive_id

    def one(r: dict[str, Any]) -> int:
        put = 0
        if r["versions"] > 1:
            vs = graph.get(f"/drives/{drive}/items/{r['id']}/versions").json()["value"]
            for v in reversed(vs[1:]):
                body = dl.get(v["@microsoft.graph.downloadUrl"]).content
                mtime = int(time.mktime(time.strptime(v["lastModifiedDateTime"][:19], "%Y-%m-%dT%H:%M:%S")))
                nc.put(base + r["path"], content=body, headers={"X-OC-MTime": str(mtime)}).raise_for_status()
                put += 1
        body = dl.get(graph.get(f"/drives/{drive}/items/{r['id']}/content").headers["location"]).content
        nc.put(base + r["path"], content=body, headers={"X-OC-MTime": str(int(r["mtime"]))}).raise_for_status()
        return put + 1

    ru0 = sb.admin.get("/stats").json()["ru"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        puts = sum(pool.map(one, rows))
    wall = time.perf_counter() - t0
    ru = sb.admin.get("/stats").json()["ru"] - ru0
    for c in (graph, dl, nc):
        c.close()
    return {"wall_s": round(wall, 2), "puts": puts, "ru": ru}


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--share", type=float, default=0.3)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    out: dict[str, Any] = {"benchmark": NAME, "date": time.strftime("%Y-%m-%d"),
                           "goals": {"peak_rss_mb": 200},
                           "what_is_measured": (__doc__ or "").split("\n\n", 1)[1].split("Writes")[0].strip(),
                           "files": a.files, "share_edited": a.share, "workers": a.workers}
    copies, bares = [], []
    with tempfile.TemporaryDirectory(prefix=f"{NAME}-") as t:
        tmp = Path(t)
        sb = Sandboxes(tmp / "sb", users="alice,bob")
        try:
            out["edited_files"], out["earlier_versions"] = build(sb, a.files, a.share, seed=24)
            for run in range(a.runs):
                work = tmp / f"w{run}"
                work.mkdir()
                env = prepare(work, sb, a.workers, user="alice")
                cfg = work / "m365-migrate.toml"
                cfg.write_text(cfg.read_text().replace("[transfer]\n", '[transfer]\nversions = "all"\n', 1))
                # each run writes below its own prefix, so every run carries the whole history again
                cfg.write_text(cfg.read_text().replace("[target]\n", f'[target]\nprefix = "run{run}"\n', 1))
                ru0 = sb.admin.get("/stats").json()["ru"]
                stats0 = sb.admin.get("/stats").json()["requests"]
                res = run_copy(work, env)
                stats1 = sb.admin.get("/stats").json()
                again = run_copy(work, env)  # nothing to do: the fixed cost of any copy (plan refresh, start-up)
                v = res["summary"].get("versions", {}).get("by_status", {})
                copies.append({"wall_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"], "cpu_s": res["cpu_s"],
                               "ru": stats1["ru"] - ru0, "versions_carried": v.get("carried", 0),
                               "listings": stats1["requests"].get("versions", 0) - stats0.get("versions", 0),
                               "fallbacks": stats1["requests"].get("version_content", 0)
                               - stats0.get("version_content", 0),
                               "files_verified": res["summary"].get("files_verified"),
                               "rerun_wall_s": again["wall_s"], "rerun_files": again["summary"].get("files_verified"),
                               "rerun_ru": sb.admin.get("/stats").json()["ru"] - stats1["ru"]})
                shutil.rmtree(work, ignore_errors=True)
                bares.append(bare(sb, "bob", f"bare{run}", a.workers))
        finally:
            sb.close()
    c = min(copies, key=lambda x: x["wall_s"])
    b = min(bares, key=lambda x: x["wall_s"])
    carried = c["versions_carried"]
    history_ru = 2 * c["listings"] + c["fallbacks"] + carried
    out.update({
        "copy": c, "bare": b, "runs": {"copy": copies, "bare": bares},
        "ratio_copy_vs_bare": round(c["wall_s"] / b["wall_s"], 2),
        "ratio_without_fixed_cost": round((c["wall_s"] - c["rerun_wall_s"]) / b["wall_s"], 2),
        "seconds_per_carried_version": round(c["wall_s"] / max(1, carried + (c["files_verified"] or 0)), 4),
        "ru_total_copy": c["ru"], "ru_total_bare": b["ru"],
        "ru_for_history": history_ru, "ru_per_carried_version": round(history_ru / max(1, carried), 2),
        "peak_rss_mb": max(x["peak_rss_mb"] for x in copies),
        "meets_goals": {"peak_rss_mb": max(x["peak_rss_mb"] for x in copies) < 200},
    })
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
