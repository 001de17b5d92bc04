"""The CLI fixes glibc's mmap threshold, so multi-MiB buffers freed during a transfer go back to the OS."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and mallinfo2 are glibc's")

# After a 4 MiB block is freed, glibc raises its threshold to 4 MiB unless it was fixed: the next 2 MiB buffer
# then comes from the arena (and stays in the RSS once freed) instead of its own mmap. mallinfo2().hblkhd is the
# number of bytes held in mmapped blocks.
_PROBE = """
import ctypes, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "cli":
    import migrate.cli  # noqa: F401
first = bytearray(4 << 20)
del first
second = bytearray(2 << 20)
print(libc.mallinfo2().hblkhd)
"""


def _mmapped_after_free(mode: str) -> int:
    r = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(r.stdout.strip())


def test_cli_import_keeps_large_buffers_mmapped() -> None:
    assert _mmapped_after_free("cli") >= 2 << 20


def test_probe_sees_glibc_raise_its_threshold_without_the_fix() -> None:
    assert _mmapped_after_free("plain") < 2 << 20


def test_fix_reports_success_on_glibc() -> None:
    from migrate.transport.heap import fix_mmap_threshold

    assert fix_mmap_threshold() is True
