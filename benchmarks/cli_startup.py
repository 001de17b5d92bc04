"""How long `m365-migrate --help` takes (goal < 0.5 s); figures to benchmarks/results/cli_startup.json."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(runs: int = 15) -> dict:
    exe = Path(sys.executable).with_name("m365-migrate")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    result = {
        "benchmark": "cli_startup",
        "command": "m365-migrate --help",
        "runs": runs,
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "goal_s": 0.5,
        "meets_goal": statistics.median(times) < 0.5,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
