"""The state database: the only module that speaks SQL.

`StateStore(path)` opens (and migrates) one migration's database; `RunLock` keeps two runs apart.
"""

from __future__ import annotations

from migrate.store.audit import AuditMixin, ChainReport
from migrate.store.drives import DrivesMixin
from migrate.store.groupware import GroupwareMixin
from migrate.store.gw_attachments import GwAttachmentsMixin
from migrate.store.items import ItemsMixin
from migrate.store.lock import RunLock
from migrate.store.mail import MailMixin
from migrate.store.permissions import PermissionsMixin
from migrate.store.plan import PlanMixin
from migrate.store.scratch import ScratchMixin
from migrate.store.shares import SharesMixin
from migrate.store.sync import SyncMixin
from migrate.store.uploads import UploadsMixin
from migrate.store.versions import VersionsMixin


class StateStore(ItemsMixin, DrivesMixin, PermissionsMixin, PlanMixin, SharesMixin, UploadsMixin, GroupwareMixin,
                 GwAttachmentsMixin, SyncMixin, AuditMixin, ScratchMixin, VersionsMixin, MailMixin):
    """One migration's state: drives, items (and what we placed where), permissions, planned shares, runs, metrics,
    uploads in progress, version histories, groupware objects and their attachments carried as files, mail folders and the message ledger, sync
    changes, the audit trail, and scratch tables for one command's
    large working sets."""


__all__ = ["ChainReport", "RunLock", "StateStore"]
