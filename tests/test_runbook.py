"""runbooks/cutover.md runs: every `sh` command block, in order, against the Graph and Nextcloud sandboxes.

The human steps between the commands (filling in the configuration, editing the mapping suggestions, people
changing files at the source) are done here where the runbook says a person does them; every command must
exit 0, so the runbook cannot drift from the command line.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from migrate.sandbox.graph import TenantSpec
from tests.conftest import REPO, run_cli
from tests.copy_support import nextcloud_target, write_users
from tests.inventory_support import write_config
from tests.sync_support import SPEC, assert_target_equals_source, source_files

RUNBOOK = REPO / "runbooks" / "cutover.md"


def commands(text: str) -> list[str]:
    """The command lines of the ```sh blocks, in order (comments and blank lines dropped)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line:
                out.append(line)
    return out


def test_the_cutover_runbook_runs_in_order_against_the_sandboxes(tmp_path, graph_sandbox_factory,
                                                                   nextcloud_sandbox):
    cmds = commands(RUNBOOK.read_text())
    assert cmds[0] == "m365-migrate init" and any(c.startswith("m365-migrate cutover") for c in cmds)
    assert all(c.startswith("m365-migrate ") for c in cmds), "sh blocks hold only m365-migrate commands"
    nc = nextcloud_sandbox
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    (drive,) = sorted(g.truth())
    env: dict[str, str] = {}
    ran = []

    def people_work(tag: str) -> None:
        files = sorted(source_files(g, drive).values(), key=lambda t: t["path"])
        g.mutate.modify(drive, files[0]["id"], size=files[0]["size"] + 1)
        g.mutate.rename(drive, files[1]["id"], f"renamed {tag}.txt")
        g.mutate.add_file(drive, "/", f"new {tag}.txt", 77)

    for cmd in cmds:
        args = shlex.split(cmd)[1:]
        if args[0] == "cutover":
            people_work("before the freeze")  # changes until the freeze; the final sync takes them
        r = run_cli(*args, cwd=tmp_path, env=env or None)
        assert r.returncode == 0, f"runbook step `{cmd}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        ran.append(args[0])
        if args[0] == "init":  # step 1: the operator fills in [source] and [target]
            init_text = (tmp_path / "m365-migrate.toml").read_text()
            assert "[source]" in init_text and "[target]" in init_text
            env = write_config(tmp_path, g)
            cfg = tmp_path / "m365-migrate.toml"
            cfg.write_text(cfg.read_text() + "\n[target]\n" + nextcloud_target(tmp_path, nc) +
                           '\n[policy]\ndeletions = "trash"\n')
        if args[0] == "discover":  # step 3: the operator edits the suggestions
            upn = next(d["owner_upn"] for d in _drives(tmp_path))
            write_users(tmp_path, {upn: "alice"})
            users = tmp_path / "mappings" / "users.csv"
            users.write_text(users.read_text().replace(",wave1", ",pilot"))
        if args[0] == "verify":  # step 7: people go on working in Microsoft 365
            people_work("after the copy")
    assert ran[-1] == "audit" and "sync" in ran and "cutover" in ran
    assert (tmp_path / "audit.csv").is_file()
    assert_target_equals_source(g, nc, drive)
    assert list((tmp_path / "state" / "reports").glob("cutover-pilot-*/cutover.html"))


def _drives(tmp_path: Path) -> list[dict]:
    from migrate.store import StateStore

    with StateStore(tmp_path / "state" / "migration.db", create=False) as s:
        return [d for d in s.drives() if d["kind"] == "onedrive"]
