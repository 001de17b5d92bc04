"""Which source mail folders are carried, and the IMAP folder each one goes to.

Outlook's well-known folders go to the server's special-use folders found by LIST (RFC 6154): Sent Items into
the `\\Sent` folder, never a parallel "Sent Items" (reference mail.md §1.2, §2.5). The others keep their names
under their parent's target, with the server's hierarchy separator; a separator or `/` inside a name becomes
`_`, names that collide (case-insensitively) among siblings get a short suffix from their source id, and a name
the server refuses is renamed by the product's name rules (migrate/names.py) and listed. Every decision is a
pure function of the folder tree and the server's answers, so a rerun makes the same one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from migrate.names import ALWAYS_CHARS, NameRules, resolve_siblings

# Outlook's well-known folder → the special-use attribute of its IMAP home ("INBOX" is INBOX itself)
SPECIAL = {"inbox": "INBOX", "sentitems": "\\Sent", "drafts": "\\Drafts", "deleteditems": "\\Trash",
           "junkemail": "\\Junk", "archive": "\\Archive"}
# Folders that hold nothing a person reads as mail, or that Outlook keeps for itself
NOT_CARRIED = {
    "outbox": "Outbox (unsent items; nothing is ever sent by the migration)",
    "syncissues": "Sync Issues (Outlook client artefact)",
    "conflicts": "Conflicts (Outlook client artefact)",
    "localfailures": "Local Failures (Outlook client artefact)",
    "serverfailures": "Server Failures (Outlook client artefact)",
    "recoverableitemsdeletions": "Recoverable Items (soft-deleted items)",
    "searchfolders": "search folders hold no messages of their own",
    "msgfolderroot": "the mailbox root",
}
# What the server refuses beyond our own rules; used after a refusal ([CANNOT]: '.' with maildir++, '~' first)
STRICT_CHARS = frozenset(".~%*")


def path_parts(path: str) -> list[str]:
    """A folder's stored path (JSON list of display names from the top)."""
    try:
        parts = json.loads(path)
    except ValueError:
        return [path]
    return [str(p) for p in parts] if isinstance(parts, list) else [str(parts)]


def path_text(path: str) -> str:
    return " / ".join(path_parts(path))


def skip_reason(*, well_known: str | None, hidden: bool, hidden_folders: bool, deleted_items: bool,
                junk: bool) -> str | None:
    """Why a folder is not carried (None: carried). Hidden folders and Outlook's artefacts stay out by default."""
    if well_known in NOT_CARRIED:
        return NOT_CARRIED[well_known]
    if hidden and not hidden_folders:
        return "hidden folder ([mail] hidden_folders = false)"
    if well_known == "deleteditems" and not deleted_items:
        return "Deleted Items ([mail] deleted_items = false)"
    if well_known == "junkemail" and not junk:
        return "Junk Email ([mail] junk = false)"
    return None


@dataclass(frozen=True, slots=True)
class FolderIn:
    """One folder of a mailbox as the mapping sees it."""

    source_id: str
    parent_id: str | None
    name: str
    well_known: str | None
    carried: bool
    target: str | None = None   # already decided on an earlier run: kept


@dataclass(frozen=True, slots=True)
class FolderOut:
    source_id: str
    target: str
    reason: str | None   # why it is not the plain source name (renamed, special-use), for the plan


def rules_for(separator: str, *, strict: bool = False) -> NameRules:
    chars = ALWAYS_CHARS | ({separator} if separator else frozenset()) | (STRICT_CHARS if strict else frozenset())
    return NameRules(forbidden_names=frozenset(), forbidden_chars=chars, forbidden_extensions=frozenset(),
                     max_bytes=200)


def map_folders(folders: Iterable[FolderIn], special: dict[str, str], separator: str, *,
                strict: frozenset[str] = frozenset(), taken: Iterable[str] = ()) -> dict[str, FolderOut]:
    """Target names of the carried folders of one mailbox. `special` is the server's special-use map
    ({"\\\\Sent": "Sent", ...}); `strict` names source ids the server refused once (stricter rules for them);
    `taken` are full names at the server that are not ours (a folder renamed there never lands on one)."""
    sep = separator or "/"
    items = list(folders)
    others = list(taken)
    by_id = {f.source_id: f for f in items}
    out: dict[str, FolderOut] = {}
    homes = {a.lower(): n for a, n in special.items()}
    # well-known folders first: their homes are fixed names every sibling must avoid
    for f in items:
        if not f.carried or f.well_known not in SPECIAL:
            continue
        if f.target:
            out[f.source_id] = FolderOut(f.source_id, f.target, None)
            continue
        home = "INBOX" if f.well_known == "inbox" else homes.get(SPECIAL[f.well_known].lower())
        if home:
            note = None if f.well_known == "inbox" else f"the server's {SPECIAL[f.well_known]} folder"
            out[f.source_id] = FolderOut(f.source_id, home, note)
    reserved_top = {"INBOX", *homes.values(), *(o.target for o in out.values())}

    def target_of(fid: str) -> str | None:
        if fid in out:
            return out[fid].target
        f = by_id.get(fid)
        if f is None or not f.carried:
            return None
        parent = target_of(f.parent_id) if f.parent_id in by_id else ""
        if parent is None:   # the parent is not carried: nor is what is inside it
            return None
        _resolve_level(f.parent_id if f.parent_id in by_id else None, parent)
        return out[fid].target if fid in out else None

    def _resolve_level(parent_id: str | None, parent_target: str) -> None:
        level = [f for f in items if f.carried and (f.parent_id if f.parent_id in by_id else None) == parent_id
                 and f.source_id not in out]
        if not level:
            return
        siblings_taken = [o.target.rsplit(sep, 1)[-1] for o in out.values()
                          if (o.target.rsplit(sep, 1)[0] if sep in o.target else "") == parent_target]
        if not parent_target:
            siblings_taken += list(reserved_top)
        siblings_taken += [n.rsplit(sep, 1)[-1] for n in others
                           if (n.rsplit(sep, 1)[0] if sep in n else "").casefold() == parent_target.casefold()]
        fixed = [f for f in level if f.target]
        for f in fixed:
            out[f.source_id] = FolderOut(f.source_id, f.target or "", None)
            siblings_taken.append((f.target or "").rsplit(sep, 1)[-1])
        free = [f for f in level if not f.target]
        normal = [f for f in free if f.source_id not in strict]
        tight = [f for f in free if f.source_id in strict]
        for group, rules in ((normal, rules_for(sep)), (tight, rules_for(sep, strict=True))):
            if not group:
                continue
            named = resolve_siblings(((f.source_id, f.name) for f in group), rules, reserved=siblings_taken)
            for f in group:
                r = named[f.source_id]
                full = f"{parent_target}{sep}{r.target}" if parent_target else r.target
                reason = "; ".join(r.reasons) if r.renamed else None
                if f.source_id in strict:
                    reason = "the server refused the name; " + (reason or "renamed")
                out[f.source_id] = FolderOut(f.source_id, full, reason)
                siblings_taken.append(r.target)

    for f in items:
        if f.carried and f.source_id not in out:
            target_of(f.source_id)
    return out
