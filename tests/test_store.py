"""The state store: schema, items upsert, the status state machine and its atomic transitions."""

from __future__ import annotations

import threading

import pytest

from migrate.errors import IllegalTransition, StateError
from migrate.models import Drive, DriveKind, ItemStatus
from migrate.store import StateStore
from migrate.store.states import TRANSITIONS


def _seed(store: StateStore, n: int = 3) -> None:
    store.upsert_drives([Drive("d1", DriveKind.ONEDRIVE, "OneDrive", owner_upn="Alice@Example.org")])
    store.upsert_items("d1", [{"item_id": f"i{k}", "name": f"f{k}", "size": 10 * k, "is_folder": 0} for k in range(n)])


def test_open_applies_migrations_and_wal(store: StateStore) -> None:
    tables = set(store.db.table_names())
    assert {"drives", "items", "permissions", "runs", "audit", "_sqlite_migrations"} <= tables
    assert store.scalar("PRAGMA journal_mode") == "wal"


def test_reopen_is_idempotent(state_path) -> None:
    StateStore(state_path).close()
    s = StateStore(state_path)
    from migrate.store.schema import migrations

    assert s.scalar("SELECT count(*) FROM _sqlite_migrations") == len(migrations._migrations)
    s.close()


def test_missing_database_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StateError, match="no state database"):
        StateStore(tmp_path / "nope.db", create=False)


def test_not_a_database_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="cannot open state database"):
        StateStore(bad)


def test_upsert_keeps_status_and_target_on_rescan(store: StateStore) -> None:
    _seed(store)
    store.transition("d1", "i1", ItemStatus.TRANSFERRING)
    store.update_item("d1", "i1", target_path="/f1")
    store.upsert_items("d1", [{"item_id": "i1", "name": "renamed", "size": 99}])
    row = store.item("d1", "i1")
    assert (row["name"], row["size"], row["status"], row["target_path"]) == ("renamed", 99, "transferring", "/f1")


def test_every_legal_transition_is_accepted_and_every_other_refused(store: StateStore) -> None:
    _seed(store, 1)
    statuses = list(ItemStatus)
    for old in statuses:
        for new in statuses:
            store.db.execute("UPDATE items SET status = ? WHERE item_id = 'i0'", (str(old),))
            if new in TRANSITIONS[old]:
                store.transition("d1", "i0", new)
                assert store.item("d1", "i0")["status"] == new
            else:
                with pytest.raises(IllegalTransition):
                    store.transition("d1", "i0", new)
                assert store.item("d1", "i0")["status"] == old


def test_pending_cannot_jump_to_verified(store: StateStore) -> None:
    _seed(store, 1)
    with pytest.raises(IllegalTransition, match="cannot go from pending to verified"):
        store.transition("d1", "i0", "verified")


def test_expect_guard_lets_only_one_worker_claim(store: StateStore) -> None:
    _seed(store, 1)
    wins, losses = [], []

    def claim() -> None:
        try:
            store.transition("d1", "i0", ItemStatus.TRANSFERRING, expect="pending", attempts=1)
            wins.append(1)
        except IllegalTransition:
            losses.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(wins), len(losses)) == (1, 7)


def test_a_walk_checks_every_step_and_writes_once(store: StateStore) -> None:
    _seed(store, 1)
    store.db.execute("UPDATE items SET status = 'transferring' WHERE item_id = 'i0'")
    with pytest.raises(IllegalTransition, match="cannot go from uploaded to skipped"):
        store.walk("d1", "i0", (ItemStatus.UPLOADED, ItemStatus.SKIPPED), sha1="ab")
    row = store.item("d1", "i0")
    assert row["status"] == "transferring" and row["sha1"] is None  # nothing of a refused walk is written
    with pytest.raises(IllegalTransition, match="expected status pending"):
        store.walk("d1", "i0", (ItemStatus.UPLOADED,), expect="pending")
    store.walk("d1", "i0", (ItemStatus.UPLOADED, ItemStatus.VERIFIED), expect="transferring", sha1="ab")
    row = store.item("d1", "i0")
    assert row["status"] == "verified" and row["sha1"] == "ab"


def test_status_change_only_through_transition(store: StateStore) -> None:
    _seed(store, 1)
    with pytest.raises(IllegalTransition):
        store.update_item("d1", "i0", status="verified")


def test_iter_items_pages_through_everything(store: StateStore) -> None:
    _seed(store, 25)
    got = [r["item_id"] for r in store.iter_items("d1", page=7)]
    assert sorted(got) == sorted(f"i{k}" for k in range(25))
    assert len(got) == 25


def test_selection_by_user_is_case_insensitive(store: StateStore) -> None:
    _seed(store, 0)
    assert [d["id"] for d in store.drives(owners=["alice@example.ORG"])] == ["d1"]
    assert store.drives(owners=["bob@example.org"]) == []


def test_failed_transaction_leaves_no_partial_write(store: StateStore) -> None:
    _seed(store, 2)
    with pytest.raises(RuntimeError), store.atomic():
        store.transition("d1", "i0", ItemStatus.TRANSFERRING)
        raise RuntimeError("crash mid-transaction")
    assert store.item("d1", "i0")["status"] == "pending"


