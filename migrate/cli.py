"""The command line: parse, resolve settings, call one library function, render; exit codes live here only.

Heavy libraries (msgraph, azure-identity, webdav4, the sandboxes) are imported inside the commands, so
`m365-migrate --help` stays instant.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.transport.heap import fix_mmap_threshold

fix_mmap_threshold()  # first, before the imports below fill the heap: freed buffers go back to the OS (transport/heap.py)

import typer  # noqa: E402 (after the heap setting above)

from migrate.cli_json import combined, echo_json, json_collect, json_error  # noqa: E402,F401 (re-exported)
from migrate.errors import ExitCode, MigrateError, exit_code_for  # noqa: E402

try:  # typer ≥ 0.20 vendors its own click; older releases use the click package
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    import click.exceptions as click_exc  # type: ignore[no-redef]

app = typer.Typer(
    name="m365-migrate",
    help="Move OneDrive, SharePoint and Teams files from Microsoft 365 into Nextcloud or any WebDAV server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without a type, "[transfer] workers" as written, no boxes in logs
    context_settings={"help_option_names": ["-h", "--help"]},
)
audit_app = typer.Typer(help="Check and export the tamper-evident audit trail.", no_args_is_help=True,
                        rich_markup_mode=None)
sandbox_app = typer.Typer(help="Run the built-in loopback sandboxes (Graph tenant, Nextcloud target).", no_args_is_help=True,
                          rich_markup_mode=None)
app.add_typer(audit_app, name="audit")
app.add_typer(sandbox_app, name="sandbox")


@dataclass
class Globals:
    """Options every command shares, resolved once in the callback."""

    config: Path | None
    state: Path | None
    verbose: int
    quiet: bool
    json: bool

    def settings(self, *, require_file: bool = True, **overrides: Any):  # -> config.Settings
        from migrate.config import load_settings

        flags = {k: v for k, v in overrides.items() if v is not None}
        if self.state is not None:
            flags["state.path"] = str(self.state)
        return load_settings(self.config, flags, require_file=require_file)


_VERBOSITY = 0


@app.callback()
def _globals(
    ctx: typer.Context,
    config: Path = typer.Option(
        None, "--config", "-c", envvar="M365_MIGRATE_CONFIG", metavar="PATH",
        help="Configuration file (default ./m365-migrate.toml)."
    ),
    state: Path = typer.Option(
        None, "--state", envvar="M365_MIGRATE_STATE", metavar="PATH",
        help="State database (default from the config, else state/migration.db)."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="More detail (repeat: -vv also shows HTTP traffic)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    global _VERBOSITY
    _VERBOSITY = verbose
    from migrate.redact import setup_logging

    setup_logging(-1 if quiet else verbose)
    ctx.obj = Globals(config, state, verbose, quiet, json_out)


JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")
VERSIONS_OPTION = typer.Option(None, "--versions", help='Earlier versions per file: "none", "all" or N, for this '
                               "run (default: the mapping row's versions column, else [transfer] versions); e.g. "
                               "`--batch records --versions all`.")


WHAT_OPTION = typer.Option(["files"], "--what", metavar="KINDS", show_default=False, help="What to work on: files, calendars, contacts, mail "
                           "(comma-separated; default files).")


def _what(what: list[str]) -> tuple[bool, tuple[str, ...]]:
    from migrate.engine.groupware.steps import kinds_of, parse_what

    parsed = parse_what(what)
    return "files" in parsed, kinds_of(parsed)


def _with_groupware(ctx: typer.Context, step: str, files_step: Any, params: dict[str, Any] | None,
                    kinds: tuple[str, ...], user: list[str], *, workers: int | None = None,
                    output: Path | None = None) -> int:
    """Run the files part (when asked for) and then the groupware part of a step; the worse exit code wins."""
    from migrate.engine.groupware.run import run_step

    code = ExitCode.OK
    with json_collect() as docs:
        if params is not None:
            try:
                ctx.invoke(files_step, ctx=ctx, **params, what=["files"])
            except typer.Exit as exc:
                code = exc.exit_code
    g: Globals = ctx.obj
    settings = g.settings(require_file=step != "status", **{"transfer.workers": workers})
    say = None if g.quiet or g.json else lambda m: typer.echo(m, err=True)
    gw_kinds = tuple(k for k in kinds if k != "mail")
    parts, attention, mail = [], False, None
    if gw_kinds:
        res = run_step(step, settings, gw_kinds, upns=tuple(user), workers=workers, output=output, say=say)
        parts.append(res.data)
        attention = res.attention
        if not g.json:
            typer.echo(res.text)
    if "mail" in kinds:
        from migrate.engine.mail.run import run_mail_step

        mail = run_mail_step(step, settings, upns=tuple(user), workers=workers, output=output, say=say)
        parts.append({"mail": mail.data} if gw_kinds or params is not None else mail.data)
        attention = attention or mail.attention
        if not g.json:
            typer.echo(mail.text)
    if g.json:
        doc = parts[0] if len(parts) == 1 else {**parts[0], **parts[1]}
        echo_json(combined(docs[0] if docs else None, doc))
    if mail is not None and mail.summary is not None:
        from migrate.engine.mail.copy import raise_mailbox_errors

        raise_mailbox_errors(mail.summary)   # a full mailbox: exit 5; a refused sign-in: exit 4
    return max(code, ExitCode.ATTENTION if attention and step != "status" else ExitCode.OK)


# ----------------------------------------------------------------------------------------------- init
@app.command()
def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path("."), metavar="FOLDER", help="Folder to set up."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Write m365-migrate.toml and the mapping templates; existing files are kept unless --force."""
    from migrate.setup import init_project

    written, kept = init_project(directory, force=force)
    g: Globals = ctx.obj
    if g.json:
        echo_json({"written": [str(p) for p in written], "kept": [str(p) for p in kept]})
        return
    for p in written:
        typer.echo(f"wrote {p}")
    for p in kept:
        typer.echo(f"kept  {p} (exists; --force overwrites it)")
    typer.echo("next: fill in [source] and [target] in m365-migrate.toml, then run `m365-migrate doctor`")


