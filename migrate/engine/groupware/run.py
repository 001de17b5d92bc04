"""The groupware steps as library calls the CLI makes (`--what calendars,contacts`): open what a step needs,
run it inside a locked Run, and return its data, a short text and whether something needs attention."""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrate.config import Settings


@dataclass(frozen=True, slots=True)
class StepResult:
    data: dict[str, Any]
    text: str
    attention: bool


def run_step(step: str, settings: Settings, kinds: tuple[str, ...], *, upns: tuple[str, ...] = (),
             workers: int | None = None, output: Path | None = None, say: Any = None) -> StepResult:
    from migrate.engine.groupware import steps as gw

    say = say or (lambda m: None)
    workers = workers or settings.transfer.workers
    label = "+".join(k + "s" for k in kinds)
    if step == "status":
        from migrate.store import StateStore

        with StateStore(settings.state_path, readonly=True) as store:
            data = status_groupware(store, upns)
            data["groupware_attachments"] = store.gw_attachment_counts(upns)
        return StepResult(data, render_status(data), bool(data["groupware_problems"]))
    from migrate.session import Run

    args = {"what": list(kinds), "user": list(upns), "workers": workers}
    if step == "scan":
        from migrate.backends.graph import open_source
        from migrate.config import require_settings
        from migrate.mapping import load_mappings

        require_settings(settings, "source")
        mappings = load_mappings(settings.mappings)
        with open_source(settings) as source, Run(settings.state_path, f"scan-{label}", args,
                                                   source=source) as run:
            s = gw.scan_groupware(run.store, source, mappings, kinds, upns=upns, workers=workers, say=say)
            run.summary = s.to_dict()
        text = (f"groupware: read {s.mailboxes} mailboxes: {s.calendars} calendars with {s.events} events, "
                f"{s.address_books} address books with {s.contacts} contacts; {s.changed} new or changed, "
                f"{s.deleted} gone at the source; {s.requests} Graph requests in {s.seconds:.1f} s")
        lines = [text] + [f"  skipped: {x}" for x in s.skipped_calendars] + \
            [f"  not mapped (no target user): {u}" for u in s.unmapped] + [f"  FAILED: {f}" for f in s.failed]
        return StepResult(s.to_dict(), "\n".join(lines), s.attention)
    if step == "plan":
        with Run(settings.state_path, f"plan-{label}", args) as run:
            doc = gw.plan_groupware(run.store, kinds, upns=upns,
                                    files=getattr(settings.target, "kind", None) == "nextcloud")
            folder = write_plan(doc, settings.state_path.parent / "reports", output)
            run.summary = {"totals": doc["totals"], "attention": doc["attention"], "reports": str(folder)}
        return StepResult({**doc, "reports": str(folder)}, render_plan(doc, folder), doc["attention"])
    from migrate.backends.dav.target import open_dav_target
    from migrate.connect import close_quietly

    target = None
    try:
        if step == "copy":
            import contextlib

            from migrate.engine.groupware.attach import open_carrier

            with contextlib.ExitStack() as stack:
                source = None   # Graph is read only for attachments that go to Files (Nextcloud targets)
                if "calendar" in kinds and getattr(settings.target, "kind", None) == "nextcloud":
                    from migrate.backends.graph import open_source

                    source = stack.enter_context(open_source(settings))
                run = stack.enter_context(Run(settings.state_path, f"copy-{label}", args, source=source))
                target = open_dav_target(settings, need=kinds)
                attach = open_carrier(settings, run.store, source.client, kinds, stack) if source else None
                c = gw.copy_groupware(run.store, target, kinds, upns=upns, workers=workers, say=say, attach=attach)
                run.summary = c.to_dict()
            data = {**c.to_dict(), **({"graph": run.summary["graph"]} if "graph" in run.summary else {})}
            text = (f"groupware: {c.created} created, {c.updated} updated, {c.adopted} found already there, "
                    f"{c.unchanged} unchanged, {c.unsupported} unsupported (see the plan), {len(c.failed)} failed; "
                    f"{c.collections_created} collections created; {c.requests} requests in {c.seconds:.1f} s"
                    + attachments_text(c.attachments))
            return StepResult(data, "\n".join([text] + [f"  FAILED: {f}" for f in c.failed]), c.attention)
        if step == "verify":
            with Run(settings.state_path, f"verify-{label}", args) as run:
                target = open_dav_target(settings, need=kinds)
                v = gw.verify_groupware(run.store, target, kinds, upns=upns, workers=workers)
                a = verify_files(settings, run.store, kinds, upns)
                data = {**v.to_dict(), **({"attachments": a.to_dict()} if a else {})}
                data["attention"] = v.attention or bool(a and a.attention)
                run.summary = data
            text = (f"groupware: {v.verified} of {v.checked} objects verified in {v.collections} collections "
                    f"(content hashes equal); {len(v.missing)} missing, {len(v.differ)} differ, {v.not_copied} not "
                    f"copied yet, {v.unsupported} unsupported, {v.extra} other objects at the target")
            lines = [text] + [f"  MISSING: {m}" for m in v.missing] + [f"  DIFFERS: {d}" for d in v.differ]
            if a is not None:
                lines.append(f"  attachments in Files: {a.verified} of {a.checked} verified (there, same size and "
                             f"SHA1, linked file id, shared as carried); {len(a.missing)} missing, {len(a.differ)} "
                             f"differ, {len(a.unshared)} not shared as carried")
                lines += [f"  MISSING attachment: {m}" for m in a.missing] + \
                    [f"  DIFFERS attachment: {d}" for d in a.differ] + [f"  NOT SHARED attachment: {u}"
                                                                        for u in a.unshared]
            return StepResult(data, "\n".join(lines), data["attention"])
    finally:
        if target is not None:
            close_quietly(target)
    raise ValueError(f"unknown groupware step {step!r}")


