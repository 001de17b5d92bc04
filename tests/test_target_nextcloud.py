"""Nextcloud target against the sandbox: capabilities, chunked upload v2, mtimes, checksums, quota (507), locks
(423), bulk upload, credential validation, provisioning, team folders and shares."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest

from migrate.backends import open_target
from migrate.backends.nextcloud.bulk import SmallFile
from migrate.backends.nextcloud.capabilities import TargetUnavailable, detect
from migrate.backends.nextcloud.chunked import MAX_CHUNK, MIN_CHUNK, chunk_size_for
from migrate.backends.nextcloud.target import MIN_MTIME, NextcloudTarget
from migrate.backends.webdav.session import DavSession, make_http
from migrate.backends.webdav.wire import StreamConsumed
from migrate.errors import AuthError, ConfigError, MigrateError, TargetFull, TargetItemError
from migrate.transport.pacer import Pacer

MiB = 1024 * 1024


def pacer() -> Pacer:
    return Pacer("test", base_delay=0.1, max_delay=1.0, max_attempts=10)


@pytest.fixture
def nc(nextcloud_sandbox):
    return nextcloud_sandbox


@pytest.fixture
def target(nc) -> Iterator[NextcloudTarget]:
    t = open_target("nextcloud", nc.url, {**nc.app_passwords, "admin": nc.admin[1]}, pacer=pacer(),
                    service_account="admin", chunk_size=5 * MiB)
    yield t
    t.close()


def blocks(size: int, block: int = MiB) -> tuple[Iterator[bytes], str]:
    """A generator of `size` deterministic bytes and their SHA1 (computed without holding them)."""
    base = bytes(range(256)) * (block // 256)
    h = hashlib.sha1()
    for i in range(0, size, block):
        h.update(base[: min(block, size - i)])

    def gen() -> Iterator[bytes]:
        for i in range(0, size, block):
            yield base[: min(block, size - i)]

    return gen(), h.hexdigest()


def requests_since(nc, start: int) -> list[tuple[str, str, int]]:
    return nc.requests[start:]


# --- detection ------------------------------------------------------------------------------------------------
def test_capabilities_nextcloud(target) -> None:
    f = target.features
    assert target.info.kind == "nextcloud" and target.info.major == 32
    assert f.set_mtime and f.stored_checksum and f.chunked_upload and f.bulk_upload and f.shares
    assert f.group_folders and f.auto_mkcol and target.info.checksum_update
    assert f.max_name_bytes == 250
    assert ".htaccess" in f.forbidden_names
    assert {".part", ".filepart"} <= f.forbidden_extensions
    assert {"\\", "/", "\n", "\x00", "\x1f"} <= f.forbidden_chars  # control characters: enforced, not published
    assert target.info.not_preserved == ()


def test_capabilities_plain_and_apache(plain_webdav_sandbox, apache_dav) -> None:
    s = DavSession(make_http(), pacer())
    try:
        plain = detect(s, f"{plain_webdav_sandbox.url}/remote.php/dav/files/alice/",
                       ("alice", plain_webdav_sandbox.app_passwords["alice"]))
        apache = detect(s, apache_dav.url, apache_dav.auth)
    finally:
        s.close()
    for info in (plain, apache):
        assert info.kind == "webdav" and "1" in info.dav
        assert not (info.features.set_mtime or info.features.stored_checksum or info.features.chunked_upload)
        assert set(info.not_preserved) == {"modification times", "checksums", "shares", "versions"}
    # A WebDAV server configured as kind = "nextcloud" is a configuration error; a URL that is not WebDAV at all
    # is reported as unusable.
    with pytest.raises(ConfigError, match="not a Nextcloud server"):
        open_target("nextcloud", f"{plain_webdav_sandbox.url}/remote.php/dav/files/alice/",
                    plain_webdav_sandbox.app_passwords, pacer=pacer())
    with pytest.raises(TargetUnavailable, match="neither as Nextcloud"):
        open_target("nextcloud", plain_webdav_sandbox.url, plain_webdav_sandbox.app_passwords, pacer=pacer())


def test_chunk_size_rule() -> None:
    assert chunk_size_for(10 * MiB, 1 * MiB) == MIN_CHUNK
    assert chunk_size_for(10 * MiB, 32 * MiB) == 32 * MiB
    assert chunk_size_for(500 * 1024**3, 32 * MiB) == -(-500 * 1024**3 // 10000)  # ≤ 10000 chunks
    assert chunk_size_for(10**15, 32 * MiB) == MAX_CHUNK


# --- uploads ---------------------------------------------------------------------------------------------------
def test_small_put_keeps_mtime_and_checksum(nc, target) -> None:
    data = b"report body"
    sha = hashlib.sha1(data).hexdigest()
    start = len(nc.requests)
    entry = target.upload("alice", "Projects/Q3/report.txt", [data], len(data), mtime=1_700_000_000.75, sha1=sha)
    info = nc.file_info("alice", "Projects/Q3/report.txt")
    assert info["mtime"] == 1_700_000_000 and entry.mtime == 1_700_000_000
    assert info["checksum"] == f"SHA1:{sha}" and info["sha1"] == sha
    assert entry.checksums == (f"SHA1:{sha}",)
    methods = [(m, s) for m, _, s in requests_since(nc, start)]
    # Auto-MKCOL created the parents inside the PUT: no MKCOL round trips, then one PROPFIND to verify.
    assert methods == [("PUT", 201), ("PROPFIND", 207)]


def test_mtime_before_1970_01_02_is_clamped_and_noted(nc, target) -> None:
    entry = target.upload("alice", "old.txt", [b"x"], 1, mtime=5, sha1=hashlib.sha1(b"x").hexdigest())
    assert entry.mtime == MIN_MTIME and nc.file_info("alice", "old.txt")["mtime"] == MIN_MTIME
    notes = target.take_notes("alice", "old.txt")
    assert len(notes) == 1 and "stored as 86401" in notes[0]
    assert not [r for r in nc.requests if r[2] == 500]


def test_large_file_goes_chunked(nc, target) -> None:
    size = 64 * MiB
    chunks, sha = blocks(size)
    target.chunk_size = 16 * MiB
    start = len(nc.requests)
    entry = target.upload("alice", "media/big video.mp4", chunks, size, mtime=1_600_000_000, sha1=lambda: sha)
    info = nc.file_info("alice", "media/big video.mp4")
    assert entry.size == size and info["size"] == size and info["sha1"] == sha
    assert info["mtime"] == 1_600_000_000 and info["checksum"] == f"SHA1:{sha}"
    seen = [(m, p.rsplit("/", 1)[-1], s) for m, p, s in requests_since(nc, start) if "/uploads/" in p]
    assert seen[0][0] == "MKCOL" and seen[0][2] == 201
    # chunks go up several at a time, so they may arrive in any order; the server assembles them by name
    assert sorted((m, n, s) for m, n, s in seen[1:5]) == [("PUT", f"0000{i}", 201) for i in range(1, 5)]
    assert seen[5] == ("MOVE", ".file", 201) and len(seen) == 6
    assert not list((nc.data_dir / "uploads" / "alice").glob("*"))


def test_one_chunk_at_a_time_keeps_order(nc, target) -> None:
    size = 23 * MiB
    chunks, sha = blocks(size)
    target.chunk_parallel = 1
    start = len(nc.requests)
    target.upload("alice", "serial.bin", chunks, size, sha1=lambda: sha)
    puts = [p.rsplit("/", 1)[-1] for m, p, _ in requests_since(nc, start) if m == "PUT" and "/uploads/" in p]
    assert puts == ["00001", "00002", "00003", "00004", "00005"]
    assert nc.file_info("alice", "serial.bin")["sha1"] == sha


def test_chunk_parallelism_is_capped_by_what_the_server_advertises(nc) -> None:
    t = open_target("nextcloud", nc.url, nc.app_passwords, pacer=pacer(), chunk_parallel=16)
    try:
        assert t.info.chunk_parallel == 5  # files.chunked_upload.max_parallel_count of NC 32
        assert t.chunk_parallel == 5
    finally:
        t.close()


def test_chunks_are_sent_while_the_next_is_read(nc, target) -> None:
    # The reader waits until the server has stored the first chunk: possible only if chunk 1 is on its way
    # while the stream is still being read (serially, the upload would wait for the reader forever).
    size = 20 * MiB
    base = bytes(range(256)) * (MiB // 256)
    sha = hashlib.sha1(base * 20).hexdigest()
    first_stored = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(m == "PUT" and p.endswith("/00001") and s == 201 for m, p, s in nc.requests):
                first_stored.set()
                return
            time.sleep(0.02)

    def gen() -> Iterator[bytes]:
        for i in range(20):
            if i == 12:
                assert first_stored.wait(20), "chunk 1 was not sent while the stream was still being read"
            yield base

    threading.Thread(target=watch, daemon=True).start()
    entry = target.upload("alice", "overlap.bin", gen(), size, sha1=lambda: sha)
    assert entry.size == size and nc.file_info("alice", "overlap.bin")["sha1"] == sha


def test_a_refused_chunk_aborts_the_upload_and_cleans_up(nc, target) -> None:
    size = 20 * MiB
    chunks, sha = blocks(size)
    nc.fault("PUT", 403, path_contains="/uploads/")
    with pytest.raises(MigrateError):
        target.upload("alice", "refused.bin", chunks, size, sha1=lambda: sha)
    assert nc.file_info("alice", "refused.bin") is None
    assert not list((nc.data_dir / "uploads" / "alice").glob("*")), "the upload folder was left behind"
    assert any(m == "DELETE" and "/uploads/" in p for m, p, _ in nc.requests)


def test_5xx_on_the_final_move_is_retried(nc, target) -> None:
    size = 12 * MiB
    chunks, sha = blocks(size)
    nc.fault("MOVE", 503, count=2, path_contains="/uploads/")
    start = len(nc.requests)
    target.upload("alice", "retried.bin", chunks, size, mtime=1_650_000_000, sha1=lambda: sha)
    moves = [s for m, p, s in requests_since(nc, start) if m == "MOVE"]
    assert moves == [503, 503, 201]
    info = nc.file_info("alice", "retried.bin")
    assert info["sha1"] == sha and info["checksum"] == f"SHA1:{sha}" and info["mtime"] == 1_650_000_000


def test_a_lost_answer_to_the_final_move_is_checked_not_failed(nc, target) -> None:
    # A proxy times out the long assembly (504) while the server completes it; the retried MOVE finds the
    # upload folder gone (404). The file is in place with our checksum, so the upload counts.
    size = 12 * MiB
    chunks, sha = blocks(size)
    nc.fault("MOVE", 504, after=True, path_contains="/uploads/")
    start = len(nc.requests)
    entry = target.upload("alice", "lost-answer.bin", chunks, size, mtime=1_650_000_000, sha1=lambda: sha)
    seen = [(m, s) for m, p, s in requests_since(nc, start) if m in ("MOVE", "PROPFIND")]
    assert seen[:2] == [("MOVE", 504), ("MOVE", 404)], seen
    assert entry.size == size and f"SHA1:{sha}" in entry.checksums
    assert nc.file_info("alice", "lost-answer.bin")["sha1"] == sha


def test_a_vanished_upload_folder_is_an_item_error(nc, target) -> None:
    from migrate.backends.nextcloud.chunked import ChunkedUpload

    up = ChunkedUpload(target.dav, "alice", "never.bin", 6 * MiB, chunk_size=5 * MiB, mtime=None, sha1=None)
    with pytest.raises(TargetItemError, match="upload folder vanished"):
        up._move()  # no MKCOL, no chunks: what the server shows after it expired an upload
    assert nc.file_info("alice", "never.bin") is None


def test_checksum_not_kept_falls_back_to_server_hashing(nc, target) -> None:
    data = b"bulk files keep no checksum"
    sha = hashlib.sha1(data).hexdigest()
    res = target.upload_many("alice", [SmallFile("nock/a.txt", data, 1_700_000_000, sha)])
    assert res["nock/a.txt"].checksums == ()  # bulk verifies, never stores (§4.2)
    assert nc.file_info("alice", "nock/a.txt")["checksum"] is None
    start = len(nc.requests)
    entry = target._verify("alice", "nock/a.txt", len(data), sha)
    assert f"SHA1:{sha}" in entry.checksums
    assert ("PATCH", 204) in [(m, s) for m, _, s in requests_since(nc, start)]
    assert nc.file_info("alice", "nock/a.txt")["checksum"] == f"SHA1:{sha}"


def test_quota_full_fails_early_with_target_full(nc, target) -> None:
    nc.set_quota("alice", 10)
    size = 64 * MiB
    chunks, sha = blocks(size)
    pulled = 0

    def counting() -> Iterator[bytes]:
        nonlocal pulled
        for c in chunks:
            pulled += len(c)
            yield c

    start = len(nc.requests)
    with pytest.raises(TargetFull):
        target.upload("alice", "too/big.bin", counting(), size, mtime=1_700_000_000, sha1=lambda: sha)
    uploads = [(m, s) for m, p, s in requests_since(nc, start) if "/uploads/" in p]
    assert uploads[0] == ("MKCOL", 201)
    chunk_puts = [u for u in uploads if u[0] == "PUT"]
    # the first chunk already failed (OC-Total-Length on every request); only the chunks already in flight
    # beside it were sent, and only those (plus one read block) were read of the 64 MiB
    assert chunk_puts and set(chunk_puts) == {("PUT", 507)} and len(chunk_puts) <= target.chunk_parallel
    assert pulled <= (target.chunk_parallel + 1) * 5 * MiB + MiB
    assert uploads[-1][0] == "DELETE"  # the upload folder was cleaned up
    assert nc.file_info("alice", "too/big.bin") is None


def test_locked_move_is_retried_until_unlocked(nc, target) -> None:
    target.ensure_folder("alice", "locked")
    nc.lock("alice", "locked/file.bin")
    timer = threading.Timer(1.0, nc.unlock, ("alice", "locked/file.bin"))
    timer.start()
    size = 6 * MiB
    chunks, sha = blocks(size)
    start = len(nc.requests)
    try:
        t0 = time.monotonic()
        entry = target.upload("alice", "locked/file.bin", chunks, size, mtime=1_700_000_000, sha1=lambda: sha)
    finally:
        timer.cancel()
    assert entry.size == size and time.monotonic() - t0 >= 0.9
    moves = [s for m, p, s in requests_since(nc, start) if m == "MOVE"]
    assert moves[0] == 423 and moves[-1] == 201 and set(moves[:-1]) == {423}
    assert nc.file_info("alice", "locked/file.bin")["sha1"] == sha


def test_locked_small_put_is_retried(nc, target) -> None:
    nc.lock("alice", "l2.txt")
    threading.Timer(0.5, nc.unlock, ("alice", "l2.txt")).start()
    target.upload("alice", "l2.txt", [b"abc"], 3, sha1=hashlib.sha1(b"abc").hexdigest())
    assert nc.file_info("alice", "l2.txt")["size"] == 3


def test_one_shot_stream_is_not_resent(nc) -> None:
    """A streamed single PUT that fails after its body was read cannot be replayed: StreamConsumed (Terminal),
    so the engine retries the item from the source instead of the pacer sending an exhausted iterator."""
    t = NextcloudTarget(nc.url, nc.app_passwords, pacer=pacer(), chunk_size=1024 * MiB)
    t.ensure_folder("alice", "once")
    nc.lock("alice", "once/big.bin")
    chunks, sha = blocks(6 * MiB)
    start = len(nc.requests)
    try:
        with pytest.raises(StreamConsumed, match="423"):
            t.upload("alice", "once/big.bin", chunks, 6 * MiB, sha1=lambda: sha)
    finally:
        nc.unlock("alice", "once/big.bin")
        t.close()
    assert [(m, s) for m, _, s in requests_since(nc, start) if m == "PUT"] == [("PUT", 423)]


def test_bulk_upload_of_200_small_files(nc, target) -> None:
    files = [SmallFile(f"bulk/d{i % 4}/f{i:03d}.txt", f"file {i}\n".encode() * (i % 7), 1_600_000_000 + i)
             for i in range(200)]
    start = len(nc.requests)
    res = target.upload_many("alice", files)
    assert len(res) == 200 and all(not isinstance(v, Exception) for v in res.values())
    reqs = requests_since(nc, start)
    assert [s for m, p, s in reqs if m == "POST" and p.endswith("/bulk")] == [200, 200]
    assert not [r for r in reqs if r[0] == "PUT"]
    for f in files[::37]:
        info = nc.file_info("alice", f.path)
        assert info["sha1"] == hashlib.sha1(f.data).hexdigest() and info["mtime"] == f.mtime


def test_bulk_upload_reports_refused_files_per_file(nc, target) -> None:
    good = SmallFile("bk/ok.txt", b"ok", 1_700_000_000)
    bad = SmallFile("bk/" + "x" * 247 + ".txt", b"too long", 1_700_000_000)
    res = target.upload_many("alice", [good, bad])
    assert not isinstance(res["bk/ok.txt"], Exception)
    assert isinstance(res[bad.path], TargetItemError) and "too long" in str(res[bad.path]).lower()


# --- errors ----------------------------------------------------------------------------------------------------
def test_invalid_name_is_an_item_error_with_the_servers_message(target) -> None:
    with pytest.raises(TargetItemError, match="Filename is too long"):
        target.upload("alice", "n/" + "y" * 247 + ".txt", [b"1"], 1)
    with pytest.raises(TargetItemError, match="forbidden file type"):
        target.upload("alice", "n/file.part", [b"1"], 1)


def test_wrong_password_is_an_auth_error_naming_the_user(nc) -> None:
    t = NextcloudTarget(nc.url, {"alice": nc.app_passwords["alice"], "bob": "wrong"}, pacer=pacer())
    with pytest.raises(AuthError, match="'bob'"):
        t.upload("bob", "x.txt", [b"x"], 1)
    with pytest.raises(AuthError, match="no app password.*'carol'"):
        t.stat("carol", "x.txt")
    t.close()


# --- credentials, provisioning, team folders, shares -------------------------------------------------------------
def test_validate_credentials_lists_every_problem_and_spares_brute_force(nc) -> None:
    for uid in ("dave", "erin", "frank", "gina"):
        nc.add_user(uid)
    passwords = {"admin": nc.admin[1], "alice": nc.app_passwords["alice"], "bob": "wrong-1", "ghost": "whatever",
                 "dave": "wrong-2", "erin": "wrong-3", "frank": "wrong-4", "gina": nc.app_passwords["gina"]}
    t = open_target("nextcloud", nc.url, passwords, pacer=pacer(), service_account="admin")
    problems = t.validate_credentials(["alice", "bob", "carol", "ghost", "dave", "erin", "frank", "gina"])
    t.close()
    kinds = {p.user: p.kind for p in problems}
    assert kinds == {"bob": "wrong-password", "carol": "missing", "ghost": "unknown-user", "dave": "wrong-password",
                     "erin": "wrong-password", "frank": "unchecked", "gina": "unchecked"}
    assert all(str(p).startswith(p.user + ": ") for p in problems)
    assert max(nc.state.failed_logins.values()) == 3  # far below the 10 that block the address


def test_validate_credentials_without_admin(nc) -> None:
    t = NextcloudTarget(nc.url, {"alice": nc.app_passwords["alice"], "ghost": "x"}, pacer=pacer())
    problems = t.validate_credentials(["alice", "ghost"])
    t.close()
    assert [(p.user, p.kind) for p in problems] == [("ghost", "wrong-password")]


def test_provisioning_and_team_folders(nc, target) -> None:
    prov = target.provisioning()
    assert prov.user_exists("alice") and not prov.user_exists("ghost")
    assert prov.group_exists("staff") and not prov.group_exists("nogroup")
    fid = nc.create_team_folder("Projects", groups={"staff": 31})
    tf = target.team_folders()
    found = tf.find("Projects")
    assert found is not None and found.id == fid and found.groups == {"staff": 31}
    assert tf.visible_to("alice", "Projects") and not tf.visible_to("carol", "Projects")
    entry = target.upload("alice", "Projects/lib/doc.txt", [b"doc"], 3, mtime=1_700_000_000,
                          sha1=hashlib.sha1(b"doc").hexdigest())
    assert entry.size == 3
    no_admin = NextcloudTarget(nc.url, nc.app_passwords, pacer=pacer(), info=target.info)
    with pytest.raises(ConfigError):
        no_admin.team_folders()
    no_admin.close()


def test_shares_create_list_delete(nc, target) -> None:
    target.upload("alice", "share/me.txt", [b"s"], 1)
    share = target.shares.create("alice", "share/me.txt", 0, "bob", permissions=1, note="Migrated")
    assert share["share_with"] == "bob" and share["permissions"] == 1
    listed = target.shares.list("alice", "share/me.txt")
    assert [s["id"] for s in listed] == [share["id"]]
    target.shares.delete("alice", share["id"])
    assert target.shares.list("alice", "share/me.txt") == []
    target.shares.delete("alice", share["id"])  # already gone is fine
    with pytest.raises(TargetItemError, match="valid account"):
        target.shares.create("alice", "share/me.txt", 0, "nobody")


def test_a_failing_bulk_request_falls_back_to_one_put_per_file(nc) -> None:
    t = open_target("nextcloud", nc.url, nc.app_passwords, pacer=Pacer("t", base_delay=0.01, max_attempts=2))
    try:
        nc.fault("POST", 503, count=2, path_contains="/bulk")  # both attempts of the one bulk request
        files = [SmallFile(f"fb/{n}.txt", f"file {n}".encode(), 1_700_000_000,
                           hashlib.sha1(f"file {n}".encode()).hexdigest()) for n in range(5)]
        res = t.upload_many("alice", files)
        assert all(not isinstance(r, Exception) for r in res.values()), res
        assert [nc.file_info("alice", f"fb/{n}.txt")["sha1"] for n in range(5)] == [f.sha1 for f in files]
        puts = [p for m, p, s in nc.requests if m == "PUT" and "/fb/" in p and s == 201]
        assert len(puts) == 5
    finally:
        t.close()


def test_one_file_failing_after_retries_does_not_fail_the_others(nc) -> None:
    t = open_target("nextcloud", nc.url, nc.app_passwords, pacer=Pacer("t", base_delay=0.01, max_attempts=2))
    try:
        nc.fault("POST", 503, count=2, path_contains="/bulk")
        nc.fault("PUT", 503, count=2, path_contains="/sick.txt")
        files = [SmallFile(f"one/{n}", n.encode(), None, hashlib.sha1(n.encode()).hexdigest())
                 for n in ("well.txt", "sick.txt", "fine.txt")]
        res = t.upload_many("alice", files)
        assert isinstance(res["one/sick.txt"], MigrateError) and "503" in str(res["one/sick.txt"])
        assert not isinstance(res["one/well.txt"], Exception) and not isinstance(res["one/fine.txt"], Exception)
        assert nc.file_info("alice", "one/fine.txt") is not None and nc.file_info("alice", "one/sick.txt") is None
    finally:
        t.close()


def test_chunk_buffers_hold_memory_only_within_the_budget() -> None:
    from migrate.backends.nextcloud.chunked import MemoryBudget, _chunk_buffers

    budget = MemoryBudget(12 * MiB)
    pieces = [bytes([n]) * (3 * MiB + 17) for n in range(8)]  # pieces straddle the chunk boundaries
    data = b"".join(pieces)
    got = []
    for buf, length in _chunk_buffers(iter(pieces), 5 * MiB, budget):
        got.append((buf, length))  # held, not closed: the budget fills up
    assert [length for _, length in got] == [5 * MiB] * 4 + [len(data) - 20 * MiB]
    assert [b.in_memory for b, _ in got] == [True, True, False, False, False]
    assert budget.used == 10 * MiB
    for buf, _ in got:  # each body replays the same bytes, from memory or from disk
        assert b"".join(buf.body()()) == b"".join(buf.body()())
    assert b"".join(b"".join(buf.body()()) for buf, _ in got) == data
    for buf, _ in got:
        buf.close()
    assert budget.used == 0


def test_an_interrupted_stream_gives_the_budget_back() -> None:
    from migrate.backends.nextcloud.chunked import MemoryBudget, _chunk_buffers

    budget = MemoryBudget(64 * MiB)

    def broken() -> Iterator[bytes]:
        yield b"x" * (7 * MiB)
        raise OSError("connection reset")

    gen = _chunk_buffers(broken(), 5 * MiB, budget)
    first, _ = next(gen)
    with pytest.raises(OSError):
        next(gen)
    assert budget.used == 5 * MiB  # only the buffer handed over is still held (by its owner)
    first.close()
    assert budget.used == 0


def test_resume_keeps_whole_chunks_in_a_row_and_deletes_the_rest(nc, target) -> None:
    import httpx

    size, chunk = 26 * MiB, 5 * MiB
    data = bytes(range(256)) * (size // 256)
    prev = target.begin_resumable("alice", size)
    assert prev is not None and prev.offset == 0 and prev.chunk_size == chunk
    auth = ("alice", nc.app_passwords["alice"])
    up = f"{nc.url}/remote.php/dav/uploads/alice/{prev.transfer_id}"
    with httpx.Client(auth=auth) as c:
        assert c.request("MKCOL", up).status_code == 201
        for name, part in (("00001", data[:chunk]), ("00002", data[chunk:2 * chunk]),
                           ("00003", data[2 * chunk:2 * chunk + 1000]),  # cut short by a kill
                           ("00005", data[4 * chunk:5 * chunk])):          # past a gap
            assert c.put(f"{up}/{name}", content=part).status_code == 201
    resume = target.begin_resumable("alice", size, {"transfer_id": prev.transfer_id, "chunk_size": chunk})
    assert resume == type(prev)(prev.transfer_id, chunk, 2 * chunk)
    left = sorted(p.name for p in (nc.data_dir / "uploads" / "alice" / prev.transfer_id).iterdir()
                  if not p.name.startswith("."))
    assert left == ["00001", "00002"]
    start = len(nc.requests)
    rest = [data[i:i + MiB] for i in range(resume.offset, size, MiB)]
    entry = target.upload("alice", "resumed.bin", iter(rest), size, sha1=None, resume=resume)
    assert entry.size == size
    puts = sorted(p.rsplit("/", 1)[-1] for m, p, _ in requests_since(nc, start) if m == "PUT")
    assert puts == ["00003", "00004", "00005", "00006"]
    assert nc.file_info("alice", "resumed.bin")["sha1"] == hashlib.sha1(data).hexdigest()
    with target.open_read("alice", "resumed.bin") as stream:
        assert hashlib.sha1(b"".join(stream)).hexdigest() == hashlib.sha1(data).hexdigest()
    confirmed = target.confirm("alice", "resumed.bin", size, hashlib.sha1(data).hexdigest())
    assert f"SHA1:{hashlib.sha1(data).hexdigest()}" in confirmed.checksums


def test_an_expired_upload_folder_starts_a_new_session(nc, target) -> None:
    resume = target.begin_resumable("alice", 12 * MiB, {"transfer_id": "m365-migrate-gone", "chunk_size": 5 * MiB})
    assert resume is not None and resume.offset == 0 and resume.transfer_id != "m365-migrate-gone"
    assert target.begin_resumable("alice", 1 * MiB) is None  # small files are not chunked


def test_a_transient_failure_keeps_the_chunks_of_a_resumable_upload(nc) -> None:
    t = open_target("nextcloud", nc.url, nc.app_passwords, pacer=Pacer("t", base_delay=0.01, max_attempts=2),
                    chunk_size=5 * MiB, chunk_parallel=1)
    try:
        size = 16 * MiB
        resume = t.begin_resumable("alice", size)
        nc.fault("PUT", 503, count=2, path_contains="/00003")
        chunks, sha = blocks(size)
        with pytest.raises(MigrateError):
            t.upload("alice", "flaky.bin", chunks, size, sha1=lambda: sha, resume=resume)
        kept = sorted(p.name for p in (nc.data_dir / "uploads" / "alice" / resume.transfer_id).iterdir())
        assert kept == ["00001", "00002"]
        again = t.begin_resumable("alice", size, {"transfer_id": resume.transfer_id, "chunk_size": 5 * MiB})
        assert again.offset == 10 * MiB
    finally:
        t.close()


def test_two_mkcols_of_one_folder_at_once_both_succeed(nextcloud_sandbox):
    """Real Nextcloud 32 answers the later of two simultaneous MKCOLs of one path 403 "Could not create
    directory" (the sandbox does the same); the folder is there, so ensure_folder must not fail."""
    from migrate.backends.nextcloud.target import NextcloudTarget

    nc = nextcloud_sandbox
    nc.delay("MKCOL", 0.2)
    results: list[BaseException | None] = []

    def make(n: int) -> None:
        t = NextcloudTarget(nc.url, {"alice": nc.app_passwords["alice"]})
        try:
            t.ensure_folder("alice", f"Race/Sub {n}")
            results.append(None)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            results.append(exc)
        finally:
            t.close()

    threads = [threading.Thread(target=make, args=(n,)) for n in range(4)]
    before = len(nc.requests)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    nc.delay("MKCOL", 0)
    assert results == [None] * 4, results
    assert any(m == "MKCOL" and st == 403 for m, _p, st in nc.requests[before:]), "no race happened"
    home = nc.data_dir / "users" / "alice" / "files"
    assert all((home / "Race" / f"Sub {n}").is_dir() for n in range(4))
