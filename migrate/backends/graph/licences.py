"""The app's SharePoint budget: from the configuration, else from the tenant's licence count, else the lowest band.

Microsoft sizes the per-app resource-unit budget by the tenant's licences (reference peers.md, graph-api.md §8.3):
up to 1,000 licences 1,250 RU per minute and 1.2 M per 24 hours, 1,001–5,000 licences 2,500 and 2.4 M. The bands
above 5,000 licences (3,750 / 5,000 / 6,250 per minute, the day figures in proportion) follow the published
ladder "rising to 6,250 RU/min for 50k+" and are the least certain part: set `[source] ru_per_minute` and
`ru_per_day` when Microsoft names other figures for the tenant.

The licences are read from `GET /subscribedSkus` (application permission LicenseAssignment.Read.All; older pages
name Organization.Read.All; Directory.Read.All also works): the enabled units of the SKUs that carry a SharePoint
service plan. A tenant whose people hold two such SKUs each is counted high; the configuration overrides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from migrate.errors import AuthError, EndpointUnreachable, MigrateError, SignInRefused

log = logging.getLogger(__name__)

# (licences up to, RU per minute, RU per 24 hours)
BANDS: tuple[tuple[float, int, int], ...] = (
    (1_000, 1_250, 1_200_000),
    (5_000, 2_500, 2_400_000),
    (15_000, 3_750, 3_600_000),
    (50_000, 5_000, 4_800_000),
    (float("inf"), 6_250, 6_000_000),
)
LOWEST = BANDS[0]


@dataclass(frozen=True, slots=True)
class TenantBudget:
    per_minute: int
    per_day: int
    licences: int | None
    source: str   # in words: where the figures come from


def band(licences: int) -> tuple[int, int]:
    for upto, minute, day in BANDS:
        if licences <= upto:
            return minute, day
    return BANDS[-1][1], BANDS[-1][2]  # pragma: no cover - the last band has no upper end


def count_licences(skus: list[dict[str, Any]]) -> int:
    """Enabled units of the SKUs that include SharePoint (all enabled user SKUs when none lists its plans)."""
    enabled = [s for s in skus if str(s.get("capabilityStatus") or "Enabled") in ("Enabled", "Warning")
               and str(s.get("appliesTo") or "User") == "User"]

    def units(s: dict[str, Any]) -> int:
        return int(((s.get("prepaidUnits") or {}).get("enabled")) or 0)

    with_plans = [s for s in enabled if s.get("servicePlans")]
    sharepoint = [s for s in with_plans if any(str(p.get("servicePlanName") or "").upper().startswith("SHAREPOINT")
                                               for p in s.get("servicePlans") or ())]
    return sum(units(s) for s in (sharepoint if with_plans else enabled))


def tenant_budget(client: Any, *, per_minute: int = 0, per_day: int = 0) -> TenantBudget:
    """The budget for this tenant; configured figures win, each on its own."""
    licences: int | None = None
    found = ""
    if not (per_minute and per_day):
        try:
            data = client.get_json("subscribedSkus", params={
                "$select": "skuPartNumber,capabilityStatus,appliesTo,prepaidUnits,servicePlans"},
                kind="licences", what="licence count (subscribedSkus)")
            licences = count_licences(list(data.get("value") or ()))
            found = f"{licences:,} licences"
        except (AuthError, MigrateError) as exc:
            if isinstance(exc, SignInRefused | EndpointUnreachable):
                raise   # not a missing permission: nothing at Graph works, the command says so once
            found = ("the licence count could not be read (" + str(exc).splitlines()[0][:120] + "; grant "
                     "LicenseAssignment.Read.All, or set [source] ru_per_minute and ru_per_day): lowest band")
            log.info("%s", found)
    minute, day = band(licences) if licences else (LOWEST[1], LOWEST[2])
    parts = []
    if per_minute:
        minute, parts = per_minute, [*parts, "ru_per_minute from the configuration"]
    if per_day:
        day, parts = per_day, [*parts, "ru_per_day from the configuration"]
    if not (per_minute and per_day):
        parts.append(found or "lowest band")
    return TenantBudget(minute, day, licences, "; ".join(parts))
