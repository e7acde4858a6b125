"""Which stored target a report's ``--target`` names.

``secperf scan PATH`` stores its target as ``PATH`` resolved to an absolute
directory, so ``--target .`` inside the project, or a relative path, names the
target by the same rule. A name that matches no stored target is refused: a
report of nothing would read as a clean one.
"""

from __future__ import annotations

from pathlib import Path

from secperf.store import Store

#: Most known targets a message lists (the rest are counted).
SHOWN_TARGETS = 20


class UnknownTarget(ValueError):
    """``--target`` names no target with a stored scan or gate run."""


def known_targets(store: Store) -> list[str]:
    """Every target with a stored scan, import or gate run, sorted."""
    newest, _ = store.latest_scans_by_target()
    return sorted(set(newest) | set(store.latest_gate_runs_by_target()))


def resolve_target(store: Store, target: str, *, cwd: Path | None = None) -> str:
    """The stored target ``target`` names; UnknownTarget listing the known ones when none.

    ``target`` is taken as stored first; else, given ``cwd`` (the CLI's working
    directory), as a path resolved from it as ``secperf scan`` resolves its own.
    """
    known = known_targets(store)
    if target in known:
        return target
    if cwd is not None:
        as_path = Path(target).expanduser()
        resolved = str((as_path if as_path.is_absolute() else cwd / as_path).resolve())
        if resolved in known:
            return resolved
    shown = ", ".join(known[:SHOWN_TARGETS])
    if len(known) > SHOWN_TARGETS:
        shown += f" (and {len(known) - SHOWN_TARGETS} more)"
    raise UnknownTarget(
        f"--target {target!r}: no scan or gate run of this target is stored;"
        f" known targets: {shown or 'none (nothing was scanned into this store yet)'}"
    )
