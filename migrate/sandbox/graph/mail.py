"""Mailboxes of the sandbox tenant: a folder tree per user and messages whose MIME is generated on request.

Generated lazily per user from the tenant seed (tests that never read mail pay nothing), deliberately nasty
(reference mail.md §1, §5.2): well-known folders and Outlook artefacts (Sync Issues, hidden), nested folders with
non-ASCII names, a name with '/' and one with '.', a hidden user folder, a folder whose item count includes an item
that is not a message; messages of every MIME shape (multipart/alternative, attachments, inline images, S/MIME,
a meeting request, 8-bit headers, drafts without Message-ID, replied/forwarded/flagged/complete, categories with
non-ASCII and spaces). Options in the TenantSpec add a large message (streamed) and a folder with thousands of
messages. Every change is logged with a sequence number: the per-folder delta reads that log.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from . import mail_mime
from .mail_mime import Envelope
from .tenant import Tenant, User

# Outlook's folders: (well-known name, display name, hidden); the order is the order Graph lists them in.
WELL_KNOWN = [("inbox", "Inbox", False), ("drafts", "Drafts", False), ("sentitems", "Sent Items", False),
              ("deleteditems", "Deleted Items", False), ("junkemail", "Junk Email", False),
              ("archive", "Archive", False), ("outbox", "Outbox", False),
              ("conversationhistory", "Conversation History", False), ("syncissues", "Sync Issues", True)]
SYNC_CHILDREN = [("conflicts", "Conflicts"), ("localfailures", "Local Failures"),
                 ("serverfailures", "Server Failures")]
VERB = "Integer 0x1081"     # PidTagLastVerbExecuted
ICON = "Integer 0x1080"     # PidTagIconIndex
SIZE = "Integer 0xe08"      # PidTagMessageSize, as Exchange spells it back (lower case, no leading zero)
EVENT_TYPE = "#microsoft.graph.eventMessageRequest"
T0 = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)


@dataclass(eq=False)
class Folder:
    id: str
    parent_id: str | None              # None only for the root (msgfolderroot)
    name: str
    well_known: str | None = None
    hidden: bool = False
    other_items: int = 0               # items that are not messages (counted in totalItemCount, never listed)


@dataclass(eq=False)
class Message:
    id: str                            # immutable id
    folder: str
    order: int                         # creation order: a stable paging key
    env: Envelope
    data: dict[str, Any]               # Graph properties besides id/parentFolderId
    props: dict[str, str] = field(default_factory=dict)   # extended properties ("Integer 0x1081" -> "102")
    size: int = 0                      # length of the MIME (variant 0, CRLF)
    seq: int = 0


@dataclass
class MailOptions:
    mime_mode: str = "stable"          # stable | regenerate (new boundaries per call) | lf (LF-only line ends)
    conceal_reports: bool = False      # the usage report hashes user names (the admin centre's privacy setting)


class MailStore:
    """One user's mailbox: folders, messages, a change log (seq, folder id, message id) and delta epochs."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.folders: dict[str, Folder] = {}
        self.messages: dict[str, Message] = {}
        self.seq = 0
        self.order = 0
        self.log: list[tuple[int, str, str]] = []
        self.folder_log: list[tuple[int, str]] = []     # (seq, folder id): folder delta
        self.epochs: dict[str, int] = {}       # folder id -> epoch of its delta tokens
        self.folder_epoch = 0                  # epoch of the folder delta's tokens
        self.calls = 0                         # $value calls (the regenerate mode's variant)
        self.root = ""
        self._index: dict[str, list[Message]] = {}
        self._index_seq = -1

    # ---------------------------------------------------------------- lookups
    def folder(self, ref: str) -> Folder | None:
        """By id or well-known name (case-insensitive), as Graph accepts either in the path."""
        f = self.folders.get(ref)
        if f is not None:
            return f
        low = ref.lower()
        if low == "msgfolderroot":
            return self.folders[self.root]
        return next((x for x in self.folders.values() if x.well_known == low), None)

    def by_path(self, path: str) -> Folder | None:
        """A folder by display names from the top, '/'-separated (names with '/' are not reachable this way)."""
        node = self.folders[self.root]
        for part in [p for p in path.split("/") if p]:
            nxt = next((f for f in self.children(node.id) if f.name.lower() == part.lower()), None)
            if nxt is None:
                return None
            node = nxt
        return node

    def children(self, fid: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == fid]

    def in_folder(self, fid: str) -> list[Message]:
        """The folder's messages in creation order (cached until the next change: every change bumps `seq`)."""
        if self._index_seq != self.seq:
            index: dict[str, list[Message]] = {}
            for m in sorted(self.messages.values(), key=lambda m: m.order):
                index.setdefault(m.folder, []).append(m)
            self._index, self._index_seq = index, self.seq
        return self._index.get(fid, [])

    def changed(self, since: int, upto: int) -> list[tuple[int, str, str]]:
        """Log entries with since < seq <= upto."""
        lo = bisect.bisect_right(self.log, since, key=lambda e: e[0])
        hi = bisect.bisect_right(self.log, upto, key=lambda e: e[0])
        return self.log[lo:hi]

    def path(self, f: Folder) -> str:
        parts = []
        while f.parent_id is not None:
            parts.append(f.name)
            f = self.folders[f.parent_id]
        return "/".join(reversed(parts))

    # ---------------------------------------------------------------- change log
    def touch(self, folder_id: str, msg_id: str) -> None:
        self.seq += 1
        self.log.append((self.seq, folder_id, msg_id))
        m = self.messages.get(msg_id)
        if m is not None:
            m.seq = self.seq
            m.data["changeKey"] = _change_key(m.id, self.seq)
            m.data["@odata.etag"] = f'W/"{m.data["changeKey"]}"'

    def touch_folder(self, folder_id: str) -> None:
        self.seq += 1
        self.folder_log.append((self.seq, folder_id))

    def tree(self) -> list[Folder]:
        """Every folder but the root, parents first (depth-first in listing order)."""
        out: list[Folder] = []
        stack = list(reversed(self.children(self.root)))
        while stack:
            f = stack.pop()
            out.append(f)
            stack.extend(reversed(self.children(f.id)))
        return out

    # ---------------------------------------------------------------- building
    def new_folder(self, parent: str | None, name: str, well_known: str | None = None, hidden: bool = False) -> Folder:
        raw = hashlib.sha256(f"{self.user.id}:folder:{len(self.folders)}:{name}".encode()).digest()
        fid = "AAMkAG" + base64.urlsafe_b64encode(raw[:30]).decode() + "AAA="
        f = self.folders[fid] = Folder(fid, parent, name, well_known, hidden)
        self.epochs[fid] = 0
        self.touch_folder(fid)
        return f

    def add(self, folder: Folder, env: Envelope, data: dict[str, Any], props: dict[str, str] | None = None,
            logged: bool = True) -> Message:
        self.order += 1
        raw = hashlib.sha256(f"{self.user.id}:msg:{self.order}:{env.seed}".encode()).digest()
        mid = "AAkALg" + base64.urlsafe_b64encode(raw[:36]).decode() + "AA=="
        m = Message(mid, folder.id, self.order, env, data, dict(props or {}))
        m.size = mail_mime.big_length(env) if env.kind == "big" else len(mail_mime.render(env))
        m.props.setdefault(SIZE, str(int(m.size * 1.04) + 512))    # approximate, as Exchange's store size is
        self.messages[mid] = m
        m.data["changeKey"] = _change_key(mid, 0)
        m.data["@odata.etag"] = f'W/"{m.data["changeKey"]}"'
        if logged:
            self.touch(folder.id, mid)
        return m


