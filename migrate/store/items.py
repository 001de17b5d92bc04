"""Items and their status: bulk upserts from the scanner and atomic state-machine transitions for the engine."""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from migrate.errors import IllegalTransition
from migrate.models import ItemStatus
from migrate.store.base import DK_OF, StoreBase, dk_of, utcnow
from migrate.store.states import check_transition

# Columns the scanner owns; status and target columns are never touched by a rescan.
SOURCE_COLUMNS = (
    "parent_id", "name", "path", "is_folder", "size", "mtime", "ctime", "quick_xor_hash", "sha1", "etag",
    "ctag", "mime_type", "package_type", "shared", "malware", "deleted", "scan_generation",
)

_LIVE_COLUMNS = tuple(c for c in SOURCE_COLUMNS if c != "path")
# parameters of one live row in _UPSERT_LIVE order, built in C (the scanner's hot path)
_live_values = operator.itemgetter("item_id", *_LIVE_COLUMNS)
_N = len(_LIVE_COLUMNS)  # ?1 drive, ?2 item, ?3.. the live columns (parent_id, name first), updated_at, dk
assert _LIVE_COLUMNS[:2] == ("parent_id", "name") and _LIVE_COLUMNS[-1] == "scan_generation"
# A new item gets its path right away when its parent was already stored in this pass with a path (delta lists
# parents first, so on a full enumeration that is nearly every item and finish_delta has little left to do).
# Known items keep their path unless renamed, moved or revived: then path NULL marks "to be rebuilt by
# finish_delta" (with every stored descendant, which may hold paths derived from the old one).
_UPSERT_LIVE = (
    f"INSERT INTO items (drive_id, item_id, {', '.join(_LIVE_COLUMNS)}, updated_at, dk, path) "
    f"VALUES ({', '.join(f'?{i}' for i in range(1, _N + 5))}, "
    "CASE WHEN ?3 IS NULL THEN '' ELSE (SELECT CASE WHEN p.path = '' THEN ?4 ELSE p.path || '/' || ?4 END "
    f"FROM items p WHERE p.dk = ?{_N + 4} AND p.item_id = ?3 AND p.deleted = 0 AND p.scan_generation = ?{_N + 2}) END) "
    "ON CONFLICT(dk, item_id) DO UPDATE SET "
    + ", ".join(f"{c}=coalesce(excluded.{c}, items.{c})" if c == "ctag" else f"{c}=excluded.{c}"
                for c in [*_LIVE_COLUMNS, "updated_at"])
    + ", path = CASE WHEN items.name IS excluded.name AND items.parent_id IS excluded.parent_id "
    "AND items.deleted = 0 THEN items.path ELSE NULL END"
)

_QUEUES = itertools.count(1)
# what verify and resume compare, and no more (a folder of 100,000 files is held whole while its listing is checked)
VERIFY_COLUMNS = ", ".join(f"i.{c}" for c in ("drive_id", "item_id", "path", "status", "target_user", "target_path",
                                              "size", "target_size", "target_checksum", "sha1", "mtime",
                                              "quick_xor_hash", "note"))
# what adoption (engine.adopt) judges a file by: the verify columns, plus whether the file there is our own write
ADOPT_COLUMNS = VERIFY_COLUMNS + ", " + ", ".join(f"i.{c}" for c in ("name", "last_error", "target_etag",
                                                                   "placed_etag", "placed_source_hash"))


class _PageGroup:
    """When the open group of delta pages is due for its commit (see ItemsMixin.scan_settings)."""

    def __init__(self, rows: int, seconds: float) -> None:
        self.rows, self.seconds = max(1, rows), seconds
        self._count, self._since = 0, 0.0

    def started(self) -> None:
        self._count, self._since = 0, time.monotonic()

    def due(self, rows: int) -> bool:
        self._count += rows
        return self._count >= self.rows or time.monotonic() - self._since >= self.seconds


