"""Groupware throughput: events/s and contacts/s through `scan` and `copy --what calendars,contacts`, Graph requests
per object, time against the Outlook pacing limit, peak RSS.

A sandbox tenant of U mailboxes × E events (30 % recurring) and C contacts is generated; the CLI runs as a child
process against the Graph sandbox and the Nextcloud sandbox (its peak RSS is the child's own VmHWM at exit, as in
inventory_scan.py). The pacing bound is what Outlook allows one app per mailbox: 10,000 requests per 10 minutes
(reference groupware.md §1.4); mailboxes run in parallel, so the bound of a scan is the busiest mailbox's requests
÷ 16.7 per second. Goals (issue 15): scan time ≤ 1.5 × that bound, peak RSS < 150 MB. Events and contacts are scanned and copied
in separate runs (each with its own rate and Graph requests per object); a third scan with nothing changed
measures the delta rescan. Each run also records the CLI's CPU seconds and the sandboxes' (this process) and the
load average, so a run limited by the sandbox or by other work on the machine shows as such (`cpu_per_run`,
`cli_cpu_over_pacing_bound`). `profile` (the py-spy findings) is carried over from the previous result file.
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


CPU: dict[str, dict[str, float]] = {}   # per run: the CLI's CPU seconds, the sandboxes' (this process), load


def run(folder: Path, env: dict[str, str], *args: str) -> tuple[dict, float, int]:
    import resource

    peak = folder / "peak.txt"
    mine, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t = time.monotonic()
    cmd = [sys.executable, "-c", _MEASURED_CLI, "--json", *args]
    spy = os.environ.get("BENCH_PYSPY")   # a folder: each run recorded by py-spy as collapsed stacks
    if spy:
        out = Path(spy) / ("-".join(a.replace(",", "+") for a in args[:3]) + ".txt")
        cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "50",
               "--subprocesses", "-o", str(out), "--", *cmd]
    r = subprocess.run(cmd, cwd=folder, capture_output=True,
                       text=True, env={**env, "BENCH_PEAK_FILE": str(peak)}, timeout=7200)
    secs = time.monotonic() - t
    mine2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[" ".join(args[:3])] = {
        "cli_cpu_seconds": round(kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime, 1),
        "sandbox_cpu_seconds": round(mine2.ru_utime + mine2.ru_stime - mine.ru_utime - mine.ru_stime, 1),
        "load_average": round((load + os.getloadavg()[0]) / 2, 1)}
    if r.returncode not in (0, 3):
        raise SystemExit(f"{args}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{"):])[0], secs, int(peak.read_text()) // 1024


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
        w = str(users)
        cal, cal_s, cal_rss = run(folder, env, "scan", "--what", "calendars", "--workers", w)
        con, con_s, con_rss = run(folder, env, "scan", "--what", "contacts", "--workers", w)
        # a rescan with nothing changed: delta rounds per calendar and contact folder (default folder in full)
        re_, re_s, re_rss = run(folder, env, "scan", "--what", "calendars,contacts", "--workers", w)
        plan, plan_s, plan_rss = run(folder, env, "plan", "--what", "calendars,contacts")
        ccal, ccal_s, ccal_rss = run(folder, env, "copy", "--what", "calendars", "--workers", "4")
        ccon, ccon_s, ccon_rss = run(folder, env, "copy", "--what", "contacts", "--workers", "4")
        n_events, n_contacts = cal["events"], con["contacts"]

        def scan_fig(d: dict, secs: float, rss: int, n: int, what: str, cpu: dict[str, float]) -> dict:
            per_mailbox = d["requests"] / max(1, d["mailboxes"])
            bound = per_mailbox / LIMIT_PER_SECOND
            return {"seconds": round(secs, 1), what: n, f"{what}_per_second": round(n / secs, 1),
                    "graph_requests": d["requests"], f"graph_requests_per_{what[:-1]}": round(d["requests"] / n, 3),
                    "requests_per_mailbox": round(per_mailbox), "pacing_bound_seconds": round(bound, 1),
                    "seconds_over_pacing_bound": round(secs / bound, 3) if bound else None, "peak_rss_mb": rss,
                    **cpu, "cli_cpu_over_pacing_bound": round(cpu["cli_cpu_seconds"] / bound, 3) if bound else None}

        scans = {"events": scan_fig(cal, cal_s, cal_rss, n_events, "events", CPU["scan --what calendars"]),
                 "contacts": scan_fig(con, con_s, con_rss, n_contacts, "contacts", CPU["scan --what contacts"])}
        both_s = cal_s + con_s
        both_bound = scans["events"]["pacing_bound_seconds"] + scans["contacts"]["pacing_bound_seconds"]
        result = {
            "tenant": {"mailboxes": users, "events_per_mailbox": n_events // max(1, users),
                       "contacts_per_mailbox": n_contacts // max(1, users), "recurring_share": 0.3,
                       "generate_seconds": round(generate, 1)},
            "scan": {**scans, "seconds_over_pacing_bound": round(both_s / both_bound, 3) if both_bound else None},
            "rescan_delta_no_changes": {"seconds": round(re_s, 1), "graph_requests": re_["requests"],
                                        "graph_requests_per_object": round(re_["requests"] / (n_events + n_contacts), 4),
                                        "changed": re_["changed"], "peak_rss_mb": re_rss},
            "plan": {"seconds": round(plan_s, 1), "peak_rss_mb": plan_rss, "unsupported": plan["totals"]["unsupported"]},
            "copy": {"events": {"seconds": round(ccal_s, 1), "created": ccal["created"],
                                "events_per_second": round(ccal["created"] / ccal_s, 1),
                                "dav_requests": ccal["requests"], "failed": len(ccal["failed"]), "peak_rss_mb": ccal_rss},
                     "contacts": {"seconds": round(ccon_s, 1), "created": ccon["created"],
                                  "contacts_per_second": round(ccon["created"] / ccon_s, 1),
                                  "dav_requests": ccon["requests"], "failed": len(ccon["failed"]),
                                  "peak_rss_mb": ccon_rss}},
            "invitations_sent": len(nc.app.groupware.mails), "deliveries": len(nc.app.groupware.deliveries),
            "goals": {"scan_within_1.5x_pacing_bound": bool(both_bound) and both_s <= 1.5 * both_bound,
                      "peak_rss_below_150_mb": max(cal_rss, con_rss, re_rss, plan_rss, ccal_rss, ccon_rss) < 150},
            "machine": {"cpus": os.cpu_count()},
            "cpu_per_run": CPU,
            "note": "the sandbox does not throttle: the bound is the least time a real tenant's Outlook limit allows",
        }
        prev = RESULTS / "groupware.json"
        if prev.exists():
            result["profile"] = json.loads(prev.read_text()).get("profile")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "groupware.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
