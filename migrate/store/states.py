"""The item state machine: which status may follow which, in one table, so illegal moves fail loudly."""

from __future__ import annotations

from migrate.errors import IllegalTransition
from migrate.models import ItemStatus as S

# pending → transferring → uploaded → verified, with failed/skipped/conflict as side exits.
# Edges back to pending exist for resume (in-flight rows re-checked), retries and source changes (sync).
TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.TRANSFERRING, S.SKIPPED, S.CONFLICT, S.FAILED}),
    S.TRANSFERRING: frozenset({S.UPLOADED, S.FAILED, S.PENDING, S.CONFLICT}),
    S.UPLOADED: frozenset({S.VERIFIED, S.FAILED, S.PENDING}),
    S.VERIFIED: frozenset({S.PENDING, S.FAILED}),
    S.FAILED: frozenset({S.PENDING, S.TRANSFERRING, S.SKIPPED}),
    S.SKIPPED: frozenset({S.PENDING}),
    S.CONFLICT: frozenset({S.PENDING, S.SKIPPED, S.TRANSFERRING}),
}


def check_transition(old: str | S, new: str | S, *, what: str = "item") -> None:
    """Raise IllegalTransition unless the state machine connects `old` to `new` (a no-op move is illegal too)."""
    o, n = S(old), S(new)
    if n not in TRANSITIONS[o]:
        allowed = ", ".join(sorted(TRANSITIONS[o]))
        raise IllegalTransition(f"{what}: cannot go from {o} to {n} (allowed from {o}: {allowed})")
