"""A `.gitignore` matcher for projects that are not in a git repository.

Inside a repository the client asks git itself (`git ls-files -co --exclude-standard`), which is
exact by definition. Outside one there is no git to ask: `git check-ignore --no-index` still
needs a repository, and `pathspec` is not a dependency, so this module implements the documented
gitignore rules (gitignore(5)) that real projects use:

- blank lines and `#` comments are skipped; `\\#` and `\\!` escape; trailing spaces are dropped;
- `!pattern` re-includes what an earlier pattern excluded (last match wins);
- a trailing `/` matches directories only;
- a pattern with a `/` at the start or in the middle is anchored to the `.gitignore`'s
  directory; otherwise it matches a name at any depth below it;
- `*` and `?` never match `/`; `[...]` is a character class (`[!...]` negated);
- `**/` matches any number of directories, `/**` everything inside, `/**/` zero or more dirs.

Like git, the walker never descends into an excluded directory, so a file inside one cannot be
re-included; deeper `.gitignore` files override shallower ones. The unit tests check this module
against real git on the same trees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class IgnoreRule:
    """One compiled line of a `.gitignore`."""

    regex: re.Pattern[str]
    negated: bool
    dir_only: bool

    def matches(self, relative: str, *, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(relative) is not None


def parse_rule(line: str) -> IgnoreRule | None:
    """The rule of one `.gitignore` line, or None for blanks and comments."""
    line = line.rstrip("\r\n")
    line = _strip_trailing_spaces(line)
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated or line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.removeprefix("/")
    body = _translate(line)
    if not anchored:
        body = "(?:.*/)?" + body
    return IgnoreRule(regex=re.compile(body, re.DOTALL), negated=negated, dir_only=dir_only)


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces are ignored unless escaped with a backslash."""
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        return stripped + " "
    return stripped


def _translate(pattern: str) -> str:
    """The regex (without anchors) of a gitignore glob, following git's wildmatch rules."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            stars = j - i
            at_start = i == 0 or pattern[i - 1] == "/"
            at_end = j == n or pattern[j] == "/"
            if stars >= 2 and at_start and at_end:
                if j == n:
                    out.append(".*")  # `**` at the end: everything below
                else:
                    out.append("(?:.*/)?")  # `**/`: zero or more directories
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            i = _translate_class(pattern, i, out)
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _translate_class(pattern: str, start: int, out: list[str]) -> int:
    """Append the regex of the `[...]` class at `start`; return the index after it. An
    unterminated `[` is a literal, as in git."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    members: list[str] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            members.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "-" and members and i + 1 < len(pattern) and pattern[i + 1] != "]":
            members.append("-")
            i += 1
        else:
            members.append(re.escape(char) if char not in "-" else "\\-")
            i += 1
        first = False
    if i >= len(pattern):
        out.append(re.escape("["))
        return start + 1
    out.append("[" + ("^/" if negate else "") + "".join(members) + "]")
    return i + 1


@dataclass(frozen=True)
class IgnoreFile:
    """The rules of one `.gitignore`, and the directory (relative to the project root, "" for
    the root) whose paths they apply to."""

    base: str
    rules: tuple[IgnoreRule, ...]

    @classmethod
    def parse(cls, text: str, *, base: str = "") -> IgnoreFile:
        rules = (parse_rule(line) for line in text.splitlines())
        return cls(base=base, rules=tuple(rule for rule in rules if rule is not None))


class IgnoreStack:
    """The `.gitignore` files that apply in one directory of a walk, outermost first."""

    def __init__(self, files: tuple[IgnoreFile, ...] = ()) -> None:
        self._files = files

    def with_file(self, ignore_file: IgnoreFile) -> IgnoreStack:
        if not ignore_file.rules:
            return self
        return IgnoreStack((*self._files, ignore_file))

    def is_ignored(self, relative: str, *, is_dir: bool) -> bool:
        """Whether the path (POSIX, relative to the project root) is excluded: the last
        matching rule decides, deeper files after shallower ones."""
        ignored = False
        for ignore_file in self._files:
            inner = relative
            if ignore_file.base:
                if not relative.startswith(ignore_file.base + "/"):
                    continue  # that file's rules apply only below its directory
                inner = relative[len(ignore_file.base) + 1 :]
            for rule in ignore_file.rules:
                if rule.matches(inner, is_dir=is_dir):
                    ignored = not rule.negated
        return ignored
