"""A 403 from the target is a refusal that names the account, the path and the likely causes, never a crash.

One refused item is an item failure (exit 3, listed by `status`); a drive whose first folder is refused stops
with exit 4 and the hint, while the other drives are copied.
"""

from __future__ import annotations

import json

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, file_rows, nextcloud_target, setup_migration

TWO = {**SPEC, "users": 2, "files_per_drive": 12}


def _world(tmp_path, factory, nc):
    g = factory(TenantSpec(**TWO))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc))
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return g, env


def _folders(tmp_path, user: str) -> list[str]:
    with db(tmp_path) as s:
        return sorted((r["target_path"] for d in s.drives() for r in s.iter_items(d["id"])
                       if r["is_folder"] and r["target_user"] == user and r["target_path"]),
                      key=lambda p: (p.count("/"), p))


def test_first_folder_refused_stops_that_drive_with_exit_4(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env = _world(tmp_path, graph_sandbox_factory, nc)
    first = _folders(tmp_path, "alice")[0]
    nc.fault("MKCOL", 403, count=1, path_contains="/files/alice/")
    r = run_cli("copy", cwd=tmp_path, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 4, (out, [x for x in nc.requests if x[0] == "MKCOL"], first)
    assert "Traceback" not in out
    assert "alice" in out and first.strip("/").split("/")[0] in out
    assert "stopped" in out and "likely causes" in out and "session" in out
    rows = file_rows(tmp_path)
    assert {r["status"] for r in rows if r["target_user"] == "bob"} == {"verified"}, "the other drive is copied"
    assert {r["status"] for r in rows if r["target_user"] == "alice"} == {"pending"}, "no file of alice was tried"
    assert not any(m == "PUT" and "/files/alice/" in p for m, p, _ in nc.requests)
    # once the cause is gone, a rerun finishes the stopped drive
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {r["status"] for r in file_rows(tmp_path)} == {"verified"}


def test_one_refused_file_is_an_item_failure_listed_by_status(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env = _world(tmp_path, graph_sandbox_factory, nc)
    victim = next(r for r in file_rows(tmp_path) if r["target_user"] == "bob")
    name = victim["target_path"].rsplit("/", 1)[1]
    from urllib.parse import quote

    cfg = tmp_path / "m365-migrate.toml"       # one PUT per file, so the refusal hits exactly this file
    cfg.write_text(cfg.read_text().replace("[transfer]\n", "[transfer]\nbulk_upload = false\n", 1))
    nc.fault("PUT", 403, count=50, path_contains=quote(name))
    r = run_cli("copy", cwd=tmp_path, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 3, out
    assert "Traceback" not in out
    rows = {x["item_id"]: x for x in file_rows(tmp_path)}
    failed = [x for x in rows.values() if x["status"] == "failed"]
    assert [x["item_id"] for x in failed] == [victim["item_id"]]
    assert "403" in failed[0]["last_error"] and "bob" in failed[0]["last_error"]
    st = run_cli("--json", "status", cwd=tmp_path, env=env)
    assert st.returncode == 0, st.stdout + st.stderr
    assert victim["path"] in st.stdout and "refused" in st.stdout
    assert json.loads(st.stdout)
