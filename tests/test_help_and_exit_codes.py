"""`--help` reads as a newcomer needs it and names each command's exit codes, the same ones as the README."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from migrate.cli import app
from migrate.cli_codes import COMMANDS, MEANING
from tests.conftest import REPO, run_cli

runner = CliRunner()


def _help(*args: str) -> str:
    r = runner.invoke(app, [*args, "--help"], prog_name="m365-migrate")
    assert r.exit_code == 0, r.output
    return r.output


def _registered() -> set[str]:
    names = set()
    for info in app.registered_commands:
        names.add(info.name or info.callback.__name__.replace("_", "-"))
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            names.add(f"{group.name} {info.name or info.callback.__name__.replace('_', '-')}")
    return names


def test_every_command_has_an_exit_code_row() -> None:
    assert _registered() == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_the_codes_the_command_uses(command: str) -> None:
    text = " ".join(_help(*command.split()).split())  # one line: the help wraps
    codes, three = COMMANDS[command]
    assert "Exit codes:" in text
    listed = [int(c) for c in re.findall(r"(?:^| )(\d{1,3}) (?=[a-z(])", text[text.index("Exit codes:"):])]
    assert listed == list(codes), (command, listed)
    if 3 in codes:
        assert three and " ".join(three.split()) in text
    else:
        assert MEANING[3] not in text


def test_plan_help_and_readme_say_what_3_means_for_files_and_calendars() -> None:
    text = " ".join(_help("plan").split())
    assert "3 the plan lists something to decide before `copy`" in text
    assert "drives not migrated" in text and "every occurrence was cancelled" in text


def test_readme_table_matches_the_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Exit codes"):]
    rows = {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r"^\| `([a-z ]+)` \| ([0-9, ]+) \| (.*) \|$", section, re.M)}
    assert set(rows) == set(COMMANDS)
    for command, (codes, three) in COMMANDS.items():
        assert rows[command][0] == ", ".join(map(str, codes)), command
        assert rows[command][1] == (three or "(never 3)"), command


def test_options_read_as_what_they_take() -> None:
    top = _help()
    assert "<bool>" not in top and "<int>" not in top
    assert re.search(r"-v, --verbose +More detail", top) and re.search(r"-q, --quiet +Only", top)
    for command in ("discover", "scan", "copy", "share", "sync", "cutover"):
        text = _help(command)
        assert "<bool>" not in text and "<list[str]>" not in text, command
        assert "(default [transfer] workers)" in " ".join(text.split()), command
        assert re.search(r"--workers N ", text), command
    assert re.search(r"--dry-run +Only", _help("copy"))
    assert "--batch NAME" in _help("scan") and "--user UPN" in _help("verify")


def test_the_installed_script_shows_the_same_help() -> None:
    r = run_cli("copy", "--help")
    assert r.returncode == 0 and "Exit codes:" in r.stdout and "[transfer] workers" in r.stdout, r.stdout
    assert "<bool>" not in r.stdout


def test_scan_bar_on_a_terminal_has_one_colon(monkeypatch) -> None:
    """On a terminal the total bar reads `scan (1/2 drives): 285 items`, not `scan (1/2 drives): : 285 items`."""
    import io

    from migrate.engine.files.scan import DriveScan
    from migrate.reports import progress

    err = io.StringIO()
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    monkeypatch.setattr("sys.stderr", err)
    bar = progress.ScanProgress(2)
    bar.drive_started({"id": "d1", "owner_upn": "anna@example.org"}, "full")
    bar.items("d1", 285)
    bar.drive_finished(DriveScan("d1", "OneDrive", "onedrive", "anna@example.org", items=285))
    bar.close()
    last = err.getvalue().split("\r")[-1]
    assert "scan (1/2 drives): 285 items" in err.getvalue() and ": :" not in err.getvalue(), last


def test_top_level_help_lists_every_code() -> None:
    text = _help()
    assert "Exit codes (each command's --help lists its own" in text
    for code, meaning in MEANING.items():
        assert re.search(rf"^ +{code}  {re.escape(meaning)}$", text, re.M), (code, text)
