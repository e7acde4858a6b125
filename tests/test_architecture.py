"""The import rules of docs/architecture.md, checked on every import statement.

A lower layer never imports a higher one, including imports inside functions
(those exist only to keep start-up light, not to hide an arrow going up).
Only the CLI knows the terminal: no other module imports typer or rich.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from support.paths import REPO

PACKAGE = REPO / "src" / "secperf"

#: Top-level modules and packages of secperf by layer, from the bottom.
LAYERS: dict[str, int] = {
    "secperf": 0,  # the package root: __version__
    "model": 0,
    "timefmt": 0,  # time as text; imports nothing of secperf
    "url_auth": 0,  # a URL's user:password as HTTP Basic; imports nothing of secperf
    "events": 1,
    "config": 1,
    "bus": 2,
    "security": 2,
    "store": 3,
    "perf": 3,
    "analysis": 4,
    "alerts": 5,
    "gates": 5,
    "compliance": 5,  # the period's report: beside the gate's reports
    "siem": 5,  # security events to a SIEM: a sink beside the alert notifiers
    "web": 6,
    "commands": 7,
    "runtime": 7,
    "agent": 7,
    "demo": 7,
    "cli": 8,
    "__main__": 8,
}
#: The use cases (layer 7) may use each other; every other layer only looks down.
SAME_LAYER_ALLOWED = {7, 8}
#: Libraries of the terminal, and the parts of secperf that alone may import them.
TERMINAL_LIBRARIES = {"typer", "rich"}
TERMINAL_PARTS = {"cli", "__main__"}


def _part(module: str) -> str:
    """The top-level part of secperf that ``module`` (dotted, from ``secperf``) is in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in ``path``, at any depth, as (line, module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    return [(line, name) for line, name in _all_imports(path) if name.split(".")[0] == "secperf"]


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "static" not in p.parts]


def violations() -> list[str]:
    """Every import that goes against the layer table, as ``file:line: a -> b``."""
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "static" in path.parts:
            continue
        source = _part(_module_name(path))
        if source not in LAYERS:
            problems.append(f"{path}: {source!r} has no layer in LAYERS")
            continue
        for line, name in _imports(path):
            target = _part(name)
            if target == source:
                continue
            if target not in LAYERS:
                problems.append(f"{path}:{line}: imports {name}, which has no layer")
                continue
            mine, theirs = LAYERS[source], LAYERS[target]
            if theirs > mine or (theirs == mine and mine not in SAME_LAYER_ALLOWED):
                rel = path.relative_to(PACKAGE.parent)
                problems.append(f"{rel}:{line}: {source} (layer {mine}) imports {name}")
    return problems


def terminal_imports() -> list[str]:
    """Every import of typer or rich outside the CLI, as ``file:line: part imports x``."""
    problems: list[str] = []
    for path in _modules():
        source = _part(_module_name(path))
        if source in TERMINAL_PARTS:
            continue
        for line, name in _all_imports(path):
            if name.split(".")[0] in TERMINAL_LIBRARIES:
                rel = path.relative_to(PACKAGE.parent)
                problems.append(f"{rel}:{line}: {source} imports {name}")
    return problems


def test_every_part_of_secperf_has_a_layer() -> None:
    parts = {_part(_module_name(p)) for p in PACKAGE.rglob("*.py") if "static" not in p.parts}
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


def test_no_import_goes_up_a_layer() -> None:
    problems = violations()
    assert not problems, "\n".join(problems)


def test_the_check_sees_an_arrow_going_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: a store module importing the web layer is reported."""
    fake = tmp_path / "secperf"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "bad.py").write_text("def f():\n    from secperf.web import app\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations()
    assert len(found) == 1 and "store (layer 3) imports secperf.web" in found[0]


def test_only_the_cli_imports_typer_or_rich() -> None:
    """Use cases return data or take callbacks; the CLI renders (docs/architecture.md)."""
    problems = terminal_imports()
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_use_case_printing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself: rich inside a function of a use case, typer in a package."""
    fake = tmp_path / "secperf"
    (fake / "commands").mkdir(parents=True)
    (fake / "cli").mkdir()
    (fake / "commands" / "bad.py").write_text("def f():\n    from rich.table import Table\n")
    (fake / "commands" / "__init__.py").write_text("import typer\n")
    (fake / "cli" / "good.py").write_text("import typer\nfrom rich.console import Console\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = terminal_imports()
    assert len(found) == 2, found
    assert any("commands imports rich.table" in f for f in found)
    assert any("commands imports typer" in f for f in found)
