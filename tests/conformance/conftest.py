"""Fixtures of the target conformance suite: `rig` is every server, `nc_rig` every Nextcloud (sandbox, real)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.rigs import Rig, real_server

REAL = real_server()
ALL = ["nextcloud", "plain", "apache"] + (["real"] if REAL else [])
NEXTCLOUDS = ["nextcloud"] + (["real"] if REAL else [])


def _make(request: pytest.FixtureRequest, name: str) -> Rig:
    if name == "nextcloud":
        nc = request.getfixturevalue("nextcloud_sandbox")
        return Rig("nextcloud", "nextcloud", nc.url, {**nc.app_passwords, "admin": nc.admin[1]}, "alice",
                   other="bob", admin="admin", server=nc)
    if name == "plain":
        nc = request.getfixturevalue("plain_webdav_sandbox")
        return Rig("plain", "webdav", f"{nc.url}/remote.php/dav/files/alice/", {"alice": nc.app_passwords["alice"]},
                   "", server=nc)
    if name == "apache":
        ap = request.getfixturevalue("apache_dav")
        return Rig("apache", "webdav", ap.url, {ap.auth[0]: ap.auth[1]}, "", server=ap)
    assert REAL is not None
    return Rig("real", "nextcloud", REAL["url"].rstrip("/"),
               {REAL["admin"]: REAL["admin_pw"], REAL["user"]: REAL["user_pw"], REAL["other"]: REAL["other_pw"]},
               REAL["user"], other=REAL["other"], admin=REAL["admin"])


def _run(request: pytest.FixtureRequest, name: str) -> Iterator[Rig]:
    rig = _make(request, name)
    before = rig.snapshot() if rig.real else None
    try:
        yield rig
    finally:
        for t in rig.opened:
            t.close()
        if rig.real:
            rig.clean(before)
            assert rig.snapshot() == before, "the test left something on the real server"


@pytest.fixture(params=ALL)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from _run(request, request.param)


@pytest.fixture(params=NEXTCLOUDS)
def nc_rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from _run(request, request.param)
