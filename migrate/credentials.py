"""Secrets: only from the environment or from files readable by their owner alone; never printed or stored."""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.csvfile import MappingFileError, display_path, read_csv_table
from migrate.errors import MappingError, SecretsError
from migrate.mapping import check_uid

if TYPE_CHECKING:
    from migrate.config import Settings

ENV_CLIENT_SECRET = "M365_CLIENT_SECRET"
ENV_CERTIFICATE_PASSWORD = "M365_CERTIFICATE_PASSWORD"
ENV_IMAP_MASTER_PASSWORD = "M365_MIGRATE_IMAP_MASTER_PASSWORD"


def _env_name(section: str, key: str) -> str:
    from migrate.config.schema import _env_name as name

    return name(section, key)


class Secret:
    """A secret value whose repr and str are "***"; call reveal() at the one place that sends it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not pickled")


def check_secret_file(path: Path, what: str) -> Path:
    """Return `path` if it is a regular file that only its owner can access; raises SecretsError otherwise."""
    shown = display_path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretsError(f"{shown}: {what} not found") from None
    except OSError as exc:
        raise SecretsError(f"{shown}: {what} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretsError(f"{shown}: {what} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise SecretsError(
            f"{shown}: {what} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            "secrets files must be mode 0600 or stricter",
            hint=f"chmod 600 {path}",
        )
    return path


def load_client_secret(settings: Settings, env: Mapping[str, str] = os.environ) -> Secret:
    """The client secret from $M365_CLIENT_SECRET, else from [source] client_secret_file; raises SecretsError."""
    if env.get(ENV_CLIENT_SECRET):
        return Secret(env[ENV_CLIENT_SECRET].strip())
    path = settings.source.client_secret_file
    if path is None:
        raise SecretsError(
            'no client secret for [source] auth = "client-secret"',
            hint=f"set {ENV_CLIENT_SECRET} in the environment, or put the secret in a file only you "
            "can read (chmod 600) and name it in [source] client_secret_file",
        )
    value = (
        check_secret_file(path, "client secret file ([source] client_secret_file)").read_text("utf-8").strip()
    )
    if not value:
        raise SecretsError(f"{display_path(path)}: client secret file is empty")
    return Secret(value)


def load_certificate_path(settings: Settings) -> Path:
    """The certificate file of [source] certificate_path, checked to be mode 0600; raises SecretsError."""
    if settings.source.certificate_path is None:
        raise SecretsError(
            '[source] certificate_path is not set (needed for auth = "certificate")',
            hint=f"name the PEM file in the configuration or in {_env_name('source', 'certificate_path')}",
        )
    return check_secret_file(settings.source.certificate_path, "certificate file ([source] certificate_path)")


def load_certificate_password(env: Mapping[str, str] = os.environ) -> Secret | None:
    """The password of an encrypted certificate file, from $M365_CERTIFICATE_PASSWORD; None when unset."""
    value = env.get(ENV_CERTIFICATE_PASSWORD)
    return Secret(value) if value else None


def load_app_passwords(settings: Settings) -> dict[str, Secret]:
    """user -> app password from the [target] credentials CSV (header user,app_password, mode 0600).

    Raises SecretsError naming file:line:column for every problem; values are never shown.
    """
    path = settings.target.credentials
    if path is None:
        raise SecretsError("[target] credentials is not set: the CSV of per-user app passwords is needed")
    check_secret_file(path, "credentials file ([target] credentials)")
    hint = (
        "the file has a header line user,app_password and one line per Nextcloud user; app passwords come "
        "from `occ user:auth-tokens:add <user>`"
    )
    try:
        table = read_csv_table(path, ("user", "app_password"), reveal_values=False)
    except MappingFileError as exc:
        raise SecretsError("\n".join(str(p) for p in exc.problems), hint=hint) from None
    except MappingError as exc:
        raise SecretsError(exc.message, hint=hint) from None
    problems: list[str] = []
    result: dict[str, Secret] = {}
    lines: dict[str, int] = {}
    shown = display_path(path)
    for rec in table.records:
        user, password = rec.values["user"], rec.values["app_password"]
        if not user or check_uid(user):
            problems.append(f"{shown}:{rec.line}:{rec.columns['user']}: expected a Nextcloud user id")
        elif user.casefold() in lines:
            problems.append(
                f"{shown}:{rec.line}:{rec.columns['user']}: user {user!r} appears twice: "
                f"also on line {lines[user.casefold()]}"
            )
        if not password:
            problems.append(f"{shown}:{rec.line}:{rec.columns['app_password']}: app_password is empty")
        if user and not check_uid(user):
            lines.setdefault(user.casefold(), rec.line)
            result[user] = Secret(password)
    if problems:
        raise SecretsError("\n".join(problems), hint=hint)
    return result


def load_imap_master_password(settings: Settings, env: Mapping[str, str] = os.environ) -> Secret:
    """The IMAP master user's password: $M365_MIGRATE_IMAP_MASTER_PASSWORD, else [mail] master_password_file
    (mode 0600); raises SecretsError saying where to put it."""
    if env.get(ENV_IMAP_MASTER_PASSWORD):
        return Secret(env[ENV_IMAP_MASTER_PASSWORD])
    path = settings.mail.master_password_file
    if path is None:
        raise SecretsError(
            f'no password for the IMAP master user {settings.mail.master_user!r} ([mail] login = "master")',
            hint=f"set {ENV_IMAP_MASTER_PASSWORD} in the environment, or put the password in a file only you can "
            "read (chmod 600) and name it in [mail] master_password_file")
    value = check_secret_file(path, "master password file ([mail] master_password_file)").read_text("utf-8")
    value = value.strip("\r\n")
    if not value:
        raise SecretsError(f"{display_path(path)}: master password file is empty")
    return Secret(value)


def load_imap_passwords(settings: Settings) -> dict[str, Secret]:
    """IMAP user -> password from the [mail] credentials CSV (header user,password, mode 0600); raises
    SecretsError naming file:line:column, never a value."""
    path = settings.mail.credentials
    if path is None:
        raise SecretsError('[mail] credentials is not set (needed for login = "credentials")')
    check_secret_file(path, "IMAP credentials file ([mail] credentials)")
    hint = "the file has a header line user,password and one line per IMAP user (the target user of users.csv)"
    try:
        table = read_csv_table(path, ("user", "password"), reveal_values=False)
    except MappingFileError as exc:
        raise SecretsError("\n".join(str(p) for p in exc.problems), hint=hint) from None
    except MappingError as exc:
        raise SecretsError(exc.message, hint=hint) from None
    problems: list[str] = []
    result: dict[str, Secret] = {}
    shown = display_path(path)
    for rec in table.records:
        user, password = rec.values["user"], rec.values["password"]
        if not user or any(c.isspace() for c in user):
            problems.append(f"{shown}:{rec.line}:{rec.columns['user']}: expected an IMAP user name")
        elif user.casefold() in {u.casefold() for u in result}:
            problems.append(f"{shown}:{rec.line}:{rec.columns['user']}: user {user!r} appears twice")
        if not password:
            problems.append(f"{shown}:{rec.line}:{rec.columns['password']}: password is empty")
        elif user:
            result[user] = Secret(password)
    if problems:
        raise SecretsError("\n".join(problems), hint=hint)
    return result
