"""`init`: lay out a migration folder (configuration and mapping templates) without clobbering edits."""

from __future__ import annotations

import os
from pathlib import Path


def init_project(directory: Path, *, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the config and mapping templates into `directory`; return (written, kept-because-existing)."""
    from migrate.config import render_config_template
    from migrate.mapping import render_mapping_templates

    files: dict[Path, str] = {directory / "m365-migrate.toml": render_config_template()}
    for name, text in render_mapping_templates().items():
        files[directory / "mappings" / name] = text
    written, kept = [], []
    for path, text in files.items():
        if path.exists() and not force:
            kept.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    (directory / "state").mkdir(exist_ok=True)
    return written, kept
