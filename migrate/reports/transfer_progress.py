"""tqdm rendering of copy progress: one bar of bytes (rate, ETA) and one of files, fed by the Accounting object."""

from __future__ import annotations

import threading
from typing import Any


class CopyProgress:
    """Listener for `engine.accounting.Accounting`; disabled bars cost nothing."""

    def __init__(self, *, enabled: bool = True) -> None:
        from tqdm import tqdm

        from migrate.reports.progress import on_terminal

        enabled = enabled and on_terminal()  # two redrawn bars only where a terminal redraws them
        self._lock = threading.Lock()
        self.bytes = tqdm(total=0, desc="bytes", unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled,
                          position=0, dynamic_ncols=True)
        self.files = tqdm(total=0, desc="files", unit=" files", disable=not enabled, position=1, dynamic_ncols=True)
        self.failed = 0

    def __call__(self, what: str, n: int) -> None:
        with self._lock:
            if what == "total":
                self.bytes.total = (self.bytes.total or 0) + n
                self.bytes.refresh()
            elif what == "bytes":
                self.bytes.update(n)
            elif what == "file":
                self.files.update(n)
            elif what == "failed":
                self.failed += n
                self.files.set_postfix(failed=self.failed)

    def set_files(self, total: int) -> None:
        self.files.total = total
        self.files.refresh()

    def close(self) -> None:
        self.bytes.close()
        self.files.close()


def render_copy(summary: Any) -> str:
    """The end-of-copy summary for the terminal."""
    from migrate.reports.text import human_bytes

    rate = summary.bytes_sent / summary.seconds if summary.seconds > 0 else 0
    lines = [
        f"copied and verified {summary.files_verified} files, {human_bytes(summary.bytes_sent)} in "
        f"{summary.seconds:.1f} s ({human_bytes(rate)}/s) from {summary.drives} drives",
    ]
    lines += adopted_lines(getattr(summary, "adopted", None) or {})
    if summary.resumed_verified or summary.resumed_resent:
        lines.append(f"resumed: {summary.resumed_verified} files found whole at the target, "
                     f"{summary.resumed_resent} interrupted files sent again")
    if summary.resumed_bytes:
        lines.append(f"resumed uploads: {human_bytes(summary.resumed_bytes)} already on the target were not sent "
                     "again (those files were read back and checked whole)")
    if summary.not_planned:
        lines.append(f"not copied by plan: {summary.not_planned} files (see the plan report for why)")
    if summary.failed:
        lines.append(f"failed: {len(summary.failed)} files:")
        lines += [f"  {f['path']}: {f['error']}" for f in summary.failed[:50]]
        if len(summary.failed) > 50:
            lines.append(f"  … and {len(summary.failed) - 50} more (`m365-migrate status` lists them)")
        lines.append("next: fix the cause shown, then run `m365-migrate copy` again (it sends only what is missing)")
    else:
        lines.append("next: `m365-migrate verify` re-checks everything at the target")
    return "\n".join(lines)


def adopted_lines(a: dict[str, Any]) -> list[str]:
    """What adoption did (engine.adopt): files already at the target recorded without sending, and the others."""
    from migrate.reports.text import human_bytes

    lines = []
    if a.get("files"):
        how = ", ".join(f"{n} by {why}" for why, n in sorted(a["how"].items(), key=lambda kv: -kv[1]))
        lines.append(f"already at the target, recorded without sending: {a['files']} files, "
                     f"{human_bytes(a['bytes'])} (no Graph request; {how}; {human_bytes(a['read_bytes'])} read back "
                     "from the target)")
        if a.get("mtimes_set"):
            lines.append(f"  modification times set at the target without rewriting: {a['mtimes_set']} files")
    for why, n in sorted((a.get("not_adopted") or {}).items()):
        lines.append(f"at the target but sent again: {n} files ({why})")
    if a.get("conflict_count"):
        lines.append(f"at the target with the same size but other content: {a['conflict_count']} files")
        lines += [f"  {c['target']}: {c['problem']} ({c['action']})" for c in a["conflicts"][:20]]
        if a["conflict_count"] > 20:
            lines.append(f"  … and {a['conflict_count'] - 20} more (`m365-migrate status` lists conflicts)")
    return lines
