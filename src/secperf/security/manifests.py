"""Read Python dependency manifests into (package, version, line) requirements.

Supported: ``requirements*.txt`` (and ``requirements/*.txt``), ``pyproject.toml``
(PEP 621 ``[project]``, PEP 735 ``[dependency-groups]`` and Poetry's
``[tool.poetry]``), ``poetry.lock``, ``uv.lock`` and ``Pipfile.lock``.

Only a pinned (``==1.2.3``, Poetry's bare ``1.2.3``) or locked version can be
matched against advisories; an unpinned requirement (``>=2.0``) is returned
with ``version=None`` so callers can count it, but no vulnerability is claimed
for it, because the installed version is unknown. Bad lines do not stop the
parse: they are returned as problems naming the file and line.

``resolve_manifest`` reads a manifest as pip and the lock tools would: it
follows a requirements file's ``-r`` includes and ``-c`` constraints (relative
to the including file, inside the scan root, each file once so that loops
end), takes the version a constraint or a lock file beside the manifest pins
for a requirement that is only a range, and lists what is still unpinned as
``unpinned``: requirements whose installed version cannot be told.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from secperf.security.relpath import name_of, parent_name_of

if TYPE_CHECKING:
    from packaging.requirements import Requirement

LOCK_FILES = frozenset({"poetry.lock", "uv.lock", "Pipfile.lock"})


def _requirement(text: str) -> Requirement:
    """``text`` as a PEP 508 requirement; raises ``InvalidRequirement``, a ``ValueError``.

    packaging's parser loads with the first manifest parsed: a scan whose
    manifests are all cached parses none.
    """
    from packaging.requirements import Requirement

    return Requirement(text)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One declared or locked dependency of a manifest."""

    name: str  # canonical (PEP 503) name
    version: str | None  # the exact pinned or locked version; None when unpinned
    specifier: str  # as declared, e.g. "==2.31.0", ">=2", "^1.2" (empty for any)
    line: int  # 1-based line in the manifest (0 when unknown)
    manifest: str  # the manifest's path relative to the scan root
    # Where the version or the requirement came from when not this line, e.g.
    # "constraints.txt:3" or "uv.lock"; empty when declared and pinned here.
    origin: str = ""


