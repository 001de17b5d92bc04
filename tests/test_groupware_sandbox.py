"""The Graph sandbox's mailboxes behave like Exchange Online v1.0 (reference groupware.md §2–§3)."""

from __future__ import annotations

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec

SPEC = dict(seed=5, users=2, sites=0, teams=0, files_per_drive=2, no_mysite_users=0, groupware_events=6)


@pytest.fixture(scope="module")
def g():
    with GraphSandbox(TenantSpec(**SPEC)) as sandbox:
        yield sandbox


def client(g: GraphSandbox, tz: str = "UTC") -> httpx.Client:
    return httpx.Client(base_url=g.graph_url, timeout=30, headers={
        "Authorization": f"Bearer {g.issue_token()}", "Prefer": f'outlook.timezone="{tz}"'})


def test_events_list_only_singles_and_masters_and_instances_hide_cancelled(g):
    u = g.tenant.users[0]
    with client(g) as c:
        cal = c.get(f"/users/{u.id}/calendars").json()["value"][0]
        evs = c.get(f"/users/{u.id}/calendars/{cal['id']}/events", params={"$top": 100}).json()["value"]
        assert {e["type"] for e in evs} == {"singleInstance", "seriesMaster"}
        jf = next(e for e in evs if e["subject"] == "Jour fixe")
        assert jf["recurrence"]["pattern"]["type"] == "weekly"
        inst = c.get(f"/users/{u.id}/events/{jf['id']}/instances",
                     params={"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-02-05T00:00:00"}).json()["value"]
    starts = [i["originalStart"] for i in inst]
    assert starts == ["2027-01-11T09:00:00Z", "2027-01-18T09:00:00Z", "2027-02-01T09:00:00Z"]   # 25 Jan cancelled
    moved = inst[1]
    assert moved["type"] == "exception" and moved["start"]["dateTime"].startswith("2027-01-19T13:00")
    assert all(i["seriesMasterId"] == jf["id"] for i in inst)
    assert inst[0]["iCalUId"] != jf["iCalUId"]       # instance ids embed the date


def test_timezones_follow_prefer_but_all_day_dates_never_shift(g):
    u = g.tenant.users[0]
    with client(g, "Tokyo Standard Time") as c:
        cal = c.get(f"/users/{u.id}/calendars").json()["value"][0]
        evs = c.get(f"/users/{u.id}/calendars/{cal['id']}/events", params={"$top": 100}).json()["value"]
    jf = next(e for e in evs if e["subject"] == "Jour fixe")
    assert jf["start"] == {"dateTime": "2027-01-11T18:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    allday = next(e for e in evs if e["subject"] == "Klausur (3 Tage)")
    assert allday["isAllDay"] and allday["start"]["dateTime"] == "2027-04-14T00:00:00.0000000"
    assert allday["end"]["dateTime"] == "2027-04-17T00:00:00.0000000"
    zones = {e["originalStartTimeZone"] for e in evs}
    assert {"Customized Time Zone", "tzone://Microsoft/Custom", "Pacific Standard Time"} <= zones


def test_calendar_view_delta_pages_then_reports_changes(g):
    u = g.tenant.users[1]
    with client(g) as c:
        r = c.get(f"/users/{u.id}/calendarView/delta", headers={"Prefer": "odata.maxpagesize=20"},
                  params={"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"}).json()
        seen = 0
        while "@odata.nextLink" in r:
            seen += len(r["value"])
            r = c.get(r["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=20"}).json()
        seen += len(r["value"])
        assert seen > 40 and all(v["type"] != "seriesMaster" for v in r["value"])
        again = c.get(r["@odata.deltaLink"]).json()
        assert again["value"] == [] and "@odata.deltaLink" in again
        bad = c.get(f"/users/{u.id}/calendarView/delta", params={"$select": "subject", "startDateTime": "2027-01-01",
                                                                 "endDateTime": "2027-02-01"})
        assert bad.status_code == 400


def test_contacts_nested_folders_and_photos(g):
    u = g.tenant.users[0]
    with client(g) as c:
        top = c.get(f"/users/{u.id}/contactFolders").json()["value"]
        assert {f["displayName"] for f in top} == {"Kunden", "Privat ♥"}
        kunden = next(f for f in top if f["displayName"] == "Kunden")
        kids = c.get(f"/users/{u.id}/contactFolders/{kunden['id']}/childFolders").json()["value"]
        assert [k["displayName"] for k in kids] == ["2024"]
        default = c.get(f"/users/{u.id}/contacts").json()["value"]
        anna = next(x for x in default if x["surname"] == "Example-Berger")
        photo = c.get(f"/users/{u.id}/contacts/{anna['id']}/photo/$value")
        assert photo.status_code == 200 and photo.content.startswith(b"\xff\xd8")
        other = next(x for x in default if x["id"] != anna["id"] and x["id"] not in g.groupware.mailbox(u).photos)
        assert c.get(f"/users/{u.id}/contacts/{other['id']}/photo/$value").status_code == 404
        d = c.get(f"/users/{u.id}/contactFolders/{kunden['id']}/contacts/delta").json()
        assert "@odata.deltaLink" in d


def test_delta_after_a_change_returns_the_series_instances_and_removals(g):
    import datetime as dt

    u = g.tenant.users[1]
    with client(g) as c:
        params = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"}
        r = c.get(f"/users/{u.id}/calendarView/delta", params=params, headers={"Prefer": "odata.maxpagesize=1000"}).json()
        link = r["@odata.deltaLink"]
        sid = g.call(g.groupware_mutations.cancel_occurrence, u, "Jour fixe", dt.date(2027, 2, 8))
        gone = g.call(g.groupware_mutations.delete_event, u, "Arzttermin")
        d = c.get(link).json()
    changed = [v for v in d["value"] if "@removed" not in v]
    assert changed and {v["seriesMasterId"] for v in changed} == {sid}
    assert "2027-02-08T09:00:00Z" not in {v["originalStart"] for v in changed}
    assert [v["id"] for v in d["value"] if "@removed" in v] == [gone]
