"""The Graph sandbox answers `$expand=singleValueExtendedProperties($filter=id eq '<PidLidHasPicture>')` on contact
listings and single contacts as Exchange does: the flag where there is a photo, absent or "false" where not."""

from __future__ import annotations

from migrate.backends.graph.contacts import HAS_PICTURE, WITH_PHOTO_FLAG
from tests.fixtures_graph import graph_http


def _flag(c):
    props = c.get("singleValueExtendedProperties")
    if props is None:
        return None
    assert len(props) == 1 and props[0]["id"].lower() == HAS_PICTURE.lower()
    return props[0]["value"]


def test_listing_carries_the_photo_flag_across_pages(graph_sandbox_factory):
    from migrate.sandbox.graph import TenantSpec

    g = graph_sandbox_factory(TenantSpec(seed=4, users=1, sites=0, teams=0, files_per_drive=2, no_mysite_users=0,
                                         groupware_contacts=24))
    u = g.tenant.users[0]
    mb = g.groupware.mailbox(u)
    seen: dict[str, str | None] = {}
    with graph_http(g) as c:
        for folder in mb.folders:
            path = (f"/users/{u.id}/contacts" if folder["id"] == mb.root_folder
                    else f"/users/{u.id}/contactFolders/{folder['id']}/contacts")
            page = c.get(path, params={"$top": 2, "$select": "id", **WITH_PHOTO_FLAG}).json()
            while True:
                for x in page["value"]:
                    assert set(x) <= {"id", "singleValueExtendedProperties"}
                    seen[x["id"]] = _flag(x)
                if "@odata.nextLink" not in page:
                    break
                page = c.get(page["@odata.nextLink"]).json()      # the $expand travels in the link
        plain = c.get(f"/users/{u.id}/contacts").json()["value"]
        one = next(iter(mb.photos))
        single = c.get(f"/users/{u.id}/contacts/{one}", params=WITH_PHOTO_FLAG).json()
    every = {x["id"] for f in mb.contacts.values() for x in f}
    assert set(seen) == every
    assert {i for i, v in seen.items() if v == "true"} == set(mb.photos)
    assert {v for i, v in seen.items() if i not in mb.photos} == {None, "false"}     # both forms of "none"
    assert all("singleValueExtendedProperties" not in x for x in plain)              # only when asked
    assert _flag(single) == "true" and single["displayName"]
