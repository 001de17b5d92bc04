"""Every key the configuration knows: its parser, default, help text and whether it is a secret."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.config.settings import ENV_PREFIX
from migrate.config.values import (
    _bool,
    _choice,
    _fraction,
    _group_id,
    _imap_url,
    _imap_user,
    _org_links,
    _path,
    _prefix,
    _seconds,
    _share_rate,
    _size,
    _text,
    _uid_or_blank,
    _url,
    _versions,
    _whole,
)
from migrate.credentials import (
    ENV_CERTIFICATE_PASSWORD,
    ENV_CLIENT_SECRET,
)
from migrate.errors import ConfigError, SecretsError


@dataclass(frozen=True, slots=True)
class _Key:
    parse: Callable[[object, bool], Any]
    default: Any
    doc: str
    path: bool = False


_SCHEMA: dict[str, dict[str, _Key]] = {
    "source": {
        "tenant_id": _Key(_text, "", "Directory (tenant) ID of your Entra ID app registration (required)."),
        "client_id": _Key(_text, "", "Application (client) ID of the app registration (required)."),
        "auth": _Key(
            _choice("certificate", "client-secret", "device-code"),
            "certificate",
            "How the app signs in: certificate | client-secret | device-code.",
        ),
        "certificate_path": _Key(
            _path,
            "",
            "PEM file with the app's certificate and private key (auth = "
            "certificate); must be mode 0600. A password for it: M365_CERTIFICATE_PASSWORD.",
            path=True,
        ),
        "client_secret_file": _Key(
            _path,
            "",
            "File holding the client secret (auth = client-secret), mode 0600; "
            "M365_CLIENT_SECRET in the environment takes precedence. Never put the secret "
            "itself in this file.",
            path=True,
        ),
        "graph_url": _Key(
            _url(True),
            "https://graph.microsoft.com/v1.0",
            "Microsoft Graph endpoint; national clouds and the sandbox set their own.",
        ),
        "authority": _Key(
            _url(True),
            "https://login.microsoftonline.com",
            "Sign-in authority; for any other authority instance discovery is switched off.",
        ),
        "ca_bundle": _Key(
            _path,
            "",
            "Extra CA certificates (PEM) to trust, e.g. for a TLS-inspecting proxy; "
            "certificate verification is never switched off.",
            path=True,
        ),
        "org": _Key(_text, "Unknown", "Your organisation's name, sent in the User-Agent as Microsoft asks."),
        "ru_per_minute": _Key(
            _whole(0, 1_000_000), 0,
            "SharePoint resource units per minute this app may spend (Microsoft's per-app budget); 0 = from the "
            "tenant's licence count (needs LicenseAssignment.Read.All or Organization.Read.All), else the lowest band, 1,250.",
        ),
        "ru_per_day": _Key(
            _whole(0, 1_000_000_000), 0,
            "The same per 24 hours; 0 = from the licence count, else the lowest band, 1,200,000.",
        ),
        "ru_share": _Key(
            _fraction(0.05, 1.0), 0.8,
            "The part of those budgets this tool spends, paced before Microsoft says no; the rest is left for "
            "the tenant's other apps and work (RateLimit headers start at 80%).",
        ),
        "switchover_hours": _Key(
            _fraction(0.5, 72.0), 8.0,
            "How long switchover day's final `sync` may take: `plan` says whether each batch's fits.",
        ),
    },
    "target": {
        "kind": _Key(
            _choice("nextcloud", "webdav"), "nextcloud", "nextcloud | webdav (any other WebDAV server)."
        ),
        "url": _Key(_url(False), "", 'Base URL of the server, e.g. "https://cloud.example.org" (required).'),
        "credentials": _Key(
            _path,
            "secrets/nextcloud-app-passwords.csv",
            "CSV with a header user,app_password: one app password per user "
            "(occ user:auth-tokens:add <user>); must be mode 0600.",
            path=True,
        ),
        "ca_bundle": _Key(_path, "", "Extra CA certificates (PEM) to trust for the target.", path=True),
        "service_account": _Key(
            _uid_or_blank,
            "",
            'kind = "nextcloud": the admin account (its uid, e.g. "admin") that looks up users and groups and '
            "team folders, and writes libraries mapped to groupfolder:<name> (it must see those team folders "
            "mounted and writable, see migration_group); Nextcloud needs it. It must have "
            'its own row "<uid>,<app password>" in the credentials file (occ user:auth-tokens:add <uid>).',
        ),
        "prefix": _Key(
            _prefix,
            "",
            'Folder below each target root that receives the files, e.g. "Migrated"; empty = the root.',
        ),
        "on_conflict": _Key(
            _choice("skip", "rename", "overwrite-if-ours"),
            "skip",
            "Another file already at the target path (one with the source's size and hash is recorded as "
            "copied, not sent): skip (leave it, report it) | rename (write ours beside it) | overwrite-if-ours "
            "(only files this tool wrote).",
        ),
        "share_rate": _Key(
            _share_rate,
            "20/600",
            '`share` creates at most this many shares per owner per this many seconds ("calls/seconds"; '
            'Nextcloud 32 allows 20 per 600 s); "0" = no pacing, when the admin lifted the limit.',
        ),
        "create_team_folders": _Key(
            _bool,
            False,
            "true: `copy` creates missing team folders for groupfolder:<name> targets and gives the service "
            "account access through migration_group, and the site's groups (through groups.csv) read/write/manage, "
            "never broader than the site; false: the Nextcloud admin prepares them and `plan` checks.",
        ),
        "migration_group": _Key(
            _group_id,
            "m365-migration",
            "Nextcloud group that gives the service account write access to team folders "
            "(created when needed with create_team_folders; remove it after cutover).",
        ),
        "caldav_url": _Key(
            _text, "", 'Calendar home of a user for --what calendars, with {user}, e.g. "https://dav.example.org/'
            '{user}/"; empty = Nextcloud\'s /remote.php/dav/calendars/{user}/.'),
        "carddav_url": _Key(
            _text, "", 'Address-book home of a user for --what contacts, with {user}; empty = Nextcloud\'s '
            '/remote.php/dav/addressbooks/users/{user}/.'),
    },
    "mappings": {
        "users": _Key(
            _path, "mappings/users.csv", "UPN -> Nextcloud user (source_upn,target_user,batch).", path=True
        ),
        "groups": _Key(
            _path,
            "mappings/groups.csv",
            "Entra group -> Nextcloud group (source_group,target_group).",
            path=True,
        ),
        "sites": _Key(
            _path,
            "mappings/sites.csv",
            "Site, library or Teams drive -> target (source,target,batch).",
            path=True,
        ),
    },
    "transfer": {
        "workers": _Key(_whole(1, 64), 8, "Files transferred in parallel."),
        "chunk_size": _Key(
            _size(5 * 1024**2, 5 * 1024**3),
            32 * 1024**2,
            "Chunk size for large uploads (Nextcloud accepts 5MiB to 5GiB).",
        ),
        "chunk_parallel": _Key(
            _whole(1, 16), 3,
            "Chunks of one large file sent at once (no more than the server advertises it accepts).",
        ),
        "small_file_limit": _Key(
            _size(0, 1024**3), 10 * 1024**2, "Files up to this size are sent in one request (or bulk upload)."
        ),
        "bulk_upload": _Key(
            _bool, True, "Use Nextcloud bulk upload for small files when the server offers it."
        ),
        "versions": _Key(
            _versions, 10,
            'Earlier versions of each file carried into Nextcloud\'s version history, oldest first, each labelled '
            'with the source version, its author and time: "none" | "all" | N (the N most recent earlier '
            "versions). Only files whose source facts show an edit are asked (each asking costs Graph 2 RU). "
            "A mapping row may set its own (a `versions` column in users.csv or sites.csv); for one run: "
            "`copy --batch NAME --versions all` (plan takes the same option, and it wins over the rows).",
        ),
        "unreachable_after": _Key(
            _whole(1, 3600), 60,
            "Seconds the target or Microsoft Graph may answer nothing (refused, reset, timed out) before the "
            "command stops with exit 4; retries are shown meanwhile, and a rerun resumes.",
        ),
    },
    "policy": {
        "anonymous_links": _Key(
            _choice("report", "public-link-with-password", "drop"),
            "report",
            "Anyone-links: report | public-link-with-password | drop.",
        ),
        "organization_links": _Key(
            _org_links,
            "report",
            'Links for everyone in the organisation: "group:<name>" '
            "(share with that Nextcloud group) | report | drop.",
        ),
        "external_guests": _Key(
            _choice("report", "drop"), "report", "Shares with guests outside the tenant: report | drop."
        ),
        "narrower_shares": _Key(
            _choice("report", "widen"),
            "report",
            "A share someone already made at the target that grants less than the plan: report (leave it, "
            "list it) | widen (raise it to the planned permissions). Shares this tool made always follow the plan.",
        ),
        "onenote": _Key(
            _choice("report", "copy-raw"),
            "report",
            "OneNote notebooks: report | copy-raw (copy the section files as they are).",
        ),
        "deletions": _Key(
            _choice("keep", "trash"),
            "keep",
            "What `sync` does with our copy of an item deleted at the source: keep (leave it, list it) | trash "
            "(delete it at the target, so it goes to the Nextcloud trash bin). keep is the default: nothing a "
            "person might still need disappears because of a source deletion.",
        ),
    },
    "mail": {
        "url": _Key(
            _imap_url, "",
            'The IMAP server that receives the mailboxes (--what mail), e.g. "imaps://mail.example.org" '
            '(implicit TLS, 993) or "imap://mail.example.org" (STARTTLS, 143); certificates are always verified.'),
        "ca_bundle": _Key(_path, "", "Extra CA certificates (PEM) to trust for the IMAP server.", path=True),
        "login": _Key(
            _choice("master", "credentials"), "master",
            'How the tool signs in to each mailbox: "master" (a Dovecot master user, user*master) | "credentials" '
            "(each user's own password from the credentials CSV)."),
        "master_user": _Key(
            _imap_user, "",
            'login = "master": the master user\'s name. Its password: M365_MIGRATE_IMAP_MASTER_PASSWORD in the '
            "environment, or master_password_file; never this file."),
        "master_password_file": _Key(
            _path, "", "File holding the master user's password (login = \"master\"), mode 0600.", path=True),
        "credentials": _Key(
            _path, "secrets/imap-passwords.csv",
            'login = "credentials": CSV with a header user,password (the IMAP user names), mode 0600.', path=True),
        "connections": _Key(
            _whole(1, 4), 2,
            "IMAP connections per mailbox at once (and Graph reads of its messages); Outlook allows 4 per mailbox "
            "and Dovecot counts ours against the user's 10 (mail_max_userip_connections)."),
        "hidden_folders": _Key(
            _bool, False, "Copy Outlook's hidden mail folders too (they are listed in the plan either way)."),
        "deleted_items": _Key(_bool, True, "Copy the Deleted Items folder (into the server's \\Trash folder)."),
        "junk": _Key(_bool, True, "Copy the Junk Email folder (into the server's \\Junk folder)."),
        "max_message_size": _Key(
            _size(0, 10 * 1024**3), 0,
            'Messages larger than this are not copied and are listed (e.g. the server\'s own limit, "50MiB"); '
            "0 = no limit of ours."),
        "timeout": _Key(_seconds(5, 3600), 60.0, "Seconds an IMAP answer may take (a large APPEND included)."),
    },
    "state": {
        "path": _Key(
            _path,
            "state/migration.db",
            "The state database of this migration (also --state, M365_MIGRATE_STATE).",
            path=True,
        ),
    },
}

_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|api_?key)$", re.IGNORECASE)


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    return f"<{type(value).__name__}>"


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _secret_key_error(where: str, section: str, key: str) -> ConfigError:
    if key.lower() in ("client_secret", "secret"):
        hint = (
            f"set {ENV_CLIENT_SECRET} in the environment, or put the secret in a file only you can read "
            "(chmod 600) and name that file in [source] client_secret_file"
        )
    elif "password" in key.lower() and section == "source":
        hint = f"set {ENV_CERTIFICATE_PASSWORD} in the environment"
    elif section == "mail":
        hint = ("the master password: M365_MIGRATE_IMAP_MASTER_PASSWORD in the environment or [mail] "
                "master_password_file (chmod 600); users' own passwords: the CSV named by [mail] credentials")
    else:
        hint = "app passwords go in the CSV file named by [target] credentials (user,app_password, chmod 600)"
    return SecretsError(
        f"{where}: [{section}] {key}: secrets are never read from the configuration file", hint=hint
    )
