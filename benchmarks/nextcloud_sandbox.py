"""Throughput of the Nextcloud sandbox (full, plain) and Apache mod_dav: small-PUT req/s, large PUT and GET MB/s.

Writes benchmarks/results/nextcloud_sandbox.json. All traffic is loopback; Apache is skipped when not installed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"
SMALL_COUNT = 1000
SMALL_SIZE = 4096
WORKERS = 8
LARGE_MB = 256
BLOCK = 1024 * 1024


def small_puts(base: str, auth: tuple[str, str]) -> dict:
    """SMALL_COUNT PUTs of SMALL_SIZE bytes from WORKERS threads, one keep-alive session per thread."""
    folder = base + f"bench-{uuid.uuid4().hex[:8]}/"
    setup = requests.Session()
    setup.auth = auth
    assert setup.request("MKCOL", folder).status_code == 201
    body = os.urandom(SMALL_SIZE)
    sessions = []
    for _ in range(WORKERS):
        s = requests.Session()
        s.auth = auth
        sessions.append(s)

    def run(i: int) -> int:
        return sessions[i % WORKERS].put(f"{folder}f{i:05d}.bin", data=body).status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        codes = list(pool.map(run, range(SMALL_COUNT)))
    elapsed = time.perf_counter() - t0
    assert set(codes) == {201}, set(codes)
    setup.delete(folder)
    return {"files": SMALL_COUNT, "bytes_each": SMALL_SIZE, "workers": WORKERS, "seconds": round(elapsed, 3),
            "requests_per_s": round(SMALL_COUNT / elapsed, 1)}


class _Body:
    """A sized, readable body of random blocks: requests sends Content-Length and streams read() results."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(BLOCK)

    def __len__(self) -> int:
        return self.left

    def read(self, n: int = -1) -> bytes:
        n = BLOCK if n is None or n < 0 else min(n, BLOCK)
        n = min(n, self.left)
        self.left -= n
        return self.block[:n]


def large_file(base: str, auth: tuple[str, str]) -> dict:
    """One streamed PUT of LARGE_MB MiB with Content-Length, then a streamed GET of it (nothing held in memory)."""
    url = base + f"large-{uuid.uuid4().hex[:8]}.bin"
    s = requests.Session()
    s.auth = auth
    t0 = time.perf_counter()
    r = s.put(url, data=_Body(LARGE_MB * BLOCK))
    elapsed = time.perf_counter() - t0
    assert r.status_code == 201, r.status_code
    put = {"mib": LARGE_MB, "seconds": round(elapsed, 3), "mb_per_s": round(LARGE_MB * BLOCK / 1e6 / elapsed, 1)}
    t0 = time.perf_counter()
    got = 0
    with s.get(url, stream=True) as r:
        for chunk in r.iter_content(BLOCK):
            got += len(chunk)
    elapsed = time.perf_counter() - t0
    assert got == LARGE_MB * BLOCK
    s.delete(url)
    get = {"mib": LARGE_MB, "seconds": round(elapsed, 3), "mb_per_s": round(got / 1e6 / elapsed, 1)}
    return {"put": put, "get": get}


def measure(base: str, auth: tuple[str, str]) -> dict:
    large = large_file(base, auth)
    return {"small_put": small_puts(base, auth), "large_put": large["put"], "large_get": large["get"]}


def main() -> dict:
    from migrate.sandbox.nextcloud import NextcloudSandbox
    from migrate.sandbox.nextcloud.apache import APACHE, ApacheDav

    targets: dict[str, dict] = {}
    with NextcloudSandbox(users=["alice"]) as nc:
        targets["nextcloud_sandbox"] = measure(nc.dav_url("alice"), ("alice", nc.app_passwords["alice"]))
    with NextcloudSandbox(users=["alice"], plain_webdav=True) as nc:
        targets["plain_webdav_sandbox"] = measure(nc.dav_url("alice"), ("alice", nc.app_passwords["alice"]))
    if APACHE.exists():
        with ApacheDav() as ap:
            targets["apache_mod_dav"] = measure(ap.url, ap.auth)
    else:
        targets["apache_mod_dav"] = {"skipped": f"{APACHE} not installed"}
    result = {
        "benchmark": "nextcloud_sandbox",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "client": "requests, loopback, keep-alive",
        "targets": targets,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nextcloud_sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
