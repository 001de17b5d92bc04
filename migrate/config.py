"""Settings resolved once (flag > environment > TOML file > default) into frozen records; secrets loaded lazily."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import textwrap
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from migrate.credentials import (  # noqa: F401 - part of this module's API
    ENV_CERTIFICATE_PASSWORD,
    ENV_CLIENT_SECRET,
    ENV_IMAP_MASTER_PASSWORD,
    Secret,
    check_secret_file,
    load_app_passwords,
    load_certificate_password,
    load_certificate_path,
    load_client_secret,
)
from migrate.csvfile import display_path
from migrate.errors import ConfigError, SecretsError
from migrate.mapping import check_uid

DEFAULT_CONFIG_NAME = "m365-migrate.toml"
ENV_PREFIX = "M365_MIGRATE_"
ENV_CONFIG = "M365_MIGRATE_CONFIG"
ENV_STATE = "M365_MIGRATE_STATE"

# ---------------------------------------------------------------------------------------------------------------
# The frozen result


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """[source]: the Microsoft Graph tenant and the app registration used to read it."""

    tenant_id: str
    client_id: str
    auth: str  # certificate | client-secret | device-code
    certificate_path: Path | None
    client_secret_file: Path | None
    graph_url: str
    authority: str
    ca_bundle: Path | None
    org: str  # organisation name for the User-Agent
    ru_per_minute: int = 0  # the app's SharePoint resource units per minute; 0 = from the tenant's licences
    ru_per_day: int = 0  # the same per 24 hours; 0 = from the tenant's licences
    ru_share: float = 0.8  # the part of those budgets this tool spends (the rest: the tenant's other work)
    switchover_hours: float = 8.0  # the window of switchover day `plan` checks the final sync against


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """[target]: the Nextcloud or WebDAV server and where its per-user app passwords are kept."""

    kind: str  # nextcloud | webdav
    url: str
    credentials: Path | None
    ca_bundle: Path | None
    service_account: str
    prefix: str  # folder below each target root, without leading or trailing /; "" = the root
    on_conflict: str  # skip | rename | overwrite-if-ours
    share_rate: tuple[int, int]  # createShare calls per owner per seconds; (0, 0) = no pacing
    create_team_folders: bool = False  # copy creates missing team folders and grants them
    migration_group: str = "m365-migration"  # group giving the service account access to team folders
    caldav_url: str = ""  # calendar home with {user}; "" = Nextcloud's /remote.php/dav/calendars/{user}/
    carddav_url: str = ""  # address-book home with {user}; "" = Nextcloud's /remote.php/dav/addressbooks/users/{user}/


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """[mappings]: the three mapping files (design §3)."""

    users: Path
    groups: Path
    sites: Path


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """[transfer]: parallelism and upload sizes (sizes in bytes)."""

    workers: int
    chunk_size: int
    chunk_parallel: int
    small_file_limit: int
    bulk_upload: bool
    versions: str | int = 10  # "none" | "all" | N: earlier versions of each file carried (see versions_limit)
    unreachable_after: int = 60  # seconds an endpoint may answer nothing before the command gives up (exit 4)


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """[policy]: what happens to sharing that has no exact equivalent at the target."""

    anonymous_links: str  # report | public-link-with-password | drop
    organization_links: str  # group:<name> | report | drop
    external_guests: str  # report | drop
    narrower_shares: str  # report | widen
    onenote: str  # report | copy-raw
    deletions: str = "keep"  # keep | trash: what `sync` does with our copy of a file deleted at the source

    @property
    def organization_group(self) -> str | None:
        """The Nextcloud group that stands for "everyone in the organisation", when the policy names one."""
        return self.organization_links[6:] if self.organization_links.startswith("group:") else None


@dataclass(frozen=True, slots=True)
class MailSettings:
    """[mail]: the organisation's IMAP server that receives the mailboxes (`--what mail`), and how to sign in.
    Passwords never come from the TOML: the master password from M365_MIGRATE_IMAP_MASTER_PASSWORD or
    master_password_file, users' own passwords from the credentials CSV (both mode 0600)."""

    url: str = ""  # imaps://host[:993] | imap://host[:143] (STARTTLS); plain only on loopback
    ca_bundle: Path | None = None
    login: str = "master"  # master | credentials
    master_user: str = ""
    master_password_file: Path | None = None
    credentials: Path | None = None
    connections: int = 2  # IMAP connections (and Graph MIME reads) per mailbox at once, 1 to 4
    hidden_folders: bool = False
    deleted_items: bool = True
    junk: bool = True
    max_message_size: int = 0  # bytes; 0 = no limit of ours
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs, resolved once; pass it explicitly, never through globals."""

    source: SourceSettings
    target: TargetSettings
    mappings: MappingSettings
    transfer: TransferSettings
    policy: PolicySettings
    state_path: Path
    config_path: Path | None  # None when no file was read (require_file=False and none present)
    origins: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # ("transfer.workers", "option")
    mail: MailSettings = field(default_factory=MailSettings)

    def origin(self, key: str) -> str:
        """Where the value of "section.key" came from: default, the file, an environment variable or an option."""
        return dict(self.origins).get(key, "default")


# ---------------------------------------------------------------------------------------------------------------
# Value parsers: each takes (value, came_from_text) and returns the value or raises _Bad(expected)


class _Bad(Exception):
    """A value does not fit; the argument says what is expected."""


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def format_size(n: int) -> str:
    """Bytes as the shortest exact binary-unit text ("32MiB"), for templates and messages."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def parse_size(value: object) -> int:
    """ "32MiB", "10 MB", "1.5GiB" or a whole number of bytes; raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(value)
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _text(value: object, text: bool) -> str:
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str) or any(ord(c) < 32 for c in value):
        raise _Bad("a string")
    return value.strip()


def _choice(*choices: str) -> Callable[[object, bool], str]:
    def parse(value: object, text: bool) -> str:
        if isinstance(value, str) and value.strip() in choices:
            return value.strip()
        raise _Bad(" | ".join(f'"{c}"' for c in choices))

    return parse


def _whole(lo: int, hi: int) -> Callable[[object, bool], int]:
    def parse(value: object, text: bool) -> int:
        if text and isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return value
        raise _Bad(f"a whole number from {lo} to {hi}")

    return parse


def _fraction(lo: float, hi: float) -> Callable[[object, bool], float]:
    def parse(value: object, text: bool) -> float:
        if text and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi:
            return float(value)
        raise _Bad(f"a number from {lo:g} to {hi:g}")

    return parse


def _size(lo: int, hi: int) -> Callable[[object, bool], int]:
    def parse(value: object, text: bool) -> int:
        try:
            n = parse_size(value)
        except ValueError:
            n = -1
        if lo <= n <= hi:
            return n
        raise _Bad(
            f'a size from {format_size(lo)} to {format_size(hi)} such as "32MiB" (units KiB, MiB, GiB, '
            "KB, MB, GB)"
        )

    return parse


def _versions(value: object, text: bool) -> str | int:
    """[transfer] versions: "none", "all", or how many of the most recent earlier versions (1-500)."""
    if isinstance(value, str) and value.strip().lower() in ("none", "all"):
        return value.strip().lower()
    if text and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 500:
        return "none" if value == 0 else value
    raise _Bad('"none" | "all" | a whole number from 1 to 500 (the most recent earlier versions of each file)')


def parse_versions(text: str) -> str | int:
    """A `versions` value written as text (a mapping row's column, the --versions flag): "none", "all" or
    1-500; raises ValueError saying what is expected."""
    try:
        return _versions(text, True)
    except _Bad as exc:
        raise ValueError(f"expected {exc}, found {text!r}") from None


def versions_limit(policy: str | int) -> int | None:
    """How many earlier versions of a file to carry: 0 for "none", None for "all", else the number."""
    if policy == "none":
        return 0
    if policy == "all":
        return None
    return int(policy)


def _bool(value: object, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise _Bad("true or false")


def _url(required: bool) -> Callable[[object, bool], str]:
    def parse(value: object, text: bool) -> str:
        url = _text(value, text).rstrip("/")
        if not url and not required:
            return ""
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return url
        if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
            return url
        raise _Bad(
            'an https:// URL such as "https://cloud.example.org" (plain http only for 127.0.0.1/localhost)'
        )

    return parse


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _path(value: object, text: bool) -> str:
    """Paths stay text here; they are resolved against the right folder once their origin is known."""
    return _text(value, text)


def _org_links(value: object, text: bool) -> str:
    v = value.strip() if isinstance(value, str) else ""
    if v in ("report", "drop"):
        return v
    if v.startswith("group:") and v[6:].strip() and not any(ord(c) < 32 for c in v):
        return "group:" + v[6:].strip()
    raise _Bad(
        '"group:<name>" (the Nextcloud group that stands for the whole organisation, e.g. "group:staff"), '
        '"report" or "drop"'
    )


def _uid_or_blank(value: object, text: bool) -> str:
    v = _text(value, text)
    if v and check_uid(v):
        raise _Bad("a Nextcloud user id (letters, digits, space, _ . @ - ') or an empty string")
    return v


def _share_rate(value: object, text: bool) -> tuple[int, int]:
    """"calls/seconds" for createShare per owner (NC 32 allows 20/600), or "0" when the admin lifted the limit."""
    v = value.strip() if isinstance(value, str) else value
    if v in ("0", 0):
        return 0, 0
    calls, _, seconds = str(v).partition("/") if isinstance(v, str) else ("", "", "")
    if calls.strip().isdigit() and seconds.strip().isdigit():
        n, period = int(calls), int(seconds)
        if 1 <= n <= 100_000 and 1 <= period <= 86_400:
            return n, period
    raise _Bad('"<calls>/<seconds>" such as "20/600" (1 to 100000 calls per 1 to 86400 s), or "0" for no pacing')


def _group_id(value: object, text: bool) -> str:
    v = _text(value, text)
    if not v or len(v) > 64 or any(ord(c) < 32 for c in v) or "/" in v:
        raise _Bad('a Nextcloud group id such as "m365-migration" (1 to 64 characters, no / or control characters)')
    return v


def _prefix(value: object, text: bool) -> str:
    v = _text(value, text).replace("\\", "/").strip("/")
    if any(part in (".", "..") for part in v.split("/")):
        raise _Bad('a folder name such as "Migrated" or "From Microsoft 365/Files" (no . or .. parts)')
    return "/".join(p for p in v.split("/") if p)


def _imap_url(value: object, text: bool) -> str:
    """imaps://host[:port] (TLS from the start) or imap://host[:port] (STARTTLS, required); no path, no user."""
    url = _text(value, text).rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme in ("imaps", "imap") and parts.hostname and port_ok and not parts.path and not parts.username:
        return url
    raise _Bad('an IMAP URL such as "imaps://mail.example.org" (port 993, TLS) or "imap://mail.example.org" (port '
               "143, STARTTLS required); plain IMAP without TLS only to 127.0.0.1/localhost")


def _imap_user(value: object, text: bool) -> str:
    v = _text(value, text)
    if any(c.isspace() for c in v) or "*" in v:
        raise _Bad('an IMAP user name such as "migrator" (no spaces, no "*": the server joins user*master itself)')
    return v


def _seconds(lo: float, hi: float) -> Callable[[object, bool], float]:
    inner = _fraction(lo, hi)

    def parse(value: object, text: bool) -> float:
        try:
            return inner(value, text)
        except _Bad:
            raise _Bad(f"a number of seconds from {lo:g} to {hi:g}") from None

    return parse


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


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _toml_line(text: str, section: str, key: str | None = None) -> int | None:
    """Line of `key =` inside `[section]`, or of the `[section]` header itself when `key` is None (tomllib keeps
    no positions); None if not found."""
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s.startswith("[") and not s.startswith("[["):
            current = s.strip("[] \t").split("]")[0].strip().strip('"')
            if key is None and current == section:
                return number
        elif current == section and key is not None and re.match(rf'^["\']?{re.escape(key)}["\']?\s*=', s):
            return number
    return None


def _at(where: str, line: int | None) -> str:
    """`file:line` when the line is known."""
    return f"{where}:{line}" if line else where


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    where = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{where}:{line}: not valid UTF-8 (at byte offset {exc.start})", hint="save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg) or re.search(r"\(at end of document\)$", msg)
        if m and m.groups():
            pos = f":{m.group(1)}:{m.group(2)}"
        elif m:
            pos = f":{text.count(chr(10)) + 1}"
        else:
            pos = ""
        detail = msg[: m.start()].strip() if m else msg
        raise ConfigError(f"{where}{pos}: TOML syntax error: {detail}", hint=_syntax_hint(detail)) from None