# --------------------------------------------------------------------------------------------- status
@app.command()
def status(
    ctx: typer.Context,
    batch: list[str] = typer.Option([], "--batch", metavar="NAME", help="Only drives of this batch (repeatable)."),
    drive: list[str] = typer.Option([], "--drive", metavar="ID", help="Only this drive id (repeatable)."),
    user: list[str] = typer.Option([], "--user", metavar="UPN", help="Only drives owned by this UPN (repeatable)."),
    what: list[str] = WHAT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Progress per batch and drive, failures with reasons, and what to do next."""
    ctx.obj.json = ctx.obj.json or json_out
    files, kinds = _what(what)
    if kinds:
        params = dict(batch=batch, drive=drive, user=user, json_out=json_out) if files else None
        raise typer.Exit(_with_groupware(ctx, "status", status, params, kinds, user))
    from migrate import status as status_mod
    from migrate.session import Selection
    from migrate.store import StateStore

    g: Globals = ctx.obj
    settings = g.settings(require_file=False)
    with StateStore(settings.state_path, readonly=True) as store:
        data = status_mod.collect(store, Selection(tuple(batch), tuple(drive), tuple(user)),
                                  version_limit_for=_version_limits(settings, store))
    if g.json or json_out:
        echo_json(data)
        return
    from migrate.reports.text import render_status

    typer.echo(render_status(data))


def _version_limits(settings: Any, store: Any) -> Any:
    """Drive id -> the version policy in force (mapping row, else [transfer] versions); None when the mapping
    files cannot be read (status and verify then say nothing of history still to carry)."""
    from migrate.config import versions_limit
    from migrate.engine.files.layout import version_limits
    from migrate.mapping import load_mappings

    try:
        return version_limits(store, load_mappings(settings.mappings, missing_ok=True),
                              versions_limit(settings.transfer.versions))
    except MigrateError:
        return None


# ---------------------------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Check the audit trail's hash chain; exit 3 naming the first broken record."""
    from migrate.errors import AuditChainBroken
    from migrate.store import StateStore

    g: Globals = ctx.obj
    with StateStore(g.settings(require_file=False).state_path, readonly=True) as store:
        report = store.verify_audit()
    if g.json:
        echo_json({"records": report.records, "ok": report.ok, "first_broken": report.first_broken,
                   "reason": report.reason})  # and the error below goes to stderr only: one document
    if not report.ok:
        raise AuditChainBroken(
            f"audit trail broken at record {report.first_broken}: {report.reason}",
            hint="the state database was edited outside m365-migrate; keep a copy as evidence",
        )
    if not g.json:
        typer.echo(f"audit trail intact: {report.records} records verified")


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", metavar="FORMAT", help="csv or jsonl."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE", help="File to write (default standard output)."),
) -> None:
    """Export the audit trail as CSV or JSON Lines."""
    from migrate.store import StateStore

    g: Globals = ctx.obj
    with StateStore(g.settings(require_file=False).state_path, readonly=True) as store:
        if output is None:
            store.export_audit(sys.stdout, fmt)
        else:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                n = store.export_audit(fh, fmt)
            typer.echo(f"wrote {n} audit records to {output}", err=True)


