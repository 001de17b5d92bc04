"""Peak RSS against the number of items: does any command's memory grow with the tenant?

(a) `scan` of one OneDrive of 10k, 100k and 1M items (Graph sandbox, TLS, generated in the sandbox's process),
    then `status`, `plan` (into a Nextcloud sandbox, mapped to one user) and `verify` on the resulting state,
    each as a child process whose peak RSS is its own VmHWM (see inventory_scan.py); `verify` has nothing copied
    to check at these sizes (copying 1M files is out of reach here), so it measures its walk of the state only;
(b) what a plan refresh (so every `copy`) keeps of the target's tree, profiled with tracemalloc at the same
    sizes: the old in-memory dict of RemoteEntry against the temp table that replaced it;
(c) `copy` of one OneDrive with a realistic mix of file sizes (1,026 files / 184 MB and 4,026 files / 676 MB,
    sizes from a fixed log-normal draw between 8 KiB and 6 MiB, median ~56 KB), 8 workers, Graph sandbox →
    Nextcloud sandbox, each sandbox in its own process: the copy child's own VmHWM (highest of 2 copies), and
    that of the same command run again with nothing left to copy (start-up, imports, plan refresh); also the
    1,026 files at 16 workers, and 60 large files (1-48 MiB: read whole, one streamed PUT, chunked).
    `--copy-code DIR --copy-label before` runs the copy child on another checkout (the figures before a change).
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


KiB, MiB = 1024, 1024 * 1024
MIXES = {"1026_files_184mb": (1026, 184_000_000), "4026_files_676mb": (4026, 676_000_000)}


def mixed_sizes(n: int, total: int, seed: int = 26) -> list[int]:
    """`n` file sizes summing to about `total`: log-normal (median ~48 KiB before scaling), kept within
    8 KiB–6 MiB, scaled until the sum fits. Deterministic: the same list on every machine."""
    import math
    import random

    r = random.Random(seed)
    raw = [min(max(r.lognormvariate(math.log(48 * KiB), 1.5), 8 * KiB), 6 * MiB) for _ in range(n)]
    for _ in range(20):
        f = total / sum(raw)
        raw = [min(max(x * f, 8 * KiB), 6 * MiB) for x in raw]
    return [int(x) for x in raw]


# With --profile-copy: where the copy's memory is when its RSS is highest (tracemalloc snapshot taken at each new
# RSS high, smaps_rollup, RSS after imports), written to BENCH_PROFILE_FILE at exit. Slows the copy down.
_PROFILE = (
    "import atexit, os, threading, time, tracemalloc\n"
    "tracemalloc.start(12)\n"
    "_best = {'rss': 0, 'snap': None, 'smaps': '', 't': 0.0}\n"
    "def _rss():\n"
    "    with open('/proc/self/status') as f:\n"
    "        return next(int(ln.split()[1]) for ln in f if ln.startswith('VmRSS:'))\n"
    "def _watch():\n"
    "    t0 = time.time()\n"
    "    while True:\n"
    "        r = _rss()\n"
    "        if r > _best['rss'] + 2048:\n"
    "            _best.update(rss=r, snap=tracemalloc.take_snapshot(), t=time.time() - t0,\n"
    "                         smaps=open('/proc/self/smaps_rollup').read())\n"
    "        time.sleep(0.1)\n"
    "threading.Thread(target=_watch, daemon=True).start()\n"
    "def _dump():\n"
    "    s = _best['snap']\n"
    "    with open(os.environ['BENCH_PROFILE_FILE'], 'w') as out:\n"
    "        out.write(f\"rss_kb {_best['rss']} at {_best['t']:.1f}s; traced now/peak {tracemalloc.get_traced_memory()}\\n\")\n"
    "        out.write(_best['smaps'])\n"
    "        if s is not None:\n"
    "            out.write(f\"traced at that point: {sum(x.size for x in s.statistics('filename')) / 1e6:.1f} MB\\n\")\n"
    "            for st in s.statistics('traceback')[:25]:\n"
    "                out.write(f\"{st.size / 1e6:.2f} MB {st.count} blocks\\n\" + '\\n'.join(st.traceback.format()[-12:]) + '\\n\\n')\n"
    "atexit.register(_dump)\n"
)


# With BENCH_TIMELINE set: RSS every 50 ms with where the main thread is (its innermost frame in migrate/).
_TIMELINE = (
    "import atexit, os, sys, threading, time\n"
    "_tl = []\n"
    "_main = threading.main_thread().ident\n"
    "def _where():\n"
    "    f = sys._current_frames().get(_main)\n"
    "    while f is not None and '/migrate/' not in f.f_code.co_filename:\n"
    "        f = f.f_back\n"
    "    return f'{f.f_code.co_filename.split(\"/migrate/\")[-1]}:{f.f_lineno} {f.f_code.co_name}' if f else '-'\n"
    "def _watch():\n"
    "    t0 = time.time()\n"
    "    while True:\n"
    "        with open('/proc/self/status') as f:\n"
    "            r = next(int(ln.split()[1]) for ln in f if ln.startswith('VmRSS:'))\n"
    "        sp = sys.modules.get('migrate.transport.spool')\n"
    "        used = sp.FILE_MEMORY.used / 1048576 if sp else 0\n"
    "        _tl.append(f'{time.time() - t0:6.2f} {r / 1024:6.1f} {used:5.1f} {threading.active_count():3d} {_where()}')\n"
    "        time.sleep(0.05)\n"
    "threading.Thread(target=_watch, daemon=True).start()\n"
    "atexit.register(lambda: open(os.environ['BENCH_TIMELINE'], 'w').write('\\n'.join(_tl) + '\\n'))\n"
)


def copy_mix(tmp: Path, n: int, total: int, workers: int = 8, profile: bool = False, code: str | None = None,
             sizes: list[int] | None = None) -> dict[str, Any]:
    """One `copy` of a drive of `n` files of mixed sizes (mixed_sizes), in folders of 100, as a child process whose
    peak is its own VmHWM (inventory_scan._MEASURED_CLI); the sandboxes run in processes of their own. `code`: a
    source tree whose `migrate` the copy child runs instead (an earlier checkout: the figures before a change)."""
    import subprocess

    from copy_transfer import Sandboxes, prepare
    from inventory_scan import _MEASURED_CLI

    sizes = sizes or mixed_sizes(n, total)
    n = len(sizes)
    sb = Sandboxes(tmp / "sb")
    try:
        for f in range((n + 99) // 100):
            sb.mutate(op="add_folder", drive_id=sb.drive_id, parent_path="root", name=f"d{f:03d}")
        for i, size in enumerate(sizes):
            sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path=f"/d{i // 100:03d}", name=f"f{i:04d}.bin",
                      size=size)
        work = tmp / "work"
        env = prepare(work, sb, workers)
        if code:
            env["PYTHONPATH"] = code
        peak_file = work / "peak_rss_kb"
        t0 = time.perf_counter()
        cli = (_PROFILE if profile else _TIMELINE if os.environ.get("BENCH_TIMELINE") else "") + _MEASURED_CLI
        r = subprocess.run([sys.executable, "-c", cli, "-q", "--json", "copy"], cwd=work,
                           env={**env, "BENCH_PEAK_FILE": str(peak_file),
                                "BENCH_PROFILE_FILE": str(Path(tempfile.gettempdir()) / f"copy_profile_{n}.txt")},
                           capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 3):
            raise SystemExit(f"copy failed ({r.returncode}): {r.stderr[-2000:]}")
        summary = json.loads(r.stdout)
        peak = int(peak_file.read_text()) / 1024
        # the same process image with nothing to do but import and start: what the product costs before any file
        idle = subprocess.run([sys.executable, "-c", cli, "-q", "--json", "copy"], cwd=work,
                              env={**env, "BENCH_PEAK_FILE": str(peak_file),
                                   "BENCH_TIMELINE": os.environ.get("BENCH_TIMELINE", "") + ".idle",
                                   "BENCH_PROFILE_FILE": str(Path(tempfile.gettempdir()) / f"copy_profile_{n}_idle.txt")},
                              capture_output=True, text=True, check=False)
        idle_peak = int(peak_file.read_text()) / 1024 if idle.returncode in (0, 3) else None
    finally:
        sb.close()
    sizes.sort()
    return {"files": n, "bytes": sum(sizes), "workers": workers,
            "sizes": {"min": sizes[0], "median": sizes[n // 2], "p90": sizes[int(n * 0.9)], "max": sizes[-1],
                      "over_1_mib": sum(1 for s in sizes if s > MiB), "over_4_mib": sum(1 for s in sizes if s > 4 * MiB)},
            "files_verified": summary.get("files_verified"), "failed": len(summary.get("failed") or []),
            "copy_seconds": round(summary.get("seconds") or 0, 1), "wall_s": round(wall, 1),
            "peak_rss_mb": round(peak, 1),
            "idle_copy_peak_rss_mb": round(idle_peak, 1) if idle_peak is not None else None}


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
    ap.add_argument("--only-copy", action="store_true", help="(c) only; the other figures are kept from the last run")
    ap.add_argument("--copy-code", default=None, help="run the copy child on this source tree (figures 'before')")
    ap.add_argument("--copy-label", default="after", help="where (c) goes in the results: before | after")
    ap.add_argument("--copy-reps", type=int, default=2, help="copies per mix (the highest peak is kept)")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    scan_sizes = [int(x) for x in (a.scan_sizes or a.sizes).split(",")]
    prev = json.loads((RESULTS / "memory_curve.json").read_text()) if (RESULTS / "memory_curve.json").exists() else {}
    out: dict[str, Any] = {
        **prev,
        "benchmark": "memory", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "goal_peak_rss_mb": 150,
        "what_is_measured": __doc__.split("\n\n", 1)[1].split("Writes")[0].strip(),
    }
    if not a.only_copy:
        out["plan_target_index"] = {str(n): target_index(n) for n in sizes}
    if not a.no_scan and not a.only_copy:
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
            _judge(out)
            _write(out)  # after every size: the 1M point takes long
    copies = out.setdefault("copy_mixes", {}).setdefault(a.copy_label, {})
    runs = {**{k: (n, total, 8, None) for k, (n, total) in MIXES.items()},
            # the same 1,026 files with twice the workers: what the workers add
            "1026_files_184mb_16_workers": (1026, 184_000_000, 16, None),
            # large files only: whole reads (1-10 MiB), one streamed PUT (10-32 MiB), chunked (> 32 MiB)
            "60_files_1_to_48mib": (60, 0, 8, large_sizes(60))}
    for name, (n, total, workers, fixed) in runs.items():
        reps = []
        for _ in range(a.copy_reps):
            with tempfile.TemporaryDirectory(prefix="mem-copy-") as t:
                reps.append(copy_mix(Path(t), n, total, workers, code=a.copy_code, sizes=fixed))
        best = max(reps, key=lambda r: r["peak_rss_mb"])
        copies[name] = {**best, "runs_peak_rss_mb": [r["peak_rss_mb"] for r in reps],
                        "runs_copy_seconds": [r["copy_seconds"] for r in reps], "code": a.copy_code or "this tree"}
        print(json.dumps({name: copies[name]}), file=sys.stderr)
        _judge(out)
        _write(out)
    return out


def large_sizes(n: int, seed: int = 27) -> list[int]:
    """`n` sizes log-uniform between 1 MiB and 48 MiB (deterministic)."""
    import math
    import random

    r = random.Random(seed)
    return [int(math.exp(r.uniform(math.log(MiB), math.log(48 * MiB)))) for _ in range(n)]


def _judge(out: dict[str, Any]) -> None:
    peaks = [v for c in out.get("scan_and_status", {}).values() for k, v in c.items() if k.endswith("peak_rss_mb")]
    peaks += [c["peak_rss_mb"] for c in out.get("copy_mixes", {}).get("after", {}).values()]
    out["max_peak_rss_mb"] = max(peaks)
    out["meets_goal"] = max(peaks) < 150


def _write(out: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_curve.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
