"""Configuration: option > environment > file > default, precise errors, and secrets kept out of sight."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from migrate.config import (
    Secret,
    Settings,
    load_app_passwords,
    load_certificate_path,
    load_client_secret,
    load_settings,
    missing_settings,
    parse_size,
    render_config_template,
    require_settings,
)
from migrate.errors import ConfigError, ExitCode, SecretsError


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def toml(text: str, name: str = "m365-migrate.toml") -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(text: str, env: dict[str, str] | None = None, overrides: dict | None = None) -> str:
    toml(text)
    with pytest.raises(ConfigError) as info:
        load_settings(None, overrides or {}, env=env or {})
    assert info.value.exit_code == ExitCode.USAGE
    return str(info.value)


def secret_file(name: str, content: str, mode: int = 0o600) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    os.chmod(path, mode)
    return path


# --- precedence -----------------------------------------------------------------------------------------------


def test_defaults_without_a_file_when_not_required(tmp_path: Path) -> None:
    s = load_settings(None, {}, env={}, require_file=False)
    assert s.config_path is None
    assert s.state_path == tmp_path / "state" / "migration.db"
    assert s.transfer.workers == 8 and s.transfer.chunk_size == 32 * 1024**2
    assert s.transfer.small_file_limit == 10 * 1024**2 and s.transfer.bulk_upload is True
    assert s.source.graph_url == "https://graph.microsoft.com/v1.0"
    assert s.source.authority == "https://login.microsoftonline.com" and s.source.org == "Unknown"
    assert s.target.on_conflict == "skip" and s.target.prefix == "" and s.policy.anonymous_links == "report"
    assert s.origin("transfer.workers") == "default"


def test_precedence_option_over_environment_over_file_over_default(tmp_path: Path) -> None:
    toml(
        '[transfer]\nworkers = 3\nchunk_size = "8MiB"\nbulk_upload = false\n'
        '[target]\nurl = "https://file.example.org/"\non_conflict = "rename"\n[state]\npath = "db/file.db"\n'
    )
    env = {
        "M365_MIGRATE_TRANSFER_WORKERS": "5",
        "M365_MIGRATE_TARGET_URL": "https://env.example.org",
        "M365_MIGRATE_STATE": "env.db",
        "M365_MIGRATE_TRANSFER_BULK_UPLOAD": "yes",
    }
    s = load_settings(None, {"transfer.workers": 4, "state.path": None}, env=env)
    assert s.transfer.workers == 4 and s.origin("transfer.workers") == "option"
    assert s.target.url == "https://env.example.org"
    assert s.origin("target.url") == "environment M365_MIGRATE_TARGET_URL"
    assert s.transfer.chunk_size == 8 * 1024**2 and s.origin("transfer.chunk_size").startswith("file ")
    assert s.transfer.bulk_upload is True
    assert s.target.on_conflict == "rename"
    assert s.transfer.small_file_limit == 10 * 1024**2 and s.origin("transfer.small_file_limit") == "default"
    assert s.state_path == tmp_path / "env.db"  # env relative paths: from the current folder
    s2 = load_settings(None, {"state.path": "opt.db"}, env=env)
    assert s2.state_path == tmp_path / "opt.db"
    s3 = load_settings(None, {}, env={})
    assert s3.transfer.workers == 3 and s3.target.url == "https://file.example.org"


def test_config_path_from_option_then_environment_and_paths_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    toml('[mappings]\nusers = "m/u.csv"\n[state]\npath = "s.db"\n', "a/conf.toml")
    toml("[transfer]\nworkers = 2\n", "b/conf.toml")
    env = {"M365_MIGRATE_CONFIG": "b/conf.toml"}
    s = load_settings(Path("a/conf.toml"), {}, env=env)
    assert s.config_path == tmp_path / "a" / "conf.toml"
    assert s.mappings.users == tmp_path / "a" / "m" / "u.csv"
    assert s.mappings.groups == tmp_path / "a" / "mappings" / "groups.csv"
    assert s.state_path == tmp_path / "a" / "s.db"
    assert load_settings(None, {}, env=env).transfer.workers == 2


def test_sizes_and_org_links() -> None:
    assert parse_size("32MiB") == 32 * 1024**2 and parse_size("10 MB") == 10_000_000
    assert parse_size("1.5GiB") == 1536 * 1024**2 and parse_size(4096) == 4096 and parse_size("7KB") == 7000
    toml(
        '[transfer]\nchunk_size = 10485760\nsmall_file_limit = "0"\n'
        '[policy]\norganization_links = "group: staff"\n'
    )
    s = load_settings(None, {}, env={})
    assert s.transfer.chunk_size == 10 * 1024**2 and s.transfer.small_file_limit == 0
    assert s.policy.organization_links == "group:staff" and s.policy.organization_group == "staff"


def test_settings_are_frozen() -> None:
    s = load_settings(None, {}, env={}, require_file=False)
    assert isinstance(s, Settings)
    with pytest.raises(AttributeError):
        s.transfer.workers = 9  # type: ignore[misc]


# --- errors ---------------------------------------------------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"m365-migrate\.toml: configuration file not found") as info:
        load_settings(None, {}, env={})
    assert "m365-migrate init" in str(info.value)
    with pytest.raises(
        ConfigError,
        match=r"other\.toml: configuration file not found \(named by "
        r"M365_MIGRATE_CONFIG\)",
    ):
        load_settings(None, {}, env={"M365_MIGRATE_CONFIG": "other.toml"}, require_file=False)
    with pytest.raises(ConfigError, match=r"x\.toml: configuration file not found \(named by --config\)"):
        load_settings(Path("x.toml"), {}, env={}, require_file=False)


def test_toml_syntax_error_names_line_and_column() -> None:
    msg = config_error('[target]\nkind = "nextcloud"\nurl = https://cloud.example.org\n')
    assert msg.startswith("m365-migrate.toml:3:7: TOML syntax error: Invalid value") and "double quotes" in msg


def test_toml_syntax_hints_fit_the_mistake() -> None:
    """Something after a value is not a quoting problem; a key set twice names the duplicate."""
    msg = config_error("[transfer]\nworkers = 8 oops\n")
    assert msg.startswith("m365-migrate.toml:2:13: TOML syntax error: Expected newline") and "double quotes" not in \
        msg.split("→")[1].split("text value")[0] and 'a comment needs a "#"' in msg
    assert "set twice" in config_error("[transfer]\nworkers = 8\nworkers = 4\n")
    assert config_error("[transfer]\nworkers = [1,\n").startswith("m365-migrate.toml:3: TOML syntax error")


def test_wrong_type_names_file_key_value_and_expectation() -> None:
    msg = config_error('# comment\n[transfer]\nworkers = "eight"\n')
    assert msg == (
        'm365-migrate.toml:3: [transfer] workers = "eight": expected a whole number from 1 to 64'
    )
    assert "expected a whole number from 1 to 64" in config_error("[transfer]\nworkers = 0\n")
    assert "expected true or false" in config_error('[transfer]\nbulk_upload = "yes"\n')
    assert 'chunk_size = "32 parsecs": expected a size from 5MiB to 5GiB' in config_error(
        '[transfer]\nchunk_size = "32 parsecs"\n'
    )
    assert (
        '[source] auth = "password": expected "certificate" | "client-secret" | "device-code"'
        in config_error('[source]\nauth = "password"\n')
    )
    assert 'expected "group:<name>"' in config_error('[policy]\norganization_links = "group"\n')
    assert "expected an https:// URL" in config_error('[target]\nurl = "http://cloud.example.org"\n')
    assert (
        load_settings(None, {"target.url": "http://127.0.0.1:8080/"}, env={}).target.url
        == "http://127.0.0.1:8080"
    )


def test_environment_and_option_errors_name_their_origin() -> None:
    msg = config_error("", env={"M365_MIGRATE_TRANSFER_WORKERS": "eight"})
    assert (
        msg
        == 'environment variable M365_MIGRATE_TRANSFER_WORKERS="eight": expected a whole number from 1 to 64'
    )
    msg = config_error("", overrides={"transfer.workers": 100})
    assert msg == "option transfer.workers = 100: expected a whole number from 1 to 64"
    assert "option transfer.wrkers: unknown setting" in config_error("", overrides={"transfer.wrkers": 1})


def test_unknown_section_and_keys_are_errors() -> None:
    msg = config_error("[transfr]\nworkers = 2\n")
    assert msg.startswith("m365-migrate.toml:1: [transfr]: unknown section") and "did you mean transfer?" in msg
    msg = config_error("# settings\n[transfer]\nworkers = 2\nworker = 2\n")
    assert (
        msg.startswith("m365-migrate.toml:4: [transfer] worker: unknown key") and "did you mean workers?" in msg
    )
    msg = config_error("\nworkers = 2\n")
    assert "m365-migrate.toml:2: workers: unknown top-level key" in msg and "did you mean [transfer] workers?" in msg
    msg = config_error("", env={"M365_MIGRATE_TRANSFER_WORKRS": "2"})
    assert (
        "M365_MIGRATE_TRANSFER_WORKRS: unknown setting (did you mean M365_MIGRATE_TRANSFER_WORKERS?)" in msg
    )
    load_settings(
        None, {}, env={"M365_MIGRATE_SANDBOX_SEED": "1", "M365_MIGRATE_CONFIG": "m365-migrate.toml"}
    )


def test_client_secret_in_toml_is_refused_without_echoing_it() -> None:
    toml('[source]\nclient_secret = "s3cr3t-value"\n')
    with pytest.raises(SecretsError) as info:
        load_settings(None, {}, env={})
    msg = str(info.value)
    assert (
        "m365-migrate.toml:2: [source] client_secret: secrets are never read from the configuration file" in msg
    )
    assert "M365_CLIENT_SECRET" in msg and "client_secret_file" in msg and "s3cr3t" not in msg
    assert "credentials" in config_error('[target]\napp_password = "x"\n')


def test_missing_settings_are_listed_for_doctor() -> None:
    s = load_settings(None, {}, env={}, require_file=False)
    missing = missing_settings(s)
    assert any("[source] tenant_id is not set" in m and "M365_MIGRATE_SOURCE_TENANT_ID" in m for m in missing)
    assert any("[target] url is not set" in m for m in missing)
    with pytest.raises(ConfigError, match="certificate_path"):
        require_settings(s, "source")
    full = load_settings(
        None,
        {
            "source.tenant_id": "t",
            "source.client_id": "c",
            "source.auth": "device-code",
            "target.url": "https://c.example.org",
        },
        env={},
        require_file=False,
    )
    require_settings(full)


# --- secrets --------------------------------------------------------------------------------------------------


def test_secret_never_shows() -> None:
    secret = Secret("hunter2")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), repr({"u": secret})):
        assert "hunter2" not in shown and "***" in shown
    assert secret.reveal() == "hunter2" and secret == Secret("hunter2") and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_client_secret_from_environment_then_file() -> None:
    path = secret_file("secrets/client-secret", "from-file\n")
    toml('[source]\nauth = "client-secret"\nclient_secret_file = "secrets/client-secret"\n')
    s = load_settings(None, {}, env={})
    assert load_client_secret(s, env={"M365_CLIENT_SECRET": "from-env"}).reveal() == "from-env"
    assert load_client_secret(s, env={}).reveal() == "from-file"
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError) as info:
        load_client_secret(s, env={})
    assert "mode 0644" in str(info.value) and f"chmod 600 {s.source.client_secret_file}" in str(info.value)
    path.unlink()
    with pytest.raises(SecretsError, match="client secret file .* not found"):
        load_client_secret(s, env={})
    none = load_settings(None, {"source.client_secret_file": ""}, env={})
    with pytest.raises(SecretsError, match="M365_CLIENT_SECRET"):
        load_client_secret(none, env={})


def test_certificate_file_permissions() -> None:
    cert = secret_file("app.pem", "-----BEGIN PRIVATE KEY-----\n", 0o640)
    s = load_settings(None, {"source.certificate_path": "app.pem"}, env={}, require_file=False)
    with pytest.raises(SecretsError, match=r"accessible by other users \(mode 0640\)"):
        load_certificate_path(s)
    os.chmod(cert, 0o400)
    assert load_certificate_path(s) == cert.resolve()


def test_app_passwords() -> None:
    secret_file(
        "secrets/nextcloud-app-passwords.csv",
        '# generated with occ user:auth-tokens:add\nuser,app_password\nanna, pw-anna-1 \nbob,"pw,b"\n',
    )
    s = load_settings(None, {}, env={}, require_file=False)
    passwords = load_app_passwords(s)
    assert {u: p.reveal() for u, p in passwords.items()} == {"anna": "pw-anna-1", "bob": "pw,b"}
    assert "pw-anna" not in repr(passwords)


def test_app_password_file_refused_when_world_readable() -> None:
    secret_file("secrets/nextcloud-app-passwords.csv", "user,app_password\nanna,pw\n", 0o644)
    s = load_settings(None, {}, env={}, require_file=False)
    with pytest.raises(SecretsError) as info:
        load_app_passwords(s)
    assert (
        "secrets/nextcloud-app-passwords.csv: credentials file ([target] credentials) is accessible"
        in str(info.value)
    )
    assert f"chmod 600 {s.target.credentials}" in str(info.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "creds.csv:1:1: the file is empty: expected the header line user,app_password"),
        ("anna,topsecret\n", "creds.csv:1:1: unknown column (not shown: this file holds secrets)"),
        ("user,app_password\nanna,\n", "creds.csv:2:6: app_password is empty"),
        (
            "user,app_password\nanna,a\nbob,b\nANNA,c\n",
            "creds.csv:4:1: user 'ANNA' appears twice: also on line 2",
        ),
        (
            "user,app_password\nanna,topsecret,x\n",
            "creds.csv:2:16: expected 2 values (user,app_password), found 3",
        ),
        ('user,app_password\nanna,"topsecret\n', "creds.csv:2:6: unbalanced double quote"),
        ("user,app_password\nan/na,topsecret\n", "creds.csv:2:1: expected a Nextcloud user id"),
    ],
)
def test_app_password_errors_name_file_line_and_never_the_password(content: str, expected: str) -> None:
    secret_file("creds.csv", content)
    s = load_settings(None, {"target.credentials": "creds.csv"}, env={}, require_file=False)
    with pytest.raises(SecretsError) as info:
        load_app_passwords(s)
    assert expected in str(info.value)
    assert "topsecret" not in str(info.value)


# --- template -------------------------------------------------------------------------------------------------


def test_template_loads_back_cleanly_and_documents_every_key() -> None:
    text = render_config_template()
    toml(text)
    s = load_settings(None, {}, env={})
    defaults = load_settings(None, {}, env={}, require_file=False)
    assert s.transfer == defaults.transfer and s.policy == defaults.policy and s.source == defaults.source
    assert s.target == defaults.target and s.state_path == defaults.state_path
    for key in (
        "tenant_id",
        "client_id",
        "auth",
        "certificate_path",
        "client_secret_file",
        "graph_url",
        "authority",
        "ca_bundle",
        "org",
        "kind",
        "url",
        "credentials",
        "service_account",
        "prefix",
        "on_conflict",
        "users",
        "groups",
        "sites",
        "workers",
        "chunk_size",
        "small_file_limit",
        "bulk_upload",
        "anonymous_links",
        "organization_links",
        "external_guests",
        "onenote",
        "path",
    ):
        assert f"\n{key} = " in text
    assert "client_secret =" not in text


# --- [target] share_rate ----------------------------------------------------------------------------------------


def test_share_rate_default_values_and_no_pacing() -> None:
    assert load_settings(None, {}, env={}, require_file=False).target.share_rate == (20, 600)
    toml('[target]\nshare_rate = "3/2"\n')
    assert load_settings(None, {}, env={}).target.share_rate == (3, 2)
    toml('[target]\nshare_rate = "0"\n')
    assert load_settings(None, {}, env={}).target.share_rate == (0, 0)
    assert load_settings(None, {}, env={"M365_MIGRATE_TARGET_SHARE_RATE": "40/600"}).target.share_rate == (40, 600)


@pytest.mark.parametrize("value", ['"20"', '"20/0"', '"x/600"', '"-1/600"', "20", '"20/600/1"'])
def test_share_rate_wrong_values_name_key_and_expectation(value: str) -> None:
    msg = config_error(f"[target]\nshare_rate = {value}\n")
    assert f"m365-migrate.toml:2: [target] share_rate = {value}" in msg and '"20/600"' in msg


def test_team_folder_options() -> None:
    """`create_team_folders` is off unless asked for; `migration_group` must be a usable Nextcloud group id."""
    from migrate.config import load_settings

    t = load_settings(None, {}, env={}, require_file=False).target
    assert t.create_team_folders is False and t.migration_group == "m365-migration"
    assert "[target] create_team_folders = \"yes\": expected true or false" in config_error(
        '[target]\ncreate_team_folders = "yes"\n')
    for bad in ('""', '"a/b"', '"' + "g" * 65 + '"'):
        assert "expected a Nextcloud group id" in config_error(f"[target]\nmigration_group = {bad}\n"), bad