_SYNTAX_HINTS = (  # tomllib's message → what usually causes it in a hand-edited file
    ("Expected newline or end of document", "one `key = value` per line: something follows the value (a comment "
     'needs a "#" before it, a text value double quotes around all of it, e.g. workers = 8  # note)'),
    ("Invalid value", 'text values need double quotes, e.g. url = "https://cloud.example.org"; numbers, true and '
     "false stand alone; a list needs its closing ]"),
    ("Cannot overwrite a value", "this key or section is set twice: keep one of them"),
    ("Cannot declare", "this section is declared twice: keep one [section] header"),
    ("Illegal character", 'a text value is not closed: end it with a double quote on the same line'),
    ("Expected ']'", "a section header is written [section] on a line of its own"),
)


def _syntax_hint(detail: str) -> str:
    return next((hint for start, hint in _SYNTAX_HINTS if detail.startswith(start)),
                'each line is `key = value` under a [section]; text values need double quotes')


def _resolve_config_path(config_path: Path | None, env: Mapping[str, str]) -> tuple[Path, str | None]:
    """(path, why) where why names the flag or variable that chose it; None for the default."""
    if config_path is not None:
        return Path(config_path).expanduser(), "--config"
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser(), ENV_CONFIG
    return Path(DEFAULT_CONFIG_NAME), None