def test_drive_keys_migration_keeps_every_item_and_keys_them_by_drive(state_path) -> None:
    """m012 rebuilds the items table keyed by (dk, item_id): a database made before it keeps every row and
    column, each row gets its drive's key, the trigger that records placed writes still fires, and a drive
    discovered afterwards gets a key of its own."""
    import sqlite3

    from sqlite_utils import Database

    from migrate.store.schema import migrations

    state_path.parent.mkdir(parents=True, exist_ok=True)
    old = Database(sqlite3.connect(str(state_path)))
    migrations.apply(old, stop_before="m012_drive_keys")
    now = "2026-01-01T00:00:00+00:00"
    for d in ("b!one", "b!two"):
        old.execute("INSERT INTO drives (id, kind, discovered_at, updated_at) VALUES (?, 'onedrive', ?, ?)",
                    (d, now, now))
    old.conn.executemany("INSERT INTO items (drive_id, item_id, parent_id, name, path, status, target_user, "
                         "target_path, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'alice', ?, ?)",
                         [(d, f"i{k}", None if k == 0 else "i0", f"f{k}", f"f{k}", "pending", f"/f{k}", now)
                          for d in ("b!one", "b!two") for k in range(5)])
    old.conn.commit()
    before = old.execute("SELECT drive_id, item_id, parent_id, name, path, status FROM items ORDER BY id").fetchall()
    old.conn.close()

    with StateStore(state_path) as s:
        after = s.db.execute("SELECT drive_id, item_id, parent_id, name, path, status FROM items ORDER BY id").fetchall()
        assert after == before
        keys = dict(s.db.execute("SELECT id, dk FROM drives").fetchall())
        assert sorted(keys.values()) == [1, 2]
        assert s.scalar("SELECT count(*) FROM items i JOIN drives d ON d.id = i.drive_id WHERE i.dk != d.dk") == 0
        assert s.item("b!two", "i3")["name"] == "f3" and s.item("b!one", "i3")["drive_id"] == "b!one"
        # same item id in two drives is two rows; the same (drive, item) is one
        s.upsert_items("b!two", [{"item_id": "i3", "name": "renamed"}])
        assert (s.item("b!two", "i3")["name"], s.item("b!one", "i3")["name"]) == ("renamed", "f3")
        assert s.scalar("SELECT count(*) FROM items") == 10
        s.walk("b!one", "i4", ("transferring", "uploaded", "verified"))
        assert s.item("b!one", "i4")["placed_path"] == "/f4"  # m008's trigger survived the rebuild
        s.upsert_drives([Drive("b!three", DriveKind.ONEDRIVE, "OneDrive")])
        assert s.drive_key("b!three") == 3
        plan = " ".join(r[3] for r in s.db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM items WHERE dk = (SELECT dk FROM drives WHERE id = ?) AND item_id = ?",
            ("b!one", "i1")).fetchall())
        assert "USING INDEX" in plan and "SCAN items" not in plan


def test_the_state_database_is_private_to_its_owner(tmp_path) -> None:
    """It holds paths, names and grants: 0600 like the other files with personal data, -wal and -shm too."""
    import os
    import stat

    from migrate.store import StateStore

    old = os.umask(0o022)
    try:
        path = tmp_path / "state" / "migration.db"
        with StateStore(path) as s:
            s.start_run("scan", {})
            for p in (path, path.with_name("migration.db-wal"), path.with_name("migration.db-shm")):
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
        earlier = tmp_path / "earlier.db"
        with StateStore(earlier):
            pass
        earlier.chmod(0o644)  # as versions before this one created it
        with StateStore(earlier, create=False):
            assert stat.S_IMODE(earlier.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_unlisted_history_pages_and_leaves_out_files_never_edited_and_files_listed(store: StateStore) -> None:
    """versions_late asks only about verified files whose tags allow an edit and that have no version rows."""
    _seed(store, 25)
    tags = {0: ('"{A},1"', None), 1: ('"{A},3"', '"c:{A},1"'), 2: ('"{A},1"', '"c:{A},2"'), 3: ("aGVsbG8", None)}
    for k in range(25):
        etag, ctag = tags.get(k, ('"{A},4"', None))
        store.db.execute("UPDATE items SET status = 'verified', target_path = ?, etag = ?, ctag = ? "
                         "WHERE item_id = ?", (f"/f{k}", etag, ctag, f"i{k}"))
    store.save_version_list("d1", "i4", [{"version_id": "1.0", "current": 1, "mtime": 1.0, "size": 1,
                                          "status": "carried"}])
    got = [r["item_id"] for r in store.unlisted_history("d1", page=4)]
    # i0: eTag counter 1; i1: cTag counter 1 (wins over the eTag); i4: listed already
    assert sorted(got) == sorted(["i2", "i3", *(f"i{k}" for k in range(5, 25))])
    assert len(got) == len(set(got))
