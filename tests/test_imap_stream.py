"""The IMAP session under the conditions of a long run: a 50 MB message streamed both ways with flat memory,
responses the server sends unasked between ours, a connection dropped by the server, the per-user connection cap."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime

import pytest

from migrate.backends.imap import CrlfHasher
from migrate.errors import ImapBusy, ImapConnectionLost, Transient

WHEN = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)


def _big_message(path, size_mb: int) -> tuple[int, str]:
    """A CRLF message of about `size_mb` MB written in pieces (base64-looking lines); returns (size, sha256)."""
    sha = hashlib.sha256()
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkr\r\n"
    head = (b"From: big@example.org\r\nMessage-ID: <big@example.org>\r\nSubject: 50 MB\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    block = line * 4096
    with path.open("wb") as f:
        for piece in [head, *[block] * (size_mb * 1024 * 1024 // len(block))]:
            f.write(piece)
            sha.update(piece)
    return path.stat().st_size, sha.hexdigest()


def test_a_50_mb_message_streams_both_ways_with_flat_memory(dovecot, mail_user, tmp_path) -> None:
    path = tmp_path / "big.eml"
    size, digest = _big_message(path, 50)
    with dovecot.session(mail_user) as imap:
        tracemalloc.start()
        try:
            with path.open("rb") as f:
                landed = imap.append("INBOX", f, size, ["\\Seen"], WHEN)
            got = imap.fetch_digest("INBOX", landed.uid)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got == (size, digest)
    assert size > 50_000_000
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB message"
    hasher = CrlfHasher()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    assert (hasher.length, hasher.hexdigest()) == (size, digest)  # CRLF input: nothing to normalise


def test_a_file_shorter_than_announced_closes_the_connection_cleanly(dovecot, mail_user) -> None:
    import io

    from migrate.errors import IntegrityError

    with dovecot.session(mail_user) as imap:
        with pytest.raises(IntegrityError):
            imap.append("INBOX", io.BytesIO(b"Subject: x\r\n\r\nshort"), 100, (), WHEN)
        assert imap.closed
    with dovecot.session(mail_user) as imap:
        assert imap.status("INBOX").messages == 0  # nothing half-stored


def test_unasked_responses_between_ours_are_taken_in_stride(dovecot, mail_user) -> None:
    import io

    msg = b"Subject: %d\r\nMessage-ID: <u%d@example.org>\r\n\r\nbody\r\n"
    with dovecot.session(mail_user) as a, dovecot.session(mail_user) as b:
        first = b.append("INBOX", io.BytesIO(msg % (1, 1)), len(msg % (1, 1)), (), WHEN).uid
        assert a.uids("INBOX") == [first]  # `a` has INBOX selected from here on
        second = b.append("INBOX", io.BytesIO(msg % (2, 2)), len(msg % (2, 2)), (), WHEN).uid
        b.store_flags("INBOX", first, add=["\\Flagged"], remove=[])
        # `a` now gets * 2 EXISTS, * 1 RECENT, * 1 FETCH (FLAGS ...) before its own answers
        assert a.fetch_digest("INBOX", second) == (len(msg % (2, 2)), hashlib.sha256(msg % (2, 2)).hexdigest())
        assert a.fetch_flags("INBOX", [first, second]) == {first: frozenset({"\\Flagged"}), second: frozenset()}
        assert a.search_message_id("INBOX", "<u2@example.org>") == [second]


def test_a_connection_dropped_by_the_server_is_transient(dovecot, mail_user) -> None:
    imap = dovecot.session(mail_user)
    dovecot.doveadm("kick", mail_user)
    with pytest.raises(ImapConnectionLost) as err:
        imap.status("INBOX")
    assert isinstance(err.value, Transient) and imap.closed
    imap.close()  # closing a dead session is quiet
    with dovecot.session(mail_user) as again:  # a new session works
        assert again.status("INBOX").messages == 0


def test_the_per_user_connection_cap_is_busy_not_auth(dovecot, mail_user) -> None:
    sessions = [dovecot.session(mail_user, master=True) for _ in range(10)]
    try:
        with pytest.raises(ImapBusy) as err:
            dovecot.session(mail_user, master=True)
        assert "LIMIT" in str(err.value) and isinstance(err.value, Transient)
    finally:
        for s in sessions:
            s.close()


def test_an_interrupt_mid_append_stores_nothing_and_closes(dovecot, mail_user) -> None:
    import io

    class Interrupting(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= 300_000:
                raise KeyboardInterrupt
            return super().read(n)

    data = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 1000
    with dovecot.session(mail_user) as imap:
        with pytest.raises(KeyboardInterrupt):
            imap.append("INBOX", Interrupting(data), len(data), (), WHEN)
        assert imap.closed
    with dovecot.session(mail_user) as imap:
        assert imap.status("INBOX").messages == 0
