"""Pytest plugin: a real Dovecot 2.3 on loopback (tests/dovecot_support.py), plain and, separately, with TLS."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def _start(tls: bool) -> Iterator:
    from tests.dovecot_support import DOVECOT, DovecotError, remove, start_dovecot

    if not DOVECOT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {DOVECOT} is missing (install Debian's dovecot-imapd package)")
        pytest.skip(f"Dovecot ({DOVECOT}) is not installed; `make test` installs dovecot-imapd")
    try:
        server = start_dovecot(tls=tls)
    except DovecotError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture(scope="session")
def dovecot() -> Iterator:
    """Plain IMAP on 127.0.0.1: users alice (maildir), bob (100K quota), carol (LAYOUT=fs), dave (mdbox), master
    user `migrator`; special-use Drafts/Sent/Trash/Junk/Archive. Yields tests.dovecot_support.DovecotServer."""
    yield from _start(tls=False)


@pytest.fixture(scope="session")
def dovecot_tls() -> Iterator:
    """The same users behind TLS: STARTTLS on `port`, implicit TLS on `tls_port`, certificate from `ca_file`."""
    yield from _start(tls=True)


@pytest.fixture
def mail_user(dovecot):
    """A fresh maildir user of the shared server, so tests do not see each other's mail. Returns its name."""
    return dovecot.fresh_user()
