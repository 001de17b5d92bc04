"""How every target answer maps to our errors: 401, 403, 404, 409, 412, 423, 429 and 507.

The pacer retries what is Transient (423, 429, 5xx) and lets the rest through; each test provokes the real answer
from the server (no injected faults), so the mapping holds on a real Nextcloud too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from migrate.errors import AuthError, TargetFull, TargetItemError, TargetLocked, TargetRefused, ThrottledError
from tests.conformance.rigs import MiB, Rig, fast_pacer

USERS = "/ocs/v2.php/cloud/users"


def test_401_is_an_auth_error_naming_the_user(nc_rig: Rig) -> None:
    bad = nc_rig.target({**nc_rig.passwords, nc_rig.other: "not-the-app-password"})
    with pytest.raises(AuthError, match=nc_rig.other):
        bad.stat(nc_rig.other, "anything")


def test_403_is_a_refusal_naming_the_account_and_the_causes(nc_rig: Rig) -> None:
    """Writing into another user's tree: 403 from Nextcloud (reference §1.2)."""
    t = nc_rig.target()
    url = f"{nc_rig.url}/remote.php/dav/files/{nc_rig.other}/{nc_rig.base}"
    with pytest.raises(TargetRefused) as err:
        t.session.send("MKCOL", url, auth=nc_rig.auth(), what=f"MKCOL {nc_rig.other}:{nc_rig.base!r}",
                       user=nc_rig.user)
    assert nc_rig.user in str(err.value) and "403" in str(err.value) and "session" in str(err.value)
    assert err.value.exit_code == 3


def test_404_of_a_missing_file(rig: Rig) -> None:
    t = rig.target()
    assert t.stat(rig.user, rig.p("missing.txt")) is None
    if rig.nextcloud:
        with pytest.raises(TargetItemError, match="404"), t.open_read(rig.user, rig.p("missing.txt")) as s:
            b"".join(s)


def test_409_when_the_parent_is_missing(nc_rig: Rig) -> None:
    t = nc_rig.target()
    with pytest.raises(TargetItemError, match="409"):
        t.dav.mkcol(nc_rig.user, nc_rig.p("no-parent/child"))


def test_412_when_the_destination_exists_and_overwrite_is_off(nc_rig: Rig) -> None:
    t = nc_rig.target()
    for name in ("a", "b"):
        t.upload(nc_rig.user, nc_rig.p(name), [b"x"], 1, sha1=None)
    with pytest.raises(TargetItemError, match="412"):
        t.dav.move(nc_rig.user, nc_rig.p("a"), nc_rig.p("b"), overwrite=False)


def test_423_while_another_writer_streams_to_the_same_path(nc_rig: Rig) -> None:
    """A PUT while another PUT to the same path is streaming gets 423 (§8.3); retried, then TargetLocked."""
    t = nc_rig.target(pacer=fast_pacer(attempts=2))
    t.ensure_folder(nc_rig.user, nc_rig.p())
    started, release = threading.Event(), threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"a" * MiB
        started.set()
        release.wait(20)
        yield b"b" * MiB

    def writer() -> None:
        with nc_rig.http() as c:
            c.put(nc_rig.file_url(nc_rig.p("busy.bin")), content=slow(), auth=nc_rig.auth(),
                  headers={"Content-Length": str(2 * MiB)})

    th = threading.Thread(target=writer)
    th.start()
    try:
        assert started.wait(20)
        # The real server takes its lock once PHP runs the PUT: on a loaded machine that can take a second.
        time.sleep(2.0 if nc_rig.real else 0.3)
        with pytest.raises(TargetLocked, match="423"):
            t.upload(nc_rig.user, nc_rig.p("busy.bin"), [b"mine"], 4, sha1=None)
    finally:
        release.set()
        th.join(30)
    assert t.stat(nc_rig.user, nc_rig.p("busy.bin")).size == 2 * MiB


def test_429_from_the_share_rate_limit(nc_rig: Rig) -> None:
    """createShare allows 20 calls per user per 10 minutes (§8.2). Uses the second account, whose share window
    stays full for 10 minutes afterwards on a real server."""
    from migrate.backends.nextcloud.shares import ShareRateLimited

    t = nc_rig.target(pacer=fast_pacer(attempts=1))
    t.upload(nc_rig.other, nc_rig.p("r.txt"), [b"r"], 1, sha1=None)
    with pytest.raises((ShareRateLimited, ThrottledError)):
        for _ in range(21):
            t.shares.create(nc_rig.other, nc_rig.p("r.txt"), 0, nc_rig.user, permissions=1)


def test_507_when_the_quota_is_full(nc_rig: Rig) -> None:
    before = nc_rig.ocs("GET", f"{USERS}/{nc_rig.other}?format=json", as_user=nc_rig.admin
                       ).json()["ocs"]["data"]["quota"]["quota"]
    r = nc_rig.ocs("PUT", f"{USERS}/{nc_rig.other}?format=json", as_user=nc_rig.admin,
                   data={"key": "quota", "value": str(1 * MiB)})
    assert r.status_code == 200, r.text
    try:
        t = nc_rig.target()
        with pytest.raises(TargetFull, match=nc_rig.other):
            t.upload(nc_rig.other, nc_rig.p("full.bin"), [b"z" * (3 * MiB)], 3 * MiB, sha1=None)
        assert TargetFull("x").exit_code == 5
    finally:
        restore = "none" if int(before) < 0 else str(before)
        nc_rig.ocs("PUT", f"{USERS}/{nc_rig.other}?format=json", as_user=nc_rig.admin,
                   data={"key": "quota", "value": restore})
