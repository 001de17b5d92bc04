"""The audit trail is append-only and hash-chained; tampering is found and named."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from migrate.store import StateStore


def _fill(store: StateStore, n: int = 5) -> None:
    for k in range(n):
        store.audit("put", f"alice:/file{k}.txt", size=k, sha1="ab" * 20)


def test_chain_verifies(store: StateStore) -> None:
    _fill(store)
    report = store.verify_audit()
    assert report.ok and report.records == 5


def test_database_refuses_update_and_delete(store: StateStore) -> None:
    _fill(store, 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE audit SET subject = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM audit WHERE seq = 1")


def _tamper(store: StateStore, sql: str) -> None:
    store.db.execute("DROP TRIGGER audit_no_update")
    store.db.execute("DROP TRIGGER audit_no_delete")
    store.db.execute(sql)
    store.db.conn.commit()


def test_altered_record_is_named(store: StateStore) -> None:
    _fill(store)
    _tamper(store, "UPDATE audit SET subject = 'alice:/innocent.txt' WHERE seq = 3")
    report = store.verify_audit()
    assert report.first_broken == 3 and "altered" in report.reason


def test_removed_record_is_named(store: StateStore) -> None:
    _fill(store)
    _tamper(store, "DELETE FROM audit WHERE seq = 2")
    report = store.verify_audit()
    assert report.first_broken == 2 and "missing" in report.reason


def test_rehashed_record_breaks_the_next_link(store: StateStore) -> None:
    from migrate.store.audit import record_hash

    _fill(store)
    row = store.query_one("SELECT * FROM audit WHERE seq = 2")
    row["subject"] = "forged"
    forged = record_hash(row["prev_hash"], row)
    _tamper(store, f"UPDATE audit SET subject = 'forged', hash = '{forged}' WHERE seq = 2")
    report = store.verify_audit()
    assert report.first_broken == 3 and "link" in report.reason


def test_export_csv_and_jsonl(store: StateStore) -> None:
    _fill(store, 3)
    buf = io.StringIO()
    assert store.export_audit(buf, "csv") == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["subject"] for r in rows] == [f"alice:/file{k}.txt" for k in range(3)]
    buf = io.StringIO()
    store.export_audit(buf, "jsonl")
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert recs[2]["prev_hash"] == recs[1]["hash"]


def test_cli_audit_verify_and_export(cli, tmp_path, state_path) -> None:
    s = StateStore(state_path)
    _fill(s, 4)
    s.close()
    ok = cli("--state", str(state_path), "audit", "verify", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "4 records verified" in ok.stdout
    out = tmp_path / "audit.csv"
    exp = cli("--state", str(state_path), "audit", "export", "--format", "csv", "-o", str(out), cwd=tmp_path)
    assert exp.returncode == 0 and len(out.read_text().splitlines()) == 5
    s = StateStore(state_path)
    _tamper(s, "UPDATE audit SET detail = '{}' WHERE seq = 2")
    s.close()
    bad = cli("--state", str(state_path), "audit", "verify", cwd=tmp_path)
    assert bad.returncode == 3
    assert "broken at record 2" in bad.stderr
    assert "Traceback" not in bad.stderr
    wrong = cli("--state", str(state_path), "audit", "export", "--format", "xml", cwd=tmp_path)
    assert wrong.returncode == 2 and "csv" in wrong.stderr
