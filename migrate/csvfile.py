"""CSV files that people edit: exact line/column errors, comments, BOM and encoding checks, atomic appends."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import MappingError

# ---------------------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file, at a 1-based line and column."""

    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{display_path(self.path)}:{self.line}:{self.column}: {self.message}"


class MappingFileError(MappingError):
    """A mapping (or credentials) CSV file has one or more problems; `problems` lists them all."""

    MAX_SHOWN = 30

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        shown = [str(p) for p in problems[: self.MAX_SHOWN]]
        if len(problems) > self.MAX_SHOWN:
            shown.append(f"... and {len(problems) - self.MAX_SHOWN} more problems in the same file")
        super().__init__("\n".join(shown), hint=hint or "the formats are described in mappings/README.md")
        self.problems = list(problems)


def display_path(path: Path) -> str:
    """The path as a person would type it: relative to the current folder when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# ---------------------------------------------------------------------------------------------------------------
# CSV reading with exact line and column numbers (one record per physical line; `#` lines are comments)


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data line: its 1-based number and its stripped values with their 1-based start columns."""

    line: int
    values: dict[str, str]
    columns: dict[str, int]


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A parsed CSV file: header order, records, and the layout needed to append lines that match it."""

    path: Path
    header: tuple[str, ...]
    records: tuple[CsvRecord, ...]
    delimiter: str
    newline: str


class _LineError(Exception):
    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


_UNBALANCED = (
    "unbalanced double quote: the quote at column {col} is never closed on this line "
    '(wrap a value that contains the separator in a pair of double quotes and write a quote inside it as "")'
)


def _split_line(line: str, delimiter: str) -> list[tuple[str, int]]:
    """Split one CSV line into (stripped value, start column) pairs; raises _LineError on bad quoting."""
    fields: list[tuple[str, int]] = []
    i, n = 0, len(line)
    while True:
        j = i
        while j < n and line[j] in " \t":
            j += 1
        if j < n and line[j] == '"':
            start, k, parts = j, j + 1, []
            while True:
                q = line.find('"', k)
                if q == -1:
                    raise _LineError(start + 1, _UNBALANCED.format(col=start + 1))
                parts.append(line[k:q])
                if q + 1 < n and line[q + 1] == '"':
                    parts.append('"')
                    k = q + 2
                    continue
                k = q + 1
                break
            m = k
            while m < n and line[m] in " \t":
                m += 1
            if m < n and line[m] != delimiter:
                raise _LineError(
                    m + 1,
                    "unexpected text after the closing double quote of the value that starts at "
                    f"column {start + 1}: expected {delimiter!r} or the end of the line",
                )
            fields.append(("".join(parts).strip(), start + 1))
            if m >= n:
                return fields
            i = m + 1
        else:
            end = line.find(delimiter, i)
            end = n if end == -1 else end
            raw = line[i:end]
            value = raw.strip()
            fields.append((value, i + 1 + (len(raw) - len(raw.lstrip())) if value else i + 1))
            if end >= n:
                return fields
            i = end + 1


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text of a CSV file; a UTF-8 BOM (Excel's "CSV UTF-8") is accepted and dropped."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MappingFileError(
            [Problem(path, 1, 1, 'the file is UTF-16 (Excel\'s "Unicode text"), expected UTF-8')],
            hint='save it again as "CSV UTF-8 (Comma delimited)" (Excel) or as Text CSV with character set '
            '"Unicode (UTF-8)" (LibreOffice)',
        )
    offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    body = data[offset:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = body[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise MappingFileError(
            [
                Problem(
                    path,
                    line,
                    column,
                    f"not valid UTF-8 (at byte offset {exc.start + offset}); "
                    "the file was probably saved in a Windows code page",
                )
            ],
            hint='save it again as "CSV UTF-8 (Comma delimited)" (Excel) or as Text CSV with character set '
            '"Unicode (UTF-8)" (LibreOffice)',
        ) from None
    if "\x00" in text:
        nul = text.index("\x00")
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise MappingFileError([Problem(path, line, column, "NUL byte found: this is not a UTF-8 text file")])
    return text


def read_csv_table(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (), *, reveal_values: bool = True
) -> CsvTable:
    """Parse a CSV file with a header; raises MappingFileError listing every structural problem.

    Blank lines and lines whose first non-blank character is `#` are skipped; values are stripped; the
    separator is `,` (or `;` when the header uses it, as Excel does in many European locales).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MappingError(f"{display_path(path)}: file not found") from None
    except OSError as exc:
        raise MappingError(f"{display_path(path)}: cannot be read: {exc.strerror}") from None
    text = _decode(path, data)
    newline = "\r\n" if "\r\n" in text else "\n"
    expected = ",".join(required)
    problems: list[Problem] = []
    header: tuple[str, ...] | None = None
    delimiter = ","
    header_cols: dict[str, int] = {}
    records: list[CsvRecord] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if header is None:
            if ";" in line and "," not in line:
                delimiter = ";"
            try:
                fields = _split_line(line, delimiter)
            except _LineError as exc:
                raise MappingFileError([Problem(path, number, exc.column, exc.message)]) from None
            names = [name.lower() for name, _ in fields]
            known = set(required) | set(optional)
            for (name, col), low in zip(fields, names, strict=True):
                if low not in known:
                    shown = f" {name!r}" if reveal_values else " (not shown: this file holds secrets)"
                    what = f"unknown column{shown}" if name else "empty column name"
                    problems.append(
                        Problem(
                            path,
                            number,
                            col,
                            f"{what} in the header: expected {expected}"
                            + (f" (optional: {', '.join(optional)})" if optional else ""),
                        )
                    )
                elif low in header_cols:
                    problems.append(
                        Problem(path, number, col, f"column {name!r} appears twice in the header")
                    )
                else:
                    header_cols[low] = col
            missing = [c for c in required if c not in header_cols]
            if missing:
                problems.append(
                    Problem(
                        path,
                        number,
                        1,
                        f"missing column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} in the header: expected {expected}",
                    )
                )
            if problems:
                raise MappingFileError(problems)
            header = tuple(names)
            continue
        try:
            fields = _split_line(line, delimiter)
        except _LineError as exc:
            problems.append(Problem(path, number, exc.column, exc.message))
            continue
        if len(fields) != len(header):
            hint = ""
            if len(fields) > len(header):
                col = fields[len(header)][1]
                if delimiter == "," and "source" in header:
                    hint = "; a site id (host,guid,guid) contains commas: wrap it in double quotes"
            else:
                col = len(line) + 1
            problems.append(
                Problem(
                    path,
                    number,
                    col,
                    f"expected {len(header)} values ({','.join(header)}), found {len(fields)}{hint}",
                )
            )
            continue
        records.append(
            CsvRecord(
                number,
                {h: v for h, (v, _) in zip(header, fields, strict=True)},
                {h: c for h, (_, c) in zip(header, fields, strict=True)},
            )
        )
    if header is None:
        raise MappingFileError(
            [Problem(path, 1, 1, f"the file is empty: expected the header line {expected}")]
        )
    if problems:
        raise MappingFileError(problems)
    return CsvTable(path, header, tuple(records), delimiter, newline)


def quote_csv_value(value: str, delimiter: str) -> str:
    """The value as one CSV field: quoted when it holds the separator, a quote, a leading # or edge spaces."""
    if not value:
        return ""
    if delimiter in value or '"' in value or value.startswith("#") or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def write_atomic(path: Path, content: bytes) -> None:
    """Replace `path` with `content` via a temporary file and os.replace, keeping the file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
