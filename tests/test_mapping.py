"""Mapping files: every error names file:line:column; suggestions are appended without touching edited lines."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from migrate.errors import ConfigError, MappingError
from migrate.mapping import (
    MappingFileError,
    SiteTarget,
    load_groups,
    load_mappings,
    load_sites,
    load_users,
    merge_suggestions,
    parse_site_target,
    render_mapping_templates,
)

REPO = Path(__file__).resolve().parent.parent
SITE_ID = "example.sharepoint.com,2c712604-1370-44e7-a1f5-426573b1c2e9,2d2244c3-251a-49ea-93a8-39400b2d8a0c"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages then show "users.csv:3:1", as a person in that folder would see


def write(name: str, text: str | bytes) -> Path:
    path = Path(name)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def error_of(loader, path: Path) -> str:
    with pytest.raises(MappingError) as info:
        loader(path)
    assert isinstance(info.value, ConfigError)  # exit code 2 at the CLI boundary
    return str(info.value)


# --- loading -----------------------------------------------------------------------------------------------


def test_users_load_with_comments_blank_lines_whitespace_and_blank_target() -> None:
    path = write(
        "users.csv",
        "# people\n\nsource_upn , target_user , batch\n"
        "  Anna.Berg@Example.org , anna.berg , pilot \n# gone\nold@example.org,,\n",
    )
    users = load_users(path)
    assert len(users) == 2
    anna = users.get("anna.berg@example.ORG")
    assert anna is not None and anna.target_user == "anna.berg" and anna.batch == "pilot" and anna.line == 4
    assert users.target_for("OLD@example.org") is None
    assert [r.source_upn for r in users.not_migrated()] == ["old@example.org"]
    assert "anna.berg@example.org" in users and "nobody@example.org" not in users
    assert users.batches() == ("pilot",) and len(users.in_batch("PILOT")) == 1


def test_bom_is_accepted_and_columns_count_after_it() -> None:
    path = write(
        "users.csv", b"\xef\xbb\xbfsource_upn,target_user,batch\r\nanna@example.org,anna,\r\nbad,x,\r\n"
    )
    msg = error_of(load_users, path)
    assert msg.startswith("users.csv:3:1: expected a user principal name")
    write("users.csv", b"\xef\xbb\xbfsource_upn,target_user,batch\r\nanna@example.org,anna,\r\n")
    assert load_users(path).get("anna@example.org").target_user == "anna"


def test_semicolon_separated_file_from_excel_is_read() -> None:
    path = write("users.csv", "source_upn;target_user;batch\nanna@example.org;anna;w1\n")
    assert load_users(path).target_for("anna@example.org") == "anna"


def test_groups_and_sites_lookups() -> None:
    write(
        "groups.csv",
        "source_group,target_group\n6F1C2A4E-93B1-4D0E-B1A2-3C4D5E6F7A8B,hr\nAll Staff,staff\nExternals,\n",
    )
    groups = load_groups(Path("groups.csv"))
    assert groups.target_for("6f1c2a4e-93b1-4d0e-b1a2-3c4d5e6f7a8b") == "hr"
    assert groups.target_for("", "all staff") == "staff"
    assert groups.get("externals").target_group is None
    write(
        "sites.csv",
        "source,target,batch\n"
        "https://Example.sharepoint.com/sites/HR/,groupfolder:HR,w1\n"
        "https://example.sharepoint.com/sites/HR/Shared%20Documents/Forms/AllItems.aspx,/HR/Docs,w1\n"
        f'"{SITE_ID}",user:anna:/Board,w2\n'
        "b!abcdefghijKLMNOP_-12,groupfolder:Finance:/Archive/,\n"
        "https://example.sharepoint.com/sites/Old,,\n",
    )
    sites = load_sites(Path("sites.csv"))
    assert sites.find(drive_id="b!abcdefghijKLMNOP_-12").target == SiteTarget(
        "groupfolder", "Finance", "/Archive"
    )
    docs = sites.find(
        drive_id="b!other",
        drive_url="https://example.sharepoint.com/sites/HR/Shared Documents",
        site_url="https://example.sharepoint.com/sites/hr",
    )
    assert docs.line == 3 and str(docs.target) == "/HR/Docs"
    other = sites.find(
        drive_url="https://example.sharepoint.com/sites/HR/Other",
        site_url="https://example.sharepoint.com/sites/hr",
    )
    assert other.line == 2 and str(other.target) == "groupfolder:HR"
    assert sites.find(site_id=SITE_ID.upper()).target == SiteTarget("user", "anna", "/Board")
    assert sites.find(site_url="https://example.sharepoint.com/sites/Nope") is None
    assert [r.line for r in sites.not_migrated()] == [6]
    assert sites.batches() == ("w1", "w2")


def test_parse_site_target_forms() -> None:
    assert parse_site_target("user:anna.berg:/A//B/") == SiteTarget("user", "anna.berg", "/A/B")
    assert str(parse_site_target("groupfolder:HR")) == "groupfolder:HR"
    assert str(parse_site_target("/x/y")) == "/x/y"
    for bad in ("user:anna", "user::/x", "groupfolder:", "x/y", "/a/../b", "user:anna:relative"):
        with pytest.raises(ValueError):
            parse_site_target(bad)


def test_load_mappings_missing_files_are_empty_unless_required(tmp_path: Path) -> None:
    class Paths:
        users, groups, sites = Path("u.csv"), Path("g.csv"), Path("s.csv")

    loaded = load_mappings(Paths())
    assert len(loaded.users) == len(loaded.groups) == len(loaded.sites) == 0
    with pytest.raises(MappingError, match=r"u\.csv: mapping file not found"):
        load_mappings(Paths(), missing_ok=False)


# --- every error case, with file:line:column ------------------------------------------------------------------


def test_unbalanced_quote_names_the_opening_quote() -> None:
    path = write("sites.csv", f'source,target,batch\n"{SITE_ID},/x,w\n')
    msg = error_of(load_sites, path)
    assert msg.startswith("sites.csv:2:1: unbalanced double quote")


def test_text_after_closing_quote() -> None:
    path = write("users.csv", 'source_upn,target_user,batch\n"anna@example.org"x,anna,\n')
    assert error_of(load_users, path).startswith(
        "users.csv:2:19: unexpected text after the closing double quote"
    )


def test_unquoted_site_id_gives_field_count_with_quoting_hint() -> None:
    path = write("sites.csv", f"source,target,batch\n{SITE_ID},/x,w\n")
    msg = error_of(load_sites, path)
    col = len(SITE_ID.split(",")[0]) + 1 + 36 + 1 + 36 + 2
    assert f"sites.csv:2:{col}: expected 3 values (source,target,batch), found 5" in msg
    assert "wrap it in double quotes" in msg


def test_too_few_values() -> None:
    path = write("users.csv", "source_upn,target_user,batch\nanna@example.org,anna\n")
    assert "users.csv:2:22: expected 3 values (source_upn,target_user,batch), found 2" in error_of(
        load_users, path
    )


def test_utf16_file_is_refused() -> None:
    path = write("users.csv", "source_upn,target_user,batch\n".encode("utf-16"))
    msg = error_of(load_users, path)
    assert msg.startswith("users.csv:1:1: the file is UTF-16") and "CSV UTF-8" in msg


def test_wrong_encoding_names_line_column_and_offset() -> None:
    data = "source_upn,target_user,batch\nj.müller@example.org,jm,\n".encode("cp1252")
    path = write("users.csv", data)
    msg = error_of(load_users, path)
    offset = data.index(b"\xfc")
    assert msg.startswith(f"users.csv:2:4: not valid UTF-8 (at byte offset {offset})")
    assert "CSV UTF-8 (Comma delimited)" in msg


def test_unknown_and_missing_columns() -> None:
    path = write("users.csv", "# hi\nsource_upn,target_usr,batch\n")
    msg = error_of(load_users, path)
    assert (
        "users.csv:2:12: unknown column 'target_usr' in the header: expected source_upn,target_user,batch"
        in msg
    )
    assert "users.csv:2:1: missing column target_user in the header" in msg
    write("groups.csv", "source_group,target_group,source_group\n")
    assert "groups.csv:1:27: column 'source_group' appears twice" in error_of(load_groups, Path("groups.csv"))


def test_comment_column_is_optional_and_kept() -> None:
    path = write("users.csv", "source_upn,target_user,batch,comment\nanna@example.org,anna,,asked by HR\n")
    assert load_users(path).get("anna@example.org").comment == "asked by HR"


def test_empty_file_and_comment_only_file() -> None:
    path = write("users.csv", "")
    assert error_of(load_users, path).startswith(
        "users.csv:1:1: the file is empty: expected the header line source_upn,target_user,batch"
    )
    write("users.csv", "# only a comment\n\n")
    assert error_of(load_users, path).startswith("users.csv:1:1: the file is empty")


def test_duplicate_source_names_both_lines() -> None:
    path = write(
        "users.csv",
        "source_upn,target_user,batch\nanna@example.org,anna,\nbob@example.org,bob,\n"
        "  ANNA@example.org,anna2,\n",
    )
    assert "users.csv:4:3: ANNA@example.org is mapped twice: also on line 2" in error_of(load_users, path)
    write("groups.csv", "source_group,target_group\nStaff,a\nstaff,b\n")
    assert "groups.csv:3:1: group 'staff' is mapped twice: also on line 2" in error_of(
        load_groups, Path("groups.csv")
    )
    write(
        "sites.csv",
        "source,target,batch\nhttps://e.sharepoint.com/sites/A,/a,\nhttps://E.sharepoint.com/sites/a/,/b,\n",
    )
    assert "sites.csv:3:1: https://E.sharepoint.com/sites/a/ is mapped twice: also on line 2" in error_of(
        load_sites, Path("sites.csv")
    )


def test_two_sources_one_target_names_both_lines() -> None:
    path = write(
        "users.csv", "source_upn,target_user,batch\nanna@example.org,anna,\nanna@old.example.org,Anna,\n"
    )
    assert "users.csv:3:22: target user 'Anna' is also the target of line 2" in error_of(load_users, path)
    write(
        "sites.csv",
        "source,target,batch\nhttps://e.sharepoint.com/sites/A,groupfolder:HR:/x,\n"
        "https://e.sharepoint.com/sites/B,groupfolder:hr:/x/,\n",
    )
    assert "sites.csv:3:34: target 'groupfolder:hr:/x' is also the target of line 2" in error_of(
        load_sites, Path("sites.csv")
    )


def test_bad_target_syntax_and_bad_source() -> None:
    path = write(
        "sites.csv",
        "source,target,batch\nhttps://e.sharepoint.com/sites/A,nextcloud:/x,\nsharepoint site A,/a,\n",
    )
    msg = error_of(load_sites, path)
    assert (
        "sites.csv:2:34: expected user:<uid>:/<path>, groupfolder:<name> or a WebDAV path starting with /, "
        "found 'nextcloud:/x'"
    ) in msg
    assert "sites.csv:3:1: expected a site URL (https://...), a site id" in msg


def test_versions_column_is_optional_and_validated_per_row() -> None:
    path = write("users.csv", "source_upn,target_user,batch,versions\nanna@example.org,anna,,all\n"
                 "bob@example.org,bob,,12\ncarl@example.org,carl,,\ndora@example.org,dora,,None\n")
    users = load_users(path)
    assert [users.get(u).versions for u in ("anna@example.org", "bob@example.org", "carl@example.org",
                                            "dora@example.org")] == ["all", 12, None, "none"]
    assert load_users(write("u2.csv", "source_upn,target_user,batch\nanna@example.org,anna,\n")).rows[0].versions \
        is None
    bad = write("sites.csv", "source,target,batch,versions\nb!abcdefghijkl,/a,w,most\nb!abcdefghijkm,/b,w,501\n")
    msg = error_of(load_sites, bad)
    assert "sites.csv:2:21: versions: expected \"none\" | \"all\" | a whole number from 1 to 500" in msg, msg
    assert "found 'most'" in msg and "sites.csv:3:21:" in msg and "found '501'" in msg
    example = load_sites(REPO / "mappings" / "sites.example.csv")
    assert [r.versions for r in example] == [None, "all", "all", "none", None]


def test_bad_upn_bad_uid_bad_batch_all_reported_at_once() -> None:
    path = write(
        "users.csv",
        "source_upn,target_user,batch\nanna.example.org,anna,\nbob@example.org,bob/x,\n"
        "carl@example.org,carl,wave:1\n",
    )
    msg = error_of(load_users, path)
    assert (
        "users.csv:2:1: expected a user principal name like anna.berg@example.org, found 'anna.example.org'"
        in msg
    )
    assert "users.csv:3:17: expected a Nextcloud user id" in msg
    assert "users.csv:4:23: expected a batch name" in msg
    with pytest.raises(MappingFileError) as info:
        load_users(path)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 1), (3, 17), (4, 23)]


def test_missing_file_says_what_to_do() -> None:
    msg = error_of(load_users, Path("nope.csv"))
    assert "nope.csv: mapping file not found" in msg and "discover" in msg


# --- merge_suggestions ----------------------------------------------------------------------------------------


HAND_EDITED = (
    b"\xef\xbb\xbf# edited by Petra, do not lose\r\nsource_upn;target_user;batch;comment\r\n"
    b'anna@example.org;anna.b;pilot;"checked; ok"\r\n\r\n# left out on purpose\r\n'
    b"old@example.org;;;\r\nno-newline@example.org;nn;;"
)


def test_merge_keeps_hand_edited_file_byte_identical_and_appends() -> None:
    path = write("users.csv", HAND_EDITED)
    os.chmod(path, 0o640)
    added = merge_suggestions(
        path,
        [
            {
                "source_upn": "ANNA@example.org",
                "target_user": "anna",
            },  # present (case-insensitive): untouched
            {"source_upn": "bob@example.org", "target_user": "bob", "batch": "w2"},
            {
                "source_upn": "carl@example.org",
                "target_user": "anna.b",
            },  # target taken: left blank, with a note
            {"source_upn": "dora@example.org", "target_user": None, "comment": "#1; check"},
            {"source_upn": "bob@example.org", "target_user": "bob"},  # repeated in the same call
        ],
        "users",
        today=date(2026, 11, 29),
    )
    assert added == 3
    data = path.read_bytes()
    assert data.startswith(HAND_EDITED)
    tail = data[len(HAND_EDITED) :].decode()
    assert tail == (
        "\r\n# added by discover on 2026-11-29\r\nbob@example.org;bob;w2;\r\n"
        "# discover: suggested target 'anna.b' for the next line is already used; fill in another one\r\n"
        'carl@example.org;;;\r\ndora@example.org;;;"#1; check"\r\n'
    )
    assert os.stat(path).st_mode & 0o777 == 0o640
    users = load_users(path)
    assert (
        users.target_for("bob@example.org") == "bob" and users.get("dora@example.org").comment == "#1; check"
    )
    assert users.get("anna@example.org").target_user == "anna.b"
    assert merge_suggestions(path, [{"source_upn": "bob@example.org", "target_user": "x"}], "users") == 0
    assert path.read_bytes() == data  # nothing to add: not rewritten
    assert not [p for p in Path().iterdir() if p.name.endswith(".tmp")]


def test_merge_creates_missing_file_with_header(tmp_path: Path) -> None:
    path = Path("mappings/sites.csv")
    n = merge_suggestions(
        path,
        [
            {"source": SITE_ID, "target": "groupfolder:HR"},
            {"source": "https://e.sharepoint.com/sites/B", "target": ""},
        ],
        "sites",
        today=date(2026, 11, 29),
    )
    assert n == 2
    assert path.read_text() == (
        f'source,target,batch\n# added by discover on 2026-11-29\n"{SITE_ID}",groupfolder:HR,\n'
        "https://e.sharepoint.com/sites/B,,\n"
    )
    assert load_sites(path).find(site_id=SITE_ID).target == SiteTarget("groupfolder", "HR", "/")
    merge_suggestions(path, [{"source": SITE_ID.upper(), "target": "/other"}], "sites")
    assert len(load_sites(path)) == 2


def test_merge_refuses_broken_file_and_invalid_suggestion() -> None:
    path = write("users.csv", 'source_upn,target_user,batch\n"anna@example.org,anna,\n')
    before = path.read_bytes()
    with pytest.raises(MappingError, match=r"users\.csv:2:1: unbalanced"):
        merge_suggestions(path, [{"source_upn": "bob@example.org", "target_user": "bob"}], "users")
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="user principal name"):
        merge_suggestions(Path("new.csv"), [{"source_upn": "bob", "target_user": "bob"}], "users")
    assert not Path("new.csv").exists()


# --- templates and examples -----------------------------------------------------------------------------------


def test_templates_load_as_empty_valid_files() -> None:
    templates = render_mapping_templates()
    assert set(templates) == {"users.csv", "groups.csv", "sites.csv", "README.md"}
    assert (REPO / "mappings" / "README.md").read_text(encoding="utf-8") == templates["README.md"]
    for name, text in templates.items():
        write(name, text)
    assert len(load_users(Path("users.csv"))) == 0
    assert len(load_groups(Path("groups.csv"))) == 0
    assert len(load_sites(Path("sites.csv"))) == 0


def test_repository_examples_load() -> None:
    folder = REPO / "mappings"
    assert len(load_users(folder / "users.example.csv")) == 4
    assert len(load_groups(folder / "groups.example.csv")) == 3
    sites = load_sites(folder / "sites.example.csv")
    assert {r.source_kind for r in sites} == {"url", "site_id", "drive_id"}


def test_empty_group_source() -> None:
    path = write("groups.csv", "source_group,target_group\n,staff\n")
    assert "groups.csv:2:1: expected an Entra group id or display name, found an empty value" in error_of(
        load_groups, path
    )
