"""The append-only, hash-chained audit trail: every write to the target leaves a record nobody can quietly edit."""

from __future__ import annotations

import csv
import functools
import getpass
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from migrate.errors import ConfigError
from migrate.store.base import StoreBase, utcnow

GENESIS = "0" * 64
FIELDS = ("seq", "ts", "run_id", "actor", "action", "subject", "detail")


def record_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the record's fields."""
    body = json.dumps({k: record[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of `audit verify`: how many records were checked and the first one that does not fit."""

    records: int
    first_broken: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


class AuditMixin(StoreBase):
    """Audit-trail methods of the state store."""

    run_id: int | None = None
    actor: str = ""

    def audit(self, action: str, subject: str, **detail: Any) -> int:
        """Append one record (chained to the last) and return its sequence number."""
        with self.atomic():
            last = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            rec = {
                "seq": seq,
                "ts": utcnow(),
                "run_id": self.run_id,
                "actor": self.actor or _whoami(),
                "action": action,
                "subject": subject,
                "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str),
            }
            rec["prev_hash"] = prev
            rec["hash"] = record_hash(prev, rec)
            # plain SQL: sqlite-utils' insert() reads the table's schema on every call, once per file copied
            self.db.execute(f"INSERT INTO audit ({', '.join(rec)}) VALUES ({', '.join('?' for _ in rec)})",
                            list(rec.values()))
            return seq

    def iter_audit(self) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            rows = self.query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000", (last,))
            if not rows:
                return
            yield from rows
            last = rows[-1]["seq"]

    def verify_audit(self) -> ChainReport:
        """Walk the chain; name the first record whose link, hash or sequence does not fit."""
        prev, expected_seq, count = GENESIS, 1, 0
        for rec in self.iter_audit():
            count += 1
            if rec["seq"] != expected_seq:
                return ChainReport(count, expected_seq, f"record {expected_seq} is missing (next is {rec['seq']})")
            if rec["prev_hash"] != prev:
                return ChainReport(count, rec["seq"], "its link to the previous record does not match")
            if record_hash(prev, rec) != rec["hash"]:
                return ChainReport(count, rec["seq"], "its content does not match its hash (it was altered)")
            prev, expected_seq = rec["hash"], expected_seq + 1
        return ChainReport(count)

    def export_audit(self, out: TextIO, fmt: str) -> int:
        """Write the trail as CSV or JSON Lines; returns the number of records."""
        if fmt not in ("csv", "jsonl"):
            raise ConfigError(f"unknown audit export format {fmt!r}", hint="use --format csv or --format jsonl")
        cols = [*FIELDS, "prev_hash", "hash"]
        n = 0
        writer = csv.DictWriter(out, fieldnames=cols) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for rec in self.iter_audit():
            if writer:
                writer.writerow({k: rec[k] for k in cols})
            else:
                out.write(json.dumps({k: rec[k] for k in cols}, ensure_ascii=False) + "\n")
            n += 1
        return n


@functools.cache
def _whoami() -> str:
    """Once per process: getpass reads the environment (and maybe the passwd file) on every call."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