def verify_files(settings: Settings, store: Any, kinds: tuple[str, ...], upns: tuple[str, ...]) -> Any:
    """The attachments carried into Files, checked (Nextcloud targets with calendars); None otherwise."""
    if "calendar" not in kinds or getattr(settings.target, "kind", None) != "nextcloud":
        return None
    from migrate.connect import close_quietly, open_target_from_settings
    from migrate.engine.groupware.attach import verify_attachments

    files = open_target_from_settings(settings)
    try:
        return verify_attachments(store, files, upns=upns)  # type: ignore[arg-type]
    finally:
        close_quietly(files)


def attachments_text(counts: dict[str, int]) -> str:
    """`; attachments in Files: 2 carried, 1 shared` (nothing when no attachment went to Files)."""
    parts = [f"{n} {k}" for k, n in counts.items() if n]
    return f"; attachments in Files: {', '.join(parts)}" if parts else ""


def write_plan(doc: dict[str, Any], reports: Path, output: Path | None) -> Path:
    """groupware-plan.json, .md and unsupported.csv in a new folder (or `output`)."""
    folder = output or reports / f"groupware-plan-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groupware-plan.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "groupware-plan.md").write_text(render_plan(doc, folder, markdown=True), encoding="utf-8")
    with open(folder / "groupware-unsupported.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "collection", "title", "kind", "detail"])
        for u in doc["unsupported"]:
            w.writerow([u["user"], u["collection"], u["title"], "unsupported", u["reason"]])
        for n in doc["notes"]:
            w.writerow([n["user"], n["collection"], n["title"], "note", n["note"]])
        for s in doc["skipped"]:
            w.writerow([s["user"], s["collection"], "", "skipped", s["reason"]])
    return folder


def render_plan(doc: dict[str, Any], folder: Path, *, markdown: bool = False) -> str:
    t = doc["totals"]
    lines = ["# Groupware plan" if markdown else "groupware plan:",
             f"{t['events']} events/series and {t['contacts']} contacts in {len(doc['collections'])} collections; "
             f"{t['puts']} objects to write ({t['bytes']:,} bytes), {t['unsupported']} cannot be carried, "
             f"{len(doc['notes'])} carried with a note, {len(doc['skipped'])} collections skipped",
             estimate_text(doc.get("estimate") or {})]
    if t.get("attachment_files"):
        lines.insert(2, f"{t['attachment_files']} attachments ({t['attachment_file_bytes']:,} bytes) go to their "
                        "owners' Files, linked from the events: they count against the users' quotas")
    if markdown:
        lines += ["", "| user | kind | collection | target | objects | occurrences | unsupported |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['user']} | {r['kind']} | {r['collection']} | {r['target_user']}/{r['target_uri']} | "
                  f"{r['objects']} | {r['instances']} | {r['unsupported']} |" for r in doc["collections"]]
        lines += ["", "## Cannot be carried", ""] + [f"- {u['user']} / {u['collection']} / {u['title']}: {u['reason']}"
                                                      for u in doc["unsupported"]]
        lines += ["", "## Carried with a change", ""] + [f"- {n['user']} / {n['collection']} / {n['title']}: {n['note']}"
                                                         for n in doc["notes"]]
        lines += ["", "## Skipped collections", ""] + [f"- {s['user']} / {s['collection']}: {s['reason']}"
                                                       for s in doc["skipped"]]
    else:
        lines += [f"  cannot be carried: {u['user']} / {u['collection']} / {u['title']}: {u['reason']}"
                  for u in doc["unsupported"][:20]]
        lines.append(f"reports: {folder}")
    return "\n".join(lines) + "\n"


def estimate_text(e: dict[str, Any]) -> str:
    from migrate.reports.text import human_duration

    rescan, copy = e.get("rescan_seconds_at_outlook_limit"), e.get("copy_seconds")
    if rescan is None and "rescan_minutes_at_outlook_limit" in e:  # a plan stored by an earlier version
        rescan = e["rescan_minutes_at_outlook_limit"] * 60
    if copy is None and "copy_minutes" in e:
        copy = e["copy_minutes"] * 60
    parts = []
    if rescan is not None:
        parts.append(f"a rescan takes at least {human_duration(rescan)} "
                     f"({e['rescan_graph_requests']} Graph requests at Outlook's per-mailbox limit)")
    parts.append(f"copy: about {human_duration(copy)} at the measured {e['copy_objects_per_second_measured']} objects/s"
                 if copy is not None else "copy: no rate measured yet (the first copy measures it)")
    return "estimate: " + "; ".join(parts)


def render_status(data: dict[str, Any]) -> str:
    lines = ["groupware:"]
    for r in data["groupware"]:
        counts = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("user", "kind"))
        lines.append(f"  {r['user']} {r['kind']}: {counts}")
    for p in data["groupware_problems"][:20]:
        lines.append(f"  {p['status']}: {p['upn']} / {p['name']} / {p['title']}: {p['last_error'] or p['notes']}")
    if data.get("groupware_attachments"):
        lines.append("  attachments in Files: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(data["groupware_attachments"].items())))
    if len(lines) == 1:
        lines.append("  nothing scanned yet: run `m365-migrate scan --what calendars,contacts`")
    return "\n".join(lines)


def run_sync_step(g: Any, kinds: tuple[str, ...], user: list[str], workers: int | None, dry_run: bool,
                  json_out: bool) -> int:
    """`sync --what calendars,contacts`: rescan, apply by policy, print; returns the exit code."""
    import contextlib

    import typer

    from migrate.backends.graph import open_source
    from migrate.config import require_settings
    from migrate.connect import close_quietly
    from migrate.engine.groupware.sync import render_sync, sync_groupware
    from migrate.errors import ExitCode
    from migrate.mapping import load_mappings
    from migrate.session import Run, state_for

    g.json = g.json or json_out
    settings = g.settings(**{"transfer.workers": workers})
    require_settings(settings, "source")
    mappings = load_mappings(settings.mappings)
    say = (lambda m: None) if g.quiet or g.json else (lambda m: typer.echo(m, err=True))
    label = "+".join(k + "s" for k in kinds)
    target = None
    if not dry_run:
        from migrate.backends.dav.target import open_dav_target

        target = open_dav_target(settings, need=kinds)
    try:
        with contextlib.ExitStack() as stack:
            # A dry run rescans into a throwaway copy of the state database (as file sync does): no delta link,
            # object row or run record of the real one changes, so the real run finds the same changes.
            state = stack.enter_context(state_for(settings.state_path, f"sync-{label}", dry_run))
            source = stack.enter_context(open_source(settings))
            run = stack.enter_context(Run(state, f"sync-{label}", {"what": list(kinds), "user": user,
                                                                   "dry_run": dry_run}, source=source))
            attach = None
            if not dry_run:
                from migrate.engine.groupware.attach import open_carrier

                attach = open_carrier(settings, run.store, source.client, kinds, stack)
            s = sync_groupware(run.store, source, target, mappings, kinds, deletions=settings.policy.deletions,
                               dry_run=dry_run, upns=tuple(user), workers=workers or settings.transfer.workers,
                               say=say, attach=attach)
            run.summary = {k: v for k, v in s.to_dict().items() if k not in ("new", "changed", "deleted")}
    finally:
        if target is not None:
            close_quietly(target)
    if g.json:
        from migrate.cli import echo_json

        echo_json(s.to_dict())
    else:
        typer.echo(render_sync(s))
    return int(ExitCode.ATTENTION) if s.attention and not dry_run else int(ExitCode.OK)


def status_groupware(store: Any, upns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Objects per user, kind and status, and the problems to look at."""
    per: dict[tuple[str, str], dict[str, int]] = {}
    for r in store.gw_counts(upns):
        if r["status"] is None:
            continue
        per.setdefault((r["upn"], r["kind"]), {})
        per[(r["upn"], r["kind"])][r["status"]] = per[(r["upn"], r["kind"])].get(r["status"], 0) + r["n"]
    return {"groupware": [{"user": u, "kind": k, **v} for (u, k), v in sorted(per.items())],
            "groupware_problems": store.gw_problems(200)}
