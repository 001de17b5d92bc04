"""`init` lays out a migration folder and never clobbers a file a person edited."""

from __future__ import annotations

import json

from migrate.config import load_settings
from migrate.mapping import load_mappings


def test_init_writes_loadable_templates(cli, tmp_path) -> None:
    r = cli("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("m365-migrate.toml", "mappings/users.csv", "mappings/groups.csv", "mappings/sites.csv"):
        assert (tmp_path / name).is_file(), name
    settings = load_settings(tmp_path / "m365-migrate.toml", {}, env={})
    assert settings.state_path == tmp_path / "state" / "migration.db"
    load_mappings(settings.mappings, missing_ok=False)


def test_init_is_idempotent_and_keeps_edits(cli, tmp_path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    users = tmp_path / "mappings" / "users.csv"
    edited = users.read_text() + "alice@example.org,alice,pilot\n"
    users.write_text(edited)
    again = cli("--json", "init", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["written"] == [] and len(out["kept"]) == 5
    assert users.read_text() == edited
    forced = cli("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and "wrote" in forced.stdout
    assert "alice@example.org" not in users.read_text()


def test_init_writes_the_mappings_readme_that_templates_and_errors_point_to(cli, tmp_path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    readme = tmp_path / "mappings" / "README.md"
    users = tmp_path / "mappings" / "users.csv"
    assert "see README.md next to this file" in users.read_text()
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Mapping files") and "## Error messages" in text and "## sites.csv" in text
    users.write_text("source_upn,target_usr,batch\n")
    r = cli("doctor", cwd=tmp_path)
    assert "users.csv:1:12: unknown column 'target_usr'" in r.stdout and "mappings/README.md" in r.stdout, r.stdout
    assert "unknown column 'target_usr' in the header" in text  # the README explains that very message
