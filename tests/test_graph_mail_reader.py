"""The Graph mail reader (migrate/backends/graph/mail.py) against the sandbox tenant on loopback."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc

import pytest

from migrate.backends.graph import mail
from migrate.errors import DeltaExpired, ItemNotFound
from migrate.sandbox.graph import GraphSandbox, mail_mime
from tests.mail_graph_support import folder_messages, graph_client, mime_of, spec


@pytest.fixture(scope="module")
def g():
    with GraphSandbox(spec()) as sandbox:
        yield sandbox


@pytest.fixture
def client(g):
    c = graph_client(g)
    yield c
    c.close()


def test_folder_tree_depth_first_with_hidden_folders_and_well_known_names(g, client):
    u = g.tenant.users[0]
    folders = list(mail.mail_folders(client, u.id))
    paths = [f.path for f in folders]
    by_path = {f.path: f for f in folders}
    # depth-first: each folder right before its subtree, parents first
    assert paths.index(("Inbox",)) < paths.index(("Inbox", "Projekte")) < paths.index(
        ("Inbox", "Projekte", "Größe & Übersicht")) < paths.index(("Drafts",))
    assert ("Inbox", "Kunden/Lieferanten") in by_path and ("Inbox", "Projekt 2.0") in by_path
    assert ("Einkauf ✓ 2026", "Angebote", "Ältere Angebote") in by_path
    wk = {f.well_known: f.path for f in folders if f.well_known}
    assert wk == {"inbox": ("Inbox",), "drafts": ("Drafts",), "sentitems": ("Sent Items",),
                  "deleteditems": ("Deleted Items",), "junkemail": ("Junk Email",), "archive": ("Archive",),
                  "outbox": ("Outbox",), "conversationhistory": ("Conversation History",),
                  "syncissues": ("Sync Issues",), "conflicts": ("Sync Issues", "Conflicts"),
                  "localfailures": ("Sync Issues", "Local Failures"),
                  "serverfailures": ("Sync Issues", "Server Failures")}
    # hidden: Sync Issues and everything under it, and a user's hidden folder
    hidden = {f.path for f in folders if f.hidden}
    assert hidden == {("Sync Issues",), ("Sync Issues", "Conflicts"), ("Sync Issues", "Local Failures"),
                      ("Sync Issues", "Server Failures"), ("Archive", "Privat (versteckt)")}
    inbox = by_path[("Inbox",)]
    listed = folder_messages(g, u.id, "inbox")
    assert inbox.total == len(listed) + 1          # a sticky note counts but is no message
    assert inbox.unread == sum(1 for m in listed.values() if not m.data["isRead"])
    assert by_path[("Inbox", "Projekte")].parent_id == inbox.id and inbox.parent_id is None
    visible = [f.path for f in mail.mail_folders(client, u.id, hidden=False)]
    assert set(visible) == set(paths) - hidden and len(visible) == len(paths) - len(hidden)


def _round(client, user_id, folder_id, link=None, page_size=4):
    pages = list(mail.message_delta(client, user_id, folder_id, link, page_size=page_size))
    assert all(p.next_link and not p.delta_link for p in pages[:-1]) and pages[-1].delta_link
    assert not pages[-1].next_link
    return pages


def test_delta_rounds_carry_new_mail_flag_changes_moves_and_deletions(g, client):
    u = g.tenant.users[1]
    folders = {f.well_known or "/".join(f.path): f for f in mail.mail_folders(client, u.id)}
    inbox, projekte = folders["inbox"], folders["Inbox/Projekte"]
    pages = _round(client, u.id, inbox.id)
    assert len(pages) > 3                                   # paged by odata.maxpagesize
    metas = {m.id: m for p in pages for m in p.messages}
    truth = folder_messages(g, u.id, "inbox")
    assert set(metas) == set(truth) and not any(p.removed for p in pages)
    by_subject = {truth[i].env.subject: m for i, m in metas.items()}
    q1 = by_subject["Quartalsbericht Q1"]
    assert q1.flag_status == "flagged" and q1.categories == ("Rot", "Projekt X") and q1.is_read
    assert q1.internet_message_id == f"<{truth[q1.id].env.message_id}>" and q1.folder_id == inbox.id
    assert q1.size is not None and q1.size > 0 and q1.last_verb is None
    assert q1.received is not None and q1.received.tzinfo is not None
    grz = by_subject["Grüße aus Köln"]
    assert grz.last_verb == 102 and grz.answered and not grz.is_read
    assert by_subject["Angebot für das Büro – Entwurf"].flag_status == "complete"
    assert by_subject["Angebot für das Büro – Entwurf"].forwarded
    logo = by_subject["Newsletter mit Logo"]
    assert logo.last_verb is None and logo.icon_index == 262 and logo.forwarded     # only the icon says so
    assert by_subject["Einladung: Jour fixe (Raum 2.14)"].odata_type == "#microsoft.graph.eventMessageRequest"
    link = pages[-1].delta_link
    proj_link = _round(client, u.id, projekte.id)[-1].delta_link

    new = g.mail_mutate("deliver", user=u.id, folder="inbox", subject="Neu: Übergabe")
    g.mail_mutate("set_flags", user=u.id, message_id=q1.id, is_read=False, flag="complete",
                  categories=["Blau ☂"], last_verb=104)
    g.mail_mutate("move_message", user=u.id, message_id=grz.id, folder="Inbox/Projekte")
    g.mail_mutate("delete_message", user=u.id, message_id=logo.id)

    pages = _round(client, u.id, inbox.id, link, page_size=2)
    changed = {m.id: m for p in pages for m in p.messages}
    removed = [i for p in pages for i in p.removed]
    assert set(changed) == {new, q1.id} and sorted(removed) == sorted([grz.id, logo.id])
    assert changed[q1.id].flag_status == "complete" and not changed[q1.id].is_read
    assert changed[q1.id].categories == ("Blau ☂",) and changed[q1.id].forwarded
    assert changed[q1.id].change_key != q1.change_key
    assert changed[new].internet_message_id and not changed[new].is_read
    moved = [m for p in _round(client, u.id, projekte.id, proj_link) for m in p.messages]
    assert [m.id for m in moved] == [grz.id] and moved[0].folder_id == projekte.id   # same immutable id
    # a quiet round: nothing
    again = _round(client, u.id, inbox.id, pages[-1].delta_link)
    assert not any(p.messages or p.removed for p in again)


def test_an_expired_delta_link_raises_and_the_folder_starts_over(g, client):
    u = g.tenant.users[2]
    first = _round(client, u.id, "sentitems")
    nxt = list(mail.message_delta(client, u.id, "inbox", None, page_size=3))
    g.mail_mutate("expire_delta", user=u.id, folder="sentitems")
    with pytest.raises(DeltaExpired):
        list(mail.message_delta(client, u.id, "sentitems", first[-1].delta_link))
    # other folders' links live on
    assert list(mail.message_delta(client, u.id, "inbox", nxt[-1].delta_link))
    again = _round(client, u.id, "sentitems")
    assert {m.id for p in again for m in p.messages} == {m.id for p in first for m in p.messages}
    g.expire_delta_tokens()     # the sandbox-wide switch reaches mail links too
    with pytest.raises(DeltaExpired):
        list(mail.message_delta(client, u.id, "sentitems", again[-1].delta_link))


def test_mime_is_streamed_byte_exact_crlf_and_a_gone_message_is_item_not_found(g, client):
    u = g.tenant.users[0]
    truth = folder_messages(g, u.id, "inbox")
    kinds: dict[str, str] = {}
    for i, m in truth.items():
        kinds.setdefault(m.env.kind, i)
    for kind in ("attach", "inline", "smime_enc", "invite", "raw8bit", "fwd"):
        with mail.message_mime(client, u.id, kinds[kind]) as chunks:
            data = b"".join(chunks)
        assert data == mime_of(g, u.id, kinds[kind])
        assert b"\n" not in data.replace(b"\r\n", b""), kind            # CRLF only
    drafts = folder_messages(g, u.id, "drafts")
    with mail.message_mime(client, u.id, next(iter(drafts))) as chunks:
        head = b"".join(chunks).split(b"\r\n\r\n", 1)[0]
    assert b"\r\nMessage-ID:" not in head and not head.startswith(b"Received:")
    gone = g.mail_mutate("deliver", user=u.id, folder="inbox", subject="kurz da")
    g.mail_mutate("delete_message", user=u.id, message_id=gone)
    with pytest.raises(ItemNotFound):
        with mail.message_mime(client, u.id, gone) as chunks:
            b"".join(chunks)


def test_well_known_names_the_mailbox_lacks_are_skipped(g, client):
    ids = mail.well_known_ids(client, g.tenant.users[0].id)
    assert "clutter" not in ids.values() and "scheduled" not in ids.values() and "inbox" in ids.values()
    assert client.books.snapshot()["ru"] == 0          # Outlook requests cost no SharePoint RU
    assert client.books.requests["mail_folder"] >= len(mail.WELL_KNOWN)


def test_online_archives_come_from_the_usage_report(g, client):
    rows = {r.upn: r for r in mail.archive_mailboxes(client)}
    users = g.tenant.users
    assert set(rows) == {u.upn for u in users}
    assert rows[users[0].upn].has_archive and not rows[users[1].upn].has_archive
    assert rows[users[0].upn].primary_bytes and rows[users[0].upn].items and not rows[users[0].upn].concealed
    g.call(g.mail_mutations.set_options, conceal_reports=True)
    try:
        hidden = mail.archive_mailboxes(client)
    finally:
        g.call(g.mail_mutations.set_options, conceal_reports=False)
    assert all(r.concealed for r in hidden) and sum(r.has_archive for r in hidden) == 1


def test_five_readers_of_one_mailbox_are_held_to_four_in_flight_and_all_succeed(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(), outlook_delay=0.3)
    client = graph_client(g)
    u = g.tenant.users[0]
    ids = list(folder_messages(g, u.id, "inbox"))[:5]
    out: dict[str, bytes] = {}

    def read(mid: str) -> None:
        with mail.message_mime(client, u.id, mid) as chunks:
            out[mid] = b"".join(chunks)

    threads = [threading.Thread(target=read, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert {i: out.get(i) for i in ids} == {i: mime_of(g, u.id, i) for i in ids}
    books = g.stats()["mailboxes"][u.id]
    assert books["max_in_flight"] == 4 and books["over_concurrency"] >= 1    # one was refused, then retried
    assert client.books.throttled["mail_mime"] >= 1


def test_a_50_mb_message_streams_with_flat_memory(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(mail_large_mb=50))
    client = graph_client(g)
    u = g.tenant.users[0]
    big = next(m for m in folder_messages(g, u.id, "inbox").values() if m.env.kind == "big")
    want = hashlib.sha256()
    for part in mail_mime.big_chunks(big.env):
        want.update(part)
    got, n = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with mail.message_mime(client, u.id, big.id) as chunks:
            for part in chunks:
                got.update(part)
                n += len(part)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        client.close()
    assert n == big.size == mail_mime.big_length(big.env)
    assert 50 * 1024 * 1024 <= n < 50.1 * 1024 * 1024
    assert got.hexdigest() == want.hexdigest()
    assert peak < 8 * 1024 * 1024, peak      # the sandbox and the reader (same process) never hold the message


def test_through_a_mailbox_pacer_four_in_flight_and_never_throttled(graph_sandbox_factory):
    from migrate.engine.groupware.steps import MailboxClient

    g = graph_sandbox_factory(spec())
    graph = graph_client(g)
    u = g.tenant.users[0]
    box = MailboxClient(graph, u.upn, 0.0)
    ids = list(folder_messages(g, u.id, "inbox"))[:10]

    def read(mid: str) -> bytes:
        with mail.message_mime(box, u.id, mid) as chunks:
            return b"".join(chunks)

    try:
        folders = list(mail.mail_folders(box, u.id))
        g.set_outlook(delay=0.2)          # answers held back: requests overlap
        got = box.map(read, ids)
    finally:
        box.close()
        graph.close()
    assert len(folders) > 20 and got == [mime_of(g, u.id, i) for i in ids]
    books = g.stats()["mailboxes"][u.id]
    assert books["max_in_flight"] == 4 and books["throttled"] == 0
    assert graph.books.snapshot()["busiest_mailbox_requests"] == books["requests"]   # every request booked to it


def test_folder_delta_reports_renames_moves_new_and_deleted_folders(graph_sandbox_factory):
    g = graph_sandbox_factory(spec())
    client = graph_client(g)
    u = g.tenant.users[0]
    tree = {f.id: f for f in mail.mail_folders(client, u.id)}
    pages = list(mail.folder_delta(client, u.id, None, page_size=7))
    first = {f.id: f for p in pages for f in p.folders}
    assert len(pages) > 2 and set(first) == set(tree)                 # hidden ones included
    assert all(first[i].parent_id == tree[i].parent_id and first[i].name == tree[i].name for i in tree)
    by_path = {f.path: f.id for f in tree.values()}
    g.mail_mutate("rename_folder", user=u.id, folder=by_path[("Inbox", "Projekte")], name="Projekte 2027")
    g.mail_mutate("move_folder", user=u.id, folder=by_path[("Inbox", "Projekt 2.0")], parent="archive")
    g.mail_mutate("delete_folder", user=u.id, folder=by_path[("Leer",)])
    new = g.mail_mutate("add_folder", user=u.id, parent="msgfolderroot", name="Neu & Ünicode")
    later = list(mail.folder_delta(client, u.id, pages[-1].delta_link))
    changed = {f.id: f for p in later for f in p.folders}
    assert [i for p in later for i in p.removed] == [by_path[("Leer",)]]
    assert set(changed) == {by_path[("Inbox", "Projekte")], by_path[("Inbox", "Projekt 2.0")], new}
    assert changed[by_path[("Inbox", "Projekte")]].name == "Projekte 2027"
    assert changed[by_path[("Inbox", "Projekt 2.0")]].parent_id == by_path[("Archive",)]
    assert changed[new].parent_id is None and changed[new].name == "Neu & Ünicode"
    g.mail_mutate("expire_delta", user=u.id)
    with pytest.raises(DeltaExpired):
        list(mail.folder_delta(client, u.id, later[-1].delta_link))
    client.close()


def test_a_dropped_mime_transfer_raises_transient_and_a_503_is_retried(graph_sandbox_factory):
    from migrate.errors import TransientError

    g = graph_sandbox_factory(spec())
    client = graph_client(g)
    u = g.tenant.users[0]
    mid = next(i for i, m in folder_messages(g, u.id, "inbox").items() if m.env.kind == "attach")
    g.faults.set(route="mime", reset_after=5000, count=1)
    with pytest.raises(TransientError, match="broke"):
        with mail.message_mime(client, u.id, mid) as chunks:
            b"".join(chunks)
    g.faults.set(route="mime", status=503, retry_after="0.1", count=2)
    with mail.message_mime(client, u.id, mid) as chunks:
        assert b"".join(chunks) == mime_of(g, u.id, mid)
    assert client.books.requests["mail_mime"] == 4        # the broken one, two refused, the good one
    client.close()


def test_a_user_without_a_mailbox_is_named_not_a_crash(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(mail_no_mailbox_users=1))
    client = graph_client(g)
    last = g.tenant.users[-1]
    with pytest.raises(mail.NoMailbox, match="no Exchange Online mailbox") as err:
        list(mail.mail_folders(client, last.id))
    assert isinstance(err.value, ItemNotFound) and "licence" in str(err.value)
    assert {r.upn for r in mail.archive_mailboxes(client)} == {u.upn for u in g.tenant.users[:-1]}
    assert list(mail.mail_folders(client, g.tenant.users[0].id))
    client.close()


def test_the_sandbox_truth_matches_what_the_reader_reads(graph_sandbox_factory):
    g = graph_sandbox_factory(spec(mail_large_mb=3))
    client = graph_client(g)
    u = g.tenant.users[0]
    truth = {r["id"]: r for r in g.mail_truth(u.upn)}
    folders = {f.id: f for f in mail.mail_folders(client, u.id)}
    seen = {}
    for f in folders.values():
        for page in mail.message_delta(client, u.id, f.id, None):
            for m in page.messages:
                seen[m.id] = (f, m)
    assert set(seen) == set(truth)
    for mid, (f, m) in seen.items():
        t = truth[mid]
        assert t["folder"] == "/".join(f.path) and t["hidden"] == f.hidden and t["well_known"] == f.well_known
        assert (t["is_read"], t["flag"], tuple(t["categories"])) == (m.is_read, m.flag_status, m.categories)
    big = next(r for r in truth.values() if r["subject"] == "Messdaten (groß)")
    h = hashlib.sha256()
    with mail.message_mime(client, u.id, big["id"]) as chunks:
        for part in chunks:
            h.update(part)
    assert h.hexdigest() == big["sha256"] and big["size"] > 3 * 1024 * 1024 - 1
    client.close()


def test_one_message_id_on_several_items_stays_several_items(g, client):
    u = g.tenant.users[0]
    truth = g.mail_truth(u.id)
    by_mid: dict[str, list[dict]] = {}
    for r in truth:
        if r["internet_message_id"]:
            by_mid.setdefault(r["internet_message_id"], []).append(r)
    shared = {k: sorted(r["folder"] for r in v) for k, v in by_mid.items() if len(v) > 1}
    assert sorted(shared.values()) == [["Inbox", "Inbox"], ["Inbox", "Sent Items"]]
    for rows in (v for v in by_mid.values() if len(v) > 1):
        assert len({r["id"] for r in rows}) == 2 and len({r["sha256"] for r in rows}) == 2
    assert sum(1 for r in truth if r["internet_message_id"] is None) == 2     # the drafts