def _file_values(data: dict[str, Any], text: str, where: str) -> dict[tuple[str, str], tuple[Any, str]]:
    """Check sections and keys of the parsed file; returns {(section, key): (raw value, location)}."""
    found: dict[tuple[str, str], tuple[Any, str]] = {}
    sections = list(_SCHEMA)
    for section, table in data.items():
        if section not in _SCHEMA:
            if not isinstance(table, dict):
                owners = [s for s in sections if section in _SCHEMA[s]]
                hint = f" (did you mean [{owners[0]}] {section}?)" if owners else ""
                raise ConfigError(
                    f"{_at(where, _toml_line(text, '', section))}: {section}: unknown top-level key; every setting "
                    f"belongs to a section ({', '.join(f'[{s}]' for s in sections)}){hint}"
                )
            raise ConfigError(
                f"{_at(where, _toml_line(text, section))}: [{section}]: unknown section; expected one of "
                f"{', '.join(f'[{s}]' for s in sections)}{_suggest(section, sections)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} = {_show(table)}: expected a section [{section}]")
        for key, value in table.items():
            line = _toml_line(text, section, key)
            if key not in _SCHEMA[section] and _SECRET_KEYS.search(key):
                raise _secret_key_error(_at(where, line), section, key)
            if key not in _SCHEMA[section]:
                raise ConfigError(
                    f"{_at(where, line)}: [{section}] {key}: unknown key; expected one of "
                    f"{', '.join(_SCHEMA[section])}{_suggest(key, list(_SCHEMA[section]))}"
                )
            found[section, key] = (value, _at(where, line))
    return found


