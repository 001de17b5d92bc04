"""One Depth-1 listing per target folder that receives several new files, instead of one PROPFIND per file.

`sync` looks at each new file's destination before the copy pool writes it (someone else's file there is kept).
A day's new files cluster in a few folders; for a folder with at least `MIN_FILES` of them one listing answers
every look, other destinations get a single stat as before.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from migrate.backends.webdav.wire import clean_path
from migrate.engine.files.changes import NEW_FILE, Change
from migrate.models import RemoteEntry
from migrate.protocols import Target

MIN_FILES = 3


def _split(path: str) -> tuple[str, str]:
    parent, _, name = clean_path(path).rpartition("/")
    return parent, name


class FolderListings:
    """`stat` for new files' destinations, answered from one listing of their folder where that saves requests."""

    def __init__(self, target: Target, changes: Iterable[Change] = ()) -> None:
        self.target = target
        counts = Counter((c.user, _split(c.to_path)[0]) for c in changes if c.kind == NEW_FILE and c.to_path)
        self.busy = {key for key, n in counts.items() if n >= MIN_FILES}
        self.listed: dict[tuple[str, str], dict[str, RemoteEntry] | None] = {}
        self.locks: dict[tuple[str, str], threading.Lock] = {}
        self.lock = threading.Lock()
        self.listings = 0

    def stat(self, user: str, path: str) -> RemoteEntry | None:
        parent, name = _split(path)
        key = (user, parent)
        lister = getattr(self.target, "list_folder", None)
        if key not in self.busy or not callable(lister):
            return self.target.stat(user, path)
        with self.lock:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.listed:
                entries = lister(user, parent)
                self.listings += 1
                self.listed[key] = None if entries is None else {
                    _split(e.path)[1]: e for e in entries if clean_path(e.path) != parent}
            children = self.listed[key]
        return None if children is None else children.get(name)
