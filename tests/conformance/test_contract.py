"""The Target contract every backend keeps, run on every rig: what the copy engine relies on from any target."""

from __future__ import annotations

import hashlib
import tracemalloc
import unicodedata
from collections.abc import Iterator

import pytest

from migrate.backends.webdav.wire import encode_path
from migrate.errors import ConfigError, MigrateError, TargetItemError
from migrate.protocols import Target
from tests.conformance.rigs import MiB, Rig


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def put(rig: Rig, t: Target, rel: str, data: bytes, mtime: float | None = 1_700_000_000):
    return t.upload(rig.user, rig.p(rel), [data], len(data), mtime=mtime, sha1=sha1(data))


def test_is_a_target(rig: Rig) -> None:
    assert isinstance(rig.target(), Target)


def test_upload_stat_walk_delete(rig: Rig) -> None:
    t, u = rig.target(), rig.user
    entry = put(rig, t, "docs/a.txt", b"alpha")
    assert entry.size == 5 and not entry.is_folder and entry.path == rig.p("docs/a.txt")
    put(rig, t, "docs/sub/b.bin", b"b" * 1000)
    st = t.stat(u, rig.p("docs/a.txt"))
    assert st is not None and st.size == 5 and st.etag
    folder = t.stat(u, rig.p("docs"))
    assert folder is not None and folder.is_folder
    assert t.stat(u, rig.p("nothing-here.txt")) is None
    walked = {e.path: e for e in t.walk(u, rig.base)}
    assert set(walked) == {rig.p("docs"), rig.p("docs/a.txt"), rig.p("docs/sub"), rig.p("docs/sub/b.bin")}
    assert walked[rig.p("docs/sub")].is_folder and walked[rig.p("docs/sub/b.bin")].size == 1000
    assert rig.fetch(rig.p("docs/a.txt")) == b"alpha"
    put(rig, t, "docs/a.txt", b"alpha, second version")                 # overwrite replaces the content
    assert t.stat(u, rig.p("docs/a.txt")).size == len(b"alpha, second version")
    assert rig.fetch(rig.p("docs/a.txt")) == b"alpha, second version"
    t.delete(u, rig.p("docs/a.txt"))
    assert t.stat(u, rig.p("docs/a.txt")) is None
    t.delete(u, rig.p("docs/a.txt"))  # missing is fine
    t.delete(u, rig.p("docs"))
    assert list(t.walk(u, rig.base)) == []
    put(rig, t, "docs/sub/again.txt", b"x")   # the folder cache forgot deleted folders: parents are made again
    assert t.stat(u, rig.p("docs/sub/again.txt")).size == 1


def test_open_read_streams_the_stored_bytes(rig: Rig) -> None:
    """What adoption (engine.adopt) hashes: a file as the server holds it, in blocks, never whole in memory."""
    t, data = rig.target(), bytes(range(256)) * 9000  # 2.2 MiB: more than one block
    put(rig, t, "read/back.bin", data)
    with t.open_read(rig.user, rig.p("read/back.bin")) as chunks:  # type: ignore[attr-defined]
        blocks = list(chunks)
    assert len(blocks) > 1 and max(len(b) for b in blocks) <= 1024 * 1024
    assert b"".join(blocks) == data


def test_ensure_folder_is_idempotent_and_treats_405_as_existing(rig: Rig) -> None:
    t, u = rig.target(), rig.user
    start = len(rig.server.requests) if rig.name == "nextcloud" else 0
    t.ensure_folder(u, rig.p("x/y/z"))
    t.ensure_folder(u, rig.p("x/y/z"))
    assert t.stat(u, rig.p("x/y/z")).is_folder
    rig.target().ensure_folder(u, rig.p("x/y/z/w"))       # a new instance: MKCOL answers 405 for known levels
    assert t.stat(u, rig.p("x/y/z/w")).is_folder
    if rig.name == "nextcloud":
        mkcols = [r for r in rig.server.requests[start:] if r[0] == "MKCOL" and r[1].rstrip("/").endswith(
            f"{rig.base}/x")]
        assert [r[2] for r in mkcols] == [201, 405]  # once per target instance, never again from the cache


def test_zero_byte_file(rig: Rig) -> None:
    t = rig.target()
    assert put(rig, t, "empty.txt", b"").size == 0
    st = t.stat(rig.user, rig.p("empty.txt"))
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
def test_awkward_names_round_trip(rig: Rig, name: str) -> None:
    t, data = rig.target(), name.encode()
    assert put(rig, t, f"dir #1%/{name}", data).size == len(data)
    st = t.stat(rig.user, rig.p(f"dir #1%/{name}"))
    assert st is not None and st.size == len(data)
    names = [e.path.rsplit("/", 1)[-1] for e in t.walk(rig.user, rig.p("dir #1%"))]
    assert len(names) == 1
    # Nextcloud stores names in NFC; other servers keep the bytes they were given.
    assert unicodedata.normalize("NFC", names[0]) == unicodedata.normalize("NFC", name)
    if not rig.nextcloud:
        assert names[0] == name
    assert rig.fetch(rig.p(f"dir #1%/{names[0]}")) == data
    # Nextcloud 32.0.1 cuts a trash name over 250 bytes and can then not purge it over WebDAV: delete such a
    # file with its folder, whose trash entry the suite can purge, so a real server is left as it was.
    cut = rig.nextcloud and len(name.encode()) + len(".d1700000000") > 250
    t.delete(rig.user, rig.p("dir #1%" if cut else f"dir #1%/{name}"))
    assert t.stat(rig.user, rig.p(f"dir #1%/{name}")) is None


