"""What one worker holds while it sends files: the bytes as they were read, never joined into more copies.

The Nextcloud sandbox runs in its own process (`m365-migrate sandbox nextcloud`), so tracemalloc here counts the
client's allocations only. A 4 MiB file already in hand used to cost two more copies of itself on its way out (the
join that made it replayable, then httpx/h11 framing the one large piece); a bulk batch cost two more (each part,
then the joined body). Figures for whole copies: benchmarks/memory_curve.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.backends.nextcloud.bulk import SmallFile
from migrate.backends.nextcloud.target import NextcloudTarget
from migrate.transport.pacer import Pacer
from migrate.transport.spool import MemoryBudget, Spool

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NextcloudTarget]:
    exe = Path(sys.executable).with_name("m365-migrate")
    data = tmp_path_factory.mktemp("nc")
    p = subprocess.Popen([str(exe), "sandbox", "nextcloud", "--users", "alice", "--data", str(data)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(p.stdout.readline())  # type: ignore[union-attr]
        t = NextcloudTarget(info["url"], {"alice": info["users"]["alice"]}, pacer=Pacer("test", max_attempts=3))
        yield t
        t.close()
    finally:
        p.terminate()
        p.wait(30)


def _peak(fn) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_small_file_leaves_from_the_pieces_it_was_read_in(target: NextcloudTarget) -> None:
    pieces = [os.urandom(MiB) for _ in range(4)]  # 4 MiB: the largest size sent as one replayable PUT
    sha1 = hashlib.sha1(b"".join(pieces)).hexdigest()
    spool = Spool(MemoryBudget(8 * MiB), 4 * MiB)
    for piece in pieces:
        spool.write(piece)
    assert spool.in_memory
    entry = None

    def send() -> None:
        nonlocal entry
        entry = target.upload("alice", "mem/one.bin", spool, 4 * MiB, mtime=1_700_000_000, sha1=sha1)

    peak = _peak(send)
    spool.close()
    assert entry is not None and entry.size == 4 * MiB
    assert any(c.lower() == f"sha1:{sha1}" for c in entry.checksums)
    assert peak < 2 * MiB, f"{peak / MiB:.1f} MiB held on top of a 4 MiB file already in memory"


def test_a_bulk_batch_is_sent_without_copies_of_its_files(target: NextcloudTarget) -> None:
    files = [SmallFile(f"mem/bulk/{i}.bin", os.urandom(MiB), 1_700_000_000.0, None) for i in range(4)]
    target.ensure_folder("alice", "mem/bulk")
    results: dict = {}

    def send() -> None:
        results.update(target.upload_many("alice", files))

    peak = _peak(send)
    assert len(results) == 4 and all(getattr(r, "size", None) == MiB for r in results.values()), results
    assert peak < 2 * MiB, f"{peak / MiB:.1f} MiB held on top of a 4 MiB batch already in memory"
