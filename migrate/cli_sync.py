"""The switchover commands, `sync` and `cutover`, registered on the app by migrate.cli (same thin style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from migrate.cli import JSON_OPTION, SELECT_BATCH, SELECT_DRIVE, SELECT_USER, WHAT_OPTION, Globals
from migrate.errors import ExitCode

WORKERS = typer.Option(None, "--workers", min=1, max=64, metavar="N", help="Parallel transfers (default [transfer] workers).")


def _prepare(ctx: typer.Context, workers: int | None, json_out: bool) -> tuple[Globals, Any, Any, Any, Any, Any]:
    """Settings, mappings, how to open the target (after the state's lock), a progress printer and the SyncOptions
    both commands share."""
    from migrate.config import require_settings, versions_limit
    from migrate.connect import open_target_from_settings
    from migrate.engine.files.sync import SyncOptions
    from migrate.engine.shares.apply import PASSWORDS_FILE
    from migrate.mapping import load_mappings

    g: Globals = ctx.obj
    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "source", "target")
    mappings = load_mappings(settings.mappings)

    def target() -> Any:
        return open_target_from_settings(settings)

    say = (lambda m: None) if g.quiet or g.json else (lambda m: typer.echo(m, err=True))
    options = SyncOptions(deletions=settings.policy.deletions, workers=settings.transfer.workers,
                          bulk=settings.transfer.bulk_upload, share_rate=settings.target.share_rate,
                          passwords_file=settings.state_path.parent / PASSWORDS_FILE,
                          versions=versions_limit(settings.transfer.versions))
    return g, settings, mappings, target, say, options


def sync(
    ctx: typer.Context,
    batch: list[str] = SELECT_BATCH,
    drive: list[str] = SELECT_DRIVE,
    user: list[str] = SELECT_USER,
    workers: int = WORKERS,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the changes (report files too); nothing is written to the target or the state database."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FOLDER", help="Folder for the change list (default <state dir>/reports/sync-<time>)."),
    json_out: bool = JSON_OPTION,
    what: list[str] = WHAT_OPTION,
) -> None:
    """Apply every source change since the last pass (new, edited, renamed, moved, deleted), never over a person's work.

    With --what calendars,contacts also carry new, changed and deleted events and contacts (see runbooks/groupware.md);
    with --what mail new mail, moves, flag changes and deletions (see runbooks/mail.md)."""
    import contextlib
    import dataclasses

    from migrate.cli import _what

    files, kinds = _what(what)
    if kinds:
        from migrate.cli_json import combined, echo_json, json_collect
        from migrate.engine.groupware.run import run_sync_step

        code = 0
        gw_kinds = tuple(k for k in kinds if k != "mail")
        mail = None
        with json_collect() as docs:  # one JSON document for all parts
            if files:
                try:
                    sync(ctx, batch, drive, user, workers, dry_run, output, json_out, what=["files"])
                except typer.Exit as exc:
                    code = exc.exit_code
            if gw_kinds:
                code = max(code, run_sync_step(ctx.obj, gw_kinds, user, workers, dry_run, json_out))
            if "mail" in kinds:
                mail, mail_code = _sync_mail(ctx.obj, user, workers, dry_run, json_out)
                code = max(code, mail_code)
        if docs:
            doc = docs[-1] if not (mail and gw_kinds) else {**docs[-2], "mail": docs[-1]}
            echo_json(combined(docs[0] if files and len(docs) > 1 + bool(mail and gw_kinds) else None, doc))
        if mail is not None:
            from migrate.engine.mail.copy import raise_mailbox_errors

            raise_mailbox_errors(mail)
        raise typer.Exit(code)

    from migrate.backends.graph import open_source
    from migrate.cli import _selection, echo_json
    from migrate.connect import close_quietly
    from migrate.engine.files.sync import raise_stopped, run_sync
    from migrate.engine.plan import options_from_settings
    from migrate.reports.sync import render_sync_text, write_sync_reports
    from migrate.session import Run, state_for

    g, settings, mappings, open_target, say, options = _prepare(ctx, workers, json_out)
    args = {"batch": batch, "drive": drive, "user": user, "dry_run": dry_run}
    target = None
    try:
        with contextlib.ExitStack() as stack:
            # A dry run works on a throwaway copy of the state database: it writes nothing anywhere.
            state = stack.enter_context(state_for(settings.state_path, "sync", dry_run))
            source = stack.enter_context(open_source(settings))   # no request yet: the lock comes first
            run = stack.enter_context(Run(state, "sync", args, source=source))
            target = open_target()
            summary = run_sync(run.store, source, target, mappings, _selection(batch, drive, user),
                               options_from_settings(settings), dataclasses.replace(options, dry_run=dry_run),
                               say=say, source_stats=source.stats)
            folder = write_sync_reports(summary, settings.state_path.parent / "reports", output=output)
            run.summary = {**summary.counts, "attention": summary.attention, "reports": str(folder)}
    finally:
        close_quietly(target)
    from migrate.engine.meter import graph_line

    books = run.summary.get("graph") or {}
    if g.json:
        echo_json({**summary.to_dict(), "reports": str(folder), "graph": books})
    else:
        typer.echo(render_sync_text(summary, folder) + (f"\n{graph_line(books)}" if books else ""))
    raise_stopped(summary)
    if summary.attention and not dry_run:
        raise typer.Exit(ExitCode.ATTENTION)


def _sync_mail(g: Globals, user: list[str], workers: int | None, dry_run: bool, json_out: bool) -> tuple[Any, int]:
    """`sync --what mail`: the mail part; returns its summary (for the mailbox-level errors) and exit code."""
    from migrate.cli_json import echo_json
    from migrate.engine.mail.run import run_mail_step

    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers})
    res = run_mail_step("sync", settings, upns=tuple(user), workers=workers, dry_run=dry_run,
                        say=None if g.quiet or g.json else lambda m: typer.echo(m, err=True))
    if g.json:
        echo_json(res.data)
    else:
        typer.echo(res.text)
    return res.summary, int(ExitCode.ATTENTION) if res.attention and not dry_run else int(ExitCode.OK)


def _cutover_mail(g: Globals, batch: str, workers: int | None, json_out: bool) -> tuple[Any, int]:
    """The mail part of `cutover`; returns the final sync's summary (for mailbox-level errors) and the exit code."""
    from migrate.backends.graph import open_source
    from migrate.cli_json import echo_json
    from migrate.config import require_settings
    from migrate.engine.mail.cutover import cutover_mail, render
    from migrate.mapping import load_mappings
    from migrate.session import Run

    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "source", "mail")
    mappings = load_mappings(settings.mappings)
    say = (lambda m: None) if g.quiet or g.json else (lambda m: typer.echo(m, err=True))
    with open_source(settings) as source, Run(settings.state_path, "cutover-mail", {"batch": batch},
                                               source=source) as run:
        s, y = cutover_mail(run.store, source, settings, mappings, batch,
                            workers=workers or settings.transfer.workers, say=say)
        run.summary = {"whole": s.whole, "problems": s.problems, "attention": not s.whole}
    if g.json:
        echo_json(s.to_dict())
    else:
        typer.echo(render(s))
    return y, int(ExitCode.ATTENTION) if not s.whole else int(ExitCode.OK)


