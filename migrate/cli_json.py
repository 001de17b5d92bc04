"""`--json` output: exactly one document on stdout per command, an error object when the command fails first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

_JSON_DOCS: list[list[Any]] = []  # open json_collect() blocks, innermost last
_JSON_PRINTED = False


def begin() -> None:
    """A new command in this process: nothing of it is printed yet (main() calls this first)."""
    global _JSON_PRINTED
    _JSON_PRINTED = False
    _JSON_DOCS.clear()


def echo_json(data: Any) -> None:
    """The command's one JSON document on stdout (or into the json_collect() block that combines several)."""
    global _JSON_PRINTED
    if _JSON_DOCS:
        _JSON_DOCS[-1].append(data)
        return
    _JSON_PRINTED = True
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@contextmanager
def json_collect() -> Iterator[list[Any]]:
    """Hold the documents of the steps of one command (files, then calendars and contacts), so it prints one."""
    docs: list[Any] = []
    _JSON_DOCS.append(docs)
    try:
        yield docs
    finally:
        _JSON_DOCS.remove(docs)


def combined(files_doc: Any, groupware_doc: Any) -> Any:
    """`--what files,calendars,...`: the files document with the calendars/contacts one under "groupware"."""
    if files_doc is None:
        return groupware_doc
    return {**files_doc, "groupware": groupware_doc} if isinstance(files_doc, dict) else \
        {"files": files_doc, "groupware": groupware_doc}


def json_error(code: int, kind: str, message: str, hint: str | None = None) -> None:
    """With --json, an error is an object on stdout too (unless the command's document is already out)."""
    if _JSON_PRINTED:
        return
    from migrate.redact import redact

    typer.echo(json.dumps({"error": {"exit_code": int(code), "type": kind, "message": redact(message),
                                     "hint": redact(hint) if hint else None}}, indent=2, ensure_ascii=False))
