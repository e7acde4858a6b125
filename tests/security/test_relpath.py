"""The path parts scanners ask about agree with ``PurePosixPath`` on every kind of name."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from secperf.security.relpath import name_of, parent_name_of, suffix_of

NAMES = [
    "a.py",
    "pkg/mod.PY",
    "pkg/sub/mod.pyw",
    ".bashrc",
    "dir/.hidden",
    "a.",
    "dir/a.",
    "a..",
    "noext",
    "dir.d/noext",
    "dir.d/file.tar.gz",
    "requirements/dev.txt",
    "a/requirements/base.txt",
    "requirements.txt",
    "...",
    "dir/.py",
    "x/y/z/Pipfile.lock",
]


@pytest.mark.parametrize("relpath", NAMES)
def test_parts_match_pure_posix_path(relpath: str) -> None:
    path = PurePosixPath(relpath)
    assert name_of(relpath) == path.name
    assert suffix_of(relpath) == path.suffix
    assert parent_name_of(relpath) == path.parent.name
