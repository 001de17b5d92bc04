"""`copy`: check credentials, refresh the plan (layout and conflicts, reads only), then transfer and verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrate.engine.accounting import Accounting
from migrate.engine.plan import PlanOptions, find_directory, run_plan
from migrate.engine.pool import CopySummary, copy_drives
from migrate.engine.transfer import TransferOptions
from migrate.errors import ConfigError
from migrate.mapping import Mappings
from migrate.protocols import Source, Target
from migrate.session import Selection
from migrate.store import StateStore


def check_credentials(target: Target, users: list[str]) -> None:
    """Every target user the selection writes as must log in, before any byte moves; all problems at once."""
    validate = getattr(target, "validate_credentials", None)
    if validate is None or not users:
        return
    problems = validate(sorted(set(users)))
    if problems:
        raise ConfigError(
            "the target refuses some of the accounts this copy writes as:\n" + "\n".join(f"  {p}" for p in problems),
            hint="fix the credentials file (app passwords: `occ user:auth-tokens:add <user>`) or the user mapping, "
            "then run `copy` again; nothing was transferred",
        )


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
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[CopySummary, dict[str, Any]]:
    """Plan (store-only; raises MappingError on bad mappings), check every account, then copy what is pending.

    Returns the copy summary and the refreshed plan document; fatal target errors (full, auth) are raised after
    the running transfers finish, leaving every row resumable.
    """
    say("refreshing the plan (layout, names, conflicts; reads only)")
    doc = run_plan(store, target, mappings, selection, plan_options, directory=find_directory(target), progress=say)
    drives = [d for d in (store.drive(r["drive_id"]) for r in doc["drives"] if r.get("status") == "mapped") if d]
    users = sorted({d["target_user"] for d in drives if d.get("target_user")})
    if plan_options.service_account:
        users = sorted({*users, plan_options.service_account})
    say(f"checking the target accounts of {len(users)} users, one at a time")
    check_credentials(target, users)
    summary = copy_drives(store, source, target, drives, workers=workers, accounting=accounting, options=transfer)
    return summary, doc
