"""Nextcloud-compatible sandbox target: WsgiDAV plus the Nextcloud 32 extensions the tool uses.

In-process API (all servers bind 127.0.0.1 only)::

    from migrate.sandbox.nextcloud import NextcloudSandbox
    with NextcloudSandbox(users=["alice", "bob"], groups={"staff": ["alice", "bob"]}, quota_mb=None,
                          data_dir=None, plain_webdav=False, share_rate_limit=True) as nc:
        nc.url                       # "http://127.0.0.1:PORT"
        nc.admin                     # ("admin", "<app password>"), member of group "admin"
        nc.app_passwords             # {"alice": "...", "bob": "..."}
        nc.data_dir                  # storage root: users/<uid>/files, __groupfolders/<id>/files, uploads/<uid>
        nc.requests                  # copy of [(method, decoded path, status)] for every request served
        nc.add_user("carol", quota_mb=None) -> app password
        nc.add_group("g", ["alice"]); nc.set_quota("alice", mb)      # mb=None: unlimited
        nc.create_team_folder("Projects", groups={"staff": 31}, acl=False, quota=-3) -> folder id
        nc.file_info("alice", "path") -> {"size", "mtime", "sha1", "checksum", "etag", "fileid",
                                          "creation_time", "upload_time", "path"} | None
        nc.lock("alice", "path"); nc.unlock("alice", "path")         # writes there answer 423
        nc.fault("MOVE", 503, count=2, path_contains="/uploads/")     # next 2 such requests answer 503
        nc.fault("MOVE", 504, after=True)   # the MOVE completes, the client sees 504 (proxy timeout); clear_faults()
        nc.delay("MKCOL", 0.05); nc.peak_running("MKCOL")   # slow a method down; most served at once
        nc.shares                    # list of share dicts as stored
        nc.reset_bruteforce()        # `occ security:bruteforce:reset`
        nc.dav_url("alice", "a/b")   # files URL of a path
        nc.describe()                # the JSON the CLI prints
        nc.save()                    # write DIR/sandbox-state.json now (also done by stop() for a given data_dir)
        nc.state.failed_logins       # {client address: failed Basic logins} (brute-force counter, §8.2)

Options: `share_rate_limit` True = 20 createShare calls per user per 600 s (as NC 32.0.1), False = off, or a
`(limit, seconds)` tuple; `bruteforce_max_attempts` (default 10: the 12th failed login blocks the address);
`chunking_v2=True` emulates S3 + Redis (ChunkingV2Plugin: chunk names 1-10000, no chunk GET, OC-Checksum not kept
on the final MOVE, numeric-only mtime check) instead of the local-storage v1 assembly verified on 32.0.1;
`port`, `numthreads` (24). With a caller-given `data_dir` the state (users and app passwords, fileids, checksums,
team folders, shares) is kept in DIR/sandbox-state.json, so a restart is the same server.
`plain_webdav=True` serves only authenticated WebDAV at the same paths (no OCS, status.php, X-OC-MTime,
checksums, chunking, bulk or Nextcloud properties). Behaviour follows shared/reference/nextcloud-api.md.

Versions (§9.1/§9.2) are kept on overwrite and served at /remote.php/dav/versions/{uid}/versions/{fileid} (list,
GET, label, restore); `nc.expire_versions()` runs the retention job (`cron.php` for homes, `team_folders=True` for
groupfolders' own), thinning unlabelled versions as `auto` retention does, never labelled ones. DELETE and overwriting COPY/MOVE move the old node to the trash bin,
/remote.php/dav/trashbin/{uid}/trash (list, restore, purge; team-folder items visible to every member).
Not emulated: shares mounted into recipients' trees, Sabre LOCK tokens on the sandbox's own PUT, the admin's
Windows-compatibility name rules, the 5 MiB minimum chunk size of v2, quota counting of trash and versions.
Chunks are assembled with `copy_file_range` where the OS has it: the same result as Nextcloud's streamed
assembly, without making a Python copy loop the bottleneck of every large-file test and benchmark.
`migrate.sandbox.nextcloud.apache.ApacheDav` starts Apache httpd + mod_dav on loopback (tests, benchmarks).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NextcloudSandbox"]


def __getattr__(name: str) -> Any:
    if name == "NextcloudSandbox":
        from .server import NextcloudSandbox

        return NextcloudSandbox
    raise AttributeError(name)
