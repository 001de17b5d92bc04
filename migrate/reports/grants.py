"""The list of source grants not carried over (with the reason), as CSV + JSON beside the other reports.

One file name in one place, so `plan`, `share`, `status` and a cutover report all point at the same list.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from migrate.engine.shares.plan import NOT_CARRIED_COLUMNS

FILE_NAME = "grants-not-carried-over.csv"


def report_path(reports_dir: Path) -> Path:
    """Where `plan` and `share` keep the current list (the state folder's reports/)."""
    return Path(reports_dir) / FILE_NAME


def write_not_carried_over(rows: Iterable[dict[str, Any]], reports_dir: Path) -> Path:
    """Write the list (rows of shareplan.grants_not_carried_over) as CSV and JSON, replacing the previous one
    atomically; returns the CSV's path."""
    from migrate.reports.plan import _csv_safe

    path = report_path(reports_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = list(rows)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(NOT_CARRIED_COLUMNS)
        for r in data:
            w.writerow([_csv_safe(r.get(c)) for c in NOT_CARRIED_COLUMNS])
    tmp.replace(path)
    jtmp = path.with_suffix(".json.tmp")
    jtmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    jtmp.replace(path.with_suffix(".json"))
    return path


def by_category(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """{category: number of grants}, largest first."""
    return dict(Counter(r["category"] for r in rows).most_common())
