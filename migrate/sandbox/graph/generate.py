"""Deterministic tenant generator: same TenantSpec (seed included) → byte-identical tenant."""

from __future__ import annotations

import base64
import random
import unicodedata
from dataclasses import dataclass, fields
from typing import Any

from . import perms
from .content import Content
from .tenant import DOMAIN, GEN_TIME, MY_HOST, SP_HOST, Drive, Group, Item, Site, Tenant, User, guid

GIVEN = ["Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia", "Lynne",
         "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Ryan", "Zoë", "Øyvind", "José"]
SURNAMES = ["Vance", "Wilber", "Siciliani", "Archie", "Cane", "Henderson", "Lauer", "Sherman", "Gu", "Holloway",
            "Fernandez", "Bowen", "Bowen", "Wilke", "Fernandez", "Gupta", "Gregg", "Müller", "Ødegaard", "Núñez"]
WORDS = ["budget", "roadmap", "minutes", "invoice", "contract", "design", "report", "plan", "notes", "draft",
         "review", "summary", "forecast", "photos", "specs", "backlog", "audit", "policy", "training", "archive"]
EXTS = ["txt", "pdf", "jpg", "png", "csv", "docx", "xlsx", "pptx", "zip", "md"]
OFFICE = ("docx", "xlsx", "pptx")
LIB_NAMES = ["Documents", "Projects", "Archive"]
MIME = {"txt": "text/plain", "pdf": "application/pdf", "jpg": "image/jpeg", "png": "image/png", "csv": "text/csv",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "zip": "application/zip", "md": "text/markdown", "one": "application/msonenote",
        "onetoc2": "application/msonenote", "exe": "application/octet-stream", "bin": "application/octet-stream"}


def mime_of(name: str) -> str:
    return MIME.get(name.rsplit(".", 1)[-1].lower() if "." in name else "", "application/octet-stream")


@dataclass
class TenantSpec:
    """What to generate. Every field has a small default so `TenantSpec()` is a quick test tenant."""

    seed: int = 7
    users: int = 5
    sites: int = 2
    teams: int = 2
    files_per_drive: int = 40
    max_depth: int = 4
    large_file_mb: int = 0       # >0: one file of this size in the first OneDrive and in the first library
    awkward_names: bool = True
    shares: bool = True
    versions: bool = True
    onenote: bool = True
    no_mysite_users: int = 1     # the last N users have no OneDrive
    malware_files: int = 1       # files flagged `malware` (download → 403), in the first OneDrive
    groupware_events: int = 12   # generated events per mailbox besides the hand-made nasty ones
    groupware_recurring: float = 0.3   # share of those that are recurring series
    groupware_contacts: int = 6  # generated contacts per mailbox besides the hand-made one
    groupware_attachment_kb: int = 300  # size of the large event attachment
    mail_messages: int = 6       # generated messages per Inbox besides the hand-made nasty ones
    mail_large_mb: int = 0       # >0: a message of about this many MiB in the first user's Inbox (served streamed)
    mail_bulk: int = 0           # >0: a folder "Inbox/Massenablage" with this many messages (first user)
    mail_archive_users: int = 1  # the first N users have an online archive (reported, never readable)
    mail_no_mailbox_users: int = 0   # the last N users have no Exchange Online mailbox (404 MailboxNotEnabledForRESTAPI)
    licences: int = 60_000       # what /subscribedSkus reports: the top RU band, so tests are paced little

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown tenant spec keys {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**data)


def _ts(rng: random.Random) -> float:
    """A deterministic past instant in 2023–2025."""
    return float(1672531200 + rng.randrange(3 * 365 * 86400))


