"""The IMAP target against a real Dovecot 2.3 on loopback (tests/dovecot_support.py): bytes, flags, dates, folders,
quota, sign-in, search, fetch, store and move — each checked through our client and, where it matters, doveadm."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from migrate.backends.imap import CrlfHasher, ImapLogin, ImapSession, MessageInfo, crlf
from migrate.errors import (
    AuthError,
    ExitCode,
    FolderMissing,
    FolderNameRefused,
    ImapRefused,
    MailboxFull,
    MailLoginRefused,
    exit_code_for,
)
from tests.dovecot_support import SMALL_QUOTA

WHEN = datetime(2019, 3, 15, 9, 20, 30, tzinfo=UTC)


def message(n: int = 1, *, body: bytes = b"Hello.\r\n", eol: bytes = b"\r\n", extra: bytes = b"") -> bytes:
    head = [b"From: Anna <anna@example.org>", b"To: Ben <ben@example.org>", b"Subject: test %d" % n,
            b"Date: Fri, 15 Mar 2019 10:20:30 +0100", b"Message-ID: <m%d.20190315@example.org>" % n]
    return eol.join(head) + eol + extra + eol + body.replace(b"\r\n", eol)


def append(imap: ImapSession, data: bytes, folder: str = "INBOX", flags=(), when: datetime = WHEN):
    return imap.append(folder, io.BytesIO(data), len(data), flags, when)


def test_crlf_message_comes_back_byte_for_byte(dovecot, mail_user) -> None:
    data = message(1, body=b"Line one\r\n" + b"x" * 5000 + b"\r\n")
    with dovecot.session(mail_user) as imap:
        landed = append(imap, data)
        assert imap.fetch_digest("INBOX", landed.uid) == (len(data), hashlib.sha256(data).hexdigest())
        assert imap.status("INBOX").uidvalidity == landed.uidvalidity


def test_lf_only_message_comes_back_crlf_as_the_hasher_predicts(dovecot, mail_user) -> None:
    data = message(2, eol=b"\n", body=b"a\nb\r\nbare\rcr\nno final newline")
    hasher = CrlfHasher()
    for i in range(0, len(data), 7):  # chunks that split CRLF pairs
        hasher.update(data[i:i + 7])
    with dovecot.session(mail_user) as imap:
        got = imap.fetch_digest("INBOX", append(imap, data).uid)
    assert got is not None and got[0] > len(data)
    assert got == (hasher.length, hasher.hexdigest()) == (len(crlf(data)), hashlib.sha256(crlf(data)).hexdigest())


def test_8bit_headers_and_a_nul_byte(dovecot, mail_user) -> None:
    eight = message(3, extra="Subject: Grüße aus Köln\r\n".encode())
    with dovecot.session(mail_user) as imap:
        uid = append(imap, eight).uid
        assert imap.fetch_digest("INBOX", uid) == (len(eight), hashlib.sha256(eight).hexdigest())
        nul = message(4, body=b"before\0after\r\n")
        got = imap.fetch_digest("INBOX", append(imap, nul).uid)
    # Dovecot keeps the length but shows the NUL as 0x80 in BODY[] (reference §2.3): a hash mismatch, not a crash
    assert got == (len(nul), hashlib.sha256(nul.replace(b"\0", b"\x80")).hexdigest())


def test_internaldate_keeps_the_instant_and_clamps_before_1970(dovecot, mail_user) -> None:
    plus_one = datetime(2019, 3, 15, 10, 20, 30, tzinfo=timezone(timedelta(hours=1)))
    with dovecot.session(mail_user) as imap:
        append(imap, message(5), when=plus_one)
        append(imap, message(6), when=datetime(1969, 12, 31, 23, 0, tzinfo=UTC))
        append(imap, message(7), when=datetime(2020, 2, 1, 8, 0))  # naive = UTC
    out = dovecot.doveadm("-f", "tab", "fetch", "-u", mail_user, "uid date.received", "mailbox", "INBOX", "all")
    rows = dict(line.split("\t") for line in out.splitlines()[1:])
    assert rows == {"1": "2019-03-15 09:20:30", "2": "1970-01-01 00:00:01", "3": "2020-02-01 08:00:00"}


def test_flags_keywords_and_appenduid_increments(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        first = append(imap, message(8), flags=["\\Seen", "\\Flagged", "$Forwarded", "Rote_Kategorie"])
        second = append(imap, message(8))  # same bytes again: Dovecot does not deduplicate
        third = append(imap, message(9), flags=["\\Answered", "\\Draft"])
        assert (second.uid, third.uid) == (first.uid + 1, first.uid + 2)
        assert len({first.uidvalidity, second.uidvalidity, third.uidvalidity}) == 1
        flags = imap.fetch_flags("INBOX", [first.uid, second.uid, third.uid, 999])
        info = imap.fetch_info("INBOX", [first.uid, 999])
    assert info == {first.uid: MessageInfo(flags=flags[first.uid], internaldate=WHEN, size=len(message(8)))}
    assert flags == {first.uid: frozenset({"\\Seen", "\\Flagged", "$Forwarded", "Rote_Kategorie"}),
                     second.uid: frozenset(), third.uid: frozenset({"\\Answered", "\\Draft"})}


def test_a_refused_flag_does_not_desynchronise_the_connection(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        with pytest.raises(ImapRefused) as err:
            append(imap, message(10), flags=["\\Recent"])
        assert "Invalid system flag" in str(err.value)
        assert append(imap, message(11)).uid == 1  # same connection, still in step
        assert imap.status("INBOX").messages == 1


def test_over_quota_is_refused_before_the_literal_and_is_target_full(dovecot) -> None:
    big = message(12, body=(b"y" * 76 + b"\r\n") * 780)  # ~60 KB, the user's limit is 100 KiB
    with dovecot.session(dovecot.fresh_user(SMALL_QUOTA)) as imap:
        before = imap.quota()
        append(imap, big)
        sent = _CountingReader(big)
        with pytest.raises(MailboxFull) as err:
            imap.append("INBOX", sent, len(big), (), WHEN)
        assert sent.read_bytes == 0, "the body was sent although the server refused first"
        assert exit_code_for(err.value) == ExitCode.TARGET_FULL
        assert imap.status("INBOX").messages == 1  # connection usable
        used, limit = imap.quota()
    assert before is not None and before[1] == limit == 100 and used >= 59


class _CountingReader(io.BytesIO):
    read_bytes = 0

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self.read_bytes += len(data)
        return data


def test_special_use_and_separator(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        assert imap.separator == "/"
        assert imap.special_use() == {"\\Sent": "Sent", "\\Drafts": "Drafts", "\\Trash": "Trash",
                                      "\\Junk": "Junk", "\\Archive": "Archive"}
        names = {f.name for f in imap.folders()}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} <= names


def test_non_ascii_folders_are_created_in_mutf7_and_read_back(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        imap.create("Projekte/Größe & Übersicht")
        imap.create("Projekte/Größe & Übersicht")  # again: already there is fine (resume)
        imap.create("Gelöschte Elemente")
        landed = append(imap, message(13), folder="Projekte/Größe & Übersicht")
        folders = {f.name: f for f in imap.folders()}
        assert imap.status("Projekte/Größe & Übersicht").messages == 1
        assert imap.uids("Projekte/Größe & Übersicht") == [landed.uid]
    assert "Gelöschte Elemente" in folders and "Projekte/Größe & Übersicht" in folders
    assert not folders["Projekte"].selectable  # implicit parent
    listed = dovecot.doveadm("mailbox", "list", "-u", mail_user).splitlines()
    assert "Projekte/Größe & Übersicht" in listed and "Gelöschte Elemente" in listed


@pytest.mark.parametrize("user,accepted", [("alice", False), ("carol", True), ("dave", True)])
def test_a_dot_in_a_folder_name_depends_on_the_layout(dovecot, user, accepted) -> None:
    name = "Kunden/A.B GmbH"
    with dovecot.session(user) as imap:
        if accepted:
            imap.create(name)
            assert imap.status(name).messages == 0
        else:
            with pytest.raises(FolderNameRefused) as err:
                imap.create(name)
            assert err.value.folder == name and name in str(err.value) and err.value.code == "CANNOT"
            assert exit_code_for(err.value) == ExitCode.ATTENTION
            imap.create("Kunden/still usable")  # the refusal left the session in step


def test_names_the_server_cannot_take(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        for name in ("~home", "x" * 300, "tab\tname"):
            with pytest.raises(FolderNameRefused) as err:
                imap.create(name)
            assert err.value.folder == name


def test_append_to_a_missing_folder_says_trycreate(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        with pytest.raises(FolderMissing) as err:
            append(imap, message(14), folder="Nope")
        assert err.value.folder == "Nope" and err.value.code == "TRYCREATE"
        with pytest.raises(FolderMissing):
            imap.status("Nope")


def test_search_by_message_id_and_digest_of_a_gone_uid(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        a = append(imap, message(15)).uid
        append(imap, message(16))
        b = append(imap, message(15)).uid
        assert imap.search_message_id("INBOX", "<m15.20190315@example.org>") == [a, b]
        assert imap.search_message_id("INBOX", "<nothing@example.org>") == []
        assert imap.search_message_id("INBOX", "<ünï@example.org>") == []  # 8-bit goes as a literal
        assert imap.fetch_digest("INBOX", 4242) is None


def test_store_and_move(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        uid = append(imap, message(17), flags=["\\Seen"]).uid
        imap.store_flags("INBOX", uid, add=["\\Flagged", "$Forwarded"], remove=["\\Seen"])
        assert imap.fetch_flags("INBOX", [uid]) == {uid: frozenset({"\\Flagged", "$Forwarded"})}
        append(imap, message(18), folder="Archive")
        new = imap.move("INBOX", uid, "Archive")
        assert new == 2
        assert imap.uids("INBOX") == [] and imap.uids("Archive") == [1, 2]
        assert imap.fetch_flags("Archive", [new]) == {new: frozenset({"\\Flagged", "$Forwarded"})}
        assert imap.fetch_digest("Archive", new) == (len(message(17)), hashlib.sha256(message(17)).hexdigest())


def test_master_user_signs_in_as_the_target_user(dovecot, mail_user) -> None:
    with dovecot.session(mail_user, master=True) as imap:
        append(imap, message(19))
    assert "messages=1" in dovecot.doveadm("mailbox", "status", "-u", mail_user, "messages", "INBOX")


@pytest.mark.parametrize("login", [
    ImapLogin(user="alice", password="wrong"),
    ImapLogin(user="alice", password="wrong", master="migrator"),
    ImapLogin(user="nosuchuser", password="masterpw", master="migrator"),
    ImapLogin(user="nosuchuser", password="secret-of-nobody"),
    ImapLogin(user="alice", password="pässwörd \"quoted\""),  # 8-bit and quotes travel in SASL PLAIN
], ids=["wrong-password", "wrong-master-password", "unknown-user-via-master", "unknown-user", "8bit-password"])
def test_refused_sign_in_is_an_auth_error_without_the_password(dovecot, login) -> None:
    with pytest.raises(MailLoginRefused) as err:
        ImapSession.open(dovecot.settings(), login)
    assert isinstance(err.value, AuthError) and exit_code_for(err.value) == ExitCode.AUTH
    assert err.value.user == login.user and login.user in str(err.value)
    assert login.password not in str(err.value) and login.password not in repr(login)


@pytest.mark.parametrize("without", [{"AUTH=PLAIN"}, {"SASL-IR"}], ids=["LOGIN-user*master", "PLAIN-after-+"])
def test_the_other_sign_in_routes_with_the_master_user(dovecot, mail_user, without) -> None:
    """Without AUTH=PLAIN: LOGIN `user*master`; without SASL-IR: AUTHENTICATE PLAIN, the token after the `+`."""
    from migrate.backends.imap.connect import connect, sign_in

    wire, caps = connect(dovecot.settings())
    try:
        caps = sign_in(wire, caps - without, dovecot.login(mail_user, master=True))
        assert "UIDPLUS" in caps
    finally:
        wire.close()
    assert f"user=<{mail_user}>" in dovecot.log.read_text()


def test_rename_carries_children_and_keeps_uidvalidity_and_uids(dovecot, mail_user) -> None:
    with dovecot.session(mail_user) as imap:
        imap.create("Projekte")
        imap.create("Projekte/Größe & Übersicht")
        landed = append(imap, message(19), folder="Projekte/Größe & Übersicht")
        top = append(imap, message(20), folder="Projekte")
        before = imap.status("Projekte/Größe & Übersicht").uidvalidity
        assert imap.uids("Projekte") == [top.uid]   # selected: the rename must not leave a stale selection
        imap.rename("Projekte", "Archiv 2027/Projekte (alt)")   # a new parent is made on the way
        names = {f.name for f in imap.folders()}
        assert "Projekte" not in names and "Projekte/Größe & Übersicht" not in names
        assert {"Archiv 2027/Projekte (alt)", "Archiv 2027/Projekte (alt)/Größe & Übersicht"} <= names
        moved = "Archiv 2027/Projekte (alt)/Größe & Übersicht"
        assert imap.status(moved).uidvalidity == before == landed.uidvalidity   # Dovecot keeps it on RENAME
        assert imap.uids(moved) == [landed.uid] and imap.uids("Archiv 2027/Projekte (alt)") == [top.uid]
        assert imap.fetch_digest(moved, landed.uid) == (len(message(19)), hashlib.sha256(message(19)).hexdigest())
        imap.create("Taken")
        with pytest.raises(ImapRefused) as err:
            imap.rename("Archiv 2027/Projekte (alt)", "Taken")
        assert err.value.code == "ALREADYEXISTS"
        with pytest.raises(FolderMissing):
            imap.rename("Nope", "Nope 2")
        with pytest.raises(FolderNameRefused) as refused:
            imap.rename("Taken", "~home")
        assert refused.value.folder == "~home"
        imap.delete("Taken")
        assert "Taken" not in {f.name for f in imap.folders()}
    listed = dovecot.doveadm("mailbox", "list", "-u", mail_user).splitlines()
    assert "Archiv 2027/Projekte (alt)/Größe & Übersicht" in listed
