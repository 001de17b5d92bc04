"""IMAP target throughput and memory against a real Dovecot 2.3 on loopback (tests/dovecot_support.py).

Measured: APPEND rate of small messages on one connection (each a synchronizing literal, so one extra round trip
per message), the rate of `fetch_digest` over the same messages, and the peak RSS of a fresh process that appends
one `--large-mb` message from a file and fetches it back into sha256 (the goal: flat, far below the message size).
Writes benchmarks/results/imap_append.json.
Usage: .venv/bin/python benchmarks/imap_append.py [--messages 2000] [--large-mb 50]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
WHEN = datetime(2022, 5, 4, 3, 2, 1, tzinfo=UTC)


def _small(n: int) -> bytes:
    body = b"".join(b"Line %d of a plain text message body, about seventy bytes long.\r\n" % i for i in range(50))
    return (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@bench>\r\n\r\n"
            % (n, n)) + body


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(url: str, user: str, password: str, path: str) -> None:
    """In a fresh process: append the file, fetch it back into sha256; print sizes, digests and RSS as JSON."""
    from migrate.backends.imap import ImapLogin, ImapSession, ImapSettings

    before = _rss_kib()
    size = Path(path).stat().st_size
    with ImapSession.open(ImapSettings(url), ImapLogin(user, password)) as imap:
        opened = _rss_kib()
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            landed = imap.append("INBOX", f, size, [], WHEN)
        t1 = time.perf_counter()
        got = imap.fetch_digest("INBOX", landed.uid)
        t2 = time.perf_counter()
    print(json.dumps({"size": size, "fetched": got, "append_s": t1 - t0, "digest_s": t2 - t1,
                      "rss_before_kib": before, "rss_session_kib": opened, "rss_peak_kib": _rss_kib()}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--large-mb", type=int, default=50)
    ap.add_argument("--child", nargs=4, metavar=("URL", "USER", "PASSWORD", "FILE"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    from tests.dovecot_support import remove, start_dovecot

    server = start_dovecot()
    try:
        user = server.fresh_user()
        msgs = [_small(i) for i in range(args.messages)]
        with server.session(user) as imap:
            t0 = time.perf_counter()
            uids = [imap.append("INBOX", io.BytesIO(m), len(m), ["\\Seen"], WHEN).uid for m in msgs]
            t1 = time.perf_counter()
            digests = [imap.fetch_digest("INBOX", u) for u in uids]
            t2 = time.perf_counter()
        assert all(d == (len(m), hashlib.sha256(m).hexdigest()) for d, m in zip(digests, msgs, strict=True))
        big_user = server.fresh_user()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "large.eml"
            sha = hashlib.sha256()
            line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkr\r\n" * 8192
            with path.open("wb") as f:
                for piece in [b"Subject: large\r\nMessage-ID: <large@bench>\r\n\r\n",
                              *[line] * (args.large_mb * 1024 * 1024 // len(line))]:
                    f.write(piece)
                    sha.update(piece)
            p = subprocess.run([sys.executable, __file__, "--child", server.settings().url, big_user,
                                server.passwords()[big_user], str(path)], capture_output=True, text=True, check=True)
            large = json.loads(p.stdout)
            assert large["fetched"] == [large["size"], sha.hexdigest()], "the large message did not come back equal"
    finally:
        remove(server)
    n = args.messages
    result = {
        "what": "IMAP target (migrate/backends/imap) against Debian's Dovecot 2.3 on loopback, one connection",
        "small_messages": n, "small_message_bytes": len(msgs[0]),
        "append_per_s": round(n / (t1 - t0), 1), "fetch_digest_per_s": round(n / (t2 - t1), 1),
        "large_mb": round(large["size"] / 1e6, 1), "large_append_s": round(large["append_s"], 2),
        "large_digest_s": round(large["digest_s"], 2),
        "large_peak_rss_mb": round(large["rss_peak_kib"] / 1024, 1),
        "large_rss_growth_mb": round((large["rss_peak_kib"] - large["rss_session_kib"]) / 1024, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),  # the figures are only as quiet as the machine
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "imap_append.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