def _change_key(mid: str, seq: int) -> str:
    return base64.b64encode(hashlib.sha1(f"{mid}:{seq}".encode()).digest()[:15]).decode()


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def _who(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name, "address": address}}


def message_data(env: Envelope, *, is_read: bool = True, is_draft: bool = False, flag: str = "notFlagged",
                 categories: tuple[str, ...] = (), created: dt.datetime | None = None) -> dict[str, Any]:
    """The Graph JSON of a message (v1.0 names) from what its MIME is made of."""
    odata = EVENT_TYPE if env.kind == "invite" else "#microsoft.graph.message"
    out: dict[str, Any] = {
        "@odata.type": odata,
        "createdDateTime": _iso(created or env.received or env.sent),
        "lastModifiedDateTime": _iso(created or env.received or env.sent),
        "categories": list(categories),
        "receivedDateTime": _iso(env.received or created or env.sent),
        "sentDateTime": None if is_draft else _iso(env.sent),
        "hasAttachments": env.kind in ("attach", "fwd", "big", "smime_enc", "smime_sig"),
        "internetMessageId": f"<{env.message_id}>" if env.message_id else None,
        "subject": env.subject,
        "bodyPreview": "Hallo,",
        "importance": "normal",
        "conversationId": "AAQkAG" + hashlib.sha1(env.subject.removeprefix("Re: ").encode()).hexdigest()[:24],
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": is_read,
        "isDraft": is_draft,
        "inferenceClassification": "focused",
        "from": _who(*env.sender), "sender": _who(*env.sender),
        "toRecipients": [_who(n, a) for n, a in env.to],
        "ccRecipients": [_who(n, a) for n, a in env.cc], "bccRecipients": [], "replyTo": [],
        "flag": {"flagStatus": flag},
    }
    if env.kind == "invite":
        out["meetingMessageType"] = "meetingRequest"
    return out


