"""TLS to a real Dovecot with a certificate from a CA made by the test: verified with `ca_bundle`, refused without."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from migrate.backends.imap import ImapSession, ImapSettings
from migrate.errors import ConfigError, ExitCode, TargetNotTrusted, exit_code_for

MSG = b"From: a@example.org\r\nSubject: tls\r\nMessage-ID: <tls@example.org>\r\n\r\nover TLS\r\n"


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_tls_with_the_ca_bundle(dovecot_tls, implicit) -> None:
    user = dovecot_tls.fresh_user()
    with ImapSession.open(dovecot_tls.settings(implicit_tls=implicit), dovecot_tls.login(user)) as imap:
        assert imap._wire.tls_version in ("TLSv1.2", "TLSv1.3")
        landed = imap.append("INBOX", io.BytesIO(MSG), len(MSG), ["\\Seen"], datetime(2020, 1, 2, tzinfo=UTC))
        assert imap.fetch_digest("INBOX", landed.uid)[0] == len(MSG)
    assert "TLS" in dovecot_tls.log.read_text()


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_an_untrusted_certificate_stops_before_the_password(dovecot_tls, implicit) -> None:
    user = dovecot_tls.fresh_user()
    with pytest.raises(TargetNotTrusted) as err:
        ImapSession.open(dovecot_tls.settings(implicit_tls=implicit, ca=False), dovecot_tls.login(user))
    assert "does not verify" in str(err.value) and "ca_bundle" in str(err.value)
    assert exit_code_for(err.value) == ExitCode.AUTH
    assert f"user=<{user}>" not in dovecot_tls.log.read_text()  # no sign-in was attempted


def test_the_host_name_must_match_the_certificate(dovecot_tls) -> None:
    """The certificate names only `localhost`: the same server reached as 127.0.0.1 is not trusted."""
    other = ImapSettings(f"imaps://127.0.0.1:{dovecot_tls.tls_port}", ca_bundle=str(dovecot_tls.ca_file))
    with pytest.raises(TargetNotTrusted) as err:
        ImapSession.open(other, dovecot_tls.login("alice"))
    assert "127.0.0.1" in str(err.value)


def test_an_unreadable_ca_bundle_is_a_config_error(dovecot_tls, tmp_path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as err:
        ImapSession.open(ImapSettings(f"imaps://localhost:{dovecot_tls.tls_port}", ca_bundle=str(bad)),
                         dovecot_tls.login("alice"))
    assert str(bad) in str(err.value)
