"""The mail steps as library calls the CLI makes (`--what mail`): open what a step needs, run it inside a locked
Run, and return its data, a short text, whether something needs attention, and the mailbox-level error to raise
after the summary was shown (a full mailbox: exit 5; a refused sign-in: exit 4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.config import Settings


@dataclass(frozen=True, slots=True)
class MailResult:
    data: dict[str, Any]
    text: str
    attention: bool
    summary: Any = None   # the step's summary, for raise_mailbox_errors


def _lines(head: str, **lists: list[str]) -> str:
    out = [head]
    for label, items in lists.items():
        out += [f"  {label.replace('_', ' ')}: {x}" for x in items[:50]]
        if len(items) > 50:
            out.append(f"  … and {len(items) - 50} more {label.replace('_', ' ')} (see --json or the reports)")
    return "\n".join(out)


def run_mail_step(step: str, settings: Settings, *, upns: tuple[str, ...] = (), workers: int | None = None,
                  output: Path | None = None, say: Any = None, dry_run: bool = False) -> MailResult:
    from migrate.engine.mail import plan as mail_plan

    say = say or (lambda m: None)
    workers = workers or settings.transfer.workers
    if step == "status":
        from migrate.store import StateStore

        with StateStore(settings.state_path, readonly=True) as store:
            data = mail_plan.status_mail(store, upns)
        return MailResult(data, mail_plan.render_status(data), bool(data["mail_problems"]))
    from migrate.mapping import load_mappings
    from migrate.session import Run

    args = {"what": ["mail"], "user": list(upns), "workers": workers}
    if step == "plan":
        with Run(settings.state_path, "plan-mail", args) as run:
            doc = mail_plan.plan_mail(run.store, settings.mail, upns=upns, workers=workers)
            folder = mail_plan.write_plan(doc, settings.state_path.parent / "reports", output)
            # the whole plan, so `report plan` renders it again without the network
            run.summary = {"totals": doc["totals"], "attention": doc["attention"], "reports": str(folder),
                           "mail": doc}
        return MailResult({**doc, "reports": str(folder)}, mail_plan.render_plan(doc, folder), doc["attention"])
    if step == "verify":
        from migrate.engine.mail.verify import verify_mail

        mappings = load_mappings(settings.mappings)
        with Run(settings.state_path, "verify-mail", args) as run:
            v = verify_mail(run.store, settings, mappings, upns=upns, workers=workers)
            run.summary = v.to_dict()
        text = _lines(f"mail: {v.verified} of {v.checked} messages verified in {v.folders} folders of {v.mailboxes} "
                      f"mailboxes (length and SHA-256 equal); {len(v.missing)} missing, {len(v.differ)} differ, "
                      f"{v.not_copied} not copied yet, {v.skipped} not carried (see the plan), {v.extra} other "
                      "messages at the server", MISSING=v.missing, DIFFERS=v.differ, COUNT=v.count_gaps,
                      UIDVALIDITY=v.uidvalidity_changed, FAILED=v.failed)
        return MailResult(v.to_dict(), text, v.attention, v)
    from migrate.backends.graph import open_source
    from migrate.config import require_settings

    require_settings(settings, "source")
    mappings = load_mappings(settings.mappings)
    if step == "scan":
        from migrate.engine.mail.scan import scan_mail

        with open_source(settings) as source, Run(settings.state_path, "scan-mail", args, source=source) as run:
            s = scan_mail(run.store, source, mappings, settings.mail, upns=upns, workers=workers, say=say)
            run.summary = s.to_dict()
        text = _lines(f"mail: read {s.mailboxes} mailboxes: {s.folders} folders, {s.messages} messages listed "
                      f"({s.new} new, {s.changed} changed, {s.removed} gone at the source); {len(s.not_carried)} "
                      f"folders not carried (hidden, Outlook's own; `plan --what mail` lists them); {s.requests} "
                      f"Graph requests in {s.seconds:.1f} s", read_again=s.restarted, not_mapped=s.unmapped,
                      FAILED=s.failed)
        return MailResult(s.to_dict(), text, s.attention, s)
    if step == "copy":
        from migrate.engine.mail.copy import TODO, copy_mail

        require_settings(settings, "mail")
        from migrate.reports.progress import MessageProgress

        with open_source(settings) as source, Run(settings.state_path, "copy-mail", args, source=source) as run:
            todo = sum(r["n"] for r in run.store.mail_counts(upns) if r["status"] in TODO and not r["skip_reason"])
            bar = MessageProgress(todo, "mail copy", enabled=say is not None)
            try:
                c = copy_mail(run.store, source, settings, mappings, upns=upns, workers=workers, say=say,
                              progress=bar)
            finally:
                bar.close()
            run.summary = c.to_dict()
        text = _lines(f"mail: {c.appended} messages appended ({c.bytes:,} bytes), {c.adopted} found already there "
                      f"after an interrupted run, {len(c.skipped)} not carried, {len(c.failed)} failed; "
                      f"{len(c.folders_created)} folders created; {c.requests} Graph requests in {c.seconds:.1f} s",
                      folder_renamed=c.renamed, UIDVALIDITY=c.uidvalidity_changed, not_carried=c.skipped,
                      FAILED=c.failed, FULL=c.full, SIGN_IN_REFUSED=c.refused_login)
        return MailResult(c.to_dict(), text, c.attention, c)
    if step == "sync":
        import contextlib

        from migrate.engine.mail.sync import sync_mail
        from migrate.session import state_for

        require_settings(settings, "mail")
        with contextlib.ExitStack() as stack:
            # a dry run reads the changes into a throwaway copy of the state database, as file sync does
            state = stack.enter_context(state_for(settings.state_path, "sync-mail", dry_run))
            source = stack.enter_context(open_source(settings))
            run = stack.enter_context(Run(state, "sync-mail", {**args, "dry_run": dry_run}, source=source))
            y = sync_mail(run.store, source, settings, mappings, upns=upns, workers=workers, dry_run=dry_run, say=say)
            run.summary = y.to_dict()
        sc = y.scan
        text = _lines(f"mail: {sc.get('new', 0)} new, {sc.get('changed', 0)} changed, {sc.get('removed', 0)} gone in "
                      f"Outlook since the last pass" + (f"; folders: {len(y.folders_created)} to create, {len(y.folders_renamed)} "
                      f"to rename or move, {len(y.folders_deleted)} to delete, {len(y.folders_kept)} to keep (dry run: "
                      "nothing written)" if dry_run else
                      f"; {y.appended} appended, {y.moved} moved, {y.flags} flag changes, {y.trashed} moved to Trash, "
                      f"{len(y.kept)} deletions kept, {len(y.conflicts)} conflicts; folders: "
                      f"{len(y.folders_created)} created, {len(y.folders_renamed)} renamed or moved, "
                      f"{len(y.folders_deleted)} deleted, {len(y.folders_kept)} kept"),
                      folder_created=y.folders_created, folder_renamed=y.folders_renamed,
                      folder_deleted=y.folders_deleted, folder_kept=y.folders_kept, CONFLICT=y.conflicts, kept=y.kept,
                      not_carried=y.skipped, FAILED=y.failed, FULL=y.full, SIGN_IN_REFUSED=y.refused_login)
        return MailResult(y.to_dict(), text, y.attention, y)
    raise ValueError(f"unknown mail step {step!r}")