@dataclass(slots=True)
class ManifestParse:
    """What a manifest yielded: its dependencies and any problems met on the way."""

    dependencies: list[Dependency] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path:line: reason"
    # requirements files: (option "-r" or "-c", target as written, line)
    includes: list[tuple[str, str, int]] = field(default_factory=list)
    # after ``resolve_manifest``: requirements whose installed version cannot be told
    unpinned: list[Dependency] = field(default_factory=list)
    # after ``resolve_manifest``: other files the result depends on (relpaths)
    read_files: list[str] = field(default_factory=list)


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (bad TOML or JSON, wrong structure)."""


def manifest_kind(relpath: str) -> str | None:
    """The kind of manifest at ``relpath`` ("requirements", "pyproject", a lock name) or None."""
    name = name_of(relpath)
    if name in LOCK_FILES:
        return name
    if name == "pyproject.toml":
        return "pyproject"
    if name.endswith(".txt") and (
        name.startswith("requirements") or parent_name_of(relpath) == "requirements"
    ):
        return "requirements"
    return None


def parse_manifest(relpath: str, text: str) -> ManifestParse:
    """Parse the manifest at ``relpath`` whose content is ``text``.

    Raises ManifestError (naming the file) when the whole file is unreadable;
    single bad entries become ``problems`` and the rest is still returned.
    """
    kind = manifest_kind(relpath)
    if kind == "requirements":
        return parse_requirements_txt(relpath, text)
    if kind == "pyproject":
        return parse_pyproject(relpath, text)
    if kind in ("poetry.lock", "uv.lock"):
        return parse_toml_lock(relpath, text)
    if kind == "Pipfile.lock":
        return parse_pipfile_lock(relpath, text)
    raise ManifestError(f"{relpath}: not a dependency manifest this scanner reads")


# ----------------------------------------------------------------- requirements.txt

# pip options that may follow a requirement on the same line (--hash=..., etc.)
_TRAILING_OPTION = re.compile(r"\s+--?[A-Za-z]")
_COMMENT = re.compile(r"(^|\s)#.*$")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Yield (first physical line number, joined text) with ``\\`` continuations joined."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).rstrip()
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        yield start, " ".join(part.strip() for part in buffer).strip()
        buffer = []
    if buffer:
        yield start, " ".join(part.strip() for part in buffer).strip()


_INCLUDE = re.compile(
    r"^(?:(?P<short>-[rc])\s*|(?P<long>--requirement|--constraint)(?:\s*=\s*|\s+))(?P<target>\S+)$"
)


def parse_requirements_txt(relpath: str, text: str) -> ManifestParse:
    """Parse a pip requirements file; ``-r``/``-c`` lines become ``includes``.

    Other option lines (-e, --index-url ...) are ignored. ``resolve_manifest``
    follows the includes.
    """
    result = ManifestParse()
    for number, line in _logical_lines(text):
        if not line:
            continue
        if line.startswith("-"):
            include = _INCLUDE.match(line)
            if include:
                option = include.group("short") or include.group("long")
                kind = "-c" if option in ("-c", "--constraint") else "-r"
                result.includes.append((kind, include.group("target"), number))
            continue
        option = _TRAILING_OPTION.search(line)
        if option:
            line = line[: option.start()].strip()
        try:
            requirement = _requirement(line)
        except ValueError as exc:  # InvalidRequirement
            result.problems.append(f"{relpath}:{number}: invalid requirement: {exc}")
            continue
        if requirement.url:
            continue  # a direct URL reference has no version to look up
        result.dependencies.append(_from_requirement(requirement, number, relpath))
    return result


def _from_requirement(requirement: Requirement, line: int, relpath: str) -> Dependency:
    return Dependency(
        name=canonicalize_name(requirement.name),
        version=pinned_version(str(requirement.specifier)),
        specifier=str(requirement.specifier),
        line=line,
        manifest=relpath,
    )


def pinned_version(specifier: str) -> str | None:
    """The exact version a specifier pins (``==1.2`` or ``===1.2``), else None."""
    parts = [p.strip() for p in specifier.split(",") if p.strip()]
    if len(parts) != 1:
        return None
    match = re.fullmatch(r"===?\s*([^\s*]+)", parts[0])
    return match.group(1) if match else None


# ----------------------------------------------------------------- pyproject.toml


def _load_toml(relpath: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{relpath}: invalid TOML: {exc}") from None


def _line_of(lines: list[str], needles: Iterable[str], start: int = 0) -> int:
    """1-based number of the first line at or after ``start`` containing any needle, else 0."""
    wanted = [n for n in needles if n]
    for index in range(start, len(lines)):
        if any(n in lines[index] for n in wanted):
            return index + 1
    return 0


def _section_start(lines: list[str], header: str) -> int:
    """0-based index of the line after the TOML table ``[header]``, or 0 when absent."""
    pattern = re.compile(r"^\s*\[\s*" + re.escape(header).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    for index, line in enumerate(lines):
        if pattern.match(line):
            return index + 1
    return 0


def parse_pyproject(relpath: str, text: str) -> ManifestParse:
    """PEP 621 dependencies and optional-dependencies, PEP 735 groups and Poetry's tables."""
    data = _load_toml(relpath, text)
    lines = text.splitlines()
    result = ManifestParse()

    pep508: list[tuple[str, str]] = []  # (toml key path, requirement string)
    project = data.get("project")
    if isinstance(project, dict):
        pep508 += _string_list(project.get("dependencies"), "project.dependencies", result, relpath)
        extras = project.get("optional-dependencies")
        if isinstance(extras, dict):
            for extra, reqs in extras.items():
                key = f"project.optional-dependencies.{extra}"
                pep508 += _string_list(reqs, key, result, relpath)
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for group, reqs in groups.items():
            items = [r for r in reqs if isinstance(r, str)] if isinstance(reqs, list) else reqs
            pep508 += _string_list(items, f"dependency-groups.{group}", result, relpath)
    for key, spec in pep508:
        line = _line_of(lines, (f'"{spec}"', f"'{spec}'"))
        try:
            requirement = _requirement(spec)
        except ValueError as exc:
            result.problems.append(f"{relpath}:{line}: {key}: invalid requirement: {exc}")
            continue
        if not requirement.url:
            result.dependencies.append(_from_requirement(requirement, line, relpath))

    poetry = data.get("tool", {}).get("poetry") if isinstance(data.get("tool"), dict) else None
    if isinstance(poetry, dict):
        tables: list[tuple[str, Any]] = [
            ("tool.poetry.dependencies", poetry.get("dependencies")),
            ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies")),
        ]
        group_table = poetry.get("group")
        if isinstance(group_table, dict):
            for group, body in group_table.items():
                if isinstance(body, dict):
                    header = f"tool.poetry.group.{group}.dependencies"
                    tables.append((header, body.get("dependencies")))
        for header, table in tables:
            if table is None:
                continue
            if not isinstance(table, dict):
                result.problems.append(f"{relpath}: {header}: expected a table")
                continue
            start = _section_start(lines, header)
            for name, spec in table.items():
                if canonicalize_name(name) == "python":
                    continue
                key_re = re.compile(r'^\s*["\']?' + re.escape(name) + r'["\']?\s*=')
                line = next((i + 1 for i in range(start, len(lines)) if key_re.match(lines[i])), 0)
                dep = _poetry_dependency(name, spec, line, relpath)
                if dep is None:
                    result.problems.append(
                        f"{relpath}:{line}: {header}.{name}: unsupported value {spec!r}"
                    )
                elif dep.specifier != "<source>":
                    result.dependencies.append(dep)
    return result


