"""The state database: the only module that speaks SQL.

`StateStore(path)` opens (and migrates) one migration's database; `RunLock` keeps two runs apart.
"""

from __future__ import annotations

from migrate.store.audit import AuditMixin, ChainReport
from migrate.store.drives import DrivesMixin
from migrate.store.items import ItemsMixin
from migrate.store.lock import RunLock
from migrate.store.permissions import PermissionsMixin
from migrate.store.plan import PlanMixin
from migrate.store.scratch import ScratchMixin
from migrate.store.uploads import UploadsMixin


class StateStore(ItemsMixin, DrivesMixin, PermissionsMixin, PlanMixin, UploadsMixin, AuditMixin, ScratchMixin):
    """One migration's state: drives, items, permissions, runs, metrics, uploads in progress and the audit trail."""


__all__ = ["ChainReport", "RunLock", "StateStore"]
