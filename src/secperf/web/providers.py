"""The API's correlation and advice providers, read from the store on request.

``secperf up`` and ``secperf serve`` both hand these to ``create_app``, so the
dashboard shows the latest stored correlation run and fresh advice either way.
"""

from __future__ import annotations

from typing import Any

from secperf.analysis.advice import advice_json, build_advice
from secperf.analysis.correlate_store import correlations_json, latest_run
from secperf.events import now_ms
from secperf.store import Store


def analysis_providers(store: Store) -> dict[str, Any]:
    """``correlations`` and ``advice`` keyword arguments of ``create_app`` over ``store``."""

    def correlations() -> dict[str, Any]:
        return correlations_json(latest_run(store))

    def advice(target: str | None = None) -> list[dict[str, Any]]:
        found = build_advice(store, now_ms(), target=target)
        items: list[dict[str, Any]] = advice_json(found)["advice"]
        return items

    return {"correlations": correlations, "advice": advice}