def _string_list(
    value: Any, key: str, result: ManifestParse, relpath: str
) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        result.problems.append(f"{relpath}: {key}: expected a list of requirement strings")
        return []
    return [(key, v) for v in value]


def _poetry_dependency(name: str, spec: Any, line: int, relpath: str) -> Dependency | None:
    """A Poetry dependency value: "1.2.3", "^1.2", {version = ...} or a path/git source."""
    if isinstance(spec, list):  # multiple-constraints form: pinned only when all agree
        versions = {_poetry_dependency(name, s, line, relpath) for s in spec}
        pins = {d.version for d in versions if d is not None}
        only = pins.pop() if len(pins) == 1 and None not in pins else None
        return Dependency(canonicalize_name(name), only, "<multiple>", line, relpath)
    if isinstance(spec, dict):
        if "version" not in spec:
            # git, path or url dependencies carry no registry version
            return Dependency(canonicalize_name(name), None, "<source>", line, relpath)
        spec = spec["version"]
    if not isinstance(spec, str):
        return None
    text = spec.strip()
    # Poetry reads a bare version as ==
    version = text if re.fullmatch(r"\d[\w.!+-]*", text) else pinned_version(text)
    return Dependency(canonicalize_name(name), version, text, line, relpath)


# ----------------------------------------------------------------- lock files

_PACKAGE_HEADER = re.compile(r"^\s*\[\[\s*package\s*\]\]\s*$")
_NAME_LINE = re.compile(r"""^\s*name\s*=\s*["']([^"']+)["']""")


def parse_toml_lock(relpath: str, text: str) -> ManifestParse:
    """poetry.lock and uv.lock: every ``[[package]]`` with its name and locked version."""
    data = _load_toml(relpath, text)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise ManifestError(f"{relpath}: 'package' must be an array of tables")
    lines = text.splitlines()
    # The n-th [[package]] table in the parsed data is the n-th header in the text.
    name_lines: list[int] = []
    for index, text_line in enumerate(lines):
        if _PACKAGE_HEADER.match(text_line):
            name_lines.append(_line_of(lines, ("name",), index + 1) or index + 1)
    result = ManifestParse()
    for index, package in enumerate(packages):
        line = name_lines[index] if index < len(name_lines) else 0
        if not isinstance(package, dict):
            result.problems.append(f"{relpath}:{line}: package[{index}]: expected a table")
            continue
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            # uv records the project itself and path packages without a version
            if isinstance(name, str) and version is None:
                continue
            result.problems.append(
                f"{relpath}:{line}: package[{index}]: expected string 'name' and 'version'"
            )
            continue
        source = package.get("source")
        if isinstance(source, dict) and any(k in source for k in ("editable", "virtual", "path")):
            continue  # local packages are not on PyPI
        result.dependencies.append(
            Dependency(canonicalize_name(name), version, f"=={version}", line, relpath)
        )
    return result


