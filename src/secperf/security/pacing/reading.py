"""What the pacing modules read of the store, as protocols.

The scan pacing sits beside the scanners (``security``), below the store in
the layer table, so it names the few store methods it calls here and the
commands hand it the ``Store`` (which has them all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from secperf.model import SecurityMetrics


class StoredPoints(Protocol):
    """One series' points (``store.samples.SeriesPoints``)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...

    @property
    def timestamps(self) -> Any: ...

    @property
    def values(self) -> Any: ...

    @property
    def count(self) -> Any: ...


class StoredSeries(Protocol):
    """One stored series (``store.samples.SeriesInfo``)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...


class StoredScan(Protocol):
    """One stored scan (``store.ScanRecord``)."""

    @property
    def scan_id(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def started_ms(self) -> int: ...

    @property
    def finished_ms(self) -> int | None: ...

    @property
    def pacing(self) -> dict[str, Any] | None: ...

    @property
    def prediction(self) -> dict[str, Any] | None: ...

    @property
    def status(self) -> str: ...

    @property
    def owner_host(self) -> str | None: ...

    @property
    def is_import(self) -> bool: ...

    @property
    def metrics(self) -> SecurityMetrics | None: ...


class ScanHistory(Protocol):
    """Reads stored scans (``Store.scans``)."""

    def scans(
        self, limit: int = 50, target: str | None = None, *, kind: str | None = None
    ) -> Sequence[StoredScan]: ...


class PredictionStore(ScanHistory, Protocol):
    """Reads stored scans and stores a scan's prediction (a ``Store``)."""

    def record_scan_prediction(
        self, scan_id: str, prediction: Mapping[str, Any], *, target: str = "", started_ms: int
    ) -> None: ...


class SeriesStore(ScanHistory, Protocol):
    """Reads stored series and scans (a ``Store``)."""

    def query(
        self,
        name: str,
        matchers: dict[str, str] | None,
        start_ms: int,
        end_ms: int,
        *,
        step_ms: int | None = None,
        max_points: int | None = None,
    ) -> Sequence[StoredPoints]: ...

    def series(
        self, name: str | None = None, matchers: dict[str, str] | None = None
    ) -> Sequence[StoredSeries]: ...