# ------------------------------------------------------------------------------------------ inventory
# (discover, scan, report inventory: added by the inventory work)
report_app = typer.Typer(help="Render reports from the state database.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(report_app, name="report")


def _selection(batch: list[str], drive: list[str], user: list[str]):  # -> session.Selection
    from migrate.session import Selection

    return Selection(tuple(batch), tuple(drive), tuple(user))


@app.command()
def discover(
    ctx: typer.Context,
    workers: int = typer.Option(None, "--workers", min=1, max=64, metavar="N", help="Parallel Graph requests (default [transfer] workers)."),
) -> None:
    """Find users' OneDrives, SharePoint sites and libraries, and Teams drives; record them; suggest mappings."""
    from migrate.backends.graph import open_source
    from migrate.config import require_settings
    from migrate.engine.discover import discover as run_discover
    from migrate.reports.progress import CountProgress
    from migrate.session import Run

    g: Globals = ctx.obj
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "source")
    progress = CountProgress("discover", enabled=not (g.quiet or g.json))
    # open_source makes no request: the state's lock still comes before the network
    with open_source(settings) as source, Run(settings.state_path, "discover", {"workers": workers},
                                                   source=source) as run:
        try:
            summary = run_discover(run.store, source, settings.mappings, on_progress=progress, source_stats=source.stats)
        finally:
            progress.close()
        run.summary = summary.to_dict()
    if g.json:
        echo_json(summary.to_dict())
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(summary.drives.items())) or "no drives"
    typer.echo(f"found {summary.users} users ({summary.users_without_drive} without a OneDrive) and {kinds} "
               f"in {summary.seconds:.1f} s")
    typer.echo(f"mapping suggestions added: {summary.users_suggested} to {settings.mappings.users}, "
               f"{summary.sites_suggested} to {settings.mappings.sites}; batches changed on {summary.batches_assigned} drives")
    for note in summary.notes:
        typer.echo(f"note: {note}")
    typer.echo("next: review the mapping files, then run `m365-migrate scan`")


