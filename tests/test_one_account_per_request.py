"""copy, share and verify with a service account and two users against the sandbox with sessions on.

Nextcloud sets session cookies on every Basic-auth answer, and a request that carries them runs as the session's
user (reference §1.2). Before the cookie fix this journey stopped at the first folder with a 403, because the
admin's session rode along with alice's credentials.
"""

from __future__ import annotations

import json

import pytest

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import assert_target_matches_truth, file_rows, nextcloud_target, setup_migration

SPEC = dict(seed=5, users=2, sites=0, teams=0, files_per_drive=30, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=True, versions=False)


@pytest.fixture
def tenant(graph_sandbox_factory):
    return graph_sandbox_factory(TenantSpec(**SPEC))


def test_copy_share_verify_as_three_accounts_send_no_cookie(tmp_path, tenant, nextcloud_sandbox):
    nc = nextcloud_sandbox
    assert nc.state.sessions_enabled
    env, _ = setup_migration(tmp_path, tenant, target=nextcloud_target(tmp_path, nc))
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + '\n[policy]\norganization_links = "group:staff"\n')
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr   # 3: links and guests the policy does not carry over
    for step in ("copy", "share", "verify"):
        r = run_cli(step, cwd=tmp_path, env=env)
        assert r.returncode == 0, f"{step}: {r.stdout}{r.stderr}"
    rows = file_rows(tmp_path)
    assert assert_target_matches_truth(tenant, nc, rows) > 0
    owners = {r["target_user"] for r in rows}
    assert owners == {"alice", "bob"}
    shares = nc.shares
    assert shares and {s["uid_owner"] for s in shares} <= owners
    # the properties themselves: sessions were handed out, none came back, nobody ran as a session's user
    assert any(r[0] == "PROPFIND" for r in nc.requests)
    assert nc.state.sessions, "the sandbox set session cookies"
    assert nc.cookie_requests == 0 and nc.state.session_logins == 0
    status = run_cli("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode in (0, 3), status.stdout + status.stderr
    assert json.loads(status.stdout)
