"""Copy throughput, memory and resume cost: the real `m365-migrate copy` between the two sandboxes.

Each sandbox runs in its own process (`m365-migrate sandbox graph|nextcloud`), the copy is a CLI subprocess
whose RSS is sampled with psutil. Scenarios (design §8):
  small   10,000 files of 8 KiB (added with the admin `mutate` route before timing) → files/s;
  large   one 2 GiB file → MB/s, against a plain streamed GET→PUT pipe (httpx) on the same servers → ratio ≥ 0.7;
  rss     peak RSS of every copy process → < 200 MB;
  resume  a few large files, `kill -9` mid-way, rerun: bytes the second run read from the source (the Graph
          sandbox's bytes_sent) and wrote to sockets/files (psutil write_chars) vs the bytes still missing.
Writes benchmarks/results/copy_transfer.json. Usage: .venv/bin/python benchmarks/copy_transfer.py [--small N] [--large-mb M]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
EXE = Path(sys.executable).with_name("m365-migrate")
EMPTY_TENANT = {"seed": 3, "users": 1, "sites": 0, "teams": 0, "files_per_drive": 0, "no_mysite_users": 0,
                "malware_files": 0, "onenote": False, "shares": False, "versions": False, "awkward_names": False}
MiB = 1024 * 1024
UNPACED = "ru_per_minute = 1000000\nru_per_day = 1000000000"


class Sandboxes:
    """A Graph tenant (one empty OneDrive) and a Nextcloud target (user alice), each in its own process."""

    def __init__(self, tmp: Path, users: str = "alice", graph_args: tuple[str, ...] = ()) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        spec = tmp / "tenant.json"
        spec.write_text(json.dumps(EMPTY_TENANT))
        self.procs: list[subprocess.Popen[str]] = []
        self.g = self._start([str(EXE), "sandbox", "graph", "--tenant", str(spec), *graph_args])
        self.nc = self._start([str(EXE), "sandbox", "nextcloud", "--users", users, "--data", str(tmp / "nc")])
        import httpx

        self.admin = httpx.Client(base_url=self.g["admin_url"], timeout=60)
        self.drive_id = next(iter(self.admin.get("/truth").json()))

    def _start(self, cmd: list[str]) -> dict[str, Any]:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        line = p.stdout.readline() if p.stdout else ""
        if not line:
            raise SystemExit(f"{cmd[2]} sandbox did not start")
        return json.loads(line)

    def mutate(self, **body: Any) -> dict[str, Any]:
        r = self.admin.post("/mutate", json=body)
        r.raise_for_status()
        return r.json()

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) each sandbox process has used so far."""
        import psutil

        return {name: sum(psutil.Process(p.pid).cpu_times()[:2]) for name, p in zip(("graph", "nextcloud"), self.procs, strict=True)}

    def graph_bytes_sent(self) -> int:
        return int(self.admin.get("/stats").json().get("bytes_sent", 0))

    def close(self) -> None:
        self.admin.close()
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def prepare(work: Path, sb: Sandboxes, workers: int, user: str = "alice", source: str = UNPACED) -> dict[str, str]:
    """Config, credentials and mapping (the OneDrive → `user`) for `work`; discover + scan done. Returns the
    environment. `source`: extra [source] lines (by default the budget lifted: these scenarios measure the
    engine and the target, not Microsoft's budget, which benchmarks/graph_budget.py measures)."""
    from tests.inventory_support import write_config

    g = SimpleNamespace(**sb.g, ca_path=sb.g["authority_ca_path"])
    env = {**os.environ, **write_config(work, g, workers=workers)}
    cfg = work / "m365-migrate.toml"
    cfg.write_text(cfg.read_text().replace("[source]\n", "[source]\n" + source.strip() + "\n", 1))
    for step in ("discover", "scan"):
        r = subprocess.run([str(EXE), "-q", step], cwd=work, env=env, capture_output=True, text=True)
        if r.returncode not in (0, 3):
            raise SystemExit(f"{step} failed: {r.stderr[-2000:]}")
    add_nextcloud_target(work, sb.nc, user)
    return env


