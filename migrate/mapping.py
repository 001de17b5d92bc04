"""Load, validate and extend the mapping files of design §3 (users.csv, groups.csv, sites.csv)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Generic, Literal, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from migrate.csvfile import (
    CsvTable,
    MappingFileError,
    Problem,
    display_path,
    quote_csv_value,
    read_csv_table,
    write_atomic,
)
from migrate.errors import MappingError

Kind = Literal["users", "groups", "sites"]

# ---------------------------------------------------------------------------------------------------------------
# Value rules

_UPN_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_UID_RE = re.compile(r"^[A-Za-z0-9 _.@'-]{1,64}$")  # Nextcloud's rule for user ids
_BATCH_RE = re.compile(r"^[\w. -]{1,64}$")
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_SITE_ID_RE = re.compile(rf"^[A-Za-z0-9.-]+,{_GUID},{_GUID}$")
_DRIVE_ID_RE = re.compile(r"^b![A-Za-z0-9_-]{8,}$")
_PAGE_SUFFIX_RE = re.compile(r"/(Forms|SitePages)/[^/]+\.aspx$", re.IGNORECASE)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def check_upn(value: str) -> str | None:
    """None when `value` looks like a user principal name, else what is wrong."""
    if not _UPN_RE.match(value):
        return f"expected a user principal name like anna.berg@example.org, found {value!r}"
    return None


def check_uid(value: str) -> str | None:
    """None when `value` is a valid Nextcloud user id, else what is wrong."""
    if not _UID_RE.match(value) or value != value.strip():
        return (
            f"expected a Nextcloud user id (letters, digits, space, _ . @ - ', at most 64 characters), "
            f"found {value!r}"
        )
    return None


def _check_batch(value: str) -> str | None:
    if value and not _BATCH_RE.match(value):
        return f"expected a batch name of letters, digits, space, _ . - (at most 64), found {value!r}"
    return None


def _clean_path(path: str, what: str) -> str:
    """Normalise a target path: leading /, no trailing /, no empty, `.` or `..` segments."""
    if "\\" in path:
        raise ValueError(f"{what} contains a backslash: use / between folders")
    if not path.startswith("/"):
        raise ValueError(f"{what} must start with /")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or _has_control(path):
        raise ValueError(f"{what} must not contain . or .. segments or control characters")
    return "/" + "/".join(parts)


@dataclass(frozen=True, slots=True)
class SiteTarget:
    """Where a library goes: `user:<uid>:/<path>`, `groupfolder:<name>[:/<path>]` or a WebDAV `/<path>`."""

    kind: Literal["user", "groupfolder", "webdav"]
    name: str  # the user id or the group folder's name; "" for a plain WebDAV path
    path: str  # below the user's files, the group folder or the WebDAV root; starts with /

    def __str__(self) -> str:
        if self.kind == "webdav":
            return self.path
        if self.kind == "groupfolder" and self.path == "/":
            return f"groupfolder:{self.name}"
        return f"{self.kind}:{self.name}:{self.path}"

    def key(self) -> tuple[str, str, str]:
        """Identity used to find two sources written to one place (case-insensitive, like Windows clients)."""
        return (self.kind, self.name.casefold(), self.path.casefold())


_TARGET_SYNTAX = "expected user:<uid>:/<path>, groupfolder:<name> or a WebDAV path starting with /"


def parse_site_target(text: str) -> SiteTarget:
    """Parse the `target` column of sites.csv; raises ValueError saying what is expected."""
    try:
        if text.startswith("user:"):
            uid, sep, path = text[5:].partition(":")
            if not sep or not path.startswith("/"):
                raise ValueError(
                    f"{_TARGET_SYNTAX}; a user target needs a path, e.g. user:{uid or 'anna'}:/HR"
                )
            if problem := check_uid(uid):
                raise ValueError(problem)
            return SiteTarget("user", uid, _clean_path(path, "the path"))
        if text.startswith("groupfolder:"):
            name, sep, path = text[12:].partition(":")
            name = name.strip()
            if not name or name.startswith("/") or name.endswith("/") or ".." in name.split("/"):
                raise ValueError(f"{_TARGET_SYNTAX}; the group folder name must not be empty or start with /")
            if _has_control(name):
                raise ValueError("the group folder name must not contain control characters")
            return SiteTarget("groupfolder", name, _clean_path(path, "the path") if sep else "/")
        if text.startswith("/"):
            return SiteTarget("webdav", "", _clean_path(text, "the WebDAV path"))
    except ValueError as exc:
        raise ValueError(f"{exc}, found {text!r}") from None
    raise ValueError(f"{_TARGET_SYNTAX}, found {text!r}")


SourceKind = Literal["url", "site_id", "drive_id"]


def normalize_site_url(url: str) -> str:
    """Comparable form of a SharePoint URL: no query, no page suffix, decoded, no trailing /, case-folded."""
    parts = urlsplit(url.strip())
    path = _PAGE_SUFFIX_RE.sub("", unquote(parts.path)).rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}".casefold()


def classify_site_source(text: str) -> tuple[SourceKind, str]:
    """(kind, lookup key) of a sites.csv source; raises ValueError saying what is expected."""
    if text.lower().startswith(("https://", "http://")):
        if not urlsplit(text).netloc:
            raise ValueError(f"the site URL has no host name, found {text!r}")
        return "url", normalize_site_url(text)
    if _SITE_ID_RE.match(text):
        return "site_id", text.casefold()
    if _DRIVE_ID_RE.match(text):
        return "drive_id", text
    raise ValueError(
        "expected a site URL (https://...), a site id (host,guid,guid in double quotes) "
        f"or a drive id (b!...), found {text!r}"
    )


# ---------------------------------------------------------------------------------------------------------------
# Rows and collections


@dataclass(frozen=True, slots=True)
class UserRow:
    """users.csv: one OneDrive owner; `target_user` None means "not migrated" (listed in reports)."""

    source_upn: str
    target_user: str | None
    batch: str | None
    line: int
    comment: str = ""
    versions: str | int | None = None  # the row's own [transfer] versions; None: the configured one
    imap_user: str | None = None  # the mailbox's IMAP user (--what mail) when it is not target_user

    @property
    def migrated(self) -> bool:
        return self.target_user is not None

    @property
    def mail_user(self) -> str | None:
        """The IMAP user that receives this person's mailbox: imap_user, else the target user."""
        return self.imap_user or self.target_user


