"""The .gitignore matcher, rule by rule."""

from __future__ import annotations

import pytest

from ci_client.ignore import IgnoreFile, IgnoreStack, parse_rule


def ignored(text: str, path: str, *, is_dir: bool = False) -> bool:
    return IgnoreStack().with_file(IgnoreFile.parse(text)).is_ignored(path, is_dir=is_dir)


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("*.log", "a.log.txt", False, False),
        ("data/", "data", True, True),
        ("data/", "data", False, False),
        ("data/", "sub/data", True, True),
        ("/data", "data", False, True),
        ("/data", "sub/data", False, False),
        ("doc/frotz", "doc/frotz", False, True),
        ("doc/frotz", "a/doc/frotz", False, False),
        ("**/foo", "foo", False, True),
        ("**/foo", "a/b/foo", True, True),
        ("**/foo/bar", "x/foo/bar", False, True),
        ("abc/**", "abc/x/y", False, True),
        ("abc/**", "abc", True, False),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "ab", False, False),
        ("fo?.txt", "foo.txt", False, True),
        ("fo?.txt", "fo/.txt", False, False),
        ("*.py[co]", "x.pyc", False, True),
        ("*.py[!co]", "x.pyc", False, False),
        ("*.py[!co]", "x.pyd", False, True),
        ("[a-c]*.md", "b.md", False, True),
        ("[a-c]*.md", "d.md", False, False),
        ("\\#notes", "#notes", False, True),
        ("\\!bang", "!bang", False, True),
        ("trailing   ", "trailing", False, True),
        ("a*b", "a/b", False, False),
    ],
)
def test_rules(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(pattern, path, is_dir=is_dir) is expected


def test_comments_and_blanks_are_not_rules() -> None:
    assert parse_rule("# a comment") is None
    assert parse_rule("   ") is None
    assert parse_rule("/") is None


def test_negation_last_match_wins() -> None:
    text = "*.log\n!keep.log\n"
    assert ignored(text, "x.log")
    assert not ignored(text, "keep.log")
    assert ignored(text + "keep.log\n", "keep.log")


def test_deeper_files_override_shallower_ones() -> None:
    stack = IgnoreStack().with_file(IgnoreFile.parse("*.txt\n"))
    stack = stack.with_file(IgnoreFile.parse("!important.txt\n/local.txt\n", base="sub"))
    assert stack.is_ignored("other.txt", is_dir=False)
    assert not stack.is_ignored("sub/important.txt", is_dir=False)
    assert stack.is_ignored("sub/local.txt", is_dir=False)
    assert not stack.is_ignored("sub/deeper/local.json", is_dir=False)
