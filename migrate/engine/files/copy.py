"""`copy`: check credentials, refresh the plan (layout and conflicts, reads only), then transfer and verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrate.engine import meter
from migrate.engine.accounting import Accounting
from migrate.engine.files.adopt import ADOPT_MARK, adopt_files
from migrate.engine.files.pool import CopySummary, copy_drives
from migrate.engine.files.teamfolders import FolderPlan, confirm_mount, mount_problem, prepare_team_folders
from migrate.engine.files.transfer import TransferOptions
from migrate.engine.plan import PlanOptions, find_directory, run_plan
from migrate.errors import AuthError, ConfigError, MappingError, MigrateError
from migrate.mapping import Mappings
from migrate.names import NameRules
from migrate.protocols import Source, Target
from migrate.session import Selection
from migrate.store import StateStore

CREDENTIALS_HINT = ("fix the credentials file (app passwords: `occ user:auth-tokens:add <user>`) or the user mapping, "
                    "then run `copy` again; nothing was transferred")
REFUSED = "the target refuses some of the accounts this copy writes as:\n"


AUTH_KINDS = {"wrong-password", "blocked", "unchecked"}  # CredentialProblem kinds that are refused logins


def credential_problems(target: Target, users: list[str]) -> list[Any]:
    """What the target says about logging in as each of `users` (empty: all fine, or it cannot tell)."""
    validate = getattr(target, "validate_credentials", None)
    if validate is None or not users:
        return []
    return list(validate(sorted(set(users))))


def credentials_error(problems: list[Any], message: str = REFUSED, hint: str = CREDENTIALS_HINT) -> MigrateError:
    """All problems in one error: refused or blocked logins only are an authentication failure (exit 4); a
    missing credentials row or an unknown account is a configuration error (exit 2) to fix first."""
    kinds = {getattr(p, "kind", "error") for p in problems}
    cls = AuthError if kinds <= AUTH_KINDS else ConfigError
    return cls(message + "\n".join(f"  {p}" for p in problems), hint=hint)


def check_credentials(target: Target, users: list[str]) -> None:
    """Every target user the selection writes as must log in, before any byte moves; all problems at once."""
    problems = credential_problems(target, users)
    if problems:
        raise credentials_error(problems)


def _users_named(mappings: Mappings, service_account: str | None) -> list[str]:
    """Every target account the mapping files (and the config) name, for a report when the plan was refused."""
    users = {r.target_user for r in mappings.users if r.target_user}
    users |= {r.target.name for r in mappings.sites if r.target is not None and r.target.kind == "user"}
    if service_account:
        users.add(service_account)
    return sorted(users)


def run_copy(
    store: StateStore,
    source: Source,
    target: Target,
    mappings: Mappings,
    selection: Selection,
    plan_options: PlanOptions,
    *,
    workers: int,
    transfer: TransferOptions = TransferOptions(),
    accounting: Accounting | None = None,
    bulk: bool = True,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[CopySummary, dict[str, Any]]:
    """Plan (store-only; raises MappingError on bad mappings), check every account, record the files the target
    already holds whole (engine.adopt), then copy what is pending.

    `bulk` is the `[transfer] bulk_upload` setting. Returns the copy summary and the refreshed plan document;
    fatal target errors (full, auth) are raised after the running transfers finish, leaving every row resumable.
    When the plan refuses the mappings (e.g. an unknown target user), the accounts' login problems are listed in
    the same error, so one round of fixes covers them all.
    """
    say("refreshing the plan (layout, names, conflicts; reads only)")
    try:
        doc = run_plan(store, target, mappings, selection, plan_options, directory=find_directory(target),
                       progress=say)
    except MappingError as exc:
        # Name every account problem in the same message: unknown users and refused logins are fixed together.
        problems = credential_problems(target, _users_named(mappings, plan_options.service_account))
        if not problems:
            raise
        raise MappingError(f"{exc.message}\n{REFUSED}" + "\n".join(f"  {p}" for p in problems),
                           hint=f"{exc.hint}; {CREDENTIALS_HINT}" if exc.hint else CREDENTIALS_HINT) from None
    folders = [FolderPlan.from_dict(f) for f in doc.get("team_folders", [])]
    if any(f.action in ("create", "grant") for f in folders):
        check_credentials(target, [plan_options.service_account])
        say("preparing team folders (create_team_folders = true)")
        if prepare_team_folders(store, target, folders, writer=plan_options.service_account,
                                migration_group=plan_options.migration_group, say=say):
            say("refreshing the plan against the prepared team folders")
            doc = run_plan(store, target, mappings, selection, plan_options, directory=find_directory(target),
                           progress=say)
    drives = [d for d in (store.drive(r["drive_id"]) for r in doc["drives"] if r.get("status") == "mapped") if d]
    users = sorted({d["target_user"] for d in drives if d.get("target_user")})
    if plan_options.service_account:
        users = sorted({*users, plan_options.service_account})
    say(f"checking the target accounts of {len(users)} users, one at a time")
    check_credentials(target, users)
    meter.announce(getattr(getattr(source, "pacer", None), "budget", None),
                   float((doc.get("estimate") or {}).get("resource_units") or 0), say)
    # Files the plan found at their target paths with the source's size (and conflicts adoption recorded): judged
    # from the target alone, recorded when whole (no Graph download, no upload); a drive whose team folder is
    # gone is left to copy_drives, which stops it.
    already = {r["drive_id"] for r in doc["drives"] if r.get("already_files")}
    mounted = [d["id"] for d in drives if (d["id"] in already or store.has_conflicts_marked(d["id"], ADOPT_MARK))
               and not mount_problem(target, d)]
    adopted = adopt_files(store, target, mounted, workers=workers, on_conflict=plan_options.on_conflict, say=say,
                          rules=NameRules.from_features(target.features, windows=plan_options.windows_names))
    summary = copy_drives(store, source, target, drives, workers=workers, accounting=accounting, options=transfer,
                          bulk=bulk, guard=lambda d: confirm_mount(target, d))
    summary.adopted = adopted.as_dict()
    return summary, doc
