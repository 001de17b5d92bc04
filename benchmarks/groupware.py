"""Groupware throughput: events/s and contacts/s through `scan` and `copy --what calendars,contacts`, Graph requests
per object, time against the Outlook pacing limit, peak RSS.

A sandbox tenant of U mailboxes × E events (30 % recurring) and C contacts is generated; the CLI runs as a child
process against the Graph sandbox and the Nextcloud sandbox (its peak RSS is the child's own VmHWM at exit, as in
inventory_scan.py). The pacing bound is what Outlook allows one app per mailbox: 10,000 requests per 10 minutes
(reference groupware.md §1.4); mailboxes run in parallel, so the bound of a scan is the busiest mailbox's requests
÷ 16.7 per second. Goals (issue 15): scan time ≤ 1.5 × that bound, peak RSS < 150 MB.
Figures go to benchmarks/results/groupware.json. Usage: .venv/bin/python benchmarks/groupware.py [users events contacts]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inventory_scan import _MEASURED_CLI  # noqa: E402 - the CLI run with its peak RSS written at exit

RESULTS = Path(__file__).parent / "results"
LIMIT_PER_SECOND = 10_000 / 600     # Outlook: 10,000 requests per 10 minutes per app and mailbox


def run(folder: Path, env: dict[str, str], *args: str) -> tuple[dict, float, int]:
    peak = folder / "peak.txt"
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _MEASURED_CLI, "--json", *args], cwd=folder, capture_output=True,
                       text=True, env={**env, "BENCH_PEAK_FILE": str(peak)}, timeout=7200)
    secs = time.monotonic() - t
    if r.returncode not in (0, 3):
        raise SystemExit(f"{args}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout[r.stdout.index("{"):]), secs, int(peak.read_text()) // 1024


def main() -> None:
    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    from migrate.sandbox.nextcloud import NextcloudSandbox
    from tests.copy_support import nextcloud_target, write_users
    from tests.inventory_support import write_config

    users, events, contacts = (int(a) for a in (sys.argv[1:4] if len(sys.argv) >= 4 else (10, 2000, 1000)))
    spec = TenantSpec(seed=99, users=users, sites=0, teams=0, files_per_drive=1, max_depth=1, no_mysite_users=0,
                      malware_files=0, onenote=False, shares=False, versions=False, groupware_events=events,
                      groupware_recurring=0.3, groupware_contacts=contacts, groupware_attachment_kb=64)
    targets = [f"u{i:02d}" for i in range(users)]
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmpdir, GraphSandbox(spec) as g, \
            NextcloudSandbox(users=targets) as nc:
        folder = Path(tmpdir)
        t = time.monotonic()
        for u in g.tenant.users:
            g.call(g.groupware.mailbox, u)       # generate the mailboxes before timing
        generate = time.monotonic() - t
        env = write_config(folder, g, workers=users)
        cfg = folder / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + "\n[target]\n" + nextcloud_target(folder, nc))
        r = subprocess.run([str(Path(sys.executable).with_name("m365-migrate")), "discover"], cwd=folder, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        write_users(folder, {u.upn: t for u, t in zip(sorted(g.tenant.users, key=lambda x: x.upn), targets,
                                                     strict=True)})
        scan, scan_s, scan_rss = run(folder, env, "scan", "--what", "calendars,contacts", "--workers", str(users))
        per_mailbox = scan["requests"] / max(1, scan["mailboxes"])
        bound = per_mailbox / LIMIT_PER_SECOND
        plan, plan_s, plan_rss = run(folder, env, "plan", "--what", "calendars,contacts")
        copy, copy_s, copy_rss = run(folder, env, "copy", "--what", "calendars,contacts", "--workers", "4")
        n_events, n_contacts = scan["events"], scan["contacts"]
        result = {
            "tenant": {"mailboxes": users, "events_per_mailbox": n_events // max(1, users),
                       "contacts_per_mailbox": n_contacts // max(1, users), "recurring_share": 0.3,
                       "generate_seconds": round(generate, 1)},
            "scan": {"seconds": round(scan_s, 1), "events": n_events, "contacts": n_contacts,
                     "objects_per_second": round((n_events + n_contacts) / scan_s, 1),
                     "graph_requests": scan["requests"],
                     "graph_requests_per_event_and_contact": round(scan["requests"] / (n_events + n_contacts), 3),
                     "requests_per_mailbox": round(per_mailbox),
                     "pacing_bound_seconds": round(bound, 1),
                     "seconds_over_pacing_bound": round(scan_s / bound, 3) if bound else None,
                     "peak_rss_mb": scan_rss},
            "plan": {"seconds": round(plan_s, 1), "peak_rss_mb": plan_rss, "unsupported": plan["totals"]["unsupported"]},
            "copy": {"seconds": round(copy_s, 1), "created": copy["created"], "failed": len(copy["failed"]),
                     "objects_per_second": round(copy["created"] / copy_s, 1), "dav_requests": copy["requests"],
                     "peak_rss_mb": copy_rss},
            "invitations_sent": len(nc.app.groupware.mails), "deliveries": len(nc.app.groupware.deliveries),
            "goals": {"scan_within_1.5x_pacing_bound": bool(bound) and scan_s <= 1.5 * bound,
                      "peak_rss_below_150_mb": max(scan_rss, plan_rss, copy_rss) < 150},
            "machine": {"cpus": os.cpu_count()},
            "note": "the sandbox does not throttle: the bound is the least time a real tenant's Outlook limit allows",
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "groupware.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