def cutover(
    ctx: typer.Context,
    batch: str = typer.Option(..., "--batch", metavar="NAME", help="The batch to switch over (its drives were frozen in Microsoft 365)."),
    workers: int = WORKERS,
    output: Path = typer.Option(None, "--output", "-o", metavar="FOLDER", help="Folder for the report (default <state dir>/reports/cutover-<batch>-<time>)."),
    json_out: bool = JSON_OPTION,
    what: list[str] = WHAT_OPTION,
) -> None:
    """Switchover day for one batch: final sync, verify, share, a second delta that must be empty; exit 0 only when whole.

    With --what mail (or files,mail) the batch's mailboxes too: final mail sync, verify, an empty second pass
    (see runbooks/mail.md: MX switch and freeze first)."""
    from migrate.cli import _what

    files, kinds = _what(what)
    if kinds:
        if any(k != "mail" for k in kinds):
            from migrate.errors import ConfigError

            raise ConfigError("cutover takes --what files, mail or files,mail (calendars and contacts are "
                              "finished with `sync --what calendars,contacts`)")
        from migrate.cli_json import echo_json, json_collect

        code = 0
        with json_collect() as docs:
            if files:
                try:
                    cutover(ctx, batch, workers, output, json_out, what=["files"])
                except typer.Exit as exc:
                    code = exc.exit_code
            mail, mail_code = _cutover_mail(ctx.obj, batch, workers, json_out)
            code = max(code, mail_code)
        if docs:
            echo_json({**docs[0], "mail": docs[-1]} if files and len(docs) > 1 else docs[-1])
        from migrate.engine.mail.copy import raise_mailbox_errors

        raise_mailbox_errors(mail)
        raise typer.Exit(code)
    from migrate.backends.graph import open_source
    from migrate.cli import echo_json
    from migrate.connect import close_quietly
    from migrate.engine.cutover import run_cutover
    from migrate.engine.plan import options_from_settings
    from migrate.reports.cutover import render_cutover_text, write_cutover_report
    from migrate.session import Run

    g, settings, mappings, open_target, say, options = _prepare(ctx, workers, json_out)
    target = None
    try:
        with open_source(settings) as source, Run(settings.state_path, "cutover", {"batch": batch},
                                                   source=source) as run:
            target = open_target()
            summary = run_cutover(run.store, source, target, mappings, batch, options_from_settings(settings),
                                  options, share_rate=settings.target.share_rate,
                                  passwords_file=options.passwords_file, say=say, source_stats=source.stats)
            folder = write_cutover_report(summary, settings.state_path.parent / "reports", output=output)
            run.summary = {"whole": summary.whole, "problems": summary.problems, "attention": not summary.whole,
                           "reports": str(folder)}
    finally:
        close_quietly(target)
    if g.json:
        echo_json({**summary.to_dict(), "reports": str(folder)})
    else:
        typer.echo(render_cutover_text(summary, folder))
    if not summary.whole:
        raise typer.Exit(ExitCode.ATTENTION)
