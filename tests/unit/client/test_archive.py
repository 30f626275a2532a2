"""Packing a project: .gitignore in and outside git, fixed exclusions, refusals."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ci_client.archive import pack_project, select_files
from ci_client.errors import ArchiveError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TREE = {
    "requirements.txt": "",
    "app.py": "",
    "tests/test_app.py": "",
    "run.log": "",
    "keep.log": "",
    "data/big.bin": "",
    "secret.txt": "",
    "sub/mod.py": "",
    "sub/local.cfg": "",
    "sub/deep/local.cfg": "",
    "sub/.gitignore": "local.cfg\n",
    ".gitignore": "*.log\n!keep.log\ndata/\n/secret.txt\n",
    # Always left out, whatever .gitignore says:
    ".venv/lib/site.py": "",
    "venv/lib/site.py": "",
    "myenv/pyvenv.cfg": "",
    "myenv/lib/site.py": "",
    "__pycache__/app.cpython-311.pyc": "",
    "sub/__pycache__/mod.cpython-311.pyc": "",
    ".pytest_cache/v/cache": "",
    ".mypy_cache/x": "",
    ".ruff_cache/x": "",
    "node_modules/m.js": "",
    "build/lib/app.py": "",
    "dist/app.whl": "",
    "app.egg-info/PKG-INFO": "",
    "src/app.egg-info/PKG-INFO": "",
    # ... but a package that happens to be called `build` deeper down stays.
    "pkg/build/helper.py": "",
}
EXPECTED = {
    "requirements.txt",
    "app.py",
    "tests/test_app.py",
    "keep.log",
    "sub/mod.py",
    "sub/.gitignore",
    ".gitignore",
    "pkg/build/helper.py",
}


def make_tree(root: Path, tree: dict[str, str]) -> Path:
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No global or system git config (a global excludesFile would change the answers), and
    no repository above the temp dir."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def names_in(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return set(archive.namelist())


def test_outside_git_gitignore_and_exclusions_apply(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", TREE)
    archive = pack_project(root)
    assert names_in(archive.data) == EXPECTED
    assert archive.file_count == len(EXPECTED)
    assert not archive.used_git


@needs_git
def test_in_git_tracked_and_untracked_not_ignored(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", TREE)
    git(root, "init", "-q")
    git(root, "add", "requirements.txt", "app.py", ".gitignore")
    git(root, "commit", "-qm", "init")
    # A tracked file stays in even though it matches .gitignore (git's rule); a committed
    # virtualenv is still left out.
    (root / "tracked.log").write_text("")
    git(root, "add", "-f", "tracked.log", ".venv/lib/site.py")
    (root / ".git" / "info" / "exclude").write_text("sub/mod.py\n")
    archive = pack_project(root)
    assert archive.used_git
    assert names_in(archive.data) == (EXPECTED - {"sub/mod.py"}) | {"tracked.log"}


@needs_git
def test_in_a_subdirectory_of_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root = make_tree(repo / "services" / "api", TREE)
    (repo / ".gitignore").write_text("*.bin\napp.py\n")
    git(repo, "init", "-q")
    files, used_git = select_files(root)
    assert used_git
    assert set(files) == EXPECTED - {"app.py"}


@needs_git
def test_deleted_tracked_files_are_skipped(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"requirements.txt": "", "gone.py": ""})
    git(root, "init", "-q")
    git(root, "add", ".")
    (root / "gone.py").unlink()
    assert select_files(root) == (["requirements.txt"], True)


CROSS_CHECK_TREE = {
    ".gitignore": (
        "# comment\n*.tmp\n!important.tmp\n/rootonly.txt\nlogs/\n**/generated/**\n"
        "docs/*.html\n!docs/keep.html\nfoo/**/bar.txt\n*.py[co]\n[Tt]humbs.db\ncache*/\n"
    ),
    "a.tmp": "",
    "important.tmp": "",
    "x/b.tmp": "",
    "x/important.tmp": "",
    "rootonly.txt": "",
    "x/rootonly.txt": "",
    "logs/a.txt": "",
    "x/logs/b.txt": "",
    "logsfile": "",
    "generated/a.py": "",
    "x/generated/b.py": "",
    "x/generated/deep/c.py": "",
    "docs/index.html": "",
    "docs/keep.html": "",
    "docs/sub/page.html": "",
    "foo/bar.txt": "",
    "foo/a/b/bar.txt": "",
    "foo/a/baz.txt": "",
    "m.pyc": "",
    "m.pyo": "",
    "m.py": "",
    "Thumbs.db": "",
    "thumbs.db": "",
    "cache1/x": "",
    "cachefile": "",
    "x/cache2/y": "",
    "nested/.gitignore": "*.txt\n!keep.txt\n/only-here.md\n",
    "nested/a.txt": "",
    "nested/keep.txt": "",
    "nested/only-here.md": "",
    "nested/deeper/only-here.md": "",
    "nested/deeper/b.txt": "",
}


@needs_git
def test_the_matcher_agrees_with_git(tmp_path: Path) -> None:
    plain = make_tree(tmp_path / "plain", CROSS_CHECK_TREE)
    ours, used_git = select_files(plain)
    assert not used_git
    repo = make_tree(tmp_path / "repo", CROSS_CHECK_TREE)
    git(repo, "init", "-q")
    theirs = git(repo, "ls-files", "-co", "--exclude-standard").split()
    assert ours == sorted(theirs)


def test_packs_a_project_that_declares_no_dependencies(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"test_app.py": ""})
    assert pack_project(root).file_count == 1


def test_pyproject_is_enough(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"pyproject.toml": "", "app.py": ""})
    assert pack_project(root).file_count == 2


def test_says_when_requirements_are_ignored(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"requirements.txt": "", ".gitignore": "*.txt\n"})
    with pytest.raises(ArchiveError, match=r"excluded by .gitignore"):
        pack_project(root)


def test_refuses_a_project_over_the_limit(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"requirements.txt": ""})
    (root / "noise.bin").write_bytes(random.Random(0).randbytes(2 * 1024 * 1024))
    with pytest.raises(ArchiveError, match=r"over the upload limit of 1.0 MiB.*gitignore"):
        pack_project(root, max_bytes=1024 * 1024)


@pytest.mark.parametrize("name", ["missing", "file.txt"])
def test_refuses_a_path_that_is_not_a_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(ArchiveError, match="directory"):
        pack_project(tmp_path / name)


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj", {"requirements.txt": "", "a.py": ""})
    (root / "loop").symlink_to(root)
    assert select_files(root) == (["a.py", "requirements.txt"], False)