def add_nextcloud_target(work: Path, nc: dict[str, Any], user: str = "alice") -> None:
    """Add the Nextcloud sandbox `nc` as the target of `work` (scanned already), its OneDrive mapped to `user`."""
    creds = work / "pw.csv"
    creds.write_text(f"user,app_password\n{user},{nc['users'][user]}\nadmin,{nc['admin']['app_password']}\n")
    os.chmod(creds, 0o600)
    cfg = work / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{nc["url"]}"\n'
                   f'credentials = "{creds}"\nservice_account = "admin"\n')
    db = sqlite3.connect(work / "state" / "migration.db")
    upn = db.execute("SELECT owner_upn FROM drives WHERE kind = 'onedrive'").fetchone()[0]
    db.close()
    m = work / "mappings"
    m.mkdir(exist_ok=True)
    (m / "users.csv").write_text(f"source_upn,target_user,batch\n{upn},{user},b1\n")
    (m / "sites.csv").write_text("source,target,batch\n")
    (m / "groups.csv").write_text("source_group,target_group\n")


def run_copy(work: Path, env: dict[str, str], *, kill_when: Any = None, poll: float = 0.02) -> dict[str, Any]:
    """`m365-migrate --json copy` with its peak RSS and bytes written (sockets and files); kill -9 when asked."""
    import psutil

    t0 = time.perf_counter()
    p = subprocess.Popen([str(EXE), "-q", "--json", "copy"], cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(p.pid)
    peak = wchar = 0
    cpu = 0.0
    killed = False
    while p.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
            wchar = max(wchar, proc.io_counters().write_chars)
            cpu = sum(proc.cpu_times()[:2])
        except psutil.Error:
            pass
        if kill_when is not None and not killed and kill_when():
            p.send_signal(signal.SIGKILL)
            killed = True
        time.sleep(poll)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    summary = json.loads(out) if out.strip().startswith("{") else {}
    if not killed and p.returncode not in (0, 3):
        raise SystemExit(f"copy failed ({p.returncode}): {err[-3000:]}")
    return {"returncode": p.returncode, "killed": killed, "wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1e6, 1),
            "write_chars": wchar, "cpu_s": round(cpu, 2), "summary": summary}


def bulk_limit(sb: Sandboxes, user: str, count: int, size: int, tag: str, batch: int, conc: int) -> float:
    """Files/s of the server's bulk upload alone: `count` files of `size` bytes already encoded in memory (the
    same bodies our client sends), in folders of 100 made beforehand, POSTed `conc` at a time, `batch` a request."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from migrate.backends.nextcloud.bulk import encode
    from migrate.models import SmallFile

    base = f"{sb.nc['url']}/remote.php/dav/files/{user}"
    http = httpx.Client(timeout=600, auth=(user, sb.nc["users"][user]), limits=httpx.Limits(max_connections=32))
    http.request("MKCOL", f"{base}/{tag}/")
    folders = (count + 99) // 100
    for f in range(folders):
        http.request("MKCOL", f"{base}/{tag}/d{f:03d}/")
    data = os.urandom(size)
    files = [SmallFile(f"{tag}/d{n // 100:03d}/f{n % 100:03d}.bin", data, 1_700_000_000.0, None) for n in range(count)]
    bodies = [encode(files[i:i + batch]) for i in range(0, count, batch)]

    def send(body: tuple[bytes, str]) -> None:
        r = http.post(f"{sb.nc['url']}/remote.php/dav/bulk", content=body[0],
                      headers={"Content-Type": f"multipart/related; boundary={body[1]}"})
        r.raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        list(pool.map(send, bodies))
    secs = time.perf_counter() - t0
    http.close()
    return count / secs


def source_limit(sb: Sandboxes, conc: int, group: int = 20) -> float:
    """Files/s of the source side alone: the bare reads a copy must make of the same files (download URLs in
    `$batch`es of `group`, then one GET per URL), raw httpx, `conc` groups at a time, bytes dropped."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    ids = [r["id"] for r in sb.admin.get("/truth").json()[sb.drive_id] if not r["is_folder"]]
    token = sb.admin.post("/token", json={}).json()["access_token"]
    ca = sb.g.get("ca_path") or True
    limits = httpx.Limits(max_connections=conc * 2, max_keepalive_connections=conc * 2)
    graph = httpx.Client(base_url=sb.g["graph_url"], verify=ca, timeout=120, limits=limits,
                         headers={"Authorization": f"Bearer {token}"})
    dl = httpx.Client(verify=ca, timeout=120, limits=limits)
    groups = [ids[i:i + group] for i in range(0, len(ids), group)]
    drive = sb.drive_id

    def read(g: list[str]) -> int:
        steps = [{"id": str(n), "method": "GET",
                  "url": f"/drives/{drive}/items/{i}?$select=id,@microsoft.graph.downloadUrl"} for n, i in enumerate(g)]
        r = graph.post("/$batch", json={"requests": steps})
        r.raise_for_status()
        n = 0
        for a in r.json()["responses"]:
            got = dl.get(a["body"]["@microsoft.graph.downloadUrl"])
            got.raise_for_status()
            n += 1
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        n = sum(pool.map(read, groups))
    secs = time.perf_counter() - t0
    graph.close()
    dl.close()
    assert n == len(ids), (n, len(ids))
    return n / secs


def _cpu_per_file(sb: Sandboxes, before: dict[str, float], files: int, **own: float) -> dict[str, float]:
    """Milliseconds of CPU per file in each process since `before` (and the given client seconds)."""
    after = sb.cpu_s()
    out = {k: round(1000 * (after[k] - before[k]) / files, 3) for k in after}
    out.update({k: round(1000 * v / files, 3) for k, v in own.items()})
    return out


def _own_cpu() -> float:
    import psutil

    return sum(psutil.Process().cpu_times()[:2])


def small_files(tmp: Path, count: int, size: int, workers: int, reps: int = 2) -> dict[str, Any]:
    """`copy` of `count` small files against the two limits around it, each measured in the same run: the
    server's own bulk-upload rate (raw POSTs from memory at the best batch size and concurrency of a grid) and
    the source's own rate (the bare `$batch` + GET reads of the same files at the best concurrency). The copy
    and both limits alternate; best of `reps` copies. CPU per file of every process says where time goes."""
    users = ",".join(["limit", *(f"copy{k}" for k in range(reps))])
    sb = Sandboxes(tmp / "sb-small", users=users)
    try:
        per = 100
        t0 = time.perf_counter()
        for f in range((count + per - 1) // per):
            sb.mutate(op="add_folder", drive_id=sb.drive_id, parent_path="root", name=f"d{f:03d}")
            for i in range(min(per, count - f * per)):
                sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path=f"/d{f:03d}", name=f"f{i:03d}.bin",
                          size=size)
        gen_s = time.perf_counter() - t0
        grid = [(b, c) for b in (50, 100, 200) for c in (2, 4, 8)]
        source_grid = [2, 4, 8, 16]
        limits: dict[str, float] = {}
        sources: dict[str, float] = {}
        cpu: dict[str, dict[str, float]] = {}
        copies = []
        for k in range(reps):
            work = tmp / f"small-{k}"
            env = prepare(work, sb, workers, user=f"copy{k}")
            before = sb.cpu_s()
            copies.append(run_copy(work, env))
            cpu[f"copy_{k}"] = _cpu_per_file(sb, before, count, client=copies[-1]["cpu_s"])
            for b, c in grid[k::reps]:  # the grid's halves between the copies, then the best once more
                limits[f"batch{b}_conc{c}"] = round(bulk_limit(sb, "limit", count, size, f"l{b}-{c}", b, c), 1)
            for c in source_grid[k::reps]:
                before, mine = sb.cpu_s(), _own_cpu()
                sources[f"conc{c}"] = round(source_limit(sb, c), 1)
                cpu[f"source_conc{c}"] = _cpu_per_file(sb, before, count, bare_client=_own_cpu() - mine)
        # the same command once more with nothing left to copy: its fixed cost (start-up, plan refresh, listing)
        idle = run_copy(tmp / f"small-{reps - 1}", env)
        best_cfg = max(limits, key=lambda key: limits[key])
        b, c = (int(x) for x in best_cfg.removeprefix("batch").split("_conc"))
        before, mine = sb.cpu_s(), _own_cpu()
        limits[best_cfg + "_again"] = round(bulk_limit(sb, "limit", count, size, f"l{b}-{c}-again", b, c), 1)
        cpu["bulk_best_again"] = _cpu_per_file(sb, before, count, bare_client=_own_cpu() - mine)
        best_src = max(sources, key=lambda key: sources[key])
        before, mine = sb.cpu_s(), _own_cpu()
        sources[best_src + "_again"] = round(source_limit(sb, int(best_src.removeprefix("conc"))), 1)
        cpu["source_best_again"] = _cpu_per_file(sb, before, count, bare_client=_own_cpu() - mine)
    finally:
        sb.close()
    res = min(copies, key=lambda r: r["summary"].get("seconds") or r["wall_s"])
    limit, source = max(limits.values()), max(sources.values())
    s = res["summary"]
    out = {"files": count, "file_size": size, "generation_s": round(gen_s, 1), "workers": workers,
            "files_verified": s.get("files_verified"), "failed": len(s.get("failed") or []),
            "copy_seconds": round(s.get("seconds", 0), 2), "wall_s": res["wall_s"],
            "files_per_s": round(count / s["seconds"], 1) if s.get("seconds") else None,
            "files_per_s_wall": round(count / res["wall_s"], 1), "peak_rss_mb": max(r["peak_rss_mb"] for r in copies),
            "runs_copy_s": [round(r["summary"].get("seconds") or r["wall_s"], 2) for r in copies],
            "server_bulk_limit_files_per_s": limit, "server_bulk_limit_best": best_cfg, "server_bulk_grid": limits,
            "source_limit_files_per_s": source, "source_limit_best": best_src, "source_grid": sources,
            "limit_hit": "source" if source < limit else "target",
            # both bare workloads at once on the same two cores: neither can have the whole machine
            "both_limits_on_one_machine_files_per_s": round(1 / (1 / source + 1 / limit), 1),
            "cpu_ms_per_file": cpu, "idle_copy": {"wall_s": idle["wall_s"], "cpu_s": idle["cpu_s"]}}
    # CPU per file, whatever the load: the copy's three processes (client less its fixed cost) against the two
    # bare workloads' four
    client = min((r["cpu_s"] - idle["cpu_s"]) for r in copies) * 1000 / count
    servers = min(cpu[k]["graph"] + cpu[k]["nextcloud"] for k in cpu if k.startswith("copy_"))
    bare = cpu["source_best_again"]["graph"] + cpu["source_best_again"]["bare_client"] + \
        cpu["bulk_best_again"]["nextcloud"] + cpu["bulk_best_again"]["bare_client"]
    out["cpu_ms_per_file_summary"] = {"copy_client_less_fixed_cost": round(client, 3), "copy_servers": round(servers, 3),
                                      "copy_total": round(client + servers, 3), "bare_source_plus_bare_target": round(bare, 3),
                                      "ratio_copy_vs_bare": round((client + servers) / bare, 2)}
    fps = out["files_per_s"]
    out["ratio_vs_server_limit"] = round(fps / limit, 3) if fps else None
    out["ratio_vs_min_limit"] = round(fps / min(source, limit), 3) if fps else None
    out["ratio_vs_both_limits_on_one_machine"] = round(fps / out["both_limits_on_one_machine_files_per_s"], 3) \
        if fps else None
    return out


def baseline_pipe(sb: Sandboxes, item_id: str, size: int) -> float:
    """Seconds for a plain streamed GET (redirect followed) → PUT of the same file to the same Nextcloud."""
    import httpx

    token = sb.admin.post("/token", json={"lifetime": 7200}).json()["access_token"]
    src = httpx.Client(timeout=600, follow_redirects=True, headers={"Authorization": f"Bearer {token}"})
    dst = httpx.Client(timeout=600, auth=("alice", sb.nc["users"]["alice"]))
    t0 = time.perf_counter()
    with src.stream("GET", f"{sb.g['graph_url']}/drives/{sb.drive_id}/items/{item_id}/content") as r:
        r.raise_for_status()
        put = dst.put(f"{sb.nc['url']}/remote.php/dav/files/alice/baseline.bin", content=r.iter_bytes(MiB),
                      headers={"Content-Length": str(size)})
    secs = time.perf_counter() - t0
    put.raise_for_status()
    src.close()
    dst.close()
    return secs


def baseline_chunked_pipe(sb: Sandboxes, item_id: str, size: int, chunk: int = 32 * MiB) -> tuple[float, float]:
    """The same file through Nextcloud's chunked upload with nothing else: the download streamed straight into
    serial chunk PUTs (no hashing, no spooling, no retries), then the final MOVE. Returns (total s, MOVE s)."""
    import httpx

    token = sb.admin.post("/token", json={"lifetime": 7200}).json()["access_token"]
    src = httpx.Client(timeout=600, follow_redirects=True, headers={"Authorization": f"Bearer {token}"})
    dst = httpx.Client(timeout=600, auth=("alice", sb.nc["users"]["alice"]))
    up = f"{sb.nc['url']}/remote.php/dav/uploads/alice/bench-{time.time_ns()}"
    dest = {"Destination": f"{sb.nc['url']}/remote.php/dav/files/alice/baseline-chunked.bin",
            "OC-Total-Length": str(size)}
    t0 = time.perf_counter()
    dst.request("MKCOL", up, headers=dest).raise_for_status()
    with src.stream("GET", f"{sb.g['graph_url']}/drives/{sb.drive_id}/items/{item_id}/content") as r:
        r.raise_for_status()
        pieces = r.iter_bytes(MiB)
        for n in range(1, (size + chunk - 1) // chunk + 1):
            length = min(chunk, size - (n - 1) * chunk)

            def body(length: int = length) -> Any:
                left = length
                while left > 0:
                    piece = next(pieces)
                    if len(piece) > left:  # iter_bytes(MiB) pieces divide 32 MiB chunks exactly; guard anyway
                        raise SystemExit("chunk boundary inside a piece")
                    left -= len(piece)
                    yield piece

            dst.put(f"{up}/{n:05d}", content=body(), headers={**dest, "Content-Length": str(length)}).raise_for_status()
    t_move = time.perf_counter()
    dst.request("MOVE", f"{up}/.file", headers={**dest, "Overwrite": "T"}).raise_for_status()
    end = time.perf_counter()
    src.close()
    dst.close()
    return end - t0, end - t_move


def large_file(tmp: Path, size_mb: int, workers: int, reps: int = 3) -> dict[str, Any]:
    sb = Sandboxes(tmp / "sb-large")
    size = size_mb * MiB
    try:
        item = sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path="root", name="big.bin", size=size)
        runs, bases, chunked = [], [], []
        for rep in range(reps):  # alternate copy and baselines: the machine is shared, take the best of each
            work = tmp / f"large-{rep}"
            env = prepare(work, sb, workers)
            runs.append(run_copy(work, env))
            bases.append(baseline_pipe(sb, item["id"], size))
            chunked.append(baseline_chunked_pipe(sb, item["id"], size))
    finally:
        sb.close()
    res = min(runs, key=lambda r: r["summary"].get("seconds") or r["wall_s"])
    base_s = min(bases)
    chunked_s, move_s = min(chunked)
    s = res["summary"]
    copy_s = s.get("seconds") or res["wall_s"]
    return {"bytes": size, "copy_seconds": round(copy_s, 2), "wall_s": res["wall_s"],
            "copy_mb_per_s": round(size / 1e6 / copy_s, 1), "copy_mb_per_s_wall": round(size / 1e6 / res["wall_s"], 1),
            "baseline_seconds": round(base_s, 2), "baseline_mb_per_s": round(size / 1e6 / base_s, 1),
            "ratio": round(base_s / copy_s, 3), "ratio_wall": round(base_s / res["wall_s"], 3),
            "chunked_pipe_seconds": round(chunked_s, 2), "chunked_pipe_move_seconds": round(move_s, 2),
            "ratio_vs_chunked_pipe": round(chunked_s / copy_s, 3),
            "runs_copy_s": [round(r["summary"].get("seconds") or r["wall_s"], 2) for r in runs],
            "runs_baseline_s": [round(b, 2) for b in bases],
            "runs_chunked_pipe_s": [[round(a, 2), round(b, 2)] for a, b in chunked],
            "files_verified": s.get("files_verified"), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def resume(tmp: Path, files: int, size_mb: int, workers: int, kill_fraction: float) -> dict[str, Any]:
    sb = Sandboxes(tmp / "sb-resume")
    size = size_mb * MiB
    try:
        for i in range(files):
            sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path="root", name=f"large-{i}.bin", size=size)
        work = tmp / "resume"
        env = prepare(work, sb, workers)
        total = files * size
        first = run_copy(work, env, kill_when=lambda: sb.graph_bytes_sent() >= kill_fraction * total, poll=0.05)
        db = sqlite3.connect(work / "state" / "migration.db")
        rows = db.execute("SELECT status, size FROM items WHERE is_folder = 0").fetchall()
        db.close()
        done = sum(s for st, s in rows if st == "verified")
        in_flight = sum(1 for st, _ in rows if st in ("transferring", "uploaded"))
        read_before = sb.graph_bytes_sent()
        second = run_copy(work, env)
        read_second = sb.graph_bytes_sent() - read_before
    finally:
        sb.close()
    missing = total - done
    return {"files": files, "file_bytes": size, "workers": workers, "killed_at_source_bytes": read_before,
            "verified_before_kill": sum(1 for st, _ in rows if st == "verified"), "in_flight_at_kill": in_flight,
            "bytes_missing_after_kill": missing, "second_run_source_bytes": read_second,
            "second_run_write_chars": second["write_chars"],
            "resent_ratio": round(read_second / missing, 3) if missing else None,
            "second_run_verified": second["summary"].get("files_verified"),
            "second_run_resumed_upload_bytes": second["summary"].get("resumed_bytes"),
            "second_run_resumed": {"verified": second["summary"].get("resumed_verified"),
                                   "resent": second["summary"].get("resumed_resent")},
            "peak_rss_mb": max(first["peak_rss_mb"], second["peak_rss_mb"])}


def resume_small(tmp: Path, count: int, size: int, workers: int, kill_fraction: float, reps: int = 2
                 ) -> dict[str, Any]:
    """Small files in folders of 100: a fresh copy, then (into another user) a copy killed with -9 once
    `kill_fraction` of the files are verified and its rerun; alternating, best of `reps`. The rerun's cost is
    compared with the fresh copy's time for the files still missing (its time × missing / all), both without the
    fixed cost of any copy (start, plan refresh, credential checks: a copy with nothing to do)."""
    users = ",".join(f"{w}{k}" for k in range(reps) for w in ("fresh", "killed"))
    sb = Sandboxes(tmp / "sb-resume-small", users=users)
    runs = []
    try:
        per = 100
        for f in range((count + per - 1) // per):
            sb.mutate(op="add_folder", drive_id=sb.drive_id, parent_path="root", name=f"d{f:03d}")
            for i in range(min(per, count - f * per)):
                sb.mutate(op="add_file", drive_id=sb.drive_id, parent_path=f"/d{f:03d}", name=f"f{i:03d}.bin",
                          size=size)
        for k in range(reps):
            fresh_env = prepare(tmp / f"rs-fresh-{k}", sb, workers, user=f"fresh{k}")
            fresh = run_copy(tmp / f"rs-fresh-{k}", fresh_env)
            idle = run_copy(tmp / f"rs-fresh-{k}", fresh_env)  # nothing left to do: the fixed cost of a copy
            work = tmp / f"rs-killed-{k}"
            env = prepare(work, sb, workers, user=f"killed{k}")
            dbp = work / "state" / "migration.db"

            def verified(dbp: Path = dbp) -> int:
                try:
                    c = sqlite3.connect(f"file:{dbp}?mode=ro", uri=True, timeout=1)
                    n = c.execute("SELECT count(*) FROM items WHERE status = 'verified' AND is_folder = 0").fetchone()[0]
                    c.close()
                    return int(n)
                except sqlite3.Error:
                    return 0

            first = run_copy(work, env, kill_when=lambda: verified() >= kill_fraction * count, poll=0.05)
            c = sqlite3.connect(dbp)
            rows = dict(c.execute("SELECT status, count(*) FROM items WHERE is_folder = 0 GROUP BY status").fetchall())
            c.close()
            second = run_copy(work, env)
            missing = count - rows.get("verified", 0)
            fixed = idle["wall_s"]
            expected = max(fresh["wall_s"] - fixed, 0.01) * missing / count
            runs.append({"fresh_wall_s": fresh["wall_s"], "idle_copy_wall_s": fixed, "killed_after_s": first["wall_s"],
                         "status_at_kill": rows, "in_flight_at_kill": rows.get("transferring", 0) + rows.get("uploaded", 0),
                         "missing_after_kill": missing, "rerun_wall_s": second["wall_s"],
                         "rerun_resumed": {"verified": second["summary"].get("resumed_verified"),
                                           "resent": second["summary"].get("resumed_resent")},
                         "rerun_files_verified": second["summary"].get("files_verified"),
                         "ratio_vs_remaining_work": round((second["wall_s"] - fixed) / expected, 3),
                         "ratio_vs_remaining_work_with_fixed_cost": round(
                             second["wall_s"] / (fresh["wall_s"] * missing / count), 3),
                         "peak_rss_mb": max(fresh["peak_rss_mb"], first["peak_rss_mb"], second["peak_rss_mb"])})
    finally:
        sb.close()
    best_run = min(runs, key=lambda r: r["ratio_vs_remaining_work"])
    return {"files": count, "file_size": size, "workers": workers, "kill_fraction": kill_fraction, **best_run,
            "runs": runs, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def judge(out: dict[str, Any]) -> None:
    """Peak RSS over all scenarios and the goals (design §8) met or not, from the figures in `out`."""
    rss = [out[k]["peak_rss_mb"] for k in ("small", "large", "resume", "resume_small") if k in out]
    out["peak_rss_mb"] = max(rss) if rss else None
    large = out.get("large", {})
    out["meets_goals"] = {
        # against one streamed PUT: chunked upload makes the server write every byte twice (chunks, then the
        # assembled file), which bounds this ratio on a machine whose disk is the limit
        "large_ratio": large.get("ratio", 0) >= 0.7,
        # against the same protocol with nothing else (no hashing, checks, retries, state): our own overhead
        "large_ratio_vs_chunked_pipe": large.get("ratio_vs_chunked_pipe", 0) >= 0.7,
        "peak_rss_mb": bool(rss) and max(rss) < 200,
        "resume_only_missing_bytes": (out.get("resume", {}).get("resent_ratio") or 9) <= 1.0,
        "small_ge_0_9_server_limit": (out.get("small", {}).get("ratio_vs_server_limit") or 0) >= 0.9,
        "resume_small_le_1_1_remaining_work": (out.get("resume_small", {}).get("ratio_vs_remaining_work") or 9) <= 1.1,
    }


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--small-size", type=int, default=8192)
    ap.add_argument("--large-mb", type=int, default=2048)
    ap.add_argument("--resume-files", type=int, default=6)
    ap.add_argument("--resume-mb", type=int, default=128)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--resume-small", type=int, default=3000)
    ap.add_argument("--only", choices=("small", "large", "resume", "resume_small"), action="append")
    a = ap.parse_args()
    only = set(a.only or ("small", "large", "resume", "resume_small"))
    out: dict[str, Any] = {
        "benchmark": "copy", "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "note": "2-core machine shared with other helpers running test suites at the same time; "
                            "both sandboxes and the copy compete for the same 2 cores"},
        "goals": {"large_ratio": 0.7, "peak_rss_mb": 200, "resent_ratio": 1.0},
        "what_is_measured": {
            "small": "files added one by one with the Graph sandbox's admin mutate route (exactly N files of the "
                     "given size in folders of 100), then one `copy` (plan refresh + bulk upload + verify); "
                     "files_per_s uses the copy's own seconds (from the start of the command's accounting); "
                     "alternating with the two bare limits: the target's (raw bulk POSTs of the same bodies from "
                     "memory, grid of batch size x concurrency) and the source's (raw httpx `$batch` of 20 "
                     "download URLs then one GET each, of the same files, at 2-16 groups at once); CPU ms per "
                     "file of each process (psutil) for the copy and for each bare workload",
            "large": "one file via `copy` (chunked upload, 32 MiB chunks, 3 in flight, checksum on the final "
                     "MOVE, read-back check) vs (a) a streamed httpx GET (redirect followed) piped into one PUT: "
                     "ratio = its seconds / copy seconds; (b) the same GET streamed into serial chunk PUTs and the "
                     "final MOVE, nothing else: ratio_vs_chunked_pipe; chunked_pipe_move_seconds is the server "
                     "assembling the chunks into the file, a second write of every byte that chunked upload "
                     "always costs on Nextcloud's local storage and one PUT never does; best of 3 alternating runs",
            "rss": "psutil RSS of the copy process sampled every 20-50 ms",
            "resume": "kill -9 once the Graph sandbox has sent half the bytes; bytes_missing = sizes of the files "
                      "not verified after the kill; second_run_source_bytes = Graph bytes_sent during the rerun "
                      "(below bytes_missing when interrupted chunked uploads resume after the chunks the server "
                      "kept); write_chars = bytes the rerun wrote to sockets and files (psutil)",
        },
    }
    prev = RESULTS / "copy_transfer.json"
    if prev.exists() and a.only:
        out = {**json.loads(prev.read_text()), **out}
    with tempfile.TemporaryDirectory(prefix="copy-bench-") as t:
        tmp = Path(t)
        if "small" in only:
            out["small"] = small_files(tmp, a.small, a.small_size, a.workers)
        if "large" in only:
            out["large"] = large_file(tmp, a.large_mb, a.workers)
        if "resume" in only:
            out["resume"] = resume(tmp, a.resume_files, a.resume_mb, 2, 0.5)
        if "resume_small" in only:
            out["resume_small"] = resume_small(tmp, a.resume_small, a.small_size, a.workers, 0.4)
    previous = RESULTS / "copy_transfer.json"
    old = json.loads(previous.read_text()) if previous.exists() else {}
    if "small" in out and "profile" in old.get("small", {}):  # py-spy findings, recorded by hand, carried over
        out["small"]["profile"] = old["small"]["profile"]
    if a.only and previous.exists():  # scenarios not run this time keep their last figures (and their date)
        for key in ("small", "large", "resume", "resume_small"):
            if key not in only and key in old:
                out[key] = {**old[key], "measured_on": old[key].get("measured_on", old.get("date"))}
    judge(out)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "copy_transfer.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