class _Gen:
    """One mailbox, deterministically from the tenant seed and the user."""

    def __init__(self, tenant: Tenant, user: User, spec: Any) -> None:
        self.t, self.user, self.spec = tenant, user, spec
        self.rng = random.Random(f"mail:{tenant.seed}:{user.upn}")
        self.box = MailStore(user)
        self.n = 0

    def me(self) -> tuple[str, str]:
        return self.user.display_name, self.user.upn

    def colleague(self) -> tuple[str, str]:
        others = [u for u in self.t.users if u.id != self.user.id] or [self.user]
        u = self.rng.choice(others)
        return u.display_name, u.upn

    def env(self, kind: str, subject: str, *, sender: tuple[str, str] | None = None, delivered: bool = True,
            msgid: bool = True, reply_to: str | None = None, payload: int = 0) -> Envelope:
        self.n += 1
        sent = T0 + dt.timedelta(hours=7 * self.n + self.rng.randrange(5), minutes=self.rng.randrange(60),
                                 seconds=self.rng.randrange(60))
        sender = sender or self.colleague()
        seed = f"{self.t.seed}:{self.user.upn}:{self.n}"
        mid = f"{hashlib.sha1(seed.encode()).hexdigest()[:20].upper()}@{sender[1].split('@')[1].upper()}" \
            if msgid else None
        to = (self.me(),) if sender != self.me() else (self.colleague(),)
        return Envelope(kind, subject, sender, to, sent, sent + dt.timedelta(seconds=40) if delivered else None,
                        mid, seed, in_reply_to=reply_to, payload=payload)

    def put(self, folder: Folder, kind: str, subject: str, *, read: bool = True, flag: str = "notFlagged",
            categories: tuple[str, ...] = (), props: dict[str, str] | None = None, **kw: Any) -> Message:
        e = self.env(kind, subject, **kw)
        return self.box.add(folder, e, message_data(e, is_read=read, is_draft=kind == "draft", flag=flag,
                                                    categories=categories), props)

    def build(self) -> MailStore:
        b = self.box
        root = b.new_folder(None, "Top of Information Store", "msgfolderroot")
        b.root = root.id
        wk = {name: b.new_folder(root.id, disp, name, hidden) for name, disp, hidden in WELL_KNOWN}
        for name, disp in SYNC_CHILDREN:
            b.new_folder(wk["syncissues"].id, disp, name)
        inbox = wk["inbox"]
        projekte = b.new_folder(inbox.id, "Projekte")
        groesse = b.new_folder(projekte.id, "Größe & Übersicht")
        kunden = b.new_folder(inbox.id, "Kunden/Lieferanten")          # '/' inside a name
        punkt = b.new_folder(inbox.id, "Projekt 2.0")                 # '.' inside a name
        einkauf = b.new_folder(root.id, "Einkauf ✓ 2026")
        angebote = b.new_folder(einkauf.id, "Angebote")
        aeltere = b.new_folder(angebote.id, "Ältere Angebote")
        b.new_folder(root.id, "Leer")
        sent_own = b.new_folder(root.id, "Sent")          # a user's own folder named like the IMAP special-use one
        privat = b.new_folder(wk["archive"].id, "Privat (versteckt)", hidden=True)
        inbox.other_items = 1                                          # a sticky note dropped into the Inbox
        me = self.me()
        first = self.put(inbox, "alt", "Quartalsbericht Q1", read=True, flag="flagged",
                         categories=("Rot", "Projekt X"))
        self.put(inbox, "plain", "Grüße aus Köln", read=False, props={VERB: "102", ICON: "261"})
        self.put(inbox, "attach", "Angebot für das Büro – Entwurf", flag="complete", categories=("Grüne Kategorie",),
                 props={VERB: "104", ICON: "262"})
        self.put(inbox, "inline", "Newsletter mit Logo", props={ICON: "262"})   # forwarded: only the icon says so
        self.put(inbox, "smime_enc", "Vertraulich: Gehaltsabrechnung")
        self.put(inbox, "smime_sig", "Signierte Bestätigung")
        self.put(inbox, "invite", "Einladung: Jour fixe (Raum 2.14)")
        self.put(inbox, "raw8bit", "Rückfrage zur Übergröße", read=False)
        self.put(inbox, "fwd", "WG: Ursprüngliche Nachricht", props={VERB: "103", ICON: "261"})
        for i in range(int(getattr(self.spec, "mail_messages", 6))):
            self.put(inbox, "alt" if i % 2 else "plain", f"Rundschreiben {i + 1:03d}", read=i % 3 != 0)
        self.put(projekte, "alt", "Projektplan (Entwurf 3)")
        self.put(groesse, "plain", "Übersicht der Größen")
        self.put(kunden, "attach", "Lieferantenliste")
        self.put(punkt, "plain", "Release 2.0")
        self.put(aeltere, "alt", "Angebot 2019")
        self.put(angebote, "plain", "Angebot 2026")
        self.put(privat, "plain", "Privat: Arzttermin")
        self.put(sent_own, "plain", "Aus dem alten Mailprogramm")
        self.put(wk["sentitems"], "alt", "Re: Quartalsbericht Q1", sender=me, delivered=False,
                 reply_to=(first.env.message_id or ""))
        self.put(wk["sentitems"], "attach", "Unterlagen für Frau Weiß", sender=me, delivered=False)
        # one Message-ID, two items: a note to oneself (Sent Items and Inbox) and a list mail delivered twice
        note = self.env("plain", "Notiz an mich selbst", sender=me, delivered=False)
        note = dataclasses.replace(note, to=(me,))
        b.add(wk["sentitems"], note, message_data(note))
        got = dataclasses.replace(note, received=note.sent + dt.timedelta(seconds=20))
        b.add(inbox, got, message_data(got, is_read=False))
        rund = self.env("alt", "[liste] Rundbrief Dezember", sender=("Verteiler", "liste@lists.example.org"))
        b.add(inbox, rund, message_data(rund))
        twice = dataclasses.replace(rund, received=(rund.received or rund.sent) + dt.timedelta(minutes=3))
        b.add(inbox, twice, message_data(twice))
        self.put(wk["drafts"], "draft", "Entwurf: Antwort an den Vorstand", sender=me, delivered=False, msgid=False,
                 read=True)
        self.put(wk["drafts"], "draft", "Notiz ohne Betreff-Ä", sender=me, delivered=False, msgid=False)
        self.put(wk["deleteditems"], "plain", "Alte Einladung")
        self.put(wk["junkemail"], "spam", "Sie haben gewonnen!!!", sender=("Gewinnspiel", "win@spam.example"))
        self.put(wk["archive"], "alt", "Archiviert: Jahresabschluss 2024")
        self.put(wk["archive"], "mixedeol", "Altes Format (Zeilenenden gemischt)")
        self.put(wk["conversationhistory"], "plain", "Teams-Unterhaltung")
        self.put(b.folder("conflicts") or inbox, "plain", "Synchronisierungsproblem")
        big_mb = int(getattr(self.spec, "mail_large_mb", 0))
        if big_mb and self.user.id == self.t.users[0].id:
            self.put(inbox, "big", "Messdaten (groß)", payload=mail_mime.payload_for(big_mb * 1024 * 1024))
        bulk = int(getattr(self.spec, "mail_bulk", 0))
        if bulk and self.user.id == self.t.users[0].id:
            mass = b.new_folder(inbox.id, "Massenablage")
            for i in range(bulk):
                self.put(mass, "plain", f"Meldung {i + 1:05d}", read=i % 4 != 0)
        return b


