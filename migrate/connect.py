"""Build the Source and Target a command needs from resolved settings (the one place that reads their secrets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.protocols import Target


def open_target_from_settings(settings: Settings, *, pacer: Any = None) -> Target:
    """The configured Nextcloud or WebDAV target, with the app passwords from the credentials file."""
    from migrate.backends import open_target
    from migrate.config import load_app_passwords, require_settings

    require_settings(settings, "target")
    t = settings.target
    options = ({"chunk_size": settings.transfer.chunk_size, "chunk_parallel": settings.transfer.chunk_parallel}
               if t.kind == "nextcloud" else {})
    if pacer is None:
        from migrate.transport.pacer import Pacer

        pacer = Pacer(t.kind, faults=fault_budget(settings, "target", t.url, "[target] url"))
    return open_target(
        t.kind, t.url, load_app_passwords(settings), ca_bundle=str(t.ca_bundle) if t.ca_bundle else None,
        pacer=pacer, service_account=t.service_account or None, **options,
    )


def fault_budget(settings: Settings, label: str, url: str, key: str) -> Any:  # -> transport.outage.FaultBudget
    """The fault budget of one endpoint: `[transfer] unreachable_after` seconds, named by its URL and key."""
    from migrate.transport.outage import Endpoint, FaultBudget

    where = settings.config_path.name if settings.config_path else "the configuration"
    return FaultBudget(Endpoint(label, url, f"{key} in {where}"), settings.transfer.unreachable_after)


def close_quietly(obj: Any) -> None:
    """Close a backend if it has something to close."""
    close = getattr(obj, "close", None)
    if callable(close):
        close()
