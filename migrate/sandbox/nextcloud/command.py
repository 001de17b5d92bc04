"""`m365-migrate sandbox nextcloud`: serve the Nextcloud sandbox on 127.0.0.1 until interrupted."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import typer


def parse_groups(specs: list[str]) -> dict[str, list[str]]:
    """`staff:alice,bob` -> {"staff": ["alice", "bob"]}; a usage error names the bad spec."""
    groups: dict[str, list[str]] = {}
    for spec in specs:
        gid, sep, members = spec.partition(":")
        if not sep or not gid.strip():
            raise typer.BadParameter(f"expected GROUP:user1,user2, got {spec!r}", param_hint="--groups")
        groups[gid.strip()] = [m.strip() for m in members.split(",") if m.strip()]
    return groups


def nextcloud_command(
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0 = pick a free one)."),
    users: str = typer.Option("alice,bob", "--users", help="Comma-separated user ids to create."),
    groups: list[str] = typer.Option([], "--groups", help="GROUP:user1,user2 (repeatable)."),
    quota_mb: int | None = typer.Option(None, "--quota-mb", help="Quota per user in MiB (default unlimited)."),
    data: Path | None = typer.Option(None, "--data", help="Storage directory (default: a temporary one)."),
    plain_webdav: bool = typer.Option(False, "--plain-webdav", help="Serve plain WebDAV only, no Nextcloud extensions."),
    force_share_accept: bool = typer.Option(False, "--force-share-accept",
                                            help="Every new user or group share waits for its recipients to accept "
                                                 "it (Nextcloud's sharing.force_share_accept)."),
) -> None:
    """Serve a Nextcloud-compatible sandbox target; prints one JSON line with URL and app passwords."""
    from migrate.sandbox.nextcloud.server import NextcloudSandbox

    user_list = [u.strip() for u in users.split(",") if u.strip()]
    group_map = parse_groups(groups)
    unknown = sorted({m for members in group_map.values() for m in members} - set(user_list))
    if unknown:
        raise typer.BadParameter(f"group members are not users: {', '.join(unknown)}", param_hint="--groups")
    sandbox = NextcloudSandbox(users=user_list, groups=group_map, quota_mb=quota_mb, data_dir=data,
                               plain_webdav=plain_webdav, port=port)
    sandbox.force_share_accept(force_share_accept)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with sandbox:
            sys.stdout.write(json.dumps(sandbox.describe()) + "\n")
            sys.stdout.flush()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
