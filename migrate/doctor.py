"""`doctor`: prove, before cutover work starts, that configuration, mappings, Graph and the target all work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrate.errors import ExitCode, MigrateError, exit_code_for

DOCTOR_BUDGET = 10  # seconds an endpoint may answer nothing during `doctor`


@dataclass(frozen=True, slots=True)
class Check:
    """One preflight check: what was checked, whether it passed, and what to do if not."""

    name: str
    ok: bool
    detail: str
    code: int = ExitCode.OK
    skipped: bool = False  # not run: it needs what a failed check above must fix first (said once, there)


def _skip(name: str, because: str) -> Check:
    return Check(name, False, f"not checked until the {because} check above passes", skipped=True)


def _attempt(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except MigrateError as exc:
        return Check(name, False, str(exc), exit_code_for(exc))


def run_doctor(settings: Any) -> list[Check]:
    """Every check runs, even after a failure, so one pass shows everything that is wrong."""
    import dataclasses

    from migrate.config import load_app_passwords, load_client_secret, missing_settings
    from migrate.mapping import load_mappings

    # a preflight names an unreachable endpoint within seconds, not after a copy's whole fault budget
    settings = dataclasses.replace(settings, transfer=dataclasses.replace(
        settings.transfer, unreachable_after=min(settings.transfer.unreachable_after, DOCTOR_BUDGET)))
    checks: list[Check] = []
    # a mail-only migration ([mail] set, no [target] url) has no files target to check
    mail_only = bool(settings.mail.url) and not settings.target.url
    missing = missing_settings(settings, ("source",) if mail_only else ("source", "target"))
    checks.append(Check("configuration", not missing,
                        "\n".join(missing) if missing else f"{settings.config_path or 'defaults'} is complete",
                        ExitCode.USAGE if missing else ExitCode.OK))

    from migrate.store.probe import probe_state

    checks.append(_attempt("state database", lambda: probe_state(settings.state_path)))

    def mappings() -> str:
        m = load_mappings(settings.mappings, missing_ok=True)
        return f"{len(m.users)} user rows, {len(m.groups)} group rows, {len(m.sites)} site rows: valid"

    checks.append(_attempt("mapping files", mappings))

    def secrets() -> str:
        if settings.source.auth == "client-secret":
            load_client_secret(settings)
        if mail_only:
            return "the Graph secret is readable (no [target] url: mail only, no app passwords needed)"
        return f"{len(load_app_passwords(settings))} target app passwords readable, permissions 0600"

    checks.append(_attempt("secrets", secrets))
    if settings.mail.url:   # mailboxes too (--what mail): the IMAP server, sign-ins, special folders, quotas
        from migrate.engine.mail.doctor import mail_checks

        checks += mail_checks(settings, Check, _attempt)
    if missing:
        return checks
    failed = {c.name for c in checks if not c.ok}

    def graph() -> str:
        from migrate.backends.graph import open_source

        with open_source(settings) as source:
            source.check_access()
        return f"signed in to {settings.source.graph_url} as app {settings.source.client_id} and read users"

    checks.append(_attempt("Microsoft Graph", graph))
    if mail_only:
        return checks

    from migrate.connect import close_quietly, open_target_from_settings

    opened: list[Any] = []

    def target() -> str:
        t = open_target_from_settings(settings)
        opened.append(t)
        f = t.features
        have = [n for n, v in (("modification times", f.set_mtime), ("checksums", f.stored_checksum),
                               ("chunked upload", f.chunked_upload), ("bulk upload", f.bulk_upload),
                               ("shares", f.shares), ("team folders", f.group_folders)) if v]
        lost = getattr(t, "not_preserved", None) or getattr(getattr(t, "info", None), "not_preserved", ())
        users = sorted(load_app_passwords(settings))
        problems = t.validate_credentials(users) if hasattr(t, "validate_credentials") else []
        if problems:
            from migrate.engine.files.copy import credentials_error

            raise credentials_error(problems, "accounts the target refuses:\n",
                                    "fix the credentials file (`occ user:auth-tokens:add <user>`)")
        text = f"{settings.target.url} ({settings.target.kind}) offers: {', '.join(have) or 'plain WebDAV only'}"
        if lost:
            text += f"; not preserved on this target: {', '.join(lost)}"
        return text + f"; {len(users)} accounts log in"

    # the target and its team folders need the app passwords, team folders and mapped accounts the mapping files
    # too: when those failed above, the same error is not repeated under every check that reads them
    try:
        checks.append(_skip("target", "secrets") if "secrets" in failed else _attempt("target", target))
        if opened:
            checks.append(_attempt("version history", lambda: _versions(settings, opened[0])))
        if settings.target.kind == "nextcloud":
            blocker = next((n for n in ("mapping files", "secrets") if n in failed), None)
            if blocker:
                checks.append(_skip("mapped accounts", blocker))
            elif opened:
                checks.append(_attempt("mapped accounts", lambda: _mapped_accounts(settings, opened[0])))
            checks.append(_skip("team folders", blocker) if blocker else
                          _attempt("team folders", lambda: _team_folders(settings)))
    finally:
        for t in opened:
            close_quietly(t)
    return checks


def _row_limits(settings: Any) -> dict[str, int | None]:
    """Drive id -> the version policy of its mapping row, for the drives whose row sets one (none without a
    state database or readable mapping files: the mapping check reports those)."""
    from migrate.config import versions_limit
    from migrate.engine.files.layout import version_limits
    from migrate.errors import MigrateError
    from migrate.mapping import load_mappings
    from migrate.store import StateStore

    if not settings.state_path.exists():
        return {}
    try:
        with StateStore(settings.state_path, create=False) as store:
            default = versions_limit(settings.transfer.versions)
            sentinel = -1
            limit_for = version_limits(store, load_mappings(settings.mappings, missing_ok=True), sentinel)
            return {d["id"]: lim for d in store.drives() if (lim := limit_for(d["id"])) != sentinel
                    and lim != default}
    except MigrateError:
        return {}


def _versions(settings: Any, target: Any) -> str:
    """[transfer] versions, whether the target keeps versions, and (from the state, once planned) how much the
    carried versions will count against each account's quota."""
    from migrate.config import versions_limit
    from migrate.engine.files.versions_plan import plan_versions
    from migrate.store import StateStore

    limit = versions_limit(settings.transfer.versions)
    by_drive = _row_limits(settings)
    if limit == 0 and not any(v != 0 for v in by_drive.values()):
        return '[transfer] versions = "none": only the current bytes of each file are carried'
    supported = bool(getattr(target.features, "versions", False))
    if not supported:
        return (f"[transfer] versions = {settings.transfer.versions!r}, but the target keeps no versions: only "
                "the current bytes are carried, and the plan lists versions as not preserved")
    text = f"[transfer] versions = {settings.transfer.versions!r}; the target keeps labelled versions"
    if by_drive:
        text += f"; {len(by_drive)} drive(s) follow the versions column of their mapping row"
    if not settings.state_path.exists():
        return text + "; run `plan` to see how much they count against each account's quota"
    with StateStore(settings.state_path, create=False) as store:
        drives = [{"drive_id": d["id"], "status": "mapped", "batch": d["batch"]} for d in store.drives()]
        est = plan_versions(store, drives, limit, supported=True, by_drive=by_drive)
    shares = [f"{a['user']} up to {_size(a['bytes'])} ({a['versions']} versions)" for a in est["accounts"]
              if a["versions"]]
    return text + ("; versions count against the owners' quota: " + ", ".join(shares) if shares else
                   "; no earlier versions are waiting to be carried (as planned)")