def _env_values(env: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    """{(section, key): (value, variable name)} from M365_MIGRATE_<SECTION>_<KEY>; close typos are errors."""
    known = {_env_name(s, k): (s, k) for s in _SCHEMA for k in _SCHEMA[s]}
    known[ENV_STATE] = ("state", "path")
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in (ENV_CONFIG, ENV_IMAP_MASTER_PASSWORD) or value == "":
            continue
        if name in known:
            if name == ENV_STATE or known[name] not in found:
                found[known[name]] = (value, name)
            continue
        close = difflib.get_close_matches(name, [*known, ENV_CONFIG], n=1, cutoff=0.85)
        section = next((s for s in _SCHEMA if name.startswith(f"{ENV_PREFIX}{s.upper()}_")), None)
        if section and _SECRET_KEYS.search(name):
            raise _secret_key_error(f"environment variable {name}", section, name[len(ENV_PREFIX) :].lower())
        if close or section:
            raise ConfigError(
                f"environment variable {name}: unknown setting"
                + (
                    f" (did you mean {close[0]}?)"
                    if close
                    else f"; [{section}] has {', '.join(_SCHEMA[section or ''])}"
                )
            )
    return found


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
    require_file: bool = True,
) -> Settings:
    """Resolve settings once: option (`overrides`) > environment > TOML file > default.

    `config_path` is the --config value (None: $M365_MIGRATE_CONFIG, else ./m365-migrate.toml). `overrides`
    maps "section.key" to a value (None = option not given). With require_file=False a missing default file
    means "defaults only" (for commands such as status); a file named by --config or the environment must exist.
    Raises ConfigError (SecretsError for a secret put in the file) naming the file, the key, the value found
    and what is expected.
    """
    path, why = _resolve_config_path(config_path, env)
    data: dict[str, Any] = {}
    text = ""
    loaded: Path | None = None
    if path.is_file():
        data, text = _read_toml(path)
        loaded = path.resolve()
    elif path.exists():
        raise ConfigError(f"{display_path(path)}: is not a file")
    elif require_file or why is not None:
        chosen = f" (named by {why})" if why else ""
        raise ConfigError(
            f"{display_path(path)}: configuration file not found{chosen}",
            hint="run `m365-migrate init` to write one, or pass --config PATH",
        )
    where = display_path(path)
    file_vals = _file_values(data, text, where)
    env_vals = _env_values(env)
    flag_vals: dict[tuple[str, str], Any] = {}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if key not in _SCHEMA.get(section, {}):
            raise ConfigError(
                f"option {dotted}: unknown setting (expected section.key, e.g. transfer.workers)"
            )
        if value is not None:
            flag_vals[section, key] = value
    file_base = loaded.parent if loaded else Path.cwd()
    values: dict[str, dict[str, Any]] = {}
    origins: list[tuple[str, str]] = []
    for section, keys in _SCHEMA.items():
        values[section] = {}
        for key, spec in keys.items():
            if (section, key) in flag_vals:
                raw, text_value, origin, base = flag_vals[section, key], True, "option", Path.cwd()
                label = f"option {section}.{key} = {_show(raw)}"
            elif (section, key) in env_vals:
                raw, name = env_vals[section, key]
                text_value, origin, base = True, f"environment {name}", Path.cwd()
                label = f"environment variable {name}={_show(raw)}"
            elif (section, key) in file_vals:
                raw, at = file_vals[section, key]
                text_value, origin, base = False, f"file {where}", file_base
                label = f"{at}: [{section}] {key} = {_show(raw)}"
            else:
                raw, text_value, origin, base, label = spec.default, False, "default", file_base, ""
            try:
                value = spec.parse(raw, text_value)
            except _Bad as exc:
                raise ConfigError(f"{label}: expected {exc.args[0]}") from None
            if spec.path:
                value = Path(os.path.normpath(base / Path(value).expanduser())) if value else None
            values[section][key] = value
            origins.append((f"{section}.{key}", origin))
    v = values
    return Settings(
        source=SourceSettings(**v["source"]),
        target=TargetSettings(**v["target"]),
        mappings=MappingSettings(**v["mappings"]),
        transfer=TransferSettings(**v["transfer"]),
        policy=PolicySettings(**v["policy"]),
        state_path=v["state"]["path"],
        config_path=loaded,
        origins=tuple(origins),
        mail=MailSettings(**v["mail"]),
    )


