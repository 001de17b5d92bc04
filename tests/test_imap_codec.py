"""The IMAP helpers on their own: modified UTF-7, category keywords, INTERNALDATE, CRLF hashing, the response
parser, settings and the password-free repr."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from migrate.backends.imap import (
    CrlfHasher,
    ImapLogin,
    ImapSettings,
    crlf,
    internaldate,
    keyword,
    mutf7_decode,
    mutf7_encode,
    parse_internaldate,
)
from migrate.backends.imap.parse import Streamed, parse
from migrate.errors import ConfigError


@pytest.mark.parametrize("text,wire", [
    ("INBOX", "INBOX"),
    ("Projekte/Größe & Übersicht", "Projekte/Gr&APYA3w-e &- &ANw-bersicht"),  # reference §2.6, verified on Dovecot
    ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),                # RFC 3501 §5.1.3's example
    ("Ordner 😀", "Ordner &2D3eAA-"),                                               # outside the BMP: a surrogate pair
    ("&&", "&-&-"),
])
def test_mutf7_both_ways(text: str, wire: str) -> None:
    assert mutf7_encode(text) == wire
    assert mutf7_decode(wire) == text


@pytest.mark.parametrize("bad", ["&Jjo", "a&b", "&AGE!-"])
def test_mutf7_refuses_malformed_names(bad: str) -> None:
    with pytest.raises(ValueError):
        mutf7_decode(bad)


def test_keywords_are_deterministic_atoms() -> None:
    assert keyword("Projekt") == "Projekt"
    rote = keyword("Rote Kategorie")
    assert rote == keyword("Rote Kategorie") and rote.startswith("Rote_Kategorie_") and " " not in rote
    assert keyword("Grün").startswith("Grun_")
    assert keyword("Rot!") == "Rot!"  # atom characters stay as they are
    assert keyword("a]b") != keyword("a%b")  # both fold to a_b, the hash keeps them apart
    assert keyword("L" * 70 + "1") != keyword("L" * 70 + "2")  # shortened, still apart
    for cat in ["$Junk", "\\Seen", "x" * 200, 'q"u(o)t{e}*%', "Ärger über Öl"]:
        kw = keyword(cat)
        assert kw and kw[0] not in "\\$" and len(kw) <= 60
        assert all(0x21 <= ord(c) <= 0x7E and c not in '(){%*"\\]' for c in kw)
    assert keyword("   ") is None and keyword("!!") is not None and keyword("日本") is None


def test_internaldate_formats_utc_and_clamps() -> None:
    assert internaldate(datetime(2019, 3, 15, 9, 20, 30, tzinfo=UTC)) == '"15-Mar-2019 09:20:30 +0000"'
    cet = timezone(timedelta(hours=1))
    assert internaldate(datetime(2019, 3, 5, 10, 20, 30, tzinfo=cet)) == '"05-Mar-2019 09:20:30 +0000"'
    assert internaldate(datetime(2019, 3, 15, 9, 20, 30)) == '"15-Mar-2019 09:20:30 +0000"'  # naive = UTC
    assert internaldate(datetime(1969, 12, 31, 23, 0, tzinfo=UTC)) == '"01-Jan-1970 00:00:01 +0000"'
    assert internaldate(datetime(1601, 1, 1, tzinfo=UTC)) == '"01-Jan-1970 00:00:01 +0000"'
    assert parse_internaldate(" 5-Mar-2019 09:20:30 +0000") == datetime(2019, 3, 5, 9, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize("data", [b"a\nb\r\nc\rd\n", b"\r\n\r\n", b"\n\n", b"\r", b"\r\r\n\n", b"no newline"])
def test_crlf_turns_only_bare_lf(data: bytes) -> None:
    out = crlf(data)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert out.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")


def test_crlf_hasher_equals_the_whole_for_every_split() -> None:
    rnd = random.Random(7)
    data = bytes(rnd.choice(b"\r\nab") for _ in range(3000))
    expected = crlf(data)
    for size in (1, 2, 3, 7, 64, 4096):
        h = CrlfHasher()
        for i in range(0, len(data), size):
            h.update(data[i:i + size])
        assert (h.length, h.hexdigest()) == (len(expected), hashlib.sha256(expected).hexdigest()), size


def test_parser_reads_literals_quotes_nil_and_sections() -> None:
    r = parse([b'* 12 FETCH (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE " 5-Mar-2019 09:20:30 +0000" '
               b'BODY[HEADER.FIELDS (SUBJECT)] {5}', b' BODY[] {3}', b' X "a \\"q\\" \\\\" Y NIL)'],
              [b"hello", Streamed(3)])
    assert (r.tag, r.number, r.kind) == ("*", 12, "FETCH")
    assert r.data == [["UID", "7", "FLAGS", ["\\Seen", "$Forwarded"], "INTERNALDATE", " 5-Mar-2019 09:20:30 +0000",
                       "BODY[HEADER.FIELDS (SUBJECT)]", b"hello", "BODY[]", Streamed(3), "X", 'a "q" \\', "Y", None]]
    ok = parse([b"m3 OK [APPENDUID 1796635969 4] Append completed."], [])
    assert (ok.kind, ok.code, ok.code_args, ok.text) == ("OK", "APPENDUID", "1796635969 4", "Append completed.")
    cont = parse([b"+ OK"], [])
    assert cont.tag == "+"
    lst = parse([b'* LIST (\\HasNoChildren \\Sent) "/" {4}', b""], [b"Sent"])
    assert lst.data == [["\\HasNoChildren", "\\Sent"], "/", b"Sent"]


def test_settings_parse_and_refuse() -> None:
    ep = ImapSettings("imaps://mail.example.org").endpoint()
    assert (ep.host, ep.port, ep.implicit_tls, ep.loopback) == ("mail.example.org", 993, True, False)
    ep = ImapSettings("imap://127.0.0.1:10143").endpoint()
    assert (ep.port, ep.implicit_tls, ep.loopback) == (10143, False, True)
    assert ImapSettings("imap://[::1]").endpoint().loopback
    for bad in ("https://mail.example.org", "imaps://user@mail.example.org", "imap://host/INBOX", "imaps://h:99999"):
        with pytest.raises(ConfigError):
            ImapSettings(bad).endpoint()


def test_login_repr_hides_the_password() -> None:
    login = ImapLogin(user="alice", password="s3cret-pw", master="migrator")
    assert "s3cret-pw" not in repr(login) and "s3cret-pw" not in str(login) and "alice" in repr(login)


def test_every_keyword_is_an_atom_the_session_sends() -> None:
    from migrate.backends.imap.session import _FLAG

    rnd = random.Random(11)
    alphabet = "aZ09 _-.!?()[]{}%*\"\\/:;&$~äöüßéñ日本😀\t"
    for _ in range(2000):
        cat = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 80)))
        kw = keyword(cat)
        assert kw is None or (_FLAG.fullmatch(kw) and not kw.startswith(("\\", "$")) and kw == keyword(cat)), cat
