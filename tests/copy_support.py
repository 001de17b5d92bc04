"""Helpers shared by the copy end-to-end tests: a configured migration folder, stored rows, truth comparisons."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.inventory_support import write_config

# Two OneDrives, no libraries (no SharePoint Office rewrite), awkward names and 0-byte files included.
SPEC = dict(seed=11, users=2, sites=0, teams=0, files_per_drive=40, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=False, versions=False)


def db(tmp_path: Path):
    from migrate.store import StateStore

    return StateStore(tmp_path / "state" / "migration.db", create=False)


def write_credentials(tmp_path: Path, passwords: dict[str, str]) -> Path:
    creds = tmp_path / "pw.csv"
    creds.write_text("user,app_password\n" + "".join(f"{u},{p}\n" for u, p in passwords.items()))
    os.chmod(creds, 0o600)
    return creds


def setup_migration(tmp_path: Path, g: Any, *, target: str, targets: tuple[str, ...] = ("alice", "bob"),
                    transfer: str = "", scan: bool = True, source: str = "") -> tuple[dict[str, str], list[str]]:
    """Config + `discover` + `scan` + users.csv mapping the OneDrives (sorted by UPN) to `targets`.

    `target` is the whole [target] section body; `transfer` and `source` extra lines for those sections.
    Returns (env, upns).
    """
    env = write_config(tmp_path, g)
    cfg = tmp_path / "m365-migrate.toml"
    text = cfg.read_text()
    if source:
        text = text.replace("[source]\n", "[source]\n" + source.strip() + "\n", 1)
    if transfer:
        if "workers" in transfer:
            text = "\n".join(line for line in text.splitlines() if not line.startswith("workers =")) + "\n"
        text = text.replace("[transfer]\n", "[transfer]\n" + transfer.strip() + "\n", 1)
    cfg.write_text(text + "\n[target]\n" + target.strip() + "\n")
    r = run_cli("discover", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    if scan:
        r = run_cli("scan", cwd=tmp_path, env=env)
        assert r.returncode in (0, 3), r.stdout + r.stderr
    with db(tmp_path) as s:
        upns = sorted(d["owner_upn"] for d in s.drives() if d["kind"] == "onedrive")
    write_users(tmp_path, dict(zip(upns, targets, strict=False)))
    return env, upns


def write_users(tmp_path: Path, mapping: dict[str, str]) -> None:
    m = tmp_path / "mappings"
    m.mkdir(exist_ok=True)
    (m / "users.csv").write_text("source_upn,target_user,batch\n" + "".join(f"{u},{t},wave1\n" for u, t in mapping.items()))
    (m / "sites.csv").write_text("source,target,batch\n")
    (m / "groups.csv").write_text("source_group,target_group\n")


def nextcloud_target(tmp_path: Path, nc: Any, passwords: dict[str, str] | None = None) -> str:
    creds = write_credentials(tmp_path, passwords if passwords is not None else
                              {**nc.app_passwords, "admin": nc.admin[1]})
    return f'kind = "nextcloud"\nurl = "{nc.url}"\ncredentials = "{creds}"\nservice_account = "admin"\n'


def file_rows(tmp_path: Path) -> list[dict[str, Any]]:
    """Every stored file that has a target path."""
    with db(tmp_path) as s:
        return [dict(r) for d in s.drives() for r in s.iter_items(d["id"], files_only=True) if r["target_path"]]


def truth_by_id(g: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d, t["id"]): t for d, items in g.truth().items() for t in items}


def assert_target_matches_truth(g: Any, nc: Any, rows: list[dict[str, Any]]) -> int:
    """Every row verified, at its stored target path byte-identical (SHA1) to the sandbox's truth, mtime kept."""
    truth = truth_by_id(g)
    bad = []
    for r in rows:
        t = truth[(r["drive_id"], r["item_id"])]
        info = nc.file_info(r["target_user"], r["target_path"].lstrip("/"))
        want_mtime = max(int(t["mtime"]), 86401)
        if r["status"] != "verified" or info is None or info["sha1"] != t["sha1"] or info["size"] != t["size"] \
                or int(info["mtime"]) != want_mtime:
            bad.append((r["path"], r["status"], t["sha1"], t["mtime"], info))
    assert not bad, f"{len(bad)} files differ from the source, e.g. {bad[:3]}"
    return len(rows)


def upload_requests(requests: list[tuple[str, str, int]], user: str, path: str) -> list[tuple[str, str, int]]:
    """Requests that wrote the file's bytes: a PUT to it, or the MOVE of a chunked upload (by its destination,
    which nc.requests does not show; so chunked uploads are counted by their upload folders separately)."""
    want = f"/remote.php/dav/files/{user}{path}"
    return [x for x in requests if x[0] == "PUT" and x[1] == want]


def kill_copy_after(tmp_path: Path, env: dict[str, str], nc: Any, methods: tuple[str, ...], pause: float) -> None:
    """Start `copy` as a process, wait until the target sees its first request of `methods` (so a slow start
    does not turn the kill into one before any transfer), let it run `pause` seconds more, then kill -9 it."""
    import signal
    import subprocess
    import sys
    import time

    start = len(nc.requests)
    exe = Path(sys.executable).with_name("m365-migrate")
    p = subprocess.Popen([str(exe), "copy"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and not any(
            m in methods for m, _p, _s in nc.requests[start:]):
        time.sleep(0.02)
    time.sleep(pause)
    assert p.poll() is None, "the copy finished before the kill; slow it down"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(0.3)  # let the server finish the requests of the dead client


def library_to_webdav(tmp_path: Path, g: Any, dav: Any, root: str = "/Library") -> dict[str, str]:
    """A migration of `g`'s first library to `root` of a plain WebDAV server `dav` (url, auth); its env. The
    Apache server is shared by the session: a test that leaves files behind takes a root of its own."""
    user, pw = dav.auth
    creds = write_credentials(tmp_path, {user: pw})
    env, _ = setup_migration(tmp_path, g, target=f'kind = "webdav"\nurl = "{dav.url}"\ncredentials = "{creds}"\n',
                             targets=("",))
    with db(tmp_path) as s:
        lib = next(d for d in s.drives() if d["kind"] != "onedrive")
    (tmp_path / "mappings" / "sites.csv").write_text(f"source,target,batch\n{lib['id']},{root},wave1\n")
    return env
