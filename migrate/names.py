"""Target name rules (Nextcloud's `FilenameValidator`, reference §5) and deterministic renames.

Everything here is a pure function of its inputs: the same source name (and, for collisions, the same source
item id and the same set of siblings) gives the same target name on every run and every machine. No counter
that depends on processing order is ever used, so a resumed or repeated plan never renames a file twice.

Rules applied (each one gives a reason in the rename map):
- Unicode NFC (the server normalises silently; two names that differ only by NFC/NFD become one path);
- forbidden characters (`\\`, `/`, and ASCII 0–31, which the server enforces but does not publish) → `_`;
- empty, whitespace-only, `.` and `..` names;
- forbidden whole names (`.htaccess`), basenames (`CON`, … when the admin enables Windows rules) and
  extensions (`.part` always, `.filepart`, and `' '`/`'.'` for trailing spaces and dots under Windows rules);
- at most `max_bytes` UTF-8 bytes (the server rejects 251 and more), truncated on a character boundary,
  keeping the extension;
- sibling collisions after the above, compared case-insensitively and in NFC (desktop clients on Windows and
  macOS cannot hold two names that differ only by case): all but one member get ` (<6 hex>)` from a hash of
  their source item id.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from migrate.models import Features

# What Nextcloud enforces whatever it publishes (reference §5.1, verified on NC 32.0.1).
ALWAYS_CHARS = frozenset({"\\", "/"} | {chr(c) for c in range(32)})
ALWAYS_EXTENSIONS = frozenset({".part"})
DEFAULT_NAMES = frozenset({".htaccess"})
DEFAULT_EXTENSIONS = frozenset({".part", ".filepart"})
MAX_NAME_BYTES = 250
# The admin's "Windows compatible file names" switch adds these (reference §5.1).
WINDOWS_BASENAMES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{c}" for c in "0123456789¹²³"}
    | {f"lpt{c}" for c in "0123456789¹²³"}
)
WINDOWS_CHARS = frozenset('<>:"|?*')
WINDOWS_EXTENSIONS = frozenset({" ", "."})
REPLACEMENT = "_"
_MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class NameRules:
    """The live rule set of one target; build it with `NameRules.from_features` (lists are lower-case)."""

    forbidden_names: frozenset[str] = DEFAULT_NAMES
    forbidden_basenames: frozenset[str] = frozenset()
    forbidden_chars: frozenset[str] = ALWAYS_CHARS
    forbidden_extensions: frozenset[str] = DEFAULT_EXTENSIONS
    max_bytes: int = MAX_NAME_BYTES
    _ext_sorted: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Always-enforced rules cannot be switched off by a server list that omits them.
        object.__setattr__(self, "forbidden_chars", frozenset(self.forbidden_chars) | ALWAYS_CHARS)
        exts = frozenset(e.lower() for e in self.forbidden_extensions if e) | ALWAYS_EXTENSIONS
        object.__setattr__(self, "forbidden_extensions", exts)
        object.__setattr__(self, "forbidden_names", frozenset(n.lower() for n in self.forbidden_names))
        object.__setattr__(self, "forbidden_basenames", frozenset(n.lower() for n in self.forbidden_basenames))
        object.__setattr__(self, "_ext_sorted", tuple(sorted(exts, key=lambda e: (-len(e), e))))
        if self.max_bytes < 16:
            raise ValueError("max_bytes below 16 leaves no room for a collision suffix")

    @classmethod
    def from_features(cls, features: Features, *, windows: bool = False) -> NameRules:
        """The server's published lists (capabilities) joined with the defaults and the unpublished rules.

        `windows=True` adds the Windows-compatibility rules even when the server does not enforce them (useful
        when staff sync with Windows desktop clients).
        """
        names = DEFAULT_NAMES | features.forbidden_names
        basenames = frozenset(features.forbidden_basenames)
        chars = ALWAYS_CHARS | features.forbidden_chars
        exts = DEFAULT_EXTENSIONS | features.forbidden_extensions
        if windows:
            basenames |= WINDOWS_BASENAMES
            chars |= WINDOWS_CHARS
            exts |= WINDOWS_EXTENSIONS
        return cls(names, basenames, chars, exts, min(features.max_name_bytes or MAX_NAME_BYTES, MAX_NAME_BYTES))

    def describe(self) -> dict[str, object]:
        """JSON-ready summary for the report ("which rules were applied")."""
        printable = sorted(c for c in self.forbidden_chars if ord(c) >= 32)
        return {
            "forbidden_names": sorted(self.forbidden_names),
            "forbidden_basenames": sorted(self.forbidden_basenames),
            "forbidden_characters": printable + ["ASCII 0-31"],
            "forbidden_extensions": sorted(self.forbidden_extensions),
            "max_name_bytes": self.max_bytes,
        }


DEFAULT_RULES = NameRules()


def _basename(name: str) -> str:
    """The part before the first dot, ignoring one leading dot (Nextcloud's definition)."""
    body = name[1:] if name.startswith(".") else name
    return body.split(".", 1)[0]


def _bad_extension(name: str, rules: NameRules) -> str | None:
    low = name.lower()
    for ext in rules._ext_sorted:
        if low.endswith(ext):
            return ext
    return None


def problems(name: str, rules: NameRules = DEFAULT_RULES) -> list[str]:
    """Why the target would refuse (or silently change) `name`; empty when it is accepted as is."""
    out: list[str] = []
    if name != unicodedata.normalize("NFC", name):
        out.append("not in Unicode NFC (the server would normalise it silently)")
    if not name.strip() or name in (".", ".."):
        out.append("empty, blank, '.' or '..'")
        return out
    bad = sorted({c for c in name if c in rules.forbidden_chars})
    if bad:
        shown = ", ".join(repr(c) if ord(c) >= 32 else f"control character 0x{ord(c):02x}" for c in bad)
        out.append(f"forbidden character(s): {shown}")
    if name.lower() in rules.forbidden_names:
        out.append(f"reserved name {name!r}")
    if _basename(name).lower() in rules.forbidden_basenames:
        out.append(f"reserved basename {_basename(name)!r}")
    ext = _bad_extension(name, rules)
    if ext is not None:
        what = {" ": "trailing space", ".": "trailing dot"}.get(ext, f"forbidden extension {ext!r}")
        out.append(what)
    size = len(name.encode("utf-8"))
    if size > rules.max_bytes:
        out.append(f"{size} bytes long (limit {rules.max_bytes})")
    return out


def is_valid(name: str, rules: NameRules = DEFAULT_RULES) -> bool:
    """True when the target accepts `name` unchanged."""
    return not problems(name, rules)


def _split_ext(name: str) -> tuple[str, str]:
    """(stem, extension) where a plausible extension is kept through truncation: '.xlsx', not '.a long tail'."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    ext = name[dot:]
    if len(ext.encode("utf-8")) > 16 or " " in ext or len(ext) < 2:
        return name, ""
    return name[:dot], ext


def truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits in `limit` bytes (never splits a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _fit(name: str, limit: int, tail: str = "") -> str:
    """Shorten `name` (keeping its extension) so that name + tail fits in `limit` bytes."""
    stem, ext = _split_ext(name)
    room = limit - len((ext + tail).encode("utf-8"))
    if room < 1:  # an absurd extension: give it up rather than the whole name
        stem, ext = name, ""
        room = limit - len(tail.encode("utf-8"))
    return truncate_utf8(stem, room) + tail + ext


def _one_round(name: str, rules: NameRules) -> str:
    name = unicodedata.normalize("NFC", name)
    name = "".join(REPLACEMENT if c in rules.forbidden_chars else c for c in name)
    if not name.strip() or name in (".", ".."):
        name = REPLACEMENT * max(1, len(name))
    if name.lower() in rules.forbidden_names:
        name = REPLACEMENT + name
    base = _basename(name)
    if base.lower() in rules.forbidden_basenames:
        lead = 1 if name.startswith(".") else 0
        name = name[: lead + len(base)] + REPLACEMENT + name[lead + len(base):]
    ext = _bad_extension(name, rules)
    if ext is not None:
        if ext.startswith(".") and len(ext) > 1:
            name = name[: -len(ext)] + REPLACEMENT + name[len(name) - len(ext) + 1:]  # x.part → x_part
        elif ext in (" ", "."):
            stripped = name.rstrip(" .")
            name = stripped if stripped.strip() else REPLACEMENT
        else:
            name = name + REPLACEMENT
    if len(name.encode("utf-8")) > rules.max_bytes:
        name = _fit(name, rules.max_bytes)
    return name


def clean_name(name: str, rules: NameRules = DEFAULT_RULES) -> tuple[str, tuple[str, ...]]:
    """(target name, reasons): the name the target accepts, and why it differs ('()' when unchanged).

    Idempotent: `clean_name(clean_name(x)[0])[0] == clean_name(x)[0]`, and a valid name is returned as is.
    """
    reasons = tuple(problems(name, rules))
    if not reasons:
        return name, ()
    out = name
    for _ in range(_MAX_ROUNDS):
        new = _one_round(out, rules)
        if new == out and is_valid(new, rules):
            break
        out = new
        if is_valid(out, rules):
            break
    if not is_valid(out, rules):  # cannot happen with sane rules; never hand back an invalid name
        out = "renamed-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return out, reasons


def collision_key(name: str) -> str:
    """Two sibling names with the same key collide at the target or in desktop clients (NFC, case-folded)."""
    return unicodedata.normalize("NFC", name).casefold()


def short_hash(item_id: str, length: int = 6) -> str:
    """A stable hex tag derived from the source item id (same id → same tag everywhere)."""
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:length]


def with_suffix(name: str, item_id: str, rules: NameRules = DEFAULT_RULES, length: int = 6) -> str:
    """`name` with ` (<hash of item_id>)` before its extension, still valid and within the byte limit."""
    tail = f" ({short_hash(item_id, length)})"
    candidate = _fit(name, rules.max_bytes, tail)
    if not is_valid(candidate, rules):
        candidate, _ = clean_name(candidate, rules)
    return candidate


def conflict_name(name: str, item_id: str, rules: NameRules = DEFAULT_RULES) -> str:
    """The name `sync` gives the source's version when a person's file holds its place: `name (conflict <hash>)`
    before the extension, deterministic per item, valid under the rules and within the byte limit."""
    candidate = _fit(name, rules.max_bytes, f" (conflict {short_hash(item_id)})")
    if not is_valid(candidate, rules):
        candidate, _ = clean_name(candidate, rules)
    return candidate


@dataclass(frozen=True, slots=True)
class Resolved:
    """The target name of one sibling and why it differs from the source name (empty when unchanged)."""

    item_id: str
    source: str
    target: str
    reasons: tuple[str, ...]

    @property
    def renamed(self) -> bool:
        return self.source != self.target


def resolve_siblings(
    children: Iterable[tuple[str, str]],
    rules: NameRules = DEFAULT_RULES,
    *,
    reserved: Iterable[str] = (),
) -> dict[str, Resolved]:
    """Target names for all children of one folder, given as (item id, source name) pairs.

    Order-independent: the result depends only on the set of pairs. In each group of colliding names the
    member kept as is is the one whose name needed no change (smallest item id among several); every other
    member gets a hash suffix of its own item id. `reserved` names (already used in that folder by another
    source) are never handed out.
    """
    first: dict[str, Resolved] = {}
    for item_id, source in children:
        target, reasons = clean_name(source, rules)
        first[item_id] = Resolved(item_id, source, target, reasons)
    groups: dict[str, list[Resolved]] = {}
    for r in first.values():
        groups.setdefault(collision_key(r.target), []).append(r)
    taken = {collision_key(n) for n in reserved}
    out: dict[str, Resolved] = {}
    losers: list[Resolved] = []
    for key, members in groups.items():
        members.sort(key=lambda r: (bool(r.reasons), r.item_id))
        if key in taken:
            losers.extend(members)
            continue
        keeper, *rest = members
        out[keeper.item_id] = keeper
        taken.add(key)
        losers.extend(rest)
    # Suffixed names are checked against every name in the folder; a clash (vanishingly rare) lengthens the hash.
    for r in sorted(losers, key=lambda r: r.item_id):
        others = len(groups[collision_key(r.target)]) > 1
        why = "same name as a sibling" + (" when compared case-insensitively and in NFC" if others else
                                          " already used in the target folder")
        for length in (6, 8, 10, 12, 16, 24, 32, 64):
            candidate = with_suffix(r.target, r.item_id, rules, length)
            if collision_key(candidate) not in taken:
                break
        taken.add(collision_key(candidate))
        out[r.item_id] = Resolved(r.item_id, r.source, candidate, (*r.reasons, why))
    return out
