"""Planned shares (one per item and recipient) and what `share` made of each; grants not carried over."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from migrate.models import PlannedShare
from migrate.store.base import StoreBase, dk_of, utcnow

# planned_shares.planned: 1 planned, 2 seen by the plan pass under way, 0 no longer asked for by any grant.
_SEEN = 2
DONE = "created"  # the share is at the target as planned (made by us, or found there as planned)
PROBLEMS = ("failed", "refused-broader", "existing-broader", "existing-narrower")


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


def _share(r: dict[str, Any]) -> PlannedShare:
    return PlannedShare(
        drive_id=r["drive_id"], item_id=r["item_id"], share_type=int(r["share_type"]), share_with=r["share_with"],
        owner=r["owner"], path=r["path"], permissions=int(r["permissions"]), expire_date=r["expire_date"],
        password=bool(r["password"]), hide_download=bool(r["hide_download"]),
        grants=tuple(json.loads(r["grants"] or "[]")), note=r["note"] or "", id=int(r["id"]),
        planned=bool(r["planned"]), status=r["status"], share_id=r["share_id"],
        share_permissions=r["share_permissions"], made_by_us=bool(r["made_by_us"]), error=r["error"],
        item_status=r.get("item_status"), visible=None if r.get("visible") is None else bool(r["visible"]),
        not_visible=tuple(json.loads(r.get("not_visible") or "[]")))


class SharesMixin(StoreBase):
    """Planned-share methods of the state store."""

    def begin_share_plan(self, drive_id: str, items: Iterable[str] | None = None) -> None:
        """Start a plan pass over a drive (or some of its items): what the pass does not see again is retired."""
        ids = list(items) if items is not None else None
        with self.atomic():
            sql = "UPDATE planned_shares SET planned = 1 WHERE drive_id = ? AND planned = ?"
            if ids is None:
                self.db.execute(sql, (drive_id, _SEEN))
            else:
                for item_id in ids:
                    self.db.execute(sql + " AND item_id = ?", (drive_id, _SEEN, item_id))

    def save_planned_shares(self, shares: Iterable[PlannedShare]) -> int:
        """Upsert planned shares by (item, type, recipient), marking them seen. A share already made whose plan
        changed (other permissions, expiry or owner) becomes `changed`, so `share` brings it in line. A new path
        alone does not: a Nextcloud share follows its file through a MOVE (by file id)."""
        now, n = utcnow(), 0
        with self.atomic():
            for s in shares:
                self.db.execute(
                    "INSERT INTO planned_shares (drive_id, item_id, share_type, share_with, owner, path, permissions, "
                    "expire_date, password, hide_download, grants, note, planned, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (drive_id, item_id, share_type, share_with) DO UPDATE SET "
                    "status = CASE WHEN planned_shares.status = 'created' AND (planned_shares.permissions != "
                    "excluded.permissions OR coalesce(planned_shares.expire_date, '') != "
                    "coalesce(excluded.expire_date, '') "
                    "OR planned_shares.owner != excluded.owner) THEN 'changed' ELSE planned_shares.status END, "
                    "owner = excluded.owner, path = excluded.path, permissions = excluded.permissions, "
                    "expire_date = excluded.expire_date, password = excluded.password, "
                    "hide_download = excluded.hide_download, grants = excluded.grants, note = excluded.note, "
                    "planned = excluded.planned, updated_at = excluded.updated_at",
                    (s.drive_id, s.item_id, s.share_type, s.share_with, s.owner, s.path, s.permissions, s.expire_date,
                     int(s.password), int(s.hide_download), json.dumps(list(s.grants), ensure_ascii=False,
                                                                       sort_keys=True), s.note, _SEEN, now))
                n += 1
        return n

    def finish_share_plan(self, drive_id: str, items: Iterable[str] | None = None) -> None:
        """End a plan pass: planned shares not seen are dropped, except those we made at the target, which stay
        (planned = 0) until `share` has removed them."""
        ids = list(items) if items is not None else None
        scopes = [("", ())] if ids is None else [(" AND item_id = ?", (i,)) for i in ids]
        with self.atomic():
            for extra, params in scopes:
                self.db.execute("DELETE FROM planned_shares WHERE drive_id = ? AND planned = 1 AND NOT (made_by_us = 1 "
                                f"AND share_id IS NOT NULL){extra}", (drive_id, *params))
                self.db.execute(f"UPDATE planned_shares SET planned = 0 WHERE drive_id = ? AND planned = 1{extra}",
                                (drive_id, *params))
                self.db.execute(f"UPDATE planned_shares SET planned = 1 WHERE drive_id = ? AND planned = ?{extra}",
                                (drive_id, _SEEN, *params))

    def iter_planned_shares(self, drive_ids: Iterable[str], items: Iterable[tuple[str, str]] | None = None,
                            page: int = 2000) -> Iterator[PlannedShare]:
        """Planned shares of these drives (or only of these (drive, item) pairs), with their item's status."""
        ids = list(drive_ids)
        if not ids:
            return
        wanted = set(items) if items is not None else None
        sql = ("SELECT s.*, i.status AS item_status FROM planned_shares s LEFT JOIN items i "
               f"ON i.dk = {dk_of('s.drive_id')} AND i.item_id = s.item_id "
               f"WHERE s.drive_id IN ({_marks(ids)}) AND s.id > ? ORDER BY s.id LIMIT {int(page)}")
        for rows in self.keyset_pages(sql, tuple(ids)):
            for r in rows:
                if wanted is None or (r["drive_id"], r["item_id"]) in wanted:
                    yield _share(r)

    def record_planned_share(self, row_id: int, status: str, *, share_id: str | None = None,
                             share_permissions: int | None = None, made_by_us: bool | None = None,
                             error: str | None = None, audit: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Set what became of a planned share, with its audit record, in one transaction."""
        with self.atomic():
            # another share (a new id), or none at all: what its recipients saw of the old one no longer counts
            self.db.execute(
                "UPDATE planned_shares SET visible = NULL, not_visible = NULL WHERE id = ? AND (? != 'created' OR "
                "(? IS NOT NULL AND ? != coalesce(share_id, '')))", (row_id, status, share_id, share_id))
            self.db.execute(
                "UPDATE planned_shares SET status = ?, share_id = coalesce(?, share_id), "
                "share_permissions = coalesce(?, share_permissions), made_by_us = coalesce(?, made_by_us), "
                "error = ?, updated_at = ? WHERE id = ?",
                (status, share_id, share_permissions, None if made_by_us is None else int(made_by_us), error,
                 utcnow(), row_id))
            if audit is not None:
                action, subject, detail = audit
                self.audit(action, subject, **detail)  # type: ignore[attr-defined]  # AuditMixin, same store

    def record_share_visibility(self, row_id: int, visible: bool, not_visible: list[dict[str, Any]],
                                audits: Iterable[tuple[str, str, dict[str, Any]]] = ()) -> None:
        """What the recipients of a made share see of it (accepted, or pending with the reason), with the audit
        records of the acceptances made as them, in one transaction."""
        with self.atomic():
            self.db.execute("UPDATE planned_shares SET visible = ?, not_visible = ?, updated_at = ? WHERE id = ?",
                            (int(visible), json.dumps(not_visible, ensure_ascii=False) if not_visible else None,
                             utcnow(), row_id))
            for action, subject, detail in audits:
                self.audit(action, subject, **detail)  # type: ignore[attr-defined]

    def share_visibility_counts(self, drive_ids: Iterable[str]) -> dict[str, int]:
        """Over the user and group shares made as planned: {"visible": n, "not visible": n, "not checked": n}."""
        return self._share_counts("CASE visible WHEN 1 THEN 'visible' WHEN 0 THEN 'not visible' ELSE 'not checked' "
                                  "END", "planned != 0 AND status = ? AND share_type IN (0, 1)", drive_ids, (DONE,))

    def _share_counts(self, expr: str, where: str, drive_ids: Iterable[str], params: tuple[Any, ...] = ()
                      ) -> dict[str, int]:
        """{value of `expr`: n} over the planned shares of these drives that match `where`."""
        ids = list(drive_ids)
        if not ids:
            return {}
        rows = self.query(f"SELECT {expr} AS k, count(*) AS n FROM planned_shares WHERE {where} "
                          f"AND drive_id IN ({_marks(ids)}) GROUP BY k", (*params, *ids))
        return {r["k"]: int(r["n"]) for r in rows}

    def shares_not_visible(self, drive_ids: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
        """Made shares some recipient does not see yet, with who and why."""
        ids = list(drive_ids)
        if not ids:
            return []
        rows = self.query(
            "SELECT drive_id, item_id, owner, path, share_type, share_with, share_id, not_visible FROM planned_shares "
            f"WHERE planned != 0 AND status = ? AND visible = 0 AND drive_id IN ({_marks(ids)}) "
            "ORDER BY updated_at DESC, id LIMIT ?", (DONE, *ids, int(limit)))
        for r in rows:
            r["not_visible"] = json.loads(r["not_visible"] or "[]")
        return rows

    def forget_planned_share(self, row_id: int, audit: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Drop a planned share no grant asks for any more (its share, if ours, was removed), with its audit."""
        with self.atomic():
            self.db.execute("DELETE FROM planned_shares WHERE id = ?", (row_id,))
            if audit is not None:
                action, subject, detail = audit
                self.audit(action, subject, **detail)  # type: ignore[attr-defined]

    def planned_share_counts(self, drive_ids: Iterable[str]) -> dict[str, int]:
        """{state: n} over planned shares: their status ('not started' when none yet), 'to remove' for shares we
        made that no grant asks for any more."""
        return self._share_counts("CASE WHEN planned = 0 THEN 'to remove' ELSE coalesce(status, 'not started') END",
                                  "1", drive_ids)

    def planned_share_problems(self, drive_ids: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
        """Planned shares not as planned for a reason a person must look at, newest first."""
        ids = list(drive_ids)
        if not ids:
            return []
        return self.query(
            "SELECT drive_id, item_id, owner, path, share_type, CASE WHEN share_with = '' THEN 'a link' ELSE "
            "share_with END AS share_with, permissions, status AS share_status, error AS share_error "
            f"FROM planned_shares WHERE planned != 0 AND status IN ({_marks(list(PROBLEMS))}) "
            f"AND drive_id IN ({_marks(ids)}) ORDER BY updated_at DESC, id LIMIT ?", (*PROBLEMS, *ids, int(limit)))

    def lost_grant_counts(self, drive_ids: Iterable[str]) -> dict[str, int]:
        """{category: n} over the grants the plan does not carry over (see iter_lost_grants)."""
        ids = list(drive_ids)
        if not ids:
            return {}
        rows = self.query(
            "SELECT coalesce(json_extract(plan_detail, '$.category'), 'other') AS c, count(*) AS n FROM permissions "
            f"WHERE drive_id IN ({_marks(ids)}) AND plan_action IN ('drop', 'report') GROUP BY c ORDER BY n DESC, c",
            tuple(ids))
        return {r["c"]: int(r["n"]) for r in rows}

    def iter_lost_grants(self, drive_ids: Iterable[str], page: int = 2000) -> Iterator[dict[str, Any]]:
        """Grants the plan does not carry over (plan_action drop or report), with their item's source path."""
        ids = list(drive_ids)
        if not ids:
            return
        sql = ("SELECT p.id, p.drive_id, p.item_id, p.perm_id, p.kind, p.roles, p.grantee_email, p.grantee_name, "
               "p.grantee_id, p.link_scope, p.link_type, p.expires, p.plan_action, p.plan_detail, i.path AS item_path, "
               f"i.name AS item_name FROM permissions p LEFT JOIN items i ON i.dk = {dk_of('p.drive_id')} AND "
               f"i.item_id = p.item_id WHERE p.drive_id IN ({_marks(ids)}) AND p.plan_action IN ('drop', 'report') "
               f"AND p.id > ? ORDER BY p.id LIMIT {int(page)}")
        for rows in self.keyset_pages(sql, tuple(ids)):
            for r in rows:
                r["plan_detail"] = json.loads(r["plan_detail"] or "{}")
            yield from rows

    def iter_item_grants(self, drive_id: str, items: Iterable[str] | None = None,
                         page: int = 2000) -> Iterator[list[dict[str, Any]]]:
        """The grants of a drive one item at a time (all of an item's grants together, in stored order), joined
        with the item's target; paged by (item, row id) so memory holds one page."""
        cols = ("p.*, i.target_user AS item_target_user, i.target_path AS item_target_path, i.is_folder AS "
                "item_is_folder, i.path AS item_path, i.name AS item_name, i.deleted AS item_deleted")
        join = (f"FROM permissions p LEFT JOIN items i ON i.dk = {dk_of('p.drive_id')} "
                "AND i.item_id = p.item_id")
        if items is not None:
            for item_id in items:
                rows = self.query(f"SELECT {cols} {join} WHERE p.drive_id = ? AND p.item_id = ? ORDER BY p.id",
                                  (drive_id, item_id))
                if rows:
                    yield rows
            return
        sql = (f"SELECT {cols} {join} WHERE p.drive_id = ? AND (p.item_id, p.id) > (?, ?) "
               f"ORDER BY p.item_id, p.id LIMIT {int(page)}")
        yield from self.keyset_groups(sql, (drive_id,), "item_id", ("", -1))
