"""Which source versions are carried, from a listing and the item's facts (engine.versions)."""

from __future__ import annotations

from migrate.config import versions_limit
from migrate.engine.files.versions import (
    EMPTY,
    NOT_BEFORE,
    SAME_SECOND,
    beyond,
    choose,
    label_for,
    may_have_history,
)
from migrate.models import SourceVersion


def listing(*specs: tuple[str, float, int]) -> list[SourceVersion]:
    """Newest first, as Graph lists them: (id, time, size)."""
    return [SourceVersion(i, t, s, "Jane Doe") for i, t, s in specs]


def test_oldest_first_current_last_and_the_reasons_a_version_is_not_carried():
    vs = listing(("6.0", 1_700_000_600, 10), ("5.0", 1_700_000_500, 9), ("4.0", 1_700_000_500.4, 8),
                 ("3.0", 1_700_000_300, 0), ("2.0", 1_700_000_200, 7), ("1.0", 1_700_000_100, 6))
    rows = choose(vs, None, '"{X},6"', 1_700_000_600)
    assert [(r["version_id"], r["status"], r["reason"]) for r in rows] == [
        ("1.0", "pending", None), ("2.0", "pending", None), ("3.0", "not-carried", EMPTY),
        ("4.0", "not-carried", SAME_SECOND), ("5.0", "pending", None), ("6.0", "pending", None)]
    assert rows[-1]["current"] == 1 and all(not r["current"] for r in rows[:-1])
    capped = choose(vs, 2, None, 1_700_000_600)
    assert [(r["version_id"], r["status"]) for r in capped[:-1]] == [
        ("1.0", "not-carried"), ("2.0", "not-carried"), ("3.0", "not-carried"), ("4.0", "not-carried"),
        ("5.0", "pending")]
    assert capped[1]["reason"] == beyond(2)
    # a version dated after the current one would land out of order
    late = choose(listing(("2.0", 1_700_000_000, 5), ("1.0", 1_800_000_000, 5)), None, None, 1_700_000_000)
    assert late[0]["reason"] == NOT_BEFORE


def test_the_item_facts_decide_whether_to_ask():
    assert not may_have_history({"etag": '"{8B2D1C9E-AAAA},1"', "ctag": None})
    assert may_have_history({"etag": '"{8B2D1C9E-AAAA},4"', "ctag": None})
    assert not may_have_history({"etag": '"{8B2D1C9E-AAAA},4"', "ctag": '"c:{8B2D1C9E-AAAA},1"'})
    assert may_have_history({"etag": "aGVsbG8", "ctag": None}), "an unknown tag shape is asked about"


def test_policy_values_and_label():
    assert [versions_limit(v) for v in ("none", "all", 3)] == [0, None, 3]
    assert label_for("3.0", "John Doe", 1_749_923_100) == "Microsoft 365 version 3.0, John Doe, 2025-06-14 17:45 UTC"