def missing_settings(settings: Settings, needs: tuple[str, ...] = ("source", "target")) -> list[str]:
    """What a command needing these sections still lacks, one sentence each (doctor prints them all)."""
    out: list[str] = []

    def need(section: str, key: str, why: str = "") -> None:
        out.append(
            f"[{section}] {key} is not set{why}: set it in the configuration file or "
            f"{_env_name(section, key)}"
        )

    if "source" in needs:
        for key in ("tenant_id", "client_id"):
            if not getattr(settings.source, key):
                need("source", key)
        if settings.source.auth == "certificate" and settings.source.certificate_path is None:
            need("source", "certificate_path", ' (auth = "certificate")')
    if "target" in needs:
        if not settings.target.url:
            need("target", "url")
        if settings.target.credentials is None:
            need("target", "credentials")
    if "mail" in needs:
        if not settings.mail.url:
            need("mail", "url", " (the IMAP server for --what mail)")
        if settings.mail.login == "master" and not settings.mail.master_user:
            need("mail", "master_user", ' (login = "master")')
        if settings.mail.login == "credentials" and settings.mail.credentials is None:
            need("mail", "credentials", ' (login = "credentials")')
    return out


def require_settings(settings: Settings, *needs: str) -> None:
    """Raise ConfigError listing every missing setting of these sections ("source", "target", "mail")."""
    missing = missing_settings(settings, needs or ("source", "target"))
    if missing:
        raise ConfigError("\n".join(missing), hint="`m365-migrate doctor` checks the whole configuration")


