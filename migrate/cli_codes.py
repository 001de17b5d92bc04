"""Which exit codes each command uses, and what 3 means for it: one table for `--help` and the README.

The codes themselves are `errors.ExitCode`; this says, per command, which of them a script must expect, so the
help text, the README and the code cannot drift apart (tests/test_exit_codes.py compares all three).
"""

from __future__ import annotations

from migrate.errors import ExitCode

MEANING = {
    ExitCode.OK: "success",
    ExitCode.UNEXPECTED: "unexpected error",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.ATTENTION: "finished, but items need attention",
    ExitCode.AUTH: "authentication or authorisation failure",
    ExitCode.TARGET_FULL: "target full or refused",
    ExitCode.INTERRUPTED: "interrupted; run again to resume",
}

_PLAN_3 = ("the plan lists something to decide before `copy`: conflicts at the target, drives not migrated, "
           "unsupported or risky items (also a user over quota), grants not carried over, and (with --what "
           "calendars,contacts) events or contacts that cannot be carried, e.g. a series whose every occurrence "
           "was cancelled")

# command -> (the codes it can end with, what 3 means for it or "" when it never ends with 3)
COMMANDS: dict[str, tuple[tuple[int, ...], str]] = {
    "init": ((0, 1, 2), ""),
    "doctor": ((0, 1, 2, 4, 5), ""),
    "discover": ((0, 1, 2, 4, 130), ""),
    "scan": ((0, 1, 2, 3, 4, 130), "a drive failed or vanished at the source, or a calendar/contact or mailbox could "
                                   "not be read (run `scan` again to resume)"),
    "plan": ((0, 1, 2, 3, 4, 130), _PLAN_3),
    "copy": ((0, 1, 2, 3, 4, 5, 130), "files, calendar/contact objects or messages failed or were not carried (listed; "
                                      "run `copy` again, it resumes); with --dry-run as `plan`"),
    "share": ((0, 1, 2, 3, 4, 130), "shares failed, were refused as broader, or wait (listed); never with "
                                    "--dry-run"),
    "sync": ((0, 1, 2, 3, 4, 5, 130), "changes failed or conflict with a person's work at the target (listed); "
                                      "never with --dry-run"),
    "verify": ((0, 1, 2, 3, 4, 130), "a gap: a file, event, contact or message missing, incomplete or different at "
                                   "the target"),
    "cutover": ((0, 1, 2, 3, 4, 5, 130), "the batch is not whole (the report says what is missing)"),
    "status": ((0, 1, 2), ""),
    "demo": ((0, 1, 2, 3, 130), "a step of the rehearsal needed attention (its output says which)"),
    "audit verify": ((0, 1, 2, 3), "the hash chain is broken (names the first broken record)"),
    "audit export": ((0, 1, 2), ""),
    "report inventory": ((0, 1, 2), ""),
    "report plan": ((0, 1, 2, 3), "as `plan`"),
    "sandbox graph": ((0, 1, 2), ""),
    "sandbox nextcloud": ((0, 1, 2), ""),
}


def epilog(command: str) -> str:
    """The 'Exit codes' paragraph of a command's --help (\\b keeps click from re-wrapping the lines)."""
    import textwrap

    codes, three = COMMANDS[command]
    lines = ["\b", "Exit codes:"]
    for code in codes:
        text = three if code == ExitCode.ATTENTION and three else MEANING[code]
        lines += textwrap.wrap(text, 72, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
    return "\n".join(lines)


def overview() -> str:
    """The top-level --help's closing paragraph: every code once, and where each command's own list is."""
    lines = ["\b", "Exit codes (each command's --help lists its own, and what 3 means there):"]
    lines += [f"  {code:>3}  {text}" for code, text in MEANING.items()]
    return "\n".join(lines)
