"""Mail copy throughput and memory: `copy --what mail` from the Graph sandbox into a real Dovecot 2.3 on loopback.

A sandbox tenant of U mailboxes (each Inbox with M generated messages besides the hand-made nasty ones, the first
user's with a `--large-mb` message) is scanned, then copied by the CLI as a child process (its peak RSS is its own
VmHWM at exit, as in inventory_scan.py). The bound is Outlook's request limit per app and mailbox: 10,000 requests
per 10 minutes, i.e. 16.7 MIME exports per second per mailbox (the pacer keeps 5 % below it); mailboxes run in
parallel, so the copy's bound is the busiest mailbox's messages ÷ that rate. Reported: messages/s per mailbox and
in total, time against the bound, Graph requests and SharePoint resource units per message (the copy runs under
the tenant's budget like every command; mail is an Outlook resource, 0 RU), peak RSS with the large message in flight (goal
< 150 MB whatever the message size), and a rerun's time (nothing to send). Writes benchmarks/results/mail_copy.json.
Usage: .venv/bin/python benchmarks/mail_copy.py [--users 4] [--messages 150] [--large-mb 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from inventory_scan import _MEASURED_CLI  # noqa: E402 - the CLI run with its peak RSS written at exit

RESULTS = ROOT / "benchmarks" / "results"
OUTLOOK_PER_SECOND = 10_000 / 600


def _cli(folder: Path, env: dict[str, str], *args: str) -> tuple[dict, float, int]:
    peak = folder / "peak.txt"
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _MEASURED_CLI, "-q", "--json", *args], cwd=folder, capture_output=True,
                       text=True, env={**env, "BENCH_PEAK_FILE": str(peak)}, timeout=7200)
    secs = time.monotonic() - t
    if r.returncode not in (0, 3):
        raise SystemExit(f"{args}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout[r.stdout.index("{"):]), secs, int(peak.read_text()) // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--messages", type=int, default=150)
    ap.add_argument("--large-mb", type=int, default=50)
    args = ap.parse_args()

    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    from tests.copy_support import write_users
    from tests.dovecot_support import MASTER_PASSWORD, MASTER_USER, remove, start_dovecot
    from tests.inventory_support import write_config

    spec = TenantSpec(seed=5, users=args.users, sites=0, teams=0, files_per_drive=1, no_mysite_users=0,
                      groupware_events=0, groupware_contacts=0, mail_messages=args.messages,
                      mail_large_mb=args.large_mb)
    dovecot = start_dovecot()
    try:
        with GraphSandbox(spec) as g, tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
            work = Path(tmp)
            env = write_config(work, g, workers=args.users)
            cfg = work / "m365-migrate.toml"
            cfg.write_text(cfg.read_text() + f'\n[mail]\nurl = "{dovecot.settings().url}"\nmaster_user = '
                           f'"{MASTER_USER}"\nconnections = 4\n')
            env["M365_MIGRATE_IMAP_MASTER_PASSWORD"] = MASTER_PASSWORD
            env["PYTHONPATH"] = str(ROOT)
            subprocess.run([sys.executable, "-c", _MEASURED_CLI, "-q", "discover"], cwd=work, check=True,
                           env={**env, "BENCH_PEAK_FILE": str(work / "p")}, capture_output=True)
            upns = sorted(u.upn for u in g.tenant.users)
            write_users(work, {u: dovecot.fresh_user() for u in upns})
            scan, scan_s, scan_rss = _cli(work, env, "scan", "--what", "mail")
            copy, copy_s, copy_rss = _cli(work, env, "copy", "--what", "mail")
            again, again_s, _ = _cli(work, env, "copy", "--what", "mail")
            import sqlite3

            db = sqlite3.connect(work / "state" / "migration.db")
            per_box = [n for (n,) in db.execute(
                "SELECT COUNT(*) FROM mail_messages WHERE status='done' GROUP BY user_id")]
            # the copy's Graph books as its run kept them: RU of the tenant's SharePoint budget (the copy paced to
            # it as every command does) beside Outlook's per-mailbox requests
            (summary,) = db.execute("SELECT summary FROM runs WHERE command='copy-mail' ORDER BY id LIMIT 1").fetchone()
            graph = json.loads(summary).get("graph") or {}
    finally:
        remove(dovecot)
    busiest = max(per_box)
    bound = busiest / (OUTLOOK_PER_SECOND * 0.95)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mailboxes": args.users, "messages": copy["appended"], "bytes": copy["bytes"],
        "large_message_mb": args.large_mb,
        "scan": {"seconds": round(scan_s, 1), "graph_requests": scan["requests"], "peak_rss_mb": scan_rss},
        "copy": {"seconds": round(copy_s, 1), "engine_seconds": copy["seconds"], "graph_requests": copy["requests"],
                 "graph_requests_per_message": round(copy["requests"] / max(1, copy["appended"]), 2),
                 "messages_per_second": round(copy["appended"] / copy["seconds"], 1),
                 "messages_per_second_per_mailbox": round(busiest / copy["seconds"], 1),
                 "megabytes_per_second": round(copy["bytes"] / copy["seconds"] / 1e6, 1),
                 "peak_rss_mb": copy_rss,
                 "resource_units": graph.get("ru"),
                 "resource_units_per_message": round((graph.get("ru") or 0) / max(1, copy["appended"]), 3),
                 "budget": graph.get("budget")},
        "outlook_bound": {"per_mailbox_messages_per_second": round(OUTLOOK_PER_SECOND, 1),
                          "pacer_messages_per_second": round(OUTLOOK_PER_SECOND * 0.95, 1),
                          "busiest_mailbox_messages": busiest, "bound_seconds": round(bound, 1),
                          "copy_over_bound": round(copy["seconds"] / bound, 2)},
        "rerun": {"seconds": round(again_s, 1), "appended": again["appended"], "graph_requests": again["requests"]},
        "goals": {"peak_rss_mb": "< 150 with a large message in flight", "copy_over_bound": "close to 1.0"},
        "machine": {"cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mail_copy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
