"""Version history at the target (issue 24, reference nextcloud-api.md §9): the sandbox and a real Nextcloud.

Replaying a file's versions oldest first, each PUT with its own mtime and labelled while it is current, leaves
versions named by those times, in order, with their bytes and labels, in a home folder and in a team folder.
"""

from __future__ import annotations

import hashlib

import pytest

from migrate.errors import MigrateError
from tests.conformance.rigs import Rig

TIMES = (1_600_000_000, 1_650_000_000, 1_700_000_000)


def replay(t, user: str, path: str, bodies: list[bytes]) -> str:
    """Upload each body with its time, labelling each version while it is current; returns the file id."""
    fid = None
    for n, (body, ts) in enumerate(zip(bodies, TIMES, strict=False), 1):
        t.upload(user, path, [body], len(body), mtime=ts, sha1=hashlib.sha1(body).hexdigest())
        fid = fid or t.file_id(user, path)
        t.label_version(user, fid, ts, f"Microsoft 365 version {n}.0, J. Doe, at {ts}")
    assert fid is not None
    return fid


def read(t, user: str, fid: str, ts: int) -> bytes:
    with t.open_version(user, fid, ts) as chunks:
        return b"".join(chunks)


def test_replayed_versions_are_named_by_their_times_with_their_labels(nc_rig: Rig) -> None:
    t = nc_rig.target()
    assert t.features.versions
    bodies = [b"version one", b"version two, longer", b"version three, longest of all"]
    fid = replay(t, nc_rig.user, nc_rig.p("doc.txt"), bodies)
    got = t.list_versions(nc_rig.user, fid)
    assert [(v.timestamp, v.size) for v in got] == [(ts, len(b)) for ts, b in zip(TIMES, bodies, strict=True)]
    assert [v.label for v in got] == [f"Microsoft 365 version {n}.0, J. Doe, at {ts}" for n, ts in
                                      enumerate(TIMES, 1)]
    assert {v.author for v in got} == {nc_rig.user}, "Nextcloud records the uploading account as author"
    assert [read(t, nc_rig.user, fid, ts) for ts in TIMES[:2]] == bodies[:2]
    with pytest.raises(MigrateError):                     # a home folder answers 404 for the current entry
        read(t, nc_rig.user, fid, TIMES[2])
    # the same time sent again keeps one version (the row is updated), so a resumed replay adds none
    t.upload(nc_rig.user, nc_rig.p("doc.txt"), [bodies[2]], len(bodies[2]), mtime=TIMES[2], sha1=None)
    assert [v.timestamp for v in t.list_versions(nc_rig.user, fid)] == list(TIMES)


def test_no_version_is_kept_of_an_empty_file(nc_rig: Rig) -> None:
    """§9.2 point 2: an overwrite of a 0-byte file keeps no version of it ("no use making versions for empty
    files"): a zero-byte source version cannot be carried, and the engine says so."""
    t = nc_rig.target()
    t.upload(nc_rig.user, nc_rig.p("e.txt"), [b""], 0, mtime=TIMES[0], sha1=None)
    t.upload(nc_rig.user, nc_rig.p("e.txt"), [b"now"], 3, mtime=TIMES[1], sha1=None)
    fid = t.file_id(nc_rig.user, nc_rig.p("e.txt"))
    assert [v.timestamp for v in t.list_versions(nc_rig.user, fid)] == [TIMES[1]]


def test_team_folder_versions_are_replayed_the_same_way(nc_rig: Rig) -> None:
    """§9.2 point 6: team folders have their own versions backend; the same replay gives the same names and
    labels, listed under the writer's versions collection; the current entry can be read there."""
    t = nc_rig.target()
    with nc_rig.team_folder():
        bodies = [b"team one", b"team two!", b"team three!!"]
        fid = replay(t, nc_rig.user, f"{nc_rig.base}/doc.txt", bodies)
        got = t.list_versions(nc_rig.user, fid)
        assert [(v.timestamp, v.size) for v in got] == [(ts, len(b)) for ts, b in zip(TIMES, bodies, strict=True)]
        assert all(v.label and v.label.startswith("Microsoft 365 version") for v in got)
        assert [read(t, nc_rig.user, fid, ts) for ts in TIMES] == bodies
        t.delete(nc_rig.user, f"{nc_rig.base}/doc.txt")


def put_under(t, user: str, path: str) -> tuple[str, list[bytes]]:
    """A file already there with its current bytes (time TIMES[2], labelled), then its history put under it as
    the engine does for files copied before versions were on: the earlier versions oldest first, then a restore
    of the copy of the current bytes the first overwrite kept. Returns (file id, bodies oldest first)."""
    bodies = [b"under one", b"under two, longer", b"the current bytes, longest"]
    t.upload(user, path, [bodies[2]], len(bodies[2]), mtime=TIMES[2], sha1=hashlib.sha1(bodies[2]).hexdigest())
    fid = t.file_id(user, path)
    t.label_version(user, fid, TIMES[2], "Microsoft 365 version 3.0, J. Doe, current")
    for n, (body, ts) in enumerate(zip(bodies[:2], TIMES[:2], strict=True), 1):
        t.upload(user, path, [body], len(body), mtime=ts, sha1=hashlib.sha1(body).hexdigest())
        t.label_version(user, fid, ts, f"Microsoft 365 version {n}.0, J. Doe, at {ts}")
    assert int(t.stat(user, path).mtime) == TIMES[1], "the newest earlier version is current before the restore"
    t.restore_version(user, fid, TIMES[2])
    return fid, bodies


def check_put_under(t, user: str, path: str, fid: str, bodies: list[bytes], *, current_readable: bool) -> None:
    got = t.list_versions(user, fid)
    assert [(v.timestamp, v.size) for v in got] == [(ts, len(b)) for ts, b in zip(TIMES, bodies, strict=True)], \
        "exactly the three versions: no stray copy of the current bytes"
    assert got[-1].label == "Microsoft 365 version 3.0, J. Doe, current"
    assert [v.label for v in got[:2]] == [f"Microsoft 365 version {n}.0, J. Doe, at {ts}" for n, ts in
                                          enumerate(TIMES[:2], 1)]
    assert [read(t, user, fid, ts) for ts in TIMES[:2]] == bodies[:2]
    entry = t.stat(user, path)
    assert (entry.size, int(entry.mtime)) == (len(bodies[2]), TIMES[2])
    assert t.file_id(user, path) == fid, "the same file: its id (and shares) are kept"
    assert t.recalculate_sha1(user, path).lower() == "sha1:" + hashlib.sha1(bodies[2]).hexdigest()
    if current_readable:
        assert read(t, user, fid, TIMES[2]) == bodies[2]


def test_history_goes_under_a_file_already_there_by_a_final_restore(nc_rig: Rig) -> None:
    """§9.1/§9.2: a restore makes the kept copy of the current bytes current again with their time, and the
    content it replaces becomes a version named by its own time: the replay ends exact, nothing sent twice."""
    t = nc_rig.target()
    fid, bodies = put_under(t, nc_rig.user, nc_rig.p("under.txt"))
    check_put_under(t, nc_rig.user, nc_rig.p("under.txt"), fid, bodies, current_readable=False)


def test_history_goes_under_a_file_in_a_team_folder_the_same_way(nc_rig: Rig) -> None:
    t = nc_rig.target()
    with nc_rig.team_folder():
        path = f"{nc_rig.base}/under.txt"
        fid, bodies = put_under(t, nc_rig.user, path)
        check_put_under(t, nc_rig.user, path, fid, bodies, current_readable=True)
        t.delete(nc_rig.user, path)