@dataclass(frozen=True, slots=True)
class GroupRow:
    """groups.csv: an Entra group (id or name); `target_group` None means shares to it are only reported."""

    source_group: str
    target_group: str | None
    line: int
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SiteRow:
    """sites.csv: a site URL, site id or drive id; `target` None means "not migrated"."""

    source: str
    source_kind: SourceKind
    target: SiteTarget | None
    batch: str | None
    line: int
    comment: str = ""
    versions: str | int | None = None  # the row's own [transfer] versions; None: the configured one

    @property
    def migrated(self) -> bool:
        return self.target is not None


R = TypeVar("R")


class _Rows(Generic[R]):
    """An immutable, indexed sequence of rows from one file; subclasses say how rows are keyed."""

    def __init__(self, path: Path, rows: Iterable[R] = ()) -> None:
        self.path = Path(path)
        self.rows: tuple[R, ...] = tuple(rows)
        self._index: dict[object, R] = {}
        for row in self.rows:
            for key in self._keys(row):
                self._index.setdefault(key, row)

    def _keys(self, row: R) -> Iterable[object]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[R]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_path(self.path)!r}, {len(self.rows)} rows)"

    def batches(self) -> tuple[str, ...]:
        """Batch names used in the file, sorted."""
        return tuple(sorted({b for r in self.rows if (b := getattr(r, "batch", None))}))

    def in_batch(self, batch: str) -> tuple[R, ...]:
        return tuple(r for r in self.rows if (getattr(r, "batch", None) or "").casefold() == batch.casefold())

    def not_migrated(self) -> tuple[R, ...]:
        """Rows with a blank target: listed in reports, never copied."""
        return tuple(r for r in self.rows if not getattr(r, "migrated", True))


