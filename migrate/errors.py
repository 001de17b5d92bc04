"""The typed exception tree and the one table that maps it to process exit codes."""

from __future__ import annotations


class ExitCode:
    """Exit codes of design §1; the CLI boundary is the only place that turns errors into these."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    ATTENTION = 3
    AUTH = 4
    TARGET_FULL = 5
    INTERRUPTED = 130


# Markers, mixed into concrete classes: they say how the caller should react, not what went wrong.
class Transient:
    """Retrying the same operation later may succeed (throttling, resets, 5xx)."""


class Terminal:
    """This item cannot succeed as it stands; record it and go on with the others."""


class Fatal:
    """The whole run must stop: going on would fail every item or do harm."""


class MigrateError(Exception):
    """Base of every error the tool raises on purpose; `hint` tells the user what to do next."""

    exit_code: int = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class ConfigError(MigrateError, Fatal):
    """Configuration, mapping file or command-line usage is wrong."""

    exit_code = ExitCode.USAGE


class MappingError(ConfigError):
    """A mapping file is malformed or inconsistent (names file, line and column)."""


class SecretsError(ConfigError):
    """A secret is missing, or its file is readable by others."""


class StateError(MigrateError, Fatal):
    """The state database is unusable (wrong schema, corrupt, or not yet initialised)."""

    exit_code = ExitCode.USAGE


class LockedError(StateError):
    """Another run holds the lock of this state database."""


class IllegalTransition(StateError):
    """An item was asked to move between two statuses the state machine does not connect."""

    exit_code = ExitCode.UNEXPECTED


class AuditChainBroken(MigrateError, Fatal):
    """The audit trail's hash chain does not verify: a record was changed, removed or inserted."""

    exit_code = ExitCode.ATTENTION


class AuthError(MigrateError, Fatal):
    """Credentials were refused or lack a permission."""

    exit_code = ExitCode.AUTH


class SignInRefused(AuthError):
    """The identity provider refused the app's credentials (a wrong or expired client secret or certificate):
    nothing at Graph can work, unlike a single permission missing (a 403, also an AuthError)."""


class TransientError(MigrateError, Transient):
    """A network or service hiccup that the pacer may retry."""


class Unanswered(TransientError):
    """The endpoint gave no answer at all (connection refused or reset, name unknown, timed out). Retried like any
    transient error, but bounded in time by the endpoint's fault budget (transport/outage.py), not by a count."""

    def __init__(self, message: str, *, reason: str = "", where: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason or message
        self.where = where  # names the endpoint when it is not the pacer's own (the sign-in authority)


class EndpointUnreachable(MigrateError, Fatal):
    """An endpoint (the target, Graph) answered nothing for the whole fault budget: the run stops, every item
    waits unharmed for the rerun. Names the URL and the configuration key that holds it."""

    exit_code = ExitCode.AUTH  # the table's "target or Graph unreachable or refusing"


class ThrottledError(TransientError):
    """The service asked us to slow down (429/503 with or without Retry-After)."""

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class SourceError(MigrateError):
    """The source (Microsoft Graph) refused or failed an operation."""


class ItemNotFound(SourceError, Terminal):
    """The item or drive no longer exists at the source."""


class DeltaExpired(SourceError):
    """The stored delta link is no longer valid (410): a full resync is needed."""

    def __init__(self, message: str, *, restart_url: str | None = None) -> None:
        super().__init__(message)
        self.restart_url = restart_url


class TargetError(MigrateError):
    """The target (Nextcloud or WebDAV) refused or failed an operation."""


class TargetItemError(TargetError, Terminal):
    """The target refused this item (illegal name, too large, forbidden)."""


class ChangedAtTarget(TargetItemError):
    """A conditional write answered 412: the file at the target is no longer the one we wrote (a person changed,
    replaced or deleted it in the meantime). Nothing was written; `sync` keeps both versions."""

    marker = "no longer the one we wrote"  # in every message, so a recorded item error can be recognised


class TargetRefused(TargetItemError):
    """The target answered 403: this account may not do this here (wrong account or password row, a session,
    an ACL, a read-only share). An item failure; if escaping alone it means "finished, with items needing you"."""

    exit_code = ExitCode.ATTENTION


class DriveRefused(AuthError):
    """The first folder of a drive was refused: the writing account cannot write there at all, so the drive stops
    before any of its files is tried (the other drives go on)."""


class TargetFull(TargetError, Fatal):
    """The target answered 507 Insufficient Storage: the quota or the disk is full."""

    exit_code = ExitCode.TARGET_FULL


class TargetLocked(TargetError, Transient):
    """The target path is locked (423); retry later."""


class MailboxFull(TargetFull):
    """The IMAP server answered [OVERQUOTA]: the target mailbox is full. Fatal for that mailbox (raise its quota,
    then rerun); the message was refused before its bytes were sent."""


class ImapRefused(TargetItemError):
    """The IMAP server refused this one operation (NO/BAD): the item is recorded as failed, the others go on.
    `code` is the response code (`CANNOT`, `LIMIT`, ...) or "", `folder` the UTF-8 folder name involved."""

    exit_code = ExitCode.ATTENTION

    def __init__(self, message: str, *, code: str = "", folder: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.folder = folder


class FolderNameRefused(ImapRefused):
    """The server cannot take this folder name ([CANNOT], too long, not mUTF-7): rename it by the name rules."""


class FolderMissing(ImapRefused):
    """The folder does not exist at the server ([TRYCREATE], or gone between two calls): create it and retry."""


class ImapBusy(ThrottledError):
    """The server refused for now ([LIMIT] too many connections, [INUSE], [UNAVAILABLE]): retry later."""


class ImapConnectionLost(Unanswered):
    """The IMAP connection failed, dropped or timed out, or the server answered something we cannot parse: the
    session is unusable; a new one may succeed."""


class MailLoginRefused(AuthError):
    """The IMAP server refused the sign-in of one mailbox's user (wrong password, unknown user, master user not
    allowed). `user` names the mailbox user, never the password."""

    def __init__(self, message: str, *, user: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.user = user


class TargetNotTrusted(AuthError):
    """The server's TLS certificate did not verify (or it offers no TLS where TLS is required): nothing is sent.
    Verification is never switched off; the fix is the server's certificate or the `ca_bundle` setting."""


class IntegrityError(MigrateError, Terminal):
    """Bytes written do not match the bytes read (size or hash mismatch)."""


class AttentionNeeded(MigrateError):
    """The run finished, but some items failed or need a person's decision (listed in the message)."""

    exit_code = ExitCode.ATTENTION


def exit_code_for(exc: BaseException) -> int:
    """The single mapping from an exception to a process exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, MigrateError):
        return exc.exit_code
    return ExitCode.UNEXPECTED
