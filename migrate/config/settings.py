"""The frozen result: one record per TOML section, resolved once, read everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_NAME = "m365-migrate.toml"
ENV_PREFIX = "M365_MIGRATE_"
ENV_CONFIG = "M365_MIGRATE_CONFIG"
ENV_STATE = "M365_MIGRATE_STATE"


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