class UserMapping(_Rows[UserRow]):
    """The rows of users.csv, looked up by UPN case-insensitively."""

    def _keys(self, row: UserRow) -> Iterable[object]:
        return (row.source_upn.casefold(),)

    def get(self, upn: str) -> UserRow | None:
        return self._index.get(upn.strip().casefold())

    def target_for(self, upn: str) -> str | None:
        """The Nextcloud user for this UPN; None when it is unmapped or mapped to "not migrated"."""
        row = self.get(upn)
        return row.target_user if row else None

    def __contains__(self, upn: object) -> bool:
        return isinstance(upn, str) and self.get(upn) is not None


class GroupMapping(_Rows[GroupRow]):
    """The rows of groups.csv, looked up by Entra group id or display name case-insensitively."""

    def _keys(self, row: GroupRow) -> Iterable[object]:
        return (row.source_group.casefold(),)

    def get(self, group: str) -> GroupRow | None:
        return self._index.get(group.strip().casefold())

    def target_for(self, *ids_or_names: str) -> str | None:
        """The Nextcloud group for the first of (id, display name, ...) that has a row."""
        for name in ids_or_names:
            if name and (row := self.get(name)) is not None:
                return row.target_group
        return None


class SiteMapping(_Rows[SiteRow]):
    """The rows of sites.csv, found by drive id, drive URL, site id or site URL (most specific first)."""

    def _keys(self, row: SiteRow) -> Iterable[object]:
        return (classify_site_source(row.source),)

    def find(
        self,
        *,
        drive_id: str | None = None,
        drive_url: str | None = None,
        site_id: str | None = None,
        site_url: str | None = None,
    ) -> SiteRow | None:
        """The row that names this drive, else the row that names its site; None when neither is mapped."""
        candidates: list[tuple[SourceKind, str | None]] = [
            ("drive_id", drive_id),
            ("url", normalize_site_url(drive_url) if drive_url else None),
            ("site_id", site_id.casefold() if site_id else None),
            ("url", normalize_site_url(site_url) if site_url else None),
        ]
        for kind, key in candidates:
            if key and (row := self._index.get((kind, key))) is not None:
                return row
        return None


@dataclass(frozen=True, slots=True)
class Mappings:
    """All three mapping files, loaded and validated together."""

    users: UserMapping
    groups: GroupMapping
    sites: SiteMapping


class MappingPaths(Protocol):
    """Anything with the three file paths, such as config.MappingSettings."""

    users: Path
    groups: Path
    sites: Path


# ---------------------------------------------------------------------------------------------------------------
# Loading

_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("source_upn", "target_user", "batch"),
    "groups": ("source_group", "target_group"),
    "sites": ("source", "target", "batch"),
}
_OPTIONAL = ("comment",)
_ROW_OPTIONAL = ("versions", "comment")  # users.csv and sites.csv: a row may set its own version history


def _check_versions(value: str) -> tuple[str | int | None, str | None]:
    """(the row's versions policy or None when blank, what is wrong)."""
    if not value:
        return None, None
    from migrate.config import parse_versions

    try:
        return parse_versions(value), None
    except ValueError as exc:
        return None, f"versions: {exc}; or leave it blank to follow [transfer] versions"


def _optional(kind: Kind) -> tuple[str, ...]:
    if kind == "groups":
        return _OPTIONAL
    # users.csv may also name the IMAP user of a mailbox (--what mail) when it is not the target user
    return (*_ROW_OPTIONAL, "imap_user") if kind == "users" else _ROW_OPTIONAL


def _none(value: str) -> str | None:
    return value or None


def _check_unique(
    problems: list[Problem], seen: dict[str, int], key: str, path: Path, line: int, col: int, message: str
) -> None:
    if key in seen:
        problems.append(Problem(path, line, col, message.replace("{first}", str(seen[key]))))
    else:
        seen[key] = line


