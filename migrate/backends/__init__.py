"""Source and target backends, each in its own package behind the protocols of migrate.protocols."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migrate.errors import ConfigError

if TYPE_CHECKING:
    from migrate.protocols import Target
    from migrate.transport.pacer import Pacer


def open_target(kind: str, url: str, passwords: Mapping[str, Any], *, ca_bundle: str | None = None,
                pacer: Pacer | None = None, service_account: str | None = None, **options: Any) -> Target:
    """The Target for `[target] kind` ("nextcloud" | "webdav"); `passwords` maps user → app password.

    For "webdav" the one account is `service_account`, else the only entry of `passwords`, else anonymous.
    Nextcloud targets detect the server's capabilities here (three reads, no writes). `options` go to the
    backend's constructor (e.g. chunk_size for Nextcloud).
    """
    if kind == "nextcloud":
        from migrate.backends.nextcloud.target import NextcloudTarget

        return NextcloudTarget(url, passwords, ca_bundle=ca_bundle, pacer=pacer, service_account=service_account,
                               **options)
    if kind == "webdav":
        from migrate.backends.nextcloud.dav import reveal
        from migrate.backends.webdav.target import WebDAVTarget

        if service_account:
            if service_account not in passwords:
                raise ConfigError(f"no password for the WebDAV account {service_account!r} in the credentials file")
            auth: tuple[str, str] | None = (service_account, reveal(passwords[service_account]))
        elif len(passwords) == 1:
            login, secret = next(iter(passwords.items()))
            auth = (login, reveal(secret))
        elif not passwords:
            auth = None
        else:
            raise ConfigError("a plain WebDAV target logs in with one account, but the credentials file has "
                              f"{len(passwords)}", hint="name the account to use as the service account")
        return WebDAVTarget(url, auth, ca_bundle=ca_bundle, pacer=pacer, **options)
    raise ConfigError(f"unknown [target] kind {kind!r}", hint='use "nextcloud" or "webdav"')
