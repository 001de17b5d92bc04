"""One Graph contact (+ photo) → one vCard 3.0 (RFC 2426), the version Nextcloud serves by default (§5.1).

UID = the contact's Graph id (no cross-mailbox identity exists); the output is deterministic so reruns write
identical bytes. Fields without a 3.0 property are kept as X- properties rather than dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

PRODID = "-//m365-migrate//groupware//EN"


@dataclass
class MappedCard:
    text: str
    uid: str
    notes: list[str] = field(default_factory=list)


def birthday_date(value: str | None) -> dt.date | None:
    """Exchange birthdays are instants near noon; the calendar date of birthday + 12 h (UTC) is the day (§3.2)."""
    if not value:
        return None
    t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t.astimezone(dt.UTC) + dt.timedelta(hours=12)).date()


def _display(c: dict[str, Any]) -> str:
    if c.get("displayName"):
        return str(c["displayName"])
    name = " ".join(p for p in (c.get("givenName"), c.get("surname")) if p)
    mails = [e.get("address") for e in c.get("emailAddresses") or [] if e.get("address")]
    return name or c.get("companyName") or (mails[0] if mails else "") or "(no name)"


def map_contact(c: dict[str, Any], photo: bytes | None = None, *, folder_path: str = "") -> MappedCard:
    import vobject

    notes: list[str] = []
    v = vobject.vCard()
    v.add("version").value = "3.0"
    v.add("prodid").value = PRODID
    uid = str(c["id"])
    v.add("uid").value = uid
    v.add("fn").value = _display(c)
    v.add("n").value = vobject.vcard.Name(family=c.get("surname") or "", given=c.get("givenName") or "",
                                          additional=c.get("middleName") or "", prefix=c.get("title") or "",
                                          suffix=c.get("generation") or "")
    if c.get("nickName"):
        v.add("nickname").value = c["nickName"]
    if c.get("companyName") or c.get("department"):
        v.add("org").value = [c.get("companyName") or "", *([c["department"]] if c.get("department") else [])]
    if c.get("jobTitle"):
        v.add("title").value = c["jobTitle"]
    if c.get("profession"):
        v.add("role").value = c["profession"]
    for i, e in enumerate(a for a in c.get("emailAddresses") or [] if a.get("address")):
        p = v.add("email")
        p.value = e["address"]
        p.type_param = ["INTERNET", "PREF"] if i == 0 else ["INTERNET"]
    for kind, values in (("WORK,VOICE", c.get("businessPhones") or []), ("HOME,VOICE", c.get("homePhones") or []),
                         ("CELL", [c["mobilePhone"]] if c.get("mobilePhone") else [])):
        for number in values:
            p = v.add("tel")
            p.value = number
            p.type_param = kind.split(",")
    for key, kind in (("businessAddress", "WORK"), ("homeAddress", "HOME"), ("otherAddress", None)):
        a = c.get(key) or {}
        if not any(a.get(k) for k in ("street", "city", "state", "postalCode", "countryOrRegion")):
            continue
        p = v.add("adr")
        p.value = vobject.vcard.Address(street=a.get("street") or "", city=a.get("city") or "",
                                        region=a.get("state") or "", code=a.get("postalCode") or "",
                                        country=a.get("countryOrRegion") or "")
        if kind:
            p.type_param = kind
    bday = birthday_date(c.get("birthday"))
    if bday:
        v.add("bday").value = bday.isoformat()
    if c.get("personalNotes"):
        v.add("note").value = str(c["personalNotes"]).replace("\r\n", "\n")
    cats = list(c.get("categories") or [])
    if cats:
        v.add("categories").value = cats
    if c.get("businessHomePage"):
        v.add("url").value = c["businessHomePage"]
    for im in c.get("imAddresses") or []:
        v.add("impp").value = im
    for key, prop in (("spouseName", "x-ms-spouse"), ("manager", "x-ms-manager"),
                      ("assistantName", "x-ms-assistant"), ("officeLocation", "x-ms-office"),
                      ("initials", "x-ms-initials"), ("fileAs", "x-ms-fileas"),
                      ("yomiGivenName", "x-phonetic-first-name"), ("yomiSurname", "x-phonetic-last-name"),
                      ("yomiCompanyName", "x-phonetic-org")):
        if c.get(key):
            v.add(prop).value = str(c[key])
    for child in c.get("children") or []:
        v.add("x-ms-child").value = child
    if folder_path:
        v.add("x-m365-folder").value = folder_path
    v.add("x-m365-graph-id").value = uid
    if c.get("lastModifiedDateTime"):
        t = dt.datetime.fromisoformat(str(c["lastModifiedDateTime"]).replace("Z", "+00:00")[:19])
        v.add("rev").value = t.strftime("%Y%m%dT%H%M%SZ")
    if photo:
        p = v.add("photo")
        p.value = photo
        p.encoding_param = "b"
        p.type_param = "PNG" if photo.startswith(b"\x89PNG") else "JPEG"
    return MappedCard(v.serialize(), uid, notes)


def card_fields(text: str) -> dict[str, Any]:
    """The fields a round-trip check compares, parsed back from a stored vCard (any version Nextcloud serves)."""
    import vobject

    v = vobject.readOne(text)

    def all_of(name: str) -> list[Any]:
        return [x.value for x in v.contents.get(name, [])]

    n = v.n.value if "n" in v.contents else None
    photo = all_of("photo")
    return {
        "uid": v.uid.value, "fn": v.fn.value,
        "n": (n.family, n.given, n.additional, n.prefix, n.suffix) if n else None,
        "email": sorted(all_of("email")), "tel": sorted(all_of("tel")),
        "org": [tuple(o) for o in all_of("org")], "title": all_of("title"), "note": all_of("note"),
        "bday": [str(b)[:10] for b in all_of("bday")], "categories": [sorted(c) for c in all_of("categories")],
        "adr": sorted((a.street, a.city, a.code, a.country) for a in all_of("adr")),
        "photo": [p if isinstance(p, bytes) else p.encode() for p in photo],
    }
