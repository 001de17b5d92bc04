"""`doctor`'s look at the state database: readable, ours, how far along; read-only (no migration, no lock)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from migrate.errors import StateError
from migrate.store.schema import migrations


def probe_state(path: Path) -> str:
    """One line about the state database at `path`, or StateError saying why no command could use it."""
    path = Path(path)
    if not path.exists():
        folder = next((p for p in path.parents if p.exists()), Path("."))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StateError(f"the state database {path} does not exist and {folder} is not writable",
                             hint="make the folder writable for this account, or pass --state with another path")
        return f"{path} does not exist yet; `discover` creates it (mode 0600)"
    if path.is_dir():
        raise StateError(f"the state database {path} is a folder", hint="pass --state with the database file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StateError(f"the state database {path} is not readable and writable for this account",
                         hint=f"run m365-migrate as the account that owns it, or fix its owner (ls -l {path})")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            drives = conn.execute("SELECT count(*) FROM drives").fetchone()[0]
            applied = {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                                  (migrations.name,))}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StateError(f"the state database {path} cannot be read: {exc}",
                         hint="it is not an m365-migrate state database, or it is damaged: restore it from a "
                              "backup, or pass --state with the right file") from exc
    known = {m.name for m in migrations._migrations}  # noqa: SLF001 - the registered steps, by name
    if applied - known:
        raise StateError(f"the state database {path} was written by a newer m365-migrate "
                         f"({', '.join(sorted(applied - known))})", hint="upgrade m365-migrate on this machine")
    mode = stat.S_IMODE(path.stat().st_mode)
    text = f"{path}: readable, {drives} drives recorded"
    if mode & 0o077:
        text += f"; mode {mode:04o}, the next command makes it 0600 (it holds names, paths and grants)"
    return text