@app.command()
def scan(
    ctx: typer.Context,
    batch: list[str] = typer.Option([], "--batch", metavar="NAME", help="Only drives of this batch (repeatable)."),
    drive: list[str] = typer.Option([], "--drive", metavar="ID", help="Only this drive id (repeatable)."),
    user: list[str] = typer.Option([], "--user", metavar="UPN", help="Only drives owned by this UPN (repeatable)."),
    workers: int = typer.Option(None, "--workers", min=1, max=64, metavar="N", help="Drives scanned in parallel (default [transfer] workers)."),
    what: list[str] = WHAT_OPTION,
    full: bool = typer.Option(False, "--full", help="Ignore stored delta links: enumerate everything and reconcile."),
) -> None:
    """Enumerate the selected drives through Graph delta into the state database; resumable, a checkpoint per page.

    With --what calendars,contacts also read the mapped users' calendars and contacts (one row per object); with
    --what mail their mail folders and each folder's message delta (see runbooks/mail.md)."""
    files, kinds = _what(what)
    if kinds:
        params = dict(batch=batch, drive=drive, user=user, workers=workers, full=full) if files else None
        raise typer.Exit(_with_groupware(ctx, "scan", scan, params, kinds, user, workers=workers))
    from migrate.backends.graph import open_source
    from migrate.config import require_settings
    from migrate.engine.discover import assign_batches
    from migrate.engine.files.scan import scan as run_scan
    from migrate.reports.progress import ScanProgress
    from migrate.session import Run

    g: Globals = ctx.obj
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "source")
    args = {"batch": batch, "drive": drive, "user": user, "workers": settings.transfer.workers, "full": full}
    with open_source(settings) as source, Run(settings.state_path, "scan", args, source=source) as run:
        assign_batches(run.store, settings.mappings)
        sel = _selection(batch, drive, user)
        progress = ScanProgress(len(sel.to_scan(run.store)[0]), enabled=not (g.quiet or g.json))
        try:
            summary = run_scan(run.store, source, sel, workers=settings.transfer.workers, full=full,
                               listener=progress, source_stats=source.stats)
        finally:
            progress.close()
        run.summary = summary.to_dict()
    if g.json:
        echo_json(summary.to_dict())
    else:
        from migrate.reports.inventory import render_scan

        typer.echo(render_scan(summary))
    if summary.attention:
        raise typer.Exit(ExitCode.ATTENTION)


@report_app.command("inventory")
def report_inventory(
    ctx: typer.Context,
    fmt: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE", help="File to write (default standard output)."),
    batch: list[str] = typer.Option([], "--batch", metavar="NAME", help="Only drives of this batch (repeatable)."),
    drive: list[str] = typer.Option([], "--drive", metavar="ID", help="Only this drive id (repeatable)."),
    user: list[str] = typer.Option([], "--user", metavar="UPN", help="Only drives owned by this UPN (repeatable)."),
) -> None:
    """Every scanned item: drive id, item id, path, kind, size, mtime, quickXorHash."""
    from migrate.errors import ConfigError
    from migrate.reports.inventory import write_inventory
    from migrate.store import StateStore

    if fmt not in ("csv", "json"):
        raise ConfigError(f"--format {fmt}: expected csv or json")
    g: Globals = ctx.obj
    with StateStore(g.settings(require_file=False).state_path, readonly=True) as store:
        sel = _selection(batch, drive, user)
        if output is None:
            write_inventory(store, sys.stdout, fmt, sel)
            return
        with open(output, "w", encoding="utf-8", newline="") as fh:
            n = write_inventory(store, fh, fmt, sel)
    typer.echo(f"wrote {n} items to {output}", err=True)

