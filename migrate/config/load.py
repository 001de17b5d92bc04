"""Loading: flag > environment > TOML file > default, each value checked, every problem named at once."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrate.config.schema import _SCHEMA, _SECRET_KEYS, _env_name, _secret_key_error, _show, _suggest
from migrate.config.settings import (
    DEFAULT_CONFIG_NAME,
    ENV_CONFIG,
    ENV_PREFIX,
    ENV_STATE,
    MailSettings,
    MappingSettings,
    PolicySettings,
    Settings,
    SourceSettings,
    TargetSettings,
    TransferSettings,
)
from migrate.config.values import _Bad
from migrate.credentials import ENV_IMAP_MASTER_PASSWORD
from migrate.csvfile import display_path
from migrate.errors import ConfigError


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