def parse_pipfile_lock(relpath: str, text: str) -> ManifestParse:
    """Pipfile.lock: the ``default`` and ``develop`` sections' ``"version": "==x"`` pins."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{relpath}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{relpath}: expected a JSON object")
    lines = text.splitlines()
    result = ManifestParse()
    for section in ("default", "develop"):
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            result.problems.append(f"{relpath}: {section}: expected an object")
            continue
        start = _line_of(lines, (f'"{section}"',))
        for name, entry in entries.items():
            line = _line_of(lines, (f'"{name}"',), max(0, start - 1))
            if not isinstance(entry, dict):
                result.problems.append(f"{relpath}:{line}: {section}.{name}: expected an object")
                continue
            spec = entry.get("version")
            if spec is None:
                continue  # git, path or editable entries
            if not isinstance(spec, str):
                result.problems.append(f"{relpath}:{line}: {section}.{name}.version: not a string")
                continue
            result.dependencies.append(
                Dependency(canonicalize_name(name), pinned_version(spec), spec, line, relpath)
            )
    return result


# ----------------------------------------------------------------- resolution

#: Includes nested deeper than this are reported, not followed (a guard besides the loop check).
MAX_INCLUDE_DEPTH = 20


def resolve_manifest(root: Path, relpath: str, text: str) -> ManifestParse:
    """Parse the manifest and resolve what it leaves open, reading related files under ``root``.

    A requirements file's ``-r`` includes add their requirements (attributed to
    the including line, ``origin`` naming the file and line), except includes
    that are manifests of their own, which report their own; ``-c`` constraints
    and a lock file in the same folder give versions to requirements that are
    only ranges. Requirements left without a version are in ``unpinned``; a
    requirement a lock file beside it pins is checked there and left out here.
    Raises ManifestError when the manifest itself cannot be read.
    """
    result = parse_manifest(relpath, text)
    root = root.resolve()
    constraints: dict[str, Dependency] = {}
    if manifest_kind(relpath) == "requirements":
        visited = {relpath}
        _follow(root, relpath, result.includes, result, constraints, visited, relpath, 1)
    if manifest_kind(relpath) in ("requirements", "pyproject"):
        locked = _sibling_lock(root, relpath, result)
    else:
        locked = {}
    resolved: list[Dependency] = []
    for dep in result.dependencies:
        if dep.version is None and dep.name in constraints:
            pin = constraints[dep.name]
            dep = dataclasses.replace(dep, version=pin.version, origin=pin.origin)
        if dep.version is None and dep.name in locked:
            continue  # the lock file pins it and is scanned as a manifest of its own
        if dep.version is None:
            if dep.specifier != "<source>":
                result.unpinned.append(dep)
            continue
        resolved.append(dep)
    result.dependencies = resolved
    # A range beside a pin of the same package (``pyyaml>=5`` and ``PyYAML==5.3``)
    # is decided by the pin.
    pinned_names = {dep.name for dep in resolved}
    result.unpinned = [dep for dep in result.unpinned if dep.name not in pinned_names]
    return result


def _follow(
    root: Path,
    relpath: str,
    includes: list[tuple[str, str, int]],
    result: ManifestParse,
    constraints: dict[str, Dependency],
    visited: set[str],
    top: str,
    depth: int,
    at: int = 0,
) -> None:
    """Read the files ``relpath`` includes into ``result`` (requirements) and ``constraints``.

    ``at`` is the line of the top file whose include led here (0 in the top file).
    """
    for option, target, line in includes:
        where = f"{relpath}:{line}: {option} {target}"
        if "://" in target:
            result.problems.append(f"{where}: remote files are not read")
            continue
        path = (root / PurePosixPath(relpath).parent / target).resolve()
        if not path.is_relative_to(root):
            result.problems.append(f"{where}: outside the scan root, not read")
            continue
        included = path.relative_to(root).as_posix()
        if included in visited:
            continue  # read already (an include loop, or the same file twice)
        if depth > MAX_INCLUDE_DEPTH:
            result.problems.append(f"{where}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
            continue
        visited.add(included)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            result.problems.append(f"{where}: cannot read it: {reason}")
            continue
        result.read_files.append(included)
        nested = parse_requirements_txt(included, text)
        result.problems.extend(nested.problems)
        if option == "-c":
            for dep in nested.dependencies:
                if dep.version is not None:
                    origin = f"{included}:{dep.line}"
                    constraints.setdefault(dep.name, dataclasses.replace(dep, origin=origin))
        elif manifest_kind(included) is None:
            # Attributed to the including line of the top file: that is what installs it.
            for dep in nested.dependencies:
                result.dependencies.append(
                    dataclasses.replace(
                        dep, line=at or line, manifest=top, origin=f"{included}:{dep.line}"
                    )
                )
        # A -c file's own -c lines constrain too; its -r lines are not installed.
        nested_includes = [i for i in nested.includes if option == "-r" or i[0] == "-c"]
        if nested_includes and manifest_kind(included) is None:
            _follow(
                root,
                included,
                nested_includes,
                result,
                constraints,
                visited,
                top,
                depth + 1,
                at or line,
            )
        elif nested.includes and manifest_kind(included) is not None:
            # A manifest of its own resolves its requirements itself; its constraints
            # still apply to the requirements of the file that includes it.
            only_c = [i for i in nested.includes if i[0] == "-c"]
            _follow(
                root, included, only_c, result, constraints, visited, top, depth + 1, at or line
            )


def _sibling_lock(root: Path, relpath: str, result: ManifestParse) -> dict[str, Dependency]:
    """Packages a lock file in the manifest's folder pins, by name."""
    folder = root / PurePosixPath(relpath).parent
    locked: dict[str, Dependency] = {}
    for name in sorted(LOCK_FILES):
        path = folder / name
        lock_rel = (PurePosixPath(relpath).parent / name).as_posix()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue  # no lock here (or an unreadable one, which its own scan reports)
        try:
            parsed = parse_manifest(lock_rel, text)
        except ManifestError:
            continue  # reported by the lock file's own scan
        result.read_files.append(lock_rel)
        for dep in parsed.dependencies:
            if dep.version is not None:
                locked.setdefault(dep.name, dep)
    return locked