# ------------------------------------------------------------------------------------ plan and report
# (plan, report plan: added by the plan work)
@app.command()
def plan(
    ctx: typer.Context,
    batch: list[str] = typer.Option([], "--batch", metavar="NAME", help="Only drives of this batch (repeatable)."),
    drive: list[str] = typer.Option([], "--drive", metavar="ID", help="Only this drive id (repeatable)."),
    user: list[str] = typer.Option([], "--user", metavar="UPN", help="Only drives owned by this UPN (repeatable)."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FOLDER", help="Folder for the reports (default <state dir>/reports/plan-<time>)."),
    what: list[str] = WHAT_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
    versions: str = VERSIONS_OPTION,
) -> None:
    """The dry run: target paths, renames, conflicts, unsupported items, share plan and estimate; writes nothing to the target."""
    files, kinds = _what(what)
    if kinds and not files:
        raise typer.Exit(_with_groupware(ctx, "plan", plan, None, kinds, user, output=output))
    from migrate.config import require_settings
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.plan import find_directory, options_from_settings, run_plan, stamp
    from migrate.mapping import load_mappings
    from migrate.reports.plan import write_plan_reports
    from migrate.session import Run

    g: Globals = ctx.obj
    settings = g.settings(**{"transfer.versions": versions})
    require_settings(settings, "target")
    mappings = load_mappings(settings.mappings)
    args = {"batch": batch, "drive": drive, "user": user}
    g.json = g.json or json_out
    target = None
    # configuration and mappings first, then the state's lock, then the network
    with Run(settings.state_path, "plan", args) as run:
        target = open_target_from_settings(settings)
        doc = run_plan(run.store, target, mappings, _selection(batch, drive, user),
                       options_from_settings(settings, versions_forced=versions is not None),
                       directory=find_directory(target), progress=None if g.quiet or g.json else lambda m: typer.echo(m, err=True))
        doc = stamp(doc, state=str(settings.state_path))
        gw_kinds = tuple(k for k in kinds if k != "mail")
        if gw_kinds:   # calendars/contacts in the same report (counts, what cannot be carried, estimate)
            from migrate.engine.groupware.steps import plan_groupware

            doc["groupware"] = plan_groupware(run.store, gw_kinds, upns=tuple(user))
            doc["summary"]["attention"] = doc["summary"]["attention"] or doc["groupware"]["attention"]
        if "mail" in kinds:   # mailboxes in the same report
            from migrate.engine.mail.plan import plan_mail

            doc["mail"] = plan_mail(run.store, settings.mail, upns=tuple(user), workers=settings.transfer.workers)
            doc["summary"]["attention"] = doc["summary"]["attention"] or doc["mail"]["attention"]
        # with mail: mail-plan.html/.md/.json and mail-not-carried.csv beside plan.html, which links to them
        folder = write_plan_reports(doc, settings.state_path.parent / "reports", output=output)
        run.summary = {"plan": doc, "attention": doc["summary"]["attention"], "reports": str(folder)}
        close_quietly(target)
    _plan_done(g, doc, folder)


def _plan_done(g: Globals, doc: dict[str, Any], folder: Path) -> None:
    if g.json:
        echo_json({"summary": doc["summary"], "estimate": doc["estimate"], "reports": str(folder)})
    else:
        from migrate.reports.plan import render_summary_text

        typer.echo(render_summary_text(doc, folder))
    if doc["summary"]["attention"]:
        raise typer.Exit(ExitCode.ATTENTION)


@report_app.command("plan")
def report_plan(
    ctx: typer.Context,
    output: Path = typer.Option(None, "--output", "-o", metavar="FOLDER", help="Folder for the reports (default <state dir>/reports/plan-<time>)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Render the last plan again from the state database (Markdown, HTML, CSV, JSON); contacts no server.

    A plan with mail renders mail-plan.html beside plan.html; after `plan --what mail` alone, the mail plan."""
    from migrate.errors import ConfigError, StateError
    from migrate.reports.plan import write_plan_reports
    from migrate.store import StateStore

    g: Globals = ctx.obj
    g.json = g.json or json_out
    settings = g.settings(require_file=False)
    with StateStore(settings.state_path, readonly=True) as store:
        last = store.last_run_summary("plan", ("ok", "attention"))
        mail = store.last_run_summary("plan-mail", ("ok", "attention"))
    if last is not None and "plan" not in last["summary"]:
        last = None
    if mail is not None and "mail" not in mail["summary"]:
        mail = None   # a mail plan stored before the whole plan was kept
    if last is None and mail is None:
        raise StateError("no finished plan in the state database", hint="run `m365-migrate plan` first")
    reports = settings.state_path.parent / "reports"
    try:
        if mail is not None and (last is None or mail["run_id"] > last["run_id"]):
            raise typer.Exit(_mail_plan_done(g, mail["summary"]["mail"], reports, output))
        doc = last["summary"]["plan"]
        folder = write_plan_reports(doc, reports, output=output, shared=output is None)
    except OSError as exc:
        raise ConfigError(f"cannot write the plan reports: {exc.strerror}: {exc.filename}",
                          hint="pass --output FOLDER on writable storage (a read-only state is read as it is)"
                          ) from None
    _plan_done(g, doc, folder)


def _mail_plan_done(g: Globals, doc: dict[str, Any], reports: Path, output: Path | None) -> int:
    from migrate.engine.mail.plan import render_plan, write_plan

    folder = write_plan(doc, reports, output)
    if g.json:
        echo_json({**doc, "reports": str(folder)})
    else:
        typer.echo(render_plan(doc, folder))
    return ExitCode.ATTENTION if doc["attention"] else ExitCode.OK


# ------------------------------------------------------------------------------- copy, verify, demo
# (copy, verify, demo, doctor: added by the copy work)
SELECT_BATCH = typer.Option([], "--batch", metavar="NAME", help="Only drives of this batch (repeatable).")
SELECT_DRIVE = typer.Option([], "--drive", metavar="ID", help="Only this drive id (repeatable).")
SELECT_USER = typer.Option([], "--user", metavar="UPN", help="Only drives owned by this UPN (repeatable).")


@app.command()
def copy(
    ctx: typer.Context,
    batch: list[str] = SELECT_BATCH,
    drive: list[str] = SELECT_DRIVE,
    user: list[str] = SELECT_USER,
    workers: int = typer.Option(None, "--workers", min=1, max=64, metavar="N", help="Parallel transfers (default [transfer] workers)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only plan: the same report as `plan`, nothing written."),
    what: list[str] = WHAT_OPTION,
    json_out: bool = JSON_OPTION,
    versions: str = VERSIONS_OPTION,
) -> None:
    """Stream files to the target in parallel, verify each one, keep modification times; resumable.

    With --what calendars,contacts also write the scanned events and contacts over CalDAV/CardDAV, never
    inviting anyone (no invitations, no copies into other users' calendars); with --what mail APPEND every
    scanned message into the IMAP server with its flags and received time, never sending anything."""
    files, kinds = _what(what)
    if dry_run:
        ctx.invoke(plan, ctx=ctx, batch=batch, drive=drive, user=user, output=None, json_out=json_out, what=what,
                   versions=versions)
        return
    if kinds:
        params = dict(batch=batch, drive=drive, user=user, workers=workers, dry_run=False,
                      json_out=json_out, versions=versions) if files else None
        raise typer.Exit(_with_groupware(ctx, "copy", copy, params, kinds, user, workers=workers))
    from migrate.backends.graph import open_source
    from migrate.config import require_settings, versions_limit
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.accounting import Accounting
    from migrate.engine.files.copy import run_copy
    from migrate.engine.files.transfer import TransferOptions
    from migrate.engine.plan import options_from_settings
    from migrate.mapping import load_mappings
    from migrate.reports.transfer_progress import CopyProgress, render_copy
    from migrate.session import Run

    g: Globals = ctx.obj
    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers, "transfer.versions": versions})
    require_settings(settings, "source", "target")
    mappings = load_mappings(settings.mappings)
    progress = CopyProgress(enabled=not (g.quiet or g.json))
    args = {"batch": batch, "drive": drive, "user": user, "workers": settings.transfer.workers}
    target = None
    try:
        # configuration and mappings first, then the state's lock, then the network (open_source makes no request)
        with open_source(settings) as source, Run(settings.state_path, "copy", args, source=source) as run:
            target = open_target_from_settings(settings)
            summary, _ = run_copy(
                run.store, source, target, mappings, _selection(batch, drive, user),
                options_from_settings(settings, versions_forced=versions is not None),
                workers=settings.transfer.workers, accounting=Accounting(listener=progress),
                transfer=TransferOptions(small_file_limit=settings.transfer.small_file_limit,
                                         versions=versions_limit(settings.transfer.versions)),
                bulk=settings.transfer.bulk_upload,
                say=lambda m: None if g.quiet or g.json else typer.echo(m, err=True),
            )
            run.summary = {**summary.__dict__, "attention": summary.attention}
    finally:
        progress.close()
        close_quietly(target)
    from migrate.engine.meter import graph_line

    books = run.summary.get("graph") or {}
    if g.json:
        echo_json({**summary.__dict__, "attention": summary.attention, "graph": books})
    else:
        typer.echo(render_copy(summary) + (f"\n{graph_line(books)}" if books else ""))
    if summary.attention:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command()
def share(
    ctx: typer.Context,
    batch: list[str] = SELECT_BATCH,
    drive: list[str] = SELECT_DRIVE,
    user: list[str] = SELECT_USER,
    workers: int = typer.Option(None, "--workers", min=1, max=64, metavar="N", help="Owners worked on in parallel (default [transfer] workers)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only the share part of the plan: what would be created, nothing written."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Recreate sharing as target shares, created by each owner, per policy; never broader than the source."""
    from migrate.config import require_settings
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.plan import options_from_settings
    from migrate.engine.shares.apply import PASSWORDS_FILE, run_share
    from migrate.mapping import load_mappings
    from migrate.session import Run

    g: Globals = ctx.obj
    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "target")
    mappings = load_mappings(settings.mappings)
    args = {"batch": batch, "drive": drive, "user": user, "workers": settings.transfer.workers, "dry_run": dry_run}
    target = None
    try:
        with Run(settings.state_path, "share", args) as run:
            target = open_target_from_settings(settings)
            summary = run_share(
                run.store, target, mappings, _selection(batch, drive, user), options_from_settings(settings),
                workers=settings.transfer.workers, share_rate=settings.target.share_rate,
                widen_narrower=settings.policy.narrower_shares == "widen",
                passwords_file=settings.state_path.parent / PASSWORDS_FILE,
                reports_dir=settings.state_path.parent / "reports", dry_run=dry_run,
                # on stderr with --json too: a paced wait can last 10 minutes and must not look like a hang
                say=lambda m: None if g.quiet else typer.echo(m, err=True),
            )
            run.summary = summary.to_dict()
    finally:
        close_quietly(target)
    if g.json:
        echo_json(summary.to_dict())
    else:
        from migrate.reports.share import render_share

        typer.echo(render_share(summary))
    if summary.attention and not dry_run:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command()
def verify(
    ctx: typer.Context,
    batch: list[str] = SELECT_BATCH,
    drive: list[str] = SELECT_DRIVE,
    user: list[str] = SELECT_USER,
    source_check: bool = typer.Option(False, "--source", help="Also re-check the source's current hashes."),
    what: list[str] = WHAT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Re-check the target against the state database (existence, size, checksum, mtime); exit 3 on any gap.

    With --what calendars,contacts also compare each collection's objects (counts and content hashes); with --what
    mail each IMAP folder's count and every message's SHA-256."""
    files, kinds = _what(what)
    if kinds:
        params = dict(batch=batch, drive=drive, user=user, source_check=source_check,
                      json_out=json_out) if files else None
        raise typer.Exit(_with_groupware(ctx, "verify", verify, params, kinds, user))
    from migrate.config import require_settings
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.files.teamfolders import backfill_mounts
    from migrate.engine.files.verify import verify_drives
    from migrate.mapping import load_mappings
    from migrate.reports.text import render_verify
    from migrate.session import Run

    g: Globals = ctx.obj
    g.json = g.json or json_out
    settings = g.settings()
    require_settings(settings, "target")
    target = source = None
    try:
        if source_check:
            from migrate.backends.graph import open_source

            source = open_source(settings).__enter__()   # no request yet: the lock comes first
        with Run(settings.state_path, "verify", {"source": source_check}, source=source) as run:
            target = open_target_from_settings(settings)
            try:
                backfill_mounts(run.store, load_mappings(settings.mappings, missing_ok=True))
            except MigrateError:
                pass  # unreadable mapping files: drives planned by this version already carry their team folder
            drives = _selection(batch, drive, user).drives(run.store)
            summary = verify_drives(run.store, target, drives, workers=settings.transfer.workers, source=source,
                                    source_hash=getattr(source, "current_hash", None) if source else None,
                                    version_limit_for=_version_limits(settings, run.store))
            run.summary = {**summary.__dict__, "attention": summary.attention}
    finally:
        close_quietly(target)
        if source is not None:
            source.close()
    if g.json:
        echo_json({**summary.__dict__, "attention": summary.attention})
    else:
        typer.echo(render_verify(summary))
    if summary.attention:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command()
def doctor(ctx: typer.Context, json_out: bool = JSON_OPTION) -> None:
    """Prove Graph credentials, target reachability and capabilities, and mapping validity; say how to fix each gap."""
    from migrate.doctor import exit_code, run_doctor

    g: Globals = ctx.obj
    checks = run_doctor(g.settings())
    code = exit_code(checks)
    if g.json or json_out:
        echo_json({"ok": code == ExitCode.OK, "exit_code": code,
                   "checks": [{"check": c.name, "ok": c.ok, "skipped": c.skipped, "detail": c.detail}
                              for c in checks]})
    else:
        for c in checks:
            mark = "ok" if c.ok else "skip" if c.skipped else "FAIL"
            typer.echo(f"[{mark}] {c.name}: " + c.detail.replace("\n", "\n      "))
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    folder: Path = typer.Option(Path("demo-run"), "--folder", metavar="FOLDER", help="Where the demo writes its config, state and reports."),
) -> None:
    """Rehearse the whole journey against the built-in loopback sandboxes, with no configuration."""
    from migrate.demo import run_demo

    result = run_demo(folder.resolve(), echo=typer.echo)
    if not result.ok:
        raise typer.Exit(ExitCode.ATTENTION)


# ------------------------------------------------------------------------------------ sync, cutover
def _register_switchover() -> None:
    from migrate import cli_sync

    app.command("sync")(cli_sync.sync)
    app.command("cutover")(cli_sync.cutover)


_register_switchover()


# -------------------------------------------------------------------------------------------- sandbox
def _register_optional(sub: typer.Typer, name: str, module: str, attr: str) -> None:
    """Register a command whose module may not exist in this build (keeps --help honest)."""
    import importlib.util

    if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None:
        return
    try:
        mod = __import__(module, fromlist=[attr])
    except ImportError:
        return
    sub.command(name)(getattr(mod, attr))


_register_optional(sandbox_app, "graph", "migrate.sandbox.graph.command", "graph_command")
_register_optional(sandbox_app, "nextcloud", "migrate.sandbox.nextcloud.command", "nextcloud_command")


def _attach_exit_codes() -> None:
    """Each command's --help ends with the exit codes it uses (cli_codes.COMMANDS, also shown in the README)."""
    from migrate.cli_codes import epilog, overview

    for prefix, sub in (("", app), *((f"{g.name} ", g.typer_instance) for g in app.registered_groups)):
        for info in sub.registered_commands:
            name = prefix + (info.name or info.callback.__name__.replace("_", "-"))
            info.epilog = epilog(name)
    app.info.epilog = overview()


_attach_exit_codes()


# ------------------------------------------------------------------------------------------- boundary
INTERRUPTED = "interrupted; state is consistent, run the same command again to resume"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every outcome into one exit code, with no traceback unless -v."""
    from migrate import cli_json

    cli_json.begin()
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
    from migrate.transport import interrupt

    interrupt.install()
    try:
        rv = app(args=args, standalone_mode=False, prog_name="m365-migrate")
        # non-standalone typer returns the code of an explicit Exit (130 for Ctrl-C inside a command)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else ExitCode.OK
        if code == ExitCode.INTERRUPTED:
            interrupt.announce()
        sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        interrupt.announce()
        if wants_json:
            json_error(ExitCode.INTERRUPTED, "Interrupted", INTERRUPTED)
        sys.exit(ExitCode.INTERRUPTED)
    except click_exc.NoArgsIsHelpError:
        sys.exit(ExitCode.USAGE)  # the help text was already shown
    except click_exc.ClickException as exc:
        exc.show()
        if wants_json:
            json_error(ExitCode.USAGE, "UsageError", exc.format_message(), "see --help")
        sys.exit(ExitCode.USAGE)
    except MigrateError as exc:
        if _VERBOSITY:
            import traceback

            traceback.print_exc()
        from migrate.redact import redact

        typer.echo(f"error: {redact(str(exc))}", err=True)
        if wants_json:
            json_error(exit_code_for(exc), type(exc).__name__, exc.message, exc.hint)
        sys.exit(exit_code_for(exc))
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into exit 1
        from migrate.redact import redact

        if _VERBOSITY:
            import traceback

            traceback.print_exc()
        typer.echo(f"unexpected error: {redact(f'{type(exc).__name__}: {exc}')}", err=True)
        typer.echo("  → run again with -v for details, and report it with that output", err=True)
        if wants_json:
            json_error(ExitCode.UNEXPECTED, type(exc).__name__, f"{type(exc).__name__}: {exc}",
                        "run again with -v for details, and report it with that output")
        sys.exit(ExitCode.UNEXPECTED)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
