"""Peak RSS against the number of items: does any command's memory grow with the tenant?

(a) `scan` of one OneDrive of 10k, 100k and 1M items (Graph sandbox, TLS, generated in the sandbox's process),
    then `status`, `plan` (into a Nextcloud sandbox, mapped to one user) and `verify` on the resulting state,
    each as a child process whose peak RSS is its own VmHWM (see inventory_scan.py); `verify` has nothing copied
    to check at these sizes (copying 1M files is out of reach here), so it measures its walk of the state only;
(b) what a plan refresh (so every `copy`) keeps of the target's tree, profiled with tracemalloc at the same
    sizes: the old in-memory dict of RemoteEntry against the temp table that replaced it.
Writes benchmarks/results/memory_curve.json. Goal: every peak < 150 MB, flat in the item count.
Usage: .venv/bin/python benchmarks/memory_curve.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import unicodedata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"


def entries(n: int) -> Any:
    from migrate.models import RemoteEntry

    for i in range(n):
        yield RemoteEntry(path=f"Documents/Projects {i // 10000:03d}/Folder {i // 100:05d}/report-{i:07d}.docx",
                          is_folder=False, size=12345 + i, mtime=1.7e9 + i, etag=f"{i:032x}",
                          checksums=(f"SHA1:{i:040x}",))


def target_index(n: int) -> dict[str, float]:
    """tracemalloc peak (MB) of holding a target walk of `n` entries: old dict vs the EntryTable."""
    from migrate.store import StateStore

    def nfc(p: str) -> str:
        return unicodedata.normalize("NFC", p)

    tracemalloc.start()
    old = {nfc(e.path): e for e in entries(n)}
    assert len(old) == n
    _, peak_dict = tracemalloc.get_traced_memory()
    del old
    tracemalloc.stop()
    with tempfile.TemporaryDirectory() as t:
        store = StateStore(Path(t) / "s.db")
        tracemalloc.start()
        with store.entry_table() as table:
            table.fill(entries(n), key=lambda e: nfc(e.path))
            assert len(table) == n and table.get(nfc(next(entries(1)).path)) is not None
            _, peak_table = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.close()
    return {"dict_peak_mb": round(peak_dict / 1e6, 1), "temp_table_peak_mb": round(peak_table / 1e6, 1)}


class _Target:
    """A Nextcloud sandbox (its own process) as the target of `work`, with the drive mapped to user alice."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        import subprocess

        from copy_transfer import add_nextcloud_target

        exe = Path(sys.executable).with_name("m365-migrate")
        self.proc = subprocess.Popen([str(exe), "sandbox", "nextcloud", "--users", "alice", "--data",
                                      str(work / "nc")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        add_nextcloud_target(work, json.loads(self.proc.stdout.readline()))  # type: ignore[union-attr]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--scan-sizes", default=None, help="sizes for (a), default --sizes")
    ap.add_argument("--no-scan", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    scan_sizes = [int(x) for x in (a.scan_sizes or a.sizes).split(",")]
    out: dict[str, Any] = {
        "benchmark": "memory", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal_peak_rss_mb": 150,
        "what_is_measured": __doc__.split("\n\n", 1)[1].split("Writes")[0].strip(),
        "plan_target_index": {str(n): target_index(n) for n in sizes},
    }
    if not a.no_scan:
        import inventory_scan

        curve = {}
        for n in scan_sizes:
            r = inventory_scan.main(n, one_drive=True, out=None, bare=False,
                                    extra_commands=("status", "plan", "verify"), setup=_Target)
            curve[str(n)] = {"items": r["scan"]["items"], "scan_peak_rss_mb": r["scan"]["peak_rss_mb"],
                             "scan_seconds": r["scan"]["seconds"], "state_db_mb": r["scan"]["state_db_mb"],
                             **{f"{k}_peak_rss_mb": v["peak_rss_mb"] for k, v in r["other_commands"].items()},
                             "other_commands": r["other_commands"]}
            print(json.dumps({n: curve[str(n)]}), file=sys.stderr)
            out["scan_and_status"] = curve
            peaks = [v for c in curve.values() for k, v in c.items() if k.endswith("peak_rss_mb")]
            out["max_peak_rss_mb"] = max(peaks)
            out["meets_goal"] = max(peaks) < 150
            _write(out)  # after every size: the 1M point takes long
    _write(out)
    return out


def _write(out: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_curve.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
