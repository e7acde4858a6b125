"""Parts of a scan-relative POSIX path, as ``PurePosixPath`` gives them, without building one.

Which scanners read a file is asked once per file and scanner on every scan,
cached or not: building a path object for each question cost more than the
rest of a warm scan's bookkeeping. Discovery's relative paths are already
normalised ("a/b.py": no ".", "..", doubled or trailing slashes).
"""

from __future__ import annotations


def name_of(relpath: str) -> str:
    """``PurePosixPath(relpath).name``."""
    return relpath.rpartition("/")[2]


def suffix_of(relpath: str) -> str:
    """``PurePosixPath(relpath).suffix``: "" for ".bashrc", "a." and "a"."""
    name = relpath.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def parent_name_of(relpath: str) -> str:
    """``PurePosixPath(relpath).parent.name``."""
    return relpath.rpartition("/")[0].rpartition("/")[2]
