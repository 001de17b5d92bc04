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


def contact_pages(client: GraphClient, user_id: str, folder_id: str) -> Iterator[list[dict[str, Any]]]:
    path = (f"/users/{q(user_id)}/contacts" if folder_id == DEFAULT_FOLDER
            else f"/users/{q(user_id)}/contactFolders/{q(folder_id)}/contacts")
    yield from pages(client, path, {"$top": PAGE}, kind="contacts")


def photo(client: GraphClient, user_id: str, contact_id: str) -> bytes | None:
    """The contact's photo bytes, None when it has none (404)."""
    def call() -> bytes:
        return client.request_once("GET", f"/users/{q(user_id)}/contacts/{q(contact_id)}/photo/$value",
                                   kind="photo").content

    try:
        return client.pacer.call(call, what="photo")
    except ItemNotFound:
        return None
