"""Nextcloud 32 file-name rules as the sandbox enforces them (reference §5.1, §5.2, §5.3)."""

from __future__ import annotations

import unicodedata

FORBIDDEN_FILENAMES = [".htaccess"]
FORBIDDEN_BASENAMES: list[str] = []
FORBIDDEN_CHARACTERS = ["\\", "/"]          # published; 0-31 are enforced but not published (§5.1)
FORBIDDEN_EXTENSIONS = [".filepart", ".part"]
MAX_NAME_BYTES = 250


def nfc(text: str) -> str:
    """Nextcloud stores every path NFC-normalised, so NFC/NFD twins collide (§5.3)."""
    return unicodedata.normalize("NFC", text)


def is_part_name(name: str) -> bool:
    """Any name ending in `.part` triggers the real server's phantom-file quirks (§5.1)."""
    return name.lower().endswith(".part")


def check_name(name: str, *, own: bool = True) -> str | None:
    """Return the server's InvalidPath message for `name`, or None when it is allowed.

    `own=False` checks a parent segment, where extension rules do not apply (§5.1 "Parents").
    """
    if not name.strip():
        return "Empty filename is not allowed"
    if name in (".", ".."):
        return f'"{name}" is a forbidden file or folder name.'
    for ch in FORBIDDEN_CHARACTERS:
        if ch in name:
            return f'"{ch}" is not allowed inside a file or folder name.'
    if any(ord(c) < 32 for c in name):
        return "Filename contains at least one invalid character"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return "Filename is too long"
    lower = name.lower()
    if lower in FORBIDDEN_FILENAMES:
        return "Filename is a reserved word"
    base = lower[1:].split(".", 1)[0] if lower.startswith(".") else lower.split(".", 1)[0]
    if base in FORBIDDEN_BASENAMES:
        return f'"{base}" is a forbidden file or folder name.'
    if own:
        for ext in FORBIDDEN_EXTENSIONS:
            if lower.endswith(ext):
                return f'"{ext}" is a forbidden file type.'
    return None


def check_path(segments: list[str]) -> str | None:
    """Validate every segment of a relative path; the last one is the node's own name."""
    for i, seg in enumerate(segments):
        msg = check_name(seg, own=(i == len(segments) - 1))
        if msg:
            return msg
    return None


def capabilities() -> dict[str, object]:
    """The `files.forbidden_*` capability lists, lower-cased, as 32.0.1 publishes them (§5.1)."""
    return {
        "forbidden_filenames": list(FORBIDDEN_FILENAMES),
        "forbidden_filename_basenames": list(FORBIDDEN_BASENAMES),
        "forbidden_filename_characters": list(FORBIDDEN_CHARACTERS),
        "forbidden_filename_extensions": list(FORBIDDEN_EXTENSIONS),
        "blacklisted_files": list(FORBIDDEN_FILENAMES),
        "windows_compatible_filenames": False,
    }
