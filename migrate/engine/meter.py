"""A command's Graph meter: the budget it paces to (set up as the run starts) and the books it leaves with the run.

The budget is the tenant's per-app resource-unit budget (configured, or found from the licences) times
`[source] ru_share`; what earlier runs spent in the last 24 hours (their books are kept with each run) is taken off
the day's allowance, so a second command the same day does not start from a full day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from migrate.transport.budget import Budget, BudgetLimits

log = logging.getLogger(__name__)


def start(store: Any, source: Any, settings: Any) -> Budget | None:
    """Resolve the budget for `source` (a GraphSource) and make its pacer draw on it; None for other sources."""
    pacer, client = getattr(source, "pacer", None), getattr(source, "client", None)
    if pacer is None or client is None or settings is None:
        return None
    from migrate.backends.graph.licences import tenant_budget

    found = tenant_budget(client, per_minute=settings.ru_per_minute, per_day=settings.ru_per_day)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)).isoformat(timespec="microseconds")
    spent = store.ru_spent_since(since)
    limits = BudgetLimits(found.per_minute, found.per_day, settings.ru_share, spent, found.source)
    budget = Budget(limits, sleep=pacer._sleep)  # noqa: SLF001 - one sleep for every wait of the pacer
    pacer.budget = budget
    log.info("Graph budget: %s RU/min and %s RU/24 h (%s), this tool spends %.0f%%; %s RU spent in the last 24 h",
             f"{found.per_minute:,}", f"{found.per_day:,}", found.source, settings.ru_share * 100, f"{spent:,.0f}")
    return budget


def books(source: Any, budget: Budget | None, files: int | None) -> dict[str, Any]:
    """What this command cost at Graph, for its run record, summaries, `status` and `--json`."""
    client = getattr(source, "client", None)
    if client is None:
        return {}
    out = client.books.snapshot()
    if files:
        out["files"] = files
        out["ru_per_file"] = round(out["ru"] / files, 3)
    if budget is not None:
        lim = budget.limits
        out["budget"] = {"ru_per_minute": lim.per_minute, "ru_per_day": lim.per_day, "share": lim.share,
                         "from": lim.source, "waited_s": round(budget.waited, 1)}
        if lim.day_allowance:
            out["budget"]["day_used"] = round((lim.spent_today + out["ru"]) / lim.per_day, 4)
    return out


def announce(budget: Budget | None, ru: float, say: Callable[[str], None]) -> None:
    """Say at the start when the work ahead needs more than what is left of the 24-hour budget, and how long."""
    if budget is None or ru <= 0:
        return
    lim = budget.limits
    left = budget.day_left
    minutes = ru / lim.minute_rate if lim.minute_rate else 0.0
    if left is not None and ru > left:
        allowance = lim.day_allowance or 1.0
        days = (ru - left) / allowance + (1 if left else 0)
        say(f"this work needs about {ru:,.0f} RU; {left:,.0f} of the 24-hour budget ({lim.per_day:,} × "
            f"{lim.share:g}) is left: it will be paced to the daily budget and take about {days:.1f} days "
            "(run it in parts with --batch, or raise [source] ru_per_day if Microsoft granted more)")
    elif minutes >= 1:
        say(f"this work needs about {ru:,.0f} RU: at least {minutes:,.0f} min at {lim.minute_rate:,.0f} RU/min "
            f"({lim.per_minute:,} × {lim.share:g})")


def graph_line(books: dict[str, Any]) -> str:
    """One line of a command's end summary: what it cost at Graph."""
    if not books:
        return ""
    text = f"Graph: {books.get('requests', 0):,} requests, {books.get('ru', 0):,} resource units"
    if books.get("ru_per_file") is not None:
        text += f" ({books['ru_per_file']:.2f} per file)"
    if books.get("throttled"):
        text += f", {books['throttled']} answered 429/503"
    b = books.get("budget") or {}
    if b:
        text += f"; budget {b['ru_per_minute']:,} RU/min × {b['share']:g}"
        if b.get("day_used") is not None:
            text += f", {b['day_used']:.1%} of the 24-hour budget used"
        if b.get("waited_s"):
            text += f", paced {b['waited_s']:.0f} s"
    return text


def status_view(store: Any) -> dict[str, Any]:
    """What `status` says about Graph cost: spent in the last 24 hours against the day's budget, and per run."""
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)).isoformat(timespec="microseconds")
    spent = store.ru_spent_since(since)
    out: dict[str, Any] = {"ru_last_24h": round(spent), "runs": []}
    import json

    for r in store.runs(limit=20):
        try:
            g = (json.loads(r["summary"] or "{}") or {}).get("graph") or {}
        except ValueError:
            continue
        if not g:
            continue
        out["runs"].append({"id": r["id"], "command": r["command"], "started_at": r["started_at"], "ru": g.get("ru"),
                            "requests": g.get("requests"), "ru_per_file": g.get("ru_per_file"),
                            "throttled": g.get("throttled")})
        b = g.get("budget") or {}
        if b and "budget" not in out:
            out["budget"] = {"ru_per_minute": b.get("ru_per_minute"), "ru_per_day": b.get("ru_per_day"),
                             "share": b.get("share"), "from": b.get("from")}
            if b.get("ru_per_day"):
                out["day_used"] = round(spent / b["ru_per_day"], 4)
    copies = [x for x in out["runs"] if x["command"] in ("copy", "sync", "cutover") and x.get("ru_per_file")]
    if copies:
        out["last_ru_per_file"] = copies[0]["ru_per_file"]
    return out
