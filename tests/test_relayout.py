"""The incremental layout `sync` uses gives exactly the paths a full layout gives, on random change mixes."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from migrate.engine.files.layout import DriveTarget, layout_drive
from migrate.engine.files.relayout import relayout_drive
from migrate.models import Drive, DriveKind
from migrate.names import NameRules
from migrate.store import StateStore

NAMES = ["a.txt", "A.txt", "a_b.txt", "a\\b.txt", "Café", unicodedata.normalize("NFD", "Café"), "CAFÉ", "con",
         "x:y", "x_y", "report", "Report", "notes.part", "b.txt", " trail ", "doc"]


class Tree:
    """One drive in two stores: `inc` is laid out incrementally, `full` fully; both get the same changes."""

    def __init__(self, tmp: Path, rng: random.Random) -> None:
        self.rng = rng
        self.stores = [StateStore(tmp / "inc.db"), StateStore(tmp / "full.db")]
        self.items: dict[str, dict] = {"root": dict(item_id="root", parent_id=None, name="root", is_folder=1)}
        self.n = 0
        for s in self.stores:
            s.upsert_drives([Drive("d1", DriveKind.ONEDRIVE, "OneDrive", owner_upn="anna@example.org")])
        self.target = DriveTarget(self.stores[0].drive("d1"), "mapped", user="anna", root="/Migrated")
        for _ in range(40):
            self.new(folder=True)
        for _ in range(160):
            self.new(folder=False)
        self.write(list(self.items.values()))

    def live(self, folder: bool | None = None) -> list[dict]:
        return [r for r in self.items.values() if not r.get("deleted") and r["item_id"] != "root"
                and (folder is None or bool(r["is_folder"]) == folder)]

    def folders(self) -> list[str]:
        return ["root"] + [r["item_id"] for r in self.live(True)]

    def below(self, fid: str) -> set[str]:
        out, stack = set(), [fid]
        while stack:
            cur = stack.pop()
            for r in self.live():
                if r["parent_id"] == cur and r["item_id"] not in out:
                    out.add(r["item_id"])
                    stack.append(r["item_id"])
        return out

    def new(self, *, folder: bool, parent: str | None = None) -> dict:
        self.n += 1
        row = dict(item_id=f"i{self.n}", parent_id=parent or self.rng.choice(self.folders()),
                   name=self.rng.choice(NAMES), is_folder=int(folder), size=self.rng.randint(0, 100))
        if folder and self.rng.random() < 0.05:
            row["package_type"] = "oneNote"
        self.items[row["item_id"]] = row
        return row

    def write(self, rows: list[dict]) -> None:
        for s in self.stores:
            s.upsert_items("d1", [{**r, "path": "/x/" + r["name"]} for r in rows])

    def change(self, count: int) -> None:
        """A mix: renames (into collisions, case-only), moves of files and folders, new files in new folders,
        deletions (whole folders too), edits over the size limit."""
        rng, touched = self.rng, []
        for _ in range(count):
            kind = rng.choice(["rename", "case", "move", "move-folder", "new", "new-in-new", "delete", "edit"])
            live = self.live()
            r = rng.choice(live)
            if kind == "rename":
                r["name"] = rng.choice(NAMES)
            elif kind == "case":
                r["name"] = r["name"].swapcase()
            elif kind in ("move", "move-folder"):
                if kind == "move-folder" and self.live(True):
                    r = rng.choice(self.live(True))
                bad = self.below(r["item_id"]) | {r["item_id"]}
                r["parent_id"] = rng.choice([f for f in self.folders() if f not in bad])
            elif kind == "new":
                r = self.new(folder=rng.random() < 0.3)
            elif kind == "new-in-new":
                touched.append(self.new(folder=True))
                r = self.new(folder=False, parent=touched[-1]["item_id"])
            elif kind == "delete":
                for i in self.below(r["item_id"]) | {r["item_id"]}:
                    self.items[i]["deleted"] = 1
                    touched.append(self.items[i])
            else:
                r["size"] = rng.choice([5, 500])
            touched.append(r)
        self.write(touched)

    def paths(self, store: StateStore) -> dict[str, tuple]:
        return {r["item_id"]: (r["target_user"], r["target_path"])
                for r in store.query("SELECT item_id, target_user, target_path FROM items WHERE deleted = 0")}


@pytest.mark.parametrize("seed", range(6))
def test_incremental_layout_equals_full_layout(tmp_path: Path, seed: int) -> None:
    rules = NameRules(forbidden_chars=frozenset(':\\'))
    tree = Tree(tmp_path, random.Random(seed))
    inc, full = tree.stores
    layout_drive(inc, tree.target, rules, max_file_size=100)
    for round_ in range(4):
        tree.change(12)
        relayout_drive(inc, tree.target, rules, max_file_size=100)
        layout_drive(full, tree.target, rules, max_file_size=100)
        got, want = tree.paths(inc), tree.paths(full)
        assert got == want, f"seed {seed} round {round_}: " + str(
            {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)})
        assert not inc.unlaid("d1")


def test_only_changed_folders_are_laid_out_again(tmp_path: Path) -> None:
    tree = Tree(tmp_path, random.Random(99))
    inc = tree.stores[0]
    rules = NameRules()
    layout_drive(inc, tree.target, rules)
    row = tree.live(False)[0]
    row["name"] = "renamed.txt"
    tree.write([row])
    siblings = sum(1 for r in tree.live() if r["parent_id"] == row["parent_id"])
    lay = relayout_drive(inc, tree.target, rules)
    assert lay.items == siblings  # one folder's children, not the drive's 200 items
    assert relayout_drive(inc, tree.target, rules).items == 0  # nothing changed since


def test_changed_settings_lay_the_whole_drive_out_again(tmp_path: Path) -> None:
    tree = Tree(tmp_path, random.Random(7))
    inc, full = tree.stores
    layout_drive(inc, tree.target, NameRules())
    strict = NameRules(forbidden_chars=frozenset(':\\'))
    lay = relayout_drive(inc, tree.target, strict)
    assert lay.items == len(tree.live())
    layout_drive(full, tree.target, strict)
    assert tree.paths(inc) == tree.paths(full)
    moved = DriveTarget(tree.target.drive, "mapped", user="anna", root="/Elsewhere")
    assert relayout_drive(inc, moved, strict).items == len(tree.live())


def test_a_kill_during_the_layout_leaves_the_changes_unlaid(tmp_path: Path, monkeypatch) -> None:
    tree = Tree(tmp_path, random.Random(3))
    inc, full = tree.stores
    rules = NameRules()
    layout_drive(inc, tree.target, rules)
    tree.change(10)
    before = tree.paths(inc)
    calls = {"n": 0}
    real = inc.set_targets

    def dies(rows, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(rows, **kw)

    monkeypatch.setattr(inc, "set_targets", dies)
    with pytest.raises(KeyboardInterrupt):
        relayout_drive(inc, tree.target, rules)
    monkeypatch.undo()
    assert tree.paths(inc) == before  # the transaction rolled back: nothing half laid
    assert inc.unlaid("d1")
    relayout_drive(inc, tree.target, rules)
    layout_drive(full, tree.target, rules)
    assert tree.paths(inc) == tree.paths(full)


def test_a_drive_taken_out_of_the_migration_and_back_is_laid_out_whole(tmp_path: Path) -> None:
    tree = Tree(tmp_path, random.Random(5))
    inc, full = tree.stores
    rules = NameRules()
    layout_drive(inc, tree.target, rules)
    inc.clear_drive_targets("d1")  # its mapping row blanked for a while
    assert relayout_drive(inc, tree.target, rules).items == len(tree.live())
    layout_drive(full, tree.target, rules)
    assert tree.paths(inc) == tree.paths(full)
