"""The API's scope filters: one ``target`` (scanned project) and one ``host``.

Every read that can be narrowed to a project or a machine takes the same two
query parameters, validated the same way (1 to 255 characters). An unknown
target or host is no error: it selects nothing, so the answer is empty.

Alerts and metric series carry the scope as labels (``target``, ``host``);
a filter keeps only what carries the wanted value, so an alert without a
``target`` label is outside every target's scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Query

#: Longest target or host name a filter takes.
MAX_SCOPE_CHARS = 255

TargetQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_SCOPE_CHARS,
        description="Only this target (scanned project); an unknown one gives empty results.",
    ),
]
HostQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_SCOPE_CHARS,
        description="Only this host; an unknown one gives empty results.",
    ),
]


def labels_in_scope(
    labels: Mapping[str, str], target: str | None = None, host: str | None = None
) -> bool:
    """Whether a label set carries the wanted ``target`` and ``host`` (None: any)."""
    if target is not None and labels.get("target") != target:
        return False
    return host is None or labels.get("host") == host


def documents_in_scope(
    items: list[dict[str, Any]], target: str | None, host: str | None
) -> list[dict[str, Any]]:
    """JSON documents with a ``labels`` object, those in scope (all when no filter)."""
    if target is None and host is None:
        return items
    return [i for i in items if labels_in_scope(i.get("labels") or {}, target, host)]
