"""What syncs: default and user excludes (gitignore syntax), and refused paths."""

from __future__ import annotations

import itertools

import pathspec
import pytest

from paude.errors import ConfigError
from paude.sync.paths import (
    DEFAULT_EXCLUDED_PATTERNS,
    Excludes,
    _any_match,
    check_path,
    is_never_back,
)
from paude.trust.paths import never_sync_back


@pytest.mark.parametrize("path", [
    "node_modules/x/y.js", "a/node_modules/b", ".venv/bin/python", "src/__pycache__/m.pyc",
    ".paude/conflicts/x", ".git/index.lock", ".git/refs/heads/main.lock", "a/.x.swp",
])
def test_defaults_exclude(path: str) -> None:
    assert Excludes().is_excluded(path)


@pytest.mark.parametrize("path", [
    ".git/objects/ab/cdef", ".git/HEAD", ".git/refs/heads/main", "src/main.py", ".paudex",
    "node_modules_notes.txt",
])
def test_defaults_keep(path: str) -> None:
    assert not Excludes().is_excluded(path)


def test_directory_excluded_by_name_itself() -> None:
    assert Excludes().is_excluded("pkg/node_modules", is_dir=True)
    assert not Excludes().is_excluded("pkg/node_modules")  # a file of that name syncs


def test_user_patterns_are_gitignore_syntax() -> None:
    ex = Excludes(("*.log", "/build/", "!keep.log", "data/**/*.bin"))
    assert ex.is_excluded("x/y.log")
    assert not ex.is_excluded("keep.log")
    assert ex.is_excluded("build/out.o")
    assert not ex.is_excluded("src/build.py")
    assert ex.is_excluded("data/a/b/c.bin")
    assert ex.filter(["a.log", "a.py"]) == ["a.py"]


_PATTERNS = ("*.log", "/build/", "data/**/*.bin", "docs/*.md", "a?c", "[ab]x/", "**/gen/**",
             "/top.txt", "deep/er/", "*.o", "name", "sub/name/", "# comment", "")
_PATHS = ("x.log", "a/x.log", "build", "build/o", "a/build/o", "data/x.bin", "data/a/b/x.bin",
          "docs/r.md", "docs/a/r.md", "abc", "a/abc", "abcd", "ax/f", "bx", "cx/f", "gen/f",
          "a/gen/b/f", "top.txt", "a/top.txt", "deep/er/f", "a/deep/er", "x.o", "name",
          "a/name/b", "sub/name", "sub/name/f", ".paude/x", ".git/a.lock", ".git/r/h/m.lock",
          "x.swp", ".DS_Store", "a/.DS_Store/f", "plain.py")


def test_one_regex_decides_as_pathspec_without_negations() -> None:
    for size in (1, 2, 3):
        for chosen in itertools.combinations(_PATTERNS, size):
            spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_EXCLUDED_PATTERNS, *chosen])
            fast = _any_match(spec)
            assert fast is not None
            for path, is_dir in itertools.product(_PATHS, (False, True)):
                name = path + "/" if is_dir else path
                assert bool(fast(name)) == spec.match_file(name), (chosen, name)


def test_a_negation_keeps_pathspec_deciding() -> None:
    assert _any_match(pathspec.GitIgnoreSpec.from_lines(["*.log", "!keep.log"])) is None
    ex = Excludes(("*.log", "!keep.log", "logs/", "!logs/keep"))
    assert ex.is_excluded("a.log") and not ex.is_excluded("keep.log")


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a",
                                  "a/.", "a\0b"])
def test_unclean_paths_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="outside the workspace"):
        check_path(path)


def test_never_back_matches_whole_components() -> None:
    assert is_never_back(".git/hooks/post-checkout")
    assert is_never_back(".git/config")
    assert not is_never_back(".git/configx")
    assert not is_never_back(".git/objects/ab/cd")
    assert not is_never_back(".git", is_dir=True)
    assert is_never_back(".git")  # a .git file points git anywhere
    assert is_never_back("sub/.git/hooks/x")


@pytest.mark.parametrize("path", [
    "a/b.txt", "paude.json", "sub/paude.json", ".devcontainer/x", ".devcontainer.json",
    "x.devcontainer", ".git", "sub/.git", ".git/hooks", "m/.git/config", ".gitignore",
    "a.git/config", "./paude.json", "src/.git/modules/y", "node/.github/w.yml",
])
@pytest.mark.parametrize("is_dir", [False, True])
def test_never_back_answers_as_the_trust_list(path: str, is_dir: bool) -> None:
    assert is_never_back(path, is_dir=is_dir) == never_sync_back(path, is_dir=is_dir)


# Each opens a protected path on a case-insensitive host: macOS (case, HFS+
# ignorable code points, normalization) or Windows (case, trailing dots and
# spaces, alternate data streams, 8.3 short names).
@pytest.mark.parametrize("path", [
    ".GIT/config", ".git/HOOKS/pre-commit", ".Git/info/exclude", "PAUDE.JSON", "Paude.Json",
    ".DevContainer/devcontainer.json", ".DEVCONTAINER.JSON", "sub/.GIT/Config",
    ".g\u200cit/config", ".git/\ufeffhooks/x", ".gi\u200dt/info/x", ".git/hoo\u212as/x",
    ".git./config", ".git /hooks/x", "paude.json.", ".git::$INDEX_ALLOCATION/hooks/x",
    "GIT~1/config", "git~2/hooks/x", "PAUDE~1.JSO", "DEVCON~1/Dockerfile",
    ".git/COMMON~1", ".git/CONFIG~1.WOR", ".GIT",
])
def test_never_back_in_every_spelling_the_host_opens(path: str) -> None:
    assert is_never_back(path)


@pytest.mark.parametrize("path", [
    ".GIT/objects/ab/cd", ".Git/refs/heads/main", ".github/workflows/ci.yml", ".gitignore",
    "a.git/config", "docs/PAUDE.JSON", "src/Config", "GIT~1/objects/x", ".gitmodules",
    "paude.json5", "devcontainer/x",
])
def test_other_spellings_still_come_back(path: str) -> None:
    assert not is_never_back(path)
    assert not is_never_back(path.rsplit("/", 1)[0], is_dir=True)
