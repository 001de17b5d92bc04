"""Target conformance suite: the same tests against the Nextcloud sandbox, the sandbox in plain WebDAV mode and
Apache mod_dav, through `open_target` — what the copy engine relies on from any target."""

from __future__ import annotations

import hashlib
import tracemalloc
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from migrate.backends import open_target
from migrate.backends.webdav.wire import encode_path
from migrate.errors import ConfigError
from migrate.protocols import Target
from migrate.transport.pacer import Pacer

MiB = 1024 * 1024


@dataclass
class Env:
    """One target under test: `user` is the tree to write ('' for plain WebDAV), `base` a fresh folder."""

    kind: str
    target: Any
    user: str
    base: str
    server: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def p(self, rel: str) -> str:
        return f"{self.base}/{rel}"


def fast_pacer() -> Pacer:
    return Pacer("test", base_delay=0.05, max_delay=0.5)


@pytest.fixture(params=["nextcloud", "plain", "apache"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    base = f"t-{uuid.uuid4().hex[:8]}"
    if request.param == "nextcloud":
        nc = request.getfixturevalue("nextcloud_sandbox")
        t = open_target("nextcloud", nc.url, nc.app_passwords, pacer=fast_pacer(), chunk_size=5 * MiB)
        yield Env("nextcloud", t, "alice", base, nc)
    elif request.param == "plain":
        nc = request.getfixturevalue("plain_webdav_sandbox")
        url = f"{nc.url}/remote.php/dav/files/alice/"
        t = open_target("webdav", url, {"alice": nc.app_passwords["alice"]}, pacer=fast_pacer())
        yield Env("plain", t, "", base, nc)
    else:
        ap = request.getfixturevalue("apache_dav")
        t = open_target("webdav", ap.url, {ap.auth[0]: ap.auth[1]}, pacer=fast_pacer())
        yield Env("apache", t, "", base, ap)
    t.close()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def put(env: Env, rel: str, data: bytes, mtime: float | None = 1_700_000_000):
    return env.target.upload(env.user, env.p(rel), [data], len(data), mtime=mtime, sha1=sha1(data))


def test_is_a_target(env: Env) -> None:
    assert isinstance(env.target, Target)


def test_upload_stat_walk_delete(env: Env) -> None:
    t, u = env.target, env.user
    entry = put(env, "docs/a.txt", b"alpha")
    assert entry.size == 5 and not entry.is_folder and entry.path == env.p("docs/a.txt")
    put(env, "docs/sub/b.bin", b"b" * 1000)
    st = t.stat(u, env.p("docs/a.txt"))
    assert st is not None and st.size == 5 and st.etag
    folder = t.stat(u, env.p("docs"))
    assert folder is not None and folder.is_folder
    assert t.stat(u, env.p("nothing-here.txt")) is None
    walked = {e.path: e for e in t.walk(u, env.base)}
    assert set(walked) == {env.p("docs"), env.p("docs/a.txt"), env.p("docs/sub"), env.p("docs/sub/b.bin")}
    assert walked[env.p("docs/sub")].is_folder and walked[env.p("docs/sub/b.bin")].size == 1000
    # Overwrite replaces the content.
    put(env, "docs/a.txt", b"alpha, second version")
    assert t.stat(u, env.p("docs/a.txt")).size == len(b"alpha, second version")
    t.delete(u, env.p("docs/a.txt"))
    assert t.stat(u, env.p("docs/a.txt")) is None
    t.delete(u, env.p("docs/a.txt"))  # missing is fine
    t.delete(u, env.p("docs"))
    assert list(t.walk(u, env.base)) == []
    # The folder cache forgets deleted folders: uploading again recreates the parents.
    put(env, "docs/sub/again.txt", b"x")
    assert t.stat(u, env.p("docs/sub/again.txt")).size == 1


def test_ensure_folder_is_idempotent_and_treats_405_as_existing(env: Env) -> None:
    t, u = env.target, env.user
    t.ensure_folder(u, env.p("x/y/z"))
    t.ensure_folder(u, env.p("x/y/z"))
    assert t.stat(u, env.p("x/y/z")).is_folder
    # A second target instance has an empty cache: MKCOL answers 405 for every level, which is fine.
    other = open_target(*_reopen(env), pacer=fast_pacer())
    try:
        other.ensure_folder(u, env.p("x/y/z/w"))
    finally:
        other.close()
    assert t.stat(u, env.p("x/y/z/w")).is_folder
    if env.kind == "nextcloud":
        mkcols = [r for r in env.server.requests if r[0] == "MKCOL" and r[1].rstrip("/").endswith(f"{env.base}/x")]
        assert [r[2] for r in mkcols] == [201, 405]  # once per target instance, never again from the cache


def _reopen(env: Env) -> tuple[str, str, dict[str, str]]:
    if env.kind == "nextcloud":
        return "nextcloud", env.server.url, env.server.app_passwords
    if env.kind == "plain":
        return "webdav", f"{env.server.url}/remote.php/dav/files/alice/", {"alice": env.server.app_passwords["alice"]}
    return "webdav", env.server.url, {env.server.auth[0]: env.server.auth[1]}


def test_zero_byte_file(env: Env) -> None:
    entry = put(env, "empty.txt", b"")
    assert entry.size == 0
    st = env.target.stat(env.user, env.p("empty.txt"))
    assert st is not None and st.size == 0 and not st.is_folder


AWKWARD = [
    "naïve café.txt",                                  # NFC
    unicodedata.normalize("NFD", "Crème brûlée.txt"),  # NFD
    "C# notes #1.txt",
    "100% done %41.txt",
    "what? really.txt",
    "  spaced  name .txt",
    "semi;colon&amp+plus=eq.txt",
    "é" * 123 + ".txt",                                # 250 bytes, the longest name Nextcloud accepts
]


@pytest.mark.parametrize("name", AWKWARD, ids=lambda n: f"{len(n.encode())}B-" + n.encode("ascii", "replace")
                         .decode()[:20])
def test_awkward_names_round_trip(env: Env, name: str) -> None:
    data = name.encode()
    entry = put(env, f"dir #1%/{name}", data)
    assert entry.size == len(data)
    st = env.target.stat(env.user, env.p(f"dir #1%/{name}"))
    assert st is not None and st.size == len(data)
    names = [e.path.rsplit("/", 1)[-1] for e in env.target.walk(env.user, env.p("dir #1%"))]
    assert len(names) == 1
    # Nextcloud stores names in NFC; other servers keep the bytes they were given.
    assert unicodedata.normalize("NFC", names[0]) == unicodedata.normalize("NFC", name)
    if env.kind != "nextcloud":
        assert names[0] == name
    env.target.delete(env.user, env.p(f"dir #1%/{name}"))
    assert env.target.stat(env.user, env.p(f"dir #1%/{name}")) is None


def test_large_file_is_streamed_not_buffered(env: Env) -> None:
    """64 MiB from a generator; the client holds a bounded amount (chunks/spools), never the whole file."""
    size = 64 * MiB
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha1()
    for i in range(64):
        digest.update(block[i:] + block[:i])

    def gen() -> Iterator[bytes]:
        for i in range(64):
            yield block[i:] + block[:i]

    tracemalloc.start()
    try:
        entry = env.target.upload(env.user, env.p("big.bin"), gen(), size, mtime=1_650_000_000,
                                  sha1=lambda: digest.hexdigest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert entry.size == size
    # Nextcloud may keep chunks in memory up to the process-wide budget (32 MiB), never the whole 64 MiB
    from migrate.backends.nextcloud.chunked import CHUNK_MEMORY

    assert peak < CHUNK_MEMORY.limit + 4 * MiB < size, f"peak traced memory {peak / MiB:.1f} MiB for a 64 MiB upload"
    if env.kind in ("nextcloud", "plain"):
        info = env.server.file_info("alice", env.p("big.bin"))
        assert info["sha1"] == digest.hexdigest()
    else:
        on_disk = (env.server.root / env.p("big.bin")).read_bytes()
        assert len(on_disk) == size and sha1(on_disk) == digest.hexdigest()


def test_plain_targets_report_what_is_not_preserved(env: Env) -> None:
    f = env.target.features
    if env.kind == "nextcloud":
        assert f.set_mtime and f.stored_checksum and f.chunked_upload
        return
    assert not (f.set_mtime or f.stored_checksum or f.chunked_upload or f.bulk_upload or f.shares
                or f.group_folders or f.auto_mkcol)
    assert set(env.target.not_preserved) >= {"modification times", "checksums", "shares", "versions"}


def test_plain_target_has_no_user_trees(env: Env) -> None:
    if env.kind == "nextcloud":
        pytest.skip("per-user trees are the point of the Nextcloud target")
    with pytest.raises(ConfigError):
        env.target.stat("alice", "x")


def test_credentials_check(env: Env) -> None:
    assert env.target.validate_credentials(["alice"] if env.kind == "nextcloud" else []) == []
    if env.kind == "nextcloud":
        return
    kind, url, _ = _reopen(env)
    login = "alice" if env.kind == "plain" else env.server.auth[0]
    bad = open_target(kind, url, {login: "not-the-password"}, pacer=fast_pacer())
    try:
        problems = bad.validate_credentials()
    finally:
        bad.close()
    assert [(p.user, p.kind) for p in problems] == [(login, "wrong-password")]


def test_encode_path_escapes_every_segment() -> None:
    assert encode_path("/a b/c#d%e?f/é/") == "a%20b/c%23d%25e%3Ff/%C3%A9"
    assert encode_path("x//y") == "x/y"
