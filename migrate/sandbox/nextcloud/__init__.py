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
        nc.shares                    # list of share dicts as stored
        nc.reset_bruteforce()        # `occ security:bruteforce:reset`
        nc.dav_url("alice", "a/b")   # files URL of a path
        nc.describe()                # the JSON the CLI prints

Options: `share_rate_limit` True = 20 createShare calls per user per 600 s (as NC 32.0.1), False = off, or a
`(limit, seconds)` tuple; `bruteforce_max_attempts` (default 10: the 12th failed login blocks the address).
`plain_webdav=True` serves only authenticated WebDAV at the same paths (no OCS, status.php, X-OC-MTime,
checksums, chunking, bulk or Nextcloud properties). Behaviour follows shared/reference/nextcloud-api.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NextcloudSandbox"]


def __getattr__(name: str) -> Any:
    if name == "NextcloudSandbox":
        from .server import NextcloudSandbox

        return NextcloudSandbox
    raise AttributeError(name)
