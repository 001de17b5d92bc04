"""Where each attachment of an event goes (reference groupware.md §4.8), decided from Graph's metadata alone.

File attachments are inlined in the event (ATTACH;VALUE=BINARY) while they fit a per-object budget (Nextcloud
refuses objects over 10 MiB and base64 adds a third); the rest, and attached items (a mail, event or contact,
whose `$value` is MIME/iCalendar/vCard), go to the owner's Files and are linked. Reference attachments cannot
be carried: Graph v1.0 names no link for them and answers 405 for their `$value`. Deterministic: the same
metadata gives the same placement on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INLINE_LIMIT = 6 * 1024 * 1024   # raw attachment bytes inlined per object
INLINE, FILES, NOT_CARRIED = "inline", "files", "not-carried"
EXTENSION = {"text/calendar": ".ics", "text/vcard": ".vcf", "text/x-vcard": ".vcf", "message/rfc822": ".eml"}


@dataclass(frozen=True, slots=True)
class Placement:
    """One attachment and where it goes; `reason` says why a NOT_CARRIED one stays behind."""

    id: str
    name: str
    kind: str            # file | item | reference
    size: int
    content_type: str
    where: str
    reason: str = ""

    @property
    def stamp(self) -> str:
        """What identifies this version of the attachment at the source (Graph ids survive edits)."""
        return f"{self.size}:{self.name}"


def kind_of(att: dict[str, Any]) -> str:
    t = str(att.get("@odata.type") or "#microsoft.graph.fileAttachment").rsplit(".", 1)[-1]
    return {"fileAttachment": "file", "itemAttachment": "item", "referenceAttachment": "reference"}.get(t, t)


def placements(attachments: list[dict[str, Any]] | None, *, files: bool) -> list[Placement]:
    """Each attachment's place; `files` is whether the target has Files to hold the large ones (Nextcloud)."""
    budget = INLINE_LIMIT
    out = []
    for a in attachments or ():
        kind, name = kind_of(a), str(a.get("name") or "attachment")
        size = int(a.get("size") or 0)
        ctype = str(a.get("contentType") or "application/octet-stream")
        base = dict(id=str(a.get("id") or name), name=name, kind=kind, size=size, content_type=ctype)
        if kind == "reference":
            out.append(Placement(**base, where=NOT_CARRIED, reason="a link to a cloud file: Graph v1.0 gives "
                                 "neither its address nor its bytes (the file itself moves with its drive)"))
        elif kind == "file" and size <= budget:
            budget -= size
            out.append(Placement(**base, where=INLINE))
        elif kind not in ("file", "item"):
            out.append(Placement(**base, where=NOT_CARRIED, reason=f"unknown attachment type {kind!r}"))
        elif files:
            out.append(Placement(**base, where=FILES))
        else:
            what = "an attached item" if kind == "item" else f"{size:,} bytes, over the {INLINE_LIMIT:,} inlined"
            out.append(Placement(**base, where=NOT_CARRIED, reason=f"{what}: it needs a file in the owner's "
                                 "Nextcloud Files, which this target (not Nextcloud) does not have"))
    return out


def file_name(p: Placement, content_type: str | None, head: bytes = b"") -> str:
    """The file's name: the attachment's, with an extension for an attached item, from what `$value` sent (its
    content type, else its first bytes: an event or contact is iCalendar/vCard, anything else a MIME message)."""
    name = p.name.replace("/", "_").replace("\\", "_").strip() or "attachment"
    ext = EXTENSION.get((content_type or "").split(";")[0].strip().lower(), "")
    if p.kind == "item" and not ext:
        start = head.lstrip()[:15].upper()
        ext = ".ics" if start.startswith(b"BEGIN:VCALENDAR") else ".vcf" if start.startswith(b"BEGIN:VCARD") else ".eml"
    if p.kind == "item" and ext and not name.lower().endswith(ext):
        name += ext
    return name


def file_sizes(attachments: list[dict[str, Any]] | None) -> list[int]:
    """The sizes of the attachments that go to the owner's Files (for the plan: they count against quotas)."""
    return [p.size for p in placements(attachments, files=True) if p.where == FILES]