class Mailboxes:
    """Every user's mailbox, generated on first use; the online archive facts the reports serve."""

    def __init__(self, tenant: Tenant, spec: Any) -> None:
        self.tenant, self.spec = tenant, spec
        self.boxes: dict[str, MailStore] = {}
        self.options = MailOptions()
        self.epoch = 0        # a global epoch: expiring every delta token at once

    def mailbox(self, user: User) -> MailStore:
        box = self.boxes.get(user.id)
        if box is None:
            box = self.boxes[user.id] = _Gen(self.tenant, user, self.spec).build()
        return box

    def enabled(self, user: User) -> bool:
        """False for the last `mail_no_mailbox_users` users: unlicensed, on-premises or soft-deleted mailboxes."""
        n = int(getattr(self.spec, "mail_no_mailbox_users", 0))
        return not n or all(u.id != user.id for u in self.tenant.users[-n:])

    def has_archive(self, user: User) -> bool:
        """The first `mail_archive_users` users have an online archive (its content is never served: v1.0 mail
        cannot read archives, so neither can the sandbox)."""
        n = int(getattr(self.spec, "mail_archive_users", 1))
        return any(u.id == user.id for u in self.tenant.users[:n])


def truth_rows(box: MailStore) -> list[dict[str, Any]]:
    """Every message of a mailbox as tests compare against (run in the loop thread; hashing is `hash_truth`'s)."""
    rows = []
    for f in box.tree():
        hidden, node = f.hidden, f
        while node.parent_id and not hidden:
            node = box.folders[node.parent_id]
            hidden = node.hidden
        for m in box.in_folder(f.id):
            d = m.data
            rows.append({"id": m.id, "folder_id": f.id, "folder": box.path(f), "well_known": f.well_known,
                         "hidden": hidden, "internet_message_id": d.get("internetMessageId"),
                         "subject": d.get("subject"), "received": d.get("receivedDateTime"),
                         "is_read": d.get("isRead"), "is_draft": d.get("isDraft"),
                         "flag": (d.get("flag") or {}).get("flagStatus"), "categories": list(d.get("categories") or []),
                         "last_verb": m.props.get(VERB), "icon_index": m.props.get(ICON), "size": m.size,
                         "_env": m.env})
    return rows


def hash_truth(row: dict[str, Any]) -> dict[str, Any]:
    """The row with the sha256 of the MIME `$value` serves (stable mode, CRLF), computed a slice at a time."""
    env = row.pop("_env")
    h = hashlib.sha256()
    for part in (mail_mime.big_chunks(env) if env.kind == "big" else (mail_mime.render(env),)):
        h.update(part)
    row["sha256"] = h.hexdigest()
    return row
