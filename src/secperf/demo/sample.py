"""The demo's sample vulnerable project: shipped as data, written out as a real project.

The package holds the project with a ``.sample`` suffix on every file
(``shop/admin.py.sample``, ``requirements.txt.sample``), so that no scanner,
linter or type checker run over secperf's own repository reads it as code or
as a manifest. Its fake credentials are placeholders (``{{fake:NAME}}``)
filled in here from fragments, for the same reason: the documented example
values would otherwise sit verbatim in secperf's sources.

``write_sample_project`` writes the project and then ``modules`` generated
modules of clean domain code under ``shop/domain/`` (about 540 lines each):
the weaknesses stay few and readable while a full scan costs enough CPU to
show in a service's latency, as the scan of a real codebase does.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

SUFFIX = ".sample"
_PLACEHOLDER = re.compile(r"\{\{fake:([a-z_]+)\}\}")


def _fake_values() -> dict[str, str]:
    """The fake credentials, joined from fragments (see the module doc).

    The placeholder names are neutral on purpose: a name such as "password"
    next to a string would itself look like a credential to a secrets scanner.
    """
    return {
        # AWS's documented example key pair.
        "cloud_id": "AKIA" + "IOSFODNN7" + "EXAMPLE",
        "cloud_signing_value": "wJalrXUtnFEMI/" + "K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
        # A made-up token in the ghp_ format (36 characters after the prefix).
        "github_pat": "ghp" + "_" + "FAKE0demo0token0not0valid0".ljust(36, "0"),
        "db_login_phrase": "demo-only-" + "hunter2-" + "not-a-real-one",
    }


class SampleError(RuntimeError):
    """The packaged sample project is missing or damaged (a broken installation)."""


@dataclass(frozen=True, slots=True)
class SampleProject:
    """A written sample project: its root and its files."""

    root: Path
    files: tuple[Path, ...]


def packaged_project() -> Traversable:
    """The sample project inside the installed package."""
    return resources.files("secperf.demo").joinpath("project")


def packaged_osv() -> Traversable:
    """The OSV records matching the sample project's pinned dependencies."""
    return resources.files("secperf.demo").joinpath("osv")


def _walk(node: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(relative parts, text) of every ``.sample`` file under ``node``."""
    out: list[tuple[tuple[str, ...], str]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            out.extend(_walk(child, (*prefix, child.name)))
        elif child.name.endswith(SUFFIX):
            out.append(((*prefix, child.name.removesuffix(SUFFIX)), child.read_text("utf-8")))
    return out


def fill_placeholders(text: str, where: str) -> str:
    """``text`` with each ``{{fake:NAME}}`` replaced; an unknown NAME raises SampleError."""
    values = _fake_values()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SampleError(f"{where}: unknown placeholder {{{{fake:{name}}}}}")
        return values[name]

    return _PLACEHOLDER.sub(replace, text)


_DOMAIN_HEADER = '''"""Order pricing rules, part {module} (generated domain code: no weaknesses)."""

from __future__ import annotations

from dataclasses import dataclass, field
'''

_DOMAIN_UNIT = '''

@dataclass
class Line{module}x{unit}:
    """One order line priced under rule set {module}.{unit}."""

    sku: str
    quantity: int
    unit_price: float
    tags: list[str] = field(default_factory=list)

    def amount(self) -> float:
        if self.quantity <= 0:
            raise ValueError(f"{{self.sku}}: quantity must be positive")
        return round(self.quantity * self.unit_price, 2)


def price_{module}_{unit}(
    lines: list[Line{module}x{unit}], discount: float = 0.0
) -> dict[str, float]:
    """Subtotal, discount and total of ``lines`` (a discount from 0 to {cap}%)."""
    if not 0.0 <= discount <= {cap} / 100:
        raise ValueError(f"discount {{discount}} is outside 0..{cap} %")
    subtotal = sum(line.amount() for line in lines)
    bulk = sum(line.quantity for line in lines) >= {bulk}
    rate = discount + ({bulk_rate} if bulk else 0.0)
    total = max(0.0, round(subtotal * (1.0 - rate), 2))
    return {{"subtotal": subtotal, "discount": round(subtotal - total, 2), "total": total}}
'''

#: Rule sets per generated module: 20 units of 29 lines, about 540 lines a module.
UNITS_PER_MODULE = 20


def domain_module(module: int) -> str:
    """The text of generated domain module ``module`` (deterministic)."""
    units = "".join(
        _DOMAIN_UNIT.format(
            module=module, unit=unit, cap=10 + unit, bulk=5 + module % 7, bulk_rate=unit / 200
        )
        for unit in range(UNITS_PER_MODULE)
    )
    return _DOMAIN_HEADER.format(module=module) + units


def write_sample_project(dest: Path, *, modules: int = 0) -> SampleProject:
    """Write the sample project under ``dest`` (replacing it) plus ``modules`` domain modules."""
    if modules < 0:
        raise ValueError(f"modules must be 0 or more, got {modules}")
    sources = _walk(packaged_project())
    if not sources:
        raise SampleError(
            f"the sample project is missing from the installed package ({packaged_project()});"
            " reinstall secperf"
        )
    if dest.exists():
        shutil.rmtree(dest)
    written: list[Path] = []
    for parts, text in sources:
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fill_placeholders(text, "/".join(parts) + SUFFIX), "utf-8")
        written.append(target)
    if modules:
        domain = dest / "shop" / "domain"
        domain.mkdir(parents=True, exist_ok=True)
        init = domain / "__init__.py"
        init.write_text('"""Order pricing rules (generated)."""\n', "utf-8")
        written.append(init)
        for module in range(1, modules + 1):
            target = domain / f"rules_{module:03d}.py"
            target.write_text(domain_module(module), "utf-8")
            written.append(target)
    return SampleProject(dest, tuple(written))


def write_osv_records(dest: Path) -> Path:
    """Copy the packaged OSV records to ``dest`` (a directory of JSON files) and return it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    count = 0
    for child in packaged_osv().iterdir():
        if child.name.endswith(".json"):
            (dest / child.name).write_bytes(child.read_bytes())
            count += 1
    if count == 0:
        raise SampleError("the demo's OSV records are missing from the installed package")
    return dest
