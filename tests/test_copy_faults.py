"""`copy` through the real CLI while the sandboxes misbehave: throttling, resets, expiring URLs and tokens, a full
quota, locked files, 5xx and lost answers on the final MOVE of a chunked upload. Every run must end with every
file byte-identical at the target (or, for a full quota, exit 5 naming the user and finish after the quota is
raised).
"""

from __future__ import annotations

import json
import threading
import time

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import (
    SPEC,
    assert_target_matches_truth,
    file_rows,
    nextcloud_target,
    setup_migration,
)

FEW = {**SPEC, "users": 1, "files_per_drive": 10}
MB = 1024 * 1024


def _world(tmp_path, factory, nc, *, spec=FEW, big: int = 0, transfer: str = "", targets=("alice",), **options):
    g = factory(TenantSpec(**spec), **options)
    if big:
        g.mutate.add_file(sorted(g.truth())[0], "/", "big.bin", big)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=targets,
                             transfer=transfer)
    return g, env


def _copy_ok(tmp_path, env, g, nc) -> dict:
    r = run_cli("--json", "copy", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_target_matches_truth(g, nc, file_rows(tmp_path))
    return json.loads(r.stdout)


def test_429_storm_with_retry_after_on_content_completes(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g, env = _world(tmp_path, graph_sandbox_factory, nextcloud_sandbox)
    g.faults.set(route="content", status=429, rate=0.5, retry_after="0.2", seed=5)
    g.faults.set(route="download", status=429, rate=0.3, retry_after="0.2", seed=6)
    _copy_ok(tmp_path, env, g, nextcloud_sandbox)
    assert g.stats()["status"].get("429", 0) >= 3


def test_connection_reset_mid_download_resumes_with_range(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g, env = _world(tmp_path, graph_sandbox_factory, nextcloud_sandbox, big=3 * MB)
    # every body is cut after 1 MB (smaller files pass): the 3 MB file needs two re-opens
    g.faults.set(route="download", reset_after=1_000_000)
    summary = _copy_ok(tmp_path, env, g, nextcloud_sandbox)
    assert g.faults.log, "no reset was injected"
    assert g.stats()["status"].get("206", 0) >= 1, "no download was re-opened with Range"
    assert not summary["failed"]


def test_download_url_expiry_during_slow_bodies(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g, env = _world(tmp_path, graph_sandbox_factory, nextcloud_sandbox, big=3 * MB, download_url_ttl=1)
    # URLs that expire between the 302 and their use (a slow redirect): 401 at the download host, new URL asked
    g.faults.set(route="content", delay=2.1, count=3)
    # and a 3 s body broken after 2 s: its URL has expired by then, the re-open must fetch a fresh one
    g.faults.set(route="download", bytes_per_second=1 * MB, reset_after=2 * MB)
    _copy_ok(tmp_path, env, g, nextcloud_sandbox)
    status = g.stats()["status"]
    assert status.get("401", 0) >= 1, status
    assert status.get("206", 0) >= 1, status


def test_access_token_expiry_mid_copy(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g, env = _world(tmp_path, graph_sandbox_factory, nextcloud_sandbox, token_lifetime=3)
    g.faults.set(route="download", bytes_per_second=200_000)
    timer = threading.Timer(2.0, g.expire_access_tokens)
    timer.start()
    try:
        _copy_ok(tmp_path, env, g, nextcloud_sandbox)
    finally:
        timer.cancel()
    assert g.stats()["requests"].get("token", 0) >= 2, g.stats()["requests"]


def test_full_quota_exits_5_naming_the_user_and_resumes_after_raising_it(tmp_path, graph_sandbox_factory,
                                                                         nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env = _world(tmp_path, graph_sandbox_factory, nc, spec={**SPEC, "files_per_drive": 20},
                    targets=("alice", "bob"))
    nc.set_quota("bob", 1)
    r = run_cli("copy", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "'bob'" in r.stderr and "quota" in r.stderr, r.stderr
    rows = file_rows(tmp_path)
    assert {x["status"] for x in rows if x["target_user"] == "bob"} - {"verified"} <= {"pending"}
    nc.set_quota("bob", None)
    _copy_ok(tmp_path, env, g, nc)


def test_locked_files_at_the_target_are_retried_until_unlocked(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env = _world(tmp_path, graph_sandbox_factory, nc, big=12 * MB,
                    transfer='chunk_size = "5MiB"')
    assert run_cli("plan", cwd=tmp_path, env=env).returncode in (0, 3)
    rows = file_rows(tmp_path)
    small = next(x for x in rows if 0 < x["size"] < MB)
    locked = ["big.bin", small["target_path"].lstrip("/")]
    for p in locked:
        nc.lock("alice", p)
    before = len(nc.requests)
    stop = threading.Event()

    def unlock_once_refused() -> None:
        """Unlock when both kinds of write met the lock (or after 60 s): no wall-clock guess about load."""
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            seen = {m for m, _p, s in nc.requests[before:] if s == 423}
            if "MOVE" in seen and seen & {"PUT", "POST"}:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        for p in locked:
            nc.unlock("alice", p)

    unlocker = threading.Thread(target=unlock_once_refused)
    unlocker.start()
    try:
        _copy_ok(tmp_path, env, g, nc)
    finally:
        stop.set()
        unlocker.join()
    refused = [(m, p) for m, p, s in nc.requests[before:] if s == 423]
    assert any(m == "MOVE" for m, _p in refused), refused   # the final MOVE of the chunked upload
    assert any(m in ("PUT", "POST") for m, _p in refused), refused


def test_5xx_and_a_lost_answer_on_the_final_move(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env = _world(tmp_path, graph_sandbox_factory, nc, big=12 * MB, transfer='chunk_size = "5MiB"')
    # two 503s (the server refused), then a 504 from a proxy while the server did assemble the file
    nc.fault("MOVE", 503, count=2, path_contains="/uploads/")
    nc.fault("MOVE", 504, after=True, path_contains="/uploads/")
    before = len(nc.requests)
    summary = _copy_ok(tmp_path, env, g, nc)
    moves = [s for m, p, s in nc.requests[before:] if m == "MOVE" and "/uploads/" in p]
    assert moves == [503, 503, 504, 404], moves
    big = next(x for x in file_rows(tmp_path) if x["name"] == "big.bin")
    assert big["status"] == "verified" and big["attempts"] == 1, big
    assert not summary["failed"]
    assert not list((nc.data_dir / "uploads" / "alice").glob("*")), "an upload folder was left behind"


def test_throttled_batch_steps_pause_and_fall_back_to_single_requests(tmp_path, graph_sandbox_factory,
                                                                     nextcloud_sandbox):
    g, env = _world(tmp_path, graph_sandbox_factory, nextcloud_sandbox, spec={**SPEC, "files_per_drive": 40})
    # no pass lends download URLs (it fails at once), so the small files ask for theirs in `$batch` steps;
    # half those steps are throttled with a Retry-After
    g.faults.set(route="delta", status=404)
    g.faults.set(route="item", status=429, rate=0.5, retry_after="0.3", seed=9)
    _copy_ok(tmp_path, env, g, nextcloud_sandbox)
    asked = g.stats()["requests"]
    assert asked.get("batch", 0) >= 1 and g.stats()["status"].get("429", 0) >= 3
    assert asked.get("content", 0) >= 3, asked  # the throttled files asked for their own URLs
