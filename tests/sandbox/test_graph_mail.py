"""The Graph sandbox's mail behaves like Exchange Online v1.0 (reference mail.md §1, §5.2, §6)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox
from tests.fixtures_graph import graph_http
from tests.mail_graph_support import folder_messages, spec

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
EXPAND = "singleValueExtendedProperties($filter=id eq 'Integer 0x1081' or id eq 'Integer 0x0E08')"


@pytest.fixture(scope="module")
def g():
    with GraphSandbox(spec()) as sandbox:
        yield sandbox


@pytest.fixture
def c(g):
    with graph_http(g) as client:
        yield client


def _all(c: httpx.Client, url: str, params: dict | None = None, headers: dict | None = None) -> list[list[dict]]:
    pages = []
    r = c.get(url, params=params, headers=headers)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        pages.append(body["value"])
        if "@odata.nextLink" not in body:
            return pages
        assert body["@odata.nextLink"].startswith(c.base_url.scheme + "://127.0.0.1")
        r = c.get(body["@odata.nextLink"], headers=headers)


def test_folders_hidden_only_on_request_well_known_names_and_paging(g, c):
    u = g.tenant.users[0]
    plain = [f["displayName"] for p in _all(c, f"/users/{u.id}/mailFolders") for f in p]
    pages = _all(c, f"/users/{u.id}/mailFolders", {"includeHiddenFolders": "true", "$top": 3})
    every = [f for p in pages for f in p]
    assert [len(p) for p in pages] == [3, 3, 3, 3]           # 12 top-level folders, 3 a page
    assert "Sync Issues" not in plain and "Sync Issues" in [f["displayName"] for f in every]
    assert set(plain) == {f["displayName"] for f in every} - {"Sync Issues"}
    sync = next(f for f in every if f["displayName"] == "Sync Issues")
    assert sync["isHidden"] is True and sync["childFolderCount"] == 3
    kids = c.get(f"/users/{u.id}/mailFolders/{sync['id']}/childFolders").json()["value"]
    assert [k["displayName"] for k in kids] == ["Conflicts", "Local Failures", "Server Failures"]
    inbox = c.get(f"/users/{u.id}/mailFolders/Inbox").json()      # names are case-insensitive
    assert inbox["displayName"] == "Inbox" and c.get(f"/users/{u.id}/mailFolders/inbox",
                                                      params={"$select": "id"}).json() == {"id": inbox["id"]}
    root = c.get(f"/users/{u.id}/mailFolders/msgfolderroot").json()
    assert inbox["parentFolderId"] == root["id"]
    assert inbox["totalItemCount"] == len(folder_messages(g, u.id, "inbox")) + 1    # a non-message item
    sub = c.get(f"/users/{u.id}/mailFolders/inbox/childFolders").json()["value"]
    assert {s["displayName"] for s in sub} == {"Projekte", "Kunden/Lieferanten", "Projekt 2.0"}
    archive_kids = c.get(f"/users/{u.id}/mailFolders/archive/childFolders").json()["value"]
    assert archive_kids == []
    hidden = c.get(f"/users/{u.id}/mailFolders/archive/childFolders", params={"includeHiddenFolders": "true"})
    assert [f["displayName"] for f in hidden.json()["value"]] == ["Privat (versteckt)"]
    for name in ("clutter", "nosuchfolder"):
        r = c.get(f"/users/{u.id}/mailFolders/{name}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "ErrorItemNotFound"


def test_messages_page_select_and_extended_properties_only_when_expanded(g, c):
    u = g.tenant.users[0]
    pages = _all(c, f"/users/{u.id}/mailFolders/inbox/messages")
    assert len(pages[0]) == 10                                     # the default page
    assert sum(map(len, pages)) == len(folder_messages(g, u.id, "inbox"))
    assert all("singleValueExtendedProperties" not in m for p in pages for m in p)
    sel = _all(c, f"/users/{u.id}/mailFolders/inbox/messages",
               {"$select": "subject,isRead", "$top": 7, "$expand": EXPAND})
    first = sel[0][0]
    assert set(first) <= {"@odata.etag", "@odata.type", "id", "subject", "isRead", "singleValueExtendedProperties"}
    props = {p["id"]: p["value"] for m in (x for p in sel for x in p)
             for p in m.get("singleValueExtendedProperties", [])}
    assert props and all(isinstance(v, str) for v in props.values())
    assert set(props) == {"Integer 0x1081", "Integer 0xe08"}       # asked as 0x0E08, answered in Exchange's spelling
    verbs = {m["subject"]: {p["id"]: p["value"] for p in m.get("singleValueExtendedProperties", [])}
             .get("Integer 0x1081") for p in sel for m in p}
    assert verbs["Grüße aus Köln"] == "102" and verbs["Quartalsbericht Q1"] is None
    assert c.get(f"/users/{u.id}/mailFolders/inbox/messages", params={"$top": 1001}).status_code == 400


def test_ids_immutable_on_request_ordinary_ones_change_on_a_move(graph_sandbox_factory):
    g = graph_sandbox_factory(spec())
    u = g.tenant.users[0]
    with graph_http(g) as c:
        plain = c.get(f"/users/{u.id}/mailFolders/inbox/messages", params={"$top": 1}).json()["value"][0]
        imm = c.get(f"/users/{u.id}/mailFolders/inbox/messages", params={"$top": 1}, headers=IMMUTABLE
                    ).json()["value"][0]
        assert plain["id"] != imm["id"] and plain["internetMessageId"] == imm["internetMessageId"]
        assert c.get(f"/users/{u.id}/messages/{plain['id']}/$value").status_code == 200
        g.mail_mutate("move_message", user=u.id, message_id=imm["id"], folder="archive")
        assert c.get(f"/users/{u.id}/messages/{plain['id']}").status_code == 404
        moved = c.get(f"/users/{u.id}/messages/{imm['id']}", headers=IMMUTABLE).json()
        assert moved["id"] == imm["id"] and moved["parentFolderId"] != imm["parentFolderId"]


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_value_is_text_plain_crlf_mime_and_the_folder_form_is_refused(g, c):
    u = g.tenant.users[0]
    msgs = folder_messages(g, u.id, "inbox")
    kinds: dict[str, str] = {}
    for i, m in msgs.items():
        kinds.setdefault(m.env.kind, i)           # the hand-made one of each kind comes first
    got = {}
    for kind, mid in kinds.items():
        r = c.get(f"/users/{u.id}/messages/{mid}/$value")
        assert r.status_code == 200 and r.headers["content-type"] == "text/plain"
        assert b"\n" not in r.content.replace(b"\r\n", b"") and len(r.content) == msgs[mid].size
        got[kind] = r.content
    types = {k: [p.get_content_type() for p in _parse(v).walk()] for k, v in got.items()}
    assert types["alt"] == ["multipart/alternative", "text/plain", "text/html"]
    assert types["attach"][:1] == ["multipart/mixed"] and "application/pdf" in types["attach"]
    assert types["invite"][-1] == "text/calendar" and types["smime_enc"] == ["application/pkcs7-mime"]
    assert "message/rfc822" in types["fwd"]
    inline = _parse(got["inline"])
    cid = next(p for p in inline.walk() if p.get_content_type() == "image/png")["Content-ID"].strip("<>")
    html = next(p for p in inline.walk() if p.get_content_type() == "text/html").get_content()
    assert f"cid:{cid}" in html
    assert "Rückfrage".encode() in got["raw8bit"].split(b"\r\n\r\n")[0]          # 8-bit UTF-8 in a header
    assert b"=?utf-8?" in got["plain"].split(b"\r\n\r\n")[0]                      # RFC 2047 elsewhere
    assert str(_parse(got["plain"])["Subject"]) == "Grüße aus Köln"
    mixed = next(i for i, m in folder_messages(g, u.id, "archive").items() if m.env.kind == "mixedeol")
    body = c.get(f"/users/{u.id}/messages/{mixed}/$value").content
    assert b"LF\nnoch" in body and b"CR\rEnde" in body and body.count(b"\r\n") > 10     # bare LF and CR kept
    junk = next(iter(folder_messages(g, u.id, "junkemail")))
    spam = c.get(f"/users/{u.id}/messages/{junk}/$value").content
    assert max(map(len, spam.split(b"\r\n"))) > 998                              # an unfolded long header line
    r = c.get(f"/users/{u.id}/mailFolders/inbox/messages/{kinds['alt']}/$value")
    assert r.status_code == 405 and r.json()["error"]["code"] == "ErrorInvalidRequest"
    assert c.get(f"/users/{u.id}/messages/AAkALgnothere/$value").json()["error"]["code"] == "ErrorItemNotFound"


def test_value_modes_regenerate_boundaries_or_lf_only(graph_sandbox_factory):
    g = graph_sandbox_factory(spec())
    u = g.tenant.users[0]
    mid = next(i for i, m in folder_messages(g, u.id, "inbox").items() if m.env.kind == "attach")
    with graph_http(g) as c:
        stable = c.get(f"/users/{u.id}/messages/{mid}/$value").content
        g.call(g.mail_mutations.set_options, mime_mode="regenerate")
        a, b = (c.get(f"/users/{u.id}/messages/{mid}/$value").content for _ in range(2))
        assert a != b != stable and len(a) == len(b) == len(stable)
        unbound = [re.sub(rb"_\d{3}_[0-9A-F]{28}_", b"B", x) for x in (a, b, stable)]
        assert unbound[0] == unbound[1] == unbound[2]                  # only the boundaries differ
        g.call(g.mail_mutations.set_options, mime_mode="lf")
        lf = c.get(f"/users/{u.id}/messages/{mid}/$value").content
        assert b"\r" not in lf and lf == stable.replace(b"\r\n", b"\n")


def test_delta_pages_freeze_the_query_then_report_changes_removals_and_moves(graph_sandbox_factory):
    g = graph_sandbox_factory(spec())
    u = g.tenant.users[1]
    prefer = {"Prefer": 'IdType="ImmutableId", odata.maxpagesize=4'}
    with graph_http(g) as c:
        pages = _all(c, f"/users/{u.id}/mailFolders/inbox/messages/delta",
                     {"$select": "subject,isRead,flag", "$expand": EXPAND}, prefer)
        first = c.get(f"/users/{u.id}/mailFolders/inbox/messages/delta", params={"$select": "subject"},
                      headers=prefer).json()
        assert "$select" not in first["@odata.nextLink"] and "subject" not in first["@odata.nextLink"]
        seen = {m["id"]: m for p in pages for m in p}
        assert all(len(p) <= 4 for p in pages) and len(pages) >= 4
        assert set(seen) == set(folder_messages(g, u.id, "inbox"))
        assert all("receivedDateTime" not in m for m in seen.values())          # $select kept on later pages
        assert any("singleValueExtendedProperties" in m for m in seen.values())
        last = c.get(f"/users/{u.id}/mailFolders/inbox/messages/delta", headers=prefer)
        link = None
        body = last.json()
        while "@odata.nextLink" in body:
            body = c.get(body["@odata.nextLink"], headers=prefer).json()
        link = body["@odata.deltaLink"]
        ids = list(seen)
        g.mail_mutate("set_flags", user=u.id, message_id=ids[0], flag="flagged")
        g.mail_mutate("delete_message", user=u.id, message_id=ids[1])
        g.mail_mutate("move_message", user=u.id, message_id=ids[2], folder="Inbox/Projekte")
        new = g.mail_mutate("deliver", user=u.id, subject="Nachzügler")
        later = [m for p in _all(c, link, headers=prefer) for m in p]
        removed = {m["id"]: m["@removed"] for m in later if "@removed" in m}
        assert removed == {ids[1]: {"reason": "deleted"}, ids[2]: {"reason": "deleted"}}
        changed = {m["id"]: m for m in later if "@removed" not in m}
        assert set(changed) == {ids[0], new} and changed[ids[0]]["flag"] == {"flagStatus": "flagged"}
        g.mail_mutate("expire_delta", user=u.id, folder="inbox")
        gone = c.get(link, headers=prefer)
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "SyncStateNotFound"


def test_a_big_folder_pages_by_the_thousand(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(mail_bulk=2500))
    u = g.tenant.users[0]
    with graph_http(g) as c:
        mass = next(f for f in c.get(f"/users/{u.id}/mailFolders/inbox/childFolders").json()["value"]
                    if f["displayName"] == "Massenablage")
        assert mass["totalItemCount"] == 2500
        started = time.monotonic()
        pages = _all(c, f"/users/{u.id}/mailFolders/{mass['id']}/messages/delta",
                     {"$select": "isRead"}, {"Prefer": "odata.maxpagesize=1000"})
        assert [len(p) for p in pages] == [1000, 1000, 500] and time.monotonic() - started < 20
        listed = _all(c, f"/users/{u.id}/mailFolders/{mass['id']}/messages", {"$top": 1000, "$select": "id"})
        assert sum(map(len, listed)) == 2500


def test_a_fifth_mail_request_in_flight_for_one_mailbox_is_refused(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(), outlook_delay=0.5)
    u = g.tenant.users[0]
    mid = next(iter(folder_messages(g, u.id, "inbox")))
    token = g.issue_token()

    def one(_: int) -> httpx.Response:
        with graph_http(g, token=token) as c:
            return c.get(f"/users/{u.id}/messages/{mid}/$value")

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(one, range(5)))
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 429]
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"] == {"code": "ApplicationThrottled",
                                       "message": "Application is over its MailboxConcurrency limit."}
    assert g.stats()["mailboxes"][u.id]["max_in_flight"] == 4 and g.stats()["ru"] == 0


def test_usage_report_redirects_to_a_csv_with_has_archive_and_admin_mutations_work(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(mail_archive_users=2))
    with graph_http(g) as c:
        r = c.get("/reports/getMailboxUsageDetail(period='D7')")
        assert r.status_code == 302
        assert r.headers["location"].startswith(g.download_url)
        csv_text = httpx.get(r.headers["location"]).content.decode("utf-8")
        assert csv_text.startswith("\ufeffReport Refresh Date,User Principal Name,")
        rows = [line.split(",") for line in csv_text.splitlines()[1:]]
        assert [row[15] for row in rows] == ["True", "True", "False"]
        assert httpx.get(r.headers["location"] + "x").status_code == 401
        u = g.tenant.users[0]
        new = httpx.post(f"{g.admin_url}/mail-mutate", json={"op": "deliver", "user": u.upn,
                                                             "folder": "Inbox/Projekt 2.0", "subject": "über HTTP"})
        assert new.status_code == 200
        listed = c.get(f"/users/{u.id}/mailFolders/inbox/childFolders").json()["value"]
        punkt = next(f for f in listed if f["displayName"] == "Projekt 2.0")
        subjects = [m["subject"] for m in c.get(f"/users/{u.id}/mailFolders/{punkt['id']}/messages"
                                                 ).json()["value"]]
        assert "über HTTP" in subjects
        bad = httpx.post(f"{g.admin_url}/mail-mutate", json={"op": "deliver", "user": u.upn, "folder": "Nirgendwo"})
        assert bad.status_code == 400 and "Nirgendwo" in bad.text
