"""The mailboxes a mail step works on, and how to sign in to each one's IMAP user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.errors import ConfigError, SecretsError

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.mapping import Mappings
    from migrate.store import StateStore


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One mapped person: the Graph user (id, UPN) and the IMAP user that receives the mail."""

    user_id: str
    upn: str
    imap_user: str
    batch: str | None = None


def mailboxes(store: StateStore, mappings: Mappings, upns: tuple[str, ...] = (), *, batch: str | None = None
              ) -> tuple[list[Mailbox], list[str]]:
    """(mapped mailboxes, UPNs recorded but not mapped). A --user that names nobody is a usage error."""
    wanted = {u.lower() for u in upns}
    known = {u["upn"].lower(): u for u in store.users()}
    unknown = sorted(u for u in wanted if u not in known)
    if unknown:
        raise ConfigError(f"--user {', '.join(unknown)}: no such user in the state database",
                          hint="run `m365-migrate discover` first; `m365-migrate status` lists the users")
    out, unmapped = [], []
    for low, u in sorted(known.items()):
        if wanted and low not in wanted:
            continue
        row = mappings.users.get(u["upn"])
        if row is None or not row.mail_user:
            unmapped.append(u["upn"])
            continue
        if batch and (row.batch or "").casefold() != batch.casefold():
            continue
        out.append(Mailbox(u["id"], u["upn"], row.mail_user, row.batch))
    if not known:
        raise ConfigError("no users are recorded in the state database",
                          hint="run `m365-migrate discover` first, then map users in users.csv")
    return out, unmapped


def imap_settings(settings: Settings) -> Any:
    """The [mail] server settings as the IMAP backend takes them; ConfigError when [mail] url is missing."""
    from migrate.backends.imap import ImapSettings
    from migrate.config import require_settings

    require_settings(settings, "mail")
    m = settings.mail
    return ImapSettings(url=m.url, ca_bundle=str(m.ca_bundle or ""), timeout=m.timeout)


def login_source(settings: Settings) -> Callable[[str], Any]:
    """imap user → ImapLogin, secrets read once (SecretsError names what is missing and where it goes)."""
    from migrate.backends.imap import ImapLogin
    from migrate.credentials import load_imap_master_password, load_imap_passwords

    m = settings.mail
    if m.login == "master":
        password = load_imap_master_password(settings)

        def master(user: str) -> Any:
            return ImapLogin(user=user, password=password.reveal(), master=m.master_user)

        return master
    passwords = load_imap_passwords(settings)
    folded = {u.casefold(): p for u, p in passwords.items()}

    def own(user: str) -> Any:
        p = folded.get(user.casefold())
        if p is None:
            raise SecretsError(f"no password for the IMAP user {user!r} in {m.credentials}",
                               hint="add a line user,password for it (the file stays mode 0600), or use a master "
                               'user ([mail] login = "master")')
        return ImapLogin(user=user, password=p.reveal())

    return own


def imap_pacer(settings: Settings) -> Any:
    """The one pacer of IMAP work of a run: transient refusals ([LIMIT], [INUSE]) and dropped connections are
    retried with backoff; a server that answers nothing for [transfer] unreachable_after stops the run (exit 4)."""
    from migrate.connect import fault_budget
    from migrate.transport.pacer import Pacer

    return Pacer("imap", max_attempts=5, faults=fault_budget(settings, "IMAP server", settings.mail.url, "[mail] url"))