def _size(n: int) -> str:
    from migrate.reports.text import human_bytes

    return human_bytes(n)


def _mapped_accounts(settings: Any, target: Any) -> str:
    """Every Nextcloud user and group the mapping files (and the config) name exists, looked up as `plan` does."""
    from migrate.engine.plan import check_mapping_targets, find_directory
    from migrate.errors import ConfigError
    from migrate.mapping import load_mappings

    mappings = load_mappings(settings.mappings, missing_ok=True)
    directory = find_directory(target)
    if directory is None:
        return "the target has no user directory to check against"
    errors = check_mapping_targets(mappings, directory, service_account=settings.target.service_account,
                                   org_group=settings.policy.organization_group,
                                   config_name=settings.config_path.name if settings.config_path
                                   else "m365-migrate.toml")
    if errors:
        raise ConfigError("\n".join(errors), hint="create the accounts in Nextcloud, or correct the mapping rows")
    users = {r.target_user for r in mappings.users if r.target_user}
    users |= {r.target.name for r in mappings.sites if r.target is not None and r.target.kind == "user"}
    groups = {r.target_group for r in mappings.groups if r.target_group}
    return f"{len(users)} mapped Nextcloud users and {len(groups)} groups exist"


def _team_folders(settings: Any) -> str:
    """Every groupfolder:<name> row: the folder exists and the service account sees it mounted, writable."""
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.files.teamfolders import plan_team_folders, rows_as_targets
    from migrate.errors import ConfigError
    from migrate.mapping import load_mappings

    mappings = load_mappings(settings.mappings, missing_ok=True)
    rows = rows_as_targets(mappings)
    if not rows:
        return "no library is mapped to a team folder"
    writer = settings.target.service_account
    if not writer:
        raise ConfigError("sites.csv maps libraries to team folders, but [target] service_account is not set")
    t = open_target_from_settings(settings)
    try:
        folders, errors = plan_team_folders(None, t, rows, mappings,
                                            writer=writer, create=settings.target.create_team_folders,
                                            migration_group=settings.target.migration_group,
                                            config_name=settings.config_path.name if settings.config_path
                                            else "m365-migrate.toml")
    finally:
        close_quietly(t)
    if errors:
        raise ConfigError("\n".join(errors))
    return "; ".join(f"{f.mount_point}: " + ("ready" if f.action == "ready" else
                                              f"`copy` will {', '.join(f.changes)}") for f in folders)


def exit_code(checks: list[Check]) -> int:
    """The first failing check decides the exit code (config 2, auth 4, target full 5)."""
    return next((c.code or ExitCode.UNEXPECTED for c in checks if not c.ok and not c.skipped), ExitCode.OK)
