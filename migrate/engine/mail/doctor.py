"""`doctor` for mail (when [mail] url is set): the IMAP server answers over TLS, each mapped mailbox signs in,
the special-use folders Outlook's folders map to exist, and each quota leaves room for the mailbox."""

from __future__ import annotations

from typing import Any

from migrate.errors import ConfigError, MigrateError, TargetFull

NEEDED_SPECIAL = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk")   # \Archive is optional: a plain folder otherwise
NEEDED_CAPS = ("UIDPLUS", "SPECIAL-USE", "MOVE")
QUOTA_MARGIN = 1.1


def mail_checks(settings: Any, check: Any, attempt: Any) -> list[Any]:
    """The mail checks as doctor's Check records (`check`: the record type, `attempt`: doctor's runner)."""
    from migrate.config import missing_settings

    missing = missing_settings(settings, ("mail",))
    if missing:
        return [check("mail configuration", False, "\n".join(missing), 2)]
    opened: dict[str, Any] = {}
    checks = [attempt("IMAP server", lambda: _server(settings, opened))]
    if not checks[0].ok:
        return checks
    try:
        checks.append(attempt("IMAP special-use folders", lambda: _special(opened)))
        checks.append(attempt("IMAP mailboxes", lambda: _mailboxes(settings, opened)))
    finally:
        for sess in opened.values():
            try:
                sess.close()
            except Exception:  # noqa: BLE001 - closing after a check: nothing to report
                pass
    return checks


def _boxes(settings: Any) -> list[Any]:
    from migrate.engine.mail.boxes import mailboxes
    from migrate.mapping import load_mappings
    from migrate.store import StateStore

    if not settings.state_path.exists():
        return []
    with StateStore(settings.state_path, readonly=True) as store:
        boxes, _ = mailboxes(store, load_mappings(settings.mappings, missing_ok=True))
    return boxes


def _server(settings: Any, opened: dict[str, Any]) -> str:
    from migrate.backends.imap import ImapSession
    from migrate.engine.mail.boxes import imap_settings, login_source

    imap = imap_settings(settings)
    try:
        boxes = _boxes(settings)
    except MigrateError:
        boxes = []
    if not boxes:
        raise ConfigError("no mapped mailbox to sign in with", hint="run `m365-migrate discover` and map users in "
                          "users.csv (target_user, or an imap_user column)")
    login = login_source(settings)(boxes[0].imap_user)
    session = ImapSession.open(imap, login)
    opened[boxes[0].imap_user] = session
    ep = imap.endpoint()
    tls = "TLS from the start" if ep.implicit_tls else ("STARTTLS" if not ep.loopback else
                                                        "STARTTLS where offered (loopback)")
    lacking = [c for c in NEEDED_CAPS if c not in {x.upper() for x in session.capabilities}]
    if lacking:
        raise ConfigError(f"{settings.mail.url} lacks {', '.join(lacking)}: needed to record UIDs, find the special "
                          "folders and carry moves", hint="use Dovecot 2.3 or later (or another server with these)")
    how = f"master user {settings.mail.master_user}" if settings.mail.login == "master" else "users' own passwords"
    return f"{settings.mail.url}: {tls}, signed in as {boxes[0].imap_user} ({how}); separator {session.separator!r}"


def _special(opened: dict[str, Any]) -> str:
    session = next(iter(opened.values()))
    have = {k.lower(): v for k, v in session.special_use().items()}
    missing = [s for s in NEEDED_SPECIAL if s.lower() not in have]
    if missing:
        raise ConfigError(f"the server marks no folder as {', '.join(missing)}: Outlook's Sent Items, Drafts, Deleted "
                          "Items and Junk Email would become ordinary folders beside the ones clients use",
                          hint="give them special_use in dovecot.conf (namespace inbox { mailbox Sent { special_use "
                          "= \\Sent  auto = subscribe } ... }), then run doctor again")
    extra = "" if "\\archive" in have else "; no \\Archive folder: Outlook's Archive becomes an ordinary folder"
    return ", ".join(f"{k} = {v}" for k, v in sorted(session.special_use().items())) + extra


def _mailboxes(settings: Any, opened: dict[str, Any]) -> str:
    from migrate.backends.imap import ImapSession
    from migrate.engine.mail.boxes import imap_settings, login_source
    from migrate.store import StateStore

    imap, login = imap_settings(settings), login_source(settings)
    sizes: dict[str, int] = {}
    with StateStore(settings.state_path, readonly=True) as store:
        for r in store.mail_counts():
            if not r["skip_reason"]:
                sizes[r["upn"]] = sizes.get(r["upn"], 0) + r["bytes"]
    refused, small, ok = [], [], 0
    for box in _boxes(settings):
        try:
            session = opened.get(box.imap_user) or ImapSession.open(imap, login(box.imap_user))
            opened[box.imap_user] = session
        except MigrateError as exc:
            refused.append(f"{box.upn} → {box.imap_user}: {exc.message}")
            continue
        ok += 1
        quota = session.quota()
        need = int(sizes.get(box.upn, 0) * QUOTA_MARGIN)
        if quota is not None and need and (quota[1] - quota[0]) * 1024 < need:
            small.append(f"{box.upn} → {box.imap_user}: {quota[1] - quota[0]:,} KiB free, the mailbox needs about "
                         f"{need // 1024:,} KiB (its size plus 10 %)")
    lines = (["the IMAP server refused the sign-in of:", *refused] if refused else []) + \
        (["quota too small for the mailbox:", *small] if small else [])
    hints = (["check users.csv (target_user / imap_user) and the master user or the passwords file"] if refused
             else []) + (["raise these users' quota at the server before `copy --what mail`"] if small else [])
    if refused:
        from migrate.errors import AuthError

        raise AuthError("\n".join(lines), hint="; ".join(hints))
    if small:
        raise TargetFull("\n".join(lines), hint="; ".join(hints))
    return f"{ok} mailboxes sign in" + ("; quotas leave room for the scanned mailboxes" if sizes else
                                        "; run `scan --what mail` to compare quotas with the mailboxes' sizes")
