"""The generated tenant: deterministic from the seed, with every awkward case the issue asks for."""

from __future__ import annotations

import unicodedata

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.graph.content import Content
from migrate.sandbox.graph.generate import generate


def _shape(t):
    return [(d.id, [(i.id, i.name, i.kind, i.content, len(i.old_versions), len(i.perms))
                    for i in d.live_items()]) for d in t.drive_list]


def test_same_seed_same_tenant_other_seed_other_tenant():
    a, b, c = generate(TenantSpec(seed=3)), generate(TenantSpec(seed=3)), generate(TenantSpec(seed=4))
    assert _shape(a) == _shape(b)
    assert [u.id for u in a.users] == [u.id for u in b.users]
    assert [s.id for s in a.sites] == [s.id for s in b.sites]
    assert _shape(a) != _shape(c)


def test_truth_is_deterministic_across_sandboxes():
    spec = TenantSpec(seed=11, users=2, sites=1, teams=1, files_per_drive=10)
    with GraphSandbox(spec) as g1, GraphSandbox(spec) as g2:
        t1, t2 = g1.truth(), g2.truth()
    strip = lambda t: {d: [{k: v for k, v in r.items()} for r in rows] for d, rows in t.items()}  # noqa: E731
    assert strip(t1) == strip(t2)
    assert g1.tenant_id == g2.tenant_id and g1.client_id == g2.client_id


def test_population_and_awkward_cases():
    spec = TenantSpec(seed=7, users=5, sites=3, teams=2, files_per_drive=30, no_mysite_users=2, large_file_mb=3)
    t = generate(spec)
    assert len(t.users) == 5 and sum(u.drive_id is None for u in t.users) == 2
    assert len(t.groups) == 2 and all(g.drive_id and 2 <= len(g.members) <= 4 for g in t.groups)
    for s in t.sites:
        host, g1, g2 = s.id.split(",")
        assert host == "contoso.sharepoint.com" and len(g1) == 36 and len(g2) == 36
        assert 1 <= len(s.drive_ids) <= 3
    names, paths, kinds = [], [], set()
    sizes, versions, perm_kinds = [], [], set()
    for d in t.drive_list:
        assert d.id.startswith("b!") and len(d.id) == 66
        for it in d.live_items():
            names.append(it.name)
            paths.append(d.path_of(it))
            kinds.add(it.kind)
            if it.content is not None:
                sizes.append(it.content.size)
                versions.append(len(it.old_versions) + 1)
            for p in it.perms:
                link = p.get("link", {}).get("scope")
                perm_kinds.add(link or ("guest" if "invitation" in p else next(iter(p["grantedToV2"]))))
            assert it.id.startswith("01") and len(it.id) == 34
    assert any(n == unicodedata.normalize("NFC", n) and n != unicodedata.normalize("NFD", n) for n in names)
    assert any(n == unicodedata.normalize("NFD", n) and n != unicodedata.normalize("NFC", n) for n in names)
    assert any(n.endswith(".") for n in names) and any(n.endswith(" ") for n in names)
    assert any("#" in n for n in names) and any("%" in n for n in names)
    assert any(240 <= len(n.encode()) <= 255 for n in names)
    assert max(len(p) for p in paths) > 400
    assert {"root", "folder", "file", "package"} <= kinds
    assert 0 in sizes and (3 << 20) in sizes
    assert set(versions) >= {1, 2, 3, 4} and max(versions) <= 4
    assert perm_kinds >= {"user", "group", "organization", "anonymous", "users", "guest"}


def test_content_is_streamed_from_the_block_and_hashes_are_right():
    import hashlib

    import quickxorhash

    c = Content(12345, 3 * 1048640 + 77)
    data = c.read()
    h = quickxorhash.quickxorhash()
    h.update(data)
    import base64

    assert base64.b64encode(h.digest()).decode() == c.quick_xor
    assert hashlib.sha1(data).hexdigest() == c.sha1
    assert Content(0, 0).quick_xor == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