def test_large_file_is_streamed_not_buffered(rig: Rig) -> None:
    """64 MiB from a generator; the client holds a bounded amount (chunks/spools), never the whole file."""
    size = 64 * MiB
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha1()
    for i in range(64):
        digest.update(block[i:] + block[:i])

    def gen() -> Iterator[bytes]:
        for i in range(64):
            yield block[i:] + block[:i]

    t = rig.target()
    tracemalloc.start()
    try:
        entry = t.upload(rig.user, rig.p("big.bin"), gen(), size, mtime=1_650_000_000, sha1=lambda: digest.hexdigest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert entry.size == size
    from migrate.backends.nextcloud.chunked import CHUNK_MEMORY

    assert peak < CHUNK_MEMORY.limit + 4 * MiB < size, f"peak traced memory {peak / MiB:.1f} MiB for a 64 MiB upload"
    assert rig.sha1_at(rig.p("big.bin")) == digest.hexdigest()


def test_features_say_what_is_not_preserved(rig: Rig) -> None:
    t = rig.target()
    f = t.features
    if rig.nextcloud:
        assert f.set_mtime and f.stored_checksum and f.chunked_upload and f.bulk_upload and f.shares
        return
    assert not (f.set_mtime or f.stored_checksum or f.chunked_upload or f.bulk_upload or f.shares
                or f.group_folders or f.auto_mkcol)
    assert set(t.not_preserved) >= {"modification times", "checksums", "shares", "versions"}


def test_user_trees(rig: Rig) -> None:
    """Nextcloud writes each user's own tree; a plain WebDAV target has one tree and refuses a user name."""
    t = rig.target()
    if not rig.nextcloud:
        with pytest.raises(ConfigError):
            t.stat("alice", "x")
        return
    put(rig, t, "mine.txt", b"mine")
    assert t.stat(rig.other, rig.p("mine.txt")) is None          # not in the other user's tree


def test_credentials_check(rig: Rig) -> None:
    t = rig.target()
    assert t.validate_credentials([rig.user, rig.other] if rig.nextcloud else []) == []
    if rig.nextcloud:
        return
    login = next(iter(rig.passwords))
    bad = rig.target({login: "not-the-password"})
    assert [(p.user, p.kind) for p in bad.validate_credentials()] == [(login, "wrong-password")]


def test_an_illegal_name_is_an_item_error(rig: Rig) -> None:
    t = rig.target()
    name = "x" * 300 + ".txt"           # longer than any file system and Nextcloud allow
    # Nextcloud names the rule (400); a plain server may only fail (WsgiDAV: 500, retried, then given up)
    with pytest.raises(TargetItemError if rig.nextcloud else MigrateError):
        put(rig, t, name, b"too long")
    if rig.nextcloud:
        assert t.stat(rig.user, rig.p(name)) is None


def test_encode_path_escapes_every_segment() -> None:
    assert encode_path("/a b/c#d%e?f/é/") == "a%20b/c%23d%25e%3Ff/%C3%A9"
    assert encode_path("x//y") == "x/y"


def test_conditional_move_and_delete_for_sync(rig: Rig) -> None:
    """What `sync` relies on: MOVE never over an existing destination and only while the etag is ours (folders
    whole, the etag kept), DELETE only while the etag is ours; outcomes named, nothing raised."""
    from migrate.engine.files.sync import _Applier

    t, u = rig.target(), rig.user
    a = put(rig, t, "sync/a.txt", b"alpha")
    put(rig, t, "sync/b.txt", b"beta")
    put(rig, t, "sync/dir/in.txt", b"inside")
    settle = lambda outcome, src, dest, etag=a.etag: _Applier.settle(  # noqa: E731 - the engine's reading
        type("A", (), {"target": t})(), outcome, u, rig.p(src), rig.p(dest), etag)
    out = t.move(u, rig.p("sync/a.txt"), rig.p("sync/b.txt"), if_match=a.etag)
    assert settle(out, "sync/a.txt", "sync/b.txt") == "taken" and rig.fetch(rig.p("sync/b.txt")) == b"beta"
    out = t.move(u, rig.p("sync/a.txt"), rig.p("sync/c.txt"), if_match='"0123456789abcdef"')
    assert settle(out, "sync/a.txt", "sync/c.txt", '"0123456789abcdef"') == "changed" and t.stat(u, rig.p("sync/c.txt")) is None
    out = t.move(u, rig.p("sync/nothing.txt"), rig.p("sync/c.txt"), if_match=a.etag)
    assert settle(out, "sync/nothing.txt", "sync/c.txt") == "missing"
    assert t.move(u, rig.p("sync/a.txt"), rig.p("sync/c.txt"), if_match=a.etag) == "done"
    moved = t.stat(u, rig.p("sync/c.txt"))
    assert moved is not None and rig.fetch(rig.p("sync/c.txt")) == b"alpha" and t.stat(u, rig.p("sync/a.txt")) is None
    if rig.kind == "nextcloud":
        assert moved.etag == a.etag  # Nextcloud keeps a file's etag through a MOVE
    assert t.move(u, rig.p("sync/dir"), rig.p("sync/moved dir")) == "done"
    assert rig.fetch(rig.p("sync/moved dir/in.txt")) == b"inside"
    assert t.delete_if(u, rig.p("sync/c.txt"), '"0123456789abcdef"') in ("changed", "taken")
    assert t.stat(u, rig.p("sync/c.txt")) is not None
    assert t.delete_if(u, rig.p("sync/c.txt"), moved.etag) == "done" and t.stat(u, rig.p("sync/c.txt")) is None
    assert t.delete_if(u, rig.p("sync/c.txt"), moved.etag) == "missing"
    t.delete(u, rig.p("sync"))