# ---------------------------------------------------------------------------------------------------------------
# The file `init` writes

_SECTION_DOCS = {
    "source": "Microsoft 365 (Microsoft Graph): the tenant and the app registration that reads it.",
    "target": "Where the files go. Secrets never go in this file: app passwords live in the credentials CSV.",
    "mappings": "Mapping files (see mappings/README.md); relative paths are relative to this file's folder.",
    "transfer": "How files are moved.",
    "policy": "Sharing that has no exact equivalent at the target; never broader than the source.",
    "mail": "Mailboxes (--what mail) into the organisation's IMAP server. No passwords here: see master_user and "
            "credentials.",
    "state": "The migration's own records.",
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)


def render_config_template() -> str:
    """The commented m365-migrate.toml that `init` writes: every key with its meaning and default."""
    out = [
        "# m365-migrate configuration. Precedence: command-line option > environment > this file > default.",
        "# Every key can be set in the environment as M365_MIGRATE_<SECTION>_<KEY>, e.g. "
        "M365_MIGRATE_TRANSFER_WORKERS=4.",
        f"# Secrets: {ENV_CLIENT_SECRET} (or [source] client_secret_file), the certificate file and the "
        "credentials CSV, all mode 0600.",
        "",
    ]
    sizes = {"chunk_size", "small_file_limit"}
    for section, keys in _SCHEMA.items():
        out.append(f"[{section}]")
        out.append(f"# {_SECTION_DOCS[section]}")
        for key, spec in keys.items():
            default = format_size(spec.default) if key in sizes else spec.default
            out.extend(
                textwrap.wrap(
                    f"{spec.doc} Default: {_toml_value(default)}.",
                    110,
                    initial_indent="# ",
                    subsequent_indent="# ",
                    break_on_hyphens=False,
                )
            )
            out.append(f"{key} = {_toml_value(default)}")
        out.append("")
    return "\n".join(out)
