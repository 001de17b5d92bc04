"""The contracts between the engine and the backends: a Source we read from and a Target we write to.

The engine imports only these protocols and the records in `migrate.models`; which service sits behind them is
the backends' business. Optional abilities are announced in `Target.features`, never found by type checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from migrate.models import Drive, Features, Grant, RemoteEntry


@dataclass(slots=True)
class DeltaPage:
    """One page of a delta enumeration, as raw driveItem dicts (model parsing is too slow for the hot path)."""

    items: list[dict[str, Any]]
    next_link: str | None = None
    delta_link: str | None = None


@dataclass(slots=True)
class DiscoveredUser:
    """A user found at the source; `has_drive` is false for the 'no mysite' case."""

    id: str
    upn: str
    display_name: str = ""
    mail: str = ""
    has_drive: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """Read side. Every method goes through the pacer; none retries on its own."""

    def discover(self) -> Iterator[Drive | DiscoveredUser]:
        """Yield users (with or without a drive) and every drive: OneDrives, site libraries, Team drives."""

    def delta(self, drive_id: str, link: str | None) -> Iterator[DeltaPage]:
        """Enumerate a drive from `link` (a stored next/delta link) or from the start when None.

        Raises DeltaExpired when the service says the link is too old (410); ItemNotFound when the drive is gone.
        """

    def open_content(self, drive_id: str, item_id: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        """Stream an item's bytes from `offset`; the download URL is fetched just before use, never stored."""

    def permissions(self, drive_id: str, item_id: str) -> list[Grant]:
        """The item's sharing grants (5 RU each call: ask only for items whose `shared` facet is set)."""


@runtime_checkable
class Target(Protocol):
    """Write side. Paths are '/'-separated and relative to the tree of `user` ('' for a plain WebDAV root).

    Every write is idempotent for the same path and bytes, so a resumed run may repeat it safely.
    """

    features: Features

    def stat(self, user: str, path: str) -> RemoteEntry | None:
        """What is at `path`, or None when nothing is there."""

    def walk(self, user: str, path: str) -> Iterator[RemoteEntry]:
        """Every entry below `path` (reads only)."""

    def ensure_folder(self, user: str, path: str) -> None:
        """Create `path` and its missing parents; an existing folder is fine."""

    def upload(
        self,
        user: str,
        path: str,
        chunks: Iterable[bytes],
        size: int,
        *,
        mtime: float | None = None,
        sha1: str | Callable[[], str] | None = None,
        if_match: str | None = None,
    ) -> RemoteEntry:
        """Stream `size` bytes to `path`, replacing what is there; raises TargetFull on 507.

        `sha1` may be a callable: for a streamed upload the digest is known only once the last chunk has been
        read, so a target that sends it at the end (chunked upload's final MOVE) calls it then. With `if_match`
        (the etag of the file we wrote there) the write is conditional on the target itself and raises
        ChangedAtTarget when the file there is another one.
        """

    def delete(self, user: str, path: str) -> None:
        """Remove `path`; a missing path is fine."""
