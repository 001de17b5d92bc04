"""The CLI frame: instant help without heavy imports, honest command list, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from migrate.errors import ExitCode
from migrate.models import Drive, DriveKind
from migrate.store import StateStore

HEAVY = ("msgraph", "azure.identity", "webdav4", "wsgidav", "httpx", "sqlite_utils", "msgraph_core", "numpy")


def test_help_imports_no_heavy_sdk() -> None:
    code = (
        "import sys\nfrom migrate.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_only_real_commands(cli) -> None:
    r = cli("--help")
    assert r.returncode == 0
    import typer.main

    from migrate.cli import app

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert name in r.stdout
        sub = cli(*name.split(), "--help")
        assert sub.returncode == 0, f"{name} --help failed: {sub.stderr}"
        assert (cmd.help or "").strip(), f"command {name} has no help text"


def test_unknown_command_is_usage_error(cli) -> None:
    r = cli("frobnicate")
    assert r.returncode == ExitCode.USAGE
    assert "No such command" in r.stderr and "Traceback" not in r.stderr


def test_status_without_state_is_a_clear_error(cli, tmp_path) -> None:
    r = cli("status", cwd=tmp_path)
    assert r.returncode == ExitCode.USAGE
    assert "no state database" in r.stderr and "discover" in r.stderr and "Traceback" not in r.stderr


def test_status_reads_the_store(cli, tmp_path, state_path) -> None:
    s = StateStore(state_path)
    s.upsert_drives([Drive("d1", DriveKind.ONEDRIVE, "OneDrive", owner_upn="alice@example.org")])
    s.upsert_items("d1", [{"item_id": "a", "name": "a.txt", "size": 5, "is_folder": 0, "path": "a.txt"},
                          {"item_id": "b", "name": "b.txt", "size": 7, "is_folder": 0, "path": "b.txt"}])
    s.transition("d1", "b", "failed", last_error="HTTP 507 quota exceeded")
    s.close()
    r = cli("--state", str(state_path), "status", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    zero = {"files": 0, "bytes": 0}
    assert data["totals"] == {"pending": {"files": 1, "bytes": 5}, "transferring": zero, "uploaded": zero,
                              "verified": zero, "failed": {"files": 1, "bytes": 7}, "skipped": zero, "conflict": zero}
    assert data["drives"][0]["counts"] == data["totals"]  # every status, also where a drive holds none
    assert data["failures"][0]["last_error"] == "HTTP 507 quota exceeded"
    assert "scan" in data["next_step"]
    text = cli("--state", str(state_path), "status", cwd=tmp_path)
    assert "alice@example.org" in text.stdout and "HTTP 507 quota exceeded" in text.stdout
    env = {"M365_MIGRATE_STATE": str(state_path)}
    assert json.loads(cli("status", "--json", cwd=tmp_path, env=env).stdout)["state"] == str(state_path)


def test_unexpected_error_has_no_traceback_unless_verbose(tmp_path) -> None:
    code = (
        "import sys\nimport migrate.cli as c\n"
        "@c.app.command('boom')\ndef _b():\n    raise ValueError('kaput')\n"
        "c.main(sys.argv[1:])"
    )
    quiet = subprocess.run([sys.executable, "-c", code, "boom"], capture_output=True, text=True)
    assert quiet.returncode == ExitCode.UNEXPECTED
    assert "kaput" in quiet.stderr and "Traceback" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code, "-v", "boom"], capture_output=True, text=True)
    assert loud.returncode == ExitCode.UNEXPECTED and "Traceback" in loud.stderr


def test_errors_map_to_exit_codes() -> None:
    from migrate import errors as e

    assert e.exit_code_for(e.ConfigError("x")) == 2
    assert e.exit_code_for(e.AuthError("x")) == 4
    assert e.exit_code_for(e.TargetFull("x")) == 5
    assert e.exit_code_for(e.AttentionNeeded("x")) == 3
    assert e.exit_code_for(KeyboardInterrupt()) == 130
    assert e.exit_code_for(RuntimeError()) == 1


def test_keyboard_interrupt_exits_130(tmp_path) -> None:
    code = (
        "import sys\nimport migrate.cli as c\n"
        "@c.app.command('stop')\ndef _s():\n    raise KeyboardInterrupt\n"
        "c.main(['stop'])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 130 and "resume" in r.stderr


def test_secrets_are_redacted_from_error_output(tmp_path) -> None:
    code = (
        "import migrate.cli as c\n"
        "from migrate.errors import SourceError\n"
        "@c.app.command('leak')\ndef _l():\n"
        "    raise SourceError('GET https://x/download.aspx?tempauth=SECRETVALUE failed; Authorization: Bearer eyJabc.def.ghi')\n"
        "c.main(['leak'])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "SECRETVALUE" not in r.stderr and "eyJabc" not in r.stderr


@pytest.mark.parametrize("args", [("--json", "copy"), ("status", "--json"), ("--json", "scan", "--workers", "0"),
                                  ("--json", "doctor")])
def test_json_errors_are_an_object_on_stdout(cli, tmp_path, args) -> None:
    """A script reading --json gets one document whatever happened: here an error object, with the exit code."""
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == ExitCode.USAGE, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    err = doc["error"]
    assert err["exit_code"] == 2 and err["type"] and err["message"] and "Traceback" not in r.stderr
    assert err["message"].splitlines()[0] in r.stderr  # the same words as the message people read


def test_doctor_json_is_an_object_with_its_exit_code(cli, tmp_path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    r = cli("--json", "doctor", cwd=tmp_path)
    assert r.returncode == ExitCode.USAGE, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert doc["checks"][0] == {"check": "configuration", "ok": False, "skipped": False,
                                "detail": doc["checks"][0]["detail"]}
    assert "tenant_id is not set" in doc["checks"][0]["detail"]


def test_status_shows_owners_whole(cli, tmp_path, state_path) -> None:
    long_upn = "maria-theresia.von-hohenzollern-sigmaringen@verwaltung.example.org"
    with StateStore(state_path) as s:
        s.upsert_drives([Drive("d1", DriveKind.ONEDRIVE, "OneDrive", owner_upn=long_upn)])
    r = cli("--state", str(state_path), "status", cwd=tmp_path)
    assert r.returncode == 0 and f" {long_upn} " in r.stdout, r.stdout


def test_status_of_files_and_calendars_is_one_json_document(cli, tmp_path, state_path) -> None:
    with StateStore(state_path) as s:
        s.upsert_drives([Drive("d1", DriveKind.ONEDRIVE, "OneDrive", owner_upn="alice@example.org")])
    r = cli("--state", str(state_path), "--json", "status", "--what", "files,calendars,contacts", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # one object: the files part, with calendars and contacts under "groupware"
    assert doc["drives"][0]["owner"] == "alice@example.org" and "groupware" in doc["groupware"]