def _user_rows(table: CsvTable) -> list[UserRow]:
    problems: list[Problem] = []
    rows: list[UserRow] = []
    sources: dict[str, int] = {}
    targets: dict[str, int] = {}
    for rec in table.records:
        v, c = rec.values, rec.columns
        upn, target, batch = v["source_upn"], v["target_user"], v["batch"]
        versions, vproblem = _check_versions(v.get("versions", ""))
        bad = [
            ("source_upn", check_upn(upn)),
            ("target_user", target and check_uid(target)),
            ("batch", _check_batch(batch)),
            ("versions", vproblem),
        ]
        for col, problem in bad:
            if problem:
                problems.append(Problem(table.path, rec.line, c[col], problem))
        if bad[0][1]:
            continue
        _check_unique(
            problems,
            sources,
            upn.casefold(),
            table.path,
            rec.line,
            c["source_upn"],
            upn + " is mapped twice: also on line {first}; keep one of the two lines",
        )
        if target:
            _check_unique(
                problems,
                targets,
                target.casefold(),
                table.path,
                rec.line,
                c["target_user"],
                f"target user {target!r} is also the target of line "
                "{first}: two OneDrives cannot "
                "be written into one Nextcloud user; map one of them to another user or leave it blank",
            )
        imap_user = (v.get("imap_user") or "").strip()
        if imap_user and (any(ch.isspace() for ch in imap_user) or "*" in imap_user):
            problems.append(Problem(table.path, rec.line, c["imap_user"], f"imap_user {imap_user!r}: expected an "
                                    "IMAP user name (no spaces, no *), or blank for the target user"))
        rows.append(UserRow(upn, _none(target), _none(batch), rec.line, v.get("comment", ""), versions,
                            _none(imap_user)))
    if problems:
        raise MappingFileError(problems)
    return rows


def _group_rows(table: CsvTable) -> list[GroupRow]:
    problems: list[Problem] = []
    rows: list[GroupRow] = []
    sources: dict[str, int] = {}
    for rec in table.records:
        v, c = rec.values, rec.columns
        source, target = v["source_group"], v["target_group"]
        if not source:
            problems.append(
                Problem(
                    table.path,
                    rec.line,
                    c["source_group"],
                    "expected an Entra group id or display name, found an empty value",
                )
            )
            continue
        if target and (_has_control(target) or len(target) > 255):
            problems.append(
                Problem(
                    table.path,
                    rec.line,
                    c["target_group"],
                    f"expected a Nextcloud group id (at most 255 characters), found {target!r}",
                )
            )
        _check_unique(
            problems,
            sources,
            source.casefold(),
            table.path,
            rec.line,
            c["source_group"],
            f"group {source!r} is mapped twice: also on line {{first}}; keep one of the two lines",
        )
        rows.append(GroupRow(source, _none(target), rec.line, v.get("comment", "")))
    if problems:
        raise MappingFileError(problems)
    return rows


def _site_rows(table: CsvTable) -> list[SiteRow]:
    problems: list[Problem] = []
    rows: list[SiteRow] = []
    sources: dict[tuple[str, str], int] = {}
    targets: dict[tuple[str, str, str], int] = {}
    for rec in table.records:
        v, c = rec.values, rec.columns
        source, target_text, batch = v["source"], v["target"], v["batch"]
        try:
            kind, key = classify_site_source(source)
        except ValueError as exc:
            problems.append(Problem(table.path, rec.line, c["source"], str(exc)))
            continue
        target: SiteTarget | None = None
        if target_text:
            try:
                target = parse_site_target(target_text)
            except ValueError as exc:
                problems.append(Problem(table.path, rec.line, c["target"], str(exc)))
        if problem := _check_batch(batch):
            problems.append(Problem(table.path, rec.line, c["batch"], problem))
        versions, vproblem = _check_versions(v.get("versions", ""))
        if vproblem:
            problems.append(Problem(table.path, rec.line, c["versions"], vproblem))
        if (kind, key) in sources:
            problems.append(
                Problem(
                    table.path,
                    rec.line,
                    c["source"],
                    f"{source} is mapped twice: also on line {sources[kind, key]}; keep one of the two lines",
                )
            )
        else:
            sources[kind, key] = rec.line
        if target is not None:
            if target.key() in targets:
                problems.append(
                    Problem(
                        table.path,
                        rec.line,
                        c["target"],
                        f"target {str(target)!r} is also the "
                        f"target of line {targets[target.key()]}: two sources would be merged "
                        "into one folder; give each its own folder",
                    )
                )
            else:
                targets[target.key()] = rec.line
        rows.append(SiteRow(source, kind, target, _none(batch), rec.line, v.get("comment", ""), versions))
    if problems:
        raise MappingFileError(problems)
    return rows


