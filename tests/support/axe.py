"""axe-core in a Playwright page: load it from the dashboard's node_modules, run it, report.

axe-core is a devDependency of the dashboard (``dashboard/package.json``), so
``npm ci`` in ``dashboard/`` (scripts/check-dashboard does it) installs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.paths import REPO

AXE_JS = REPO / "dashboard" / "node_modules" / "axe-core" / "axe.min.js"

#: The impacts a test refuses (axe's scale: minor, moderate, serious, critical).
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def axe_missing() -> str | None:
    """Why axe-core cannot be loaded, or None when it can."""
    if AXE_JS.is_file():
        return None
    return (
        f"axe-core is not installed at {AXE_JS.relative_to(REPO)}: "
        "run scripts/check-dashboard (npm ci in dashboard/)"
    )


def run_axe(page: Any, path: Path = AXE_JS) -> list[dict[str, Any]]:
    """Inject axe-core into ``page`` (once per document) and return its violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(path))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({
                    target: n.target.map((t) => (Array.isArray(t) ? t.join(" ") : String(t))),
                    impact: n.impact,
                    summary: n.failureSummary || "",
                })),
            }));
        }"""
    )
    return violations


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The violations of serious or critical impact."""
    return [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]], *, max_nodes: int = 6) -> str:
    """One paragraph per violation: rule id, impact, help, then each target and its summary."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"][:max_nodes]:
            summary = " ".join(str(node["summary"]).split())
            lines.append(f"    {', '.join(node['target'])}: {summary}")
        hidden = len(v["nodes"]) - max_nodes
        if hidden > 0:
            lines.append(f"    ... and {hidden} more")
    return "\n".join(lines)
