"""Graph sandbox throughput: small JSON requests per second and streamed download MB/s (client in other processes).

Run: .venv/bin/python benchmarks/graph_sandbox.py [--seconds 5] [--clients 2] [--file-mb 1024]
Writes benchmarks/results/graph_sandbox.json. Targets (issue 3): >= 2,000 req/s, >= 300 MB/s on 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _json_client(base: str, paths: list[str], token: str, start_at: float, seconds: float, q: mp.Queue) -> None:
    """Keep-alive GETs of small JSON documents in the shared window [start_at, start_at + seconds)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    headers = {"Authorization": f"Bearer {token}"}
    n = nbytes = bad = 0
    time.sleep(max(0.0, start_at - time.monotonic()))   # CLOCK_MONOTONIC is shared by all processes
    end = start_at + seconds
    while time.monotonic() < end:
        for p in paths:
            conn.request("GET", p, headers=headers)
            r = conn.getresponse()
            nbytes += len(r.read())
            bad += r.status != 200
            n += 1
    q.put((n, nbytes, bad, time.monotonic() - start_at))


def _download_client(url: str, rounds: int, q: mp.Queue, ca_path: str | None = None) -> None:
    """Stream the pre-authenticated URL `rounds` times into one reused buffer; reports (bytes, seconds)."""
    import ssl

    u = urlsplit(url)
    buf = memoryview(bytearray(4 << 20))
    total, t0 = 0, time.perf_counter()
    for _ in range(rounds):
        conn = (http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca_path))
                if ca_path else http.client.HTTPConnection(u.hostname, u.port))
        conn.request("GET", f"{u.path}?{u.query}")
        r = conn.getresponse()
        assert r.status == 200, r.status
        while True:
            k = r.readinto(buf)
            if not k:
                break
            total += k
        conn.close()
    q.put((total, time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=2, help="client processes for the JSON test")
    ap.add_argument("--file-mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from migrate.sandbox.graph import GraphSandbox, TenantSpec

    spec = TenantSpec(seed=1, users=20, sites=3, teams=3, files_per_drive=200, max_depth=5, large_file_mb=args.file_mb)
    ctx = mp.get_context("spawn")
    with GraphSandbox(spec) as g:
        token = g.issue_token()
        d = g.tenant.drive_list[0]
        files = [i for i in d.live_items() if i.kind == "file" and not i.malware]
        small = [f"/v1.0/drives/{d.id}/items/{i.id}" for i in files[:50]] + ["/v1.0/users?$top=5",
                                                                             f"/v1.0/drives/{d.id}"]
        base = g.graph_url.rsplit("/v1.0", 1)[0]
        q: mp.Queue = ctx.Queue()
        start_at = time.monotonic() + 3.0       # after every client process has started
        procs = [ctx.Process(target=_json_client, args=(base, small, token, start_at, args.seconds, q))
                 for _ in range(args.clients)]
        for p in procs:
            p.start()
        res = [q.get() for _ in procs]
        for p in procs:
            p.join()
        reqs = sum(r[0] for r in res)
        bad = sum(r[2] for r in res)
        window = max(r[3] for r in res)         # the last client's finish, from the common start
        json_rps = reqs / window

        big = next(i for i in files if i.content.size == args.file_mb << 20)
        url = g.app.download_url(d, big.id, big.content)
        dq: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_download_client, args=(url, args.rounds, dq))
        p.start()
        total, secs = dq.get()
        p.join()
        mbps = total / secs / 1e6
        stats = g.stats()

    with GraphSandbox(TenantSpec(seed=1, users=1, sites=0, teams=0, files_per_drive=1, no_mysite_users=0,
                                 large_file_mb=args.file_mb), tls=True) as gt:
        dt = gt.tenant.drive_list[0]
        big_t = next(i for i in dt.live_items() if i.content is not None and i.content.size == args.file_mb << 20)
        dq = ctx.Queue()
        p = ctx.Process(target=_download_client,
                        args=(gt.app.download_url(dt, big_t.id, big_t.content), 1, dq, gt.ca_path))
        p.start()
        tls_total, tls_secs = dq.get()
        p.join()

    result = {
        "benchmark": "graph_sandbox",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "json_requests": {"clients": args.clients, "seconds": args.seconds, "requests": reqs, "non_200": bad,
                          "window_seconds": round(window, 3), "requests_per_second": round(json_rps), "target": 2000,
                          "ok": json_rps >= 2000 and not bad,
                          "what": "GET of one driveItem (50 different), /users?$top=5 and /drives/{id}, keep-alive, "
                                  "valid bearer token, HTTP/1.1 on 127.0.0.1"},
        "download": {"file_bytes": big.content.size, "rounds": args.rounds, "bytes": total, "seconds": round(secs, 3),
                     "mb_per_second": round(mbps, 1), "target": 300, "ok": mbps >= 300,
                     "what": "one client process streaming the pre-authenticated URL of a large file, plain HTTP"},
        "download_tls": {"bytes": tls_total, "seconds": round(tls_secs, 3),
                         "mb_per_second": round(tls_total / tls_secs / 1e6, 1),
                         "what": "the same over HTTPS (--tls); informational, no target"},
        "server_stats": {k: stats[k] for k in ("ru", "bytes_sent", "total_requests")},
    }
    out = ROOT / "benchmarks" / "results" / "graph_sandbox.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
