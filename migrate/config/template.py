"""The file `init` writes: every section and key with its help text, from the schema."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from migrate.config.schema import _SCHEMA
from migrate.config.values import format_size
from migrate.credentials import (
    ENV_CLIENT_SECRET,
)

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