def _awkward(parent_depth_ok: bool) -> list[tuple[str, str, int]]:
    """(relative folder path, file name, size) of names that break naive migrators."""
    long_ascii = "long-name-" + "x" * 235 + ".txt"                  # 249 bytes
    long_utf8 = "ü" * 122 + ".txt"                                   # 248 bytes, 126 characters
    deep = "/".join(["Deeply nested folder with a rather long name to push the path length " + str(i)
                     for i in range(6)])                            # > 400 characters
    out = [
        ("Awkward", unicodedata.normalize("NFC", "Café résumé.txt"), 1200),
        ("Awkward", unicodedata.normalize("NFD", "Naïve façade.txt"), 1300),
        ("Awkward", "trailing dot.", 10),
        ("Awkward", "trailing space.txt ", 11),
        ("Awkward", "100% #1 report.txt", 300),
        ("Awkward", "a#b%c&d+e.txt", 301),
        ("Awkward", long_ascii, 50),
        ("Awkward", long_utf8, 51),
        ("Awkward/Folder with trailing space ", "inside.txt", 52),
        ("Awkward/Ünïcödé NFD".replace("Ünïcödé", unicodedata.normalize("NFD", "Ünïcödé")), "x.txt", 53),
        ("Awkward", "empty.txt", 0),
    ]
    if parent_depth_ok:
        out.append(("Awkward/" + deep, "at the bottom of a very long path.txt", 54))
    return out


