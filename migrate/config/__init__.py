"""Settings resolved once (flag > environment > TOML file > default) into frozen records; secrets loaded lazily.

`settings` holds the records, `values` the parsers of single values, `schema` every key with its default and help,
`load` the resolution and its messages, `template` the file `init` writes. Secrets come from `migrate.credentials`.
"""

from migrate.config.load import load_settings, missing_settings, require_settings
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
from migrate.config.template import render_config_template
from migrate.config.values import format_size, parse_size, parse_versions, versions_limit
from migrate.credentials import (
    ENV_CERTIFICATE_PASSWORD,
    ENV_CLIENT_SECRET,
    ENV_IMAP_MASTER_PASSWORD,
    Secret,
    load_app_passwords,
    load_certificate_password,
    load_certificate_path,
    load_client_secret,
)

__all__ = [
    "DEFAULT_CONFIG_NAME", "ENV_CERTIFICATE_PASSWORD", "ENV_CLIENT_SECRET", "ENV_CONFIG", "ENV_IMAP_MASTER_PASSWORD",
    "ENV_PREFIX", "ENV_STATE", "MailSettings", "MappingSettings", "PolicySettings", "Secret", "Settings",
    "SourceSettings", "TargetSettings", "TransferSettings", "format_size", "load_app_passwords",
    "load_certificate_password", "load_certificate_path", "load_client_secret", "load_settings", "missing_settings",
    "parse_size", "parse_versions", "render_config_template", "require_settings", "versions_limit",
]
