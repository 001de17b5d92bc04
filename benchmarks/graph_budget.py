"""Within Microsoft's budget: a real `m365-migrate` journey (discover, scan, plan, copy) against a Graph sandbox
that enforces a per-app resource-unit budget, as SharePoint does.

One OneDrive of `--files` small files in folders of 6 (what real OneDrives look like) plus a few large files; the
Graph sandbox charges the published costs and answers 429 over `--budget` RU per minute; the tool is told the same
budget and spends its default share of it. Measured:
  RU per file      all Graph traffic of discover, scan and copy (the sandbox's books) ÷ files migrated (goal ≤ 1.05)
  throughput       files/s of the copy against the budget bound (the RU/s we pace to ÷ RU per file; goal ≥ 95%)
  429 share        throttled answers ÷ requests (goal ≤ 1%)
  estimate         `plan`'s duration against the copy's measured one (goal within ±15%)
  peak RSS         of the copy process
Writes benchmarks/results/graph_budget.json. Usage: .venv/bin/python benchmarks/graph_budget.py [--files N] [--budget RU]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.copy_transfer import EXE, RESULTS, MiB, Sandboxes, prepare, run_copy  # noqa: E402

PER_FOLDER = 6
SHARE = 0.8   # the tool's default [source] ru_share


def _journey_books(sb: Sandboxes) -> dict[str, Any]:
    return sb.admin.get("/stats").json()


def run(files: int, large: int, large_mb: int, budget: int, workers: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="m365-budget-"))
    sb = Sandboxes(tmp / "sb", graph_args=("--ru-per-minute", str(budget), "--ru-per-day", str(budget * 1440)))
    try:
        t0 = time.perf_counter()
        for f in range((files + PER_FOLDER - 1) // PER_FOLDER):
            sb.mutate(op="add_folder", drive_id=sb.drive_id, parent_path="root", name=f"p{f:04d}")
            for i in range(min(PER_FOLDER, files - f * PER_FOLDER)):
                sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path=f"/p{f:04d}", name=f"doc{i}.bin",
                          size=8 * 1024 + (f * 7 + i * 131) % 40_000)
        for k in range(large):
            sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path="root", name=f"video{k}.bin",
                      size=large_mb * MiB)
        gen_s = time.perf_counter() - t0
        sb.admin.delete("/stats")   # the books start with the journey (generating the tenant is not Graph traffic)
        work = tmp / "work"
        source = f"ru_per_minute = {budget}\nru_per_day = {budget * 1440}\nru_share = {SHARE}"
        env = prepare(work, sb, workers, source=source)          # discover + scan, under the budget
        r = subprocess.run([str(EXE), "-q", "--json", "plan"], cwd=work, env=env, capture_output=True, text=True)
        if r.returncode not in (0, 3):
            raise SystemExit(f"plan failed: {r.stderr[-2000:]}")
        estimate = json.loads(r.stdout)["estimate"]
        before = _journey_books(sb)
        copy = run_copy(work, env)
        after = _journey_books(sb)
        idle = run_copy(work, env)   # nothing left to send: the fixed cost of any copy (start, plan refresh)
    finally:
        sb.close()
    migrated = copy["summary"].get("files_verified", 0)
    copy_ru = after["ru"] - before["ru"]
    copy_requests = after["total_requests"] - before["total_requests"]
    throttled = after.get("throttled", 0)
    rate = budget * SHARE / 60
    ru_per_file_copy = copy_ru / migrated if migrated else 0.0
    bound_files_per_s = rate / ru_per_file_copy if ru_per_file_copy else 0.0
    files_per_s = migrated / copy["wall_s"] if copy["wall_s"] else 0.0
    moving_s = max(0.001, copy["wall_s"] - idle["wall_s"])
    out = {
        "what": "discover + scan + plan + copy of one OneDrive under a per-app RU budget enforced by the Graph sandbox",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "tenant": {"files": files + large, "small_files": files, "files_per_folder": PER_FOLDER,
                   "large_files": large, "large_mb": large_mb, "generated_s": round(gen_s, 1)},
        "budget": {"sandbox_ru_per_minute": budget, "tool_share": SHARE, "tool_ru_per_s": round(rate, 2)},
        "journey": {"ru": after["ru"], "requests": after["total_requests"], "ru_by_route": after.get("ru_by_route"),
                    "requests_by_route": after.get("requests"), "throttled": throttled,
                    "ru_per_file": round(after["ru"] / migrated, 4) if migrated else None},
        "copy": {"files": migrated, "wall_s": copy["wall_s"], "ru": copy_ru, "requests": copy_requests,
                 "ru_per_file": round(ru_per_file_copy, 4), "files_per_s": round(files_per_s, 2),
                 "budget_bound_files_per_s": round(bound_files_per_s, 2),
                 "of_budget_bound": round(files_per_s / bound_files_per_s, 3) if bound_files_per_s else None,
                 "fixed_cost_s": idle["wall_s"],
                 "of_budget_bound_while_moving": round(migrated / moving_s / bound_files_per_s, 3)
                 if bound_files_per_s else None,
                 "throttled_share": round((throttled - before.get("throttled", 0)) / copy_requests, 4)
                 if copy_requests else 0.0, "peak_rss_mb": copy["peak_rss_mb"],
                 "tool_books": copy["summary"].get("graph")},
        "estimate": {"plan_seconds": estimate["seconds"], "basis": estimate["basis"],
                     "plan_ru": estimate["resource_units"], "measured_seconds": copy["wall_s"],
                     "error": round(estimate["seconds"] / copy["wall_s"] - 1, 3) if copy["wall_s"] else None},
    }
    out["goals"] = {
        "ru_per_file_le_1_05": bool(out["journey"]["ru_per_file"] and out["journey"]["ru_per_file"] <= 1.05),
        "throughput_ge_95pct_of_bound": bool(out["copy"]["of_budget_bound"] and out["copy"]["of_budget_bound"] >= 0.95),
        "throughput_ge_95pct_of_bound_while_moving": bool(out["copy"]["of_budget_bound_while_moving"]
                                                          and out["copy"]["of_budget_bound_while_moving"] >= 0.95),
        "throttled_le_1pct": out["copy"]["throttled_share"] <= 0.01,
        "estimate_within_15pct": bool(out["estimate"]["error"] is not None and abs(out["estimate"]["error"]) <= 0.15),
        "peak_rss_lt_150mb": copy["peak_rss_mb"] < 150,
    }
    return out


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--large", type=int, default=3)
    ap.add_argument("--large-mb", type=int, default=32)
    ap.add_argument("--budget", type=int, default=1200, help="the app's RU per minute (sandbox and tool)")
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    out = run(a.files, a.large, a.large_mb, a.budget, a.workers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "graph_budget.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("journey", "copy", "estimate", "goals")}, indent=2))
    return out


if __name__ == "__main__":
    main()