class _Builder:
    def __init__(self, spec: TenantSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.t = Tenant(seed=spec.seed, tenant_id=guid(self.rng), licences=spec.licences)

    def drive(self, name: str, dtype: str, owner: dict[str, Any], web_url: str, **kw: Any) -> Drive:
        raw = self.rng.randbytes(48)
        d = Drive(id="b!" + base64.urlsafe_b64encode(raw).decode(), index=len(self.t.drive_list), name=name,
                  drive_type=dtype, owner=owner, web_url=web_url, created=_ts(self.rng),
                  rng=random.Random(self.rng.getrandbits(64)), **kw)
        self.t.drives[d.id] = d
        self.t.drive_list.append(d)
        return d

    def build(self) -> Tenant:
        s, rng, t = self.spec, self.rng, self.t
        seen: set[str] = set()
        for i in range(s.users):
            gn, sn = GIVEN[i % len(GIVEN)], SURNAMES[(i * 7) % len(SURNAMES)]
            base = f"{gn}.{sn}".lower().encode("ascii", "ignore").decode().replace(" ", "")
            upn = f"{base}{'' if base not in seen else i}@{DOMAIN}"
            seen.add(base)
            u = User(id=guid(rng), display_name=f"{gn} {sn}", given_name=gn, surname=sn, upn=upn,
                     job_title=rng.choice([None, "Engineer", "Accountant", "Manager"]))
            t.users.append(u)
            t.user_index[u.id] = u
            t.user_index[u.upn.lower()] = u
        t.guests = [{"displayName": f"Guest {n}", "email": f"guest{n}@example.org", "id": guid(rng)}
                    for n in range(1, 4)]
        for i, u in enumerate(t.users):
            if i >= s.users - s.no_mysite_users:
                continue
            slug = u.upn.split("@")[0].replace(".", "_") + "_contoso_onmicrosoft_com"
            d = self.drive("OneDrive", "business", {"user": u.identity()},
                           f"https://{MY_HOST}/personal/{slug}/Documents", owner_user=u.id)
            u.drive_id = d.id
        for i in range(s.sites):
            name = "root" if i == 0 else f"{rng.choice(WORDS).capitalize()}Site{i}"
            site = Site(id=f"{SP_HOST},{guid(rng)},{guid(rng)}", name=name if i else "Root Site",
                        display_name="Communication site" if i == 0 else name,
                        web_url=f"https://{SP_HOST}" + ("" if i == 0 else f"/sites/{name}"),
                        created=_ts(rng), is_root=i == 0)
            t.sites.append(site)
            for lib in LIB_NAMES[: rng.randint(1, 3)]:
                path = "Shared%20Documents" if lib == "Documents" else lib
                d = self.drive(lib, "documentLibrary", {"user": {"displayName": "System Account"}},
                               f"{site.web_url}/{path}", site_id=site.id)
                site.drive_ids.append(d.id)
        for i in range(s.teams):
            name = f"Team {rng.choice(WORDS).capitalize()} {i + 1}"
            nick = name.replace(" ", "")
            members = sorted({u.id for u in rng.sample(t.users, min(len(t.users), rng.randint(2, 4)))})
            g = Group(id=guid(rng), display_name=name, mail=f"{nick}@{DOMAIN}", members=members)
            site = Site(id=f"{SP_HOST},{guid(rng)},{guid(rng)}", name=nick, display_name=name,
                        web_url=f"https://{SP_HOST}/sites/{nick}", created=_ts(rng), group_id=g.id)
            d = self.drive("Documents", "documentLibrary",
                           {"group": {"email": g.mail, "id": g.id, "displayName": f"{name} Owners"}},
                           f"{site.web_url}/Shared%20Documents", site_id=site.id, owner_group=g.id)
            site.drive_ids.append(d.id)
            g.site_id, g.drive_id = site.id, d.id
            t.groups.append(g)
            t.sites.append(site)
        for d in t.drive_list:
            self.fill(d)
        return t

    # ------------------------------------------------------------------ items
    def who(self, d: Drive) -> str:
        if d.owner_user:
            return d.owner_user
        if d.owner_group:
            g = self.t.group(d.owner_group)
            return g.members[d.rng.randrange(len(g.members))] if g and g.members else ""
        return self.t.users[d.rng.randrange(len(self.t.users))].id if self.t.users else ""

    def folder_path(self, d: Drive, rel: str) -> Item:
        node = d.root
        assert node is not None
        for part in [p for p in rel.split("/") if p]:
            nxt = next((c for c in node.children.values() if c.name == part), None)
            if nxt is None:
                nxt = d.add(node, part, "folder", self.who(d), _ts(d.rng))
            node = nxt
        return node

    def add_file(self, d: Drive, parent: Item, name: str, size: int) -> Item:
        it = d.add(parent, name, "file", self.who(d), _ts(d.rng), size)
        it.modified = max(it.created, _ts(d.rng))
        if d.drive_type == "documentLibrary" and name.rsplit(".", 1)[-1].lower() in OFFICE:
            it.enrich_extra = 512 + d.rng.randrange(4096)
        return it

    def fill(self, d: Drive) -> None:
        s, r = self.spec, d.rng
        root = d.add(None, "root", "root", self.who(d), d.created)
        folders = [(root, 0)]
        # the folders that may still get subfolders, in creation order (kept as we go: filtering the whole list
        # for every new folder made a 1M-item drive take 20 minutes to generate)
        candidates = [f for f in folders if f[1] < s.max_depth]
        for n in range(max(1, s.files_per_drive // 6)):
            parent, depth = candidates[r.randrange(len(candidates))]
            f = d.add(parent, f"{r.choice(WORDS).capitalize()} {n}", "folder", self.who(d), _ts(r))
            folders.append((f, depth + 1))
            if depth + 1 < s.max_depth:
                candidates.append((f, depth + 1))
        files: list[Item] = []
        for n in range(s.files_per_drive):
            parent = folders[r.randrange(len(folders))][0]
            ext = r.choice(EXTS + (list(OFFICE) * 2 if d.drive_type == "documentLibrary" else []))
            roll = r.random()
            size = 0 if roll < 0.05 else int(2 ** r.uniform(6, 16)) if roll < 0.9 else r.randrange(1 << 16, 1 << 21)
            files.append(self.add_file(d, parent, f"{r.choice(WORDS)}-{n}.{ext}", size))
        if s.awkward_names:
            for rel, name, size in _awkward(True):
                files.append(self.add_file(d, self.folder_path(d, rel), name, size))
        first_personal = d.owner_user is not None and d.index == 0
        first_library = d.drive_type == "documentLibrary" and all(
            x.drive_type != "documentLibrary" for x in self.t.drive_list[: d.index])
        if s.large_file_mb and (first_personal or first_library):
            files.append(self.add_file(d, root, "large-video.bin", s.large_file_mb << 20))
        if s.onenote and (d.drive_type == "documentLibrary" or d.index % 2 == 0):
            nb = d.add(root, "Team Notebook" if d.drive_type == "documentLibrary" else "My Notebook", "package",
                       self.who(d), _ts(r))
            for sec in ("Open Notebook.onetoc2", "Meetings.one", "Ideas.one"):
                self.add_file(d, nb, sec, r.randrange(4096, 65536))
        if first_personal:
            for n in range(s.malware_files):
                self.add_file(d, root, f"suspicious-{n}.exe", 4321 + n).malware = True
        if s.versions:
            for it in files:
                if it.content is not None and it.content.size and r.random() < 0.2:
                    for _ in range(r.randint(1, 3)):   # 2–4 versions in all, counting the current one
                        it.old_versions.append(_old_version(d, it))
                    it.content = d.new_content(max(1, it.content.size + r.randrange(-50, 500)))
                    it.etag_n = it.ctag_n = len(it.old_versions) + 1
        if s.shares:
            self.share(d, files)

    def share(self, d: Drive, files: list[Item]) -> None:
        r, t = d.rng, self.t
        others = [u for u in t.users if u.id != d.owner_user] or t.users
        pick = [f for f in files if not f.malware]
        if not pick or not others:
            return
        folders = [i for i in d.items.values() if i.kind == "folder"]
        plan: list[tuple[Item, list[tuple[str, dict[str, Any]]]]] = [
            (pick[0], [("user", {"user": others[0]}), ("group", {"group": t.groups[0] if t.groups else None})]),
            (pick[len(pick) // 3], [("organization", {})]),
            (pick[len(pick) // 2], [("anonymous", {"roles": ["write"], "password": True,
                                                   "expiration": "2027-06-30T00:00:00Z"})]),
            (pick[-1], [("guest", {}), ("users_link", {"user": others[-1]})]),
        ]
        folder = folders[r.randrange(len(folders))] if folders else None
        if folder is not None:
            plan.append((folder, [("user", {"user": others[-1], "roles": ["write"]}), ("organization", {})]))
        # Several grants reaching one recipient, as real tenants have them: a people link (view) and a direct
        # write grant to the same person, in both orders; and an organisation link beside a write grant to the
        # group that the organisation maps to. The target must get one share each, with the union of the grants.
        plan.append((pick[len(pick) // 4], [("users_link", {"user": others[0]}),
                                            ("user", {"user": others[0], "roles": ["write"]})]))
        plan.append((pick[(len(pick) * 3) // 4], [("user", {"user": others[0], "roles": ["write"]}),
                                                  ("users_link", {"user": others[0]})]))
        if folder is not None and t.groups:
            plan.append((folder, [("group", {"group": t.groups[0], "roles": ["write"]})]))
        for item, grants in plan:
            for kind, kw in grants:
                if kind == "group" and kw.get("group") is None:
                    continue
                p = perms.make(t, d, kind, rng=r, **kw)
                if all(x["id"] != p["id"] for x in item.perms):  # Graph lists one entry per principal
                    item.perms.append(p)


def _old_version(d: Drive, it: Item) -> Any:
    from .tenant import Version

    assert it.content is not None
    v = Version(label=f"{len(it.old_versions) + 1}.0", content=it.content, modified=it.modified,
                modified_by=it.modified_by)
    it.content = Content(d.rng.randrange(1 << 20), max(1, it.content.size + d.rng.randrange(-50, 500)))
    it.modified = it.modified + d.rng.randrange(3600, 30 * 86400)
    return v


def generate(spec: TenantSpec) -> Tenant:
    """Build the tenant for `spec`; the change log starts with every item, all stamped at GEN_TIME."""
    assert GEN_TIME
    return _Builder(spec).build()
