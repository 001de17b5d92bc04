"""An edit's upload carries its own condition: a person writing over our file between `sync`'s check and its
upload is never overwritten (the single PUT carries `If-Match`, a chunked upload's final MOVE a tagged `If`);
the 412 is a conflict like any other: both kept, listed, exit 3."""

from __future__ import annotations

import httpx
import pytest

from tests.sync_support import copied, loose, source_files, sync, verify_ok

PERSON = b"a person's edit, saved just before our upload"


@pytest.mark.parametrize("size, method, where", [(1234, "PUT", None), (11 * 1024 * 1024 + 7, "MOVE", ".file")],
                         ids=["single-put", "chunked"])
def test_a_persons_write_between_the_check_and_the_upload_is_kept(tmp_path, graph_sandbox_factory,
                                                                 nextcloud_sandbox, size, method, where):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    cfg = tmp_path / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + '\n[transfer]\nchunk_size = "5MiB"\n' if "[transfer]" not in cfg.read_text()
                   else cfg.read_text().replace("[transfer]\n", '[transfer]\nchunk_size = "5MiB"\n', 1))
    a = loose(g, drive)[0]
    name = a["path"].lstrip("/")
    g.mutate.modify(drive, a["id"], size=size)

    def person() -> None:
        with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as http:
            assert http.put(nc.dav_url("alice", name), content=PERSON).status_code == 204

    nc.before(method, where or name, person)
    before = len(nc.requests)
    out = sync(tmp_path, env, code=3)
    assert [x for x in nc.requests[before:] if x[0] == method and x[2] == 412], "the upload carried no condition"
    assert [x["problem"] for x in out["conflicts"]] == ["edited at the target while this sync uploaded over it"]
    assert nc.file_info("alice", name)["size"] == len(PERSON)
    ours = out["conflicts"][0]["ours_at"].lstrip("/")
    assert "(conflict " in ours and nc.file_info("alice", ours)["sha1"] == source_files(g, drive)[name]["sha1"]
    verify_ok(tmp_path, env)
    again = sync(tmp_path, env)
    assert not any(again["counts"].values()) and not again["conflicts"]
