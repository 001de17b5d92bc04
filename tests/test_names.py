"""Name rules and deterministic renames (migrate.names), including property-style checks on random names."""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata

import pytest

from migrate.models import Features
from migrate.names import (
    DEFAULT_RULES,
    NameRules,
    clean_name,
    collision_key,
    is_valid,
    problems,
    resolve_siblings,
    short_hash,
    truncate_utf8,
)

WIN = NameRules.from_features(Features(max_name_bytes=250), windows=True)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a\\b.txt", "a_b.txt"),
        ("a\x01b", "a_b"),
        ("tab\there", "tab_here"),
        ("line\nfeed", "line_feed"),
        ("a\x1fb", "a_b"),
        (".htaccess", "_.htaccess"),
        (".HTACCESS", "_.HTACCESS"),
        ("x.part", "x_part"),
        ("x.PART", "x_PART"),
        ("x.filepart", "x_filepart"),
        ("y.tar.part", "y.tar_part"),
        ("   ", "___"),
        (".", "_"),
        ("..", "__"),
        ("", "_"),
    ],
)
def test_default_rules_rename_what_nextcloud_refuses(name: str, expected: str) -> None:
    assert not is_valid(name)
    out, reasons = clean_name(name)
    assert out == expected
    assert reasons and is_valid(out)


@pytest.mark.parametrize(
    "name",
    ["a\x7fb.txt", "x.part.txt", "a.", "a ", " a.txt", 'w<>:"|?*.txt', "CON.txt", "😀.txt", "Café.txt",
     "x" * 246 + ".txt", "é" * 123 + ".txt", "日" * 82 + ".txt"],
)
def test_names_nextcloud_accepts_are_kept(name: str) -> None:
    """The accepted list of reference §5.1 / §5.2 (verified on NC 32.0.1): no rename on a default server."""
    assert is_valid(name), problems(name)
    assert clean_name(name) == (name, ())


@pytest.mark.parametrize("name", ["x" * 247 + ".txt", "é" * 123 + "x.txt", "日" * 83 + ".txt"])
def test_251_bytes_and_more_are_truncated_keeping_the_extension(name: str) -> None:
    out, reasons = clean_name(name)
    assert len(out.encode()) <= 250
    assert out.endswith(".txt")
    assert any("bytes long" in r for r in reasons)
    out.encode("utf-8")  # a whole number of characters


def test_250_bytes_is_the_limit() -> None:
    assert is_valid("a" * 250) and not is_valid("a" * 251)


def test_truncate_never_splits_a_character() -> None:
    assert truncate_utf8("ééé", 5) == "éé"
    assert truncate_utf8("日日", 4) == "日"
    assert truncate_utf8("abc", 10) == "abc"


def test_nfd_is_normalised_and_reported() -> None:
    nfd = unicodedata.normalize("NFD", "Naïve façade.txt")
    out, reasons = clean_name(nfd)
    assert out == unicodedata.normalize("NFC", nfd)
    assert any("NFC" in r for r in reasons)


def test_windows_rules() -> None:
    assert clean_name("trailing dot.", WIN)[0] == "trailing dot"
    assert clean_name("trailing space.txt ", WIN)[0] == "trailing space.txt"
    assert clean_name("CON.txt", WIN)[0] == "CON_.txt"
    assert clean_name("lpt1", WIN)[0] == "lpt1_"
    assert clean_name('a<b>c:d"e|f?g*h', WIN)[0] == "a_b_c_d_e_f_g_h"
    assert clean_name("...", WIN)[0] == "_"
    assert clean_name("con", DEFAULT_RULES) == ("con", ())


def test_server_lists_come_from_features_and_cannot_remove_always_rules() -> None:
    f = Features(forbidden_chars=frozenset({"#"}), forbidden_names=frozenset({"thumbs.db"}),
                 forbidden_extensions=frozenset({".tmp"}), forbidden_basenames=frozenset({"desktop"}),
                 max_name_bytes=200)
    rules = NameRules.from_features(f)
    assert clean_name("a#b", rules)[0] == "a_b"
    assert clean_name("Thumbs.db", rules)[0] == "_Thumbs.db"
    assert clean_name("x.TMP", rules)[0] == "x_TMP"
    assert clean_name("desktop.ini", rules)[0] == "desktop_.ini"
    assert clean_name("a\\b", rules)[0] == "a_b"  # the server publishes only what it adds
    assert clean_name("a\x02", rules)[0] == "a_"
    assert clean_name("z.part", rules)[0] == "z_part"
    assert rules.max_bytes == 200
    # a server announcing 255 (generic WebDAV) is still held to Nextcloud's 250
    assert NameRules.from_features(Features(max_name_bytes=255)).max_bytes == 250


