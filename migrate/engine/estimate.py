"""How long a copy takes and what it costs at Graph, from the cost model and the tenant's budget.

In a real tenant the clock of a migration out of SharePoint is the per-app resource-unit budget, not our CPU: a
copy spends about one RU per file (the download; URLs come many to a listing page), so its duration is at least
its RU divided by the minute budget we pace to, and a copy larger than what is left of the 24-hour budget runs
at the daily rate. Microsoft's egress limit (400 GB/h per app) bounds large files, and a throughput measured by
an earlier copy bounds everything else. The largest of these is the estimate.

The RU per file is the one the last copy measured (its books are kept with the run), else the model's: one for the
download and one delta page per drive for the URLs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EGRESS_BYTES_PER_H = 400 * 10**9
RU_PERMISSIONS = 5
URL_PAGE = 999                 # items per delta page when a pass only lends download URLs
FINAL_SYNC_CHANGE = 0.01       # share of a batch's files the final sync carries (a day of changes)


@dataclass(frozen=True, slots=True)
class PlanBudget:
    """The budget figures a plan works with: from the configuration, else what the last Graph run found."""

    per_minute: float = 1_250
    per_day: float = 1_200_000
    share: float = 0.8
    source: str = "lowest band (no Graph run has found the tenant's licences yet)"
    ru_per_file: float | None = None      # measured by the last copy or sync
    switchover_hours: float = 8.0

    @property
    def minute_rate(self) -> float:
        return self.per_minute * self.share

    @property
    def day_allowance(self) -> float:
        return self.per_day * self.share


def plan_budget(settings_source: Any, graph_status: dict[str, Any] | None) -> PlanBudget:
    """The configured figures win; else those the last Graph run resolved (licences); else the lowest band."""
    found = (graph_status or {}).get("budget") or {}
    minute = getattr(settings_source, "ru_per_minute", 0) or found.get("ru_per_minute") or 1_250
    day = getattr(settings_source, "ru_per_day", 0) or found.get("ru_per_day") or 1_200_000
    configured = bool(getattr(settings_source, "ru_per_minute", 0) or getattr(settings_source, "ru_per_day", 0))
    source = ("the configuration" if configured else f"the last Graph run: {found['from']}" if found.get("from")
              else PlanBudget.source)
    return PlanBudget(float(minute), float(day), float(getattr(settings_source, "ru_share", 0.8) or 0.8), source,
                      (graph_status or {}).get("last_ru_per_file"),
                      float(getattr(settings_source, "switchover_hours", 8.0) or 8.0))


def ru_bound_seconds(ru: float, b: PlanBudget) -> float:
    """Seconds of budget `ru` needs: at the minute rate while within the day's allowance, at the daily rate past it."""
    if ru <= 0:
        return 0.0
    if ru <= b.day_allowance:
        return ru / b.minute_rate * 60
    return b.day_allowance / b.minute_rate * 60 + (ru - b.day_allowance) / b.day_allowance * 86400


def copy_estimate(files: int, bytes_: int, shared_items: int, measured_bps: float | None, *, budget: PlanBudget,
                  drives: int = 1) -> dict[str, Any]:
    """Duration and Graph cost of copying `files`/`bytes_` of `drives` drives, honest about its basis."""
    per_file = budget.ru_per_file if budget.ru_per_file else 1.0
    url_ru = 0.0 if budget.ru_per_file else (2 * drives + max(0, math.ceil(files / URL_PAGE) - drives)) if files else 0
    ru = math.ceil(files * per_file + url_ru)
    ru_s = ru_bound_seconds(ru, budget)
    egress_s = bytes_ / EGRESS_BYTES_PER_H * 3600
    graph_bound_s = max(ru_s, egress_s) if files else 0.0
    days = ru / budget.day_allowance if budget.day_allowance else 0.0
    sync_ru = drives + math.ceil(files * FINAL_SYNC_CHANGE * per_file)
    sync_s = ru_bound_seconds(sync_ru, budget)
    out: dict[str, Any] = {
        "files": files, "bytes": bytes_, "graph_requests": files + (0 if budget.ru_per_file else int(url_ru)),
        "download_requests": files, "permission_reads": shared_items, "resource_units": ru, "download_ru": files,
        "permission_ru": shared_items * RU_PERMISSIONS, "ru_per_file": round(ru / files, 3) if files else 0.0,
        "graph_bound_seconds": round(graph_bound_s, 1), "budget_minutes": round(ru_s / 60, 1),
        "budget_days": round(days, 2),
        "budget": {"ru_per_minute": budget.per_minute, "ru_per_day": budget.per_day, "share": budget.share,
                   "from": budget.source},
        "final_sync": {"ru": sync_ru, "seconds": round(sync_s, 1), "window_hours": budget.switchover_hours,
                       "fits": sync_s <= budget.switchover_hours * 3600,
                       "assumption": f"{FINAL_SYNC_CHANGE:.0%} of the files changed since the last sync"},
    }
    limits = (f"{budget.per_minute:,.0f} RU/min × {budget.share:g} and {budget.per_day:,.0f} RU/24 h from "
              f"{budget.source}; {per_file:.2f} RU per file ("
              + ("measured by the last copy" if budget.ru_per_file else "the model: the download, URLs by listing")
              + f"); {EGRESS_BYTES_PER_H // 10**9} GB/h egress")
    if measured_bps:
        s = bytes_ / measured_bps if measured_bps > 0 else 0.0
        out.update(seconds=round(max(s, graph_bound_s), 1), basis="measured",
                   assumption=f"measured copy throughput {measured_bps / 1e6:.1f} MB/s (median of earlier copy "
                              f"runs), never faster than the Graph budget: {limits}")
    else:
        out.update(seconds=round(graph_bound_s, 1), basis="graph-limits",
                   assumption="no copy has been measured yet: this is the LOWER BOUND set by the Graph budget ("
                              f"{limits}); real runs take longer. Copy a pilot batch to measure.")
    if ru > budget.day_allowance:
        out["warning"] = (f"needs {ru:,} RU, more than the {budget.day_allowance:,.0f} RU of a 24-hour budget: "
                          f"about {days:.1f} days of budget")
    return out