class ItemsMixin(StoreBase):
    """Item methods of the state store."""

    _page_group: _PageGroup | None = None

    def upsert_items(self, drive_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert new items as pending and refresh the source columns of known ones, in one transaction.

        Keys of each row: `item_id` plus any of SOURCE_COLUMNS. Missing keys keep the stored value.
        """
        now, n = utcnow(), 0
        with self.atomic():
            dk = self.drive_key(drive_id)
            for row in rows:
                cols = [c for c in SOURCE_COLUMNS if c in row]
                names = ", ".join(["dk", "drive_id", "item_id", *cols, "updated_at"])
                marks = ", ".join("?" for _ in range(len(cols) + 4))
                sets = ", ".join(f"{c}=excluded.{c}" for c in [*cols, "updated_at"])
                self.db.execute(
                    f"INSERT INTO items ({names}) VALUES ({marks}) "
                    f"ON CONFLICT(dk, item_id) DO UPDATE SET {sets}",
                    [dk, drive_id, row["item_id"], *(row[c] for c in cols), now],
                )
                n += 1
        return n

    def item(self, drive_id: str, item_id: str) -> dict[str, Any] | None:
        return self.query_one(f"SELECT * FROM items WHERE dk = {DK_OF} AND item_id = ?", (drive_id, item_id))

    def iter_items(
        self,
        drive_id: str | None = None,
        *,
        statuses: Iterable[str] = (),
        include_deleted: bool = False,
        files_only: bool = False,
        untouched_since: str | None = None,
        page: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """Stream items in primary-key order, one page at a time, so a large tenant never sits in memory.

        `untouched_since` (a store timestamp) keeps only rows not written since then (what a run has not tried)."""
        where, params = ["id > ?"], [0]
        if untouched_since is not None:
            where.append("updated_at < ?")
            params.append(untouched_since)
        if drive_id is not None:
            where.append(f"dk = {DK_OF}")
            params.append(drive_id)
        statuses = list(statuses)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params += statuses
        if not include_deleted:
            where.append("deleted = 0")
        if files_only:
            where.append("is_folder = 0")
        sql = f"SELECT * FROM items WHERE {' AND '.join(where)} ORDER BY id LIMIT {int(page)}"
        while True:
            rows = self.query(sql, params)
            if not rows:
                return
            yield from rows
            params[0] = rows[-1]["id"]

    def _sorted_pages(self, where: str, params: tuple[Any, ...], keys: dict[str, str], columns: str, *,
                      page: int = 2000) -> Iterator[dict[str, Any]]:
        """Rows of `items` matching `where`, sorted by the `keys` expressions (named, returned with each row).

        The order is fixed once in a temp table (SQLite sorts on disk, not in memory) and read back a page at a
        time by its rowid, so a million-item drive never sits in memory, and writes to the rows meanwhile are safe.
        """
        queue = f"sorted_{next(_QUEUES)}"  # one per walk, so two walks never share one
        named = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
        with self.atomic():
            self.db.execute(f"CREATE TEMP TABLE {queue} AS SELECT id AS item_row, {named} FROM items WHERE {where} "
                            f"ORDER BY {', '.join(str(i) for i in range(2, len(keys) + 2))}, id", params)
        sql = (f"SELECT q.rowid AS qid, {', '.join(f'q.{k} AS q_{k}' for k in keys)}, {columns} FROM temp.{queue} q "
               f"JOIN items i ON i.id = q.item_row WHERE q.rowid > ? ORDER BY q.rowid LIMIT {int(page)}")
        last = 0
        try:
            while True:
                rows = self.query(sql, (last,))
                if not rows:
                    return
                last = rows[-1]["qid"]
                yield from rows
        finally:
            with self._lock:
                self.db.execute(f"DROP TABLE IF EXISTS temp.{queue}")

    def iter_by_target_folder(self, drive_id: str, statuses: Iterable[str] = ("verified",), *,
                              columns: str = VERIFY_COLUMNS) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
        """Live files of a drive in `statuses` grouped by (target user, target folder): one group per folder
        listing. Memory holds a page plus the folder being filled, never the drive."""
        st = list(statuses)
        rows = self._sorted_pages(
            f"dk = {DK_OF} AND status IN ({', '.join('?' for _ in st)}) AND is_folder = 0 AND deleted = 0 "
            "AND target_path IS NOT NULL", (drive_id, *st), {"user": "coalesce(target_user, '')",
                          "folder": "rtrim(target_path, replace(target_path, '/', ''))"},  # up to the last '/'
            columns)
        key: tuple[str, str] | None = None
        group: list[dict[str, Any]] = []
        for r in rows:
            k = (r["q_user"], r["q_folder"].strip("/"))
            if k != key and group:
                yield (*key, group)  # type: ignore[misc]
                group = []
            key = k
            group.append(r)
        if group and key is not None:
            yield (*key, group)

    def iter_folders_by_depth(self, drive_id: str, statuses: Iterable[str] = ("pending", "failed")
                              ) -> Iterator[dict[str, Any]]:
        """Planned live folders of a drive, parents before children (by depth of the target path), streamed;
        each row carries `q_depth`."""
        st = list(statuses)
        return self._sorted_pages(
            f"dk = {DK_OF} AND is_folder = 1 AND deleted = 0 AND target_path IS NOT NULL AND target_path != '' "
            f"AND status IN ({', '.join('?' for _ in st)})", (drive_id, *st),
            {"depth": "length(trim(target_path, '/')) - length(replace(trim(target_path, '/'), '/', ''))"},
            "i.drive_id, i.item_id, i.status, i.target_user, i.target_path")

    def transition(
        self, drive_id: str, item_id: str, new: ItemStatus | str, *, expect: str | None = None, **fields: Any
    ) -> None:
        """Move one item to `new` (with extra column updates) if the state machine allows it, atomically.

        `expect`, when given, is the status the caller believes the item has; a different one raises, so two
        workers can never both claim an item.
        """
        self.walk(drive_id, item_id, (new,), expect=expect, **fields)

    def walk(self, drive_id: str, item_id: str, steps: Sequence[ItemStatus | str], *, expect: str | None = None,
             **fields: Any) -> None:
        """`transition` through several statuses in order, each step checked, in one write: what a run of
        transitions in one transaction leaves, at a third of the statements (a bulk batch does this per file)."""
        with self.atomic():
            row = self.db.execute(
                f"SELECT status FROM items WHERE dk = {DK_OF} AND item_id = ?", (drive_id, item_id)
            ).fetchone()
            if row is None:
                raise IllegalTransition(f"item {drive_id}/{item_id} is not in the state database")
            old = row[0]
            if expect is not None and old != expect:
                raise IllegalTransition(f"item {drive_id}/{item_id}: expected status {expect}, found {old}")
            for new in steps:
                check_transition(old, new, what=f"item {drive_id}/{item_id}")
                old = new
            fields = {**fields, "status": str(old), "updated_at": utcnow()}
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE items SET {sets} WHERE dk = {DK_OF} AND item_id = ?",
                [*fields.values(), drive_id, item_id],
            )

    def update_item(self, drive_id: str, item_id: str, **fields: Any) -> None:
        """Change non-status columns (target path, notes); status changes go through `transition`."""
        if "status" in fields:
            raise IllegalTransition("use transition() to change an item's status")
        with self.atomic():
            fields["updated_at"] = utcnow()
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE items SET {sets} WHERE dk = {DK_OF} AND item_id = ?", [*fields.values(), drive_id, item_id]
            )

    def status_counts(self, drive_id: str | None = None) -> dict[str, dict[str, int]]:
        """{status: {"files": n, "bytes": n}} over live files (folders are not counted)."""
        sql = (
            "SELECT status, count(*) AS files, coalesce(sum(size), 0) AS bytes FROM items "
            "WHERE deleted = 0 AND is_folder = 0" + (f" AND dk = {DK_OF}" if drive_id else "") + " GROUP BY status"
        )
        rows = self.query(sql, (drive_id,) if drive_id else ())
        return {r["status"]: {"files": r["files"], "bytes": r["bytes"]} for r in rows}

    def adopted_counts(self, drive_id: str | None = None) -> dict[str, int]:
        """{"files", "bytes"} of verified live files recorded without being sent (found whole at the target)."""
        row = self.query_one(
            "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM items WHERE deleted = 0 AND is_folder = 0 "
            "AND status = 'verified' AND adopted IS NOT NULL" + (f" AND dk = {DK_OF}" if drive_id else ""),
            (drive_id,) if drive_id else ())
        return {"files": int(row["files"]), "bytes": int(row["bytes"])} if row else {"files": 0, "bytes": 0}

    def has_conflicts_marked(self, drive_id: str, mark: str) -> bool:
        """Whether a live item of the drive is a conflict whose reason starts with `mark` (who recorded it)."""
        return self.scalar(f"SELECT 1 FROM items WHERE dk = {DK_OF} AND status = 'conflict' AND deleted = 0 "
                           "AND substr(last_error, 1, ?) = ? LIMIT 1", (drive_id, len(mark), mark)) is not None

    def has_items(self, drive_id: str) -> bool:
        """Whether any item of the drive is recorded (deleted ones too)."""
        return self.scalar(f"SELECT 1 FROM items WHERE dk = {DK_OF} LIMIT 1", (drive_id,)) is not None

    def has_unsent(self, drive_id: str) -> bool:
        """Whether a live item of the drive still waits to be copied (pending, or failed and to be tried again)."""
        return self.scalar(f"SELECT 1 FROM items WHERE dk = {DK_OF} AND deleted = 0 "
                           "AND status IN ('pending', 'failed') LIMIT 1", (drive_id,)) is not None

    # where copy gets download URLs (engine/files/urlfeed.py) -----------------------------------------------
    _TO_SEND = ("deleted = 0 AND is_folder = 0 AND target_path IS NOT NULL AND (status = 'pending' OR "
                "(status = 'failed' AND attempts < ?))")

    def url_source_counts(self, drive_id: str, max_attempts: int, page_size: int) -> dict[str, int]:
        """What each way of learning download URLs would cost for the files of a drive still to send: the files,
        the drive's live items (a delta pass lists them all) and the listing pages of the folders holding them."""
        files = self.scalar(f"SELECT count(*) FROM items WHERE dk = {DK_OF} AND {self._TO_SEND}",
                            (drive_id, max_attempts)) or 0
        if not files:
            return {"files": 0, "items": 0, "folders": 0, "listing_pages": 0}
        items = self.scalar(f"SELECT count(*) FROM items WHERE dk = {DK_OF} AND deleted = 0", (drive_id,)) or 0
        row = self.query_one(
            f"SELECT count(*) AS folders, coalesce(sum((n + ?2 - 1) / ?2), 0) AS pages FROM ("
            f"SELECT parent_id, count(*) AS n FROM items WHERE dk = {dk_of('?1')} AND deleted = 0 AND parent_id IN ("
            f"SELECT DISTINCT parent_id FROM items WHERE dk = {dk_of('?1')} AND "
            f"{self._TO_SEND.replace('?', '?3')}) GROUP BY parent_id)",
            (drive_id, max(1, page_size), max_attempts)) or {}
        return {"files": files, "items": items, "folders": row.get("folders") or 0,
                "listing_pages": row.get("pages") or 0}

    def to_send_among(self, drive_id: str, item_ids: Sequence[str], max_attempts: int) -> list[dict[str, Any]]:
        """The files of `item_ids` (one page of a listing) still to send, in the page's order."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(item_ids), 500):
            part = list(item_ids[start:start + 500])
            rows = self.query(f"SELECT * FROM items WHERE dk = {DK_OF} AND item_id IN "
                              f"({', '.join('?' for _ in part)}) AND {self._TO_SEND}", (drive_id, *part, max_attempts))
            order = {i: n for n, i in enumerate(part)}
            out += sorted(rows, key=lambda r: order.get(r["item_id"], 0))
        return out

    def folders_to_send(self, drive_id: str, max_attempts: int, page: int = 1000) -> Iterator[str]:
        """The parent folders (ids) of the files still to send, streamed in id order."""
        last = ""
        while True:
            rows = self.query(f"SELECT DISTINCT parent_id FROM items WHERE dk = {DK_OF} AND parent_id > ? AND "
                              f"{self._TO_SEND} ORDER BY parent_id LIMIT {int(page)}",
                              (drive_id, last, max_attempts))
            if not rows:
                return
            for r in rows:
                yield r["parent_id"]
            last = rows[-1]["parent_id"]

    def failures(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.query(
            "SELECT drive_id, item_id, path, status, attempts, last_error FROM items "
            "WHERE status IN ('failed', 'conflict') AND deleted = 0 ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        )

    # scanning (delta pages) -------------------------------------------------------------------------
    _LIVE_COLUMNS = _LIVE_COLUMNS

    @contextmanager
    def scan_settings(self, cache_mb: int = 32, checkpoint_pages: int = 10_000, *, group_rows: int = 50_000,
                      group_seconds: float = 2.0) -> Iterator[None]:
        """Connection settings for a scan's stream of delta pages, restored afterwards; commits what is pending.

        Each page dirties index pages all over the (dk, item_id) and parent indexes, and a commit writes
        every dirty page to the WAL. So pages are saved one after the other in one open transaction, committed
        once it holds `group_rows` rows or is `group_seconds` old (whichever comes first: on Graph, where a page
        takes a second or more, that is every page or two), which writes each shared index page once per group
        instead of once per page (measured on a 233k-item drive: 3.4 s less CPU than a commit per page; 50,000
        rows / 2 s instead of 10,000 / 1 s: commits 0.94 -> 0.46 s). Each page is still all or nothing (a
        savepoint) and goes with its drive's link to the next page, so whatever a kill -9 leaves committed is a
        prefix of pages with the link matching it: the rerun fetches the lost pages again, nothing else.
        A bounded cache (`cache_mb`, part of the process's RSS) and a WAL checkpoint every `checkpoint_pages`
        pages (~40 MB of WAL on disk) instead of SQLite's 1000 keep checkpoints (with their fsyncs) rare.
        """
        with self._lock:
            ex = self.db.conn.execute
            old_cache = int(ex("PRAGMA cache_size").fetchone()[0])
            old_checkpoint = int(ex("PRAGMA wal_autocheckpoint").fetchone()[0])
            ex(f"PRAGMA cache_size = {-int(cache_mb) * 1024}")
            ex(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
            self._page_group = _PageGroup(group_rows, group_seconds)
        try:
            yield
        finally:
            with self._lock:
                self.commit_pages()
                self._page_group = None
                ex(f"PRAGMA cache_size = {old_cache}")
                ex(f"PRAGMA wal_autocheckpoint = {old_checkpoint}")

    def save_delta_page(self, drive_id: str, rows: list[dict[str, Any]], *, next_link: str | None,
                        generation: int) -> int:
        """One delta page and its checkpoint (drives.scan_link = next_link), all or nothing.

        Rows come from the Graph backend (`delta_row`): live rows carry every SOURCE_COLUMN (a None `ctag`
        keeps the stored one: delta omits it); deleted rows only mark an already-known item deleted. Within a
        page the last occurrence of an item wins. New items whose parent this pass already stored get their
        path here (see _UPSERT_LIVE); finish_delta rebuilds the rest. Inside `scan_settings` the page joins the
        open group of pages (committed together, see there); otherwise it is its own transaction. Returns the
        number of rows written.
        """
        last: dict[str, dict[str, Any]] = {}
        for row in rows:
            last.pop(row["item_id"], None)
            last[row["item_id"]] = row
        now = utcnow()
        values = _live_values
        dk = self.drive_key(drive_id)
        live = [(drive_id, *values(r), now, dk) for r in last.values() if not r.get("deleted")]
        gone = [(generation, now, dk, r["item_id"]) for r in last.values() if r.get("deleted")]
        with self._lock:
            group = self._page_group
            if group is not None and not self.db.conn.in_transaction:
                self.db.conn.execute("BEGIN")
                group.started()
            with self.atomic():
                self.db.conn.executemany(_UPSERT_LIVE, live)
                if gone:
                    self.db.conn.executemany("UPDATE items SET deleted = 1, scan_generation = ?, updated_at = ? "
                                             "WHERE dk = ? AND item_id = ?", gone)
                self.db.execute(
                    "UPDATE drives SET scan_link = ?, items_seen = items_seen + ?, updated_at = ? WHERE id = ?",
                    (next_link, len(rows), now, drive_id))
            if group is not None and group.due(len(rows)):
                self.commit_pages()
        return len(last)

    def commit_pages(self) -> None:
        """Commit the open group of delta pages now (a drive's pass is complete), unless an atomic() block of
        the caller is still open: then its end commits."""
        with self._lock:
            if self._page_group is not None and self._atomic_depth == 0 and self.db.conn.in_transaction:
                self.db.conn.commit()

    def finish_delta(self, drive_id: str, *, generation: int, full: bool, delta_link: str | None,
                     scan_state: str) -> dict[str, int]:
        """After the last page: reconcile, cascade deletes, rebuild paths of what changed; store the deltaLink.

        - `full` (a complete enumeration, e.g. after 410): live items not seen in it are marked deleted; copy
          status and target columns are left as they are. Skipped when the drive held no items as the
          enumeration began (`drives.prior_items` = 0, set by the scan): a first scan then does not walk them all.
        - items below a folder deleted in this pass are marked deleted too;
        - paths (relative to the drive root, '/'-separated, root = '') are rebuilt for every item whose path is
          NULL (new without a stored parent, renamed or moved: see save_delta_page) and all its descendants (a renamed folder moves its
          whole subtree), in SQL, with bounded memory; items whose parent chain is broken keep path NULL.
          Unchanged ancestors that delta repeats with every change cost nothing.
        All in one transaction with the drive update, so a kill leaves either the old or the new state.
        """
        d, g, k = drive_id, generation, self.drive_key(drive_id)
        with self.atomic():
            ex = self.db.execute
            unseen = 0
            if full and self.scalar("SELECT prior_items FROM drives WHERE id = ?", (d,)) != 0:
                unseen = ex("UPDATE items SET deleted = 1, updated_at = ? WHERE dk = ? AND deleted = 0 "
                            "AND scan_generation < ?", (utcnow(), k, g)).rowcount
            ex(
                """WITH RECURSIVE gone(item_id, depth) AS (
                       SELECT item_id, 0 FROM items WHERE dk = :k AND deleted = 1 AND scan_generation = :g
                       UNION ALL
                       SELECT c.item_id, gone.depth + 1 FROM gone JOIN items c
                         ON c.dk = :k AND c.parent_id = gone.item_id AND c.deleted = 0
                            AND c.scan_generation != :g
                       WHERE gone.depth < 1000)
                   UPDATE items SET deleted = 1 WHERE dk = :k
                     AND item_id IN (SELECT item_id FROM gone WHERE depth > 0)""", {"k": k, "g": g})
            cascaded = self.db.execute("SELECT changes()").fetchone()[0]
            # a path save_delta_page derived from a parent that this pass then deleted is stale: rebuild it
            # (it stays NULL, the chain is broken); its descendants follow through the recursion below
            ex("""UPDATE items SET path = NULL WHERE dk = :k AND deleted = 0 AND path IS NOT NULL
                    AND parent_id IN (SELECT item_id FROM items WHERE dk = :k AND deleted = 1
                                      AND scan_generation = :g)""", {"k": k, "g": g})
            ex("DROP TABLE IF EXISTS temp.scan_affected")
            ex("CREATE TEMP TABLE scan_affected (item_id TEXT PRIMARY KEY)")
            ex("""WITH RECURSIVE a(item_id, depth) AS (
                      SELECT item_id, 0 FROM items WHERE dk = :k AND path IS NULL AND deleted = 0
                      UNION ALL
                      SELECT c.item_id, a.depth + 1 FROM a JOIN items c
                        ON c.dk = :k AND c.parent_id = a.item_id AND c.deleted = 0 AND c.path IS NOT NULL
                      WHERE a.depth < 1000)
                  INSERT OR IGNORE INTO temp.scan_affected SELECT item_id FROM a""", {"k": k})
            ex("DROP TABLE IF EXISTS temp.scan_paths")
            ex("CREATE TEMP TABLE scan_paths (item_id TEXT PRIMARY KEY, path TEXT)")
            ex("""WITH RECURSIVE t(item_id, path, depth) AS (
                      SELECT i.item_id,
                             CASE WHEN i.parent_id IS NULL THEN '' WHEN p.path = '' THEN i.name
                                  ELSE p.path || '/' || i.name END, 0
                        FROM temp.scan_affected a JOIN items i ON i.dk = :k AND i.item_id = a.item_id
                        LEFT JOIN items p ON p.dk = :k AND p.item_id = i.parent_id
                       WHERE i.parent_id IS NULL
                          OR (p.deleted = 0 AND p.path IS NOT NULL
                              AND p.item_id NOT IN (SELECT item_id FROM temp.scan_affected))
                      UNION ALL
                      SELECT c.item_id, CASE WHEN t.path = '' THEN c.name ELSE t.path || '/' || c.name END,
                             t.depth + 1
                        FROM t JOIN items c ON c.dk = :k AND c.parent_id = t.item_id AND c.deleted = 0
                       WHERE t.depth < 1000)
                  INSERT OR REPLACE INTO temp.scan_paths SELECT item_id, path FROM t""", {"k": k})
            ex("UPDATE items SET path = NULL WHERE dk = ? AND path IS NOT NULL "
               "AND item_id IN (SELECT item_id FROM temp.scan_affected)", (k,))
            ex("UPDATE items SET path = sp.path FROM temp.scan_paths sp WHERE items.dk = ? "
               "AND items.item_id = sp.item_id", (k,))
            affected = self.db.execute("SELECT count(*) FROM temp.scan_affected").fetchone()[0]
            orphans = self.db.execute(
                "SELECT count(*) FROM temp.scan_affected a WHERE a.item_id NOT IN (SELECT item_id FROM temp.scan_paths)"
            ).fetchone()[0]
            ex("DROP TABLE temp.scan_affected")
            ex("DROP TABLE temp.scan_paths")
            now = utcnow()
            ex("UPDATE drives SET delta_link = ?, scan_link = NULL, scan_state = ?, last_scan_at = ?, last_error = NULL, "
               "updated_at = ? WHERE id = ?", (delta_link, scan_state, now, now, d))
        return {"unseen_deleted": unseen, "cascade_deleted": cascaded, "paths": affected, "orphans": orphans}

    def shared_item_ids(self, drive_id: str, generation: int) -> list[str]:
        """Live items of this scan pass that carry the `shared` facet (their permissions are worth 5 RU each)."""
        rows = self.query(f"SELECT item_id FROM items WHERE dk = {DK_OF} AND scan_generation = ? AND deleted = 0 "
                          "AND shared = 1 ORDER BY id", (drive_id, generation))
        return [r["item_id"] for r in rows]

    def unshared_item_ids(self, drive_id: str, generation: int) -> list[str]:
        """Items of this pass that lost their `shared` facet (or were deleted) but still have stored grants."""
        # driven by the (small) permissions table, not by the drive's items
        rows = self.query(
            f"SELECT DISTINCT p.item_id FROM permissions p JOIN items i ON i.dk = {DK_OF} "
            "AND i.item_id = p.item_id WHERE p.drive_id = ? AND i.scan_generation = ? "
            "AND (i.shared = 0 OR i.deleted = 1)", (drive_id, drive_id, generation))
        return [r["item_id"] for r in rows]

    def inventory_counts(self, drive_id: str) -> dict[str, int]:
        """Live files, folders and bytes of one drive (scan summaries)."""
        row = self.query_one(
            "SELECT coalesce(sum(is_folder = 0), 0) AS files, coalesce(sum(is_folder = 1), 0) AS folders, "
            "coalesce(sum(CASE WHEN is_folder = 0 THEN size ELSE 0 END), 0) AS bytes FROM items "
            f"WHERE dk = {DK_OF} AND deleted = 0", (drive_id,))
        return dict(row) if row else {"files": 0, "folders": 0, "bytes": 0}
