"""Which files a scan looks at: a walk that honours .gitignore and config globs.

Symlinked directories are never followed (no loops, no escaping the root);
symlinked files are scanned only when they resolve inside the root. What is
passed over for a reason a user should know (too large, unreadable, a link
out of the tree) is returned as a skip, so coverage can say so.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

#: Directories nobody wants scanned (and secperf's own state); config can add more.
ALWAYS_PRUNED = frozenset({".git", ".hg", ".svn", ".secperf"})
#: secperf's own files: its baseline is full of hashes that look like secrets.
ALWAYS_SKIPPED_FILES = frozenset({".secperf-baseline.json", "secperf-waivers.toml"})


@dataclass(frozen=True, slots=True)
class CandidateFile:
    """A file the walk found: where it is and what ``stat`` said."""

    relpath: str  # POSIX, relative to the scan root
    path: Path
    size: int
    mtime_ns: int


@dataclass(slots=True)
class Discovery:
    """The walk's result: files to consider and files passed over with a reason."""

    files: list[CandidateFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)


def _spec(patterns: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [p for p in patterns if p.strip()]
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def _gitignore_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    ignore_file = directory / ".gitignore"
    try:
        text = ignore_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(text.splitlines())


class FileDiscovery:
    """Walks scan roots with include/exclude globs, .gitignore and a size limit."""

    def __init__(
        self,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        respect_gitignore: bool = True,
        max_file_size: int = 1024 * 1024,
    ) -> None:
        self.include = _spec(include)
        self.exclude = _spec(exclude)
        self.respect_gitignore = respect_gitignore
        self.max_file_size = max_file_size

    def discover(self, root: Path, paths: Sequence[str] = (".",)) -> Discovery:
        """Every candidate file under ``paths`` (relative to ``root``), sorted by path."""
        root = root.resolve()
        result = Discovery()
        seen: set[str] = set()
        for entry in paths:
            start = (root / entry).resolve()
            if not start.is_relative_to(root):
                result.skipped.append((str(entry), "outside the scan root"))
                continue
            if start.is_file():
                self._consider(root, start, result, seen)
            elif start.is_dir():
                self._walk(root, start, result, seen)
            else:
                result.skipped.append((str(entry), "does not exist"))
        result.files.sort(key=lambda f: f.relpath)
        return result

    def _relpath(self, root: Path, path: Path) -> str:
        return path.relative_to(root).as_posix()

    def _ignored_by_git(
        self, specs: list[tuple[str, pathspec.GitIgnoreSpec]], relpath: str, is_dir: bool
    ) -> bool:
        ignored = False
        probe = relpath + "/" if is_dir else relpath
        for prefix, spec in specs:
            if prefix and not probe.startswith(prefix + "/"):
                continue
            local = probe[len(prefix) + 1 :] if prefix else probe
            # A later (deeper) .gitignore may re-include with "!", so keep the last verdict.
            res = spec.check_file(local)
            if res.include is not None:
                ignored = res.include
        return ignored

    def _walk(self, root: Path, start: Path, result: Discovery, seen: set[str]) -> None:
        specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        if self.respect_gitignore:
            # .gitignore files above the starting folder (up to the root) apply too.
            chain = [start, *start.parents]
            for directory in reversed(chain):
                if directory == root or directory.is_relative_to(root):
                    spec = _gitignore_spec(directory)
                    if spec is not None:
                        prefix = "" if directory == root else self._relpath(root, directory)
                        specs.append((prefix, spec))
        self._walk_dir(root, start, result, seen, specs)

    def _walk_dir(
        self,
        root: Path,
        directory: Path,
        result: Discovery,
        seen: set[str],
        specs: list[tuple[str, pathspec.GitIgnoreSpec]],
    ) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            rel = self._relpath(root, directory) or "."
            result.skipped.append((rel, f"unreadable directory: {exc.strerror or exc}"))
            return
        for entry in entries:
            path = Path(entry.path)
            relpath = self._relpath(root, path)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                result.skipped.append((relpath, f"unreadable: {exc.strerror or exc}"))
                continue
            if is_dir:
                if entry.name in ALWAYS_PRUNED or self._excluded(relpath + "/"):
                    continue
                if self.respect_gitignore and self._ignored_by_git(specs, relpath, True):
                    continue
                child_specs = specs
                if self.respect_gitignore:
                    spec = _gitignore_spec(path)
                    if spec is not None:
                        child_specs = [*specs, (relpath, spec)]
                self._walk_dir(root, path, result, seen, child_specs)
                continue
            if entry.name in ALWAYS_SKIPPED_FILES or self._excluded(relpath):
                continue
            if self.respect_gitignore and self._ignored_by_git(specs, relpath, False):
                continue
            if is_link:
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    result.skipped.append((relpath, "broken or looping symlink"))
                    continue
                if not target.is_relative_to(root):
                    result.skipped.append((relpath, "symlink points outside the scan root"))
                    continue
                if target.is_dir():
                    continue  # linked directories are not followed: no loops
            self._consider(root, path, result, seen)

    def _excluded(self, relpath: str) -> bool:
        return self.exclude is not None and bool(self.exclude.match_file(relpath))

    def _consider(self, root: Path, path: Path, result: Discovery, seen: set[str]) -> None:
        relpath = self._relpath(root, path) if path.is_relative_to(root) else path.name
        if relpath in seen:
            return
        seen.add(relpath)
        if self.include is not None and not self.include.match_file(relpath):
            return
        try:
            info = path.stat()
        except OSError as exc:
            result.skipped.append((relpath, f"unreadable: {exc.strerror or exc}"))
            return
        if not stat.S_ISREG(info.st_mode):
            result.skipped.append((relpath, "not a regular file"))
            return
        if info.st_size > self.max_file_size:
            result.skipped.append(
                (relpath, f"too large: {info.st_size} bytes > limit {self.max_file_size}")
            )
            return
        result.files.append(CandidateFile(relpath, path, info.st_size, info.st_mtime_ns))
