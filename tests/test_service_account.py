"""The first thing a new user meets on a real Nextcloud: the service account. Name the key and the row it needs."""

from __future__ import annotations

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import SPEC, setup_migration, write_credentials


def _plan(tmp_path, factory, nc, target: str):
    g = factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 3}))
    env, _ = setup_migration(tmp_path, g, target=target, targets=("alice",))
    return run_cli("plan", cwd=tmp_path, env=env)


def test_missing_service_account_names_the_key(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    creds = write_credentials(tmp_path, dict(nc.app_passwords))
    r = _plan(tmp_path, graph_sandbox_factory, nc, f'kind = "nextcloud"\nurl = "{nc.url}"\ncredentials = "{creds}"\n')
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out
    assert "[target] service_account is not set" in out
    assert 'service_account = "<admin uid>"' in out and "occ user:auth-tokens:add" in out


def test_service_account_without_a_credentials_row(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    creds = write_credentials(tmp_path, dict(nc.app_passwords))          # no row for admin
    r = _plan(tmp_path, graph_sandbox_factory, nc,
              f'kind = "nextcloud"\nurl = "{nc.url}"\ncredentials = "{creds}"\nservice_account = "admin"\n')
    out = r.stdout + r.stderr
    assert r.returncode in (2, 4), out
    assert "Traceback" not in out
    assert "'admin'" in out and "[target] credentials file" in out and "occ user:auth-tokens:add" in out


def test_init_template_explains_the_service_account(tmp_path):
    r = run_cli("init", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (tmp_path / "m365-migrate.toml").read_text()
    block = text[text.index("[target]"):text.index("[mappings]")]
    assert 'service_account = ""' in block
    assert 'kind = "nextcloud": the admin account' in " ".join(line.lstrip("# ") for line in block.splitlines())