def test_sibling_collisions_get_a_stable_item_id_hash() -> None:
    kids = [("id-B", "a\\b.txt"), ("id-A", "a_b.txt"), ("id-C", "A_B.TXT")]
    out = resolve_siblings(kids)
    assert out["id-A"].target == "a_b.txt" and not out["id-A"].renamed  # the unchanged name keeps its place
    assert out["id-B"].target == f"a_b ({short_hash('id-B')}).txt"
    assert out["id-C"].target == f"A_B ({short_hash('id-C')}).TXT"
    assert any("sibling" in r for r in out["id-C"].reasons)
    keys = {collision_key(r.target) for r in out.values()}
    assert len(keys) == 3


def test_sibling_resolution_is_order_independent() -> None:
    nfc = unicodedata.normalize("NFC", "Café.txt")
    nfd = unicodedata.normalize("NFD", "Café.txt")
    kids = [("i1", nfc), ("i2", nfd), ("i3", "café.TXT"), ("i4", "x:y"), ("i5", "x_y"), ("i6", "x\\y")]
    expected = resolve_siblings(kids)
    rng = random.Random(3)
    for _ in range(20):
        rng.shuffle(kids)
        assert resolve_siblings(kids) == expected
    assert expected["i1"].target == nfc  # valid and unchanged: kept
    assert expected["i2"].target.startswith("Café (")


def test_reserved_names_are_not_handed_out() -> None:
    out = resolve_siblings([("i1", "Board")], reserved=["board"])
    assert out["i1"].target == f"Board ({short_hash('i1')})"


def test_long_names_that_truncate_to_the_same_text_are_told_apart() -> None:
    a, b = "x" * 260 + "-one.txt", "x" * 260 + "-two.txt"
    out = resolve_siblings([("1", a), ("2", b)])
    assert out["1"].target != out["2"].target
    assert all(len(r.target.encode()) <= 250 and is_valid(r.target) for r in out.values())


# ------------------------------------------------------------------------------------ property-style checks
ALPHABET = (
    "abcXYZ019 ._-~()#%&+"            # ordinary
    "\\/\x00\x01\x09\x0a\x1f\x7f"      # forbidden and control
    "<>:\"|?*"                          # Windows
    "éüßø日本😀"                          # multi-byte
    "\u0301\u0308"                      # combining marks (NFD)
)
HOSTILE = [".htaccess", ".part", ".filepart", "CON", "con.txt", "lpt1.", " ", ".", "..", "a" * 300,
           "日" * 100, "😀" * 70, "x.part.part", "<script>alert(1)</script>.html"]


def random_names(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = list(HOSTILE)
    for _ in range(n):
        k = rng.choice([0, 1, 2, 5, 20, 90, 140, 260])
        s = "".join(rng.choice(ALPHABET) for _ in range(k))
        if rng.random() < 0.3:
            s += rng.choice([".part", ".filepart", ".", " ", ".txt", ".PART"])
        out.append(s)
    return out


@pytest.mark.parametrize("rules", [DEFAULT_RULES, WIN], ids=["default", "windows"])
def test_property_output_always_valid_and_idempotent(rules: NameRules) -> None:
    for name in random_names(11, 3000):
        out, reasons = clean_name(name, rules)
        assert is_valid(out, rules), (name, out, problems(out, rules))
        assert clean_name(out, rules) == (out, ()), (name, out)
        assert bool(reasons) == (out != name)
        assert len(out.encode("utf-8")) <= rules.max_bytes


def test_property_valid_names_are_untouched() -> None:
    for name in random_names(12, 2000):
        if is_valid(name):
            assert clean_name(name) == (name, ())


def test_property_siblings_always_distinct_and_valid() -> None:
    rng = random.Random(5)
    names = random_names(13, 400)
    for _ in range(30):
        kids = [(f"id{rng.randrange(10**9)}", rng.choice(names)) for _ in range(rng.randrange(2, 40))]
        kids = list(dict(kids).items())
        out = resolve_siblings(kids, WIN)
        targets = [r.target for r in out.values()]
        assert len({collision_key(t) for t in targets}) == len(targets)
        assert all(is_valid(t, WIN) for t in targets)


def test_property_deterministic_across_processes() -> None:
    """Same input → same names in a fresh interpreter (no hash randomisation, no order dependence)."""
    names = random_names(14, 300)
    kids = [(f"item-{i}", n) for i, n in enumerate(names)]
    here = {k: v.target for k, v in resolve_siblings(kids).items()}
    code = (
        "import json,sys; from migrate.names import resolve_siblings; kids=json.load(sys.stdin); "
        "print(json.dumps({k: v.target for k, v in resolve_siblings([tuple(x) for x in kids]).items()}))"
    )
    import json

    env_out = subprocess.run([sys.executable, "-c", code], input=json.dumps(kids), capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(env_out.stdout) == here
