"""Schema migrations of the state database, applied in order, each in its own transaction."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("m365-migrate")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE drives (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            web_url TEXT NOT NULL DEFAULT '',
            owner_id TEXT NOT NULL DEFAULT '',
            owner_upn TEXT NOT NULL DEFAULT '',
            owner_name TEXT NOT NULL DEFAULT '',
            site_id TEXT NOT NULL DEFAULT '',
            site_url TEXT NOT NULL DEFAULT '',
            group_id TEXT NOT NULL DEFAULT '',
            quota_used INTEGER,
            quota_total INTEGER,
            batch TEXT NOT NULL DEFAULT '',
            target_user TEXT,
            target_root TEXT,
            scan_state TEXT NOT NULL DEFAULT 'new',
            scan_link TEXT,
            delta_link TEXT,
            scan_generation INTEGER NOT NULL DEFAULT 0,
            items_seen INTEGER NOT NULL DEFAULT 0,
            last_scan_at TEXT,
            last_error TEXT,
            discovered_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            upn TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            mail TEXT NOT NULL DEFAULT '',
            has_drive INTEGER NOT NULL DEFAULT 1,
            discovered_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            drive_id TEXT NOT NULL REFERENCES drives(id),
            item_id TEXT NOT NULL,
            parent_id TEXT,
            name TEXT NOT NULL DEFAULT '',
            path TEXT,
            is_folder INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            mtime REAL,
            ctime REAL,
            quick_xor_hash TEXT,
            sha1 TEXT,
            etag TEXT,
            ctag TEXT,
            mime_type TEXT,
            package_type TEXT,
            shared INTEGER NOT NULL DEFAULT 0,
            malware INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            scan_generation INTEGER NOT NULL DEFAULT 0,
            target_user TEXT,
            target_path TEXT,
            target_etag TEXT,
            target_checksum TEXT,
            target_mtime REAL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            note TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (drive_id, item_id)
        )"""
    )
    db.execute("CREATE INDEX items_drive_status ON items(drive_id, status)")
    db.execute("CREATE INDEX items_drive_parent ON items(drive_id, parent_id)")
    db.execute(
        """
        CREATE TABLE permissions (
            id INTEGER PRIMARY KEY,
            drive_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            perm_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            roles TEXT NOT NULL DEFAULT '',
            grantee_id TEXT NOT NULL DEFAULT '',
            grantee_email TEXT NOT NULL DEFAULT '',
            grantee_name TEXT NOT NULL DEFAULT '',
            link_scope TEXT NOT NULL DEFAULT '',
            link_type TEXT NOT NULL DEFAULT '',
            expires TEXT,
            has_password INTEGER NOT NULL DEFAULT 0,
            inherited INTEGER NOT NULL DEFAULT 0,
            plan_action TEXT,
            plan_detail TEXT,
            share_id TEXT,
            share_status TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (drive_id, item_id, perm_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            summary TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute(
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            run_id INTEGER,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )
    # Append-only: the database itself refuses edits; the hash chain shows edits made around it.
    db.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )
    db.execute(
        """
        CREATE TABLE metrics (
            id INTEGER PRIMARY KEY,
            run_id INTEGER,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            recorded_at TEXT NOT NULL
        )"""
    )


@migrations()
def m002_target_size(db: Database) -> None:
    # What was written can differ from the listed size (SharePoint rewrites Office files on download).
    db.execute("ALTER TABLE items ADD COLUMN target_size INTEGER")


@migrations()
def m003_upload_sessions(db: Database) -> None:
    # A chunked upload in progress, so a later run can send only the chunks the server does not have yet.
    db.execute(
        """
        CREATE TABLE upload_sessions (
            drive_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            target_user TEXT NOT NULL,
            target_path TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            chunk_size INTEGER NOT NULL,
            source_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            PRIMARY KEY (drive_id, item_id)
        )"""
    )


@migrations()
def m004_share_error(db: Database) -> None:
    # Why a planned share is not made (refused, broader than the source, waiting for copy), for `status`.
    db.execute("ALTER TABLE permissions ADD COLUMN share_error TEXT")


@migrations()
def m005_teamfolders_drive_access(db: Database) -> None:
    # The team folder a drive is written into (checked before every write and by verify), and who the source
    # library grants access to at its root (the site's owners/members/visitors groups), read by `scan`.
    db.execute("ALTER TABLE drives ADD COLUMN target_mount TEXT")
    db.execute("ALTER TABLE drives ADD COLUMN access_read_at TEXT")
    db.execute(
        """
        CREATE TABLE drive_access (
            drive_id TEXT NOT NULL,
            perm_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            roles TEXT NOT NULL DEFAULT '',
            grantee_id TEXT NOT NULL DEFAULT '',
            grantee_name TEXT NOT NULL DEFAULT '',
            grantee_email TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (drive_id, perm_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE team_folders_created (
            mount_point TEXT NOT NULL,
            folder_id INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (mount_point, folder_id)
        )"""
    )


@migrations()
def m006_groupware_objects(db: Database) -> None:
    # Calendars/address books and their objects (one row per series, single event or contact), like drives/items.
    db.execute(
        """
        CREATE TABLE gw_collections (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            upn TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_id TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            color TEXT NOT NULL DEFAULT '',
            target_user TEXT,
            target_uri TEXT NOT NULL,
            scan_state TEXT NOT NULL DEFAULT 'new',
            scan_generation INTEGER NOT NULL DEFAULT 0,
            created INTEGER NOT NULL DEFAULT 0,
            skip_reason TEXT,
            last_error TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (user_id, kind, source_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE gw_objects (
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES gw_collections(id),
            source_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            uid TEXT NOT NULL,
            href TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            source_hash TEXT NOT NULL,
            payload BLOB NOT NULL,
            instances INTEGER NOT NULL DEFAULT 0,
            scan_generation INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            body_sha256 TEXT,
            body_size INTEGER,
            target_etag TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            notes TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (collection_id, source_id)
        )"""
    )
    db.execute("CREATE INDEX gw_objects_status ON gw_objects(collection_id, status)")


@migrations()
def m007_shares_planned_shares(db: Database) -> None:
    # One planned share per (item, share type, recipient): every grant that reaches the same recipient merged into
    # it (issue 14). Its state lives here, not on the grants: counts, status and reports speak of shares.
    db.execute(
        """
        CREATE TABLE planned_shares (
            id INTEGER PRIMARY KEY,
            drive_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            share_type INTEGER NOT NULL,
            share_with TEXT NOT NULL DEFAULT '',
            owner TEXT NOT NULL DEFAULT '',
            path TEXT NOT NULL DEFAULT '',
            permissions INTEGER NOT NULL,
            expire_date TEXT,
            password INTEGER NOT NULL DEFAULT 0,
            hide_download INTEGER NOT NULL DEFAULT 0,
            grants TEXT NOT NULL DEFAULT '[]',
            note TEXT NOT NULL DEFAULT '',
            planned INTEGER NOT NULL DEFAULT 1,
            status TEXT,
            share_id TEXT,
            share_permissions INTEGER,
            made_by_us INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (drive_id, item_id, share_type, share_with)
        )"""
    )
    db.execute("CREATE INDEX planned_shares_owner ON planned_shares(owner, id)")


@migrations()
def m008_sync_placed(db: Database) -> None:
    # What we placed where: the target account/path and the target's facts right after our write, and the source
    # version we copied. `sync` moves, replaces or deletes only what these columns say is ours and unchanged.
    for col, kind in (("placed_user", "TEXT"), ("placed_path", "TEXT"), ("placed_etag", "TEXT"),
                      ("placed_size", "INTEGER"), ("placed_mtime", "REAL"), ("placed_checksum", "TEXT"),
                      ("placed_source_path", "TEXT"), ("placed_source_etag", "TEXT"), ("placed_source_ctag", "TEXT"),
                      ("placed_source_hash", "TEXT"), ("placed_source_size", "INTEGER"),
                      ("placed_source_mtime", "REAL"), ("placed_at", "TEXT"),
                      # a name sync gave this item to keep a person's file beside it (conflict name), kept by layout
                      ("pinned_name", "TEXT")):
        db.execute(f"ALTER TABLE items ADD COLUMN {col} {kind}")
    # Recorded the moment a write is proven (status becomes `verified`), whichever code path proved it (a single
    # or bulk upload, a folder creation, a resumed upload), in the same transaction as the status change.
    placed = """placed_user = NEW.target_user, placed_path = NEW.target_path, placed_etag = NEW.target_etag,
                placed_size = coalesce(NEW.target_size, NEW.size), placed_mtime = NEW.target_mtime,
                placed_checksum = NEW.target_checksum, placed_source_path = NEW.path, placed_source_etag = NEW.etag,
                placed_source_ctag = NEW.ctag, placed_source_hash = NEW.quick_xor_hash,
                placed_source_size = NEW.size, placed_source_mtime = NEW.mtime, placed_at = NEW.updated_at"""
    db.execute(f"""CREATE TRIGGER items_placed AFTER UPDATE OF status ON items
                   WHEN NEW.status = 'verified' AND OLD.status != 'verified' AND NEW.target_path IS NOT NULL
                   BEGIN UPDATE items SET {placed} WHERE id = NEW.id; END""")
    db.execute(f"UPDATE items SET {placed.replace('NEW.', '')} WHERE status = 'verified' AND target_path IS NOT NULL")
    db.execute("CREATE INDEX items_placed_path ON items(placed_user, placed_path)")
    db.execute(
        """
        CREATE TABLE sync_changes (
            id INTEGER PRIMARY KEY,
            run_id INTEGER,
            drive_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            is_folder INTEGER NOT NULL DEFAULT 0,
            source_path TEXT NOT NULL DEFAULT '',
            target_user TEXT NOT NULL DEFAULT '',
            from_path TEXT,
            to_path TEXT,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX sync_changes_run ON sync_changes(run_id)")


@migrations()
def m009_laid(db: Database) -> None:
    # What the last layout saw of each item (`laid_sig`: parent, name and the facts the layout reads) and the path
    # it computed before any pinned name (`laid_path`); a drive's `laid_digest` names the settings it used. `sync`
    # lays out again only the items whose facts differ from what was laid, in one transaction with their paths.
    db.execute("ALTER TABLE items ADD COLUMN laid_sig TEXT")
    db.execute("ALTER TABLE items ADD COLUMN laid_path TEXT")
    db.execute("ALTER TABLE drives ADD COLUMN laid_digest TEXT")


@migrations()
def m010_scan_partial_indexes(db: Database) -> None:
    # What the end of every scan pass looks for: items waiting for a path, items this pass deleted, and shared
    # items (their grants are read). These sets are small, so the partial indexes cost next to nothing on the
    # scan's inserts and spare a walk over every item of the drive (several per pass) at the end of each scan.
    db.execute("CREATE INDEX items_unpathed ON items(drive_id) WHERE path IS NULL AND deleted = 0")
    db.execute("CREATE INDEX items_deleted_gen ON items(drive_id, scan_generation) WHERE deleted = 1")
    db.execute("CREATE INDEX items_shared_gen ON items(drive_id, scan_generation) WHERE shared = 1 AND deleted = 0")


@migrations()
def m011_groupware_sync(db: Database) -> None:
    # `sync --what calendars,contacts`: the display name the target collection carries (a source rename is
    # PROPPATCHed once) and the Graph delta link of the collection's last complete read (a rescan reads changes).
    db.execute("ALTER TABLE gw_collections ADD COLUMN target_name TEXT")
    db.execute("ALTER TABLE gw_collections ADD COLUMN delta_link TEXT")
    db.execute("UPDATE gw_collections SET target_name = name WHERE created = 1")


@migrations()
def m012_drive_keys(db: Database) -> None:
    # Items are keyed by a small integer per drive (`dk`) instead of the drive's ~66-character Graph id: the
    # scan inserts every item into three indexes that began with that id, in random order, and their size was
    # most of a scan's SQLite time (233k items: 4.7 -> 2.8 s of CPU, database 282 -> 182 MB). `drive_id` stays
    # on every row (what queries return and reports show); lookups go through `dk`, via DK_OF in base.py.
    db.execute("ALTER TABLE drives ADD COLUMN dk INTEGER")
    db.execute("UPDATE drives SET dk = rowid")
    db.execute("CREATE UNIQUE INDEX drives_dk ON drives(dk)")
    # Whether the drive held items when its current full enumeration began (1 unless known to be 0): the end of
    # a first enumeration need not walk every item looking for ones the pass did not see again.
    db.execute("ALTER TABLE drives ADD COLUMN prior_items INTEGER NOT NULL DEFAULT 1")
    db.execute("""CREATE TRIGGER drives_dk_new AFTER INSERT ON drives WHEN NEW.dk IS NULL
                  BEGIN UPDATE drives SET dk = (SELECT coalesce(max(dk), 0) + 1 FROM drives) WHERE id = NEW.id; END""")
    # SQLite cannot change a table's UNIQUE constraint in place: the items table is rebuilt with the same
    # columns plus dk, and its indexes and trigger are made again on dk.
    ddl = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'").fetchone()[0]
    old_unique = ",\n            UNIQUE (drive_id, item_id)"
    assert old_unique in ddl and ddl.startswith("CREATE TABLE items ("), ddl
    new_ddl = (ddl.replace(old_unique, ",\n            UNIQUE (dk, item_id)")
               .replace("CREATE TABLE items (", "CREATE TABLE items_new (", 1)
               .replace("drive_id TEXT NOT NULL REFERENCES drives(id),",
                        "dk INTEGER NOT NULL,\n            drive_id TEXT NOT NULL REFERENCES drives(id),", 1))
    assert "dk INTEGER NOT NULL" in new_ddl, new_ddl
    cols = [r[1] for r in db.execute("PRAGMA table_info(items)").fetchall()]
    triggers = [r[0] for r in db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'items'").fetchall()]
    db.execute(new_ddl)
    listed = ", ".join(cols)
    db.execute(f"INSERT INTO items_new (dk, {listed}) SELECT d.dk, {', '.join(f'i.{c}' for c in cols)} "
               "FROM items i JOIN drives d ON d.id = i.drive_id ORDER BY i.id")
    db.execute("DROP TABLE items")
    db.execute("ALTER TABLE items_new RENAME TO items")
    db.execute("CREATE INDEX items_drive_status ON items(dk, status)")
    db.execute("CREATE INDEX items_drive_parent ON items(dk, parent_id)")
    db.execute("CREATE INDEX items_placed_path ON items(placed_user, placed_path)")
    db.execute("CREATE INDEX items_unpathed ON items(dk) WHERE path IS NULL AND deleted = 0")
    db.execute("CREATE INDEX items_deleted_gen ON items(dk, scan_generation) WHERE deleted = 1")
    db.execute("CREATE INDEX items_shared_gen ON items(dk, scan_generation) WHERE shared = 1 AND deleted = 0")
    for sql in triggers:
        db.execute(sql)


@migrations()
def m013_item_versions(db: Database) -> None:
    # Earlier versions of a file carried into the target's version history (issue 24). One row per source
    # version the listing returned (the current one too, `current` = 1), in replay order (`seq`, oldest first),
    # with what became of it: pending | sent (its bytes are on their way; sha1/size recorded before they left) |
    # carried (at the target with its time, bytes and label) | missing (the source refused it or no longer has
    # it) | not-carried (by policy or as Nextcloud would not keep it; `reason` says which). `source_etag` is the
    # item's eTag when the listing was read: a later edit at the source lists again. No download URL is stored.
    db.execute(
        """
        CREATE TABLE item_versions (
            dk INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            version_id TEXT NOT NULL,
            current INTEGER NOT NULL DEFAULT 0,
            mtime REAL,
            size INTEGER NOT NULL DEFAULT 0,
            author TEXT NOT NULL DEFAULT '',
            source_etag TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            reason TEXT,
            sha1 TEXT,
            label TEXT,
            target_mtime INTEGER,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (dk, item_id, seq)
        )"""
    )
    db.execute("CREATE INDEX item_versions_status ON item_versions(dk, status)")


@migrations()
def m015_share_visibility(db: Database) -> None:
    # A share counts only when its recipients see it (issue 26): Nextcloud may leave a user or group share pending
    # for a recipient (force_share_accept, or a failed acceptance listener). `visible`: NULL not checked yet, 1 every
    # recipient we can act for sees it, 0 some do not; `not_visible` lists them with the reason (JSON).
    db.execute("ALTER TABLE planned_shares ADD COLUMN visible INTEGER")
    db.execute("ALTER TABLE planned_shares ADD COLUMN not_visible TEXT")


@migrations()
def m016_gw_attachments(db: Database) -> None:
    # Calendar attachments too large to inline (and attached items) go to the owner's Files and are linked from
    # the event (reference groupware.md §4.8): one row per attachment with where it went, the file id the link
    # names, the bytes' SHA1, and the users it is shared with, so a rerun sends nothing twice and verify checks it.
    db.execute("""CREATE TABLE gw_attachments (
            id INTEGER PRIMARY KEY,
            object_id INTEGER NOT NULL REFERENCES gw_objects(id),
            source_id TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            source_size INTEGER,
            source_stamp TEXT,
            target_user TEXT,
            target_path TEXT,
            file_id TEXT,
            content_type TEXT,
            size INTEGER,
            sha1 TEXT,
            has_preview INTEGER NOT NULL DEFAULT 0,
            shared_with TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            last_error TEXT,
            updated_at TEXT,
            UNIQUE (object_id, source_id))""")


@migrations()
def m017_drives_not_migrated(db: Database) -> None:
    # A drive whose users.csv / sites.csv row has a blank target is "not migrated": `scan` leaves it out unless
    # it is named (--drive/--user), and `status` does not wait for its inventory. Set from the mapping files
    # with the batches (engine.discover.assign_batches).
    db.execute("ALTER TABLE drives ADD COLUMN not_migrated INTEGER NOT NULL DEFAULT 0")


@migrations()
def m018_adopted(db: Database) -> None:
    # How a file the target already held whole was recorded as verified without being sent (copy's adoption:
    # "stored SHA1", "QuickXorHash of the target's bytes", "empty file"); NULL for files we sent. Cleared the
    # moment the item leaves `verified` (an edit at the source, a gap `verify` found), so it always describes
    # the file the target holds now.
    db.execute("ALTER TABLE items ADD COLUMN adopted TEXT")
    db.execute("""CREATE TRIGGER items_adopted_cleared AFTER UPDATE OF status ON items
                  WHEN OLD.status = 'verified' AND NEW.status != 'verified' AND NEW.adopted IS NOT NULL
                  BEGIN UPDATE items SET adopted = NULL WHERE id = NEW.id; END""")


@migrations()
def m019_mail(db: Database) -> None:
    # Mailboxes (--what mail, reference mail.md): one row per source mail folder with where it goes at the IMAP
    # server (target_name, its UIDVALIDITY when we last wrote there) and its message delta link; and the message
    # ledger keyed on (user, immutable message id). A message row says where it is at the source (folder_id) and
    # where we put it (target_folder_id + uidvalidity + uid), the flags we set (`flags`) and the ones the source
    # has now (`want_flags`), and the SHA-256 and length of the bytes appended (LF turned into CRLF, what the server
    # gives back). Status: new → appending → done | failed | skipped | removed; `appending` is written before the
    # APPEND, so a run killed between the APPEND and the record finds the message by Message-ID and size/hash.
    # A folder's `placed` is the source [parent id, name] it had when its IMAP name was last set (a rename or move
    # in Outlook is then a RENAME at the server); `held` says that name is no longer ours to change: 'renamed' (a
    # person renamed or moved it there: messages follow), 'gone' (a person deleted it there: its messages wait),
    # 'kept' (deleted in Outlook, kept at the server by [policy] deletions).
    db.execute("""CREATE TABLE mail_folders (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            upn TEXT NOT NULL,
            source_id TEXT NOT NULL,
            parent_id TEXT,
            path TEXT NOT NULL,
            well_known TEXT,
            hidden INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            unread INTEGER NOT NULL DEFAULT 0,
            imap_user TEXT,
            target_name TEXT,
            rename_reason TEXT,
            skip_reason TEXT,
            uidvalidity INTEGER,
            created INTEGER NOT NULL DEFAULT 0,
            delta_link TEXT,
            scan_state TEXT NOT NULL DEFAULT 'new',
            scan_generation INTEGER NOT NULL DEFAULT 0,
            gone INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            placed TEXT,
            held TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (user_id, source_id))""")
    db.execute("""CREATE TABLE mail_messages (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            folder_id INTEGER NOT NULL REFERENCES mail_folders(id),
            internet_message_id TEXT,
            received TEXT,
            want_flags TEXT NOT NULL DEFAULT '',
            flags TEXT,
            size INTEGER,
            kind TEXT NOT NULL DEFAULT 'message',
            change_key TEXT,
            sha256 TEXT,
            length INTEGER,
            target_folder_id INTEGER REFERENCES mail_folders(id),
            uidvalidity INTEGER,
            uid INTEGER,
            status TEXT NOT NULL DEFAULT 'new',
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            gone INTEGER NOT NULL DEFAULT 0,
            scan_generation INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            UNIQUE (user_id, message_id))""")
    db.execute("CREATE INDEX mail_messages_folder ON mail_messages(folder_id, status)")
    db.execute("CREATE INDEX mail_messages_target ON mail_messages(target_folder_id, uid)")

