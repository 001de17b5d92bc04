"""`demo`: the whole journey against the built-in sandboxes, with no configuration, in under a minute.

Both sandboxes run in this process on loopback; every step is the real command line in a child process, shown
as the user would type it, so the demo rehearses exactly what a cutover runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEMO_USERS = 4
MARKER = ".m365-migrate-demo"
DEMO_ENTRIES = {MARKER, "m365-migrate.toml", "mappings", "sandbox-ca.pem", "secrets", "state"}


@dataclass
class DemoResult:
    """Where the demo left its files, and how each step ended."""

    folder: Path
    steps: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(code in (0, 3) for _, code, _ in self.steps)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def run_demo(folder: Path, *, echo: Callable[[str], None] = print, seed: int = 7,
             available: Callable[[str], bool] = lambda name: True) -> DemoResult:
    """Start both sandboxes, configure a migration in `folder`, and run each existing step of the journey."""
    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    from migrate.sandbox.nextcloud import NextcloudSandbox

    _fresh(folder)
    spec = TenantSpec(seed=seed, users=DEMO_USERS, sites=1, teams=1, files_per_drive=25, max_depth=3)
    result = DemoResult(folder)
    with GraphSandbox(spec, tls=True) as graph:
        upns = [u.upn for u in graph.tenant.users]
        uids = [u.split("@", 1)[0].lower().replace(".", "-") for u in upns]
        # As after the runbook's admin step that lifts the createShare rate limit for the migration host.
        with NextcloudSandbox(users=uids, groups={"staff": [*uids, "admin"]}, share_rate_limit=False) as nc:
            echo(f"sandbox Graph tenant at {graph.graph_url}; sandbox Nextcloud at {nc.url}")
            env = {**os.environ, "M365_CLIENT_SECRET": graph.client_secret,
                   "M365_MIGRATE_CONFIG": str(folder / "m365-migrate.toml")}
            env.pop("M365_MIGRATE_STATE", None)
            steps: list[list[str]] = [["init", "--force"]]
            result.steps.append(_run(["init", "--force"], folder, env, echo))
            _configure(folder, graph, nc, upns, uids)
            for upn, uid in zip(upns, uids, strict=True):   # the admin step: NC e-mail = M365 address (groupware)
                nc.state.users[uid].email = upn
            gw = ["--what", "calendars,contacts"]
            steps = [["doctor"], ["discover"], ["scan"], ["plan"], ["copy"], ["share"], ["verify"], ["status"],
                     ["sync", "--dry-run"], ["sync"], ["verify"],
                     ["scan", *gw], ["plan", *gw], ["copy", *gw], ["verify", *gw]]
            for argv in steps:
                if not available(argv[0]):
                    continue
                result.steps.append(_run(argv, folder, env, echo))
                if argv[0] == "discover":
                    _create_team_folders(folder, nc, echo)
                if argv == ["status"]:
                    _change_the_source(graph, echo)
                if result.steps[-1][1] not in (0, 3):
                    echo(f"stopped: `{argv[0]}` failed (exit {result.steps[-1][1]})")
                    break
    echo("")
    echo(f"state database: {folder / 'state' / 'migration.db'}")
    reports = folder / "state" / "reports"
    if reports.exists():
        echo(f"reports:        {reports}")
    echo(f"configuration:  {folder / 'm365-migrate.toml'} (the sandboxes are gone; rerun `m365-migrate demo`)")
    return result


def _change_the_source(graph, echo: Callable[[str], None]) -> None:
    """What people do in Microsoft 365 between the copy and the switchover, for `sync` to carry over: in the
    first drive with enough loose files, an edit, a rename, a move into a folder, a new file and a delete."""
    truth = graph.truth()
    for drive_id in sorted(truth):
        rows = [r for r in truth[drive_id] if r["path"] not in ("", "/")]
        loose = sorted((r for r in rows if not r["is_folder"] and r["path"].count("/") == 1
                        and not r.get("is_package")), key=lambda r: r["path"])
        folders = sorted((r for r in rows if r["is_folder"] and r["path"].count("/") == 1), key=lambda r: r["path"])
        if len(loose) >= 4 and folders:
            break
    else:
        echo("(no drive has the files for the sync demo; skipped)")
        return
    m = graph.mutate
    edited, renamed, moved, deleted = loose[:4]
    m.modify(drive_id, edited["id"], size=(edited.get("size") or 100) + 11)
    m.rename(drive_id, renamed["id"], "renamed in Microsoft 365.txt")
    m.move(drive_id, moved["id"], folders[0]["path"])
    m.add_file(drive_id, "/", "new in Microsoft 365.txt", 2048)
    m.delete(drive_id, deleted["id"])
    echo("")
    echo(f"(people change files in Microsoft 365: edit {edited['path']}, rename {renamed['path']}, move "
         f"{moved['path']} into {folders[0]['path']}, add /new in Microsoft 365.txt, delete {deleted['path']})")


def _fresh(folder: Path) -> None:
    """Start from nothing: the sandboxes are new on every run, so an earlier demo's state would describe files
    that no longer exist. Only a folder holding nothing but what a demo writes is cleared."""
    import shutil

    from migrate.errors import ConfigError

    if folder.exists():
        found = {p.name for p in folder.iterdir()}
        if found - DEMO_ENTRIES:
            raise ConfigError(f"{folder} holds files the demo did not write ({', '.join(sorted(found - DEMO_ENTRIES)[:5])})",
                              hint="run `m365-migrate demo --folder <an empty or new folder>`")
        for name in found:
            path = folder / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by `m365-migrate demo`; the next demo run clears this folder\n")


def _configure(folder: Path, graph, nc, upns: list[str], uids: list[str]) -> None:
    """Point the freshly written config at the sandboxes and map every sandbox user to a target user."""
    cfg = (folder / "m365-migrate.toml").read_text(encoding="utf-8")
    (folder / "sandbox-ca.pem").write_bytes(Path(graph.ca_path).read_bytes())
    replacements = {
        ("source", "tenant_id"): graph.tenant_id,
        ("source", "client_id"): graph.client_id,
        ("source", "auth"): "client-secret",
        ("source", "graph_url"): graph.graph_url,
        ("source", "authority"): graph.authority,
        ("source", "ca_bundle"): "sandbox-ca.pem",
        ("source", "org"): "Demo",
        ("target", "url"): nc.url,
        ("target", "service_account"): nc.admin[0],
        ("target", "credentials"): "secrets/app-passwords.csv",
        ("target", "share_rate"): "0",
        ("transfer", "workers"): 4,
    }
    cfg = _set_toml(cfg, replacements)
    (folder / "m365-migrate.toml").write_text(cfg, encoding="utf-8")
    passwords = {**nc.app_passwords, nc.admin[0]: nc.admin[1]}
    rows = ["user,app_password"] + [f"{u},{p}" for u, p in passwords.items()]
    _write_secret(folder / "secrets" / "app-passwords.csv", "\n".join(rows) + "\n")
    users = ["source_upn,target_user,batch"] + [f"{upn},{uid},demo" for upn, uid in zip(upns, uids, strict=True)]
    (folder / "mappings" / "users.csv").write_text("\n".join(users) + "\n", encoding="utf-8")


def _create_team_folders(folder: Path, nc, echo: Callable[[str], None]) -> None:
    """What the Nextcloud admin does before the first copy: one team folder per library `discover` suggested."""
    from migrate.mapping import load_sites

    for row in load_sites(folder / "mappings" / "sites.csv"):
        if row.target is not None and row.target.kind == "groupfolder":
            nc.create_team_folder(row.target.name, groups={"staff": 31})
            echo(f"(the Nextcloud admin creates team folder {row.target.name!r} for the staff group)")


def _set_toml(text: str, values: dict[tuple[str, str], object]) -> str:
    """Set keys in the commented template, keeping its comments; keys are expected to exist in their section."""
    import json

    out, section = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
        elif "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip()
            if (section, key) in values:
                v = values[(section, key)]
                line = f"{key} = {v if isinstance(v, int) else json.dumps(v)}"
        out.append(line)
    return "\n".join(out) + "\n"


def _run(argv: list[str], folder: Path, env: dict[str, str], echo: Callable[[str], None]) -> tuple[str, int, float]:
    exe = Path(sys.executable).with_name("m365-migrate")
    echo("")
    echo(f"$ m365-migrate {shlex.join(argv)}")
    t0 = time.monotonic()
    proc = subprocess.run([str(exe), *argv], cwd=folder, env=env, text=True, stdout=sys.stdout, stderr=sys.stderr)
    return argv[0], proc.returncode, time.monotonic() - t0