def _table(path: Path, kind: Kind, missing_ok: bool) -> CsvTable | None:
    path = Path(path)
    if missing_ok and not path.exists():
        return None
    if not path.exists():
        raise MappingError(
            f"{display_path(path)}: mapping file not found",
            hint=f"run `m365-migrate discover` to write suggestions, or copy {kind}.example.csv "
            "from the mappings folder of m365-migrate",
        )
    return read_csv_table(path, _COLUMNS[kind], _optional(kind))


def load_users(path: Path, *, missing_ok: bool = False) -> UserMapping:
    """Load and validate users.csv; raises MappingError (MappingFileError lists file:line:column problems)."""
    table = _table(path, "users", missing_ok)
    return UserMapping(Path(path), tuple(_user_rows(table)) if table else ())


def load_groups(path: Path, *, missing_ok: bool = False) -> GroupMapping:
    """Load and validate groups.csv; raises MappingError."""
    table = _table(path, "groups", missing_ok)
    return GroupMapping(Path(path), tuple(_group_rows(table)) if table else ())


def load_sites(path: Path, *, missing_ok: bool = False) -> SiteMapping:
    """Load and validate sites.csv; raises MappingError."""
    table = _table(path, "sites", missing_ok)
    return SiteMapping(Path(path), tuple(_site_rows(table)) if table else ())


def load_mappings(paths: MappingPaths, *, missing_ok: bool = True) -> Mappings:
    """Load all three files (a missing file is an empty mapping unless missing_ok is False)."""
    return Mappings(
        load_users(paths.users, missing_ok=missing_ok),
        load_groups(paths.groups, missing_ok=missing_ok),
        load_sites(paths.sites, missing_ok=missing_ok),
    )


# ---------------------------------------------------------------------------------------------------------------
# Appending suggestions (discover) without touching what people edited


def _suggestion_key(kind: Kind, source: str) -> str:
    if kind == "sites":
        try:
            return "|".join(classify_site_source(source))
        except ValueError:
            return source.casefold()
    return source.casefold()


def _suggestion_target_key(kind: Kind, target: str) -> tuple[str, ...] | None:
    if not target or kind == "groups":
        return None
    if kind == "users":
        return ("user", target.casefold())
    try:
        return parse_site_target(target).key()
    except ValueError:
        return None


def _validate_suggestion(kind: Kind, row: Mapping[str, str]) -> str | None:
    if kind == "users":
        return check_upn(row["source_upn"]) or (row["target_user"] and check_uid(row["target_user"])) or None
    if kind == "sites":
        try:
            classify_site_source(row["source"])
            if row["target"]:
                parse_site_target(row["target"])
        except ValueError as exc:
            return str(exc)
    return None if row.get("source_group", "x") else "empty source_group"


