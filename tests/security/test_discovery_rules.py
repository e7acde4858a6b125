"""Exclude rules on real trees: files, directories, negations, the walk and git's listing.

Files skip directory patterns ("build/") unless a negation may bring them back
(``FileDiscovery._file_rule``); these cases pin the verdicts gitignore gives, so
that shortcut can never change which files are scanned or why one is not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from secperf.security.discovery import Discovery, FileDiscovery

GIT = shutil.which("git")
REQUIRE_GIT = pytest.mark.skipif(GIT is None, reason="git is not installed")

TREE = (
    "app/main.py",
    "app/build",  # a file named like an excluded directory: not a directory
    "build/gen.py",
    "pkg/build/deep/gen.py",
    "static/app.min.js",
    "static/app.js",
    "docs/guide.md",
    "docs/api/ref.md",
    "src/keep.py",
    "top.py",
)


def tree(root: Path) -> Path:
    for relpath in TREE:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    return root


def in_git(root: Path) -> Path:
    assert GIT is not None
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run([GIT, *args], cwd=root, check=True, capture_output=True)
    return root


def verdicts(found: Discovery) -> tuple[list[str], dict[str, str]]:
    return [f.relpath for f in found.files], dict(found.excluded)


def walk_and_git(tmp_path: Path, exclude: list[str]) -> list[tuple[list[str], dict[str, str]]]:
    walked = FileDiscovery(exclude=exclude).discover(tree(tmp_path / "walked"))
    assert walked.mode != "git"
    results = [verdicts(walked)]
    if GIT is not None:
        listed = FileDiscovery(exclude=exclude).discover(in_git(tree(tmp_path / "listed")))
        assert listed.mode == "git"
        results.append(verdicts(listed))
    return results


def test_directory_and_file_patterns_leave_out_what_gitignore_would(tmp_path: Path) -> None:
    exclude = ["build/", "*.min.js", "docs/*.md"]
    for files, excluded in walk_and_git(tmp_path, exclude):
        assert files == [
            "app/build",
            "app/main.py",
            "docs/api/ref.md",
            "src/keep.py",
            "static/app.js",
            "top.py",
        ]
        assert excluded == {
            "build/": "excluded by configured rule 'build/'",
            "pkg/build/": "excluded by configured rule 'build/'",
            "static/app.min.js": "excluded by configured rule '*.min.js'",
            "docs/guide.md": "excluded by configured rule 'docs/*.md'",
        }


def test_a_negation_brings_back_files_a_pattern_left_out(tmp_path: Path) -> None:
    # gitignore: "*.py" leaves out every Python file, "!src/*.py" takes src/'s back;
    # "build/" with "!build/" is no rule at all.
    exclude = ["*.py", "!src/*.py", "build/", "!build/"]
    for files, excluded in walk_and_git(tmp_path, exclude):
        assert "src/keep.py" in files
        assert "top.py" not in files and "app/main.py" not in files
        assert excluded["top.py"] == "excluded by configured rule '*.py'"
        assert excluded["build/gen.py"] == "excluded by configured rule '*.py'"
        assert "build/" not in excluded and "app/build" in files


@REQUIRE_GIT
def test_the_walk_and_git_agree(tmp_path: Path) -> None:
    exclude = ["build/", "*.min.js", "docs/", "!docs/api/"]
    walked, listed = walk_and_git(tmp_path, exclude)
    assert walked == listed


def test_a_walk_started_inside_an_excluded_directory_leaves_its_files_out(tmp_path: Path) -> None:
    root = tree(tmp_path / "walked")
    found = FileDiscovery(exclude=["pkg/build/"]).discover(root, ["pkg/build/deep"])
    assert found.files == []
    assert found.excluded == [("pkg/build/deep/gen.py", "excluded by configured rule 'pkg/build/'")]
