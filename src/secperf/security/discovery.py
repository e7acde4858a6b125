"""Which files a scan looks at: what git would commit, minus the configured excludes.

In a git work tree the candidates are the files git tracks plus the untracked
files it does not ignore (``git ls-files --cached --others --exclude-standard``):
git ignores only untracked files, and so does secperf, so a committed file
that a ``.gitignore`` happens to match is still scanned. Outside a work tree
(or without git) a walk honours the ``.gitignore`` files it meets.

Every file under the scan root is accounted for. What a scanner could not
scan (too large, unreadable, a link out of the tree) is a *skip*, which counts
against coverage; what was left out on purpose (an exclude rule, default or
configured, a git-ignored untracked file, the include globs, secperf's own
files) is an *exclusion*, listed with the rule that excluded it. A directory
left out as a whole is listed once, as ``dir/``.

Symlinked directories are never followed (no loops, no escaping the root);
symlinked files are scanned only when they resolve inside the root.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from secperf.config.sections.scan import DEFAULT_EXCLUDES

log = logging.getLogger(__name__)

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


#: Why a path was left out on purpose (besides the exclude rule that names itself).
OWN_STATE = "secperf's own file or version-control data"
GIT_IGNORED = "ignored by git (untracked and matched by .gitignore)"
GITIGNORE_MATCHED = "matched by .gitignore (not a git work tree)"
NOT_INCLUDED = "not matched by [scan].include"
GIT_SUBMODULE = "git submodule (scan it on its own)"
#: How long git may take to list a work tree before secperf walks it instead.
_GIT_TIMEOUT_S = 120.0


@dataclass(slots=True)
class Discovery:
    """The walk's result: files to consider, files that failed, files left out on purpose."""

    files: list[CandidateFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    # (relpath, reason); a directory left out whole ends with "/".
    excluded: list[tuple[str, str]] = field(default_factory=list)
    #: "git" when git listed the files, "walk" otherwise.
    mode: str = "walk"


def _exclude_reason(pattern: str) -> str:
    where = "default" if pattern in DEFAULT_EXCLUDES else "configured"
    return f"excluded by {where} rule {pattern!r}"


def _spec(patterns: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [p for p in patterns if p.strip()]
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def _directory_pattern(pattern: str) -> bool:
    """Whether a gitignore pattern matches directories only (it ends with a slash)."""
    return pattern.rstrip().endswith("/")


def _rule_leaving_out(
    relpath: str,
    spec: pathspec.GitIgnoreSpec | None,
    rules: list[tuple[str, pathspec.GitIgnoreSpec]],
) -> str | None:
    """The rule of ``rules`` that leaves ``relpath`` out when ``spec`` (all of them) does."""
    if spec is None or not spec.match_file(relpath):
        return None
    for pattern, rule in rules:
        if rule.match_file(relpath):
            return pattern
    return "(negated patterns)"


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
        # Each positive pattern alone, to name the rule that excluded a path.
        self._rules = [
            (pattern, spec)
            for pattern in exclude
            if pattern.strip() and not pattern.startswith("!")
            if (spec := _spec([pattern])) is not None
        ]
        # What a file is matched against. A directory pattern ("build/") matches a
        # file only through a directory above it, and both walks check every
        # directory first and leave out what is under an excluded one; so, unless a
        # negation may bring a file back, files skip the directory patterns (the
        # defaults are all such: a file then costs no pattern match at all).
        if any(p.lstrip().startswith("!") for p in exclude):
            self._file_exclude, self._file_rules = self.exclude, self._rules
        else:
            self._file_exclude = _spec(p for p in exclude if not _directory_pattern(p))
            self._file_rules = [r for r in self._rules if not _directory_pattern(r[0])]
        self.respect_gitignore = respect_gitignore
        self.max_file_size = max_file_size

    def discover(self, root: Path, paths: Sequence[str] = (".",)) -> Discovery:
        """Every candidate file under ``paths`` (relative to ``root``), sorted by path."""
        root = root.resolve()
        if self.respect_gitignore:
            listed = self._discover_with_git(root, paths)
            if listed is not None:
                return listed
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
        result.excluded.sort()
        return result

    # ------------------------------------------------------------------ git

    def _discover_with_git(self, root: Path, paths: Sequence[str]) -> Discovery | None:
        """The files git would commit under ``paths``; None when ``root`` is not in a work tree."""
        git = shutil.which("git")
        if git is None:
            return None
        starts: list[str] = []
        result = Discovery(mode="git")
        for entry in paths:
            start = (root / entry).resolve()
            if not start.is_relative_to(root):
                result.skipped.append((str(entry), "outside the scan root"))
            elif not start.exists():
                result.skipped.append((str(entry), "does not exist"))
            else:
                starts.append(start.relative_to(root).as_posix() or ".")
        base = [git, "--literal-pathspecs", "-C", str(root), "ls-files", "-z"]
        try:
            inside = subprocess.run(
                [git, "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                capture_output=True,
                text=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
            if inside.returncode != 0 or inside.stdout.strip() != "true":
                return None
            # A root the enclosing work tree ignores (a Python install inside a
            # pyenv clone) is not that repository's content: walk it instead.
            ignored_root = subprocess.run(
                [git, "-C", str(root), "check-ignore", "-q", "."],
                capture_output=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
            if ignored_root.returncode != 1:
                return None
            if not starts:
                return result
            wanted = _run_git([*base, "--cached", "--others", "--exclude-standard", "--", *starts])
            ignored = _run_git(
                [*base, "--others", "--ignored", "--exclude-standard", "--directory", "--", *starts]
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("git could not list %s (%s); walking the tree instead", root, exc)
            return None
        for relpath in sorted(set(ignored)):
            if self._own_state(relpath):
                continue
            result.excluded.append((relpath, GIT_IGNORED))
        seen: set[str] = set()
        pruned: set[str] = set()
        kept: set[str] = set()
        for relpath in sorted(set(wanted)):
            if relpath in seen:
                continue  # listed twice by git while a merge is unresolved
            reason = self._excluded_by_rule(relpath, pruned, kept, result)
            if reason:
                continue
            path = root / relpath
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # tracked but deleted in the work tree: nothing to scan
            except OSError as exc:
                result.skipped.append((relpath, f"unreadable: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(info.st_mode):
                result.excluded.append((relpath + "/", GIT_SUBMODULE))
                continue
            if stat.S_ISLNK(info.st_mode) and not self._link_inside(root, path, relpath, result):
                continue
            self._consider(root, path, result, seen, relpath)
        result.files.sort(key=lambda f: f.relpath)
        result.excluded.sort()
        return result

    def _own_state(self, relpath: str) -> bool:
        """secperf's state folder: its own .gitignore hides it from git; not worth a line."""
        return relpath.split("/", 1)[0] in ALWAYS_PRUNED

    def _excluded_by_rule(
        self, relpath: str, pruned: set[str], kept: set[str], result: Discovery
    ) -> bool:
        """Whether an exclude rule or secperf's own files leave ``relpath`` out (noted once).

        ``pruned`` and ``kept`` remember the directories already judged.
        """
        parts = relpath.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth]) + "/"
            if directory in kept:
                continue
            if directory in pruned:
                return True
            if parts[depth - 1] in ALWAYS_PRUNED:
                pruned.add(directory)
                result.excluded.append((directory, OWN_STATE))
                return True
            rule = self._matching_rule(directory)
            if rule is not None:
                pruned.add(directory)
                result.excluded.append((directory, _exclude_reason(rule)))
                return True
            kept.add(directory)
        if parts[-1] in ALWAYS_SKIPPED_FILES:
            result.excluded.append((relpath, OWN_STATE))
            return True
        rule = self._file_rule(relpath)
        if rule is not None:
            result.excluded.append((relpath, _exclude_reason(rule)))
            return True
        return False

    def _matching_rule(self, relpath: str) -> str | None:
        """The exclude rule that leaves ``relpath`` out, None when it is not excluded."""
        return _rule_leaving_out(relpath, self.exclude, self._rules)

    def _file_rule(self, relpath: str) -> str | None:
        """``_matching_rule`` for a file whose directories were each found not excluded."""
        return _rule_leaving_out(relpath, self._file_exclude, self._file_rules)

    def _link_inside(self, root: Path, path: Path, relpath: str, result: Discovery) -> bool:
        """Whether a symlinked file may be scanned (resolves to a file inside the root)."""
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            result.skipped.append((relpath, "broken or looping symlink"))
            return False
        if not target.is_relative_to(root):
            result.skipped.append((relpath, "symlink points outside the scan root"))
            return False
        return not target.is_dir()  # linked directories are not followed: no loops

    # ------------------------------------------------------------------ walk

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
        start_rel = "" if start == root else self._relpath(root, start)
        # A walk started inside an excluded directory ("build/sub" with "build/")
        # has that rule above it: its files are matched against every rule.
        parts = start_rel.split("/") if start_rel else []
        inside_excluded = any(
            self._matching_rule("/".join(parts[:depth]) + "/") is not None
            for depth in range(1, len(parts) + 1)
        )
        file_rule = self._matching_rule if inside_excluded else self._file_rule
        self._walk_dir(root, start, start_rel, result, seen, specs, file_rule)

    def _walk_dir(
        self,
        root: Path,
        directory: Path,
        dir_rel: str,
        result: Discovery,
        seen: set[str],
        specs: list[tuple[str, pathspec.GitIgnoreSpec]],
        file_rule: Callable[[str], str | None],
    ) -> None:
        """Walk ``directory`` (``dir_rel`` under ``root``, "" for the root itself);
        ``file_rule`` names the exclude rule that leaves a file out."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            result.skipped.append((dir_rel or ".", f"unreadable directory: {exc.strerror or exc}"))
            return
        # Relative paths by joining names: Path.relative_to for each entry cost
        # half the walk of a large tree.
        prefix = dir_rel + "/" if dir_rel else ""
        for entry in entries:
            relpath = prefix + entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                result.skipped.append((relpath, f"unreadable: {exc.strerror or exc}"))
                continue
            if is_dir:
                if entry.name in ALWAYS_PRUNED:
                    result.excluded.append((relpath + "/", OWN_STATE))
                    continue
                rule = self._matching_rule(relpath + "/")
                if rule is not None:
                    result.excluded.append((relpath + "/", _exclude_reason(rule)))
                    continue
                if self.respect_gitignore and self._ignored_by_git(specs, relpath, True):
                    result.excluded.append((relpath + "/", GITIGNORE_MATCHED))
                    continue
                path = Path(entry.path)
                child_specs = specs
                if self.respect_gitignore:
                    spec = _gitignore_spec(path)
                    if spec is not None:
                        child_specs = [*specs, (relpath, spec)]
                self._walk_dir(root, path, relpath, result, seen, child_specs, file_rule)
                continue
            if entry.name in ALWAYS_SKIPPED_FILES:
                result.excluded.append((relpath, OWN_STATE))
                continue
            rule = file_rule(relpath)
            if rule is not None:
                result.excluded.append((relpath, _exclude_reason(rule)))
                continue
            if self.respect_gitignore and self._ignored_by_git(specs, relpath, False):
                result.excluded.append((relpath, GITIGNORE_MATCHED))
                continue
            path = Path(entry.path)
            if is_link and not self._link_inside(root, path, relpath, result):
                continue
            self._consider(root, path, result, seen, relpath)

    def _consider(
        self, root: Path, path: Path, result: Discovery, seen: set[str], relpath: str | None = None
    ) -> None:
        if relpath is None:
            relpath = self._relpath(root, path) if path.is_relative_to(root) else path.name
        if relpath in seen:
            return
        seen.add(relpath)
        if self.include is not None and not self.include.match_file(relpath):
            result.excluded.append((relpath, NOT_INCLUDED))
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


def _run_git(command: list[str]) -> list[str]:
    """Paths a ``git ls-files -z`` prints; CalledProcessError when git fails."""
    done = subprocess.run(command, capture_output=True, timeout=_GIT_TIMEOUT_S, check=True)
    return [os.fsdecode(item) for item in done.stdout.split(b"\0") if item]