def merge_suggestions(
    path: Path,
    rows: Iterable[Mapping[str, str | None]],
    kind: Kind,
    *,
    today: date | None = None,
    origin: str = "discover",
) -> int:
    """Append rows for sources not yet in the file; returns how many were added.

    Existing lines are never changed or reordered (the file stays byte-identical up to the appended block,
    which starts with a `# added by discover on <date>` comment); a missing file is created with its header.
    A suggested target already used by another row is left blank, with a comment saying why, so that the
    file stays valid. Written atomically (temporary file + os.replace), keeping the file's permissions.
    Raises MappingError if the existing file cannot be parsed, or ValueError for an invalid suggestion.
    """
    path = Path(path)
    columns = _COLUMNS[kind]
    if path.exists():
        table = read_csv_table(path, columns, _optional(kind))
        old = path.read_bytes()
        header, delimiter, newline = table.header, table.delimiter, table.newline
        existing = table.records
    else:
        old, header, delimiter, newline, existing = b"", columns, ",", "\n", ()
    source_col = columns[0]
    target_col = columns[1]
    seen = {_suggestion_key(kind, r.values[source_col]) for r in existing}
    used = {k for r in existing if (k := _suggestion_target_key(kind, r.values[target_col]))}
    lines: list[str] = []
    added = 0
    for given in rows:
        row = {c: (given.get(c) or "").strip() for c in (*columns, *_optional(kind))}
        if problem := _validate_suggestion(kind, row):
            raise ValueError(f"invalid suggestion for {kind}.csv: {problem}")
        key = _suggestion_key(kind, row[source_col])
        if key in seen:
            continue
        seen.add(key)
        tkey = _suggestion_target_key(kind, row[target_col])
        if tkey is not None and tkey in used:
            lines.append(
                f"# {origin}: suggested target {row[target_col]!r} for the next line is already used; "
                "fill in another one"
            )
            row[target_col] = ""
        elif tkey is not None:
            used.add(tkey)
        lines.append(delimiter.join(quote_csv_value(row.get(c, ""), delimiter) for c in header))
        added += 1
    if not added:
        return 0
    stamp = (today or date.today()).isoformat()
    block = [f"# added by {origin} on {stamp}", *lines]
    if not old:
        block.insert(0, delimiter.join(header))
    prefix = b"" if not old or old.endswith(b"\n") else newline.encode()
    content = old + prefix + (newline.join(block) + newline).encode("utf-8")
    write_atomic(path, content)
    return added


# ---------------------------------------------------------------------------------------------------------------
# Templates written by `init`

_TEMPLATES = {
    "users.csv": """\
# users.csv: whose OneDrive goes to which Nextcloud user (see README.md next to this file).
# source_upn  = the Microsoft 365 sign-in name; target_user = the Nextcloud user id (blank: not migrated);
# batch       = a name to migrate people in waves (`--batch pilot`), may be blank.
# versions    = optional column (add ",versions" to the header): "none", "all" or N earlier versions of each
#               file of this OneDrive, instead of [transfer] versions; blank follows the configuration.
# `m365-migrate discover` appends suggestions at the end and never changes lines you edited.
source_upn,target_user,batch
# anna.berg@example.org,anna.berg,pilot
# jonas.weber@example.org,,
""",
    "groups.csv": """\
# groups.csv: which Entra group becomes which Nextcloud group when shares are recreated.
# source_group = the Entra group id or display name; target_group = the Nextcloud group id
# (blank: shares to this group are reported, not created).
source_group,target_group
# 6f1c2a4e-93b1-4d0e-b1a2-3c4d5e6f7a8b,hr-team
# All Staff,staff
""",
    "sites.csv": """\
# sites.csv: where SharePoint sites, libraries and Teams drives go.
# source = a site URL, a site id ("host,guid,guid" in double quotes) or a drive id (b!...);
# target = user:<uid>:/<path> | groupfolder:<name>[:/<path>] | /<WebDAV path> (blank: not migrated);
# batch  = a name to migrate in waves, may be blank.
# versions = optional column (add ",versions" to the header): "none", "all" or N earlier versions of each file,
#          instead of [transfer] versions (e.g. "all" for a records library); blank follows the configuration.
source,target,batch
# https://example.sharepoint.com/sites/HR,groupfolder:HR,wave1
# https://example.sharepoint.com/sites/Board/Shared Documents,user:anna.berg:/Board,wave2
""",
}


def render_mapping_templates() -> dict[str, str]:
    """File name -> content of what `init` writes into mappings/: the three templates (header and commented
    examples) and the README that every template and mapping error points to (shipped in the package)."""
    from importlib.resources import files

    readme = files("migrate").joinpath("templates", "mappings-README.md").read_text(encoding="utf-8")
    return {**_TEMPLATES, "README.md": readme}
