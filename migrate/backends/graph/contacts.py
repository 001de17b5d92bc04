"""Reading contact folders (nested to any depth), contacts and their photos through Graph v1.0 (§3)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.backends.graph.calendars import PAGE, pages, q
from migrate.errors import ItemNotFound

if TYPE_CHECKING:
    from migrate.backends.graph.client import GraphClient

DEFAULT_FOLDER = "contacts"      # our id for the default Contacts folder (it has no contactFolders entry)
# PidLidHasPicture (MS-OXPROPS: PSETID_Address, LID 0x8015, PT_BOOLEAN): Graph has no hasPhoto property and
# `$expand=photo` adds nothing, but a listing can carry this extended property, so a photo is asked for only
# where there is one (each photo request counts against Outlook's per-mailbox limits).
HAS_PICTURE = "Boolean {00062004-0000-0000-C000-000000000046} Id 0x8015"
WITH_PHOTO_FLAG = {"$expand": f"singleValueExtendedProperties($filter=id eq '{HAS_PICTURE}')"}


@dataclass(frozen=True, slots=True)
class ContactFolder:
    id: str
    name: str
    path: str            # "Contacts / Kunden / 2024"


def folders(client: GraphClient, user_id: str) -> list[ContactFolder]:
    """The default folder, then every folder below it, depth first."""
    out = [ContactFolder(DEFAULT_FOLDER, "Contacts", "Contacts")]

    def walk(path: str, parent: str, prefix: str) -> None:
        for page in pages(client, path, {"$top": PAGE}, kind="contactFolders"):
            for f in page:
                full = f"{prefix} / {f.get('displayName') or ''}"
                out.append(ContactFolder(f["id"], f.get("displayName") or "", full))
                walk(f"/users/{q(user_id)}/contactFolders/{q(f['id'])}/childFolders", f["id"], full)

    walk(f"/users/{q(user_id)}/contactFolders", DEFAULT_FOLDER, "Contacts")
    return out


@dataclass(frozen=True, slots=True)
class ListedContact:
    """A contact as Graph lists it (without the extended property) and whether it has a photo: None when the
    listing could not say (delta pages), so the photo itself must be asked for."""

    data: dict[str, Any]
    has_photo: bool | None


def _path(user_id: str, folder_id: str) -> str:
    return (f"/users/{q(user_id)}/contacts" if folder_id == DEFAULT_FOLDER
            else f"/users/{q(user_id)}/contactFolders/{q(folder_id)}/contacts")


def listed(c: dict[str, Any]) -> ListedContact:
    """Split the PidLidHasPicture flag off a contact of a listing that asked for it (absent = no photo)."""
    props = c.get("singleValueExtendedProperties") or []
    flag = next((str(p.get("value", "")).lower() == "true" for p in props
                 if str(p.get("id", "")).lower() == HAS_PICTURE.lower()), False)
    return ListedContact({k: v for k, v in c.items() if k != "singleValueExtendedProperties"}, flag)


def contact_pages(client: GraphClient, user_id: str, folder_id: str) -> Iterator[list[ListedContact]]:
    for page in pages(client, _path(user_id, folder_id), {"$top": PAGE, **WITH_PHOTO_FLAG}, kind="contacts"):
        yield [listed(c) for c in page]


def photo_flags(client: GraphClient, user_id: str, folder_id: str) -> dict[str, bool]:
    """Contact id → has a photo, for a whole folder in one listing of ids (a page per 100 contacts)."""
    out: dict[str, bool] = {}
    for page in pages(client, _path(user_id, folder_id), {"$top": PAGE, "$select": "id", **WITH_PHOTO_FLAG},
                      kind="contacts"):
        for c in page:
            out[str(c["id"])] = bool(listed(c).has_photo)
    return out


def photo(client: GraphClient, user_id: str, contact: ListedContact) -> bytes | None:
    """The contact's photo bytes, None when it has none (known from the listing, or a 404)."""
    if contact.has_photo is False:
        return None
    contact_id = str(contact.data["id"])
    def call() -> bytes:
        return client.request_once("GET", f"/users/{q(user_id)}/contacts/{q(contact_id)}/photo/$value",
                                   kind="photo").content

    try:
        return client.pacer.call(call, what="photo")
    except ItemNotFound:
        return None
