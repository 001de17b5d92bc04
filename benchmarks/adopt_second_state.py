"""Nothing read twice: a copy with a second state database against a target that already holds every file.

One OneDrive of `--files` small files and one `--large-mb` file is copied to the Nextcloud sandbox with state
database A; then a fresh state database B of the same tenant (discover, scan) runs `copy` again. Measured for both
copies: wall time, Graph requests and resource units (the sandbox's books), target requests by method, and the
second copy's peak RSS. Goal: the second copy makes no Graph download (0 RU for content), no upload, and records
every file as verified; memory stays flat (the large file is hashed while it is read back).
Writes benchmarks/results/adopt_second_state.json.
Usage: .venv/bin/python benchmarks/adopt_second_state.py [--files 1000] [--large-mb 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
EXE = Path(sys.executable).with_name("m365-migrate")


def _copy(cwd: Path, env: dict[str, str], g: Any, nc: Any) -> dict[str, Any]:
    """`copy --json` under /usr/bin/time; the Graph books and target requests it caused."""
    books, mark, t0 = g.stats(), len(nc.requests), time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", str(EXE), "--json", "copy"], cwd=cwd,
                       env={**os.environ, **env}, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    out, after = json.loads(p.stdout), g.stats()
    methods: dict[str, int] = {}
    for method, _path, _status in nc.requests[mark:]:
        methods[method] = methods.get(method, 0) + 1
    graph = {k: after["requests"].get(k, 0) - books["requests"].get(k, 0) for k in after["requests"]}
    return {"seconds": round(seconds, 2), "files_sent": out["files_verified"], "bytes_sent": out["bytes_sent"],
            "graph_requests": {k: v for k, v in graph.items() if v}, "graph_ru": after["ru"] - books["ru"],
            "target_requests": methods, "peak_rss_mb": round(int(p.stderr.strip().splitlines()[-1]) / 1024, 1),
            "adopted": {k: v for k, v in (out.get("adopted") or {}).items() if k != "conflicts"}}


def main(files: int, large_mb: int) -> dict[str, Any]:
    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    from migrate.sandbox.nextcloud import NextcloudSandbox
    from tests.conftest import run_cli
    from tests.copy_support import SPEC, nextcloud_target, setup_migration

    tmp = Path(tempfile.mkdtemp(prefix="adopt-bench-"))
    g = GraphSandbox(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": files, "max_depth": 3})).start()
    try:
        with NextcloudSandbox(users=["alice", "bob"]) as nc:
            drive = sorted(g.truth())[0]
            if large_mb:
                g.mutate.add_file(drive, "/", "large.bin", large_mb * 1024 * 1024)
            env, _ = setup_migration(tmp, g, target=nextcloud_target(tmp, nc), targets=("alice",))
            first = _copy(tmp, env, g, nc)
            fresh = {**env, "M365_MIGRATE_STATE": str(tmp / "second" / "migration.db")}
            for step in ("discover", "scan"):
                assert run_cli(step, cwd=tmp, env=fresh).returncode in (0, 3)
            second = _copy(tmp, fresh, g, nc)
    finally:
        g.stop()
    a = second["adopted"]
    return {"benchmark": "adopt_second_state", "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "load": os.getloadavg()[0], "files": first["files_sent"], "bytes": first["bytes_sent"],
            "first_copy": first, "second_copy": second,
            "goals": {"no_graph_download": not second["graph_requests"].get("download")
                      and not second["graph_requests"].get("content"),
                      "no_upload": not any(second["target_requests"].get(m) for m in ("PUT", "POST", "MOVE")),
                      "every_file_recorded": a.get("files") == first["files_sent"]}}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--large-mb", type=int, default=200)
    args = ap.parse_args()
    result = main(args.files, args.large_mb)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "adopt_second_state.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
