"""What the routes work with: the store, the bus and the optional collaborators.

``AlertEngine`` is the part of the alert engine the API uses; without one the
routes fall back to the store's alert and silence records. The correlation and
advice providers are plain callables returning JSON-ready data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fastapi import Request

from secperf.bus.interface import EventBus
from secperf.model import Alert, AlertState
from secperf.store import Silence, Store, StoreWriter

#: Returns ``{"computed_ms": int | None, "results": [...]}`` (see docs/api.md).
CorrelationsProvider = Callable[[], Mapping[str, Any]]
#: Returns the list of advice items (see docs/api.md); one taking a ``target``
#: keyword scopes the scan-based advice to that target.
AdviceProvider = Callable[..., Iterable[Mapping[str, Any]]]


@runtime_checkable
class AlertEngine(Protocol):
    """The alert engine's operations the API calls.

    They are synchronous and called on the event loop the engine runs on.
    ``acknowledge`` raises KeyError for an unknown alert; the writes raise
    ValueError for values they refuse. ``add_silence`` returns the silence
    (or its id).
    """

    def acknowledge(self, fingerprint: str, author: str, note: str) -> Alert:
        """Acknowledge an alert."""
        ...

    def add_silence(
        self,
        matchers: Any,
        starts_ms: int | None,
        ends_ms: int,
        author: str,
        reason: str,
    ) -> Silence | int:
        """Add a silence."""
        ...

    def expire_silence(self, silence_id: int) -> bool:
        """End a silence now; False when it does not exist or has ended."""
        ...

    def alerts(self, states: Iterable[AlertState | str] | None = None) -> list[Alert]:
        """Current alerts, optionally only in ``states``."""
        ...

    def context(self, fingerprint: str) -> dict[str, Any]:
        """Security and performance context of an alert."""
        ...


@dataclass(slots=True)
class AppContext:
    """Everything one app instance serves from."""

    store: Store
    bus: EventBus
    bus_kind: str = "memory"
    writer: StoreWriter | None = None
    alert_engine: AlertEngine | None = None
    correlations: CorrelationsProvider | None = None
    advice: AdviceProvider | None = None


async def get_context(request: Request) -> AppContext:
    """The app's context (FastAPI dependency; async: no thread hop for a lookup)."""
    ctx = request.app.state.context
    assert isinstance(ctx, AppContext)
    return ctx
