"""Baseline records: named sets of finding fingerprints."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from secperf.store.record_base import (
    RecordMixin,
    require_text,
)
from secperf.store.schema import (
    baselines,
)


class BaselineRecordMixin(RecordMixin):
    """Baselines of ``Store``: save, read and list named fingerprint sets."""

    def save_baseline(self, name: str, fingerprints: Iterable[str], created_ms: int) -> int:
        """Replace the baseline ``name`` with ``fingerprints``; returns its size."""
        require_text("baseline name", name)
        unique = sorted(set(fingerprints))
        with self._write_tx() as conn:
            conn.execute(delete(baselines).where(baselines.c.name == name))
            if unique:
                conn.execute(
                    baselines.insert(),
                    [{"name": name, "fingerprint": fp, "created_ms": created_ms} for fp in unique],
                )
        return len(unique)

    def baseline(self, name: str) -> set[str]:
        """The fingerprints of baseline ``name`` (empty when it does not exist)."""
        with self._engine.connect() as conn:
            return set(
                conn.execute(
                    select(baselines.c.fingerprint).where(baselines.c.name == name)
                ).scalars()
            )

    def baseline_names(self) -> list[str]:
        """Every saved baseline's name."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(baselines.c.name).distinct().order_by(baselines.c.name)
                ).scalars()
            )
