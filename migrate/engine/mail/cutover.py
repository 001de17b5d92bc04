"""`cutover --batch NAME --what mail`: switchover day for the batch's mailboxes, after mail stopped arriving in
Exchange (MX switched to the organisation's server) and the mailboxes were frozen:

  1. the final mail sync (new mail, moves, flags, deletions by policy);
  2. verify of every message of the batch's mailboxes (counts per folder, every digest);
  3. a second delta pass, which must find nothing: a change after the freeze is reported loudly.

The batch is whole when the sync failed nothing, verify found no gap and nothing is left uncopied, and the second
pass is empty. Nothing is ever sent: mail that arrives at Exchange after the MX switch is carried by this sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.errors import ConfigError

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.mapping import Mappings
    from migrate.store import StateStore


@dataclass
class MailCutoverSummary:
    batch: str
    mailboxes: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    late_changes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def whole(self) -> bool:
        return not self.problems

    @property
    def attention(self) -> bool:
        return not self.whole

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "whole": self.whole, "attention": self.attention}


def cutover_mail(store: StateStore, source: Any, settings: Settings, mappings: Mappings, batch: str, *,
                 workers: int = 4, say: Any = None) -> tuple[MailCutoverSummary, Any]:
    """Run the three steps for the batch's mailboxes; returns the summary and the sync summary (whose full
    mailboxes and refused sign-ins the CLI raises after printing)."""
    from migrate.engine.mail.boxes import mailboxes
    from migrate.engine.mail.scan import scan_mail
    from migrate.engine.mail.sync import sync_mail
    from migrate.engine.mail.verify import verify_mail

    say = say or (lambda m: None)
    started = time.monotonic()
    boxes, _ = mailboxes(store, mappings, batch=batch)
    if not boxes:
        raise ConfigError(f"no mailbox belongs to batch {batch!r}",
                          hint="batches come from the batch column of users.csv")
    upns = tuple(b.upn for b in boxes)
    s = MailCutoverSummary(batch=batch, mailboxes=list(upns))

    t = time.monotonic()
    say("cutover: final mail sync")
    y = sync_mail(store, source, settings, mappings, upns=upns, workers=workers, say=say, boxes=boxes)
    s.sync = {k: v for k, v in y.to_dict().items() if k != "scan"}
    s.steps.append({"step": "final mail sync", "seconds": round(time.monotonic() - t, 2), "appended": y.appended,
                    "moved": y.moved, "flags": y.flags, "folders_renamed": len(y.folders_renamed),
                    "folders_created": len(y.folders_created), "folders_deleted": len(y.folders_deleted),
                    "conflicts": len(y.conflicts), "failed": len(y.failed)})
    if y.failed or y.full or y.refused_login:
        s.problems.append(f"the final mail sync could not apply {len(y.failed) + len(y.full) + len(y.refused_login)}"
                          " changes or mailboxes (listed under sync)")
    if y.conflicts:
        s.problems.append(f"{len(y.conflicts)} messages were changed at the target as well as in Outlook (listed)")

    t = time.monotonic()
    say("cutover: verify mail")
    v = verify_mail(store, settings, mappings, upns=upns, workers=workers)
    s.verify = v.to_dict()
    s.steps.append({"step": "verify mail", "seconds": round(time.monotonic() - t, 2), "checked": v.checked,
                    "verified": v.verified})
    gaps = len(v.missing) + len(v.differ) + len(v.count_gaps) + len(v.uidvalidity_changed) + len(v.failed)
    if gaps:
        s.problems.append(f"verify found {gaps} gaps at the IMAP server (listed under verify)")
    if v.not_copied:
        s.problems.append(f"{v.not_copied} messages of the batch are not copied yet")

    t = time.monotonic()
    say("cutover: second mail delta pass (must be empty)")
    sc = scan_mail(store, source, mappings, settings.mail, upns=upns, workers=workers, say=say)
    s.late_changes = {"new": sc.new, "changed": sc.changed, "removed": sc.removed}
    s.steps.append({"step": "second mail delta pass", "seconds": round(time.monotonic() - t, 2), **s.late_changes})
    if any(s.late_changes.values()):
        s.problems.append(f"Outlook changed after the final sync ({sc.new} new, {sc.changed} changed, {sc.removed} "
                          "gone): the freeze did not hold (mail still delivered to Exchange? MX switched?); run "
                          "cutover again once it holds")
    s.seconds = round(time.monotonic() - started, 2)
    return s, y


def render(s: MailCutoverSummary) -> str:
    lines = [f"mail cutover of batch {s.batch}: " + ("WHOLE" if s.whole else "NOT whole") +
             f" ({len(s.mailboxes)} mailboxes, {s.seconds:.1f} s)"]
    lines += [f"  {st['step']}: " + ", ".join(f"{k} {v}" for k, v in st.items() if k != "step") for st in s.steps]
    lines += [f"  PROBLEM: {p}" for p in s.problems]
    for name in ("conflicts", "failed", "full", "refused_login"):
        lines += [f"    {name}: {x}" for x in (s.sync.get(name) or [])[:20]]
    for name in ("missing", "differ", "count_gaps", "uidvalidity_changed", "failed"):
        lines += [f"    verify {name}: {x}" for x in (s.verify.get(name) or [])[:20]]
    return "\n".join(lines)
