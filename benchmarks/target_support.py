"""Shared parts of the target benchmarks: a Nextcloud to measure against (the sandbox in its own process, or a
real server described by an ENV file), a seeded tree of folders and files, and a state database that records it.

A real server is used only on loopback and only with users this benchmark creates (prefix `scale-`), removed
at the end. Nothing here builds or installs a server.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
EXE = Path(sys.executable).with_name("m365-migrate")
# A real Nextcloud to measure as well: a file of NC_URL=, NC_ADMIN=, NC_ADMIN_APPPW=, NC_OCC= lines (how to run occ
# there), named by this variable; loopback URLs only. Without it only the sandbox is measured.
REAL_ENV = Path(os.environ.get("M365_MIGRATE_BENCH_NEXTCLOUD", "/nonexistent"))


@dataclass
class Server:
    """One Nextcloud and one user of it to write as."""

    kind: str  # "sandbox" | "real"
    url: str
    user: str
    password: str
    admin: tuple[str, str]
    cleanup: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for fn in reversed(self.cleanup):
            for attempt in range(5):  # a busy sqlite server answers "database is locked" now and then
                try:
                    fn()
                    break
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - best effort, reported
                    print(f"cleanup (attempt {attempt + 1}): {exc}", file=sys.stderr)
                    time.sleep(2)

    def target(self, **kw: Any) -> Any:
        from migrate.backends.nextcloud.target import NextcloudTarget

        return NextcloudTarget(self.url, {self.user: self.password, self.admin[0]: self.admin[1]},
                               service_account=self.admin[0], **kw)

    def http(self, **kw: Any) -> Any:
        from migrate.transport.http import make_client

        c = make_client(timeout=300, **kw)
        c.auth = (self.user, self.password)
        return c

    def dav(self, path: str = "", *, folder: bool = False) -> str:
        enc = "/".join(quote(s, safe="") for s in path.split("/") if s)
        return f"{self.url}/remote.php/dav/files/{quote(self.user, safe='')}/{enc}" + ("/" if folder and enc else "")


def sandbox(tmp: Path, user: str = "alice") -> Server:
    """The Nextcloud sandbox served by `m365-migrate sandbox nextcloud` in its own process."""
    p = subprocess.Popen([str(EXE), "sandbox", "nextcloud", "--users", user, "--data", str(tmp / "nc")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline() if p.stdout else ""
    if not line:
        raise SystemExit("the Nextcloud sandbox did not start")
    d = json.loads(line)

    def stop() -> None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()

    return Server("sandbox", d["url"], user, d["users"][user], (d["admin"]["user"], d["admin"]["app_password"]),
                  [stop])


def read_env(path: Path = REAL_ENV) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.removeprefix("export ").partition("=")
            env[k.strip()] = shlex.split(v)[0] if v.strip() else ""
    return env


def real(tag: str) -> Server | None:
    """A user `scale-<tag>` with an app password on the real Nextcloud named by M365_MIGRATE_BENCH_NEXTCLOUD (None without it)."""
    if not REAL_ENV.exists():
        return None
    env = read_env()
    url, occ = env.get("NC_URL", ""), shlex.split(env.get("NC_OCC", ""))
    admin = (env.get("NC_ADMIN", "admin"), env.get("NC_ADMIN_APPPW", ""))
    if not url.startswith(("http://127.0.0.1", "https://127.0.0.1")) or not occ or not admin[1]:
        print(f"{REAL_ENV}: no loopback NC_URL, NC_OCC or NC_ADMIN_APPPW; skipping the real server", file=sys.stderr)
        return None
    if occ[0] == "sudo":
        occ.insert(1, "-E")  # OC_PASS reaches occ through the environment, never the command line
    uid = f"scale-{tag}"
    pw = f"Scale-{time.time_ns()}-pw!"

    def run_occ(*args: str, check: bool = True) -> str:
        r = subprocess.run([*occ, *args], capture_output=True, text=True, env={**os.environ, "OC_PASS": pw},
                           timeout=300, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise SystemExit(f"occ {args[0]}: {r.stdout[-500:]} {r.stderr[-500:]}")
        return r.stdout

    run_occ("user:delete", uid, check=False)  # a leftover of an interrupted run
    run_occ("user:add", "--password-from-env", uid)
    token = run_occ("user:auth-tokens:add", "--password-from-env", uid).strip().splitlines()[-1].strip()
    s = Server("real", url.rstrip("/"), uid, token, admin)
    s.cleanup.append(lambda: run_occ("user:delete", uid))
    return s


def tree_paths(top: int, fanout: int, depth: int) -> Iterator[str]:
    """Folders of a tree `top` wide at the root, `fanout` below, `depth` levels: parents before children."""
    level = [f"t{i:02d}" for i in range(top)]
    for d in range(depth):
        yield from level
        if d + 1 < depth:
            level = [f"{p}/s{j:02d}" for p in level for j in range(fanout)]


def seed(server: Server, folders: list[str], files_per_folder: int, size: int = 1024, workers: int = 8) -> list[str]:
    """Create `folders` (MKCOL, parents first) and `files_per_folder` small files in each; returns file paths."""
    from concurrent.futures import ThreadPoolExecutor

    http = server.http()
    by_depth: dict[int, list[str]] = {}
    for f in folders:
        by_depth.setdefault(f.count("/"), []).append(f)
    with ThreadPoolExecutor(workers) as pool:
        for depth in sorted(by_depth):
            list(pool.map(lambda f: http.request("MKCOL", server.dav(f, folder=True)), by_depth[depth]))
        files = [f"{f}/file-{i:03d}.bin" for f in folders for i in range(files_per_folder)]
        body = os.urandom(size)

        def put(p: str) -> None:
            http.put(server.dav(p), content=body).raise_for_status()

        list(pool.map(put, files))
    http.close()
    return files


def state_with(db_path: Path, drive_id: str, user: str, paths: list[str], *, folders: bool = False,
               size: int = 1024) -> None:
    """A state database holding `paths` of one drive mapped to `user`: folders planned (pending), or files
    copied and verified (what `copy` leaves behind)."""
    from migrate.store import StateStore
    from migrate.store.base import utcnow

    StateStore(db_path).close()  # create and migrate
    now = utcnow()
    status, size = ("pending", 0) if folders else ("verified", size)
    c = sqlite3.connect(db_path)
    with c:
        c.execute("INSERT INTO drives (id, kind, target_user, discovered_at, updated_at) VALUES (?, 'onedrive', ?, ?, ?)",
                  (drive_id, user, now, now))
        c.executemany("INSERT INTO items (dk, drive_id, item_id, name, path, is_folder, size, status, target_user, "
                      "target_path, target_size, updated_at) "
                      "VALUES ((SELECT dk FROM drives WHERE id = ?1), ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [(drive_id, f"i{n}", p.rpartition("/")[2], p, int(folders), size, status, user, p,
                        None if folders else size, now) for n, p in enumerate(paths)])
    c.close()


def header(kind: str, goals: dict[str, float], doc: str) -> dict[str, Any]:
    """The common head of a result file: what, when, on which machine, the goals and what is measured."""
    import platform

    return {"benchmark": kind, "date": time.strftime("%Y-%m-%d"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "note": "2-core machine shared with other engineers; server and client share the cores"},
            "goals": goals, "what_is_measured": doc.split("\n\n", 1)[1].split("Writes")[0].strip()}


def run_servers(name: str, out: dict[str, Any], measure: Any, no_real: bool) -> dict[str, Any]:
    """`measure(server, tmp)` on the sandbox, then on the real Nextcloud when there is one; results written
    after each, so the sandbox figures are kept even if the real server fails."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"{name}-") as t:
        tmp = Path(t)
        sb = sandbox(tmp)
        try:
            out["sandbox"] = measure(sb, tmp)
        finally:
            sb.close()
        write(name, out)
        rs = None if no_real else real(name.split("_")[0])
        if rs is not None:
            try:
                out["real_nextcloud"] = measure(rs, tmp)
            finally:
                rs.close()
    write(name, out)
    return out


def best(fn: Any, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def write(name: str, out: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
